//! The DEX feed of `crossbar run`: the mempool watcher turned into market events for the core.
//!
//! For each configured pool (a `kind = "pool"` instrument declared under `[dex]`), the feed
//! sends a [`MarketBody::PoolState`] with the confirmed reserves after every connect, resync and
//! new head, and a [`MarketBody::PendingSwap`] for every pending V2 swap leg through it, carrying
//! the pool's pending-adjusted reserves after the swap: the exact pair arithmetic of
//! [`super::v2`], applied in arrival order. The core only stores these reserves, so a strategy
//! reads the pending-adjusted price without doing any `uint256` math on the hot path.
//!
//! The feed runs on its own thread (the RPC client blocks, with bounded waits) and pushes into
//! the core's market ring, which is a multi-producer queue; it is an I/O edge and may allocate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use alloy_primitives::{Address, U256};
use crossbar_engine::clock::now_ns;
use crossbar_engine::event::{
    Amount128, FeedStatus, MarketBody, MarketEvent, PendingSwap, PoolReserves, PoolState, SeqIds,
};
use crossbar_engine::instrument::{InstrumentConfig, InstrumentId, InstrumentKind, Registry};
use crossbar_engine::pool::PoolSpec;
use crossbar_engine::ring::Ring;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::rpc::RpcClient;
use super::tracker::{PendingSwapEvent, SwapTracker};
use super::watch::{MempoolWatcher, WatchEvent};
use super::{MAINNET_V2_FACTORY, MAINNET_V2_ROUTER02};

/// The registry venue name of every pool instrument.
pub const DEX_VENUE: &str = "ethereum";

/// The `[dex]` section: where the node is and which pools to follow.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DexConfig {
    /// `sim` for the embedded simulator's `/ethereum` endpoint, or a node's `ws://` URL.
    #[serde(default = "sim")]
    pub rpc: String,
    /// Uniswap V2 factory (default: mainnet's, which the simulator uses too).
    #[serde(default)]
    pub factory: Option<String>,
    /// Routers whose pending transactions are decoded (default: mainnet Router02).
    #[serde(default)]
    pub routers: Vec<String>,
    /// The pools, each one instrument of kind `pool` on venue `ethereum`.
    pub pools: Vec<DexPoolConfig>,
}

fn sim() -> String {
    "sim".to_owned()
}

/// One `[[dex.pools]]` entry: a Uniswap V2 pair of a base and a quote token.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DexPoolConfig {
    /// The instrument's symbol (`WETH-USDC`); strategies name the pool by it.
    pub symbol: String,
    /// Base asset (`ETH`): the underlying whose exposure the pool carries.
    pub base: String,
    /// Quote asset (`USDC`).
    pub quote: String,
    /// Base token address (`0x…`).
    pub base_token: String,
    /// Base token decimals.
    pub base_decimals: u8,
    /// Quote token address.
    pub quote_token: String,
    /// Quote token decimals.
    pub quote_decimals: u8,
}

fn address(what: &str, s: &str) -> Result<Address, String> {
    s.parse().map_err(|_| format!("dex: {what} {s:?} is not a 0x address"))
}

impl DexConfig {
    /// Checks addresses, decimals and the URL.
    ///
    /// # Errors
    /// The first problem, as one line.
    pub fn validate(&self) -> Result<(), String> {
        if self.rpc != "sim" && !self.rpc.starts_with("ws://") {
            return Err(format!("dex: rpc must be \"sim\" or ws://, not {:?}", self.rpc));
        }
        self.factory()?;
        self.routers()?;
        for p in &self.pools {
            address("base_token", &p.base_token)?;
            address("quote_token", &p.quote_token)?;
            if p.base_decimals > 36 || p.quote_decimals > 36 {
                return Err(format!("dex pool {}: decimals must be at most 36", p.symbol));
            }
            if p.base_token.eq_ignore_ascii_case(&p.quote_token) {
                return Err(format!("dex pool {}: base and quote tokens are the same", p.symbol));
            }
        }
        Ok(())
    }

    /// The factory address.
    ///
    /// # Errors
    /// A malformed address.
    pub fn factory(&self) -> Result<Address, String> {
        self.factory.as_deref().map_or(Ok(MAINNET_V2_FACTORY), |f| address("factory", f))
    }

