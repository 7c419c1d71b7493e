//! The real pipeline under a replayed stream, from the market-data socket to the order socket:
//! replay server → loopback websockets → the real [`IoThread`] (decode, rings, gateway) → the
//! real core thread ([`run_core`]: books, basis strategy, risk, OMS) → command ring → the I/O
//! thread's gateway, which (by default, [`BenchGateway::Venue`]) encodes and signs each order as
//! a Binance WebSocket API `order.place` and writes it to a logged-in order session's socket.
//! Those sessions (one per fixture venue, binance-spot and binance-usdm) talk over loopback to an
//! embedded venue simulator ([`Simulator`]) with throw-away accounts, exactly as `crossbar run`
//! does with `gateway = "venue"`; its answers (acks, fills, rejects) come back through the same
//! gateway. [`BenchGateway::Paper`] swaps in the in-process paper matcher instead (no order
//! socket). One call of [`run_phase`] builds it all fresh (simulator included), logs the sessions
//! in, then runs one stream through it and returns the merged histograms and counters.
//!
//! The decoder is wrapped in [`BenchDecoder`], a pass-through in every normal build. The
//! test-only cargo features `regression-sleep` (a busy-wait per frame) and `regression-alloc` (a
//! heap allocation per frame) put a deliberate regression there, so the latency gate can be shown
//! to fail; the default build contains neither.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbar_connectors::binance::{BinanceDecoder, BinanceMarket};
use crossbar_connectors::feed::{DecodeError, FeedDecoder, FrameKind, SymbolTable};
use crossbar_connectors::io::{FeedSpec, IoCounters, IoRings, IoThread};
use crossbar_connectors::order::ephemeral::duplicate;
use crossbar_connectors::order::factory::session_instruments;
use crossbar_connectors::order::{SessionConfig, VenueGateway, ephemeral_credentials, session_for};
use crossbar_connectors::sim::{SimConfig, Simulator, UnderlyingConfig};
use crossbar_connectors::venue::Protocol;
use crossbar_engine::clock::{MonotonicClock, now_ns};
use crossbar_engine::core::{Core, CoreControl, CoreCounters, CoreRings, run_core};
use crossbar_engine::event::MarketEvent;
use crossbar_engine::gateway::{Gateway, VenueCounters};
use crossbar_engine::instrument::Registry;
use crossbar_engine::latency::LatencyRecorder;
use crossbar_engine::paper::{PaperConfig, PaperGateway};
use crossbar_engine::ring::{IdlePolicy, Ring};
use crossbar_engine::risk::RiskConfig;
use crossbar_engine::runtime::spawn_pinned;

use crate::replay::{Conn, Pace, ReplayError, ReplayFrame, ReplayServer, SendStats};
use crate::{SPOT, USDM, basis_strategy, registry};

/// Busy-wait per decoded frame under the `regression-sleep` feature: about the whole
/// `recv_to_decoded` median on the reference machine (300-480 ns), i.e. that stage made about
/// 2x slower, which its 600 ns median ceiling must catch.
#[cfg(feature = "regression-sleep")]
pub const REGRESSION_SLEEP_NS: u64 = 500;

/// The engine's Binance decoder, plus (only under a `regression-*` test feature) a deliberate
/// regression per frame.
#[derive(Debug)]
pub struct BenchDecoder(pub BinanceDecoder);

impl FeedDecoder for BenchDecoder {
    #[inline]
    fn decode(&mut self, frame: &mut [u8], recv_ns: u64, out: &mut Vec<MarketEvent>) -> Result<FrameKind, DecodeError> {
        #[cfg(feature = "regression-sleep")]
        {
            let until = now_ns() + REGRESSION_SLEEP_NS;
            while now_ns() < until {
                std::hint::spin_loop();
            }
        }
        #[cfg(feature = "regression-alloc")]
        {
            std::hint::black_box(Vec::<u8>::with_capacity(64));
        }
        self.0.decode(frame, recv_ns, out)
    }
}

