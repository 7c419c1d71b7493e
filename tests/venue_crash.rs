//! The engine against a simulator running on its own (`crossbar sim`), as against a venue:
//! orders go over each venue's own protocol, signed with keys from the environment. The engine
//! is killed with SIGKILL at random moments (mid-order, mid-fill, mid-recovery) and restarted
//! from its journal; after its last restart and a clean stop, its positions, open orders and
//! fills equal the simulator's account exactly: no fill missing, none counted twice.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crossbar_engine::event::OrderEventKind;
use crossbar_engine::instrument::Registry;
use crossbar_engine::journal::{self, Record};
use rust_decimal::Decimal;

mod support;
use support::{DEMO, demo_registry as registry};

/// Made-up credentials, per venue: (api key var, secret var, passphrase var).
const KEYS: [(&str, &str, &str, &str); 4] = [
    ("binance-spot", "XB_TEST_BINANCE_SPOT_KEY", "XB_TEST_BINANCE_SPOT_SECRET", ""),
    ("binance-usdm", "XB_TEST_BINANCE_USDM_KEY", "XB_TEST_BINANCE_USDM_SECRET", ""),
    ("bybit-linear", "XB_TEST_BYBIT_KEY", "XB_TEST_BYBIT_SECRET", ""),
    ("okx", "XB_TEST_OKX_KEY", "XB_TEST_OKX_SECRET", "XB_TEST_OKX_PASSPHRASE"),
];

