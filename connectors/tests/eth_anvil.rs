//! The pending-swap tracker against a real node: anvil with `--no-mining`, Uniswap V2 deployed
//! from the npm build, ≥ 20 random swaps over 3 pairs (two-hop paths, exact-out, ETH variants,
//! several per pair, some reverting) sent into one block; every predicted amount must equal the
//! pairs' `Swap` logs exactly and every `would_revert` the receipt status. Then a second block on
//! the refreshed state, and a reconnect whose resync must match `getReserves`.
//!
//! Needs `CROSSBAR_ANVIL` (the anvil binary) and `CROSSBAR_UNISWAP_DIR` (a `node_modules` with
//! `@uniswap/v2-core` and `@uniswap/v2-periphery`), or both installed by `.ci/run` under
//! `.ci/node/`; without them the test prints a notice and passes without running.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256, hex};
use alloy_sol_types::{SolCall, SolValue, sol};
use crossbar_connectors::eth::rpc::RpcClient;
use crossbar_connectors::eth::tracker::{PendingSwapEvent, SwapTracker};
use crossbar_connectors::eth::watch::{MempoolWatcher, WatchEvent};
use crossbar_connectors::eth::{Exact, Protocol};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

sol! {
    interface IErc20 {
        function transfer(address to, uint256 value) returns (bool);
        function approve(address spender, uint256 value) returns (bool);
    }
    interface IRouter {
        function addLiquidity(address tokenA, address tokenB, uint256 amountADesired, uint256 amountBDesired, uint256 amountAMin, uint256 amountBMin, address to, uint256 deadline);
        function addLiquidityETH(address token, uint256 amountTokenDesired, uint256 amountTokenMin, uint256 amountETHMin, address to, uint256 deadline);
        function swapExactTokensForTokens(uint256 amountIn, uint256 amountOutMin, address[] path, address to, uint256 deadline);
        function swapTokensForExactTokens(uint256 amountOut, uint256 amountInMax, address[] path, address to, uint256 deadline);
        function swapExactETHForTokens(uint256 amountOutMin, address[] path, address to, uint256 deadline);
        function swapTokensForExactETH(uint256 amountOut, uint256 amountInMax, address[] path, address to, uint256 deadline);
        function swapExactTokensForETH(uint256 amountIn, uint256 amountOutMin, address[] path, address to, uint256 deadline);
        function swapETHForExactTokens(uint256 amountOut, address[] path, address to, uint256 deadline);
        function swapExactTokensForTokensSupportingFeeOnTransferTokens(uint256 amountIn, uint256 amountOutMin, address[] path, address to, uint256 deadline);
    }
}

const SWAP_TOPIC: &str = "0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822";
const TIMEOUT: Duration = Duration::from_secs(20);

