//! The smart order router through the real core: one buy across three venue books with
//! different taker fees, allocated by marginal effective price (fee included), sent as IOC
//! children; a partial fill and a venue reject re-routed to the venue still offering.

use std::sync::Arc;

use crossbar_engine::core::Core;
use crossbar_engine::event::{
    BookUpdateKind, ClientOrderId, Fill, Level, MarketBody, MarketEvent, NewOrder, OrderCommand, OrderEvent,
    OrderEventKind, Quote, RejectReason, SeqIds, Side, TimeInForce, Trade, TradeId,
};
use crossbar_engine::fixed::{Px, Qty};
use crossbar_engine::instrument::{InstrumentConfig, InstrumentId, InstrumentKind, Registry};
use crossbar_engine::orderbook::{SyncRule, for_each_chunk};
use crossbar_engine::risk::RiskConfig;
use crossbar_engine::router::{RouteIntent, Urgency};
use crossbar_engine::strategy::{Ctx, Strategy};
use rust_decimal::Decimal;

const A: InstrumentId = InstrumentId(0);
const B: InstrumentId = InstrumentId(1);
const C: InstrumentId = InstrumentId(2);

/// Routes a buy when it sees a public trade: quantity and (effective) limit from the trade,
/// urgency from the trade's side (a sell aggressor means `Low`, for the no-retry case).
struct RouteOnTrade;

impl Strategy for RouteOnTrade {
    fn name(&self) -> &str {
        "route-on-trade"
    }
    fn on_market(&mut self, ev: &MarketEvent, ctx: &mut Ctx<'_>) {
        if let MarketBody::Trade(t) = ev.body {
            let urgency = if t.aggressor == Side::Buy { Urgency::Normal } else { Urgency::Low };
            assert!(ctx.route(RouteIntent {
                instrument: ev.instrument,
                side: Side::Buy,
                qty: t.qty,
                limit_px: t.px,
                urgency,
                tag: 42,
            }));
        }
    }
    fn on_order(&mut self, _: &OrderEvent, tag: u32, _: &mut Ctx<'_>) {
        assert_eq!(tag, 42, "children carry the intent's tag");
    }
}

fn core() -> Core<RouteOnTrade> {
    let perp = |venue: &str, fee: &str| InstrumentConfig {
        venue: venue.into(),
        symbol: "BTCUSDT".into(),
        kind: InstrumentKind::Perpetual,
        base: "BTC".into(),
        quote: "USDT".into(),
        tick: "0.1".parse().unwrap(),
        lot: "0.001".parse().unwrap(),
        contract_size: Decimal::ONE,
        taker_fee: fee.parse().unwrap(),
        maker_fee: "0".parse().unwrap(),
    };
    // Taker fees 5, 2 and 10 bps.
    let registry = Registry::new(
        &["a".into(), "b".into(), "c".into()],
        &[perp("a", "0.0005"), perp("b", "0.0002"), perp("c", "0.0010")],
    )
    .unwrap();
    Core::new(Arc::new(registry), vec![RouteOnTrade], RiskConfig::default())
        .with_depth_books(&[Some(SyncRule::Bybit); 3], 50)
}

/// A Bybit-style snapshot of `asks` over one bid at 999.0, and the matching top-of-book quote.
fn book(core: &mut Core<RouteOnTrade>, id: InstrumentId, seq: u64, asks: &[(i64, i64)], t: u64) {
    let mut levels = vec![(Side::Buy, Level { px: Px(9_990), qty: Qty(1_000) })];
    levels.extend(asks.iter().map(|&(px, qty)| (Side::Sell, Level { px: Px(px), qty: Qty(qty) })));
    let mut out = Vec::new();
    for_each_chunk(BookUpdateKind::Snapshot, &levels, |chunk| {
        let ev = MarketEvent {
            instrument: id,
            exch_ts_ms: 0,
            recv_ns: t,
            decoded_ns: t,
            seq: SeqIds { last: seq, ..SeqIds::default() },
            body: MarketBody::Book(chunk),
        };
        core.on_market(&ev, t, t, &mut |c| out.push(c));
    });
    let q = Quote { bid_px: Px(9_990), bid_qty: Qty(1_000), ask_px: Px(asks[0].0), ask_qty: Qty(asks[0].1) };
    let ev = MarketEvent {
        instrument: id,
        exch_ts_ms: 0,
        recv_ns: t,
        decoded_ns: t,
        seq: SeqIds { last: seq, ..SeqIds::default() },
        body: MarketBody::Quote(q),
    };
    core.on_market(&ev, t, t, &mut |c| out.push(c));
    assert!(out.is_empty(), "{out:?}");
}

