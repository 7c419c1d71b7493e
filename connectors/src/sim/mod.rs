//! The loopback venue simulator: one seeded market model served on 127.0.0.1 in each venue's
//! exact wire format, so connectors run unchanged against it.
//!
//! [`Simulator::start`] builds the [`Market`] from a [`SimConfig`] and the instrument
//! [`Registry`], binds one listen address and serves, on one OS thread with a current-thread
//! Tokio runtime, every configured venue under a path prefix equal to its name:
//!
//! - `ws://ADDR/<venue>/ws/<stream>` (raw) and `ws://ADDR/<venue>/stream?streams=a/b` (combined,
//!   `{"stream":..,"data":..}`), plus `SUBSCRIBE` / `UNSUBSCRIBE` / `LIST_SUBSCRIPTIONS` on an
//!   open connection;
//! - `http://ADDR/<venue>/api/v3/depth` (spot) or `/fapi/v1/depth` (USD-M) REST snapshots whose
//!   `lastUpdateId` is consistent with the diff stream.
//!
//! - `ws://ADDR/ethereum`: an Ethereum node's websocket JSON-RPC (see [`eth`]) with one Uniswap V2
//!   pool per underlying against USDC, whose price lags the true price; pending swaps stream from
//!   `eth_subscribe` `newPendingTransactions`, blocks from `newHeads`. On unless
//!   `[ethereum] enabled = false`; [`Simulator::eth_url`] gives the URL.
//!
//! - `ws://ADDR/<venue>/v5/public/spot` or `/v5/public/linear` (Bybit v5) and
//!   `ws://ADDR/<venue>/ws/v5/public` (OKX v5): subscribe after connecting; a book subscription
//!   is answered by a snapshot, then deltas (`sim/topics.rs`, `sim/bybit.rs`, `sim/okx.rs`).
//!
//! A venue speaks the protocol its config gives it ([`Simulator::start_venues`]); without one,
//! `binance-spot…` names speak Binance spot and `binance-usdm…` Binance USD-M futures. The market advances `time_scale` × real time; venue timestamps are
//! simulated time from [`SIM_EPOCH_MS`].
//!
//! ```toml
//! seed = 7
//! time_scale = 3600.0          # 1 real second = 1 simulated hour: 8 h funding every 8 s
//! [[underlyings]]
//! name = "BTC"
//! price = "100000.00"
//! vol = 0.05                   # annualised, in simulated time
//! basis_mean_bps = 3.0
//! basis_vol_bps = 12.0
//! basis_reversion = 0.1        # per simulated hour
//! [ethereum]                   # optional; every key has a default (see `eth::EthSimConfig`)
//! block_ms = 1000              # a block every real second
//! arb_delay_ms = 2000          # arbitrageurs see the CEX price 2 s late
//! [faults]                     # optional, all off by default (see `faults`)
//! drop_rate = 0.01             # per frame; a dropped depth diff is a book gap
//! disconnect_every_s = 20.0    # mean seconds between injected disconnects per connection
//! ```
//!
//! `binance_rate_limits = false` (top level; default `true`) turns off Binance order entry's
//! request-weight and order-count refusals, for benchmarks only.

mod binance;
mod binance_trade;
pub mod book;
mod bybit;
mod bybit_trade;
pub mod eth;
mod eth_rpc;
mod eth_ws;
pub mod exchange;
pub mod faults;
pub mod model;
mod okx;
mod okx_trade;
mod private;
mod server;
mod topics;

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;

use crossbar_engine::instrument::{InstrumentId, Registry};
use serde::Deserialize;

pub use book::{BookSnapshot, DepthDiff, Level, Side, SimBook};
pub use eth::EthSimConfig;
pub use faults::{FaultConfig, FaultStats};
pub use model::{Market, MarketState, SIM_EPOCH_MS, SimEvent};

