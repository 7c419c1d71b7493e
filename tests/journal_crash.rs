//! `crossbar run` with an order journal, killed with SIGKILL at random moments and restarted:
//! the journal stays readable, nothing recovered is ever lost or rewritten, and the positions
//! rebuilt from it are exactly the journaled fills, none missing, none counted twice. And a
//! secret in the environment appears in no log line, report or journal byte.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crossbar_engine::event::{ClientOrderId, OrderEventKind, Side};
use crossbar_engine::instrument::Registry;
use crossbar_engine::journal::{self, Record};
use crossbar_engine::portfolio::Position;
use rust_decimal::Decimal;

mod support;
use support::{DEMO, demo_registry as registry};

fn crossbar() -> Command {
    Command::new(env!("CARGO_BIN_EXE_crossbar"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crossbar-journal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The demo with a journal at `journal` (and the core parked, to share the machine politely).
fn config(dir: &Path, journal: &Path, fsync: &str) -> PathBuf {
    let text = format!(
        "{}\n[journal]\npath = {:?}\nfsync = {fsync:?}\nbatch_records = 16\nbatch_ms = 2\n",
        DEMO.replace("idle = \"spin\"", "idle = \"park\""),
        journal.display().to_string()
    );
    let path = dir.join(format!("{fsync}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// `config` with every venue's orders on the paper gateway: the journal's own guarantees,
/// against a venue that dies with the process (`tests/venue_crash.rs` runs the same against a
/// simulator that outlives the engine, over the venues' protocols).
fn paper_config(dir: &Path, journal: &Path, fsync: &str) -> PathBuf {
    let path = config(dir, journal, fsync);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("gateway = \"venue\""));
    std::fs::write(&path, text.replace("gateway = \"venue\"", "gateway = \"paper\"")).unwrap();
    path
}

/// Checks the journal on its own terms and returns its records with the rebuilt positions'
/// quantities and fill count.
fn check_journal(path: &Path, reg: &Registry) -> (Vec<Record>, Vec<Position>, u64, u64) {
    let c = journal::read(path, reg).unwrap_or_else(|e| panic!("journal unreadable after a kill: {e}"));
    let torn = c.torn.map_or(0, |t| t.bytes);
    // Client ids are never reused, also across restarts.
    let mut sides = std::collections::HashMap::new();
    let mut last_id = 0;
    for r in &c.records {
        if let Record::New { order, .. } = r {
            assert!(order.client_id.0 > last_id, "client id {} reused or out of order", order.client_id.0);
            last_id = order.client_id.0;
            sides.insert(order.client_id, (order.side, order.instrument));
        }
    }
    // Independently of the OMS: each distinct (order, venue trade id) fill once.
    let mut fills: HashSet<(ClientOrderId, u64)> = HashSet::new();
    let mut qty = vec![0i64; reg.len()];
    for r in &c.records {
        if let Record::Event(e) | Record::Resolved(e) = r
            && let OrderEventKind::Filled(f) = e.kind
        {
            let (side, inst) = *sides.get(&e.client_id).expect("a fill of an order the journal never sent");
            assert_eq!((side, inst), (e.side, e.instrument));
            if fills.insert((e.client_id, f.trade_id)) {
                qty[inst.index()] += if side == Side::Buy { f.qty.0 } else { -f.qty.0 };
            }
        }
    }
    let rebuilt = journal::rebuild(&c.records, reg, 2, 4_096);
    assert_eq!(rebuilt.oms.counters().fills, fills.len() as u64, "a fill missing or counted twice");
    let mut positions = Vec::new();
    for inst in reg.instruments() {
        let p = rebuilt.portfolio.get(inst.id);
        assert_eq!(p.qty, Decimal::new(qty[inst.id.index()], u32::from(inst.qty_scale.places())), "{}", inst.symbol);
        positions.push(*p);
    }
    let total_fills: u64 = reg.instruments().iter().map(|i| rebuilt.portfolio.get(i.id).fills).sum();
    assert_eq!(total_fills, fills.len() as u64);
    (c.records, positions, fills.len() as u64, torn)
}

#[test]
fn sigkill_at_random_moments_loses_and_doubles_no_fill() {
    let started = Instant::now();
    let dir = temp_dir("crash");
    let jnl = dir.join("orders.jnl");
    let reg = registry();
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("kill-point seed {seed}");
    let mut prev: Vec<Record> = Vec::new();
    let mut torn_seen = 0;
    let mut max_fills = 0;
    for rep in 0..21 {
        let fsync = ["batched", "off", "every"][rep % 3];
        let cfg = paper_config(&dir, &jnl, fsync);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // From during start-up (recovery itself) to well into trading.
        let kill_after = Duration::from_millis(20 + seed % 1_100);
        let mut child = crossbar()
            .args(["run", "--duration", "30", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(kill_after);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let (records, _, fills, torn) = check_journal(&jnl, &reg);
        torn_seen += u64::from(torn > 0);
        max_fills = max_fills.max(fills);
        // What was recovered before is still there, byte for byte the same records.
        assert!(records.len() >= prev.len(), "rep {rep}: journal shrank");
        assert_eq!(&records[..prev.len()], &prev[..], "rep {rep} ({fsync}, killed after {kill_after:?})");
        prev = records;
    }
    assert!(max_fills > 0, "the engine never filled before being killed");
    // A clean run recovers everything and its report's positions are the journal's.
    let json = dir.join("report.json");
    let cfg = paper_config(&dir, &jnl, "batched");
    let out = crossbar()
        .args(["run", "--duration", "2", "--config"])
        .arg(&cfg)
        .arg("--report-json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let j = &r["journal"];
    assert_eq!(j["recovered_records"].as_u64(), Some(prev.len() as u64), "{j}");
    assert!(j["truncated_bytes"].is_u64(), "{j}");
    // Under `batched` whatever was written this run was synced at least once.
    assert_eq!(j["fsyncs"].as_u64().unwrap() > 0, j["records"].as_u64().unwrap() > 0, "{j}");
    let (records, positions, fills, _) = check_journal(&jnl, &reg);
    assert_eq!(j["records"].as_u64(), Some((records.len() - prev.len()) as u64), "{j}");
    assert_eq!(r["orders"]["fills"].as_u64(), Some(fills), "{r}");
    // Every position the report shows (qty, average, realized, fees, funding) is the journal's.
    let money = |d: Decimal| d.round_dp(8).normalize().to_string();
    for inst in reg.instruments() {
        let p = &positions[inst.id.index()];
        let row = r["positions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["symbol"] == inst.symbol.as_str() && row["venue"] == reg.venue_name(inst.venue));
        let Some(row) = row else {
            assert_eq!(p.fills, 0, "{} {} traded but is not reported", reg.venue_name(inst.venue), inst.symbol);
            continue;
        };
        let field = |k: &str| row[k].as_str().unwrap().to_owned();
        assert_eq!(field("qty"), p.qty.normalize().to_string(), "{row}");
        for (k, v) in [("avg_px", p.avg_px), ("realized", p.realized), ("fees", p.fees), ("funding", p.funding)] {
            assert_eq!(field(k), money(v), "{k} of {row}");
        }
    }
    eprintln!("21 kills, {torn_seen} torn tails, {fills} fills, {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn a_secret_in_the_environment_reaches_no_log_report_or_journal() {
    let dir = temp_dir("secret");
    let jnl = dir.join("orders.jnl");
    let json = dir.join("report.json");
    // Every venue signs with keys read from those variables (the embedded simulator registers
    // the configured keys as its accounts), so the secret is in use on every order.
    let cfg = config(&dir, &jnl, "batched");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    for (venue, key, secret, pass) in [
        ("binance-spot", "BINANCE_API_KEY", "BINANCE_API_SECRET", None),
        ("binance-usdm", "BINANCE_API_KEY", "BINANCE_API_SECRET", None),
        ("bybit-linear", "BYBIT_API_KEY", "BYBIT_API_SECRET", None),
        ("okx", "OKX_API_KEY", "OKX_API_SECRET", Some("OKX_PASSPHRASE")),
    ] {
        let pass = pass.map(|p| format!(", passphrase = {{ env = {p:?} }}")).unwrap_or_default();
        let from = format!("name = {venue:?}\n");
        let to = format!(
            "name = {venue:?}\ncredentials = {{ api_key = {{ env = {key:?} }}, secret = {{ env = {secret:?} }}{pass} }}\n"
        );
        assert!(text.contains(&from), "{venue}");
        text = text.replacen(&from, &to, 1);
    }
    std::fs::write(&cfg, text).unwrap();
    const SECRET: &str = "xbSECRETq9Zt4vW2mK7pL0sRnE3uY6hD";
    let mut cmd = crossbar();
    for var in [
        "BINANCE_API_KEY",
        "BINANCE_API_SECRET",
        "BINANCE_ED25519_KEY",
        "BYBIT_API_KEY",
        "BYBIT_API_SECRET",
        "OKX_API_KEY",
        "OKX_API_SECRET",
        "OKX_PASSPHRASE",
    ] {
        cmd.env(var, SECRET);
    }
    let out =
        cmd.args(["run", "--duration", "2", "--config"]).arg(&cfg).arg("--report-json").arg(&json).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = std::fs::read(&json).unwrap();
    let journal_bytes = std::fs::read(&jnl).unwrap();
    assert!(journal_bytes.len() > 1_000, "the run journaled orders");
    let r: serde_json::Value = serde_json::from_slice(&report).unwrap();
    for venue in ["binance-spot", "binance-usdm"] {
        let v = &r["venues"][venue];
        assert_eq!(v["gateway"], "binance-ws-api", "{v}");
        assert!(v["orders_sent"].as_u64() > Some(0) && v["acks"].as_u64() > Some(0), "{venue} signed and traded: {v}");
    }
    let needles = [SECRET.as_bytes(), &SECRET.as_bytes()[..12], &SECRET.as_bytes()[SECRET.len() - 12..]];
    for (what, hay) in
        [("stdout", &out.stdout), ("stderr", &out.stderr), ("report", &report), ("journal", &journal_bytes)]
    {
        for n in needles {
            assert!(!hay.windows(n.len()).any(|w| w == n), "secret bytes in {what}");
        }
    }
}

#[test]
fn a_journal_corrupt_in_the_middle_stops_the_start_and_is_left_alone() {
    let dir = temp_dir("corrupt");
    let jnl = dir.join("orders.jnl");
    let cfg = config(&dir, &jnl, "off");
    let out = crossbar().args(["run", "--duration", "1", "--config"]).arg(&cfg).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut bytes = std::fs::read(&jnl).unwrap();
    assert!(bytes.len() > 200, "the first run journaled orders");
    bytes[16 + 8 + 3] ^= 0x10; // inside the first record's payload (its sequence number)
    std::fs::write(&jnl, &bytes).unwrap();
    let out = crossbar().args(["run", "--duration", "1", "--config"]).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim_end(),
        format!(
            "crossbar: error: recovering the order journal {} (move it aside to start afresh): journal corrupt at byte 16: checksum mismatch",
            jnl.display()
        )
    );
    assert_eq!(std::fs::read(&jnl).unwrap(), bytes, "a corrupt journal is never rewritten");
}