/// Kills anvil when the test ends, panics included.
struct Anvil {
    child: Child,
    url: String,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tools() -> Option<(PathBuf, PathBuf)> {
    let node = PathBuf::from(format!("{}/../.ci/node/node_modules", env!("CARGO_MANIFEST_DIR")));
    let anvil = std::env::var_os("CROSSBAR_ANVIL")
        .map(PathBuf::from)
        .unwrap_or_else(|| node.join("@foundry-rs/anvil-linux-amd64/bin/anvil"));
    let uniswap = std::env::var_os("CROSSBAR_UNISWAP_DIR").map(PathBuf::from).unwrap_or(node);
    let ok = anvil.is_file() && uniswap.join("@uniswap/v2-periphery/build/UniswapV2Router02.json").is_file();
    ok.then_some((anvil, uniswap))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_anvil(bin: &Path, port: u16) -> Anvil {
    let child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--no-mining", "--chain-id", "31337"])
        .args(["--order", "fifo", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start anvil");
    Anvil { child, url: format!("ws://127.0.0.1:{port}") }
}

fn connect(url: &str) -> RpcClient {
    let start = Instant::now();
    loop {
        match RpcClient::connect(url, TIMEOUT) {
            Ok(c) => return c,
            Err(e) if start.elapsed() < TIMEOUT => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("anvil did not come up: {e}"),
        }
    }
}

fn artifact(dir: &Path, rel: &str) -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(rel)).unwrap()).unwrap();
    hex::decode(v["bytecode"].as_str().unwrap()).unwrap()
}

fn addr(v: &serde_json::Value) -> Address {
    v.as_str().unwrap().parse().unwrap()
}

fn qty(v: &serde_json::Value) -> U256 {
    let s = v.as_str().unwrap();
    U256::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// Sends transactions from anvil's unlocked accounts with explicit nonces.
struct Sender {
    rpc: RpcClient,
    nonces: Vec<(Address, u64)>,
}

impl Sender {
    fn send(&mut self, from: Address, to: Option<Address>, data: &[u8], value: U256, gas: u64) -> B256 {
        let slot = match self.nonces.iter().position(|(a, _)| *a == from) {
            Some(i) => i,
            None => {
                let n = qty(&self.rpc.call("eth_getTransactionCount", &format!("[\"{from:#x}\",\"latest\"]")).unwrap());
                self.nonces.push((from, n.to::<u64>()));
                self.nonces.len() - 1
            }
        };
        let nonce = self.nonces[slot].1;
        self.nonces[slot].1 += 1;
        let to = to.map(|t| format!("\"to\":\"{t:#x}\",")).unwrap_or_default();
        let params = format!(
            "[{{\"from\":\"{from:#x}\",{to}\"data\":\"0x{}\",\"value\":\"{value:#x}\",\"gas\":\"{gas:#x}\",\"nonce\":\"{nonce:#x}\"}}]",
            hex::encode(data)
        );
        let r = self.rpc.call("eth_sendTransaction", &params).unwrap_or_else(|e| panic!("send: {e}"));
        r.as_str().unwrap().parse().unwrap()
    }

    fn mine(&mut self) {
        self.rpc.call("evm_mine", "[]").unwrap();
    }

    fn receipt(&mut self, hash: B256) -> serde_json::Value {
        let r = self.rpc.call("eth_getTransactionReceipt", &format!("[\"{hash:#x}\"]")).unwrap();
        assert!(!r.is_null(), "no receipt for {hash:#x}");
        r
    }

    /// Sends a batch, mines it, and checks every transaction succeeded; returns the receipts.
    fn mined_ok(&mut self, txs: Vec<B256>) -> Vec<serde_json::Value> {
        self.mine();
        txs.into_iter()
            .map(|h| {
                let r = self.receipt(h);
                assert_eq!(r["status"], "0x1", "setup tx {h:#x} failed");
                r
            })
            .collect()
    }
}

/// What was deployed.
struct Deployment {
    weth: Address,
    tokens: [Address; 3],
    factory: Address,
    router: Address,
    traders: Vec<Address>,
}

fn deploy(s: &mut Sender, uniswap: &Path, accounts: &[Address]) -> Deployment {
    let admin = accounts[0];
    let e18 = U256::from(10u64).pow(U256::from(18));
    let big = 8_000_000;
    let weth_code = artifact(uniswap, "@uniswap/v2-periphery/build/WETH9.json");
    let mut erc20 = artifact(uniswap, "@uniswap/v2-periphery/build/ERC20.json");
    erc20.extend((U256::from(1_000_000_000u64) * e18,).abi_encode_params());
    let mut factory_code = artifact(uniswap, "@uniswap/v2-core/build/UniswapV2Factory.json");
    factory_code.extend((admin,).abi_encode_params());
    let txs = vec![
        s.send(admin, None, &weth_code, U256::ZERO, big),
        s.send(admin, None, &erc20, U256::ZERO, big),
        s.send(admin, None, &erc20, U256::ZERO, big),
        s.send(admin, None, &erc20, U256::ZERO, big),
        s.send(admin, None, &factory_code, U256::ZERO, big),
    ];
    let created: Vec<Address> = s.mined_ok(txs).iter().map(|r| addr(&r["contractAddress"])).collect();
    let (weth, tokens, factory) = (created[0], [created[1], created[2], created[3]], created[4]);
    let mut router_code = artifact(uniswap, "@uniswap/v2-periphery/build/UniswapV2Router02.json");
    router_code.extend((factory, weth).abi_encode_params());
    let tx = s.send(admin, None, &router_code, U256::ZERO, big);
    let router = addr(&s.mined_ok(vec![tx])[0]["contractAddress"]);

    let traders = accounts[1..4].to_vec();
    let mut txs = Vec::new();
    for &t in &tokens {
        txs.push(s.send(
            admin,
            Some(t),
            &IErc20::approveCall { spender: router, value: U256::MAX }.abi_encode(),
            U256::ZERO,
            100_000,
        ));
        for &who in &traders {
            let c = IErc20::transferCall { to: who, value: U256::from(10_000_000u64) * e18 };
            txs.push(s.send(admin, Some(t), &c.abi_encode(), U256::ZERO, 100_000));
            let c = IErc20::approveCall { spender: router, value: U256::MAX };
            txs.push(s.send(who, Some(t), &c.abi_encode(), U256::ZERO, 100_000));
        }
    }
    let dl = U256::from(u64::MAX);
    let liq = |a: Address, b: Address, ra: u64, rb: u64| IRouter::addLiquidityCall {
        tokenA: a,
        tokenB: b,
        amountADesired: U256::from(ra) * e18,
        amountBDesired: U256::from(rb) * e18,
        amountAMin: U256::ZERO,
        amountBMin: U256::ZERO,
        to: admin,
        deadline: dl,
    };
    txs.push(s.send(
        admin,
        Some(router),
        &liq(tokens[0], tokens[1], 1_000_000, 2_000_000).abi_encode(),
        U256::ZERO,
        5_000_000,
    ));
    txs.push(s.send(
        admin,
        Some(router),
        &liq(tokens[1], tokens[2], 500_000, 1_500_000).abi_encode(),
        U256::ZERO,
        5_000_000,
    ));
    let c = IRouter::addLiquidityETHCall {
        token: tokens[0],
        amountTokenDesired: U256::from(300_000u64) * e18,
        amountTokenMin: U256::ZERO,
        amountETHMin: U256::ZERO,
        to: admin,
        deadline: dl,
    };
    txs.push(s.send(admin, Some(router), &c.abi_encode(), U256::from(100u64) * e18, 5_000_000));
    s.mined_ok(txs);
    Deployment { weth, tokens, factory, router, traders }
}

/// Random swaps of every V2 kind; about one in six is built to revert.
fn random_swaps(rng: &mut SmallRng, d: &Deployment, n: usize) -> Vec<(Address, Vec<u8>, U256)> {
    let e15 = U256::from(10u64).pow(U256::from(15));
    let [t0, t1, t2] = d.tokens;
    let far = U256::from(u64::MAX);
    let mut out = Vec::new();
    for k in 0..n {
        let who = d.traders[k % d.traders.len()];
        let amount = U256::from(rng.random_range(1u64..20_000_000)) * e15; // 0.001 .. 20 000 tokens
        let small = U256::from(rng.random_range(1u64..50_000)) * e15; // 0.001 .. 50 (ETH pool)
        let revert = rng.random_range(0..6) == 0;
        let min_out = if revert { U256::MAX } else { U256::ZERO };
        let max_in = if revert { U256::from(1) } else { U256::MAX };
        let deadline = if revert && rng.random_bool(0.3) { U256::from(1) } else { far };
        let pick = k % 9; // every kind in each round; sizes and reverts random
        let (data, value) = match pick {
            0 => (
                IRouter::swapExactTokensForTokensCall {
                    amountIn: amount,
                    amountOutMin: min_out,
                    path: vec![t0, t1],
                    to: who,
                    deadline,
                }
                .abi_encode(),
                U256::ZERO,
            ),
            1 => (
                IRouter::swapExactTokensForTokensCall {
                    amountIn: amount,
                    amountOutMin: min_out,
                    path: vec![t1, t0],
                    to: who,
                    deadline,
                }
                .abi_encode(),
                U256::ZERO,
            ),
            2 => (
                IRouter::swapExactTokensForTokensCall {
                    amountIn: amount,
                    amountOutMin: min_out,
                    path: vec![t0, t1, t2],
                    to: who,
                    deadline,
                }
                .abi_encode(),
                U256::ZERO,
            ),
            3 => (
                IRouter::swapTokensForExactTokensCall {
                    amountOut: amount,
                    amountInMax: max_in,
                    path: vec![t2, t1],
                    to: who,
                    deadline,
                }
                .abi_encode(),
                U256::ZERO,
            ),
            4 => (
                IRouter::swapTokensForExactTokensCall {
                    amountOut: amount / U256::from(4),
                    amountInMax: max_in,
                    path: vec![t2, t1, t0],
                    to: who,
                    deadline,
                }
                .abi_encode(),
                U256::ZERO,
            ),
            5 => (
                IRouter::swapExactETHForTokensCall { amountOutMin: min_out, path: vec![d.weth, t0], to: who, deadline }
                    .abi_encode(),
                small,
            ),
            6 => (
                IRouter::swapTokensForExactETHCall {
                    amountOut: small / U256::from(10),
                    amountInMax: max_in,
                    path: vec![t1, t0, d.weth],
                    to: who,
                    deadline,
                }
                .abi_encode(),
                U256::ZERO,
            ),
            7 => {
                // Exact-out with ETH: the value is the input maximum (the excess is refunded).
                let value = if revert { U256::from(1) } else { U256::from(1000u64) * e15 * U256::from(1000u64) };
                (
                    IRouter::swapETHForExactTokensCall {
                        amountOut: small,
                        path: vec![d.weth, t0, t1],
                        to: who,
                        deadline,
                    }
                    .abi_encode(),
                    value,
                )
            }
            _ => (
                IRouter::swapExactTokensForTokensSupportingFeeOnTransferTokensCall {
                    amountIn: amount,
                    amountOutMin: min_out,
                    path: vec![t1, t2],
                    to: who,
                    deadline,
                }
                .abi_encode(),
                U256::ZERO,
            ),
        };
        out.push((who, data, value));
    }
    out
}

/// Polls `w` until it produced events for every hash in `want`.
fn capture(w: &mut MempoolWatcher, want: &[B256]) -> Vec<PendingSwapEvent> {
    let mut events = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while want.iter().any(|h| !events.iter().any(|e: &PendingSwapEvent| e.meta.hash == *h)) {
        assert!(Instant::now() < deadline, "only {} of {} pending swaps seen", events.len(), want.len());
        if let WatchEvent::Disconnected(e) = w.poll(Duration::from_millis(200), &mut events) {
            panic!("watcher lost the node: {e}");
        }
    }
    events
}

/// Polls `w` until `until` matches an event.
fn poll_until(w: &mut MempoolWatcher, what: &str, until: impl Fn(&WatchEvent) -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    let mut sink = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "no {what}");
        if until(&w.poll(Duration::from_millis(200), &mut sink)) {
            return;
        }
    }
}

