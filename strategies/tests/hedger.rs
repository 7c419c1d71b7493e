//! The delta-neutral hedger through the real core, with exact numbers: a short call and an LP
//! share of a Uniswap V2 pool (valued on its pending-adjusted reserves), hedged with a
//! perpetual back inside the band; a partial hedge is continued at once.

use std::sync::Arc;

use crossbar_engine::core::Core;
use crossbar_engine::event::{
    Amount128, Fill, MarketBody, MarketEvent, NewOrder, OrderCommand, OrderEvent, OrderEventKind, PendingSwap,
    PoolReserves, PoolState, Quote, SeqIds, Side,
};
use crossbar_engine::fixed::{Px, Qty};
use crossbar_engine::instrument::{InstrumentConfig, InstrumentId, InstrumentKind, Registry};
use crossbar_engine::pool::PoolSpec;
use crossbar_engine::risk::RiskConfig;
use crossbar_engine::strategy::Strategy;
use crossbar_strategies::basis::LegRef;
use crossbar_strategies::hedger::{BandKind, HedgerConfig, LpConfig, OptionConfig, OptionSide};
use crossbar_strategies::models::amm::LpPosition;
use crossbar_strategies::models::black_scholes::{OptionInputs, OptionKind, greeks};
use crossbar_strategies::{AnyStrategy, HedgerStrategy, StrategyConfig};
use rust_decimal::Decimal;

const PERP: InstrumentId = InstrumentId(0);
const POOL: InstrumentId = InstrumentId(1);
const E18: u128 = 1_000_000_000_000_000_000;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn registry() -> Registry {
    let inst = |venue: &str, symbol: &str, kind, tick: &str, lot: &str, fee: &str| InstrumentConfig {
        venue: venue.into(),
        symbol: symbol.into(),
        kind,
        base: "ETH".into(),
        quote: "USDT".into(),
        tick: d(tick),
        lot: d(lot),
        contract_size: Decimal::ONE,
        taker_fee: d(fee),
        maker_fee: Decimal::ZERO,
    };
    Registry::new(
        &["usdm".into(), "ethereum".into()],
        &[
            inst("usdm", "ETHUSDT", InstrumentKind::Perpetual, "0.01", "0.001", "0.0004"),
            inst("ethereum", "WETH-USDC", InstrumentKind::Pool, "0.000001", "0.000000000000000001", "0.003"),
        ],
    )
    .unwrap()
}

fn config(band_kind: BandKind) -> HedgerConfig {
    HedgerConfig {
        name: "hedger".into(),
        underlying: "ETH".into(),
        hedge: LegRef { venue: "usdm".into(), symbol: "ETHUSDT".into() },
        band: d("0.5"),
        band_kind,
        risk_aversion: 1.0,
        rate: 0.0,
        max_clip: d("10"),
        slippage_bps: d("10"),
        // Short 10 calls at the money, a tenth of a year out, 50% vol.
        options: vec![OptionConfig {
            kind: OptionSide::Call,
            strike: d("3200"),
            expiry_days: 36.5,
            qty: d("-10"),
            vol: Some(0.5),
            price: None,
        }],
        lp: vec![LpConfig {
            pool: LegRef { venue: "ethereum".into(), symbol: "WETH-USDC".into() },
            share: 0.01,
            pending: true,
        }],
    }
}

fn core(cfg: &HedgerConfig) -> Core<AnyStrategy> {
    let registry = registry();
    let hedger = HedgerStrategy::new(cfg, &registry).unwrap();
    Core::new(Arc::new(registry), vec![AnyStrategy::Hedger(hedger)], RiskConfig::default())
        .with_pools(&[(POOL, PoolSpec { base_decimals: 18, quote_decimals: 6 })])
}

fn market(core: &mut Core<AnyStrategy>, instrument: InstrumentId, body: MarketBody, now: u64) -> Vec<NewOrder> {
    let ev = MarketEvent { instrument, exch_ts_ms: 0, recv_ns: now, decoded_ns: now, seq: SeqIds::default(), body };
    let mut out = Vec::new();
    core.on_market(&ev, now, now, &mut |c| out.push(c));
    orders(out)
}

