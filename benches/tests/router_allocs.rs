//! Proves routing allocates nothing after warm-up: a strategy intent planned across three venue
//! depth books, children through risk and the OMS, partial fills and expiries re-routed, order
//! ends purged, counted by a global allocator.

use std::sync::Arc;

use crossbar_engine::core::Core;
use crossbar_engine::event::{
    BookUpdateKind, Fill, Level, MarketBody, MarketEvent, OrderCommand, OrderEvent, OrderEventKind, Quote, SeqIds,
    Side, Trade, TradeId,
};
use crossbar_engine::fixed::{Px, Qty};
use crossbar_engine::instrument::{InstrumentConfig, InstrumentId, InstrumentKind, Registry};
use crossbar_engine::orderbook::{SyncRule, for_each_chunk};
use crossbar_engine::risk::RiskConfig;
use crossbar_engine::router::{RouteIntent, Urgency};
use crossbar_engine::strategy::{Ctx, Strategy};

mod support;

use support::allocs_on_this_thread;

/// Routes a 1.5 BTC buy on every public trade.
struct Router;

impl Strategy for Router {
    fn name(&self) -> &str {
        "router"
    }
    fn on_market(&mut self, ev: &MarketEvent, ctx: &mut Ctx<'_>) {
        if let MarketBody::Trade(t) = ev.body {
            ctx.route(RouteIntent {
                instrument: ev.instrument,
                side: Side::Buy,
                qty: Qty(1_500),
                limit_px: t.px,
                urgency: Urgency::Normal,
                tag: 1,
            });
        }
    }
    fn on_order(&mut self, _: &OrderEvent, _: u32, _: &mut Ctx<'_>) {}
}

fn perp(venue: &str, fee: &str) -> InstrumentConfig {
    InstrumentConfig {
        venue: venue.into(),
        symbol: "BTCUSDT".into(),
        kind: InstrumentKind::Perpetual,
        base: "BTC".into(),
        quote: "USDT".into(),
        tick: "0.1".parse().unwrap(),
        lot: "0.001".parse().unwrap(),
        contract_size: "1".parse().unwrap(),
        taker_fee: fee.parse().unwrap(),
        maker_fee: "0".parse().unwrap(),
    }
}

#[test]
fn zero_heap_allocations_per_routed_intent_after_warm_up() {
    let registry = Registry::new(
        &["a".into(), "b".into(), "c".into()],
        &[perp("a", "0.0005"), perp("b", "0.0002"), perp("c", "0.0010")],
    )
    .unwrap();
    let mut core = Core::new(
        Arc::new(registry),
        vec![Router],
        RiskConfig { venue_orders_per_s: 1_000_000, venue_order_burst: 1_000_000, ..RiskConfig::default() },
    )
    .with_depth_books(&[Some(SyncRule::Bybit); 3], 50);
    let mut cmds: Vec<OrderCommand> = Vec::with_capacity(256);
    let mut open: Vec<OrderCommand> = Vec::with_capacity(256);
    let mut t = 1_000u64;
    let mut seq = 0u64;
    let mut trade_id = 0u64;
    let mut children = 0u64;
    let mut round = |core: &mut Core<Router>, cmds: &mut Vec<OrderCommand>, open: &mut Vec<OrderCommand>| {
        seq += 1;
        for (i, off) in [-190i64, 0, -520].into_iter().enumerate() {
            t += 1_000;
            let id = InstrumentId(i as u32);
            let mut levels = [(Side::Buy, Level { px: Px(649_000), qty: Qty(1_000) }); 6];
            for (k, l) in levels.iter_mut().enumerate().skip(1) {
                *l = (Side::Sell, Level { px: Px(650_000 + off + 2 * k as i64), qty: Qty(200) });
            }
            for_each_chunk(BookUpdateKind::Snapshot, &levels, |chunk| {
                let ev = MarketEvent {
                    instrument: id,
                    exch_ts_ms: 0,
                    recv_ns: t,
                    decoded_ns: t,
                    seq: SeqIds { last: seq, ..SeqIds::default() },
                    body: MarketBody::Book(chunk),
                };
                core.on_market(&ev, t, t, &mut |c| cmds.push(c));
            });
            let q = Quote { bid_px: Px(649_000), bid_qty: Qty(1_000), ask_px: Px(650_002 + off), ask_qty: Qty(200) };
            let ev = MarketEvent {
                instrument: id,
                exch_ts_ms: 0,
                recv_ns: t,
                decoded_ns: t,
                seq: SeqIds { last: seq, ..SeqIds::default() },
                body: MarketBody::Quote(q),
            };
            core.on_market(&ev, t, t, &mut |c| cmds.push(c));
        }
        t += 1_000;
        let trade = Trade { px: Px(651_000), qty: Qty(1), aggressor: Side::Buy, trade_id: TradeId::from_u64(seq) };
        let ev = MarketEvent {
            instrument: InstrumentId(0),
            exch_ts_ms: 0,
            recv_ns: t,
            decoded_ns: t,
            seq: SeqIds::default(),
            body: MarketBody::Trade(trade),
        };
        core.on_market(&ev, t, t, &mut |c| cmds.push(c));
        // Answer every child: half fills and the rest expires, so the rest is routed again,
        // until the retries are spent.
        while !cmds.is_empty() {
            std::mem::swap(cmds, open);
            for c in open.drain(..) {
                let OrderCommand::New { order, .. } = c else { continue };
                children += 1;
                t += 1_000;
                let half = (order.qty.0 / 2).max(1);
                trade_id += 1;
                let fill = Fill {
                    px: order.px,
                    qty: Qty(half),
                    leaves_qty: Qty(order.qty.0 - half),
                    fee: "0".parse().unwrap(),
                    taker: true,
                    trade_id,
                };
                let mk = |kind| OrderEvent {
                    client_id: order.client_id,
                    instrument: order.instrument,
                    side: order.side,
                    exch_ts_ms: 0,
                    recv_ns: t,
                    kind,
                };
                core.on_order(&mk(OrderEventKind::Accepted), t, &mut |c| cmds.push(c));
                core.on_order(&mk(OrderEventKind::Filled(fill)), t, &mut |c| cmds.push(c));
                if half < order.qty.0 {
                    core.on_order(&mk(OrderEventKind::Expired), t, &mut |c| cmds.push(c));
                }
            }
        }
        core.on_timer(t, &mut |c| cmds.push(c));
        cmds.clear();
    };
    for _ in 0..3 {
        round(&mut core, &mut cmds, &mut open);
    }
    let before = allocs_on_this_thread();
    for _ in 0..20 {
        round(&mut core, &mut cmds, &mut open);
    }
    let allocs = allocs_on_this_thread() - before;
    let probe = std::hint::black_box(vec![0u8; 16]);
    assert!(allocs_on_this_thread() > before + allocs, "allocator probe not counted");
    drop(probe);
    let r = *core.router().counters();
    assert_eq!(r.intents, 23, "one routed intent per round");
    assert!(r.reroutes >= 23 && r.children > 3 * 23, "re-routes exercised: {r:?}");
    assert_eq!(core.router().active(), 0);
    assert_eq!(allocs, 0, "{allocs} heap allocations over 20 routed intents ({r:?})");
}
