//! The DEX feed against the simulator's Ethereum endpoint, end to end on 127.0.0.1: pool states
//! and pending swaps reach the engine's pool table, every pending-adjusted reserve pair equals
//! the Uniswap V2 formula applied to the swaps in arrival order, and at each new block the
//! confirmed reserves equal the pending ones predicted before it.

use std::time::{Duration, Instant};

use crossbar_connectors::eth::feed::{DEX_VENUE, DexConfig, DexFeed, DexPoolConfig};
use crossbar_connectors::eth::rpc::RpcClient;
use crossbar_connectors::eth::v2::{amount_in, amount_out};
use crossbar_connectors::eth::{MAINNET_WETH, U256};
use crossbar_connectors::sim::eth::{EthSimConfig, USDC, WBTC};
use crossbar_connectors::sim::{SimConfig, Simulator};
use crossbar_engine::event::{FeedStatus, MarketBody, PoolReserves};
use crossbar_engine::instrument::{InstrumentId, InstrumentKind, Registry};
use crossbar_engine::pool::Pools;
use rust_decimal::Decimal;

mod support;

use support::instrument;

fn dex() -> DexConfig {
    let pool = |symbol: &str, base: &str, token: String, decimals| DexPoolConfig {
        symbol: symbol.into(),
        base: base.into(),
        quote: "USDC".into(),
        base_token: token,
        base_decimals: decimals,
        quote_token: format!("{USDC:#x}"),
        quote_decimals: 6,
    };
    DexConfig {
        rpc: "sim".into(),
        factory: None,
        routers: Vec::new(),
        pools: vec![
            pool("WETH-USDC", "ETH", format!("{MAINNET_WETH:#x}"), 18),
            pool("WBTC-USDC", "BTC", format!("{WBTC:#x}"), 8),
        ],
    }
}

fn u(v: u128) -> U256 {
    U256::from(v)
}

