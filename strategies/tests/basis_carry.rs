//! The basis strategy's net edge with depth and funding, funding accrual, and the unhedged
//! bound in time, each with hand-computed numbers through the real core.
//!
//! Instruments: BTCUSDT spot (tick 0.01, lot 0.00001) and perpetual (tick 0.1, lot 0.001), both
//! 4 bps taker; clip 0.01 BTC; entry 2 bps net; exit 1 bp.

use std::sync::Arc;

use crossbar_engine::core::Core;
use crossbar_engine::event::{
    BookUpdateKind, Fill, Funding, Level, MarketBody, MarketEvent, NewOrder, OrderCommand, OrderEvent, OrderEventKind,
    Quote, SeqIds, Side,
};
use crossbar_engine::fixed::{Px, Qty, Rate};
use crossbar_engine::instrument::{InstrumentConfig, InstrumentId, InstrumentKind, Registry};
use crossbar_engine::orderbook::{SyncRule, for_each_chunk};
use crossbar_engine::risk::RiskConfig;
use crossbar_engine::strategy::StrategyId;
use crossbar_strategies::basis::LegRef;
use crossbar_strategies::{AnyStrategy, BasisConfig, BasisStrategy};
use rust_decimal::Decimal;

const SPOT: InstrumentId = InstrumentId(0);
const PERP: InstrumentId = InstrumentId(1);
const HOUR_MS: u64 = 3_600_000;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn core(horizon_ms: u64, depth: bool) -> Core<AnyStrategy> {
    let inst = |venue: &str, kind, tick: &str, lot: &str| InstrumentConfig {
        venue: venue.into(),
        symbol: "BTCUSDT".into(),
        kind,
        base: "BTC".into(),
        quote: "USDT".into(),
        tick: d(tick),
        lot: d(lot),
        contract_size: Decimal::ONE,
        taker_fee: d("0.0004"),
        maker_fee: d("0.0002"),
    };
    // Spot on one venue, the perpetual on another: the cross-venue configuration.
    let registry = Registry::new(
        &["spot-venue".into(), "perp-venue".into()],
        &[
            inst("spot-venue", InstrumentKind::Spot, "0.01", "0.00001"),
            inst("perp-venue", InstrumentKind::Perpetual, "0.1", "0.001"),
        ],
    )
    .unwrap();
    let cfg = BasisConfig {
        name: "basis".into(),
        spot: LegRef { venue: "spot-venue".into(), symbol: "BTCUSDT".into() },
        perp: LegRef { venue: "perp-venue".into(), symbol: "BTCUSDT".into() },
        qty: d("0.01"),
        entry_bps: d("2"),
        exit_bps: d("1"),
        max_clips: 2,
        cooldown_ms: 0,
        hedge_slippage_bps: d("5"),
        horizon_ms,
        funding_interval_ms: 8 * HOUR_MS,
        max_unhedged_ms: 500,
        max_unhedged_qty: Decimal::ZERO,
        exit_on_negative_funding: true,
    };
    let strategy = AnyStrategy::Basis(BasisStrategy::new(&cfg, &registry).unwrap());
    let c = Core::new(Arc::new(registry), vec![strategy], RiskConfig::default());
    if depth { c.with_depth_books(&[Some(SyncRule::Bybit), Some(SyncRule::Bybit)], 50) } else { c }
}

fn run(c: &mut Core<AnyStrategy>, ev: MarketEvent) -> Vec<NewOrder> {
    let mut out = Vec::new();
    c.on_market(&ev, ev.recv_ns, ev.recv_ns, &mut |cmd| out.push(cmd));
    orders(&out)
}

fn orders(cmds: &[OrderCommand]) -> Vec<NewOrder> {
    cmds.iter()
        .map(|c| match c {
            OrderCommand::New { order, .. } => *order,
            other => panic!("unexpected command {other:?}"),
        })
        .collect()
}

fn ev(id: InstrumentId, seq: u64, exch_ms: u64, t: u64, body: MarketBody) -> MarketEvent {
    MarketEvent {
        instrument: id,
        exch_ts_ms: exch_ms,
        recv_ns: t,
        decoded_ns: t,
        seq: SeqIds { last: seq, ..SeqIds::default() },
        body,
    }
}

fn quote(
    c: &mut Core<AnyStrategy>,
    id: InstrumentId,
    seq: u64,
    bid: (i64, i64),
    ask: (i64, i64),
    t: u64,
) -> Vec<NewOrder> {
    let q = Quote { bid_px: Px(bid.0), bid_qty: Qty(bid.1), ask_px: Px(ask.0), ask_qty: Qty(ask.1) };
    run(c, ev(id, seq, 0, t, MarketBody::Quote(q)))
}

