//! The paper gateway: fills orders in-process against the book the I/O thread sees.
//!
//! For research and for the demo before venue order entry exists: it models a venue's latency
//! (acks and fills are due `latency` after the order is written), takes liquidity from the latest
//! best bid/ask with taker fees, and rests GTC orders until a quote crosses them (maker fee).
//! It never allocates after start: pending events and resting orders live in preallocated
//! buffers, and an order that does not fit is rejected, not lost.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::Deserialize;

use crate::event::{
    ClientOrderId, Fill, MarketBody, MarketEvent, NewOrder, OrderCommand, OrderEvent, OrderEventKind, Quote,
    RejectReason, Side, TimeInForce,
};
use crate::fixed::Qty;
use crate::gateway::{Gateway, GatewayError, VenueCounters};
use crate::instrument::{Registry, VenueId};

/// `[paper]` config: how the simulated venue behaves.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperConfig {
    /// One-way latency from order written to the venue's answer, in µs.
    pub latency_us: u64,
    /// Most orders resting at once.
    pub max_resting: usize,
}

impl Default for PaperConfig {
    fn default() -> Self {
        Self { latency_us: 200, max_resting: 256 }
    }
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    due_ns: u64,
    order: NewOrder,
    cancel: bool,
}

/// The in-process matcher.
#[derive(Debug)]
pub struct PaperGateway {
    registry: Arc<Registry>,
    latency_ns: u64,
    quotes: Vec<Quote>,
    exch_ms: Vec<u64>,
    pending: VecDeque<Pending>,
    resting: Vec<NewOrder>,
    max_resting: usize,
    next_trade_id: u64,
    out_buf: Vec<OrderEvent>,
    /// Per venue (indexed by `VenueId`): what this gateway did, for the report's `venues`.
    counters: Vec<VenueCounters>,
}

impl PaperGateway {
    /// A matcher for `registry`'s instruments.
    pub fn new(registry: Arc<Registry>, cfg: &PaperConfig) -> Self {
        let n = registry.len();
        Self {
            latency_ns: cfg.latency_us * 1_000,
            quotes: vec![Quote::default(); n],
            exch_ms: vec![0; n],
            pending: VecDeque::with_capacity(cfg.max_resting * 2),
            resting: Vec::with_capacity(cfg.max_resting),
            max_resting: cfg.max_resting,
            next_trade_id: 0,
            out_buf: Vec::with_capacity(cfg.max_resting * 2),
            counters: (0..registry.venues().len())
                .map(|v| VenueCounters { venue: VenueId(v as u8), gateway: "paper", ..VenueCounters::default() })
                .collect(),
            registry,
        }
    }

    /// What this simulated venue holds open, for reconciliation after a restart
    /// ([`crate::journal::reconcile`]): resting orders and orders still in flight to it. It keeps
    /// no positions and no fill history, so those are not reported.
    pub fn venue_state(&self) -> crate::journal::VenueState {
        let order = |o: &NewOrder| crate::journal::VenueOrder {
            client_id: o.client_id,
            instrument: o.instrument,
            venue: o.venue,
            open_qty: o.qty,
        };
        let in_flight = self.pending.iter().filter(|p| !p.cancel).map(|p| order(&p.order));
        crate::journal::VenueState {
            open_orders: self.resting.iter().map(order).chain(in_flight).collect(),
            fills: Vec::new(),
            positions: None,
        }
    }

    fn event(&self, order: &NewOrder, now_ns: u64, kind: OrderEventKind) -> OrderEvent {
        OrderEvent {
            client_id: order.client_id,
            instrument: order.instrument,
            side: order.side,
            exch_ts_ms: self.exch_ms[order.instrument.index()],
            recv_ns: now_ns,
            kind,
        }
    }

    fn fill(&mut self, order: &NewOrder, px: crate::fixed::Px, qty: Qty, leaves: Qty, taker: bool) -> Fill {
        let inst = self.registry.get(order.instrument);
        let rate = if taker { inst.taker_fee } else { inst.maker_fee };
        let fee = inst.px(px) * inst.qty(qty) * inst.contract_size * rate;
        self.next_trade_id += 1;
        Fill { px, qty, leaves_qty: leaves, fee: fee.round_dp(12), taker, trade_id: self.next_trade_id }
    }

    /// Matches a new order against the latest quote: takes what crosses, then rests (GTC) or
    /// expires (IOC) the rest.
    fn arrive(&mut self, order: NewOrder, now_ns: u64) {
        let q = self.quotes[order.instrument.index()];
        let (touch_px, touch_qty) = match order.side {
            Side::Buy => (q.ask_px, q.ask_qty),
            Side::Sell => (q.bid_px, q.bid_qty),
        };
        let crosses = touch_px.0 > 0
            && match order.side {
                Side::Buy => touch_px <= order.px,
                Side::Sell => touch_px >= order.px,
            };
        if order.tif == TimeInForce::Gtc && !crosses && self.resting.len() >= self.max_resting {
            let ev = self.event(&order, now_ns, OrderEventKind::Rejected(RejectReason::RateLimited));
            self.out_buf.push(ev);
            return;
        }
        let ack = self.event(&order, now_ns, OrderEventKind::Accepted);
        self.out_buf.push(ack);
        let mut leaves = order.qty;
        if crosses {
            let take = Qty(order.qty.0.min(touch_qty.0));
            leaves = Qty(order.qty.0 - take.0);
            let f = self.fill(&order, touch_px, take, leaves, true);
            let ev = self.event(&order, now_ns, OrderEventKind::Filled(f));
            self.out_buf.push(ev);
        }
        if leaves.0 > 0 {
            match order.tif {
                TimeInForce::Ioc => {
                    let ev = self.event(&order, now_ns, OrderEventKind::Expired);
                    self.out_buf.push(ev);
                }
                TimeInForce::Gtc => self.resting.push(NewOrder { qty: leaves, ..order }),
            }
        }
    }