fn orders(cmds: Vec<OrderCommand>) -> Vec<NewOrder> {
    cmds.into_iter()
        .map(|c| match c {
            OrderCommand::New { order, .. } => order,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn fill(core: &mut Core<AnyStrategy>, order: &NewOrder, px: i64, now: u64) -> Vec<NewOrder> {
    let ev = OrderEvent {
        client_id: order.client_id,
        instrument: order.instrument,
        side: order.side,
        exch_ts_ms: 0,
        recv_ns: now,
        kind: OrderEventKind::Filled(Fill {
            px: Px(px),
            qty: order.qty,
            leaves_qty: Qty(0),
            fee: Decimal::ZERO,
            taker: true,
            trade_id: now,
        }),
    };
    let mut out = Vec::new();
    core.on_order(&ev, now, &mut |c| out.push(c));
    orders(out)
}

fn reserves(base: u128, quote: u128) -> PoolReserves {
    PoolReserves { base: Amount128::new(base), quote: Amount128::new(quote) }
}

fn hedger(core: &Core<AnyStrategy>) -> &HedgerStrategy {
    match &core.strategies()[0] {
        AnyStrategy::Hedger(h) => h,
        other => panic!("not the hedger: {other:?}"),
    }
}

#[test]
fn hedges_options_and_a_pending_adjusted_lp_back_inside_the_band() {
    let mut core = core(&config(BandKind::Fixed));
    // The pool: 1000 WETH against 3.2M USDC. No perp price yet: nothing to value.
    let state = PoolState { reserves: reserves(1_000 * E18, 3_200_000_000_000), block: 1 };
    assert!(market(&mut core, POOL, MarketBody::PoolState(state), 1_000).is_empty());
    assert_eq!(hedger(&core).skipped, 1);

    // Perp 3199.99 / 3200.01 (mid 3200). Net delta = LP 0.01 × 1000 = 10, plus 10 short calls
    // at N(d1) = N(0.0790569) = 0.53150633: 10 − 5.31506334 = 4.68493666 > 0.5 → sell 4.685.
    let quote = Quote { bid_px: Px(319_999), bid_qty: Qty(100_000), ask_px: Px(320_001), ask_qty: Qty(100_000) };
    let sent = market(&mut core, PERP, MarketBody::Quote(quote), 2_000);
    assert_eq!(hedger(&core).greeks.delta, d("4.68493666"));
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].instrument, sent[0].side, sent[0].qty), (PERP, Side::Sell, Qty(4_685)));
    // Limit 10 bps through the bid: 3199.99 × 0.999 = 3196.79001 → 3196.79.
    assert_eq!(sent[0].px, Px(319_679));

    // While it is in flight a pending swap sells 250 WETH into the pool: the LP now holds 12.5
    // WETH on the pending-adjusted reserves. Nothing more is sent until the hedge is done.
    let swap = PendingSwap {
        reserves: reserves(1_250 * E18, 2_560_000_000_000),
        amount_in: Amount128::new(250 * E18),
        sells_base: true,
        would_revert: false,
    };
    assert!(market(&mut core, POOL, MarketBody::PendingSwap(swap), 3_000).is_empty());
    assert_eq!(hedger(&core).greeks.delta, d("4.68493666"), "not revalued while in flight");

    // The fill: −4.685 + 12.5 − 5.31506334 = 2.49993666, still outside: the hedge goes on.
    let more = fill(&mut core, &sent[0], 319_999, 4_000);
    assert_eq!(hedger(&core).greeks.delta, d("2.49993666"));
    assert_eq!(more.len(), 1);
    assert_eq!((more[0].side, more[0].qty, more[0].px), (Side::Sell, Qty(2_500), Px(319_679)));
    assert_eq!(hedger(&core).hedges, 0);

    // Filled: −7.185 + 12.5 − 5.31506334 = −0.00006334, inside the band: one hedge, two orders.
    assert!(fill(&mut core, &more[0], 319_999, 5_000).is_empty());
    let h = hedger(&core);
    assert_eq!(h.greeks.delta, d("-0.00006334"));
    assert_eq!((h.hedges, h.hedge_orders), (1, 2));
    assert_eq!(h.max_abs_after_hedge, d("0.00006334"));
    assert!(h.max_abs_after_hedge <= h.band);
    assert_eq!(core.portfolio().get(PERP).qty, d("-7.185"));

    // Greeks: the calls' gamma and the LP's (−x/2P at the pending price 2048), vega, theta.
    let call =
        greeks(&OptionInputs { kind: OptionKind::Call, spot: 3200.0, strike: 3200.0, rate: 0.0, vol: 0.5, t: 0.1 });
    let lp = LpPosition { base_reserve: 1250.0, quote_reserve: 2_560_000.0, share: 0.01 };
    assert_eq!(lp.price(), 2048.0);
    assert!((h.greeks.gamma - (-10.0 * call.gamma + lp.gamma_at(2048.0))).abs() < 1e-12);
    assert!((h.greeks.gamma - (-0.007_860_187_625 - 0.003_051_757_812_5)).abs() < 1e-11, "{}", h.greeks.gamma);
    // (3 µs of the option's life passed since the first valuation: relative 1e-9 covers it.)
    assert!((h.greeks.vega + 10.0 * call.vega).abs() < 1e-9 * call.vega, "{} vs {}", h.greeks.vega, call.vega);
    assert!((h.greeks.theta + 10.0 * call.theta).abs() < 1e-9 * call.theta.abs());
}

