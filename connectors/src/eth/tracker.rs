//! The pending-swap tracker: node frames in, decoded and priced pending swaps out.
//!
//! [`SwapTracker`] owns the router filter, the pending-state [`V2Pools`] and reused decode
//! buffers. For each full pending transaction sent to a tracked router it decodes the swap
//! legs, loads the reserves of pairs it has not seen (through a [`ReserveSource`], i.e.
//! `getReserves` on the node), predicts each V2 leg against the pending state and appends a
//! [`PendingSwapEvent`]. A new head refreshes every tracked pair's reserves and drops the
//! pending state (swaps still pending after a block are not re-applied: a documented
//! simplification); a head whose parent is not the previous head is reported as a reorg.

use std::collections::HashSet;

use alloy_primitives::{Address, U256};

use super::SkipCounts;
use super::output::TxMeta;
use super::router::{Protocol, SwapCall, decode_swaps};
use super::rpc::{RpcClient, RpcError};
use super::tx::{FrameError, Head, PendingTx, decode_hex_into};
use super::v2::{Prediction, V2Pools, sort_tokens};

/// Where pair reserves come from (the node, or a test's table). May block: called from the
/// I/O thread only, once per new pair and once per pair per head.
pub trait ReserveSource {
    /// `(reserve0, reserve1)` of `pair`, or `None` when no pair exists there.
    ///
    /// # Errors
    /// [`RpcError`] when the source cannot answer now.
    fn reserves(&mut self, pair: Address) -> Result<Option<(U256, U256)>, RpcError>;
}

impl ReserveSource for RpcClient {
    fn reserves(&mut self, pair: Address) -> Result<Option<(U256, U256)>, RpcError> {
        Ok(self.get_reserves(pair)?.map(|(r0, r1, _)| (r0, r1)))
    }
}

/// One decoded pending swap leg, with its prediction when it is a V2 leg on known pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingSwapEvent {
    /// The transaction.
    pub meta: TxMeta,
    /// The leg as the calldata states it.
    pub swap: SwapCall,
    /// The V2 prediction (`None` for V3 legs and for paths through pairs that do not exist).
    pub prediction: Option<Prediction>,
}

/// Decodes and prices pending transactions; see the [module documentation](self).
#[derive(Debug)]
pub struct SwapTracker {
    routers: Vec<Address>,
    pools: V2Pools,
    absent: HashSet<Address>,
    input: Vec<u8>,
    legs: Vec<SwapCall>,
    last_head: Option<Head>,
    watched: Vec<(Address, Address, Address)>,
    /// Transactions that produced no swap, by reason.
    pub skips: SkipCounts,
}

impl SwapTracker {
    /// A tracker for swaps sent to `routers` (every destination when empty), pricing V2 legs on
    /// pairs of `factory`; `weth` enables the ETH-variant path check.
    pub fn new(factory: Address, weth: Option<Address>, routers: Vec<Address>) -> Self {
        Self {
            routers,
            pools: V2Pools::new(factory, weth),
            absent: HashSet::new(),
            input: Vec::with_capacity(4096),
            legs: Vec::with_capacity(8),
            last_head: None,
            watched: Vec::new(),
            skips: SkipCounts::default(),
        }
    }

    /// Loads the pair of tokens `a` and `b` on every resync (connect, head, reorg) even before
    /// a swap touches it: a configured pool must have a state from the start. Returns its address.
    pub fn watch_pair(&mut self, a: Address, b: Address) -> Address {
        let pair = self.pools.pair_for(a, b);
        let (t0, t1) = sort_tokens(a, b);
        if !self.watched.iter().any(|w| w.0 == pair) {
            self.watched.push((pair, t0, t1));
        }
        pair
    }

    /// The pending-state pool map.
    pub fn pools(&self) -> &V2Pools {
        &self.pools
    }

    /// The last head seen.
    pub fn last_head(&self) -> Option<&Head> {
        self.last_head.as_ref()
    }