    fn cancel(&mut self, id: ClientOrderId, now_ns: u64) {
        if let Some(i) = self.resting.iter().position(|o| o.client_id == id) {
            let o = self.resting.swap_remove(i);
            let ev = self.event(&o, now_ns, OrderEventKind::Cancelled);
            self.out_buf.push(ev);
        }
    }

    /// Fills resting orders that the new quote crosses, at their own price, as maker.
    fn cross_resting(&mut self, instrument: crate::instrument::InstrumentId, now_ns: u64) {
        let q = self.quotes[instrument.index()];
        let mut i = 0;
        while i < self.resting.len() {
            let o = self.resting[i];
            let crossed = o.instrument == instrument
                && match o.side {
                    Side::Buy => q.ask_px.0 > 0 && q.ask_px <= o.px,
                    Side::Sell => q.bid_px.0 > 0 && q.bid_px >= o.px,
                };
            if crossed {
                self.resting.swap_remove(i);
                let f = self.fill(&o, o.px, o.qty, Qty(0), false);
                let ev = self.event(&o, now_ns, OrderEventKind::Filled(f));
                self.out_buf.push(ev);
            } else {
                i += 1;
            }
        }
    }
}

impl Gateway for PaperGateway {
    fn name(&self) -> &'static str {
        "paper"
    }

    fn on_market(&mut self, ev: &MarketEvent) {
        if let MarketBody::Quote(q) = ev.body {
            let i = ev.instrument.index();
            if i < self.quotes.len() {
                self.quotes[i] = q;
                if ev.exch_ts_ms != 0 {
                    self.exch_ms[i] = ev.exch_ts_ms;
                }
                if !self.resting.is_empty() {
                    self.cross_resting(ev.instrument, ev.recv_ns);
                }
            }
        }
    }

    fn send(&mut self, cmd: &OrderCommand, now_ns: u64) -> Result<(), GatewayError> {
        let p = match *cmd {
            OrderCommand::New { order, .. } => Pending { due_ns: now_ns + self.latency_ns, order, cancel: false },
            // Book resyncs are the I/O thread's business, never a gateway's.
            OrderCommand::Resync { .. } => return Err(GatewayError::NotServed),
            OrderCommand::Cancel { client_id, instrument, venue } => {
                let order = NewOrder {
                    client_id,
                    instrument,
                    venue,
                    side: Side::Buy,
                    px: crate::fixed::Px(0),
                    qty: Qty(0),
                    tif: TimeInForce::Gtc,
                    reduce_only: false,
                };
                Pending { due_ns: now_ns + self.latency_ns, order, cancel: true }
            }
        };
        if self.registry.instruments().get(p.order.instrument.index()).is_none() {
            return Err(GatewayError::NotServed);
        }
        if self.pending.len() == self.pending.capacity() {
            return Err(GatewayError::QueueFull);
        }
        if let Some(c) = self.counters.get_mut(p.order.venue.index()) {
            if p.cancel {
                c.cancels_sent += 1;
            } else {
                c.orders_sent += 1;
            }
        }
        self.pending.push_back(p);
        Ok(())
    }

    fn next_due_ns(&self) -> Option<u64> {
        self.pending.front().map(|p| p.due_ns)
    }

    fn poll(&mut self, now_ns: u64, out: &mut dyn FnMut(OrderEvent)) {
        while let Some(p) = self.pending.front().copied() {
            if p.due_ns > now_ns {
                break;
            }
            self.pending.pop_front();
            if p.cancel {
                self.cancel(p.order.client_id, now_ns);
            } else {
                self.arrive(p.order, now_ns);
            }
        }
        for ev in self.out_buf.drain(..) {
            let venue = self.registry.get(ev.instrument).venue;
            if let Some(c) = self.counters.get_mut(venue.index()) {
                match ev.kind {
                    OrderEventKind::Accepted => c.acks += 1,
                    OrderEventKind::Filled(_) => c.fills += 1,
                    OrderEventKind::Rejected(_) => c.rejects += 1,
                    _ => {}
                }
            }
            out(ev);
        }
    }

    /// One row per venue of the registry, gateway `paper`: orders and cancels it took, and the
    /// acks, fills and rejects it answered with.
    fn venue_counters(&self, out: &mut Vec<VenueCounters>) {
        out.extend_from_slice(&self.counters);
    }
}
