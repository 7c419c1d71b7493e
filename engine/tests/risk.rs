//! Every pre-trade refusal reason, each provoked exactly at its limit (one step inside passes),
//! counted once; and the kill switch cancelling what rests and halting new risk.

use std::sync::Arc;

use crossbar_engine::book::Books;
use crossbar_engine::core::Core;
use crossbar_engine::event::{
    ClientOrderId, Fill, MarketBody, MarketEvent, OrderCommand, OrderEvent, Quote, SeqIds, Side, TimeInForce,
};
use crossbar_engine::fixed::{Px, Qty};
use crossbar_engine::instrument::{InstrumentConfig, InstrumentId, InstrumentKind, Registry};
use crossbar_engine::oms::OrderState;
use crossbar_engine::portfolio::Portfolio;
use crossbar_engine::risk::{Refusal, Risk, RiskConfig, RiskInputs};
use crossbar_engine::strategy::{Ctx, Intent, Strategy, StrategyId};
use rust_decimal::Decimal;

const SPOT: InstrumentId = InstrumentId(0);
const PERP: InstrumentId = InstrumentId(1);
const ETH: InstrumentId = InstrumentId(2);

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn registry() -> Registry {
    let inst = |venue: &str, sym: &str, base: &str, kind| InstrumentConfig {
        venue: venue.into(),
        symbol: sym.into(),
        kind,
        base: base.into(),
        quote: "USDT".into(),
        tick: d("0.1"),
        lot: d("0.001"),
        contract_size: Decimal::ONE,
        taker_fee: d("0.0004"),
        maker_fee: d("0.0002"),
    };
    Registry::new(
        &["spot".into(), "perp".into()],
        &[
            inst("spot", "BTCUSDT", "BTC", InstrumentKind::Spot),
            inst("perp", "BTCUSDT", "BTC", InstrumentKind::Perpetual),
            inst("spot", "ETHUSDT", "ETH", InstrumentKind::Spot),
        ],
    )
    .unwrap()
}

fn limits() -> RiskConfig {
    RiskConfig {
        max_order_notional: d("5000"),
        max_position_notional: d("8000"),
        price_collar_bps: 50,
        max_open_orders: 2,
        stale_after_ms: 1_000,
        max_order_qty: d("6"),
        max_net_delta: d("7"),
        venue_orders_per_s: 1,
        venue_order_burst: 2,
        max_drawdown: d("100"),
    }
}

/// BTC spot and perp quoted 1000.0 / 1000.1 at t = 1000 ns; ETH never quoted.
fn books() -> Books {
    let mut b = Books::new(3);
    for id in [SPOT, PERP] {
        b.apply(&MarketEvent {
            instrument: id,
            exch_ts_ms: 0,
            recv_ns: 1_000,
            decoded_ns: 1_000,
            seq: SeqIds::default(),
            body: MarketBody::Quote(Quote {
                bid_px: Px(10_000),
                bid_qty: Qty(10_000),
                ask_px: Px(10_001),
                ask_qty: Qty(10_000),
            }),
        });
    }
    b
}

fn buy(instrument: InstrumentId, qty: i64, px: i64) -> Intent {
    Intent {
        instrument,
        side: Side::Buy,
        qty: Qty(qty),
        limit_px: Px(px),
        tif: TimeInForce::Ioc,
        reduce_only: false,
        tag: 0,
    }
}

fn fill(qty: i64) -> Fill {
    Fill { px: Px(10_000), qty: Qty(qty), leaves_qty: Qty(0), fee: Decimal::ZERO, taker: true, trade_id: 1 }
}