/// Simulator settings: the clock, the wire cadence and one market process per underlying.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// Seed of every random process: same seed, same market.
    pub seed: u64,
    /// Core the simulator's thread is pinned to (`None`: not pinned). On a 2-core machine the
    /// demo puts it beside the I/O thread, which sleeps in epoll, so the core thread keeps a
    /// core to itself.
    pub core: Option<usize>,
    /// Simulated seconds per real second (3600: an 8 h funding interval takes 8 real seconds).
    pub time_scale: f64,
    /// Real milliseconds between model steps.
    pub step_ms: u64,
    /// Levels per side of every book.
    pub depth_levels: usize,
    /// Real milliseconds between `depthUpdate` diffs (the stream is still named `@depth@100ms`).
    pub depth_interval_ms: u64,
    /// Real seconds between the server's websocket pings.
    pub ping_interval_s: u64,
    /// Real seconds a client may leave a ping unanswered before it is disconnected.
    pub pong_timeout_s: u64,
    /// Random aggressor trades per instrument per real second.
    pub trades_per_s: f64,
    /// Random resting-size changes per instrument per real second.
    pub book_updates_per_s: f64,
    /// Widest spread in ticks; each instrument's spread wanders in `1..=max_spread_ticks`.
    pub max_spread_ticks: u32,
    /// Typical quote-currency notional of one book level.
    pub level_notional: f64,
    /// Standard deviation of a spot venue's mid around the true price, in bps.
    pub venue_noise_bps: f64,
    /// Frames a client may have queued before it counts as too slow and is disconnected.
    pub client_queue: usize,
    /// One price process per underlying; each instrument follows the one named by its base.
    pub underlyings: Vec<UnderlyingConfig>,
    /// The Ethereum JSON-RPC endpoint and its Uniswap V2 pools (the `[ethereum]` section,
    /// optional: defaults serve it, `enabled = false` turns it off).
    pub ethereum: EthSimConfig,
    /// Injected feed faults (the `[faults]` section; all off by default), see [`faults`].
    pub faults: FaultConfig,
    /// Whether Binance order entry enforces its per-key rate limits (`REQUEST_WEIGHT` per
    /// minute, `ORDERS` per 10 s: -1003 / -1015 with status 429). On by default, as at the
    /// venue; `false` lets every request through (responses still carry `rateLimits` counts),
    /// so a benchmark can send orders at a rate no venue would accept (`crossbar bench`).
    pub binance_rate_limits: bool,
    /// Run the simulator's thread in the idle scheduling class (`SCHED_IDLE`), so it only takes
    /// CPU the engine leaves. `crossbar bench` sets it: over loopback, the kernel wakes the
    /// venue's thread inside the engine's own `send` of an order, and a normal-class wake-up
    /// (a preemption on the same core, an interrupt to the other) cost that send ~7 us more
    /// than the write itself on the reference machine; a real venue's wake-up happens on
    /// another machine. Default `false`.
    pub background: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            core: None,
            time_scale: 1.0,
            step_ms: 1,
            depth_levels: 20,
            depth_interval_ms: 100,
            ping_interval_s: 20,
            pong_timeout_s: 60,
            trades_per_s: 50.0,
            book_updates_per_s: 50.0,
            max_spread_ticks: 3,
            level_notional: 50_000.0,
            venue_noise_bps: 0.5,
            client_queue: 8_192,
            underlyings: vec![UnderlyingConfig::new("BTC", "100000.00"), UnderlyingConfig::new("ETH", "3500.00")],
            ethereum: EthSimConfig::default(),
            faults: FaultConfig::default(),
            binance_rate_limits: true,
            background: false,
        }
    }
}