/// A snapshot of the book (bids and asks best first), then its top as a quote.
fn snapshot(
    c: &mut Core<AnyStrategy>,
    id: InstrumentId,
    seq: u64,
    bids: &[(i64, i64)],
    asks: &[(i64, i64)],
    t: u64,
) -> Vec<NewOrder> {
    let mut levels: Vec<(Side, Level)> =
        bids.iter().map(|&(px, q)| (Side::Buy, Level { px: Px(px), qty: Qty(q) })).collect();
    levels.extend(asks.iter().map(|&(px, q)| (Side::Sell, Level { px: Px(px), qty: Qty(q) })));
    let mut out = Vec::new();
    for_each_chunk(BookUpdateKind::Snapshot, &levels, |chunk| {
        let e = ev(id, seq, 0, t, MarketBody::Book(chunk));
        c.on_market(&e, t, t, &mut |cmd| out.push(cmd));
    });
    assert!(orders(&out).is_empty());
    quote(c, id, seq, bids[0], asks[0], t)
}

fn funding(c: &mut Core<AnyStrategy>, exch_ms: u64, next_ms: u64, rate: i64, mark: i64, t: u64) -> Vec<NewOrder> {
    let f = Funding { mark_px: Px(mark), index_px: Px(0), rate: Rate(rate), next_funding_ms: next_ms };
    run(c, ev(PERP, 0, exch_ms, t, MarketBody::Funding(f)))
}

fn answer(c: &mut Core<AnyStrategy>, o: &NewOrder, kind: OrderEventKind, t: u64) -> Vec<NewOrder> {
    let e =
        OrderEvent { client_id: o.client_id, instrument: o.instrument, side: o.side, exch_ts_ms: 0, recv_ns: t, kind };
    let mut out = Vec::new();
    c.on_order(&e, t, &mut |cmd| out.push(cmd));
    orders(&out)
}

fn filled(o: &NewOrder, trade_id: u64) -> OrderEventKind {
    OrderEventKind::Filled(Fill { px: o.px, qty: o.qty, leaves_qty: Qty(0), fee: Decimal::ZERO, taker: true, trade_id })
}

/// Rate 0.0001 (1 bp) at [`Rate`]'s 16 decimal places.
const ONE_BP: i64 = 1_000_000_000_000;

/// A mark price at the reference scale (10 places) from a whole number of USDT.
fn mark(usdt: i64) -> i64 {
    usdt * 10_000_000_000
}

#[test]
fn entry_edge_walks_the_depth_adds_funding_and_is_decided_at_its_threshold() {
    // Spot asks 49999.00 × 0.005 then 50001.00 × 0.01: a 0.01 clip walks to an average of
    // 50000.00 (the touch alone would say 49999.00). Perp bids 50040.1 × 0.005 then P2 × 0.01:
    // the clip's sale averages (50040.1 + P2) / 2. Funding 1 bp, next settlement in 1 h, horizon
    // 10 h, interval 8 h: settlements at 1 h and 9 h, +2 bps. Net edge = basis − 8 bps fees + 2 bps;
    // entry at ≥ 2 bps means basis ≥ 8 bps: average perp ≥ 50040.00, so P2 ≥ 50039.9.
    let mut c = core(10 * HOUR_MS, true);
    let t0 = 1_700_000_000_000;
    assert!(funding(&mut c, t0, t0 + HOUR_MS, ONE_BP, mark(50_040), 1_000).is_empty());
    assert!(
        snapshot(&mut c, SPOT, 1, &[(4_999_800, 1_000)], &[(4_999_900, 500), (5_000_100, 1_000)], 2_000).is_empty()
    );
    // P2 = 50039.8: average 50039.95, basis 7.99 bps, net 1.99 bps: no entry, although the touch
    // basis (50040.1 over 49999.00) is 8.22 bps.
    let none = snapshot(&mut c, PERP, 1, &[(500_401, 5), (500_398, 10)], &[(500_402, 10)], 3_000);
    assert!(none.is_empty(), "{none:?}");
    // One tick up, P2 = 50039.9: average 50040.00, basis exactly 8 bps, net exactly 2 bps: enter,
    // selling the clip down to the worst level walked.
    let entry = snapshot(&mut c, PERP, 2, &[(500_401, 5), (500_399, 10)], &[(500_402, 10)], 4_000);
    let got: Vec<_> = entry.iter().map(|o| (o.instrument, o.side, o.qty, o.px)).collect();
    assert_eq!(got, vec![(PERP, Side::Sell, Qty(10), Px(500_399))]);
}

#[test]
fn without_the_funding_term_the_same_books_do_not_enter() {
    let mut c = core(0, true);
    let t0 = 1_700_000_000_000;
    funding(&mut c, t0, t0 + HOUR_MS, ONE_BP, mark(50_040), 1_000);
    snapshot(&mut c, SPOT, 1, &[(4_999_800, 1_000)], &[(4_999_900, 500), (5_000_100, 1_000)], 2_000);
    // Net 0 bps < 2 bps. Even 0.4 higher on both levels (basis 8.08 bps): still no.
    assert!(snapshot(&mut c, PERP, 2, &[(500_401, 5), (500_399, 10)], &[(500_402, 10)], 4_000).is_empty());
    assert!(snapshot(&mut c, PERP, 3, &[(500_405, 5), (500_403, 10)], &[(500_406, 10)], 5_000).is_empty());
}