#[test]
fn every_refusal_reason_at_its_limit() {
    let reg = registry();
    let books = books();
    let flat = Portfolio::new(3, 1);
    // Long 4 spot and 3 perp: net BTC delta 7, exactly the limit.
    let mut long = Portfolio::new(3, 1);
    long.apply_fill(&reg, StrategyId(0), SPOT, Side::Buy, &fill(4_000));
    long.apply_fill(&reg, StrategyId(0), PERP, Side::Buy, &fill(3_000));
    let base =
        RiskInputs { registry: &reg, books: &books, portfolio: &flat, open_orders: 0, halted: false, now_ns: 2_000 };
    let on_long = RiskInputs { portfolio: &long, ..base };
    let one = buy(SPOT, 1_000, 10_001);

    // Each case: a fresh checker, the refused intent, and the neighbour that passes.
    let cases: Vec<(Refusal, Intent, RiskInputs<'_>, Intent, RiskInputs<'_>)> = vec![
        (Refusal::InvalidOrder, buy(SPOT, 0, 10_001), base, one, base),
        // A zero price is invalid.
        (Refusal::InvalidOrder, buy(SPOT, 1_000, 0), base, one, base),
        (
            Refusal::NotReducing,
            Intent { reduce_only: true, ..one },
            base,
            Intent { side: Side::Sell, reduce_only: true, ..one },
            on_long,
        ),
        (
            Refusal::Halted,
            one,
            RiskInputs { halted: true, ..base },
            Intent { side: Side::Sell, ..one },
            RiskInputs { halted: true, ..on_long },
        ),
        (Refusal::BookNotTradable, buy(ETH, 1_000, 10_001), base, one, base),
        // Stale: more than 1000 ms after the last quote at 1000 ns; exactly 1000 ms is fresh.
        (
            Refusal::StaleData,
            one,
            RiskInputs { now_ns: 1_000_001_001, ..base },
            one,
            RiskInputs { now_ns: 1_000_001_000, ..base },
        ),
        (Refusal::OpenOrders, one, RiskInputs { open_orders: 2, ..base }, one, RiskInputs { open_orders: 1, ..base }),
        // 6.001 BTC > 6; 6.000 would breach the notional instead, so the neighbour is 4.999.
        (Refusal::OrderQty, buy(SPOT, 6_001, 10_001), base, buy(SPOT, 4_999, 10_001), base),
        // 5.000 × 1000.1 = 5000.5 > 5000; 4.999 × 1000.1 = 4999.4999.
        (Refusal::OrderNotional, buy(SPOT, 5_000, 10_001), base, buy(SPOT, 4_999, 10_001), base),
        // Long 4: buying 4 more at 1000.1 is 8 × 1000.1 = 8000.8 > 8000 (checked before delta).
        (
            Refusal::PositionLimit,
            buy(SPOT, 4_000, 10_001),
            on_long,
            Intent { side: Side::Sell, ..buy(SPOT, 4_000, 10_001) },
            on_long,
        ),
        // Net delta 7 (4 spot + 3 perp): one more perp lot makes 7.001 > 7; selling spot passes.
        (
            Refusal::NetDelta,
            buy(PERP, 1, 10_001),
            on_long,
            Intent { side: Side::Sell, ..buy(PERP, 1, 10_001) },
            on_long,
        ),
        // Mid 1000.0 (floor of 1000.05 at the tick); collar 50 bps = 5.0: 1005.1 is past it, 1005.0 is not.
        (Refusal::PriceCollar, buy(SPOT, 1_000, 10_051), base, buy(SPOT, 1_000, 10_050), base),
    ];
    for (i, (reason, bad, bad_in, good, good_in)) in cases.into_iter().enumerate() {
        let mut r = Risk::new(limits());
        assert_eq!(r.check(&bad, &bad_in), Err(reason), "case {i}");
        assert_eq!(r.check(&good, &good_in), Ok(()), "case {i}: the neighbour passes");
        assert_eq!(r.refused(reason), 1, "case {i}");
        assert_eq!(r.refusals().map(|(_, n)| n).sum::<u64>(), 1, "case {i}: counted once, under its reason");
    }

    // Rate: a burst of 2 per venue, refilled at 1 order/s. The third order within the same
    // instant is refused; the other venue is unaffected; one second later one more passes.
    let mut r = Risk::new(RiskConfig { stale_after_ms: 60_000, ..limits() });
    assert_eq!(r.check(&one, &base), Ok(()));
    assert_eq!(r.check(&one, &base), Ok(()));
    assert_eq!(r.check(&one, &base), Err(Refusal::RateLimit));
    assert!(!r.venue_has_token(&reg, SPOT, 2_000));
    assert_eq!(r.check(&buy(PERP, 1_000, 10_001), &base), Ok(()));
    let later = RiskInputs { now_ns: 999_999_999 + 2_000, ..base };
    assert_eq!(r.check(&one, &later), Err(Refusal::RateLimit), "one ns short of a token");
    let later = RiskInputs { now_ns: 1_000_000_000 + 2_000, ..base };
    assert_eq!(r.check(&one, &later), Ok(()));
    assert_eq!(r.refused(Refusal::RateLimit), 2);

    // Drawdown: peak +50, then −49.99 is a drawdown of 99.99 (fine); −50 is 100: tripped, and
    // from then on only reducing orders pass.
    let mut r = Risk::new(limits());
    assert!(!r.on_pnl(d("50")));
    assert!(!r.on_pnl(d("-49.99")));
    assert_eq!(r.check(&one, &base), Ok(()));
    assert!(r.on_pnl(d("-50")));
    assert!(r.breaker_tripped());
    assert_eq!(r.drawdown(), d("100"));
    assert_eq!(r.check(&one, &base), Err(Refusal::Drawdown));
    assert_eq!(r.check(&Intent { side: Side::Sell, ..one }, &on_long), Ok(()));
    assert_eq!(r.refused(Refusal::Drawdown), 1);

    assert_eq!(Refusal::ALL.len(), 13);
}