fn trigger(core: &mut Core<RouteOnTrade>, qty: i64, limit: i64, urgency_normal: bool, t: u64) -> Vec<NewOrder> {
    let trade = Trade {
        px: Px(limit),
        qty: Qty(qty),
        aggressor: if urgency_normal { Side::Buy } else { Side::Sell },
        trade_id: TradeId::from_u64(1),
    };
    let ev = MarketEvent {
        instrument: A,
        exch_ts_ms: 0,
        recv_ns: t,
        decoded_ns: t,
        seq: SeqIds::default(),
        body: MarketBody::Trade(trade),
    };
    let mut out = Vec::new();
    core.on_market(&ev, t, t, &mut |c| out.push(c));
    new_orders(&out)
}

fn new_orders(cmds: &[OrderCommand]) -> Vec<NewOrder> {
    cmds.iter()
        .map(|c| match c {
            OrderCommand::New { order, .. } => *order,
            other => panic!("unexpected command {other:?}"),
        })
        .collect()
}

fn event(core: &mut Core<RouteOnTrade>, o: &NewOrder, kind: OrderEventKind, t: u64) -> Vec<NewOrder> {
    let ev =
        OrderEvent { client_id: o.client_id, instrument: o.instrument, side: o.side, exch_ts_ms: 0, recv_ns: t, kind };
    let mut out = Vec::new();
    core.on_order(&ev, t, &mut |c| out.push(c));
    new_orders(&out)
}

fn fill(o: &NewOrder, qty: i64, trade_id: u64) -> OrderEventKind {
    OrderEventKind::Filled(Fill {
        px: o.px,
        qty: Qty(qty),
        leaves_qty: Qty(o.qty.0 - qty),
        fee: Decimal::ZERO,
        taker: true,
        trade_id,
    })
}

fn three_books(c: &mut Core<RouteOnTrade>) {
    // Asks (price in 0.1, qty in 0.001):
    //   a (5 bps):  1000.0 × 0.5, 1000.5 × 1.0  → effective 1000.5,      1001.00025
    //   b (2 bps):  1000.3 × 0.4, 1000.6 × 1.0  → effective 1000.50006,  1000.80012
    //   c (10 bps):  999.8 × 0.3, 1001.0 × 1.0  → effective 1000.7998,   1002.001
    book(c, A, 1, &[(10_000, 500), (10_005, 1_000)], 1_000);
    book(c, B, 1, &[(10_003, 400), (10_006, 1_000)], 1_000);
    book(c, C, 1, &[(9_998, 300), (10_010, 1_000)], 1_000);
}