/// Hooks the caller (the `crossbar bench` binary, which owns the counting allocator) uses to
/// count allocations on the engine's threads during the measured window only.
#[derive(Clone, Copy, Debug)]
pub struct Hooks {
    /// Called first thing on the I/O thread and on the core thread.
    pub thread_start: fn(),
    /// Called with `true` when the measured window opens (after warm-up), `false` when it closes.
    pub window: fn(bool),
}

impl Default for Hooks {
    fn default() -> Self {
        Self { thread_start: || {}, window: |_| {} }
    }
}

/// Where the pipeline's orders go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchGateway {
    /// The real order path: Binance WebSocket API sessions (protocol `binance-ws-api`) writing
    /// signed `order.place` frames to an embedded venue simulator over loopback.
    Venue,
    /// The in-process paper matcher ([`PhaseConfig::paper_latency_us`]): no order socket; the
    /// bench's baseline before the venue path existed.
    Paper,
}

/// One run of the pipeline.
#[derive(Clone, Debug)]
pub struct PhaseConfig {
    /// The frames to replay.
    pub frames: Arc<Vec<ReplayFrame>>,
    /// How fast.
    pub pace: Pace,
    /// Market events the core must have processed before the measured window opens.
    pub warm_up_events: u64,
    /// Pinned cores: (I/O thread and replay server, core thread). `None` leaves one unpinned.
    pub cores: (Option<usize>, Option<usize>),
    /// Allocation hooks.
    pub hooks: Hooks,
    /// Where orders go.
    pub gateway: BenchGateway,
    /// Paper venue latency (with [`BenchGateway::Paper`]).
    pub paper_latency_us: u64,
}

/// What one run measured.
#[derive(Debug)]
pub struct PhaseResult {
    /// I/O and core histograms, merged.
    pub latency: LatencyRecorder,
    /// I/O thread counters.
    pub io: IoCounters,
    /// Core counters.
    pub core: CoreCounters,
    /// Orders sent by the OMS.
    pub orders_sent: u64,
    /// Fills applied.
    pub fills: u64,
    /// What the replay server sent.
    pub sent: SendStats,
    /// Market events (data, not feed status) the core processed.
    pub market_events: u64,
    /// Market events processed inside the measured window.
    pub window_events: u64,
    /// ns from the first frame written to the last event processed.
    pub elapsed_ns: u64,
    /// The gateway's protocol name (`binance-ws-api`, `paper`).
    pub gateway: &'static str,
    /// Per venue order-entry counters at the end (sent, acks, fills, rejects, rate limited…).
    pub venues: Vec<VenueCounters>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The replay server failed.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// A thread could not start, or died.
    #[error("pipeline: {0}")]
    Thread(String),
    /// The order sessions could not start or log in to the simulator.
    #[error("pipeline: venue order entry: {0}")]
    Venue(String),
    /// Events never reached the core.
    #[error("pipeline: only {got} of {want} market events reached the core within {secs} s")]
    Stalled {
        /// Processed.
        got: u64,
        /// Expected.
        want: u64,
        /// How long it waited.
        secs: u64,
    },
}

/// Market events the stream decodes to, counted with a fresh decoder pair (the same code the
/// I/O thread runs), so a run knows when the core has seen everything.
pub fn expected_events(frames: &[ReplayFrame]) -> u64 {
    let registry = registry();
    let mut spot = decoder(&registry, BinanceMarket::Spot, SPOT);
    let mut usdm = decoder(&registry, BinanceMarket::UsdM, USDM);
    let mut out = Vec::with_capacity(64);
    let mut buf = Vec::with_capacity(4096);
    let mut n = 0u64;
    for f in frames {
        buf.clear();
        buf.extend_from_slice(f.payload());
        out.clear();
        let d = if f.conn == Conn::Spot { &mut spot } else { &mut usdm };
        if d.decode(&mut buf, 1, &mut out) == Ok(FrameKind::Market) {
            n += out.len() as u64;
        }
    }
    n
}