/// Rests one GTC bid per quote.
struct Bidder;

impl Strategy for Bidder {
    fn name(&self) -> &str {
        "bidder"
    }
    fn on_market(&mut self, ev: &MarketEvent, ctx: &mut Ctx<'_>) {
        if let MarketBody::Quote(q) = ev.body {
            ctx.submit(Intent { tif: TimeInForce::Gtc, ..buy(ev.instrument, 1_000, q.bid_px.0) });
        }
    }
    fn on_order(&mut self, _: &OrderEvent, _: u32, _: &mut Ctx<'_>) {}
}

#[test]
fn kill_switch_cancels_resting_orders_and_halts() {
    let mut c = Core::new(Arc::new(registry()), vec![Bidder], RiskConfig::default());
    let quote = |t: u64| MarketEvent {
        instrument: SPOT,
        exch_ts_ms: 0,
        recv_ns: t,
        decoded_ns: t,
        seq: SeqIds::default(),
        body: MarketBody::Quote(Quote { bid_px: Px(10_000), bid_qty: Qty(1), ask_px: Px(10_001), ask_qty: Qty(1) }),
    };
    let mut out = Vec::new();
    c.on_market(&quote(1_000), 1_000, 1_000, &mut |cmd| out.push(cmd));
    c.on_market(&quote(2_000), 2_000, 2_000, &mut |cmd| out.push(cmd));
    assert_eq!(out.len(), 2);
    assert_eq!(c.oms().open_count(), 2);
    out.clear();
    c.kill(&mut |cmd| out.push(cmd));
    let mut cancelled: Vec<u64> = out
        .iter()
        .map(|cmd| match cmd {
            OrderCommand::Cancel { client_id, .. } => client_id.0,
            other => panic!("{other:?}"),
        })
        .collect();
    cancelled.sort_unstable();
    assert_eq!(
        cancelled,
        [1 << ClientOrderId::STRATEGY_BITS, 2 << ClientOrderId::STRATEGY_BITS],
        "strategy 0's two orders"
    );
    assert!(c.oms().open_orders().all(|o| o.state == OrderState::CancelPending));
    assert_eq!(c.oms().counters().cancels_sent, 2);
    out.clear();
    c.on_market(&quote(3_000), 3_000, 3_000, &mut |cmd| out.push(cmd));
    assert!(out.is_empty(), "halted: no new orders");
    assert_eq!(c.risk().refused(Refusal::Halted), 1);
    assert!(c.halted());
}