/// The price process of one underlying, and the basis and funding of its perpetuals.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnderlyingConfig {
    /// Base asset this process drives (`BTC`), matched against instruments' `base`.
    pub name: String,
    /// Start price as a decimal string.
    pub price: String,
    /// Annualised volatility in simulated time.
    #[serde(default = "defaults::vol")]
    pub vol: f64,
    /// Standard deviation of log-volatility around `ln(vol)` (0.5: volatility mostly within
    /// 0.6×–1.6× `vol`); it mean-reverts over about an hour of simulated time.
    #[serde(default = "defaults::vol_of_vol")]
    pub vol_of_vol: f64,
    /// Expected price jumps per simulated day.
    #[serde(default = "defaults::jump_intensity")]
    pub jump_intensity: f64,
    /// Standard deviation of a jump's log size.
    #[serde(default = "defaults::jump_sigma")]
    pub jump_sigma: f64,
    /// Long-run mean of the perpetual basis `(perp mid − true) / true`, in bps.
    #[serde(default = "defaults::basis_mean_bps")]
    pub basis_mean_bps: f64,
    /// Stationary standard deviation of the basis around its mean, in bps.
    #[serde(default = "defaults::basis_vol_bps")]
    pub basis_vol_bps: f64,
    /// Mean-reversion speed of the basis, per simulated hour (0.1: a deviation halves in ~7 h).
    #[serde(default = "defaults::basis_reversion")]
    pub basis_reversion: f64,
    /// Hours of simulated time between funding settlements.
    #[serde(default = "defaults::funding_interval_h")]
    pub funding_interval_h: u32,
    /// Largest funding rate per interval, as a fraction (0.003 = 0.3 %).
    #[serde(default = "defaults::funding_cap")]
    pub funding_cap: f64,
}

mod defaults {
    pub(super) fn vol() -> f64 {
        0.5
    }
    pub(super) fn vol_of_vol() -> f64 {
        0.5
    }
    pub(super) fn jump_intensity() -> f64 {
        2.0
    }
    pub(super) fn jump_sigma() -> f64 {
        0.003
    }
    pub(super) fn basis_mean_bps() -> f64 {
        3.0
    }
    pub(super) fn basis_vol_bps() -> f64 {
        10.0
    }
    pub(super) fn basis_reversion() -> f64 {
        0.5
    }
    pub(super) fn funding_interval_h() -> u32 {
        8
    }
    pub(super) fn funding_cap() -> f64 {
        0.003
    }
}

impl UnderlyingConfig {
    /// An underlying named `name` starting at `price`, every other field at its default.
    pub fn new(name: &str, price: &str) -> Self {
        Self {
            name: name.to_owned(),
            price: price.to_owned(),
            vol: defaults::vol(),
            vol_of_vol: defaults::vol_of_vol(),
            jump_intensity: defaults::jump_intensity(),
            jump_sigma: defaults::jump_sigma(),
            basis_mean_bps: defaults::basis_mean_bps(),
            basis_vol_bps: defaults::basis_vol_bps(),
            basis_reversion: defaults::basis_reversion(),
            funding_interval_h: defaults::funding_interval_h(),
            funding_cap: defaults::funding_cap(),
        }
    }

    /// The start price; valid once [`SimConfig::validate`] passed.
    pub(crate) fn start_price(&self) -> f64 {
        self.price.parse().unwrap_or(f64::NAN)
    }
}

impl SimConfig {
    /// Checks every value is in range, so the model never meets a NaN or a zero step.
    ///
    /// # Errors
    /// [`SimError::Config`] naming the first offending field.
    pub fn validate(&self) -> Result<(), SimError> {
        let fail = |what: String| Err(SimError::Config(what));
        let finite = |v: f64| v.is_finite() && v >= 0.0;
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return fail(format!("time_scale must be positive, got {}", self.time_scale));
        }
        if !(1..=1_000).contains(&self.step_ms) {
            return fail(format!("step_ms must be in 1..=1000, got {}", self.step_ms));
        }
        if !(1..=5_000).contains(&self.depth_levels) {
            return fail(format!("depth_levels must be in 1..=5000, got {}", self.depth_levels));
        }
        if self.depth_interval_ms < self.step_ms {
            return fail("depth_interval_ms must be at least step_ms".into());
        }
        if self.ping_interval_s == 0 || self.pong_timeout_s == 0 {
            return fail("ping_interval_s and pong_timeout_s must be at least 1".into());
        }
        if !finite(self.trades_per_s) || !finite(self.book_updates_per_s) || !finite(self.venue_noise_bps) {
            return fail("trades_per_s, book_updates_per_s and venue_noise_bps must be finite and >= 0".into());
        }
        if self.max_spread_ticks == 0 || self.client_queue == 0 {
            return fail("max_spread_ticks and client_queue must be at least 1".into());
        }
        if !(self.level_notional.is_finite() && self.level_notional > 0.0) {
            return fail("level_notional must be positive".into());
        }
        if self.ethereum.enabled {
            self.ethereum.validate()?;
        }
        self.faults.validate().map_err(SimError::Config)?;
        for (i, u) in self.underlyings.iter().enumerate() {
            let name = &u.name;
            if name.is_empty() || self.underlyings[..i].iter().any(|o| o.name.eq_ignore_ascii_case(name)) {
                return fail(format!("underlying name {name:?} is empty or listed twice"));
            }
            let plain = !u.price.is_empty() && u.price.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            if !(plain && u.start_price() > 0.0 && u.start_price().is_finite()) {
                return fail(format!("underlying {name}: price {:?} is not a positive decimal", u.price));
            }
            let values = [u.vol, u.vol_of_vol, u.jump_intensity, u.jump_sigma, u.basis_vol_bps];
            if !values.into_iter().all(finite) || !u.basis_mean_bps.is_finite() {
                return fail(format!("underlying {name}: volatilities, jumps and basis must be finite and >= 0"));
            }
            if !(u.basis_reversion.is_finite() && u.basis_reversion > 0.0) {
                return fail(format!("underlying {name}: basis_reversion must be positive"));
            }
            if u.funding_interval_h == 0 || !(u.funding_cap.is_finite() && u.funding_cap > 0.0) {
                return fail(format!("underlying {name}: funding_interval_h and funding_cap must be positive"));
            }
        }
        Ok(())
    }
}