/// Enters one clip on touch prices (no depth books): perp sold at 50060.0, spot bought at
/// 50000.00 + 5 bps allowance. Returns the core at t = 4000 ns, hedged.
fn hedged() -> Core<AnyStrategy> {
    let mut c = core(0, false);
    quote(&mut c, SPOT, 1, (4_999_999, 100_000), (5_000_000, 100_000), 1_000);
    let entry = quote(&mut c, PERP, 1, (500_600, 100), (500_601, 100), 2_000);
    assert_eq!(entry.len(), 1);
    let hedge = answer(&mut c, &entry[0], filled(&entry[0], 1), 3_000);
    assert_eq!(hedge.len(), 1);
    assert!(answer(&mut c, &hedge[0], filled(&hedge[0], 2), 4_000).is_empty());
    c
}

#[test]
fn funding_accrues_at_two_funding_times_with_the_rate_and_mark_in_force() {
    let mut c = hedged();
    assert_eq!(c.portfolio().get(PERP).qty, d("-0.01"));
    let t0 = 1_700_000_000_000;
    // The first funding update only announces the next settlement: nothing is paid.
    funding(&mut c, t0, t0 + 8 * HOUR_MS, ONE_BP, mark(50_050), 5_000);
    assert_eq!(c.portfolio().get(PERP).funding, Decimal::ZERO);
    // The venue moves its next funding time on: the previous settlement happened at 1 bp on the
    // mark then in force, 50050. The short receives 0.01 × 50050 × 0.0001 = 0.05005.
    funding(&mut c, t0 + 8 * HOUR_MS, t0 + 16 * HOUR_MS, ONE_BP * 3 / 2, mark(50_100), 6_000);
    assert_eq!(c.portfolio().get(PERP).funding, d("0.05005"));
    // Second settlement: 1.5 bps on 50100: 0.01 × 50100 × 0.00015 = 0.07515; 0.1252 in total.
    // The new rate is negative: funding has turned against the short.
    funding(&mut c, t0 + 16 * HOUR_MS, t0 + 24 * HOUR_MS, -ONE_BP / 2, mark(50_000), 7_000);
    assert_eq!(c.portfolio().get(PERP).funding, d("0.12520"));
    assert_eq!(c.portfolio().get_for(StrategyId(0), PERP).funding, d("0.12520"));
    assert_eq!(c.portfolio().get(SPOT).funding, Decimal::ZERO, "spot never pays funding");
    assert_eq!(c.counters().funding_settlements, 2);
    let totals = c.portfolio().strategy_totals(StrategyId(0), c.registry(), c.books());
    assert_eq!(totals.funding, d("0.12520"));
    // The basis is still wide (12 bps over spot), but a negative rate makes the strategy unwind:
    // the perp is bought back first, reduce-only.
    let exit = quote(&mut c, PERP, 2, (500_600, 100), (500_601, 100), 8_000);
    let got: Vec<_> = exit.iter().map(|o| (o.instrument, o.side, o.qty, o.px, o.reduce_only)).collect();
    assert_eq!(got, vec![(PERP, Side::Buy, Qty(10), Px(500_601), true)]);
}

#[test]
fn a_hedge_that_hangs_is_flattened_exactly_at_the_time_bound() {
    let mut c = core(0, false);
    quote(&mut c, SPOT, 1, (4_999_999, 100_000), (5_000_000, 100_000), 1_000);
    let entry = quote(&mut c, PERP, 1, (500_600, 100), (500_601, 100), 2_000);
    // The perp fills at t = 3000 ns: 0.01 short, unhedged from then. The spot hedge is acked
    // but the venue says nothing more.
    let hedge = answer(&mut c, &entry[0], filled(&entry[0], 1), 3_000);
    assert_eq!(hedge.len(), 1);
    assert!(answer(&mut c, &hedge[0], OrderEventKind::Accepted, 3_500).is_empty());
    let bound = 500 * 1_000_000;
    let mut out = Vec::new();
    c.on_timer(3_000 + bound - 1, &mut |cmd| out.push(cmd));
    assert!(out.is_empty(), "inside the bound the working hedge gets its chance");
    // Quotes inside the bound do not trade either (no new entry while unhedged).
    assert!(quote(&mut c, PERP, 2, (500_600, 100), (500_601, 100), 3_000 + bound - 1).is_empty());
    c.on_timer(3_000 + bound, &mut |cmd| out.push(cmd));
    let repair = orders(&out);
    let got: Vec<_> = repair.iter().map(|o| (o.instrument, o.side, o.qty, o.px, o.reduce_only)).collect();
    assert_eq!(got, vec![(PERP, Side::Buy, Qty(10), Px(500_601), true)], "buy the perp back at the ask");
    // The hedge finally expires unfilled: no second flattening while the first is working.
    assert!(answer(&mut c, &hedge[0], OrderEventKind::Expired, 3_000 + bound + 10).is_empty());
    assert!(answer(&mut c, &repair[0], filled(&repair[0], 3), 3_000 + bound + 20).is_empty());
    assert!(c.portfolio().get(PERP).qty.is_zero());
    assert!(c.portfolio().get(SPOT).qty.is_zero());
    // Sold at 50060.0 and bought back at 50060.1: −0.001 realized.
    assert_eq!(c.portfolio().get(PERP).realized, d("-0.001"));
}
