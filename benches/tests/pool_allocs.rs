//! Proves pool events cost the core no heap allocation: pool states and pending swaps applied to
//! the core's pool table and read by a strategy (confirmed and pending-adjusted prices) through
//! `Ctx`, counted by a global allocator after warm-up.

use std::sync::Arc;

use crossbar_engine::core::Core;
use crossbar_engine::event::{
    Amount128, Fill, MarketBody, MarketEvent, OrderCommand, OrderEvent, OrderEventKind, PendingSwap, PoolReserves,
    PoolState, Quote, SeqIds,
};
use crossbar_engine::fixed::{Px, Qty};
use crossbar_engine::instrument::{InstrumentConfig, InstrumentId, InstrumentKind, Registry};
use crossbar_engine::pool::PoolSpec;
use crossbar_engine::risk::RiskConfig;
use crossbar_engine::strategy::{Ctx, Strategy};
use crossbar_strategies::{AnyStrategy, StrategyConfig};

mod support;

use support::allocs_on_this_thread;

/// Reads both pool prices on every event and counts how often the pending one is below.
#[derive(Default)]
struct PoolReader {
    reads: u64,
    below: u64,
}

impl Strategy for PoolReader {
    fn name(&self) -> &str {
        "pool-reader"
    }

    fn on_market(&mut self, ev: &MarketEvent, ctx: &mut Ctx<'_>) {
        if let (Some(c), Some(p)) = (ctx.pool_price(ev.instrument), ctx.pending_pool_price(ev.instrument)) {
            self.reads += 1;
            if p < c {
                self.below += 1;
            }
        }
    }

