//! `crossbar run` and `crossbar sim`: start threads, watch them, stop them, report.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossbar_connectors::eth::feed::DexFeed;
use crossbar_connectors::io::{IoRings, IoThread};
use crossbar_connectors::order::{
    RunGateway, VenueGateway, ephemeral::duplicate, ephemeral_credentials, session_configs, session_for,
};
use crossbar_connectors::sim::Simulator;
use crossbar_connectors::venue::{Endpoints, GatewayKind, VenueConfig, VenueError, build_feeds};
use crossbar_engine::clock::MonotonicClock;
use crossbar_engine::core::{Core, CoreControl, CoreRings, run_core};
use crossbar_engine::event::OrderCommand;
use crossbar_engine::gateway::Gateway as _;
use crossbar_engine::instrument::{Registry, VenueId};
use crossbar_engine::journal::{self, JournalConfig, JournalStats, JournalWriter, Rebuilt, VenueState};
use crossbar_engine::oms::Oms;
use crossbar_engine::paper::PaperGateway;
use crossbar_engine::portfolio::Portfolio;
use crossbar_engine::ring::{IdlePolicy, Ring};
use crossbar_engine::runtime::spawn_pinned;

use crate::config::{Config, ConfigError};
use crate::report::{JournalRow, Report};
use crate::{RunArgs, SimArgs};

/// Flags set by SIGINT/SIGTERM. A second signal while stopping ends the process at once.
fn termination_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&term))?;
        signal_hook::flag::register(sig, Arc::clone(&term))?;
    }
    Ok(term)
}

fn start_simulator(
    cfg: &Config,
    registry: &crossbar_engine::instrument::Registry,
    listen: std::net::SocketAddr,
) -> anyhow::Result<Simulator> {
    Simulator::start_venues(&cfg.simulator, registry, &cfg.venues, listen).context("starting the simulator")
}

/// Orders the core's OMS holds without allocating; must match `Core::new`.
const OMS_CAPACITY: usize = 4_096;

/// A journal opened and recovered at start, ready for its writer thread.
struct StartedJournal {
    writer: JournalWriter,
    oms: Oms,
    portfolio: Portfolio,
    row: JournalRow,
}

/// Opens the journal, cuts a torn tail, rebuilds orders and positions, and reconciles them with
/// the gateway: differences are printed and resolved (journaled as such), never ignored.
fn start_journal(
    cfg: &JournalConfig,
    registry: &Arc<Registry>,
    strategies: usize,
    gateway: &mut RunGateway,
) -> anyhow::Result<StartedJournal> {
    let path = cfg.path.display();
    let opened = JournalWriter::open(cfg, Arc::clone(registry))
        .with_context(|| format!("recovering the order journal {path} (move it aside to start afresh)"))?;
    let mut writer = opened.writer;
    let contents = opened.contents;
    let mut row = JournalRow { recovered_records: contents.records.len() as u64, ..JournalRow::default() };
    if let Some(t) = contents.torn {
        row.truncated_bytes = t.bytes;
        eprintln!("crossbar: journal {path}: torn last record at byte {} ({} bytes) cut off", t.offset, t.bytes);
    }
    let mut rebuilt = journal::rebuild(&contents.records, registry, strategies, OMS_CAPACITY);
    let venue = venue_state(gateway, &rebuilt, registry)?;
    let mut cancels = Vec::new();
    let outcome = journal::resolve(&mut rebuilt, registry, &venue, |rec| writer.append(rec), |o| cancels.push(o));
    for o in cancels {
        let cmd = OrderCommand::Cancel { client_id: o.client_id, instrument: o.instrument, venue: o.venue };
        if let Err(e) = gateway.send(&cmd, crossbar_engine::clock::now_ns()) {
            eprintln!("crossbar: journal: cancelling unknown venue order {}: {e}", o.client_id.0);
        }
    }
    row.reconciled = outcome.differences.len() as u64;
    // What still differs once fills are applied and orders ended needs an operator: say so.
    let unresolved = outcome.unresolved.len();
    for d in &outcome.unresolved {
        eprintln!("crossbar: journal: unresolved difference with the venue: {d:?}");
    }
    writer.flush().with_context(|| format!("writing the order journal {path}"))?;
    if row.recovered_records > 0 {
        eprintln!(
            "crossbar: journal {path}: recovered {} records ({} orders, {} fills); {} differences with the venue, {unresolved} unresolved",
            row.recovered_records,
            rebuilt.oms.counters().sent,
            rebuilt.oms.counters().fills,
            row.reconciled
        );
    }
    let (oms, portfolio) = (rebuilt.oms, rebuilt.portfolio);
    Ok(StartedJournal { writer, oms, portfolio, row })
}