fn crossbar() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crossbar"));
    for (i, (_, key, secret, pass)) in KEYS.iter().enumerate() {
        cmd.env(key, format!("CrashTestKey{i}x4f9c2a7eQ81mZ0v"));
        cmd.env(secret, format!("CrashTestSecret{i}xd81b5e03c6Lp4Tn7wY"));
        if !pass.is_empty() {
            cmd.env(pass, format!("CrashPass{i}x"));
        }
    }
    cmd
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crossbar-venue-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The demo, with every venue's credentials from the environment and, when `addr` is given,
/// every URL pointing at the simulator listening there; plus a journal at `journal`.
fn config(dir: &Path, name: &str, addr: Option<&str>, journal: Option<&Path>) -> PathBuf {
    let mut doc: toml::Table = DEMO.parse().unwrap();
    let runtime = doc.get_mut("runtime").unwrap().as_table_mut().unwrap();
    runtime.insert("idle".into(), "park".into());
    for v in doc.get_mut("venues").unwrap().as_array_mut().unwrap() {
        let v = v.as_table_mut().unwrap();
        let name = v["name"].as_str().unwrap().to_owned();
        let (_, key, secret, pass) = KEYS.iter().find(|k| k.0 == name).unwrap();
        let mut creds = toml::Table::new();
        let env = |var: &str| toml::Value::Table(toml::Table::from_iter([("env".to_owned(), var.into())]));
        creds.insert("api_key".into(), env(key));
        creds.insert("secret".into(), env(secret));
        if !pass.is_empty() {
            creds.insert("passphrase".into(), env(pass));
        }
        v.insert("credentials".into(), creds.into());
        v.insert("gateway".into(), "venue".into());
        if let Some(addr) = addr {
            v.insert("ws_url".into(), format!("ws://{addr}/{name}").into());
            v.insert("rest_url".into(), format!("http://{addr}/{name}").into());
            v.insert("order_ws_url".into(), format!("ws://{addr}/{name}").into());
        }
    }
    if let Some(addr) = addr {
        doc.get_mut("dex")
            .unwrap()
            .as_table_mut()
            .unwrap()
            .insert("rpc".into(), format!("ws://{addr}/ethereum").into());
    }
    if let Some(j) = journal {
        let mut t = toml::Table::new();
        t.insert("path".into(), j.display().to_string().into());
        t.insert("fsync".into(), "batched".into());
        t.insert("batch_records".into(), 16.into());
        t.insert("batch_ms".into(), 2.into());
        doc.insert("journal".into(), t.into());
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
    path
}

/// `crossbar sim` on its own; stopped (SIGKILL) when dropped.
struct Sim {
    child: Child,
    addr: String,
}

impl Sim {
    fn start(cfg: &Path) -> Self {
        let mut child = crossbar()
            .args(["sim", "--listen", "127.0.0.1:0", "--config"])
            .arg(cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let addr =
            first.strip_prefix("crossbar simulator listening on ").unwrap_or_else(|| panic!("{first}")).to_owned();
        // Keep draining its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, addr }
    }

    /// `GET /_sim/accounts`.
    fn accounts(&self) -> serde_json::Value {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(s, "GET /_sim/accounts HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        serde_json::from_str(body).unwrap()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The journal's fills (venue, symbol, wire client id, trade id) and net positions, checked
/// on the journal's own terms.
type Fills = BTreeSet<(String, String, String, u64)>;

/// Net position per (venue, symbol), zero positions left out.
type Positions = BTreeMap<(String, String), Decimal>;

fn journal_state(path: &Path, reg: &Registry) -> (Vec<Record>, Fills, Positions, usize) {
    let c = journal::read(path, reg).unwrap_or_else(|e| panic!("journal unreadable after a kill: {e}"));
    let mut fills = Fills::new();
    for r in &c.records {
        if let Record::Event(e) | Record::Resolved(e) = r
            && let OrderEventKind::Filled(f) = e.kind
        {
            let inst = reg.get(e.instrument);
            fills.insert((
                reg.venue_name(inst.venue).to_owned(),
                inst.symbol.clone(),
                format!("xb{}", e.client_id.0),
                f.trade_id,
            ));
        }
    }
    let rebuilt = journal::rebuild(&c.records, reg, 3, 4_096);
    assert_eq!(rebuilt.oms.counters().fills, fills.len() as u64, "a fill counted twice");
    let mut positions = BTreeMap::new();
    for inst in reg.instruments() {
        let q = rebuilt.portfolio.get(inst.id).qty;
        if !q.is_zero() {
            positions.insert((reg.venue_name(inst.venue).to_owned(), inst.symbol.clone()), q.normalize());
        }
    }
    let open = rebuilt.oms.open_count();
    (c.records, fills, positions, open)
}

/// The simulator's view of the same.
fn sim_state(accounts: &serde_json::Value) -> (Fills, Positions, usize) {
    let mut fills = Fills::new();
    let mut positions = BTreeMap::new();
    let mut open = 0;
    for a in accounts["accounts"].as_array().unwrap() {
        let venue = a["venue"].as_str().unwrap().to_owned();
        for f in a["fills"].as_array().unwrap() {
            fills.insert((
                venue.clone(),
                f["symbol"].as_str().unwrap().to_owned(),
                f["client_id"].as_str().unwrap().to_owned(),
                f["trade_id"].as_u64().unwrap(),
            ));
        }
        for p in a["positions"].as_array().unwrap() {
            let q: Decimal = p["qty"].as_str().unwrap().parse().unwrap();
            if !q.is_zero() {
                positions.insert((venue.clone(), p["symbol"].as_str().unwrap().to_owned()), q.normalize());
            }
        }
        open += a["open_orders"].as_array().unwrap().len();
    }
    (fills, positions, open)
}

#[test]
fn sigkilled_engine_restarts_from_its_journal_and_equals_the_venue_account() {
    let started = Instant::now();
    let dir = temp_dir("crash");
    let sim = Sim::start(&config(&dir, "sim", None, None));
    let jnl = dir.join("orders.jnl");
    let cfg = config(&dir, "engine", Some(&sim.addr), Some(&jnl));
    let reg = registry();
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("kill-point seed {seed}");
    let mut prev: Vec<Record> = Vec::new();
    let mut kills = 0;
    for rep in 0..22 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // From inside start-up (connect, login, recovery, reconciliation) to well into trading.
        let kill_after = Duration::from_millis(50 + seed % 1_800);
        let mut child = crossbar()
            .args(["run", "--duration", "60", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(kill_after);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        if !jnl.exists() {
            continue; // killed before the journal was created
        }
        let (records, _, _, _) = journal_state(&jnl, &reg);
        assert!(records.len() >= prev.len(), "rep {rep}: journal shrank");
        assert_eq!(
            &records[..prev.len()],
            &prev[..],
            "rep {rep}: recovered records changed (killed after {kill_after:?})"
        );
        prev = records;
    }
    // The last start recovers and reconciles, trades a little, and stops cleanly (draining).
    let json = dir.join("report.json");
    let out = crossbar()
        .args(["run", "--duration", "3", "--config"])
        .arg(&cfg)
        .arg("--report-json")
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("unresolved difference"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for (venue, row) in report["venues"].as_object().unwrap() {
        assert_ne!(row["gateway"], "paper", "{venue}: {row}");
    }
    // Nothing moves at the venue without an order of ours: compare now.
    let (_, fills, positions, open) = journal_state(&jnl, &reg);
    let (sim_fills, sim_positions, sim_open) = sim_state(&sim.accounts());
    assert!(fills.len() > 20, "the engine traded: {} fills", fills.len());
    let missing: Vec<_> = sim_fills.difference(&fills).collect();
    let extra: Vec<_> = fills.difference(&sim_fills).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "fills missing from the journal {missing:?}, unknown to the venue {extra:?}"
    );
    assert_eq!(positions, sim_positions, "positions");
    assert_eq!((open, sim_open), (0, 0), "open orders after a clean stop");
    // And the report says the same as the journal.
    for row in report["positions"].as_array().unwrap() {
        let key = (row["venue"].as_str().unwrap().to_owned(), row["symbol"].as_str().unwrap().to_owned());
        let qty: Decimal = row["qty"].as_str().unwrap().parse().unwrap();
        assert_eq!(qty.normalize(), positions.get(&key).copied().unwrap_or_default(), "{key:?}");
    }
    let (records, ..) = journal_state(&jnl, &reg);
    let resolved = records.iter().filter(|r| matches!(r, Record::Resolved(_))).count();
    let adopted =
        records.iter().filter(|r| matches!(r, Record::New { tag, .. } if *tag == journal::ADOPTED_TAG)).count();
    eprintln!(
        "{kills} kills, {} fills and {} positions equal at the venue; reconciliation resolved {resolved} events and adopted {adopted} orders; {:?}",
        fills.len(),
        positions.len(),
        started.elapsed()
    );
}
