//! [`VenueGateway`]: the order sessions of one I/O thread behind the engine's `Gateway` trait.
//!
//! Commands are routed to the session of their venue by a table indexed by `VenueId` (no
//! search, no allocation). The sessions' sockets are registered with the gateway's own epoll
//! instance, whose descriptor the I/O thread watches beside its feeds: a private frame wakes a
//! parked I/O thread like a market frame does.

use std::os::fd::AsRawFd as _;
use std::time::Duration;

use crossbar_engine::event::{OrderCommand, OrderEvent};
use crossbar_engine::gateway::{Gateway, GatewayError, VenueCounters};
use crossbar_engine::paper::PaperGateway;
use mio::{Events, Poll, Token};

use super::OrderSession;

/// Every venue session of one I/O thread, as one gateway.
pub struct VenueGateway {
    sessions: Vec<Box<dyn OrderSession>>,
    /// `VenueId` index → index into `sessions`.
    by_venue: Vec<Option<usize>>,
    poll: Poll,
    events: Events,
    /// Every session reads on the next `poll` (set by upkeep).
    sweep: bool,
}

impl std::fmt::Debug for VenueGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.sessions.iter().map(|s| (s.venue(), s.gateway_name())).collect();
        f.debug_struct("VenueGateway").field("sessions", &names).finish_non_exhaustive()
    }
}

impl VenueGateway {
    /// A gateway over `sessions` (one per venue).
    ///
    /// # Errors
    /// When the OS refuses an epoll instance.
    pub fn new(sessions: Vec<Box<dyn OrderSession>>) -> std::io::Result<Self> {
        let venues = sessions.iter().map(|s| s.venue().index() + 1).max().unwrap_or(0);
        let mut by_venue = vec![None; venues];
        for (i, s) in sessions.iter().enumerate() {
            by_venue[s.venue().index()] = Some(i);
        }
        Ok(Self { sessions, by_venue, poll: Poll::new()?, events: Events::with_capacity(64), sweep: true })
    }

    /// Connects and logs every session in, waiting up to `timeout` for all to be ready: the run
    /// starts trading only when its orders can leave. Returns how many sessions are ready.
    pub fn connect_all(&mut self, timeout: Duration) -> usize {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let now = crossbar_engine::clock::now_ns();
            self.maintain(now);
            self.poll(now, &mut |_| {});
            let ready = self.sessions.iter().filter(|s| s.ready()).count();
            if ready == self.sessions.len() || std::time::Instant::now() >= deadline {
                return ready;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The (venue, protocol name) of every session that is not ready now: what a failed
    /// [`VenueGateway::connect_all`] reports.
    pub fn not_ready(&self) -> Vec<(crossbar_engine::instrument::VenueId, &'static str)> {
        self.sessions.iter().filter(|s| !s.ready()).map(|s| (s.venue(), s.gateway_name())).collect()
    }

    /// The sessions, for start-up reconciliation (`venue_state`).
    pub fn sessions_mut(&mut self) -> &mut [Box<dyn OrderSession>] {
        &mut self.sessions
    }
}

impl Gateway for VenueGateway {
    fn name(&self) -> &'static str {
        match self.sessions.first() {
            Some(s) if self.sessions.iter().all(|o| o.gateway_name() == s.gateway_name()) => s.gateway_name(),
            _ => "venues",
        }
    }

    fn send(&mut self, cmd: &OrderCommand, now_ns: u64) -> Result<(), GatewayError> {
        let venue = match cmd {
            OrderCommand::New { order, .. } => order.venue,
            OrderCommand::Cancel { venue, .. } => *venue,
            OrderCommand::Resync { .. } => return Err(GatewayError::NotServed),
        };
        let idx = self.by_venue.get(venue.index()).copied().flatten().ok_or(GatewayError::NotServed)?;
        self.sessions[idx].send(cmd, now_ns)
    }

    fn poll(&mut self, now_ns: u64, out: &mut dyn FnMut(OrderEvent)) {
        // Only sessions whose sockets turned readable read (each until it would block): a read
        // attempt costs a syscall per socket, and the I/O loop calls this on every turn. After
        // upkeep every session reads once, which catches bytes that came with a handshake and
        // raised no edge of their own.
        let _ = self.poll.poll(&mut self.events, Some(Duration::ZERO));
        if std::mem::take(&mut self.sweep) {
            for s in &mut self.sessions {
                s.poll(now_ns, out);
            }
            return;
        }
        for ev in &self.events {
            if let Some(s) = self.sessions.get_mut(ev.token().0) {
                s.poll(now_ns, out);
            }
        }
    }

    fn readiness_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(self.poll.as_raw_fd())
    }

    fn maintain(&mut self, now_ns: u64) {
        let registry = self.poll.registry();
        for (i, s) in self.sessions.iter_mut().enumerate() {
            s.maintain(now_ns, registry, Token(i));
        }
        self.sweep = true;
    }

