//! The mempool watcher: one node connection kept alive around a [`SwapTracker`].
//!
//! [`MempoolWatcher::poll`] waits (bounded) for the next frame and turns it into pending-swap
//! events. It owns the connection's life cycle: connect with backoff, subscribe to
//! `newPendingTransactions` with full transactions (or hashes, fetched with
//! `eth_getTransactionByHash`, when the node refuses full ones or [`MempoolWatcher::hash_only`]
//! asks for it) and to `newHeads`, read the latest head and reload every tracked pair's
//! reserves; after a disconnect it does all of that again, so the pool state matches the node.
//! Blocking, with every wait bounded: run it on an I/O thread.

use std::time::{Duration, Instant};

use super::rpc::{RpcClient, RpcError};
use super::tracker::{PendingSwapEvent, SwapTracker, TrackError};
use super::tx::{Notification, parse_notification, parse_object};

/// What one [`MempoolWatcher::poll`] did.
#[derive(Debug)]
pub enum WatchEvent {
    /// Nothing arrived in time (or the frame was not of interest).
    Idle,
    /// A pending transaction produced this many events.
    Swaps(usize),
    /// A new head; the pairs' reserves were reloaded.
    Head {
        /// Its number.
        number: u64,
        /// Whether its parent was not the previous head.
        reorg: bool,
    },
    /// A (re)connection completed: subscribed and resynced.
    Connected,
    /// The connection failed or broke; the next poll retries after a backoff.
    Disconnected(RpcError),
}

/// Keeps a node connection and a [`SwapTracker`] in step; see the [module documentation](self).
#[derive(Debug)]
pub struct MempoolWatcher {
    url: String,
    timeout: Duration,
    tracker: SwapTracker,
    rpc: Option<RpcClient>,
    hash_only: bool,
    backoff: Duration,
    retry_at: Instant,
    /// Completed connections (the first one included).
    pub connects: u64,
}

impl MempoolWatcher {
    /// A watcher of the node at `url` (`ws://host:port`) feeding `tracker`; `timeout` bounds
    /// every call. Nothing is connected until the first [`MempoolWatcher::poll`].
    pub fn new(url: &str, tracker: SwapTracker, timeout: Duration) -> Self {
        Self {
            url: url.to_owned(),
            timeout,
            tracker,
            rpc: None,
            hash_only: false,
            backoff: Duration::from_millis(100),
            retry_at: Instant::now(),
            connects: 0,
        }
    }

    /// Subscribe to hashes only and fetch each transaction (for nodes without full-transaction
    /// subscriptions; set before the first poll).
    pub fn hash_only(mut self, yes: bool) -> Self {
        self.hash_only = yes;
        self
    }

    /// The tracker (pool state, skip counts).
    pub fn tracker(&self) -> &SwapTracker {
        &self.tracker
    }

    /// The live connection, if any (for extra calls by the owner).
    pub fn rpc(&mut self) -> Option<&mut RpcClient> {
        self.rpc.as_mut()
    }

    /// Drops the connection (the next poll reconnects and resyncs).
    pub fn disconnect(&mut self) {
        if let Some(mut rpc) = self.rpc.take() {
            rpc.close();
        }
    }

    fn connect(&mut self) -> Result<RpcClient, RpcError> {
        let mut rpc = RpcClient::connect(&self.url, self.timeout)?;
        let full = !self.hash_only && rpc.subscribe("[\"newPendingTransactions\",true]").is_ok();
        if !full {
            rpc.subscribe("[\"newPendingTransactions\"]")?;
        }
        rpc.subscribe("[\"newHeads\"]")?;
        let latest = rpc.call("eth_getBlockByNumber", "[\"latest\",false]")?;
        let raw = serde_json::to_vec(&latest).map_err(|e| RpcError::BadResponse(e.to_string()))?;
        if let Ok(Notification::Head(h)) = parse_object(&raw) {
            self.tracker.set_head(h);
        }
        self.tracker.resync(&mut rpc).map_err(into_rpc)?;
        Ok(rpc)
    }

    /// Waits up to `wait` for one frame and processes it, appending pending-swap events to
    /// `out`; (re)connects first when needed (not before the backoff has passed).
    pub fn poll(&mut self, wait: Duration, out: &mut Vec<PendingSwapEvent>) -> WatchEvent {
        let Some(rpc) = self.rpc.as_mut() else {
            let now = Instant::now();
            if now < self.retry_at {
                std::thread::sleep((self.retry_at - now).min(wait));
                return WatchEvent::Idle;
            }
            return match self.connect() {
                Ok(rpc) => {
                    self.rpc = Some(rpc);
                    self.connects += 1;
                    self.backoff = Duration::from_millis(100);
                    WatchEvent::Connected
                }
                Err(e) => self.failed(e),
            };
        };
        let frame = match rpc.next_frame(wait) {
            Ok(Some(f)) => f,
            Ok(None) => return WatchEvent::Idle,
            Err(e) => return self.failed(e),
        };
        let seen_ms = Some(unix_ms());
        let result = match parse_notification(&frame) {
            Ok(Notification::PendingTx(tx)) => self.tracker.on_tx(&tx, seen_ms, rpc, out).map(WatchEvent::Swaps),
            Ok(Notification::PendingHash(hash)) => {
                match rpc.call("eth_getTransactionByHash", &format!("[\"{hash:#x}\"]")) {
                    Ok(tx) if tx.is_null() => Ok(WatchEvent::Idle), // already mined or dropped
                    Ok(tx) => {
                        let raw = serde_json::to_vec(&tx).unwrap_or_default();
                        match parse_object(&raw) {
                            Ok(Notification::PendingTx(tx)) => {
                                self.tracker.on_tx(&tx, seen_ms, rpc, out).map(WatchEvent::Swaps)
                            }
                            _ => Ok(WatchEvent::Idle),
                        }
                    }
                    Err(e) => Err(TrackError::Rpc(e)),
                }
            }
            Ok(Notification::Head(h)) => {
                self.tracker.on_head(h, rpc).map(|reorg| WatchEvent::Head { number: h.number, reorg })
            }
            Ok(_) | Err(_) => Ok(WatchEvent::Idle),
        };
        match result {
            Ok(ev) => ev,
            // A transaction whose input is not hex: counted by the tracker, connection fine.
            Err(TrackError::Frame(_)) => WatchEvent::Idle,
            Err(TrackError::Rpc(e)) if e.is_disconnect() || matches!(e, RpcError::Timeout(_)) => self.failed(e),
            // The node refused one call (a pair it cannot read): resync on the next head.
            Err(TrackError::Rpc(_)) => WatchEvent::Idle,
        }
    }

    fn failed(&mut self, e: RpcError) -> WatchEvent {
        self.disconnect();
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(Duration::from_secs(5));
        WatchEvent::Disconnected(e)
    }
}

fn into_rpc(e: TrackError) -> RpcError {
    match e {
        TrackError::Rpc(e) => e,
        TrackError::Frame(f) => RpcError::BadResponse(f.to_string()),
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