    fn on_order(&mut self, _: &OrderEvent, _: u32, _: &mut Ctx<'_>) {}
}

fn event(body: MarketBody, t: u64) -> MarketEvent {
    MarketEvent { instrument: InstrumentId(0), exch_ts_ms: 0, recv_ns: t, decoded_ns: t, seq: SeqIds::default(), body }
}

fn reserves(base: u128, quote: u128) -> PoolReserves {
    PoolReserves { base: Amount128::new(base), quote: Amount128::new(quote) }
}

/// One block: a state, then ten pending swaps selling base (the pending price falls).
fn block(n: u64) -> Vec<MarketEvent> {
    let e18 = 10u128.pow(18);
    let (b, q) = (1_000 * e18 + u128::from(n), 3_200_000_000_000u128);
    let mut out = vec![event(MarketBody::PoolState(PoolState { reserves: reserves(b, q), block: n }), n * 100)];
    for i in 1..=10u128 {
        let swap = PendingSwap {
            reserves: reserves(b + i * e18, q - i * 3_000_000_000),
            amount_in: Amount128::new(e18),
            sells_base: true,
            would_revert: false,
        };
        out.push(event(MarketBody::PendingSwap(swap), n * 100 + i as u64));
    }
    out
}

#[test]
fn pool_events_allocate_nothing_in_the_core() {
    let pool = InstrumentConfig {
        venue: "ethereum".into(),
        symbol: "WETH-USDC".into(),
        kind: InstrumentKind::Pool,
        base: "ETH".into(),
        quote: "USDC".into(),
        tick: "0.000001".parse().unwrap(),
        lot: "0.000000000000000001".parse().unwrap(),
        contract_size: "1".parse().unwrap(),
        taker_fee: "0.003".parse().unwrap(),
        maker_fee: "0".parse().unwrap(),
    };
    let registry = Arc::new(Registry::new(&["ethereum".into()], &[pool]).unwrap());
    let spec = PoolSpec { base_decimals: 18, quote_decimals: 6 };
    let mut core =
        Core::new(registry, vec![PoolReader::default()], RiskConfig::default()).with_pools(&[(InstrumentId(0), spec)]);
    let blocks: Vec<Vec<MarketEvent>> = (1..=50).map(block).collect();
    let mut sink = |_| panic!("pool events never make orders here");
    for ev in &blocks[0] {
        core.on_market(ev, ev.recv_ns, ev.recv_ns, &mut sink);
    }
    let before = allocs_on_this_thread();
    for ev in blocks[1..].iter().flatten() {
        core.on_market(ev, ev.recv_ns, ev.recv_ns, &mut sink);
    }
    let allocs = allocs_on_this_thread() - before;
    let probe = std::hint::black_box(vec![0u8; 16]);
    assert!(allocs_on_this_thread() > before + allocs, "allocator probe not counted");
    drop(probe);
    assert_eq!(allocs, 0, "heap allocations while applying {} pool events", 49 * 11);
    let s = &core.strategies()[0];
    assert_eq!((s.reads, s.below), (50 * 11, 50 * 10), "every event was read, every swap lowered the price");
    let p = core.pools().get(InstrumentId(0)).unwrap();
    assert_eq!((p.block, p.pending_swaps), (50, 10));
    assert_eq!(p.last_swap, Some((10u128.pow(18), 3_000_000_000)));
}

/// Feeds one market event to the core (and fills what it sends); returns the hedges sent.
type Step<'a> = dyn FnMut(&mut Core<AnyStrategy>, u32, MarketBody, &mut u64) -> u64 + 'a;

/// The hedger on pool events and perp quotes, hedging LP swings caused by pending swaps, each
/// hedge filled: valuation (Black-Scholes, LP delta), intents, risk, OMS and fills, no allocation.
#[test]
fn the_hedger_on_pool_events_allocates_nothing() {
    let inst = |venue: &str, symbol: &str, kind, tick: &str, lot: &str| InstrumentConfig {
        venue: venue.into(),
        symbol: symbol.into(),
        kind,
        base: "ETH".into(),
        quote: "USDT".into(),
        tick: tick.parse().unwrap(),
        lot: lot.parse().unwrap(),
        contract_size: "1".parse().unwrap(),
        taker_fee: "0.0004".parse().unwrap(),
        maker_fee: "0".parse().unwrap(),
    };
    let registry = Registry::new(
        &["usdm".into(), "ethereum".into()],
        &[
            inst("usdm", "ETHUSDT", InstrumentKind::Perpetual, "0.01", "0.001"),
            inst("ethereum", "WETH-USDC", InstrumentKind::Pool, "0.000001", "0.000000000000000001"),
        ],
    )
    .unwrap();
    let cfg: StrategyConfig = toml::from_str(
        r#"
        kind = "hedger"
        name = "hedger"
        underlying = "ETH"
        hedge = { venue = "usdm", symbol = "ETHUSDT" }
        band = "0.5"
        band_kind = "whalley-wilmott"
        max_clip = "10"
        options = [{ kind = "call", strike = "3200", expiry_days = 30, qty = "-10", vol = 0.5 }]
        lp = [{ pool = { venue = "ethereum", symbol = "WETH-USDC" }, share = 0.01 }]
        "#,
    )
    .unwrap();
    let strategies = crossbar_strategies::build(&[cfg], &registry).unwrap();
    let spec = PoolSpec { base_decimals: 18, quote_decimals: 6 };
    let mut core =
        Core::new(Arc::new(registry), strategies, RiskConfig::default()).with_pools(&[(InstrumentId(1), spec)]);
    let e18 = 10u128.pow(18);
    let mut commands: Vec<OrderCommand> = Vec::with_capacity(64);
    let mut t = 1_000u64;
    let mut step = |core: &mut Core<AnyStrategy>, instrument: u32, body: MarketBody, t: &mut u64| -> u64 {
        *t += 1_000;
        let ev = MarketEvent {
            instrument: InstrumentId(instrument),
            exch_ts_ms: 0,
            recv_ns: *t,
            decoded_ns: *t,
            seq: SeqIds::default(),
            body,
        };
        commands.clear();
        core.on_market(&ev, *t, *t, &mut |c| commands.push(c));
        let mut hedges = 0;
        // Fill every hedge at once (new commands from on_order are filled in the next round).
        let mut i = 0;
        while i < commands.len() {
            if let OrderCommand::New { order, .. } = commands[i] {
                hedges += 1;
                *t += 1_000;
                let fill = OrderEvent {
                    client_id: order.client_id,
                    instrument: order.instrument,
                    side: order.side,
                    exch_ts_ms: 0,
                    recv_ns: *t,
                    kind: OrderEventKind::Filled(Fill {
                        px: order.px,
                        qty: order.qty,
                        leaves_qty: Qty(0),
                        fee: Default::default(),
                        taker: true,
                        trade_id: *t,
                    }),
                };
                core.on_order(&fill, *t, &mut |c| commands.push(c));
            }
            i += 1;
        }
        hedges
    };
    let quote = Quote { bid_px: Px(319_999), bid_qty: Qty(100_000), ask_px: Px(320_001), ask_qty: Qty(100_000) };
    let round = |core: &mut Core<AnyStrategy>, n: u64, t: &mut u64, step: &mut Step<'_>| {
        let (b, q) = (1_000 * e18, 3_200_000_000_000u128);
        let state = PoolState { reserves: reserves(b, q), block: n };
        let mut hedges = step(core, 1, MarketBody::PoolState(state), t);
        hedges += step(core, 0, MarketBody::Quote(quote), t);
        // 300 WETH sold into the pool: the LP's delta rises by 3 and is hedged.
        let swap = PendingSwap {
            reserves: reserves(b + 300 * e18, q * 1_000 / 1_300),
            amount_in: Amount128::new(300 * e18),
            sells_base: true,
            would_revert: false,
        };
        hedges += step(core, 1, MarketBody::PendingSwap(swap), t);
        hedges += step(core, 0, MarketBody::Quote(quote), t);
        hedges
    };
    for n in 0..3 {
        round(&mut core, n, &mut t, &mut step);
    }
    let before = allocs_on_this_thread();
    let mut hedges = 0;
    for n in 3..50 {
        hedges += round(&mut core, n, &mut t, &mut step);
    }
    let allocs = allocs_on_this_thread() - before;
    let probe = std::hint::black_box(vec![0u8; 16]);
    assert!(allocs_on_this_thread() > before + allocs, "allocator probe not counted");
    drop(probe);
    assert!(hedges >= 47 * 2, "every block and every pending swap made a hedge ({hedges})");
    assert_eq!(allocs, 0, "heap allocations in {hedges} hedges on pool events");
    let AnyStrategy::Hedger(h) = &core.strategies()[0] else { unreachable!() };
    assert!(h.max_abs_after_hedge <= h.band, "{} > {}", h.max_abs_after_hedge, h.band);
}
