//! The basis strategy through the real core: entry decided exactly at its threshold, not one
//! tick below; exit on convergence; a leg that does not fill is repaired.

use std::sync::Arc;

use crossbar_engine::core::Core;
use crossbar_engine::event::{
    ClientOrderId, FeedStatus, Fill, MarketBody, MarketEvent, NewOrder, OrderCommand, OrderEvent, OrderEventKind,
    Quote, SeqIds, Side,
};
use crossbar_engine::fixed::{Px, Qty};
use crossbar_engine::instrument::{InstrumentConfig, InstrumentId, InstrumentKind, Registry};
use crossbar_engine::risk::RiskConfig;
use crossbar_strategies::basis::LegRef;
use crossbar_strategies::{AnyStrategy, BasisConfig, BasisStrategy};
use rust_decimal::Decimal;

const SPOT: InstrumentId = InstrumentId(0);
const PERP: InstrumentId = InstrumentId(1);

fn core() -> Core<AnyStrategy> {
    let inst = |venue: &str, kind, tick: &str, lot: &str| InstrumentConfig {
        venue: venue.into(),
        symbol: "BTCUSDT".into(),
        kind,
        base: "BTC".into(),
        quote: "USDT".into(),
        tick: tick.parse().unwrap(),
        lot: lot.parse().unwrap(),
        contract_size: Decimal::ONE,
        taker_fee: "0.0004".parse().unwrap(),
        maker_fee: "0.0002".parse().unwrap(),
    };
    let registry = Registry::new(
        &["spot".into(), "usdm".into()],
        &[
            inst("spot", InstrumentKind::Spot, "0.01", "0.00001"),
            inst("usdm", InstrumentKind::Perpetual, "0.1", "0.001"),
        ],
    )
    .unwrap();
    let cfg = BasisConfig {
        name: "basis".into(),
        spot: LegRef { venue: "spot".into(), symbol: "BTCUSDT".into() },
        perp: LegRef { venue: "usdm".into(), symbol: "BTCUSDT".into() },
        qty: "0.01".parse().unwrap(),
        entry_bps: "2".parse().unwrap(),
        exit_bps: "1".parse().unwrap(),
        max_clips: 2,
        cooldown_ms: 0,
        hedge_slippage_bps: "5".parse().unwrap(),
        horizon_ms: 0,
        funding_interval_ms: 8 * 3_600_000,
        max_unhedged_ms: 500,
        max_unhedged_qty: Decimal::ZERO,
        exit_on_negative_funding: true,
    };
    let strategy = AnyStrategy::Basis(BasisStrategy::new(&cfg, &registry).unwrap());
    Core::new(Arc::new(registry), vec![strategy], RiskConfig::default())
}

fn quote(core: &mut Core<AnyStrategy>, id: InstrumentId, seq: u64, bid: i64, ask: i64, now: u64) -> Vec<OrderCommand> {
    let ev = MarketEvent {
        instrument: id,
        exch_ts_ms: 0,
        recv_ns: now,
        decoded_ns: now,
        seq: SeqIds { last: seq, ..SeqIds::default() },
        body: MarketBody::Quote(Quote {
            bid_px: Px(bid),
            bid_qty: Qty(100_000),
            ask_px: Px(ask),
            ask_qty: Qty(100_000),
        }),
    };
    let mut out = Vec::new();
    core.on_market(&ev, now, now, &mut |c| out.push(c));
    out
}

fn new_orders(cmds: &[OrderCommand]) -> Vec<NewOrder> {
    cmds.iter()
        .map(|c| match c {
            OrderCommand::New { order, .. } => *order,
            other => panic!("unexpected command {other:?}"),
        })
        .collect()
}

fn answer(core: &mut Core<AnyStrategy>, o: &NewOrder, filled: i64, now: u64) -> Vec<OrderCommand> {
    let mut out = Vec::new();
    let ev = |kind| OrderEvent {
        client_id: o.client_id,
        instrument: o.instrument,
        side: o.side,
        exch_ts_ms: 0,
        recv_ns: now,
        kind,
    };
    core.on_order(&ev(OrderEventKind::Accepted), now, &mut |c| out.push(c));
    if filled > 0 {
        let fill = Fill {
            px: o.px,
            qty: Qty(filled),
            leaves_qty: Qty(o.qty.0 - filled),
            fee: Decimal::ZERO,
            taker: true,
            trade_id: o.client_id.0,
        };
        core.on_order(&ev(OrderEventKind::Filled(fill)), now, &mut |c| out.push(c));
    }
    if filled < o.qty.0 {
        core.on_order(&ev(OrderEventKind::Expired), now, &mut |c| out.push(c));
    }
    out
}