#[test]
fn splits_across_three_venues_by_effective_price_and_reroutes_the_rest() {
    let mut c = core();
    three_books(&mut c);
    // Buy 1.5 up to an effective 1000.9: a's 0.5 (1000.5), b's 0.4 (1000.50006), c's 0.3
    // (1000.7998, the lowest raw price but third after its fee), then 0.3 of b's second level
    // (1000.80012). a's second level (1001.00025) is past the limit and not needed.
    let kids = trigger(&mut c, 1_500, 10_009, true, 2_000);
    let got: Vec<_> = kids.iter().map(|o| (o.instrument, o.side, o.qty, o.px, o.tif)).collect();
    assert_eq!(
        got,
        vec![
            (A, Side::Buy, Qty(500), Px(10_000), TimeInForce::Ioc),
            (B, Side::Buy, Qty(700), Px(10_006), TimeInForce::Ioc),
            (C, Side::Buy, Qty(300), Px(9_998), TimeInForce::Ioc),
        ]
    );
    assert_eq!(
        kids.iter().map(|o| o.client_id).collect::<Vec<_>>(),
        [1, 2, 3].map(|n| ClientOrderId(n << ClientOrderId::STRATEGY_BITS)),
        "strategy 0's first three orders"
    );
    assert_eq!(c.router().counters().children, 3);

    // a fills; b fills 0.4 and its rest expires; c rejects. The books move: a's first level is
    // gone, b still shows 1.0 at 1000.6.
    assert!(event(&mut c, &kids[0], fill(&kids[0], 500, 1), 3_000).is_empty());
    book(&mut c, A, 2, &[(10_005, 1_000)], 3_100);
    book(&mut c, B, 2, &[(10_006, 1_000)], 3_100);
    assert!(event(&mut c, &kids[1], fill(&kids[1], 400, 2), 3_200).is_empty());
    assert!(event(&mut c, &kids[1], OrderEventKind::Expired, 3_300).is_empty());
    // The last child ends: 0.3 (b) + 0.3 (c) = 0.6 unfilled is routed again. c rejected and is
    // excluded (its 999.8 would otherwise be taken); a's 1001.00025 is past the limit; b's
    // 1000.6 takes it all.
    let again = event(&mut c, &kids[2], OrderEventKind::Rejected(RejectReason::InsufficientBalance), 3_400);
    let got: Vec<_> = again.iter().map(|o| (o.instrument, o.qty, o.px)).collect();
    assert_eq!(got, vec![(B, Qty(600), Px(10_006))]);
    assert_eq!(c.router().counters().reroutes, 1);
    assert_eq!(c.router().active(), 1);
    assert!(event(&mut c, &again[0], fill(&again[0], 600, 3), 3_500).is_empty());
    assert_eq!(c.router().active(), 0);
    let r = c.router().counters();
    assert_eq!((r.intents, r.children, r.reroutes, r.unfilled, r.dropped), (1, 4, 1, 0, 0));
    assert_eq!(c.portfolio().get(B).qty, "1.0".parse::<Decimal>().unwrap());
    assert_eq!(c.portfolio().get(A).qty, "0.5".parse::<Decimal>().unwrap());
    assert!(c.portfolio().get(C).qty.is_zero());
}

#[test]
fn stops_at_the_limit_and_skips_a_venue_whose_book_is_not_whole() {
    let mut c = core();
    three_books(&mut c);
    // Effective limit 1000.7: a's 0.5 and b's 0.4 only; c's 1000.7998 is past it. Low urgency:
    // the 0.6 not allocated is not chased.
    let kids = trigger(&mut c, 1_500, 10_007, false, 2_000);
    let got: Vec<_> = kids.iter().map(|o| (o.instrument, o.qty, o.px)).collect();
    assert_eq!(got, vec![(A, Qty(500), Px(10_000)), (B, Qty(400), Px(10_003))]);

    // b's feed reports a gap: its book is not whole and the router skips it.
    let gap = MarketEvent {
        instrument: B,
        exch_ts_ms: 0,
        recv_ns: 2_500,
        decoded_ns: 2_500,
        seq: SeqIds::default(),
        body: MarketBody::Status(crossbar_engine::event::FeedStatus::Gap),
    };
    c.on_market(&gap, 2_500, 2_500, &mut |_| {});
    let skipped_before = c.router().counters().venues_skipped;
    let kids = trigger(&mut c, 1_000, 10_009, false, 3_000);
    let got: Vec<_> = kids.iter().map(|o| (o.instrument, o.qty, o.px)).collect();
    // a: 0.5 at 1000.0, then c 0.3 at 999.8, then a's... 1000.5 level is 1001.00025: past the
    // limit; so 0.8 of 1.0 is allocated.
    assert_eq!(got, vec![(A, Qty(500), Px(10_000)), (C, Qty(300), Px(9_998))]);
    assert_eq!(c.router().counters().venues_skipped, skipped_before + 1);
}
