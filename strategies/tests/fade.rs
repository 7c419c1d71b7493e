//! The worked example of `docs/writing-a-strategy.md`, through the real core (risk, OMS,
//! portfolio): a clip exactly at the trigger and not one tick below it, the clip limit, the
//! reverse clip, and a refusal that frees the strategy to try again.

use std::sync::Arc;

use crossbar_engine::core::Core;
use crossbar_engine::event::{
    Fill, MarketBody, MarketEvent, NewOrder, OrderCommand, OrderEvent, OrderEventKind, Quote, SeqIds, Side, TimeInForce,
};
use crossbar_engine::fixed::{Px, Qty};
use crossbar_engine::instrument::{InstrumentConfig, InstrumentId, InstrumentKind, Registry};
use crossbar_engine::risk::RiskConfig;
use crossbar_strategies::fade::FadeStrategy;
use crossbar_strategies::{AnyStrategy, StrategyConfig};
use rust_decimal::Decimal;

const PERP: InstrumentId = InstrumentId(0);

/// A BTC perpetual with tick 0.1 (price mantissa = price × 10) and lot 0.001 (qty × 1000); a
/// 0.01 clip is `Qty(10)`. Trigger 10 bps, average halving the gap per quote, one clip each way.
fn core(risk: RiskConfig) -> Core<AnyStrategy> {
    let registry = Registry::new(
        &["usdm".into()],
        &[InstrumentConfig {
            venue: "usdm".into(),
            symbol: "BTCUSDT".into(),
            kind: InstrumentKind::Perpetual,
            base: "BTC".into(),
            quote: "USDT".into(),
            tick: "0.1".parse().unwrap(),
            lot: "0.001".parse().unwrap(),
            contract_size: Decimal::ONE,
            taker_fee: "0.0004".parse().unwrap(),
            maker_fee: "0.0002".parse().unwrap(),
        }],
    )
    .unwrap();
    let toml = r#"
        kind = "fade"
        name = "fade-btc"
        instrument = { venue = "usdm", symbol = "BTCUSDT" }
        qty = "0.01"
        trigger_bps = 10
        max_clips = 1
        ema_shift = 1
    "#;
    let StrategyConfig::Fade(cfg) = toml::from_str::<StrategyConfig>(toml).unwrap() else {
        panic!("not a fade config")
    };
    let strategy = AnyStrategy::Fade(FadeStrategy::new(&cfg, &registry).unwrap());
    Core::new(Arc::new(registry), vec![strategy], risk)
}

fn quote(core: &mut Core<AnyStrategy>, bid: i64, ask: i64, now: u64) -> Vec<NewOrder> {
    let ev = MarketEvent {
        instrument: PERP,
        exch_ts_ms: 0,
        recv_ns: now,
        decoded_ns: now,
        seq: SeqIds::default(),
        body: MarketBody::Quote(Quote { bid_px: Px(bid), bid_qty: Qty(5_000), ask_px: Px(ask), ask_qty: Qty(5_000) }),
    };
    let mut out = Vec::new();
    core.on_market(&ev, now, now, &mut |c| out.push(c));
    out.iter()
        .map(|c| match c {
            OrderCommand::New { order, .. } => *order,
            other => panic!("unexpected command {other:?}"),
        })
        .collect()
}

fn fill(core: &mut Core<AnyStrategy>, o: &NewOrder, now: u64) {
    let ev = |kind| OrderEvent {
        client_id: o.client_id,
        instrument: o.instrument,
        side: o.side,
        exch_ts_ms: 0,
        recv_ns: now,
        kind,
    };
    let f = Fill { px: o.px, qty: o.qty, leaves_qty: Qty(0), fee: Decimal::ZERO, taker: true, trade_id: o.client_id.0 };
    core.on_order(&ev(OrderEventKind::Accepted), now, &mut |_| {});
    core.on_order(&ev(OrderEventKind::Filled(f)), now, &mut |_| {});
}

fn fade(core: &Core<AnyStrategy>) -> &FadeStrategy {
    match &core.strategies()[0] {
        AnyStrategy::Fade(f) => f,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_clip_exactly_at_the_trigger_and_not_one_tick_below() {
    // First mid 1_000_001 (100000.1) seeds the average.
    let mut below = core(RiskConfig::default());
    assert!(quote(&mut below, 1_000_000, 1_000_002, 1_000).is_empty());
    // Mid 1_001_001: (1000 × 10_000) / 1_000_001 = 9.99 bps → 9 whole bps: no clip.
    assert!(quote(&mut below, 1_001_000, 1_001_002, 2_000).is_empty());
    assert_eq!(fade(&below).average(), Px(1_000_501), "the average moved half the gap");

    let mut at = core(RiskConfig::default());
    assert!(quote(&mut at, 1_000_000, 1_000_002, 1_000).is_empty());
    // Mid 1_001_101: 1100 × 10_000 / 1_000_001 = 10.99 → 10 bps: sell one clip IOC at the bid.
    let sent = quote(&mut at, 1_001_100, 1_001_102, 2_000);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].instrument, sent[0].side, sent[0].px, sent[0].qty, sent[0].tif),
        (PERP, Side::Sell, Px(1_001_100), Qty(10), TimeInForce::Ioc)
    );
    assert_eq!(fade(&at).average(), Px(1_000_551));
    // While it works, nothing more goes out even on a bigger spike.
    assert!(quote(&mut at, 1_003_000, 1_003_002, 3_000).is_empty());
    fill(&mut at, &sent[0], 4_000);
    assert_eq!(fade(&at).position, -10);
    assert_eq!(at.portfolio().get(PERP).qty, Decimal::new(-1, 2), "the core's books agree: -0.01 BTC");
    // Short one clip = the limit: a further spike up sends nothing.
    assert!(quote(&mut at, 1_005_000, 1_005_002, 5_000).is_empty());
    // A drop well below the average buys one clip back at the ask.
    let back = quote(&mut at, 990_000, 990_002, 6_000);
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].side, back[0].px, back[0].qty), (Side::Buy, Px(990_002), Qty(10)));
    fill(&mut at, &back[0], 7_000);
    assert_eq!(fade(&at).position, 0);
    assert_eq!(fade(&at).clips, 2);
}

#[test]
fn a_refused_clip_frees_the_strategy_to_try_again() {
    // Risk allows at most 0.005 BTC per order: every 0.01 clip is refused with a reason.
    let mut c = core(RiskConfig { max_order_qty: Decimal::new(5, 3), ..RiskConfig::default() });
    assert!(quote(&mut c, 1_000_000, 1_000_002, 1_000).is_empty());
    assert!(quote(&mut c, 1_001_100, 1_001_102, 2_000).is_empty());
    assert_eq!((fade(&c).clips, fade(&c).refused), (1, 1));
    // Not stuck "working": the next trigger tries again (and is refused again).
    assert!(quote(&mut c, 1_003_100, 1_003_102, 3_000).is_empty());
    assert_eq!((fade(&c).clips, fade(&c).refused), (2, 2));
    assert_eq!(c.oms().counters().sent, 0);
}