#[test]
fn the_whalley_wilmott_band_widens_with_gamma_and_cost() {
    let mut cfg = config(BandKind::WhalleyWilmott);
    cfg.band = d("0.01");
    cfg.risk_aversion = 1e-6;
    let mut core = core(&cfg);
    let state = PoolState { reserves: reserves(1_000 * E18, 3_200_000_000_000), block: 1 };
    market(&mut core, POOL, MarketBody::PoolState(state), 1_000);
    let quote = Quote { bid_px: Px(319_999), bid_qty: Qty(100_000), ask_px: Px(320_001), ask_qty: Qty(100_000) };
    market(&mut core, PERP, MarketBody::Quote(quote), 2_000);
    let h = hedger(&core);
    // H = (3 · 0.0004 · 3200 · Γ² / (2 · 1e-6))^(1/3), Γ = −10 γ_call − 0.01·1000/(2·3200).
    let gamma = -0.007_860_187_625_151_778 - 10.0 / 6400.0;
    let want = (3.0 * 0.0004 * 3200.0 * gamma * gamma / 2e-6f64).cbrt();
    assert!((h.greeks.gamma - gamma).abs() < 1e-12);
    assert_eq!(h.band, Decimal::try_from(want).unwrap().round_dp(8));
    assert_eq!(h.band, d("5.54477089"));
}

#[test]
fn bad_configs_are_refused() {
    let registry = registry();
    let mut cfg = config(BandKind::Fixed);
    cfg.hedge.symbol = "WETH-USDC".into();
    cfg.hedge.venue = "ethereum".into();
    assert!(HedgerStrategy::new(&cfg, &registry).is_err(), "a pool cannot hedge");
    let mut cfg = config(BandKind::Fixed);
    cfg.lp[0].share = 1.5;
    assert!(HedgerStrategy::new(&cfg, &registry).is_err());
    let mut cfg = config(BandKind::Fixed);
    cfg.options[0].vol = None;
    assert!(HedgerStrategy::new(&cfg, &registry).is_err(), "no vol and no price");
    // A put whose vol is implied from its price builds.
    let mut cfg = config(BandKind::Fixed);
    cfg.options[0] = OptionConfig {
        kind: OptionSide::Put,
        strike: d("3000"),
        expiry_days: 30.0,
        qty: d("5"),
        vol: None,
        price: Some(d("120")),
    };
    let built = crossbar_strategies::build(&[StrategyConfig::Hedger(cfg)], &registry).unwrap();
    assert_eq!(built[0].name(), "hedger");
}
