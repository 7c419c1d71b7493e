//! The simulator's Ethereum endpoint: pending Uniswap V2 swaps that `crate::eth` decodes and
//! prices exactly, node-shaped frames and calls, and pools that lag then follow the CEX price.
//!
//! The first two tests drive the pure chain model; the others run the simulator on 127.0.0.1
//! and talk to it with the engine's own blocking JSON-RPC client and mempool watcher.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crossbar_connectors::eth::rpc::RpcClient;
use crossbar_connectors::eth::tracker::SwapTracker;
use crossbar_connectors::eth::tx::{Notification, parse_notification, parse_object};
use crossbar_connectors::eth::v2::{RevertReason, V2Pools};
use crossbar_connectors::eth::watch::{MempoolWatcher, WatchEvent};
use crossbar_connectors::eth::{
    Address, B256, MAINNET_V2_FACTORY, MAINNET_V2_ROUTER02, MAINNET_WETH, Method, Protocol, U256, decode_swaps,
};
use crossbar_connectors::sim::eth::{ChainEvent, EthChain, EthSimConfig, USDC};
use crossbar_connectors::sim::{SimConfig, Simulator};
use crossbar_engine::instrument::{InstrumentKind, Registry};
use serde_json::Value;

mod support;

use support::instrument;

const PATIENCE: Duration = Duration::from_secs(20);
const TIMEOUT: Duration = Duration::from_secs(5);

fn registry() -> Registry {
    Registry::new(
        &["binance-spot".to_owned()],
        &[
            instrument("binance-spot", "BTCUSDT", InstrumentKind::Spot, "BTC", "0.01", "0.00001"),
            instrument("binance-spot", "ETHUSDT", InstrumentKind::Spot, "ETH", "0.01", "0.0001"),
        ],
    )
    .unwrap()
}

/// A busy chain: blocks every 300 ms, a tick every 20 ms, arbitrage and noise on most ticks.
fn busy() -> EthSimConfig {
    EthSimConfig {
        block_ms: 300,
        tx_interval_ms: 20,
        arb_delay_ms: 200,
        arb_probability: 0.5,
        arb_threshold_bps: 10,
        noise_probability: 0.5,
        slippage_bps: 30,
        ..EthSimConfig::default()
    }
}

fn start(eth: EthSimConfig) -> Simulator {
    start_scaled(eth, 36_000.0)
}