/// Why the simulator did not start or stopped badly. All are fatal to the simulator: fix the
/// config, the address or the bug, and start again.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A config value out of range.
    #[error("invalid simulator config: {0}")]
    Config(String),
    /// A venue whose name is not of a protocol the simulator speaks.
    #[error("venue {0:?}: the simulator needs its protocol (binance-spot*/binance-usdm* names are recognised)")]
    UnsupportedVenue(String),
    /// An instrument the simulator cannot quote.
    #[error("instrument {symbol} on {venue}: {reason}")]
    Instrument {
        /// Its venue.
        venue: String,
        /// Its symbol.
        symbol: String,
        /// What is missing or unsupported.
        reason: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The Tokio runtime or the simulator thread could not be created.
    #[error("cannot start the simulator runtime: {0}")]
    Runtime(std::io::Error),
    /// The simulator thread panicked (a bug); the panic message went to stderr.
    #[error("the simulator thread panicked")]
    Panicked,
}

/// Counters of the simulator's server, read with [`Simulator::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Model steps taken.
    pub steps: u64,
    /// Data frames written to websocket clients.
    pub frames_sent: u64,
    /// Websocket clients connected now.
    pub clients: u64,
    /// Websocket connections accepted since start.
    pub connections: u64,
    /// Websocket connections ended since start, for any reason.
    pub disconnects: u64,
    /// Of those, clients disconnected because their send queue overflowed or writes stalled.
    pub slow_disconnects: u64,
    /// Of those, clients disconnected for not answering a ping in time.
    pub pong_timeouts: u64,
    /// REST requests answered.
    pub rest_requests: u64,
    /// Faults injected (all zero while faults are off).
    pub faults: FaultStats,
}