#[test]
fn entry_exactly_at_threshold_and_not_one_tick_below() {
    // Fees 4 + 4 bps, entry 2 bps net: perp bid must be ≥ 10 bps over the spot ask.
    // Spot ask 50000.00 → perp bid 50050.0 is exactly 10 bps; 50049.9 is 9.98 bps.
    let mut c = core();
    assert!(quote(&mut c, SPOT, 1, 4_999_999, 5_000_000, 1_000).is_empty());
    assert!(quote(&mut c, PERP, 1, 500_499, 500_500, 2_000).is_empty(), "one tick below the threshold must not enter");
    let orders = new_orders(&quote(&mut c, PERP, 2, 500_500, 500_501, 3_000));
    assert_eq!(orders.len(), 1, "the perp leg goes first: {orders:?}");
    let perp = orders[0];
    assert_eq!((perp.instrument, perp.side, perp.px, perp.qty), (PERP, Side::Sell, Px(500_500), Qty(10)));
    assert_eq!(perp.client_id, ClientOrderId(1 << ClientOrderId::STRATEGY_BITS), "strategy 0's first order");
    // Its fill sends the spot hedge at once: same base quantity, ask + 5 bps allowance.
    let hedge = new_orders(&answer(&mut c, &perp, 10, 4_000));
    assert_eq!(hedge.len(), 1, "{hedge:?}");
    assert_eq!(
        (hedge[0].instrument, hedge[0].side, hedge[0].px, hedge[0].qty),
        (SPOT, Side::Buy, Px(5_002_500), Qty(1_000))
    );
}

#[test]
fn a_failed_hedge_is_flattened_and_a_converged_basis_unwinds() {
    let mut c = core();
    quote(&mut c, SPOT, 1, 4_999_999, 5_000_000, 1_000);
    let entry = new_orders(&quote(&mut c, PERP, 1, 500_600, 500_601, 2_000));
    assert_eq!(entry.len(), 1);
    let hedge = new_orders(&answer(&mut c, &entry[0], 10, 3_000));
    // The hedge does not fill: the strategy is short 0.01 perp unhedged, and with nothing else
    // working the residual is flattened at once on the over-filled leg (buy the perp back),
    // reduce-only, in the same callback.
    let repair = new_orders(&answer(&mut c, &hedge[0], 0, 3_000));
    assert_eq!(c.portfolio().get(PERP).qty, "-0.01".parse::<Decimal>().unwrap());
    assert_eq!(repair.len(), 1, "{repair:?}");
    assert_eq!(
        (repair[0].instrument, repair[0].side, repair[0].qty, repair[0].reduce_only),
        (PERP, Side::Buy, Qty(10), true)
    );
    assert_eq!(repair[0].px, Px(500_601));
    answer(&mut c, &repair[0], 10, 5_000);
    assert!(c.portfolio().get(PERP).qty.is_zero());

    // A full entry, then the basis converges to ≤ 1 bp: the perp is bought back first, and its
    // fill sells the spot, both reduce-only.
    let entry = new_orders(&quote(&mut c, PERP, 2, 500_600, 500_601, 6_000));
    let hedge = new_orders(&answer(&mut c, &entry[0], 10, 7_000));
    answer(&mut c, &hedge[0], 1_000, 7_000);
    assert_eq!(c.portfolio().get(SPOT).qty, "0.01".parse::<Decimal>().unwrap());
    assert!(quote(&mut c, PERP, 3, 500_050, 500_051, 8_000).is_empty(), "1.02 bps is above the exit threshold");
    let exit = new_orders(&quote(&mut c, PERP, 4, 500_048, 500_049, 9_000));
    assert_eq!(exit.len(), 1, "{exit:?}");
    assert_eq!((exit[0].instrument, exit[0].side, exit[0].reduce_only), (PERP, Side::Buy, true));
    let unwind = new_orders(&answer(&mut c, &exit[0], 10, 10_000));
    assert_eq!(unwind.len(), 1);
    // Sell no lower than bid − 5 bps: 49999.99 − 24.99 (the allowance floors) = 49975.00.
    assert_eq!(
        (unwind[0].instrument, unwind[0].side, unwind[0].reduce_only, unwind[0].px),
        (SPOT, Side::Sell, true, Px(4_997_500))
    );
}

#[test]
fn a_book_that_is_not_whole_is_not_traded() {
    let mut c = core();
    quote(&mut c, SPOT, 1, 4_999_999, 5_000_000, 1_000);
    let gap = MarketEvent {
        instrument: PERP,
        exch_ts_ms: 0,
        recv_ns: 1_500,
        decoded_ns: 1_500,
        seq: SeqIds::default(),
        body: MarketBody::Status(FeedStatus::Gap),
    };
    c.on_market(&gap, 1_500, 1_500, &mut |_| panic!("no orders on a gap"));
    assert!(quote(&mut c, PERP, 1, 500_600, 500_601, 2_000).is_empty());
}