    /// The router addresses.
    ///
    /// # Errors
    /// A malformed address.
    pub fn routers(&self) -> Result<Vec<Address>, String> {
        if self.routers.is_empty() {
            return Ok(vec![MAINNET_V2_ROUTER02]);
        }
        self.routers.iter().map(|r| address("router", r)).collect()
    }

    /// The pools as instrument configs (venue [`DEX_VENUE`], kind `pool`), to append after the
    /// venues' instruments. Tick and lot are the tokens' smallest units (at most 18 places);
    /// the taker fee is the pair's 0.3%.
    pub fn instruments(&self) -> Vec<InstrumentConfig> {
        let step = |d: u8| Decimal::new(1, u32::from(d.clamp(1, 18)));
        self.pools
            .iter()
            .map(|p| InstrumentConfig {
                venue: DEX_VENUE.to_owned(),
                symbol: p.symbol.clone(),
                kind: InstrumentKind::Pool,
                base: p.base.clone(),
                quote: p.quote.clone(),
                tick: step(p.quote_decimals),
                lot: step(p.base_decimals),
                contract_size: Decimal::ONE,
                taker_fee: Decimal::new(3, 3),
                maker_fee: Decimal::ZERO,
            })
            .collect()
    }

    /// Each pool's instrument id (looked up in `registry`) and token decimals, for the core.
    pub fn specs(&self, registry: &Registry) -> Vec<(InstrumentId, PoolSpec)> {
        let Some(venue) = registry.venue_id(DEX_VENUE) else { return Vec::new() };
        self.pools
            .iter()
            .filter_map(|p| {
                let id = registry.find(venue, &p.symbol)?.id;
                Some((id, PoolSpec { base_decimals: p.base_decimals, quote_decimals: p.quote_decimals }))
            })
            .collect()
    }

    /// The feed's pools: instrument id and token addresses (after [`DexConfig::validate`]).
    pub fn feed_pools(&self, registry: &Registry) -> Vec<DexPool> {
        let Some(venue) = registry.venue_id(DEX_VENUE) else { return Vec::new() };
        self.pools
            .iter()
            .filter_map(|p| {
                Some(DexPool {
                    instrument: registry.find(venue, &p.symbol)?.id,
                    base_token: p.base_token.parse().ok()?,
                    quote_token: p.quote_token.parse().ok()?,
                })
            })
            .collect()
    }
}

/// One pool the feed follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DexPool {
    /// Its instrument.
    pub instrument: InstrumentId,
    /// Base token.
    pub base_token: Address,
    /// Quote token.
    pub quote_token: Address,
}

/// What the feed did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DexCounters {
    /// Pool-state events sent.
    pub pool_states: u64,
    /// Pending-swap events sent.
    pub pending_swaps: u64,
    /// Pending swap legs on pools not configured (or V3, or unpriced).
    pub other_swaps: u64,
    /// Completed connections.
    pub connects: u64,
    /// Lost connections.
    pub disconnects: u64,
    /// Reorgs seen.
    pub reorgs: u64,
    /// Events dropped because the ring was full.
    pub ring_full: u64,
}

/// The watcher plus the pool map; see the [module documentation](self).
#[derive(Debug)]
pub struct DexFeed {
    watcher: MempoolWatcher,
    pools: Vec<(DexPool, Address)>,
    events: Vec<PendingSwapEvent>,
    /// What the feed did so far.
    pub counters: DexCounters,
}

impl DexFeed {
    /// A feed of `pools` from the node at `url`, pricing pairs of `factory` and decoding
    /// transactions sent to `routers`. WETH (for the ETH-variant path check) is asked of the
    /// first router, best effort. Nothing is connected until the first poll.
    pub fn new(url: &str, factory: Address, routers: Vec<Address>, pools: &[DexPool], timeout: Duration) -> Self {
        let weth = routers.first().and_then(|r| {
            RpcClient::connect(url, timeout)
                .ok()
                .and_then(|mut c| c.eth_call(*r, &[0xad, 0x5c, 0x46, 0x48]).ok())
                .filter(|w| w.len() == 32)
                .map(|w| Address::from_slice(&w[12..]))
        });
        let mut tracker = SwapTracker::new(factory, weth, routers);
        let pools = pools.iter().map(|p| (*p, tracker.watch_pair(p.base_token, p.quote_token))).collect();
        Self {
            watcher: MempoolWatcher::new(url, tracker, timeout),
            pools,
            events: Vec::with_capacity(8),
            counters: DexCounters::default(),
        }
    }