/// A running simulator: its thread, its address and a window on its market.
///
/// Dropping it stops the server and joins its thread, like [`Simulator::shutdown`].
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Builds the market, binds `listen` (port 0 picks a free port) and serves it from a new
    /// thread; returns once the socket is listening.
    ///
    /// # Errors
    /// [`SimError::Config`] / [`SimError::Instrument`] / [`SimError::UnsupportedVenue`] for a
    /// config the simulator cannot serve, [`SimError::Bind`] when the address is taken,
    /// [`SimError::Runtime`] when the runtime or thread cannot be created.
    pub fn start(cfg: &SimConfig, registry: &Registry, listen: SocketAddr) -> Result<Self, SimError> {
        Self::start_venues(cfg, registry, &[], listen)
    }

    /// As [`Simulator::start`], serving each venue in the protocol `venues` configures for it
    /// (Bybit v5 and OKX v5 too: see [`crate::venue::Protocol`]); a venue not listed there is
    /// recognised by its `binance-spot…` / `binance-usdm…` name.
    ///
    /// # Errors
    /// As [`Simulator::start`].
    pub fn start_venues(
        cfg: &SimConfig,
        registry: &Registry,
        venues: &[crate::venue::VenueConfig],
        listen: SocketAddr,
    ) -> Result<Self, SimError> {
        let market = Market::new(cfg, registry)?;
        let apis: Vec<(String, crate::venue::Protocol)> = venues.iter().map(|v| (v.name.clone(), v.protocol)).collect();
        let shared = Arc::new(server::Shared::new(market, registry, cfg, &apis)?);
        let bind = |source| SimError::Bind { addr: listen, source };
        let std_listener = std::net::TcpListener::bind(listen).map_err(bind)?;
        std_listener.set_nonblocking(true).map_err(bind)?;
        let addr = std_listener.local_addr().map_err(bind)?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(SimError::Runtime)?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener).map_err(bind)?
        };
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let served = Arc::clone(&shared);
        let background = cfg.background;
        let thread = crossbar_engine::runtime::spawn_pinned("crossbar-sim", cfg.core, move || {
            // Refused (a restricted container): the simulator still runs, at normal priority.
            if background {
                let _ = crossbar_engine::runtime::set_current_thread_background();
            }
            runtime.block_on(server::run(listener, served, stop_rx))
        })
        .map_err(|e| SimError::Runtime(std::io::Error::other(e.to_string())))?;
        Ok(Self { addr, shared, stop, thread: Some(thread) })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Websocket base URL of a venue: append `/ws/<stream>` or `/stream?streams=…`.
    pub fn base_url(&self, venue: &str) -> String {
        format!("ws://{}/{venue}", self.addr)
    }

    /// REST base URL of a venue: append `/api/v3/depth?…` (spot) or `/fapi/v1/depth?…` (USD-M).
    pub fn rest_url(&self, venue: &str) -> String {
        format!("http://{}/{venue}", self.addr)
    }

    /// Websocket URL of the Ethereum JSON-RPC endpoint (`ws://ADDR/ethereum`), when enabled:
    /// what `crossbar mempool --rpc` takes (its default factory and router are the simulator's).
    pub fn eth_url(&self) -> Option<String> {
        self.shared.eth.is_some().then(|| format!("ws://{}/{}", self.addr, eth::PATH))
    }

    /// The simulated Uniswap V2 pools now (reserves as of the last block); empty when the
    /// endpoint is off.
    pub fn eth_pools(&self) -> Vec<eth::Pool> {
        self.shared.eth.as_ref().map(|n| eth_ws::lock(n).chain().pools().to_vec()).unwrap_or_default()
    }

    /// The current true price of an underlying (what the pools lag), `None` for an unknown one.
    pub fn true_price(&self, underlying: &str) -> Option<f64> {
        self.market().true_price(underlying)
    }

    /// The server's counters now.
    pub fn stats(&self) -> SimStats {
        SimStats { faults: self.shared.fault_stats(), ..self.shared.stats.read() }
    }

    /// Replaces the fault configuration of a running simulator (a test turns faults off before
    /// it compares books); [`FaultConfig::default`] stops every fault.
    ///
    /// # Errors
    /// [`SimError::Config`] for an invalid configuration, which is not applied.
    pub fn set_faults(&self, cfg: FaultConfig) -> Result<(), SimError> {
        cfg.validate().map_err(SimError::Config)?;
        self.shared.set_faults(cfg);
        Ok(())
    }

    /// Stops (`true`) or restarts the market: while paused nothing changes and no market data is
    /// sent, so a client's books can be compared with [`Simulator::book_snapshot`] at rest.
    pub fn set_paused(&self, paused: bool) {
        self.shared.paused.store(paused, std::sync::atomic::Ordering::Relaxed);
    }

    /// The simulator's current book of an instrument, full depth; `None` for an unknown id.
    /// Like a REST snapshot, it is consistent with the diff stream at `last_update_id`.
    pub fn book_snapshot(&self, instrument: InstrumentId) -> Option<BookSnapshot> {
        self.market().snapshot(instrument, usize::MAX)
    }

    /// Stops the market for good after publishing a last diff of every changed book, so a
    /// client that has read everything holds exactly [`Simulator::book_snapshot`]'s books.
    pub fn pause(&self) {
        self.shared.paused.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Current simulated time, ms since the Unix epoch.
    pub fn sim_time_ms(&self) -> i64 {
        self.market().time_ms()
    }

    /// Registers an API key on venue `venue` (its configured name), with the default
    /// balances: the simulator then accepts requests signed with it. A key registered twice
    /// keeps its first account.
    pub fn add_account(&self, venue: &str, credentials: crate::order::Credentials) -> exchange::AccountId {
        self.shared.lock_exchange().add_account(venue, credentials)
    }

    /// Reads the back office (accounts, orders, fills, positions, balances), for tests and
    /// reconciliation checks.
    pub fn with_exchange<R>(&self, f: impl FnOnce(&exchange::Exchange) -> R) -> R {
        f(&self.shared.lock_exchange())
    }

    fn market(&self) -> std::sync::MutexGuard<'_, Market> {
        self.shared.market.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops serving (clients get a close frame), and joins the thread.
    ///
    /// # Errors
    /// [`SimError::Panicked`] when the simulator thread had panicked.
    pub fn shutdown(mut self) -> Result<(), SimError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), SimError> {
        let Some(thread) = self.thread.take() else { return Ok(()) };
        // An error means the thread is gone already; the join below tells how.
        let _ = self.stop.send(true);
        thread.join().map_err(|_| SimError::Panicked)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        // Nobody to report a panic to here; `shutdown` is the way to see it.
        let _ = self.stop_and_join();
    }
}

