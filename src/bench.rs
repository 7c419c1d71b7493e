//! `crossbar bench`: the latency gate. Replays a seeded Binance stream over loopback websockets
//! through the real I/O thread, rings, core (basis strategy, risk, OMS) and order path — by
//! default (`--gateway venue`) Binance WebSocket API order sessions that sign each order and
//! write it to an embedded venue simulator's socket over loopback, so `tick_to_order` ends when
//! the order's bytes are written to the venue socket; `--gateway paper` uses the in-process
//! paper matcher instead — once at a fixed rate (latency histograms) and once at maximum rate
//! (throughput); measures the same-run floors; counts heap allocations on the engine's threads
//! after warm-up; then compares the report with a budget file and exits 1 naming each breach.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use crossbar_benches::budget::{BenchReport, Budget, ReportAllocs, ReportEvents, ReportOrders, ReportThroughput};
use crossbar_benches::floor;
use crossbar_benches::pipeline::{BenchGateway, Hooks, PhaseConfig, PhaseResult, run_phase};
use crossbar_benches::replay::{Pace, seeded_stream};
use crossbar_engine::latency::Stage;

use crate::config::ConfigError;

/// Arguments of `crossbar bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Frames replayed at the fixed rate (the latency run).
    #[arg(long, default_value_t = 40_000)]
    pub events: usize,
    /// Fixed replay rate of the latency run, events per second.
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    /// Frames replayed at maximum rate (the throughput run).
    #[arg(long, default_value_t = 300_000)]
    pub max_rate_events: usize,
    /// Budget file; with it, exit 1 when any budget is breached.
    #[arg(long)]
    pub budget: Option<PathBuf>,
    /// Write the JSON report here, and one `.hgrm` per stage beside it.
    #[arg(long)]
    pub report_json: Option<PathBuf>,
    /// Do not run: check this saved report against `--budget` (re-gating, and testing the gate).
    #[arg(long, requires = "budget")]
    pub check_report: Option<PathBuf>,
    /// With --budget: measure up to this many times, stopping at the first attempt within budget
    /// (noise breaks one attempt, a regression breaks all).
    #[arg(long, default_value_t = 3)]
    pub attempts: usize,
    /// Stream seed (same seed, same frames).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Where orders go: `venue` (Binance WebSocket API sessions writing signed orders to an
    /// embedded venue simulator over loopback: the real order path) or `paper` (the in-process
    /// paper matcher, no order socket).
    #[arg(long, value_enum, default_value_t = GatewayArg::Venue)]
    pub gateway: GatewayArg,
}

/// `--gateway` of `crossbar bench`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GatewayArg {
    /// Binance order sessions to the embedded simulator.
    Venue,
    /// The paper matcher.
    Paper,
}

impl From<GatewayArg> for BenchGateway {
    fn from(g: GatewayArg) -> Self {
        match g {
            GatewayArg::Venue => Self::Venue,
            GatewayArg::Paper => Self::Paper,
        }
    }
}

/// Counting global allocator: counts allocations made by threads that opted in, while the
/// measured window is open. Everything else goes straight to the system allocator.
#[allow(unsafe_code)]
mod alloc_count {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    struct Counting;

    static WINDOW: AtomicBool = AtomicBool::new(false);
    static ALLOCS: AtomicU64 = AtomicU64::new(0);

    thread_local! {
        // `const`, no destructor: reading it never allocates or registers anything.
        static COUNTED: Cell<bool> = const { Cell::new(false) };
    }

    #[inline]
    fn note() {
        if WINDOW.load(Ordering::Relaxed) && COUNTED.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
    }