/// How long each venue session may take to answer the start-up state queries.
const VENUE_STATE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long every venue session may take to connect and log in before the run gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the venues hold for this account, merged over the paper matcher and every order
/// session: one [`VenueState`] to reconcile the journal with. Instruments of a venue that
/// reports no positions (the paper matcher, the DEX pools) take the journal's own position, so
/// only venues that do report can differ.
fn venue_state(gateway: &mut RunGateway, rebuilt: &Rebuilt, registry: &Registry) -> anyhow::Result<VenueState> {
    let mut merged = VenueState { open_orders: Vec::new(), fills: Vec::new(), positions: None };
    let mut reporting: Vec<VenueId> = Vec::new();
    let mut absorb = |state: VenueState, venues: &[VenueId], reporting: &mut Vec<VenueId>| {
        merged.open_orders.extend(state.open_orders);
        merged.fills.extend(state.fills);
        if let Some(p) = state.positions {
            merged.positions.get_or_insert_with(Vec::new).extend(p);
            reporting.extend_from_slice(venues);
        }
    };
    if let Some(paper) = gateway.paper_gateway() {
        absorb(paper.venue_state(), &[], &mut reporting);
    }
    if let Some(venues) = gateway.venue_gateway() {
        for session in venues.sessions_mut() {
            let venue = session.venue();
            let state = session.venue_state(VENUE_STATE_TIMEOUT).with_context(|| {
                format!("asking venue {} for its open orders and fills", registry.venue_name(venue))
            })?;
            absorb(state, &[venue], &mut reporting);
        }
    }
    if let Some(positions) = &mut merged.positions {
        for inst in registry.instruments() {
            if !reporting.contains(&inst.venue) {
                positions.push((inst.id, rebuilt.portfolio.get(inst.id).qty));
            }
        }
    }
    Ok(merged)
}

/// The run's gateway: a [`VenueGateway`] over one order session per venue whose `gateway` is
/// `venue` (connected and logged in before this returns), the [`PaperGateway`] for venues on
/// `paper`.
///
/// Credentials come from each venue's `[venues.credentials]` (environment variables or key
/// files). A venue whose orders go to the embedded simulator and that names none gets fresh
/// random credentials, registered with the simulator as its account; configured ones are
/// registered too, so the simulator knows them.
fn build_gateway(cfg: &Config, registry: &Arc<Registry>, sim: Option<&Simulator>) -> anyhow::Result<RunGateway> {
    let mut paper_venues = vec![false; registry.venues().len()];
    for v in cfg.venues.iter().filter(|v| v.gateway == GatewayKind::Paper) {
        if let Some(id) = registry.venue_id(&v.name) {
            paper_venues[id.index()] = true;
        }
    }
    let paper = paper_venues.contains(&true).then(|| PaperGateway::new(Arc::clone(registry), &cfg.paper));
    let endpoints = |v: &VenueConfig| Endpoints {
        ws: match sim {
            Some(s) if v.order_ws_url == "sim" => s.base_url(&v.name),
            _ => v.order_ws_url.clone(),
        },
        rest: match sim {
            Some(s) if v.rest_url == "sim" => s.rest_url(&v.name),
            _ => v.rest_url.clone(),
        },
    };
    let credentials = |v: &VenueConfig| {
        let simulated = v.order_ws_url == "sim";
        let creds = match &v.credentials {
            Some(c) => c.load(&v.name)?,
            None if simulated => ephemeral_credentials(v.protocol)
                .map_err(|e| VenueError::Credentials { venue: v.name.clone(), detail: e.to_string() })?,
            None => {
                return Err(VenueError::Credentials {
                    venue: v.name.clone(),
                    detail: format!(
                        "gateway = \"venue\" on {} needs [venues.credentials] (api_key and secret or private_key \
                         from env or file), or gateway = \"paper\"",
                        v.order_ws_url
                    ),
                });
            }
        };
        if simulated && let Some(s) = sim {
            s.add_account(&v.name, duplicate(&creds));
        }
        Ok(creds)
    };
    let configs =
        session_configs(&cfg.venues, registry, endpoints, credentials).map_err(|e| ConfigError(e.to_string()))?;
    if configs.is_empty() {
        return Ok(RunGateway::new(paper, None, paper_venues));
    }
    let mut sessions = Vec::with_capacity(configs.len());
    for c in configs {
        let name = c.venue_name.clone();
        sessions.push(session_for(c).with_context(|| format!("venue {name}: starting its order session"))?);
    }
    let mut venues = VenueGateway::new(sessions).context("creating the venue gateway")?;
    let ready = venues.connect_all(CONNECT_TIMEOUT);
    let down = venues.not_ready();
    if !down.is_empty() {
        let names: Vec<String> =
            down.iter().map(|(v, proto)| format!("{} ({proto})", registry.venue_name(*v))).collect();
        anyhow::bail!(
            "order entry not logged in after {} s on {} {}; {ready} of {} venues ready",
            CONNECT_TIMEOUT.as_secs(),
            if names.len() == 1 { "venue" } else { "venues" },
            names.join(", "),
            ready + names.len()
        );
    }
    Ok(RunGateway::new(paper, Some(venues), paper_venues))
}