fn decoder(registry: &crossbar_engine::instrument::Registry, market: BinanceMarket, venue: &str) -> BinanceDecoder {
    let id = registry.venue_id(venue).expect("fixture venue");
    BinanceDecoder::new(market, SymbolTable::for_venue(registry, id))
}

/// How long a run may take past the stream's own length before it is declared stalled.
const STALL_GRACE: Duration = Duration::from_secs(20);

/// No progress for this long after warm-up means the stream is over (some quotes conflated).
const QUIET_NS: u64 = 500_000_000;

/// Price the simulator's BTC starts at: the seeded stream's start (65,000.00, see
/// [`crate::replay::seeded_stream`]), so the strategy's IOC orders meet books near their prices.
pub const SIM_BTC_PRICE: &str = "65000.00";

/// The simulator's perpetual basis, fixed (no basis volatility): its perp book sits ~25 bps over
/// spot, above the stream's perp bid in its wide phase (~15 bps over spot), so the strategy's
/// entry sells fill and its spot hedges fill; the exits (perp buys near spot) expire against
/// the static book, and the strategy keeps trying them all run — every order still goes out
/// and comes back (ack, fill or expiry) over the real protocol.
pub const SIM_BASIS_BPS: f64 = 25.0;

/// How long the order sessions may take to connect and log in.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The bench's venue simulator: only order entry is used (no market-data client connects), so
/// its model is made as cheap as it can be: one step a second, no random trades, no Ethereum
/// node, no price jumps or basis noise, and no Binance rate limits (a bench sends far more
/// orders than an account may: `SimConfig::binance_rate_limits`).
pub fn sim_config(core: Option<usize>) -> SimConfig {
    SimConfig {
        seed: 7,
        core,
        time_scale: 1.0,
        step_ms: 1_000,
        depth_interval_ms: 1_000,
        trades_per_s: 0.0,
        book_updates_per_s: 1.0,
        venue_noise_bps: 0.0,
        underlyings: vec![UnderlyingConfig {
            vol: 0.05,
            jump_intensity: 0.0,
            basis_mean_bps: SIM_BASIS_BPS,
            basis_vol_bps: 0.0,
            ..UnderlyingConfig::new("BTC", SIM_BTC_PRICE)
        }],
        ethereum: crossbar_connectors::sim::EthSimConfig { enabled: false, ..Default::default() },
        binance_rate_limits: false,
        background: true,
        ..SimConfig::default()
    }
}

/// One Binance order session per fixture venue (spot: an Ed25519 key and `session.logon`;
/// USD-M: an HMAC key signing every request), on fresh random credentials registered with `sim`
/// as its accounts (as `crossbar run` does for a simulated venue), connected and logged in.
///
/// # Errors
/// [`PipelineError::Venue`] when a session cannot be made or is not logged in within 10 s.
pub fn venue_gateway(sim: &Simulator, registry: &Registry) -> Result<VenueGateway, PipelineError> {
    let err = |e: &dyn std::fmt::Display| PipelineError::Venue(e.to_string());
    let mut sessions = Vec::with_capacity(2);
    for (name, protocol) in [(SPOT, Protocol::BinanceSpot), (USDM, Protocol::BinanceUsdm)] {
        let venue = registry.venue_id(name).expect("fixture venue");
        let credentials = ephemeral_credentials(protocol).map_err(|e| err(&e))?;
        sim.add_account(name, duplicate(&credentials));
        sessions.push(
            session_for(SessionConfig {
                venue,
                venue_name: name.to_owned(),
                protocol,
                ws_url: sim.base_url(name),
                rest_url: sim.rest_url(name),
                credentials,
                instruments: session_instruments(registry, venue),
                recv_window_ms: 5_000,
            })
            .map_err(|e| err(&e))?,
        );
    }
    let mut gateway = VenueGateway::new(sessions).map_err(|e| err(&e))?;
    gateway.connect_all(LOGIN_TIMEOUT);
    let down = gateway.not_ready();
    if !down.is_empty() {
        let names: Vec<String> = down.iter().map(|(v, p)| format!("{} ({p})", registry.venue_name(*v))).collect();
        return Err(PipelineError::Venue(format!(
            "not logged in after {} s: {}",
            LOGIN_TIMEOUT.as_secs(),
            names.join(", ")
        )));
    }
    Ok(gateway)
}

