//! `crossbar bench` and its latency gate as CI meets them: the report's keys and `.hgrm` files
//! from a short real run, exit 1 naming each breach (a synthetic over-budget report, and — in a
//! build with a test-only `regression-*` feature — a real run with a deliberate regression in
//! decode), exit 2 for a missing budget file; orders go over Binance's WebSocket API to the
//! embedded simulator by default, and `--gateway paper` keeps the paper matcher.
//!
//! The regression build: `cargo test --release --features regression-sleep --test bench_gate`
//! (and `regression-alloc`); `.ci/run` runs both.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BUDGET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/latency-budget.toml");
const REGRESSION_BUILD: bool = cfg!(any(feature = "regression-sleep", feature = "regression-alloc"));

fn crossbar() -> Command {
    Command::new(env!("CARGO_BIN_EXE_crossbar"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crossbar-bench-gate-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A short real run: small enough for a test, large enough for every stage to have samples.
fn short_bench(report: &Path, budget: bool) -> Output {
    short_bench_on(report, budget, "venue")
}

/// [`short_bench`] with `--gateway <gateway>`.
fn short_bench_on(report: &Path, budget: bool, gateway: &str) -> Output {
    let mut cmd = crossbar();
    cmd.args(["bench", "--events", "8000", "--rate", "20000", "--max-rate-events", "30000", "--attempts", "2"]);
    cmd.args(["--gateway", gateway]);
    cmd.arg("--report-json").arg(report);
    if budget {
        cmd.args(["--budget", BUDGET]);
    }
    cmd.output().unwrap()
}

fn synthetic_report(p50_tick_to_order: u64, allocs: u64) -> serde_json::Value {
    let stage = |p50: u64| serde_json::json!({"count": 5000, "p50": p50, "p90": p50, "p99": p50 * 2, "p999": p50 * 3, "max": p50 * 4});
    let mut latency = serde_json::Map::new();
    for (name, p50) in [
        ("recv_to_decoded", 600),
        ("decoded_to_dequeued", 500),
        ("dequeued_to_decision", 90),
        ("decision_to_risk_passed", 200),
        ("command_to_order_written", 1500),
        ("risk_passed_to_order_written", 2000),
        ("tick_to_decision", 1500),
        ("tick_to_order", p50_tick_to_order),
    ] {
        latency.insert(name.to_owned(), stage(p50));
    }
    serde_json::json!({
        "duration_s": 6.0, "rate_eps": 10000.0,
        "events": {"frames": 40000, "market": 44000, "dropped": 0, "decode_errors": 0},
        "orders": {"sent": 15000, "fills": 11000},
        "latency_ns": latency,
        "throughput_eps": 1500000.0,
        "throughput": {"frames": 300000, "events": 330000, "dropped": 0, "elapsed_s": 1.1},
        "allocs_per_event": allocs as f64 / 300000.0,
        "allocs": {"count": allocs, "events": 300000},
        "rss_bytes": 100_000_000u64,
        "floor_ns": {"ring_hop": stage(170), "loopback_rtt": stage(60000), "loopback_rtt_polled": stage(8000)},
        "floor_frame_bytes": 190,
        "regression_features": [],
    })
}

fn check_report(value: &serde_json::Value, name: &str) -> Output {
    let path = temp_dir("synthetic").join(name);
    std::fs::write(&path, serde_json::to_vec(value).unwrap()).unwrap();
    crossbar().args(["bench", "--budget", BUDGET, "--check-report"]).arg(&path).output().unwrap()
}

#[test]
fn gate_passes_a_report_within_budget_and_names_each_breach_of_one_over_it() {
    let ok = check_report(&synthetic_report(4000, 0), "ok.json");
    let (stdout, stderr) = text(&ok);
    assert_eq!(ok.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("latency gate: within budget"), "{stdout}");

    // tick_to_order ten times as slow at the median everywhere (4 µs -> 40 µs is past the 18 µs
    // ceiling), and an allocation per event.
    let bad = check_report(&synthetic_report(40_000, 300_000), "bad.json");
    let (stdout, stderr) = text(&bad);
    assert_eq!(bad.status.code(), Some(1), "{stdout}{stderr}");
    let breaches: Vec<&str> = stdout.lines().filter(|l| l.starts_with("BREACH ")).collect();
    assert!(breaches.iter().any(|l| l.starts_with("BREACH allocs_per_event 1.0000 > budget 0")), "{stdout}");
    assert!(breaches.iter().any(|l| l.starts_with("BREACH tick_to_order p50 40000 ns > budget 18000 ns")), "{stdout}");
    assert!(stdout.contains(&format!("latency gate: {} breach(es)", breaches.len())), "{stdout}");
}

#[test]
fn missing_budget_or_report_is_one_line_exit_2() {
    for args in [
        vec!["bench", "--budget", "/nonexistent/latency-budget.toml"],
        vec!["bench", "--budget", BUDGET, "--check-report", "/nonexistent/b.json"],
    ] {
        let out = crossbar().args(&args).output().unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr:?}");
        assert!(stderr.contains("/nonexistent/"), "{stderr}");
    }
}

#[test]
fn short_real_run_writes_every_key_and_the_hgrm_files() {
    if REGRESSION_BUILD {
        return; // the regression test below runs the real bench in this build
    }
    let dir = temp_dir("real");
    let report = dir.join("b.json");
    let out = short_bench(&report, false);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    for key in ["latency_ns", "throughput_eps", "allocs_per_event", "rss_bytes", "floor_ns"] {
        assert!(r.get(key).is_some(), "report lacks {key}: {r}");
    }
    for stage in [
        "recv_to_decoded",
        "decoded_to_dequeued",
        "dequeued_to_decision",
        "decision_to_risk_passed",
        "risk_passed_to_order_written",
        "command_to_order_written",
        "tick_to_decision",
        "tick_to_order",
    ] {
        let s = &r["latency_ns"][stage];
        for k in ["count", "p50", "p90", "p99", "p999", "max"] {
            assert!(s[k].is_u64(), "{stage}.{k}: {s}");
        }
        assert!(s["count"].as_u64().unwrap() > 0, "{stage} has no samples");
        assert!(dir.join(format!("b.{stage}.hgrm")).exists(), "no .hgrm for {stage}");
    }
    for floor in ["ring_hop", "loopback_rtt", "loopback_rtt_polled"] {
        assert!(r["floor_ns"][floor]["p50"].as_u64().unwrap() > 0, "{floor}");
    }
    assert!(r["throughput_eps"].as_f64().unwrap() > 0.0);
    assert!(r["rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(r["events"]["decode_errors"], 0);
    assert!(r["orders"]["sent"].as_u64().unwrap() > 0, "the stream must make the strategy trade");
    assert_eq!(r["regression_features"], serde_json::json!([]), "a default build carries no regression");
    // The default order path: signed orders written to the simulator over both venues' sessions.
    assert_eq!(r["gateway"], "binance-ws-api", "{r}");
    let sessions: Vec<&str> = stderr.lines().filter(|l| l.contains("(binance-ws-api): ")).collect();
    assert_eq!(sessions.len(), 4, "two venues, two runs: {stderr}");
    for line in sessions {
        assert!(line.contains(" 0 malformed, 0 disconnects"), "{line}");
        assert!(line.contains("(0 rate-limited), 0 not ready"), "{line}");
    }
}

#[test]
fn the_paper_gateway_stays_an_option_and_is_named_in_the_report() {
    if REGRESSION_BUILD {
        return;
    }
    let report = temp_dir("paper").join("b.json");
    let out = short_bench_on(&report, false, "paper");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["gateway"], "paper", "{r}");
    assert!(r["orders"]["sent"].as_u64().unwrap() > 0, "the stream must make the strategy trade");
    assert!(!stderr.contains("binance-ws-api"), "{stderr}");
}

/// Only in a build with a `regression-*` feature: the real bench must fail the real budget.
#[test]
fn deliberate_regression_fails_the_gate() {
    if !REGRESSION_BUILD {
        return;
    }
    let report = temp_dir("regression").join("b.json");
    let out = short_bench(&report, true);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "the gate let a regression through:\n{stdout}{stderr}");
    let breaches: Vec<&str> = stdout.lines().filter(|l| l.starts_with("BREACH ")).collect();
    if cfg!(feature = "regression-sleep") {
        assert!(breaches.iter().any(|l| l.starts_with("BREACH recv_to_decoded p50")), "{stdout}");
    }
    if cfg!(feature = "regression-alloc") {
        assert!(breaches.iter().any(|l| l.starts_with("BREACH allocs_per_event")), "{stdout}");
    }
    assert!(stdout.contains("TEST BUILD with deliberate regressions"), "{stdout}");
}
