//! The Ethereum side: pending Uniswap swaps from a node's mempool, decoded and priced.
//!
//! - [`tx`]: `eth_subscription` frames → pending transactions and heads (zero-copy).
//! - [`abi`]: a bounds-checked ABI reader for calldata.
//! - [`router`]: router calldata → [`router::SwapCall`] legs (V2 Router02, V3 SwapRouter /
//!   SwapRouter02 incl. `multicall`, UniversalRouter `execute`).
//! - [`v2`]: exact Uniswap V2 amounts and a pending-state pool map.
//! - [`output`]: the `pending_swap` JSON line shared by `crossbar mempool` and
//!   `crossbar decode --venue ethereum`.
//! - [`tracker`]: the pending-swap tracker tying them together (decode, load reserves, predict).
//! - [`watch`]: the mempool watcher: connection life cycle (reconnect, resubscribe, resync)
//!   around the tracker.
//! - [`feed`]: the DEX feed thread of `crossbar run`: pool states and pending swaps of the
//!   configured pools as market events on the core's ring.
//! - [`rpc`]: a small blocking JSON-RPC client over websocket (subscriptions, `eth_call`).
//!
//! Everything but [`rpc`], [`watch`] (and [`tracker`], through its reserve source) is pure: no I/O, no clock.

pub mod abi;
pub mod feed;
pub mod output;
pub mod router;
pub mod rpc;
pub mod tracker;
pub mod tx;
pub mod v2;
pub mod watch;

pub use output::{DecodeLineError, decode_notification_line};
pub use router::{Exact, MAX_PATH_TOKENS, Method, Path, Protocol, SkipReason, SwapCall, decode_swaps};
pub use tx::{Notification, PendingTx, parse_notification};
pub use v2::{Prediction, V2Pools};

pub use alloy_primitives::{Address, B256, U256};

use alloy_primitives::address;

/// Mainnet Uniswap V2 factory.
pub const MAINNET_V2_FACTORY: Address = address!("5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f");
/// Mainnet Uniswap V2 Router02.
pub const MAINNET_V2_ROUTER02: Address = address!("7a250d5630B4cF539739F2d5C75cA9C5F8BD6a0D");
/// Mainnet WETH9.
pub const MAINNET_WETH: Address = address!("C02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2");

/// Counts of pending transactions that produced no swap, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SkipCounts {
    /// Sent to an address that is not a tracked router (or a contract creation).
    pub not_router: u64,
    /// Unknown selector.
    pub unknown_selector: u64,
    /// A router call that does not swap.
    pub not_a_swap: u64,
    /// Calldata not matching its selector's ABI, or not hex.
    pub malformed: u64,
}

impl SkipCounts {
    /// Counts one skipped transaction.
    pub fn record(&mut self, reason: &SkipReason) {
        match reason {
            SkipReason::UnknownSelector(_) => self.unknown_selector += 1,
            SkipReason::NotASwap(_) => self.not_a_swap += 1,
            SkipReason::Calldata(_) => self.malformed += 1,
        }
    }
}