    /// The pair address of each pool, in configuration order.
    pub fn pairs(&self) -> impl Iterator<Item = (InstrumentId, Address)> + '_ {
        self.pools.iter().map(|(p, pair)| (p.instrument, *pair))
    }

    /// Waits up to `wait` for one node frame and hands the market events it produces to `out`.
    pub fn poll(&mut self, wait: Duration, out: &mut impl FnMut(MarketEvent)) {
        self.events.clear();
        let what = self.watcher.poll(wait, &mut self.events);
        let recv_ns = now_ns();
        let tracker = self.watcher.tracker();
        let head = tracker.last_head().copied();
        let event = |instrument, exch_ts_ms, body| MarketEvent {
            instrument,
            exch_ts_ms,
            recv_ns,
            decoded_ns: now_ns(),
            seq: SeqIds::default(),
            body,
        };
        match what {
            WatchEvent::Connected | WatchEvent::Head { .. } => {
                match what {
                    WatchEvent::Connected => self.counters.connects += 1,
                    WatchEvent::Head { reorg: true, .. } => self.counters.reorgs += 1,
                    _ => {}
                }
                let (block, ts_ms) = head.map_or((0, 0), |h| (h.number, h.timestamp.saturating_mul(1_000)));
                for (pool, pair) in &self.pools {
                    let Some(st) = tracker.pools().get(pair) else { continue };
                    let reserves = orient(pool, st.token0, st.confirmed);
                    out(event(pool.instrument, ts_ms, MarketBody::PoolState(PoolState { reserves, block })));
                    self.counters.pool_states += 1;
                }
            }
            WatchEvent::Swaps(_) => {
                for ev in &self.events {
                    let Some(pred) = ev.prediction else {
                        self.counters.other_swaps += 1;
                        continue;
                    };
                    let tokens = ev.swap.path.tokens();
                    for (hop, pair) in pred.pools().iter().enumerate() {
                        let Some((pool, _)) = self.pools.iter().find(|(_, p)| p == pair) else {
                            self.counters.other_swaps += 1;
                            continue;
                        };
                        let Some(st) = tracker.pools().get(pair) else { continue };
                        let swap = PendingSwap {
                            reserves: orient(pool, st.token0, st.pending),
                            amount_in: Amount128::new(pred.amounts()[hop].saturating_to::<u128>()),
                            sells_base: tokens[hop] == pool.base_token,
                            would_revert: pred.would_revert(),
                        };
                        out(event(pool.instrument, ev.meta.seen_ms.unwrap_or(0), MarketBody::PendingSwap(swap)));
                        self.counters.pending_swaps += 1;
                    }
                }
            }
            WatchEvent::Disconnected(_) => {
                self.counters.disconnects += 1;
                for (pool, _) in &self.pools {
                    out(event(pool.instrument, 0, MarketBody::Status(FeedStatus::Disconnected)));
                }
            }
            WatchEvent::Idle => {}
        }
    }

    /// Polls until `stop` is set, pushing events into `ring` (a full ring drops and counts).
    pub fn run(mut self, ring: &Ring<MarketEvent>, stop: &AtomicBool) -> DexCounters {
        let mut full = 0;
        while !stop.load(Ordering::Relaxed) {
            self.poll(Duration::from_millis(100), &mut |ev| {
                if !ring.push_or_drop(ev) {
                    full += 1;
                }
            });
        }
        self.watcher.disconnect();
        DexCounters { ring_full: full, ..self.counters }
    }
}

/// `(reserve0, reserve1)` of a pair as (base, quote) of `pool`; reserves are `uint112` on chain,
/// so they fit a `u128` (a larger value saturates).
fn orient(pool: &DexPool, token0: Address, r: (U256, U256)) -> PoolReserves {
    let (b, q) = if token0 == pool.base_token { r } else { (r.1, r.0) };
    PoolReserves { base: Amount128::new(b.saturating_to::<u128>()), quote: Amount128::new(q.saturating_to::<u128>()) }
}