/// Shared test fixtures: a config and a registry with spot and perpetual instruments.
#[cfg(test)]
pub(crate) mod tests {
    use crossbar_engine::instrument::{InstrumentConfig, InstrumentKind, Registry};

    use super::*;

    pub(crate) fn config() -> SimConfig {
        SimConfig { seed: 42, time_scale: 3_600.0, ..SimConfig::default() }
    }

    pub(crate) fn registry() -> Registry {
        let inst = |venue: &str, symbol: &str, kind, base: &str, tick: &str, lot: &str| InstrumentConfig {
            venue: venue.into(),
            symbol: symbol.into(),
            kind,
            base: base.into(),
            quote: "USDT".into(),
            tick: tick.parse().unwrap(),
            lot: lot.parse().unwrap(),
            contract_size: "1".parse().unwrap(),
            taker_fee: "0.0004".parse().unwrap(),
            maker_fee: "0.0002".parse().unwrap(),
        };
        let venues = ["binance-spot".to_owned(), "binance-usdm".to_owned()];
        Registry::new(
            &venues,
            &[
                inst("binance-spot", "BTCUSDT", InstrumentKind::Spot, "BTC", "0.01", "0.00001"),
                inst("binance-usdm", "BTCUSDT", InstrumentKind::Perpetual, "BTC", "0.1", "0.001"),
                inst("binance-spot", "ETHUSDT", InstrumentKind::Spot, "ETH", "0.01", "0.0001"),
                inst("binance-usdm", "ETHUSDT", InstrumentKind::Perpetual, "ETH", "0.01", "0.001"),
            ],
        )
        .unwrap()
    }

    #[test]
    fn default_config_is_valid_and_bad_values_are_named() {
        SimConfig::default().validate().unwrap();
        let mut cfg = SimConfig::default();
        cfg.underlyings[1].price = "-3".into();
        assert!(matches!(cfg.validate(), Err(SimError::Config(m)) if m.contains("ETH")));
        let cfg = SimConfig { step_ms: 0, ..SimConfig::default() };
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn an_instrument_without_underlying_is_refused() {
        let cfg = SimConfig { underlyings: vec![UnderlyingConfig::new("BTC", "1")], ..SimConfig::default() };
        let err = Market::new(&cfg, &registry()).err().unwrap();
        assert!(matches!(err, SimError::Instrument { ref symbol, .. } if symbol == "ETHUSDT"), "{err}");
    }
}