/// Runs `cfg.frames` through a fresh pipeline and returns what it measured. With
/// [`BenchGateway::Venue`] a simulator is started first and both order sessions are logged in
/// before the I/O thread starts: the stream starts only once orders can leave.
///
/// # Errors
/// A [`PipelineError`] when a thread, the replay server or the order sessions fail, or the
/// events stall.
pub fn run_phase(cfg: &PhaseConfig) -> Result<PhaseResult, PipelineError> {
    let registry = registry();
    match cfg.gateway {
        BenchGateway::Paper => {
            let paper = PaperConfig { latency_us: cfg.paper_latency_us, max_resting: 256 };
            run_with(cfg, &registry, PaperGateway::new(Arc::clone(&registry), &paper))
        }
        BenchGateway::Venue => {
            // The simulator runs beside the I/O thread in the idle scheduling class: over
            // loopback the kernel wakes the venue's thread inside the I/O thread's own `send`,
            // and a normal-class wake-up (preempting the writer on its core, or an interrupt to
            // the core thread's) was charged to `risk_passed_to_order_written` (p50 15-17 us
            // against 9-10 us). As a background thread on the I/O core it runs when the I/O
            // thread parks, and never on the spinning core thread's core.
            let sim = Simulator::start(&sim_config(cfg.cores.0), &registry, "127.0.0.1:0".parse().expect("address"))
                .map_err(|e| PipelineError::Venue(e.to_string()))?;
            let gateway = venue_gateway(&sim, &registry)?;
            let result = run_with(cfg, &registry, gateway);
            sim.shutdown().map_err(|e| PipelineError::Venue(e.to_string()))?;
            result
        }
    }
}

fn run_with<G: Gateway + Send + 'static>(
    cfg: &PhaseConfig,
    registry: &Arc<Registry>,
    gateway: G,
) -> Result<PhaseResult, PipelineError> {
    let want = expected_events(&cfg.frames);
    let feeds = [(Conn::Spot, BinanceMarket::Spot), (Conn::Usdm, BinanceMarket::UsdM)];
    let server = ReplayServer::start(Arc::clone(&cfg.frames), cfg.pace, cfg.cores.0)?;
    let specs: Vec<FeedSpec<BenchDecoder>> = feeds
        .iter()
        .map(|&(conn, market)| {
            let venue = registry.venue_id(conn.venue()).expect("fixture venue");
            FeedSpec {
                venue: conn.venue().to_owned(),
                url: server.url(conn),
                subscribe: Vec::new(),
                heartbeat: crossbar_connectors::io::Heartbeat::default(),
                resubscribe: Vec::new(),
                decoder: BenchDecoder(BinanceDecoder::new(market, SymbolTable::for_venue(registry, venue))),
                instruments: registry.instruments().iter().filter(|i| i.venue == venue).map(|i| i.id).collect(),
                snapshot_urls: Vec::new(),
            }
        })
        .collect();
    let status_events = specs.iter().map(|s| s.instruments.len() as u64).sum::<u64>();

    let rings = IoRings { market: Ring::new(65_536), orders: Ring::new(4_096), commands: Ring::new(4_096) };
    let core_rings = CoreRings {
        market: Arc::clone(&rings.market),
        orders: Arc::clone(&rings.orders),
        commands: Arc::clone(&rings.commands),
    };
    let io =
        IoThread::new(specs, gateway, rings, IdlePolicy::Park).map_err(|e| PipelineError::Thread(e.to_string()))?;
    let waker = io.waker();
    let control = Arc::new(CoreControl { idle: IdlePolicy::Spin, ..CoreControl::default() });
    let io_stop = Arc::new(AtomicBool::new(false));
    let hooks = cfg.hooks;

    let io_handle = {
        let stop = Arc::clone(&io_stop);
        spawn_pinned("crossbar-io", cfg.cores.0, move || {
            (hooks.thread_start)();
            io.run(&stop)
        })
        .map_err(|e| PipelineError::Thread(e.to_string()))?
    };
    let core_handle = {
        let control = Arc::clone(&control);
        let core = Core::new(Arc::clone(registry), vec![basis_strategy(registry)], RiskConfig::default());
        spawn_pinned("crossbar-core", cfg.cores.1, move || {
            (hooks.thread_start)();
            let notify = move || {
                let _ = waker.wake();
            };
            run_core(core, &core_rings, &MonotonicClock, &control, &notify)
        })
        .map_err(|e| PipelineError::Thread(e.to_string()))?
    };

    let progress = || control.progress.market_events.load(Ordering::Relaxed);
    let outcome = drive(cfg, &server, &progress, status_events, want);

    control.stop.store(true, Ordering::Relaxed);
    let core = core_handle.join().map_err(|_| PipelineError::Thread("core thread panicked".into()));
    io_stop.store(true, Ordering::Relaxed);
    let io_report = io_handle.join().map_err(|_| PipelineError::Thread("I/O thread panicked".into()));
    let sent = server.finish();
    let (window_events, done_ns) = outcome?;
    let (core, io_report, sent) = (core?, io_report?, sent?);

    let mut latency = io_report.latency.clone();
    latency.merge(core.latency());
    let market_events = core.counters().market_events.saturating_sub(status_events);
    Ok(PhaseResult {
        latency,
        io: io_report.counters,
        core: *core.counters(),
        orders_sent: core.oms().counters().sent,
        fills: core.oms().counters().fills,
        market_events,
        window_events,
        elapsed_ns: done_ns.saturating_sub(sent.started_ns),
        sent,
        gateway: io_report.gateway,
        venues: io_report.venues,
    })
}