/// `crossbar run`.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    if !(args.duration > 0.0 && args.duration.is_finite()) {
        return Err(ConfigError(format!("--duration {}: must be a positive number of seconds", args.duration)).into());
    }
    let (cfg, origin) = Config::load(args.config.as_deref())?;
    let registry = Arc::new(cfg.registry().map_err(ConfigError)?);
    let strategies = crossbar_strategies::build(&cfg.strategies, &registry)
        .map_err(|e| ConfigError(format!("config {origin}: {e}")))?;
    let term = termination_flag()?;

    let sim = if cfg.venues.iter().any(|v| v.is_simulated()) {
        let venue_registry = cfg.venue_registry().map_err(ConfigError)?;
        Some(start_simulator(&cfg, &venue_registry, "127.0.0.1:0".parse()?)?)
    } else {
        None
    };
    let feeds = build_feeds(&cfg.venues, &registry, |v| match &sim {
        Some(s) => Endpoints {
            ws: if v.ws_url == "sim" { s.base_url(&v.name) } else { v.ws_url.clone() },
            rest: if v.rest_url == "sim" { s.rest_url(&v.name) } else { v.rest_url.clone() },
        },
        None => Endpoints { ws: v.ws_url.clone(), rest: v.rest_url.clone() },
    })
    .map_err(|e| ConfigError(format!("config {origin}: {e}")))?;

    let rings = IoRings {
        market: Ring::new(cfg.runtime.market_ring),
        orders: Ring::new(cfg.runtime.order_ring),
        commands: Ring::new(cfg.runtime.order_ring),
    };
    let core_rings = CoreRings {
        market: Arc::clone(&rings.market),
        orders: Arc::clone(&rings.orders),
        commands: Arc::clone(&rings.commands),
    };
    let mut gateway = build_gateway(&cfg, &registry, sim.as_ref())?;
    let journal = match &cfg.journal {
        Some(j) => Some((start_journal(j, &registry, strategies.len(), &mut gateway)?, j.ring)),
        None => None,
    };
    let io = IoThread::new(feeds, gateway, rings, cfg.runtime.io_idle)
        .context("creating the I/O thread")?
        .spin_before_park(Duration::from_micros(cfg.runtime.io_spin_us));
    let waker = io.waker();
    let io_parks = cfg.runtime.io_idle == IdlePolicy::Park;
    let control = Arc::new(CoreControl { idle: cfg.runtime.idle, ..CoreControl::default() });
    let io_stop = Arc::new(AtomicBool::new(false));

    // The DEX feed: its own thread (its RPC client blocks, with bounded waits), pushing pool
    // states and pending swaps into the core's market ring.
    let dex_stop = Arc::new(AtomicBool::new(false));
    let dex_handle = match &cfg.dex {
        None => None,
        Some(dex) => {
            let url = match (&sim, dex.rpc.as_str()) {
                (Some(s), "sim") => s
                    .eth_url()
                    .ok_or_else(|| ConfigError("dex: rpc = \"sim\" but [simulator.ethereum] is disabled".to_owned()))?,
                (_, url) => url.to_owned(),
            };
            let feed = DexFeed::new(
                &url,
                dex.factory().map_err(ConfigError)?,
                dex.routers().map_err(ConfigError)?,
                &dex.feed_pools(&registry),
                Duration::from_secs(2),
            );
            let ring = Arc::clone(&core_rings.market);
            let stop = Arc::clone(&dex_stop);
            Some(
                std::thread::Builder::new()
                    .name("crossbar-dex".into())
                    .spawn(move || feed.run(&ring, &stop))
                    .context("starting the DEX feed thread")?,
            )
        }
    };

    let started = Instant::now();
    let journal_stop = Arc::new(AtomicBool::new(false));
    let mut journal_row = JournalRow::default();
    let mut journal_state = None;
    let mut journal_stats: Option<Arc<JournalStats>> = None;
    let mut journal_handle = None;
    if let Some((j, ring_slots)) = journal {
        let ring = Ring::new(ring_slots);
        journal_row = j.row;
        journal_stats = Some(j.writer.stats());
        journal_state = Some((j.oms, j.portfolio, Arc::clone(&ring)));
        let stop = Arc::clone(&journal_stop);
        let writer = j.writer;
        journal_handle = Some(spawn_pinned("crossbar-journal", None, move || writer.run(&ring, &stop))?);
    }
    let io_handle = {
        let stop = Arc::clone(&io_stop);
        spawn_pinned("crossbar-io", cfg.runtime.io_core, move || io.run(&stop))?
    };
    let core_handle = {
        let control = Arc::clone(&control);
        let rules: Vec<_> = registry
            .instruments()
            .iter()
            .map(|i| {
                cfg.venues.iter().find(|v| registry.venue_id(&v.name) == Some(i.venue)).map(|v| v.protocol.sync_rule())
            })
            .collect();
        let pools = cfg.dex.as_ref().map(|d| d.specs(&registry)).unwrap_or_default();
        let mut core = Core::new(Arc::clone(&registry), strategies, cfg.risk.clone())
            .with_depth_books(&rules, 1_000)
            .with_pools(&pools);
        if let Some((oms, portfolio, ring)) = journal_state {
            core = core.with_state(oms, portfolio).with_journal(ring);
        }
        let notify = move || {
            if io_parks {
                let _ = waker.wake();
            }
        };
        spawn_pinned("crossbar-core", cfg.runtime.core_core, move || {
            run_core(core, &core_rings, &MonotonicClock, &control, &notify)
        })?
    };

    // Kill switch: SIGUSR1, or the file named in [runtime] kill_switch_file appearing.
    let kill_signal = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&kill_signal))?;
    let kill_file = cfg.runtime.kill_switch_file.clone();

    let deadline = Duration::from_secs_f64(args.duration);
    let mut next_progress = Duration::from_secs(1);
    // The writer stops early only on a write error (or a panic): the run must not trade unjournaled.
    let journal_failed = || {
        journal_stats.as_ref().is_some_and(|s| s.failed.load(Ordering::Acquire))
            || journal_handle.as_ref().is_some_and(|h| h.is_finished())
    };
    while started.elapsed() < deadline && !term.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
        if journal_failed() {
            eprintln!("\ncrossbar: the order journal cannot be written: stopping");
            break;
        }
        if !control.kill.load(Ordering::Relaxed)
            && (kill_signal.load(Ordering::Relaxed) || kill_file.as_ref().is_some_and(|f| f.exists()))
        {
            eprintln!("\ncrossbar: kill switch engaged: cancelling open orders, halting new risk");
            control.kill.store(true, Ordering::Relaxed);
        }
        let t = started.elapsed();
        if t >= next_progress {
            let p = &control.progress;
            let events = p.market_events.load(Ordering::Relaxed);
            eprint!(
                "\r[{:>5.1}s] market events {:>9} ({:>7.0}/s)  orders {:>6}  fills {:>6}   ",
                t.as_secs_f64(),
                events,
                events as f64 / t.as_secs_f64(),
                p.orders_sent.load(Ordering::Relaxed),
                p.fills.load(Ordering::Relaxed)
            );
            next_progress += Duration::from_secs(1);
        }
    }
    eprintln!();
    dex_stop.store(true, Ordering::Relaxed);
    control.stop.store(true, Ordering::Relaxed);
    let core = core_handle.join().map_err(|_| anyhow::anyhow!("core thread panicked"))?;
    io_stop.store(true, Ordering::Relaxed);
    let io_report = io_handle.join().map_err(|_| anyhow::anyhow!("I/O thread panicked"))?;
    // Before the simulator goes: its endpoint closing would count as a disconnect.
    let dex_counters = match dex_handle {
        Some(h) => Some(h.join().map_err(|_| anyhow::anyhow!("DEX feed thread panicked"))?),
        None => None,
    };
    journal_stop.store(true, Ordering::Release);
    let journal_result = match journal_handle {
        Some(h) => h.join().map_err(|_| anyhow::anyhow!("journal thread panicked"))?,
        None => Ok(()),
    };
    if let Some(s) = &journal_stats {
        journal_row.records = s.records.load(Ordering::Relaxed);
        journal_row.bytes = s.bytes.load(Ordering::Relaxed);
        journal_row.fsyncs = s.fsyncs.load(Ordering::Relaxed);
    }
    let duration_s = started.elapsed().as_secs_f64();
    if let Some(sim) = sim
        && let Err(e) = sim.shutdown()
    {
        eprintln!("crossbar: simulator shutdown: {e}");
    }

    let mut report = Report::build(&core, &io_report, duration_s, origin);
    report.journal = journal_row;
    report.add_dex(&core, dex_counters);
    let mut out = std::io::stdout().lock();
    out.write_all(report.render().as_bytes())?;
    if let Some(path) = &args.report_json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        writeln!(out, "report written to {}", path.display())?;
    }
    journal_result.context("the order journal")?;
    Ok(ExitCode::SUCCESS)
}