/// Every prediction against its receipt; returns (swaps checked, reverts).
fn check_block(s: &mut Sender, events: &[PendingSwapEvent], hashes: &[B256]) -> (usize, usize) {
    let mut reverts = 0;
    for (i, h) in hashes.iter().enumerate() {
        let ev = events.iter().find(|e| e.meta.hash == *h).unwrap();
        assert_eq!(ev.swap.protocol, Protocol::UniswapV2);
        let p = ev.prediction.as_ref().unwrap_or_else(|| panic!("swap {i} not priced"));
        let r = s.receipt(*h);
        let ok = r["status"] == "0x1";
        assert_eq!(p.would_revert(), !ok, "swap {i} ({}) would_revert {:?}", ev.swap.method.as_str(), p.revert);
        if !ok {
            reverts += 1;
            continue;
        }
        let logs: Vec<&serde_json::Value> =
            r["logs"].as_array().unwrap().iter().filter(|l| l["topics"][0] == SWAP_TOPIC).collect();
        assert_eq!(logs.len(), p.hops, "swap {i}: Swap logs");
        let tokens = ev.swap.path.tokens();
        for (hop, log) in logs.iter().enumerate() {
            assert_eq!(addr(&log["address"]), p.pools()[hop], "swap {i} hop {hop}: pair");
            let data = hex::decode(log["data"].as_str().unwrap()).unwrap();
            let w = |k: usize| U256::from_be_slice(&data[32 * k..32 * k + 32]);
            let (a0_in, a1_in, a0_out, a1_out) = (w(0), w(1), w(2), w(3));
            let (a_in, a_out) = (p.amounts()[hop], p.amounts()[hop + 1]);
            if tokens[hop] < tokens[hop + 1] {
                assert_eq!((a0_in, a1_out, a1_in, a0_out), (a_in, a_out, U256::ZERO, U256::ZERO), "swap {i} hop {hop}");
            } else {
                assert_eq!((a1_in, a0_out, a0_in, a1_out), (a_in, a_out, U256::ZERO, U256::ZERO), "swap {i} hop {hop}");
            }
        }
        // The fixed side is the calldata's.
        match ev.swap.exact {
            Exact::In => assert_eq!(p.amount_in(), ev.swap.amount),
            Exact::Out => assert_eq!(p.amount_out(), ev.swap.amount),
        }
    }
    (hashes.len(), reverts)
}