    fn venue_counters(&self, out: &mut Vec<VenueCounters>) {
        for s in &self.sessions {
            out.push(VenueCounters { venue: s.venue(), gateway: s.gateway_name(), ..s.stats() });
        }
    }
}

/// The gateway of a run: venues whose orders go over their own protocol ([`VenueGateway`]),
/// venues on the in-process paper matcher ([`PaperGateway`]), or a mix, routed per venue by a
/// table indexed by `VenueId` (no search, no allocation per order).
#[derive(Debug)]
pub struct RunGateway {
    paper: Option<PaperGateway>,
    venues: Option<VenueGateway>,
    /// `VenueId` index → true when that venue's orders go to the paper matcher.
    to_paper: Vec<bool>,
}

impl RunGateway {
    /// Routes every venue whose index is `true` in `paper_venues` to `paper`, every other to
    /// `venues`. Either may be `None` when no venue uses it.
    pub fn new(paper: Option<PaperGateway>, venues: Option<VenueGateway>, paper_venues: Vec<bool>) -> Self {
        Self { paper, venues, to_paper: paper_venues }
    }

    /// The venue sessions, for connecting and start-up reconciliation.
    pub fn venue_gateway(&mut self) -> Option<&mut VenueGateway> {
        self.venues.as_mut()
    }

    /// The paper matcher, for start-up reconciliation.
    pub fn paper_gateway(&self) -> Option<&PaperGateway> {
        self.paper.as_ref()
    }

    fn is_paper(&self, venue: crossbar_engine::instrument::VenueId) -> bool {
        self.to_paper.get(venue.index()).copied().unwrap_or(false)
    }
}