/// `crossbar sim`.
pub fn sim(args: &SimArgs) -> anyhow::Result<ExitCode> {
    let (cfg, _origin) = Config::load(args.config.as_deref())?;
    // The venues' instruments: the [dex] pools live on the simulator's Ethereum endpoint.
    let registry = cfg.venue_registry().map_err(ConfigError)?;
    let term = termination_flag()?;
    let sim = start_simulator(&cfg, &registry, args.listen)?;
    // Accounts: every venue's configured credentials, so an engine started separately with the
    // same config and environment can trade here. Nothing about them is printed.
    let mut accounts = Vec::new();
    for v in &cfg.venues {
        if let Some(c) = &v.credentials {
            sim.add_account(&v.name, c.load(&v.name).map_err(|e| ConfigError(e.to_string()))?);
            accounts.push(v.name.as_str());
        }
    }
    println!("crossbar simulator listening on {}", sim.addr());
    for v in &cfg.venues {
        println!(
            "  {:<14} websocket {}  (e.g. {}/stream?streams=...)",
            v.name,
            sim.base_url(&v.name),
            sim.base_url(&v.name)
        );
        println!("  {:<14} rest      {}", "", sim.rest_url(&v.name));
        println!(
            "  {:<14} orders    {} ({})",
            "",
            sim.base_url(&v.name),
            if accounts.contains(&v.name.as_str()) {
                "account from [venues.credentials]"
            } else {
                "no account: add [venues.credentials] to trade here"
            }
        );
        for inst in registry.instruments().iter().filter(|i| registry.venue_name(i.venue) == v.name) {
            println!("  {:<14}   {}", "", inst.symbol);
        }
    }
    if let Some(url) = sim.eth_url() {
        println!(
            "  {:<14} json-rpc  {url}  (newPendingTransactions, newHeads, eth_call on Uniswap V2 pools)",
            "ethereum"
        );
    }
    println!("Ctrl-C to stop.");
    std::io::stdout().flush()?;
    while !term.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    sim.shutdown()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use crossbar_connectors::order::{OrderError, OrderSession, SessionStats};
    use crossbar_engine::event::{ClientOrderId, OrderCommand, OrderEvent};
    use crossbar_engine::fixed::Qty;
    use crossbar_engine::gateway::GatewayError;
    use crossbar_engine::journal::VenueOrder;
    use crossbar_engine::paper::PaperConfig;
    use rust_decimal::Decimal;

    use super::*;

    /// A logged-in session whose venue holds one open order and a position, or refuses to say.
    struct StateSession {
        venue: VenueId,
        answer: Option<VenueState>,
    }

    impl OrderSession for StateSession {
        fn gateway_name(&self) -> &'static str {
            "state-test"
        }
        fn venue(&self) -> VenueId {
            self.venue
        }
        fn maintain(&mut self, _now_ns: u64, _registry: &mio::Registry, _token: mio::Token) {}
        fn ready(&self) -> bool {
            true
        }
        fn send(&mut self, _cmd: &OrderCommand, _now_ns: u64) -> Result<(), GatewayError> {
            Ok(())
        }
        fn poll(&mut self, _now_ns: u64, _out: &mut dyn FnMut(OrderEvent)) {}
        fn stats(&self) -> SessionStats {
            SessionStats::default()
        }
        fn venue_state(&mut self, _timeout: Duration) -> Result<VenueState, OrderError> {
            self.answer.take().ok_or(OrderError::Timeout("openOrders.status"))
        }
    }

    /// The demo's venues and instruments: binance-spot (venue 0) on paper, binance-usdm
    /// (venue 1) over a session.
    fn setup(answer: Option<VenueState>) -> (Arc<Registry>, RunGateway, Rebuilt) {
        let cfg = Config::parse(crate::config::DEMO_TOML).unwrap();
        let registry = Arc::new(cfg.venue_registry().unwrap());
        let paper = PaperGateway::new(Arc::clone(&registry), &PaperConfig::default());
        let session = StateSession { venue: VenueId(1), answer };
        let venues = VenueGateway::new(vec![Box::new(session)]).unwrap();
        let mut to_paper = vec![false; registry.venues().len()];
        to_paper[0] = true;
        let gw = RunGateway::new(Some(paper), Some(venues), to_paper);
        let rebuilt = journal::rebuild(&[], &registry, 0, 64);
        (registry, gw, rebuilt)
    }

    #[test]
    fn venue_states_merge_and_venues_without_positions_keep_the_journal_positions() {
        let usdm_btc = crossbar_engine::instrument::InstrumentId(2);
        let order =
            VenueOrder { client_id: ClientOrderId(7), instrument: usdm_btc, venue: VenueId(1), open_qty: Qty(5) };
        let answer =
            VenueState { open_orders: vec![order], fills: Vec::new(), positions: Some(vec![(usdm_btc, Decimal::ONE)]) };
        let (registry, mut gw, rebuilt) = setup(Some(answer));
        assert_eq!(registry.get(usdm_btc).venue, VenueId(1));
        let merged = venue_state(&mut gw, &rebuilt, &registry).unwrap();
        assert_eq!(merged.open_orders, vec![order]);
        let positions = merged.positions.unwrap();
        // The session's venue as it says; every instrument of the paper venue as journaled (flat).
        assert_eq!(positions.iter().filter(|(i, _)| *i == usdm_btc).count(), 1);
        assert!(positions.contains(&(usdm_btc, Decimal::ONE)));
        for inst in registry.instruments().iter().filter(|i| i.venue != VenueId(1)) {
            assert!(positions.contains(&(inst.id, Decimal::ZERO)), "{} missing", inst.symbol);
        }
        // Reconciliation sees the venue's position and its unknown open order.
        let diffs = journal::reconcile(&rebuilt, &VenueState { positions: Some(positions), ..merged });
        assert_eq!(diffs.len(), 2, "{diffs:?}");
    }

    #[test]
    fn a_venue_that_cannot_say_what_it_holds_stops_the_start_by_name() {
        let (registry, mut gw, rebuilt) = setup(None);
        let e = venue_state(&mut gw, &rebuilt, &registry).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "asking venue binance-usdm for its open orders and fills: no answer to openOrders.status in time"
        );
    }
}