fn assert_reserves_match(s: &mut Sender, w: &MempoolWatcher) -> usize {
    let tracker = w.tracker();
    let mut n = 0;
    for (pair, st) in tracker.pools().iter() {
        let (r0, r1, _) = s.rpc.get_reserves(*pair).unwrap().unwrap();
        assert_eq!(st.confirmed, (r0, r1), "pair {pair:#x}");
        assert_eq!(st.pending, st.confirmed);
        n += 1;
    }
    n
}

#[test]
fn predictions_equal_mined_swap_logs_on_anvil() {
    let Some((anvil_bin, uniswap)) = tools() else {
        eprintln!(
            "SKIPPED eth_anvil: no anvil / Uniswap build (set CROSSBAR_ANVIL and CROSSBAR_UNISWAP_DIR, or run \
             .ci/run's install step)"
        );
        return;
    };
    let port = free_port();
    let node = start_anvil(&anvil_bin, port);
    let mut s = Sender { rpc: connect(&node.url), nonces: Vec::new() };
    let accounts: Vec<Address> =
        s.rpc.call("eth_accounts", "[]").unwrap().as_array().unwrap().iter().map(addr).collect();
    let d = deploy(&mut s, &uniswap, &accounts);

    // The engine: one watcher on full-transaction notifications, one on hashes only.
    let tracker = || SwapTracker::new(d.factory, Some(d.weth), vec![d.router]);
    let mut full = MempoolWatcher::new(&node.url, tracker(), TIMEOUT);
    let mut hashes_only = MempoolWatcher::new(&node.url, tracker(), TIMEOUT).hash_only(true);
    for w in [&mut full, &mut hashes_only] {
        poll_until(w, "connection", |e| matches!(e, WatchEvent::Connected));
    }

    let seed = std::env::var("CROSSBAR_ETH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_u64);
    eprintln!("eth_anvil: seed {seed} (CROSSBAR_ETH_SEED to replay)");
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut total = (0, 0);
    for (round, n) in [(1, 24), (2, 12)] {
        let swaps = random_swaps(&mut rng, &d, n);
        // A transfer that is not a router call, sent first: skipped and counted.
        let c = IErc20::transferCall { to: accounts[5], value: U256::from(1) };
        s.send(d.traders[0], Some(d.tokens[0]), &c.abi_encode(), U256::ZERO, 100_000);
        let hashes: Vec<B256> =
            swaps.iter().map(|(who, data, value)| s.send(*who, Some(d.router), data, *value, 600_000)).collect();
        let events = capture(&mut full, &hashes);
        let via_hashes = capture(&mut hashes_only, &hashes);
        for e in &events {
            let twin = via_hashes.iter().find(|v| v.meta.hash == e.meta.hash).unwrap();
            assert_eq!((twin.swap, twin.prediction), (e.swap, e.prediction), "hash-only path differs");
        }
        s.mine();
        let block = s.rpc.call("eth_getBlockByNumber", "[\"latest\",false]").unwrap();
        assert_eq!(block["transactions"].as_array().unwrap().len(), n + 1, "round {round}: all in one block");
        let (checked, reverts) = check_block(&mut s, &events, &hashes);
        let ok = |e: &&PendingSwapEvent| e.prediction.is_some_and(|p| !p.would_revert());
        let exact_out = events.iter().filter(ok).filter(|e| e.swap.exact == Exact::Out).count();
        let two_hop = events.iter().filter(ok).filter(|e| e.swap.path.hops() == 2).count();
        let mut per_pool = std::collections::HashMap::new();
        for p in events.iter().filter(ok).filter_map(|e| e.prediction) {
            for pool in p.pools() {
                *per_pool.entry(*pool).or_insert(0) += 1;
            }
        }
        assert!(exact_out >= 1 && two_hop >= 1, "round {round}: {exact_out} exact-out, {two_hop} two-hop swaps");
        assert!(per_pool.len() >= 3 && per_pool.values().any(|&n| n >= 3), "round {round}: {per_pool:?}");
        eprintln!("eth_anvil: round {round}: {checked} swaps match their receipts ({reverts} reverted as predicted)");
        total = (total.0 + checked, total.1 + reverts);
        for w in [&mut full, &mut hashes_only] {
            poll_until(w, "head", |e| matches!(e, WatchEvent::Head { .. }));
            let pairs = assert_reserves_match(&mut s, w);
            assert!(pairs >= 3, "round {round}: {pairs} pairs tracked");
        }
    }
    assert!(total.0 >= 20 && total.1 >= 1 && total.1 < total.0, "{total:?}");
    assert!(full.tracker().skips.not_router >= 2);

    // Node restart: dump the chain, kill anvil, start it again on the same port with the state,
    // and trade while the engine is away. The watcher reconnects and its reserves match again.
    let state = s.rpc.call("anvil_dumpState", "[]").unwrap();
    drop(s);
    drop(node);
    let node = start_anvil(&anvil_bin, port);
    let mut s = Sender { rpc: connect(&node.url), nonces: Vec::new() };
    s.rpc.call("anvil_loadState", &format!("[{state}]")).unwrap();
    let who = d.traders[0];
    let c = IRouter::swapExactTokensForTokensCall {
        amountIn: U256::from(10u64).pow(U256::from(21)),
        amountOutMin: U256::ZERO,
        path: vec![d.tokens[0], d.tokens[1]],
        to: who,
        deadline: U256::from(u64::MAX),
    };
    let tx = s.send(who, Some(d.router), &c.abi_encode(), U256::ZERO, 600_000);
    s.mine();
    assert_eq!(s.receipt(tx)["status"], "0x1");
    let pair = full.tracker().pools().pair_for(d.tokens[0], d.tokens[1]);
    let stale = full.tracker().pools().get(&pair).unwrap().confirmed;
    let (r0, r1, _) = s.rpc.get_reserves(pair).unwrap().unwrap();
    assert_ne!(stale, (r0, r1), "the swap during the outage moved the pair");
    poll_until(&mut full, "reconnection", |e| matches!(e, WatchEvent::Connected));
    assert_eq!(full.connects, 2);
    assert_reserves_match(&mut s, &full);
    eprintln!("eth_anvil: restart: reconnected, reserves match getReserves");
}