    // SAFETY: every method forwards to `System` with the caller's arguments unchanged; `note`
    // only touches atomics and a const thread-local, and never allocates.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note();
            // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract; we pass it through.
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            note();
            // SAFETY: as for `alloc`.
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` came from `System` through this allocator with this `layout`.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note();
            // SAFETY: `ptr` came from `System` with `layout`; the caller upholds the rest.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    /// Counts this thread's allocations from now on (while the window is open).
    pub fn count_this_thread() {
        COUNTED.with(|c| c.set(true));
    }

    /// Opens or closes the measured window.
    pub fn window(open: bool) {
        WINDOW.store(open, Ordering::SeqCst);
    }

    /// Allocations counted so far.
    pub fn count() -> u64 {
        ALLOCS.load(Ordering::SeqCst)
    }
}

/// Regression features compiled into this binary (test-only; empty in a normal build).
fn regression_features() -> Vec<String> {
    let mut v = Vec::new();
    if cfg!(feature = "regression-sleep") {
        v.push("regression-sleep".to_owned());
    }
    if cfg!(feature = "regression-alloc") {
        v.push("regression-alloc".to_owned());
    }
    v
}

/// Peak resident set of this process (VmHWM), bytes; 0 where /proc is not available.
fn peak_rss_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return 0 };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Cores for (I/O thread + replay server, core thread), as the demo pins them; unpinned on a
/// single-core machine.
fn cores() -> (Option<usize>, Option<usize>) {
    let n = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if n >= 2 { (Some(0), Some(1)) } else { (None, None) }
}

/// `crossbar bench`.
pub fn bench(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let budget = match &args.budget {
        Some(p) => Some(Budget::load(p).map_err(ConfigError)?),
        None => None,
    };
    if let Some(saved) = &args.check_report {
        let text =
            std::fs::read_to_string(saved).map_err(|e| ConfigError(format!("report {}: {e}", saved.display())))?;
        let report: BenchReport =
            serde_json::from_str(&text).map_err(|e| ConfigError(format!("report {}: {e}", saved.display())))?;
        return Ok(gate(budget.as_ref(), &report, args.budget.as_deref()));
    }
    if !(args.rate.is_finite() && args.rate >= 1.0) {
        return Err(ConfigError(format!("--rate {}: must be at least 1 event/s", args.rate)).into());
    }
    if args.events < 1_000 || args.max_rate_events < 1_000 {
        return Err(ConfigError("--events and --max-rate-events: at least 1000 each".into()).into());
    }
    let started = Instant::now();
    let cores = cores();
    // A short discarded run first: page faults, CPU frequency and caches settle.
    let warm = PhaseConfig {
        frames: Arc::new(seeded_stream(args.seed ^ 0xA5A5, 4_000)),
        pace: Pace::Max,
        warm_up_events: 0,
        cores,
        hooks: Hooks::default(),
        gateway: args.gateway.into(),
        paper_latency_us: PAPER_LATENCY_US,
    };
    run_phase(&warm).context("warm-up run")?;

    // Noise on a shared machine (another process taking the core thread's CPU for a few ms)
    // can break a tail budget in one attempt; a real regression breaks it in every attempt.
    let attempts = if budget.is_some() { args.attempts.max(1) } else { 1 };
    let mut best: Option<(usize, BenchReport, PhaseResult)> = None;
    for attempt in 1..=attempts {
        let (report, fixed) = measure(args, cores, started)?;
        let found = budget.as_ref().map(|b| b.check(&report)).unwrap_or_default();
        let breaches = found.len();
        if best.as_ref().is_none_or(|(n, _, _)| breaches < *n) {
            best = Some((breaches, report, fixed));
        }
        if breaches == 0 {
            break;
        }
        if attempt < attempts {
            eprintln!("crossbar bench: attempt {attempt}/{attempts}: {breaches} breach(es); measuring again");
            for b in &found {
                eprintln!("crossbar bench:   attempt {attempt}: {b}");
            }
        }
    }
    let Some((_, mut report, fixed)) = best else { anyhow::bail!("no attempt ran") };
    report.duration_s = started.elapsed().as_secs_f64();

    let mut out = std::io::stdout().lock();
    out.write_all(render(&report).as_bytes())?;
    if let Some(path) = &args.report_json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        let written = write_hgrms(path, &fixed)?;
        writeln!(out, "report written to {} (+ {written} .hgrm files beside it)", path.display())?;
    }
    drop(out);
    Ok(gate(budget.as_ref(), &report, args.budget.as_deref()))
}

/// One-way paper venue latency of the bench (the demo's).
const PAPER_LATENCY_US: u64 = 150;

/// One attempt: floors, the fixed-rate run, the maximum-rate run. Returns the report and the
/// fixed-rate run (for its histograms).
fn measure(
    args: &BenchArgs,
    cores: (Option<usize>, Option<usize>),
    started: Instant,
) -> anyhow::Result<(BenchReport, PhaseResult)> {
    let hooks = Hooks { thread_start: alloc_count::count_this_thread, window: alloc_count::window };
    eprintln!("crossbar bench: floors (ring hop, loopback round trip)");
    let latency_frames = Arc::new(seeded_stream(args.seed, args.events));
    let frame_bytes = latency_frames.iter().map(|f| f.wire().len()).sum::<usize>() / latency_frames.len().max(1);
    let ring_hop = floor::ring_hop(20_000, cores).context("ring-hop floor")?;
    let loopback = floor::loopback_rtt(5_000, frame_bytes, cores).context("loopback floor")?;
    let polled = floor::loopback_rtt_polled(5_000, frame_bytes, cores).context("polled loopback floor")?;

    eprintln!("crossbar bench: {} frames at {} events/s", args.events, args.rate);
    let allocs_before = alloc_count::count();
    let fixed = run_phase(&PhaseConfig {
        frames: latency_frames,
        pace: Pace::Rate(args.rate),
        warm_up_events: (args.events / 5) as u64,
        cores,
        hooks,
        gateway: args.gateway.into(),
        paper_latency_us: PAPER_LATENCY_US,
    })
    .context("fixed-rate run")?;
    log_venues(&fixed);
    eprintln!("crossbar bench: {} frames at maximum rate", args.max_rate_events);
    let max = run_phase(&PhaseConfig {
        frames: Arc::new(seeded_stream(args.seed.wrapping_add(1), args.max_rate_events)),
        pace: Pace::Max,
        warm_up_events: (args.max_rate_events / 10) as u64,
        cores,
        hooks,
        gateway: args.gateway.into(),
        paper_latency_us: PAPER_LATENCY_US,
    })
    .context("maximum-rate run")?;
    log_venues(&max);
    let allocs = alloc_count::count() - allocs_before;
    let report = build_report(
        args,
        &fixed,
        &max,
        allocs,
        started,
        [ring_hop.into(), loopback.into(), polled.into()],
        frame_bytes,
    );
    Ok((report, fixed))
}

fn build_report(
    args: &BenchArgs,
    fixed: &PhaseResult,
    max: &PhaseResult,
    allocs: u64,
    started: Instant,
    floors: [crossbar_benches::budget::Summary; 3],
    frame_bytes: usize,
) -> BenchReport {
    let window_events = fixed.window_events + max.window_events;
    let elapsed_s = max.elapsed_ns as f64 / 1e9;
    BenchReport {
        duration_s: started.elapsed().as_secs_f64(),
        rate_eps: args.rate,
        events: ReportEvents {
            frames: fixed.sent.frames,
            market: fixed.market_events,
            dropped: fixed.io.quotes_conflated,
            decode_errors: fixed.io.decode_errors,
        },
        orders: ReportOrders { sent: fixed.orders_sent, fills: fixed.fills },
        latency_ns: Stage::ALL.iter().map(|&s| (s.name().to_owned(), fixed.latency.summary(s).into())).collect(),
        throughput_eps: if elapsed_s > 0.0 { max.market_events as f64 / elapsed_s } else { 0.0 },
        throughput: ReportThroughput {
            frames: max.sent.frames,
            events: max.market_events,
            dropped: max.io.quotes_conflated,
            elapsed_s,
        },
        allocs_per_event: allocs as f64 / window_events.max(1) as f64,
        allocs: ReportAllocs { count: allocs, events: window_events },
        rss_bytes: peak_rss_bytes(),
        floor_ns: crossbar_benches::budget::FLOORS.iter().map(|f| (*f).to_owned()).zip(floors).collect(),
        floor_frame_bytes: frame_bytes as u64,
        regression_features: regression_features(),
        gateway: fixed.gateway.to_owned(),
    }
}

/// One stderr line per venue of a run: what its order entry sent and got back.
fn log_venues(run: &PhaseResult) {
    for v in &run.venues {
        eprintln!(
            "crossbar bench:   venue {} ({}): {} orders written, {} acks, {} fills, {} rejects ({} rate-limited), {} not ready, {} malformed, {} disconnects",
            v.venue.index(),
            v.gateway,
            v.orders_sent,
            v.acks,
            v.fills,
            v.rejects,
            v.rate_limited,
            v.not_ready,
            v.malformed,
            v.disconnects
        );
    }
}

/// Writes `<report stem>.<stage>.hgrm` beside the report for every stage; returns how many.
fn write_hgrms(report: &Path, fixed: &PhaseResult) -> anyhow::Result<usize> {
    let dir = report.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let stem = report.file_stem().map_or_else(|| "bench".into(), |s| s.to_string_lossy().into_owned());
    for stage in Stage::ALL {
        let path = dir.join(format!("{stem}.{}.hgrm", stage.name()));
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?,
        );
        fixed.latency.write_hgrm(stage, &mut f).with_context(|| format!("writing {}", path.display()))?;
        f.flush()?;
    }
    Ok(Stage::ALL.len())
}

/// The report as the table a person reads.
fn render(r: &BenchReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\ncrossbar bench — {} frames at {:.0} events/s: {} market events, {} dropped, {} orders, {} fills; gateway {}",
        r.events.frames, r.rate_eps, r.events.market, r.events.dropped, r.orders.sent, r.orders.fills, r.gateway
    );
    let _ = writeln!(
        s,
        "{:<30} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "stage (ns)", "count", "p50", "p90", "p99", "p99.9", "max"
    );
    let row = |s: &mut String, name: &str, v: &crossbar_benches::budget::Summary| {
        let _ =
            writeln!(s, "{name:<30} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}", v.count, v.p50, v.p90, v.p99, v.p999, v.max);
    };
    for (name, v) in &r.latency_ns {
        row(&mut s, name, v);
    }
    for (name, v) in &r.floor_ns {
        row(&mut s, &format!("floor: {name}"), v);
    }
    let _ = writeln!(
        s,
        "throughput (max rate): {:.0} events/s ({} events in {:.3} s, {} dropped)",
        r.throughput_eps, r.throughput.events, r.throughput.elapsed_s, r.throughput.dropped
    );
    let _ = writeln!(
        s,
        "allocations per event after warm-up: {:.4} ({} over {} events); peak RSS {:.1} MiB; {:.1} s",
        r.allocs_per_event,
        r.allocs.count,
        r.allocs.events,
        r.rss_bytes as f64 / (1024.0 * 1024.0),
        r.duration_s
    );
    if !r.regression_features.is_empty() {
        let _ = writeln!(s, "TEST BUILD with deliberate regressions: {}", r.regression_features.join(", "));
    }
    s
}

/// Exit status of the gate: 0 within budget (or no budget), 1 with each breach on its own line.
fn gate(budget: Option<&Budget>, report: &BenchReport, path: Option<&Path>) -> ExitCode {
    let Some(budget) = budget else { return ExitCode::SUCCESS };
    let path = path.map_or_else(String::new, |p| p.display().to_string());
    let breaches = budget.check(report);
    if breaches.is_empty() {
        println!("latency gate: within budget {path}");
        return ExitCode::SUCCESS;
    }
    println!("latency gate: {} breach(es) of {path}", breaches.len());
    for b in &breaches {
        println!("BREACH {b}");
    }
    ExitCode::from(1)
}