/// Waits for the connections, starts the stream, opens and closes the measured window, and
/// returns (events in the window, time the last event was seen processed).
fn drive(
    cfg: &PhaseConfig,
    server: &ReplayServer,
    progress: &dyn Fn() -> u64,
    status_events: u64,
    want: u64,
) -> Result<(u64, u64), PipelineError> {
    let stream_secs = match cfg.pace {
        Pace::Rate(r) => cfg.frames.len() as f64 / r.max(1.0),
        Pace::Max => 1.0,
    };
    let deadline = Instant::now() + STALL_GRACE + Duration::from_secs_f64(stream_secs);
    let stalled = |got: u64| PipelineError::Stalled { got, want, secs: STALL_GRACE.as_secs() + stream_secs as u64 };
    // Both feeds publish `Connected` once their handshake is done: then the stream may start.
    while progress() < status_events {
        if Instant::now() > deadline {
            return Err(stalled(0));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let base = progress();
    server.go();
    let warm = base + cfg.warm_up_events.min(want);
    let mut window_start = None;
    if cfg.warm_up_events == 0 {
        (cfg.hooks.window)(true);
        window_start = Some(base);
    }
    let target = base + want;
    let poll = if cfg.pace == Pace::Max { Duration::from_micros(200) } else { Duration::from_millis(1) };
    let (mut last_seen, mut last_change_ns) = (base, now_ns());
    loop {
        let seen = progress();
        let now = now_ns();
        if seen != last_seen {
            (last_seen, last_change_ns) = (seen, now);
        }
        if window_start.is_none() && seen >= warm {
            (cfg.hooks.window)(true);
            window_start = Some(seen);
        }
        // All events in, or (when conflation dropped quotes) nothing new for a while.
        let quiet = seen > warm && now.saturating_sub(last_change_ns) > QUIET_NS;
        if seen >= target || quiet {
            let done = if seen >= target { now } else { last_change_ns };
            (cfg.hooks.window)(false);
            return Ok((seen - window_start.unwrap_or(seen), done));
        }
        if Instant::now() > deadline {
            (cfg.hooks.window)(false);
            return Err(stalled(seen.saturating_sub(base)));
        }
        std::thread::sleep(poll);
    }
}