#[test]
fn pending_adjusted_reserves_follow_the_v2_formula_in_arrival_order_and_match_each_block() {
    let venue_instruments = [
        instrument("binance-spot", "BTCUSDT", InstrumentKind::Spot, "BTC", "0.01", "0.00001"),
        instrument("binance-spot", "ETHUSDT", InstrumentKind::Spot, "ETH", "0.01", "0.0001"),
    ];
    let dex = dex();
    dex.validate().unwrap();
    let venue_registry = Registry::new(&["binance-spot".to_owned()], &venue_instruments).unwrap();
    let mut all = venue_instruments.to_vec();
    all.extend(dex.instruments());
    let registry = Registry::new(&["binance-spot".to_owned(), DEX_VENUE.to_owned()], &all).unwrap();
    assert_eq!(registry.get(InstrumentId(2)).kind, InstrumentKind::Pool);
    assert_eq!(registry.get(InstrumentId(2)).symbol, "WETH-USDC");

    let eth = EthSimConfig {
        block_ms: 400,
        tx_interval_ms: 20,
        arb_delay_ms: 200,
        arb_probability: 0.5,
        arb_threshold_bps: 10,
        noise_probability: 0.5,
        slippage_bps: 30,
        ..EthSimConfig::default()
    };
    let cfg = SimConfig { seed: 11, time_scale: 36_000.0, ethereum: eth, ..SimConfig::default() };
    let sim = Simulator::start(&cfg, &venue_registry, "127.0.0.1:0".parse().unwrap()).unwrap();
    let url = sim.eth_url().unwrap();
    let timeout = Duration::from_secs(5);
    let mut feed =
        DexFeed::new(&url, dex.factory().unwrap(), dex.routers().unwrap(), &dex.feed_pools(&registry), timeout);
    let mut probe = RpcClient::connect(&url, timeout).unwrap();
    let mut pools = Pools::new(registry.len());
    for (id, spec) in dex.specs(&registry) {
        pools.configure(id, spec);
    }

    let (mut swaps, mut exact_in, mut exact_out, mut reverted, mut blocks, mut raced) = (0, 0, 0, 0, 0, 0);
    // Per pool: armed once a block's state was read while that block was still the latest.
    let mut armed = [false; 2];
    let deadline = Instant::now() + Duration::from_secs(30);
    while blocks < 8 || swaps < 40 {
        assert!(Instant::now() < deadline, "{blocks} blocks, {swaps} swaps checked, {raced} raced");
        let mut got = Vec::new();
        feed.poll(Duration::from_millis(200), &mut |ev| got.push(ev));
        for ev in got {
            let slot = ev.instrument.index() - 2;
            let before = pools.get(ev.instrument).and_then(|p| p.pending);
            match ev.body {
                MarketBody::PendingSwap(s) => {
                    let r: PoolReserves = before.expect("a pool state comes before its pending swaps");
                    let (b0, q0, b1, q1) = (r.base.get(), r.quote.get(), s.reserves.base.get(), s.reserves.quote.get());
                    let a_in = s.amount_in.get();
                    if s.would_revert {
                        assert_eq!((b1, q1), (b0, q0), "a reverting swap leaves the pending state alone");
                        reverted += 1;
                    } else {
                        // The input is added to one reserve; the other loses exactly the V2 output
                        // (exact in) or the input is exactly the V2 input for that output (exact out).
                        let (r_in, r_out, new_in, new_out) =
                            if s.sells_base { (b0, q0, b1, q1) } else { (q0, b0, q1, b1) };
                        assert_eq!(new_in, r_in + a_in, "{ev:?}");
                        let out = r_out - new_out;
                        let by_in = amount_out(u(a_in), u(r_in), u(r_out)).unwrap();
                        let by_out = amount_in(u(out), u(r_in), u(r_out)).unwrap();
                        if by_in == u(out) {
                            exact_in += 1;
                        } else {
                            assert_eq!(by_out, u(a_in), "neither V2 formula gives this swap: {ev:?}, before {r:?}");
                            exact_out += 1;
                        }
                    }
                    swaps += 1;
                }
                MarketBody::PoolState(st) => {
                    let current = probe.call("eth_blockNumber", "[]").unwrap();
                    let current = current.as_str() == Some(format!("{:#x}", st.block).as_str());
                    if armed[slot] && current {
                        // The block mined every swap pending before it, in arrival order; the state was
                        // read while it was still the latest block (else a later block raced it).
                        let predicted = before.unwrap();
                        assert_eq!(st.reserves, predicted, "pool {} at block {}", ev.instrument.0, st.block);
                        blocks += 1;
                    } else if armed[slot] {
                        raced += 1;
                    }
                    // The first state is the connect's: swaps pending before the subscription
                    // were never seen, so the block after it cannot be checked.
                    armed[slot] = current && before.is_some();
                }
                MarketBody::Status(FeedStatus::Disconnected) => panic!("the feed lost the simulator"),
                other => panic!("unexpected event {other:?}"),
            }
            assert!(pools.apply(&ev), "{ev:?}");
        }
    }
    eprintln!(
        "dex feed: {swaps} pending swaps ({exact_in} exact-in, {exact_out} exact-out, {reverted} reverting) \
         over {blocks} blocks matched; {raced} raced"
    );
    assert!(exact_in > 0 && exact_out > 0, "both swap kinds were exercised");
    assert_eq!(feed.counters.connects, 1);
    assert_eq!(feed.counters.other_swaps, 0, "the simulator only swaps on the two configured pools");
    // The pending price is where the pool will be: an exact decimal of the reserves.
    let eth_pool = pools.get(InstrumentId(2)).unwrap();
    let r = eth_pool.pending.unwrap();
    let want = Decimal::from_i128_with_scale(r.quote.get() as i128, 6)
        .checked_div(Decimal::from_i128_with_scale(r.base.get() as i128, 18))
        .unwrap();
    assert_eq!(eth_pool.pending_price(), Some(want));
    sim.shutdown().unwrap();
}