fn start_scaled(eth: EthSimConfig, time_scale: f64) -> Simulator {
    let cfg = SimConfig { seed: 5, time_scale, ethereum: eth, ..SimConfig::default() };
    Simulator::start(&cfg, &registry(), "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// Loads every pool's last-block reserves into `pools`.
fn load(pools: &mut V2Pools, chain: &EthChain) {
    for p in chain.pools() {
        pools.set_reserves(p.pair, p.token0, p.token1, p.reserves.0, p.reserves.1);
    }
}

#[test]
fn every_simulated_swap_decodes_and_is_predicted_exactly() {
    let u = [("ETH".to_owned(), 3_500.0), ("BTC".to_owned(), 100_000.0)];
    let mut chain = EthChain::new(&busy(), &u, 9).unwrap();
    let mut pools = V2Pools::new(MAINNET_V2_FACTORY, Some(MAINNET_WETH));
    load(&mut pools, &chain);
    let (mut events, mut legs, mut input) = (Vec::new(), Vec::new(), Vec::new());
    let mut predicted: Vec<(B256, Option<(U256, U256)>)> = Vec::new();
    let (mut methods, mut swaps, mut reverts, mut blocks) = (HashMap::new(), 0, 0, 0);
    for step in 1..=1_500u64 {
        let t = step * 20;
        // A price that wanders ±4 % so arbitrage has work.
        let wave = 1.0 + 0.04 * ((t as f64) / 7_000.0).sin();
        events.clear();
        chain.advance(t, &[3_500.0 * wave, 100_000.0 / wave], &mut events);
        for ev in &events {
            match *ev {
                ChainEvent::Pending(hash) => {
                    let tx = chain.tx(&hash).unwrap();
                    assert_eq!(tx.to, MAINNET_V2_ROUTER02);
                    input.clone_from(&tx.input);
                    legs.clear();
                    decode_swaps(&input, tx.value, &mut legs).unwrap();
                    assert_eq!(legs.len(), 1);
                    let leg = legs[0];
                    assert_eq!(leg.protocol, Protocol::UniswapV2);
                    *methods.entry(leg.method).or_insert(0) += 1;
                    let p = pools.predict(&leg, chain.head().timestamp + 1).unwrap();
                    assert!(!matches!(p.revert, Some(RevertReason::Expired | RevertReason::InvalidPath)), "{p:?}");
                    predicted.push((hash, (!p.would_revert()).then(|| (p.amount_in(), p.amount_out()))));
                }
                ChainEvent::Block(n) => {
                    for (hash, want) in predicted.drain(..) {
                        let outcome = chain.tx(&hash).unwrap().outcome.unwrap();
                        assert_eq!(outcome.block, n);
                        assert_eq!(outcome.amounts, want, "tx {hash} in block {n}");
                        swaps += 1;
                        reverts += usize::from(want.is_none());
                    }
                    // Pending state after the block's swaps equals the mined reserves.
                    for p in chain.pools() {
                        assert_eq!(pools.get(&p.pair).unwrap().pending, p.reserves, "block {n}");
                    }
                    load(&mut pools, &chain);
                    blocks += 1;
                }
            }
        }
    }
    eprintln!("model: {swaps} swaps ({reverts} reverted) over {blocks} blocks predicted exactly; {methods:?}");
    assert!(blocks >= 90 && swaps >= 1_000, "{blocks} blocks, {swaps} swaps");
    assert!(reverts > 0 && reverts < swaps / 2, "{reverts} reverts of {swaps}");
    for m in [Method::SwapExactTokensForTokens, Method::SwapTokensForExactTokens, Method::SwapExactEthForTokens] {
        assert!(methods.get(&m).copied().unwrap_or(0) > 10, "{m:?}: {methods:?}");
    }
}

#[test]
fn pool_price_lags_then_follows_the_cex_price() {
    let cfg = EthSimConfig { noise_probability: 0.05, noise_max_usd: 5_000, ..EthSimConfig::default() };
    let mut chain = EthChain::new(&cfg, &[("ETH".to_owned(), 3_500.0)], 4).unwrap();
    let mut events = Vec::new();
    let mut price_at = |chain: &mut EthChain, from: u64, to: u64, cex: f64| {
        for t in (from..to).step_by(50) {
            chain.advance(t, &[cex], &mut events);
        }
        chain.pools()[0].price()
    };
    let calm = price_at(&mut chain, 50, 10_000, 3_500.0);
    assert!((calm / 3_500.0 - 1.0).abs() < 0.005, "calm {calm}");
    // The CEX jumps 6 %; the arbitrageurs see it 2 s late, so the pool waits...
    let early = price_at(&mut chain, 10_000, 11_500, 3_710.0);
    assert!((early / 3_500.0 - 1.0).abs() < 0.005, "pool moved before the delay: {early}");
    // ...then follows within a few blocks.
    let late = price_at(&mut chain, 11_500, 16_000, 3_710.0);
    assert!((late / 3_710.0 - 1.0).abs() < 0.005, "pool did not follow: {late}");
}

/// `frame` (raw text `text`) has the anvil capture's keys, in the capture's order.
fn assert_same_keys(frame: &Value, text: &str, capture: &str) {
    let want: Value = serde_json::from_str(capture).unwrap();
    let keys = |v: &Value| v["params"]["result"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let (mut a, mut b) = (keys(frame), keys(&want));
    a.sort();
    b.sort();
    assert_eq!(a, b);
    let capture_keys = want["params"]["result"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let mut order: Vec<(usize, &String)> =
        capture_keys.iter().map(|k| (capture.find(&format!("\"{k}\":")).unwrap(), k)).collect();
    order.sort();
    let positions: Vec<usize> = order.iter().map(|(_, k)| text.find(&format!("\"{k}\":")).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "key order differs from the capture");
    assert!(text.starts_with(r#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x"#));
}

const CAPTURE_TX: &str = include_str!("../../../shared/reference/ethereum/anvil/06_notification_pendingTx_full.json");
const CAPTURE_HEAD: &str = include_str!("../../../shared/reference/ethereum/anvil/14_notification_newHead.json");

#[test]
fn the_endpoint_answers_like_a_node() {
    let sim = start(busy());
    let url = sim.eth_url().unwrap();
    assert!(url.ends_with("/ethereum"), "{url}");
    let mut rpc = RpcClient::connect(&url, TIMEOUT).unwrap();
    assert_eq!(rpc.call("eth_chainId", "[]").unwrap(), "0x7a69");
    let pools = sim.eth_pools();
    let weth = &pools[1];
    assert_eq!(weth.token.address, MAINNET_WETH);
    // getPair(WETH, USDC) and token0, as the factory and the pair answer them.
    let mut data = vec![0xe6, 0xa4, 0x39, 0x05];
    for a in [MAINNET_WETH, USDC] {
        data.extend_from_slice(&[0; 12]);
        data.extend_from_slice(a.as_slice());
    }
    assert_eq!(Address::from_slice(&rpc.eth_call(MAINNET_V2_FACTORY, &data).unwrap()[12..]), weth.pair);
    let token0 = rpc.eth_call(weth.pair, &[0x0d, 0xfe, 0x16, 0x81]).unwrap();
    assert_eq!(Address::from_slice(&token0[12..]), weth.token0);
    assert!(rpc.get_reserves(Address::ZERO).unwrap().is_none());
    // getReserves matches the simulator's pool (retry if a block was mined in between).
    let deadline = Instant::now() + PATIENCE;
    loop {
        let before = rpc.call("eth_blockNumber", "[]").unwrap();
        let (r0, r1, _) = rpc.get_reserves(weth.pair).unwrap().unwrap();
        let now = sim.eth_pools();
        if rpc.call("eth_blockNumber", "[]").unwrap() == before {
            assert_eq!((r0, r1), now[1].reserves);
            break;
        }
        assert!(Instant::now() < deadline);
    }
    let full = rpc.subscribe("[\"newPendingTransactions\",true]").unwrap();
    let hashes = rpc.subscribe("[\"newPendingTransactions\"]").unwrap();
    let heads = rpc.subscribe("[\"newHeads\"]").unwrap();
    let (mut got_full, mut got_hash, mut got_head) = (None, None, None);
    let deadline = Instant::now() + PATIENCE;
    while got_full.is_none() || got_hash.is_none() || got_head.is_none() {
        assert!(Instant::now() < deadline, "missing notifications");
        let Some(frame) = rpc.next_frame(Duration::from_millis(500)).unwrap() else { continue };
        let v: Value = serde_json::from_slice(&frame).unwrap();
        let sub = v["params"]["subscription"].as_str().unwrap();
        match parse_notification(&frame).unwrap() {
            Notification::PendingTx(tx) if sub == full => {
                assert_same_keys(&v, std::str::from_utf8(&frame).unwrap(), CAPTURE_TX);
                got_full = Some(tx.hash);
            }
            Notification::PendingHash(h) if sub == hashes => got_hash = Some(h),
            Notification::Head(h) if sub == heads => {
                assert_same_keys(&v, std::str::from_utf8(&frame).unwrap(), CAPTURE_HEAD);
                got_head = Some(h.number);
            }
            other => panic!("{other:?} on {sub}"),
        }
    }
    // A hash fetched with eth_getTransactionByHash is the full transaction.
    let hash = got_hash.unwrap();
    let tx = rpc.call("eth_getTransactionByHash", &format!("[\"{hash:#x}\"]")).unwrap();
    let raw = serde_json::to_vec(&tx).unwrap();
    match parse_object(&raw).unwrap() {
        Notification::PendingTx(tx) => assert_eq!(tx.hash, hash),
        other => panic!("{other:?}"),
    }
    let latest = rpc.call("eth_getBlockByNumber", "[\"latest\",false]").unwrap();
    assert!(matches!(parse_object(&serde_json::to_vec(&latest).unwrap()).unwrap(), Notification::Head(_)));
    assert_eq!(rpc.call("eth_unsubscribe", &format!("[\"{full}\"]")).unwrap(), true);
    assert_eq!(rpc.call("eth_unsubscribe", &format!("[\"{full}\"]")).unwrap(), false);
    assert!(rpc.call("eth_sendRawTransaction", "[\"0x00\"]").is_err());
    rpc.close();
    sim.shutdown().unwrap();
}

#[test]
fn the_mempool_watcher_predicts_each_block_of_the_simulator_exactly() {
    let sim = start(busy());
    let tracker = SwapTracker::new(MAINNET_V2_FACTORY, Some(MAINNET_WETH), vec![MAINNET_V2_ROUTER02]);
    let mut watcher = MempoolWatcher::new(&sim.eth_url().unwrap(), tracker, TIMEOUT);
    let mut events = Vec::new();
    // Pending reserves per pair after the swaps seen since the last head.
    let mut pending: HashMap<Address, (U256, U256)> = HashMap::new();
    let (mut armed, mut checked_blocks, mut checked_swaps, mut in_block, mut raced) = (false, 0, 0, 0, 0);
    let deadline = Instant::now() + PATIENCE;
    while checked_blocks < 6 || checked_swaps < 30 {
        assert!(Instant::now() < deadline, "{checked_blocks} blocks, {checked_swaps} swaps checked, {raced} raced");
        events.clear();
        match watcher.poll(Duration::from_millis(200), &mut events) {
            WatchEvent::Connected => armed = false,
            WatchEvent::Disconnected(e) => panic!("disconnected: {e}"),
            WatchEvent::Swaps(_) => {
                for ev in &events {
                    assert_eq!(ev.swap.protocol, Protocol::UniswapV2);
                    assert!(ev.prediction.is_some(), "{ev:?}");
                }
                in_block += events.len();
                pending = watcher.tracker().pools().iter().map(|(a, st)| (*a, st.pending)).collect();
            }
            WatchEvent::Head { number, reorg } => {
                assert!(!reorg);
                // The watcher reloaded getReserves on this head; valid if no later block was
                // mined before that (the block number is still this head's).
                let now = watcher.rpc().unwrap().call("eth_blockNumber", "[]").unwrap();
                let current = now.as_str() == Some(format!("{number:#x}").as_str());
                if armed && current {
                    for (pair, want) in &pending {
                        let got = watcher.tracker().pools().get(pair).unwrap().confirmed;
                        assert_eq!(got, *want, "pair {pair} at block {number}");
                    }
                    checked_blocks += 1;
                    checked_swaps += in_block;
                } else if armed {
                    raced += 1;
                }
                armed = current;
                in_block = 0;
                pending = watcher.tracker().pools().iter().map(|(a, st)| (*a, st.confirmed)).collect();
            }
            WatchEvent::Idle => {}
        }
    }
    eprintln!("watcher: {checked_swaps} swaps over {checked_blocks} blocks matched getReserves; {raced} raced");
    let s = watcher.tracker().skips;
    assert_eq!((s.not_router, s.unknown_selector, s.not_a_swap, s.malformed), (0, 0, 0, 0));
    watcher.disconnect();
    sim.shutdown().unwrap();
}

#[test]
fn the_pool_follows_the_simulators_cex_price() {
    let eth = EthSimConfig { block_ms: 200, arb_delay_ms: 300, noise_max_usd: 5_000, ..busy() };
    let sim = start_scaled(eth, 3_600.0);
    std::thread::sleep(Duration::from_millis(500));
    let (mut devs, mut prices) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let pool = sim.eth_pools().into_iter().find(|p| p.underlying == "ETH").unwrap();
        let cex = sim.true_price("ETH").unwrap();
        devs.push((pool.price() / cex - 1.0).abs() * 1e4);
        prices.push(pool.reserves);
        std::thread::sleep(Duration::from_millis(50));
    }
    devs.sort_by(f64::total_cmp);
    let median = devs[devs.len() / 2];
    // The CEX moves (an hour of simulated time per second); the pool is repriced block after
    // block and stays close behind it, off only by the arbitrage delay and threshold.
    assert!(prices.windows(2).filter(|w| w[0] != w[1]).count() >= 5, "the pool hardly moved");
    assert!(median < 40.0, "median gap to the CEX price {median} bps");
    sim.shutdown().unwrap();
}

#[test]
fn the_endpoint_can_be_turned_off() {
    let sim = start(EthSimConfig { enabled: false, ..EthSimConfig::default() });
    assert!(sim.eth_url().is_none() && sim.eth_pools().is_empty());
    let err = RpcClient::connect(&format!("ws://{}/ethereum", sim.addr()), TIMEOUT).unwrap_err();
    assert!(err.is_disconnect(), "{err}");
    let cfg: SimConfig = toml::from_str("[ethereum]\nblock_ms = 250\n").unwrap();
    assert_eq!((cfg.ethereum.block_ms, cfg.ethereum.enabled), (250, true));
    assert!(toml::from_str::<SimConfig>("[ethereum]\nblok_ms = 250\n").is_err());
}

#[test]
fn the_hash_only_watcher_fetches_and_decodes_the_simulators_swaps() {
    let sim = start(busy());
    let tracker = SwapTracker::new(MAINNET_V2_FACTORY, Some(MAINNET_WETH), vec![MAINNET_V2_ROUTER02]);
    let mut watcher = MempoolWatcher::new(&sim.eth_url().unwrap(), tracker, TIMEOUT).hash_only(true);
    let (mut events, mut swaps) = (Vec::new(), 0);
    let deadline = Instant::now() + PATIENCE;
    while swaps < 20 {
        assert!(Instant::now() < deadline, "only {swaps} swaps");
        events.clear();
        if let WatchEvent::Disconnected(e) = watcher.poll(Duration::from_millis(200), &mut events) {
            panic!("disconnected: {e}");
        }
        for ev in &events {
            assert_eq!(ev.swap.protocol, Protocol::UniswapV2);
            assert!(ev.prediction.is_some());
        }
        swaps += events.len();
    }
    watcher.disconnect();
    sim.shutdown().unwrap();
}
