//! The `crossbar` binary as a user meets it: bad configs, a demo run with its JSON report, and
//! SIGINT mid-run.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn crossbar() -> Command {
    Command::new(env!("CARGO_BIN_EXE_crossbar"))
}

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("crossbar-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs `crossbar run --config <text>` and returns (status, stderr).
fn run_with_config(text: &str) -> (Option<i32>, String) {
    let path = temp_path("bad.toml");
    std::fs::write(&path, text).unwrap();
    let out = crossbar().args(["run", "--duration", "1", "--config"]).arg(&path).output().unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

fn assert_one_line_exit_2(status: Option<i32>, stderr: &str, needle: &str) {
    assert_eq!(status, Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line expected: {stderr:?}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
}

#[test]
fn missing_config_file_exits_2_with_one_line() {
    let out = crossbar().args(["run", "--config", "/nonexistent/crossbar.toml"]).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_one_line_exit_2(out.status.code(), &stderr, "/nonexistent/crossbar.toml");
}

#[test]
fn unknown_field_exits_2_naming_it() {
    let demo = include_str!("../config/demo.toml");
    let (status, stderr) = run_with_config(&demo.replace("[paper]\n", "[paper]\nlatency_ms = 3\n"));
    assert_one_line_exit_2(status, &stderr, "unknown field `latency_ms`");
}

#[test]
fn core_that_does_not_exist_exits_2() {
    let demo = include_str!("../config/demo.toml");
    let (status, stderr) = run_with_config(&demo.replace("core_core = 1", "core_core = 999"));
    assert_one_line_exit_2(status, &stderr, "runtime.core_core = 999");
}

#[test]
fn unknown_strategy_leg_exits_2() {
    let demo = include_str!("../config/demo.toml");
    let (status, stderr) = run_with_config(&demo.replacen("symbol = \"BTCUSDT\" }", "symbol = \"NOPE\" }", 1));
    assert_one_line_exit_2(status, &stderr, "NOPE");
}

#[test]
fn demo_run_writes_the_report_contract() {
    let json = temp_path("report.json");
    let out = crossbar().args(["run", "--duration", "4", "--report-json"]).arg(&json).output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("tick_to_order"), "{stdout}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(r["duration_s"].as_f64().unwrap() >= 4.0);
    assert!(r["events"]["market"].as_u64().unwrap() > 1_000, "{r}");
    assert!(r["events"]["dropped"].is_u64());
    for k in ["sent", "filled", "rejected"] {
        assert!(r["orders"][k].is_u64(), "orders.{k}");
    }
    assert!(r["orders"]["sent"].as_u64().unwrap() > 0, "{r}");
    for stage in ["tick_to_decision", "tick_to_order", "recv_to_decoded", "decoded_to_dequeued"] {
        for k in ["count", "p50", "p90", "p99", "p999", "max"] {
            assert!(r["latency_ns"][stage][k].is_u64(), "latency_ns.{stage}.{k}");
        }
    }
    assert!(r["latency_ns"]["tick_to_decision"]["count"].as_u64().unwrap() > 1_000);
    assert!(r["positions"].is_array());
    // Feed health per venue (the demo injects mild faults, so these move).
    for venue in ["binance-spot", "binance-usdm"] {
        let f = &r["feeds"][venue];
        for k in ["reconnects", "disconnects", "server_shutdowns", "malformed", "gaps", "duplicates", "resyncs"] {
            assert!(f[k].is_u64(), "feeds.{venue}.{k}: {f}");
        }
        for k in ["time_to_whole_ms", "reconnect_ms"] {
            assert!(
                f[k]["max"].is_f64() && (f[k]["last"].is_null() || f[k]["last"].is_f64()),
                "feeds.{venue}.{k}: {f}"
            );
        }
    }
    for k in ["realized", "unrealized", "fees", "funding"] {
        let v = r["pnl"][k].as_str().unwrap_or_else(|| panic!("pnl.{k} must be a decimal string"));
        v.parse::<rust_decimal::Decimal>().unwrap();
    }
}

#[test]
fn demo_run_hedges_inside_the_band_and_reports_delta_greeks_and_pools() {
    let json = temp_path("report-delta.json");
    let out = crossbar().args(["run", "--duration", "5", "--report-json"]).arg(&json).output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let dec = |v: &serde_json::Value| v.as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap();
    let d = &r["delta"]["ETH"];
    assert!(d["hedges"].as_u64().unwrap() > 0, "{r}");
    assert!(dec(&d["max_abs_after_hedge"]) <= dec(&d["band"]), "{d}");
    dec(&d["net"]);
    for k in ["delta", "gamma", "theta", "vega"] {
        dec(&r["greeks"]["ETH"][k]);
    }
    assert!(dec(&r["greeks"]["ETH"]["gamma"]) < rust_decimal::Decimal::ZERO, "short calls and an LP are short gamma");
    assert!(r["strategies"]["hedger-eth"]["orders"].as_u64().unwrap() > 0);
    let dex = &r["dex"];
    assert!(dex["feed"]["pool_states"].as_u64().unwrap() >= 2, "{dex}");
    assert!(dex["feed"]["pending_swaps"].as_u64().unwrap() > 0, "{dex}");
    assert_eq!(dex["feed"]["disconnects"], 0);
    for pool in ["WETH-USDC", "WBTC-USDC"] {
        dec(&dex["pools"][pool]["price"]);
        dec(&dex["pools"][pool]["pending_price"]);
    }
}

#[test]
fn sigint_mid_run_prints_the_report_and_exits_0() {
    let json = temp_path("sigint.json");
    let mut child = crossbar()
        .args(["run", "--duration", "60", "--report-json"])
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let started = Instant::now();
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "stopping took {:?}", started.elapsed());
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    assert_eq!(status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("latency (ns)") && stdout.contains("tick_to_order"), "{stdout}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(r["duration_s"].as_f64().unwrap() < 30.0);
}

#[test]
fn sigusr1_engages_the_kill_switch() {
    let json = temp_path("kill.json");
    let mut child = crossbar()
        .args(["run", "--duration", "5", "--report-json"])
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(Command::new("kill").args(["-USR1", &child.id().to_string()]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["risk"]["kill_switch"], serde_json::Value::Bool(true), "{}", r["risk"]);
    assert!(r["risk"]["refusals"]["halted"].is_u64());
}

#[test]
fn decode_prints_json_lines_and_flags_malformed_input() {
    let frames = temp_path("frames.jsonl");
    std::fs::write(
        &frames,
        concat!(
            r#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#,
            "\n",
            r#"{"u":1,"s":"BNBUSDT","b":"1e5","B":"1","a":"2","A":"1"}"#,
            "\n",
            r#"{"result":null,"id":1}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = crossbar().args(["decode", "--venue", "binance-spot"]).arg(&frames).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(lines[0]["type"], "quote");
    assert_eq!(lines[0]["bid_px"], "25.3519");
    assert_eq!(lines[0]["update_id"], 400900217);
    assert_eq!(lines[0]["exch_ts_ms"], serde_json::Value::Null);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("line 2:"), "{stderr}");

    let out = crossbar().args(["decode", "--venue", "nasdaq"]).arg(&frames).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The demo with every venue's orders on the in-process paper matcher instead of its protocol.
fn paper_demo() -> String {
    let demo = include_str!("../config/demo.toml");
    assert_eq!(demo.matches("gateway = \"venue\"").count(), 4, "the demo's four venues use their protocols");
    demo.replace("gateway = \"venue\"", "gateway = \"paper\"")
}

const DEMO_VENUES: [&str; 4] = ["binance-spot", "binance-usdm", "bybit-linear", "okx"];

fn run_report(config: Option<&str>, seconds: &str, name: &str) -> (serde_json::Value, String) {
    let json = temp_path(&format!("{name}.json"));
    let mut cmd = crossbar();
    cmd.args(["run", "--duration", seconds, "--report-json"]).arg(&json);
    if let Some(text) = config {
        let path = temp_path(&format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        cmd.arg("--config").arg(path);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let r = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (r, String::from_utf8(out.stdout).unwrap())
}

fn sum(r: &serde_json::Value, key: &str) -> u64 {
    DEMO_VENUES.iter().map(|v| r["venues"][v][key].as_u64().unwrap_or_else(|| panic!("venues.{v}.{key}"))).sum()
}

#[test]
fn paper_gateway_run_reports_paper_venue_counters_consistent_with_orders() {
    let (r, stdout) = run_report(Some(&paper_demo()), "3", "paper-venues");
    assert_eq!(r["gateway"], "paper");
    let venues = r["venues"].as_object().unwrap();
    assert_eq!(venues.keys().collect::<Vec<_>>(), DEMO_VENUES.iter().collect::<Vec<_>>(), "no row for the DEX");
    for v in DEMO_VENUES {
        let row = &r["venues"][v];
        assert_eq!(row["gateway"], "paper", "{v}: {row}");
        for k in [
            "orders_sent",
            "acks",
            "fills",
            "rejects",
            "cancels_sent",
            "duplicate_fills",
            "malformed",
            "unknown",
            "connects",
            "disconnects",
            "not_ready",
            "cancel_alls",
            "rate_limited",
            "rate_used",
            "rate_limit",
        ] {
            assert!(row[k].is_u64(), "venues.{v}.{k}: {row}");
        }
        assert!(row["clock_offset_ms"].is_i64(), "{row}");
        // The paper matcher has no connection: nothing to connect, log in or rate-limit.
        for k in ["connects", "disconnects", "not_ready", "malformed", "duplicate_fills"] {
            assert_eq!(row[k], 0, "venues.{v}.{k}");
        }
        let (sent, acks, rejects) =
            (row["orders_sent"].as_u64().unwrap(), row["acks"].as_u64().unwrap(), row["rejects"].as_u64().unwrap());
        assert!(acks + rejects <= sent, "{v}: every answer is to an order sent: {row}");
    }
    // Every order the OMS sent reached the matcher, unless the gateway refused it.
    let (sent, refused) = (r["orders"]["sent"].as_u64().unwrap(), r["io"]["gateway_errors"].as_u64().unwrap());
    assert!(sent > 0, "{r}");
    let written = sum(&r, "orders_sent");
    assert!(written <= sent && written + refused >= sent, "venues sent {written}, OMS sent {sent}, refused {refused}");
    // The core counts every fill it received; the matcher may have answered a few more after the
    // core stopped.
    assert!(sum(&r, "fills") >= r["orders"]["fills"].as_u64().unwrap(), "{r}");
    assert!(sum(&r, "fills") > 0, "{r}");
    assert!(stdout.contains("\nvenues ") && stdout.contains("binance-usdm           paper"), "{stdout}");
}

#[test]
fn demo_run_sends_every_order_over_the_venue_protocols() {
    let (r, stdout) = run_report(None, "5", "venue-demo");
    let expected = [
        ("binance-spot", "binance-ws-api"),
        ("binance-usdm", "binance-ws-api"),
        ("bybit-linear", "bybit-v5-ws"),
        ("okx", "okx-v5-ws"),
    ];
    for (venue, gateway) in expected {
        let row = &r["venues"][venue];
        assert_eq!(row["gateway"], gateway, "{venue}: {row}");
        assert!(row["connects"].as_u64().unwrap() >= 1, "{venue} logged in: {row}");
        assert_eq!(row["malformed"], 0, "{venue}: {row}");
    }
    assert!(!stdout.contains(" paper "), "no venue on the paper matcher: {stdout}");
    let sent = r["orders"]["sent"].as_u64().unwrap();
    assert!(sent > 0, "{r}");
    let written = sum(&r, "orders_sent");
    let refused = r["io"]["gateway_errors"].as_u64().unwrap();
    assert!(written <= sent && written + refused >= sent, "venues wrote {written}, OMS sent {sent}, refused {refused}");
    assert!(sum(&r, "acks") > 0 && sum(&r, "fills") > 0, "{}", r["venues"]);
    assert!(sum(&r, "fills") >= r["orders"]["fills"].as_u64().unwrap(), "{r}");
    // tick_to_order ends when the signed bytes are written: one sample per order written.
    let stage = r["latency_ns"]["tick_to_order"]["count"].as_u64().unwrap();
    assert!(stage > 0 && stage <= written, "tick_to_order count {stage}, orders written {written}");
}

#[test]
fn venue_credentials_are_checked_at_load_and_name_only_where_they_live() {
    let demo = include_str!("../config/demo.toml");
    let with = |creds: &str| {
        demo.replacen("order_ws_url = \"sim\"", &format!("order_ws_url = \"sim\"\ncredentials = {creds}"), 1)
    };
    let (status, stderr) = run_with_config(&with(
        "{ api_key = { env = \"XB_K\" }, secret = { env = \"XB_S\" }, private_key = { file = \"/k.pem\" } }",
    ));
    assert_one_line_exit_2(status, &stderr, "not both");
    let (status, stderr) = run_with_config(&with("{ api_key = { env = \"XB_K\" } }"));
    assert_one_line_exit_2(status, &stderr, "venue \"binance-spot\": credentials: give `secret`");
    let (status, stderr) = run_with_config(&with(
        "{ api_key = { env = \"XB_NOT_SET_ANYWHERE\" }, secret = { env = \"XB_NOT_SET_EITHER\" } }",
    ));
    assert_one_line_exit_2(status, &stderr, "environment variable `XB_NOT_SET_ANYWHERE` is not set");
    assert!(stderr.contains("binance-spot"), "{stderr}");
    let real = demo.replacen("order_ws_url = \"sim\"", "order_ws_url = \"wss://ws-api.binance.com:443\"", 1);
    let (status, stderr) = run_with_config(&real);
    assert_one_line_exit_2(status, &stderr, "needs [venues.credentials]");
    let (status, stderr) = run_with_config(&demo.replacen("order_ws_url = \"sim\"", "order_ws_url = \"https://x\"", 1));
    assert_one_line_exit_2(status, &stderr, "order_ws_url must be \"sim\", ws:// or wss://");
}

#[test]
fn sim_registers_configured_accounts_and_never_prints_their_secrets() {
    let demo = include_str!("../config/demo.toml");
    let creds = "credentials = { api_key = { env = \"XB_SIM_KEY\" }, secret = { env = \"XB_SIM_SECRET\" } }";
    let text = demo.replacen("name = \"binance-usdm\"", &format!("name = \"binance-usdm\"\n{creds}"), 1);
    let path = temp_path("sim-accounts.toml");
    std::fs::write(&path, text).unwrap();
    let (key, secret) = ("xbSimKey7Qm2", "xbSimSecret9Zt4Wq");
    let mut child = crossbar()
        .args(["sim", "--config"])
        .arg(&path)
        .env("XB_SIM_KEY", key)
        .env("XB_SIM_SECRET", secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains("Ctrl-C to stop.") {
        assert!(Instant::now() < deadline, "no banner: {seen}");
        let mut buf = [0u8; 4096];
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "crossbar sim ended early: {seen}");
        seen.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    stdout.read_to_string(&mut seen).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let usdm = seen.lines().skip_while(|l| !l.contains("binance-usdm")).find(|l| l.contains("orders")).unwrap();
    assert!(usdm.ends_with("(account from [venues.credentials])"), "{seen}");
    let spot = seen.lines().skip_while(|l| !l.contains("binance-spot")).find(|l| l.contains("orders")).unwrap();
    assert!(spot.ends_with("(no account: add [venues.credentials] to trade here)"), "{seen}");
    for s in [key, secret] {
        assert!(!seen.contains(s) && !stderr.contains(s), "a secret was printed");
    }
    // A missing variable is named, one line, exit 2.
    let out = crossbar()
        .args(["sim", "--config"])
        .arg(&path)
        .env_remove("XB_SIM_SECRET")
        .env("XB_SIM_KEY", key)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_one_line_exit_2(out.status.code(), &stderr, "environment variable `XB_SIM_SECRET` is not set");
    assert!(!stderr.contains(key), "{stderr}");
}

#[test]
fn a_venue_whose_order_entry_cannot_log_in_stops_the_run_naming_it() {
    // binance-spot's order entry points at a closed port; the other venues trade on paper.
    let demo = paper_demo().replacen("gateway = \"paper\"", "gateway = \"venue\"", 1).replacen(
        "order_ws_url = \"sim\"",
        "order_ws_url = \"ws://127.0.0.1:9\"\ncredentials = { api_key = { env = \"XB_DOWN_KEY\" }, secret = { env = \"XB_DOWN_SECRET\" } }",
        1,
    );
    let path = temp_path("down.toml");
    std::fs::write(&path, demo).unwrap();
    let secret = "xbDownSecret5Hq8";
    let out = crossbar()
        .args(["run", "--duration", "2", "--config"])
        .arg(&path)
        .env("XB_DOWN_KEY", "xbDownKey3Vv")
        .env("XB_DOWN_SECRET", secret)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = stderr.trim_end().lines().last().unwrap();
    assert!(
        line.starts_with("crossbar: error: order entry not logged in after 10 s on venue binance-spot (binance"),
        "{stderr}"
    );
    assert!(!stderr.contains(secret) && !stderr.contains("xbDownKey3Vv"), "{stderr}");
    assert!(out.stdout.is_empty(), "no report for a run that never started");
}