impl Gateway for RunGateway {
    fn name(&self) -> &'static str {
        match (&self.paper, &self.venues) {
            (Some(p), None) => p.name(),
            (None, Some(v)) => v.name(),
            (Some(_), Some(_)) => "mixed",
            (None, None) => "none",
        }
    }

    fn on_market(&mut self, ev: &crossbar_engine::event::MarketEvent) {
        if let Some(p) = &mut self.paper {
            p.on_market(ev);
        }
    }

    fn send(&mut self, cmd: &OrderCommand, now_ns: u64) -> Result<(), GatewayError> {
        let venue = match cmd {
            OrderCommand::New { order, .. } => order.venue,
            OrderCommand::Cancel { venue, .. } => *venue,
            OrderCommand::Resync { .. } => return Err(GatewayError::NotServed),
        };
        let target: Option<&mut dyn Gateway> = if self.is_paper(venue) {
            self.paper.as_mut().map(|p| p as &mut dyn Gateway)
        } else {
            self.venues.as_mut().map(|v| v as &mut dyn Gateway)
        };
        target.ok_or(GatewayError::NotServed)?.send(cmd, now_ns)
    }

    fn next_due_ns(&self) -> Option<u64> {
        self.paper.as_ref().and_then(Gateway::next_due_ns)
    }

    fn poll(&mut self, now_ns: u64, out: &mut dyn FnMut(OrderEvent)) {
        if let Some(p) = &mut self.paper {
            p.poll(now_ns, out);
        }
        if let Some(v) = &mut self.venues {
            v.poll(now_ns, out);
        }
    }

    fn readiness_fd(&self) -> Option<std::os::fd::RawFd> {
        self.venues.as_ref().and_then(Gateway::readiness_fd)
    }

    fn maintain(&mut self, now_ns: u64) {
        if let Some(v) = &mut self.venues {
            v.maintain(now_ns);
        }
    }

    fn venue_counters(&self, out: &mut Vec<VenueCounters>) {
        if let Some(p) = &self.paper {
            let start = out.len();
            p.venue_counters(out);
            let mut i = start;
            while i < out.len() {
                if self.is_paper(out[i].venue) {
                    i += 1;
                } else {
                    out.remove(i);
                }
            }
        }
        if let Some(v) = &self.venues {
            v.venue_counters(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crossbar_engine::event::{ClientOrderId, NewOrder, OrderEventKind, OrderStamps, Quote, Side, TimeInForce};
    use crossbar_engine::fixed::{Px, Qty};
    use crossbar_engine::instrument::{InstrumentId, VenueId};
    use crossbar_engine::journal::VenueState;
    use crossbar_engine::paper::PaperConfig;

    use super::*;
    use crate::order::OrderError;

    /// A session that records what it was sent and acks it on the next poll.
    struct FakeSession {
        venue: VenueId,
        sent: Vec<ClientOrderId>,
        due: Vec<OrderEvent>,
        maintained: u64,
    }

    impl OrderSession for FakeSession {
        fn gateway_name(&self) -> &'static str {
            "fake-ws"
        }
        fn venue(&self) -> crossbar_engine::instrument::VenueId {
            self.venue
        }
        fn maintain(&mut self, _now_ns: u64, _registry: &mio::Registry, _token: Token) {
            self.maintained += 1;
        }
        fn ready(&self) -> bool {
            true
        }
        fn send(&mut self, cmd: &OrderCommand, now_ns: u64) -> Result<(), GatewayError> {
            let OrderCommand::New { order, .. } = cmd else { return Err(GatewayError::NotServed) };
            self.sent.push(order.client_id);
            self.due.push(OrderEvent {
                client_id: order.client_id,
                instrument: order.instrument,
                side: order.side,
                exch_ts_ms: 0,
                recv_ns: now_ns,
                kind: OrderEventKind::Accepted,
            });
            Ok(())
        }
        fn poll(&mut self, _now_ns: u64, out: &mut dyn FnMut(OrderEvent)) {
            for ev in self.due.drain(..) {
                out(ev);
            }
        }
        fn stats(&self) -> crate::order::SessionStats {
            crate::order::SessionStats { orders_sent: self.sent.len() as u64, connects: 1, ..Default::default() }
        }
        fn venue_state(&mut self, _timeout: Duration) -> Result<VenueState, OrderError> {
            Ok(VenueState { open_orders: Vec::new(), fills: Vec::new(), positions: None })
        }
    }

    fn new_order(id: u64, instrument: u32, venue: u8) -> OrderCommand {
        OrderCommand::New {
            order: NewOrder {
                client_id: ClientOrderId(id),
                instrument: InstrumentId(instrument),
                venue: VenueId(venue),
                side: Side::Buy,
                px: Px(6_500_000),
                qty: Qty(1_000),
                tif: TimeInForce::Ioc,
                reduce_only: false,
            },
            stamps: OrderStamps::default(),
        }
    }

    #[test]
    fn a_mixed_run_routes_each_venue_to_its_gateway_and_reports_each_once() {
        // binance-spot (venue 0) on paper, binance-usdm (venue 1) over its session.
        let registry = Arc::new(crate::sim::tests::registry());
        let paper = PaperGateway::new(Arc::clone(&registry), &PaperConfig { latency_us: 0, max_resting: 8 });
        let session = FakeSession { venue: VenueId(1), sent: Vec::new(), due: Vec::new(), maintained: 0 };
        let venues = VenueGateway::new(vec![Box::new(session)]).unwrap();
        let mut gw = RunGateway::new(Some(paper), Some(venues), vec![true, false]);
        assert_eq!(gw.name(), "mixed");
        assert!(gw.readiness_fd().is_some(), "the sessions' epoll is watched");
        gw.maintain(1);
        // A quote on the spot book so the paper matcher answers.
        gw.on_market(&crossbar_engine::event::MarketEvent {
            instrument: InstrumentId(0),
            exch_ts_ms: 1,
            recv_ns: 1,
            decoded_ns: 1,
            seq: Default::default(),
            body: crossbar_engine::event::MarketBody::Quote(Quote {
                bid_px: Px(6_499_000),
                bid_qty: Qty(500_000),
                ask_px: Px(6_500_000),
                ask_qty: Qty(500_000),
            }),
        });
        gw.send(&new_order(1, 0, 0), 10).unwrap(); // spot → paper
        gw.send(&new_order(2, 1, 1), 10).unwrap(); // usdm → session
        gw.send(&new_order(3, 3, 1), 10).unwrap(); // usdm → session
        assert!(matches!(gw.send(&new_order(4, 0, 7), 10), Err(GatewayError::NotServed)), "unknown venue");
        let mut got = Vec::new();
        gw.poll(1_000_000, &mut |ev| got.push((ev.client_id.0, ev.kind)));
        got.sort_by_key(|(id, _)| *id);
        assert_eq!(
            got.iter().filter(|(_, k)| *k == OrderEventKind::Accepted).map(|(id, _)| *id).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(got.iter().any(|(id, k)| *id == 1 && matches!(k, OrderEventKind::Filled(_))), "{got:?}");
        let mut rows = Vec::new();
        gw.venue_counters(&mut rows);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(
            (rows[0].venue, rows[0].gateway, rows[0].orders_sent, rows[0].acks, rows[0].fills),
            (VenueId(0), "paper", 1, 1, 1)
        );
        assert_eq!(
            (rows[1].venue, rows[1].gateway, rows[1].orders_sent, rows[1].connects),
            (VenueId(1), "fake-ws", 2, 1)
        );
    }

    #[test]
    fn a_venue_only_run_names_its_protocol() {
        let session = FakeSession { venue: VenueId(0), sent: Vec::new(), due: Vec::new(), maintained: 0 };
        let venues = VenueGateway::new(vec![Box::new(session)]).unwrap();
        let mut gw = RunGateway::new(None, Some(venues), vec![false, false]);
        assert_eq!(gw.name(), "fake-ws");
        assert_eq!(gw.venue_gateway().map(|v| v.not_ready().len()), Some(0));
        assert_eq!(gw.next_due_ns(), None);
    }
}