    /// Decodes `tx`; for each swap leg appends a [`PendingSwapEvent`] to `out`. Transactions
    /// that are not router swaps are counted in [`SwapTracker::skips`].
    ///
    /// # Errors
    /// [`TrackError::Frame`] when `input` is not hex (counted as malformed too),
    /// [`TrackError::Rpc`] when reserves could not be loaded (nothing is appended then).
    pub fn on_tx(
        &mut self,
        tx: &PendingTx<'_>,
        seen_ms: Option<u64>,
        src: &mut impl ReserveSource,
        out: &mut Vec<PendingSwapEvent>,
    ) -> Result<usize, TrackError> {
        let Some(to) = tx.to.filter(|to| self.routers.is_empty() || self.routers.contains(to)) else {
            self.skips.not_router += 1;
            return Ok(0);
        };
        if let Err(e) = decode_hex_into(tx.input_hex, &mut self.input, "input") {
            self.skips.malformed += 1;
            return Err(e.into());
        }
        self.legs.clear();
        if let Err(reason) = decode_swaps(&self.input, tx.value, &mut self.legs) {
            self.skips.record(&reason);
            return Ok(0);
        }
        // Load every pair first, so a failed load leaves the pending state untouched.
        for leg in self.legs.iter().filter(|l| l.protocol == Protocol::UniswapV2) {
            for w in leg.path.tokens().windows(2) {
                let pair = self.pools.pair_for(w[0], w[1]);
                if self.pools.get(&pair).is_some() || self.absent.contains(&pair) {
                    continue;
                }
                match src.reserves(pair)? {
                    Some((r0, r1)) => {
                        let (t0, t1) = sort_tokens(w[0], w[1]);
                        self.pools.set_reserves(pair, t0, t1, r0, r1);
                    }
                    None => {
                        self.absent.insert(pair);
                    }
                }
            }
        }
        let min_ts = self.last_head.map_or(0, |h| h.timestamp.saturating_add(1));
        let meta = TxMeta { router: to, ..TxMeta::of(tx, seen_ms) };
        for leg in &self.legs {
            let prediction = self.pools.predict(leg, min_ts).ok();
            out.push(PendingSwapEvent { meta, swap: *leg, prediction });
        }
        Ok(self.legs.len())
    }

    /// A new head: reloads every tracked pair's reserves and resets the pending state. Returns
    /// whether it was a reorg (its parent is not the previous head).
    ///
    /// # Errors
    /// [`TrackError::Rpc`] when reserves could not be reloaded (call [`SwapTracker::resync`]
    /// after reconnecting).
    pub fn on_head(&mut self, head: Head, src: &mut impl ReserveSource) -> Result<bool, TrackError> {
        let reorg = self.last_head.is_some_and(|h| h.hash != head.parent_hash);
        self.last_head = Some(head);
        self.resync(src)?;
        Ok(reorg)
    }

    /// Reloads every tracked pair's reserves (after a reconnect or a reorg) and resets the
    /// pending state; pairs once absent are looked up again.
    ///
    /// # Errors
    /// [`TrackError::Rpc`] when the source fails.
    pub fn resync(&mut self, src: &mut impl ReserveSource) -> Result<(), TrackError> {
        self.absent.clear();
        let mut pairs: Vec<(Address, Address, Address)> =
            self.pools.iter().map(|(pair, st)| (*pair, st.token0, st.token1)).collect();
        for w in &self.watched {
            if self.pools.get(&w.0).is_none() {
                pairs.push(*w);
            }
        }
        for (pair, t0, t1) in pairs {
            if let Some((r0, r1)) = src.reserves(pair)? {
                self.pools.set_reserves(pair, t0, t1, r0, r1);
            }
        }
        Ok(())
    }

    /// Sets the last head without reloading (at start, from `eth_getBlockByNumber`).
    pub fn set_head(&mut self, head: Head) {
        self.last_head = Some(head);
    }
}

/// Why the tracker could not process a transaction or a head.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    /// A field of the frame is not of its type.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The node could not be asked for reserves.
    #[error(transparent)]
    Rpc(#[from] RpcError),
}
