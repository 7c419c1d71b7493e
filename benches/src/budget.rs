//! The latency gate: the `crossbar bench` JSON report, the budget file
//! (`config/latency-budget.toml`) and the check that names every breach.
//!
//! A stage budget holds ceilings in nanoseconds (`p50_ns`, `p99_ns`, `p999_ns`) and ceilings as
//! multiples of a floor measured in the same run (`p50_x`, `p99_x`, `p999_x` against `floor`,
//! one of [`FLOORS`]). A multiple compares the stage's percentile with the floor's percentile
//! named by `floor_at`: `"same"` (default: p99 against the floor's p99) or `"p50"`. Every key is
//! optional; each one present is checked. Whole-run ceilings: `allocs_per_event` (with
//! `allocs_allowance`, a number of allocations per run tolerated regardless), `max_dropped`,
//! `max_rss_bytes`, and the floor `min_throughput_eps`.

use std::collections::BTreeMap;
use std::path::Path;

use crossbar_engine::latency::{Stage, StageSummary};
use serde::{Deserialize, Serialize};

/// Floors a stage budget may be relative to (keys of `floor_ns`).
pub const FLOORS: [&str; 3] = ["ring_hop", "loopback_rtt", "loopback_rtt_polled"];

/// Count and percentiles of one histogram, ns (the `latency_ns` entry shape).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Slowest sample.
    pub max: u64,
}

impl From<StageSummary> for Summary {
    fn from(s: StageSummary) -> Self {
        Self { count: s.count, p50: s.p50, p90: s.p90, p99: s.p99, p999: s.p999, max: s.max }
    }
}

/// `events`: the fixed-rate latency run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportEvents {
    /// Frames the replay server sent.
    pub frames: u64,
    /// Market events that reached the core.
    pub market: u64,
    /// Quotes conflated (dropped) because the core's ring was full.
    pub dropped: u64,
    /// Frames the decoder refused.
    pub decode_errors: u64,
}

/// `orders`: the fixed-rate latency run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportOrders {
    /// Orders the OMS sent.
    pub sent: u64,
    /// Fills applied.
    pub fills: u64,
}

/// `throughput`: the maximum-rate run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportThroughput {
    /// Frames sent.
    pub frames: u64,
    /// Market events that reached the core.
    pub events: u64,
    /// Quotes dropped by conflation.
    pub dropped: u64,
    /// First frame written → last event processed, s.
    pub elapsed_s: f64,
}

/// `allocs`: heap allocations on the I/O and core threads inside the measured windows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportAllocs {
    /// Allocations counted.
    pub count: u64,
    /// Market events processed in the windows.
    pub events: u64,
}

/// The `crossbar bench` JSON report. `latency_ns` has the same shape as `crossbar run`'s.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Wall-clock seconds of the whole command.
    pub duration_s: f64,
    /// Replay rate of the latency run, events/s.
    pub rate_eps: f64,
    /// Latency run: frames and events.
    pub events: ReportEvents,
    /// Latency run: orders.
    pub orders: ReportOrders,
    /// Stage name → percentiles, from the fixed-rate run.
    pub latency_ns: BTreeMap<String, Summary>,
    /// Market events per second through decode → core at maximum rate.
    pub throughput_eps: f64,
    /// The maximum-rate run.
    pub throughput: ReportThroughput,
    /// Heap allocations per market event on the engine's threads after warm-up.
    pub allocs_per_event: f64,
    /// Raw allocation counts.
    pub allocs: ReportAllocs,
    /// Peak resident set (VmHWM), bytes.
    pub rss_bytes: u64,
    /// Same-run floors: `ring_hop` (one way) and `loopback_rtt`.
    pub floor_ns: BTreeMap<String, Summary>,
    /// Payload size the loopback floor used (the stream's mean frame), bytes.
    pub floor_frame_bytes: u64,
    /// Test-only regression features compiled into this binary (empty in a normal build).
    pub regression_features: Vec<String>,
    /// The gateway orders went to, by protocol name: `binance-ws-api` (signed orders written to
    /// the simulator's order sockets: the default) or `paper` (`crossbar bench --gateway paper`).
    /// Empty in a report written before the key existed.
    #[serde(default)]
    pub gateway: String,
}

/// Budget of one stage. Absent keys are not checked.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageBudget {
    /// Fewest samples the stage must have (a stage that stops being measured is a breach).
    pub min_count: Option<u64>,
    /// Median ceiling, ns.
    pub p50_ns: Option<u64>,
    /// p99 ceiling, ns.
    pub p99_ns: Option<u64>,
    /// p99.9 ceiling, ns.
    pub p999_ns: Option<u64>,
    /// The floor the `_x` ceilings multiply (one of [`FLOORS`]).
    pub floor: Option<String>,
    /// Which percentile of the floor: `"same"` (default) or `"p50"`.
    pub floor_at: Option<String>,
    /// Median ceiling as a multiple of the floor.
    pub p50_x: Option<f64>,
    /// p99 ceiling as a multiple of the floor.
    pub p99_x: Option<f64>,
    /// p99.9 ceiling as a multiple of the floor.
    pub p999_x: Option<f64>,
}

/// `config/latency-budget.toml`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Ceiling of heap allocations per event (0: none at all).
    pub allocs_per_event: Option<f64>,
    /// Allocations per run tolerated whatever `allocs_per_event` says (a known one-off outside
    /// the engine's own code; see BENCHMARKS.md). Default 0.
    #[serde(default)]
    pub allocs_allowance: u64,
    /// Floor of the maximum-rate throughput, events/s.
    pub min_throughput_eps: Option<f64>,
    /// Ceiling of quotes dropped in either run.
    pub max_dropped: Option<u64>,
    /// Ceiling of peak RSS, bytes.
    pub max_rss_bytes: Option<u64>,
    /// Stage name (a `latency_ns` key) → its budget.
    #[serde(default)]
    pub stages: BTreeMap<String, StageBudget>,
}

impl Budget {
    /// Reads and validates a budget file.
    ///
    /// # Errors
    /// One line naming the file and the problem (unreadable, bad TOML, unknown stage or floor,
    /// a multiple without a floor, a non-positive or non-finite ceiling).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("budget {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("budget {}: {e}", path.display()))
    }

    /// Parses and validates budget TOML.
    ///
    /// # Errors
    /// The problem as one line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let b: Self = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let msg = e.message().replace('\n', " ");
            match line {
                Some(l) => format!("line {l}: {msg}"),
                None => msg,
            }
        })?;
        b.validate()?;
        Ok(b)
    }

    fn validate(&self) -> Result<(), String> {
        let finite_non_neg = |name: &str, v: Option<f64>| match v {
            Some(x) if !(x.is_finite() && x >= 0.0) => Err(format!("{name} = {x}: must be a finite number >= 0")),
            _ => Ok(()),
        };
        finite_non_neg("allocs_per_event", self.allocs_per_event)?;
        finite_non_neg("min_throughput_eps", self.min_throughput_eps)?;
        for (name, s) in &self.stages {
            if !Stage::ALL.iter().any(|st| st.name() == name) {
                let known: Vec<_> = Stage::ALL.iter().map(|s| s.name()).collect();
                return Err(format!("stages.{name}: unknown stage (known: {})", known.join(", ")));
            }
            for (k, v) in [("p50_ns", s.p50_ns), ("p99_ns", s.p99_ns), ("p999_ns", s.p999_ns)] {
                if v == Some(0) {
                    return Err(format!("stages.{name}.{k}: must be positive"));
                }
            }
            for (k, v) in [("p50_x", s.p50_x), ("p99_x", s.p99_x), ("p999_x", s.p999_x)] {
                if let Some(x) = v {
                    if !(x.is_finite() && x > 0.0) {
                        return Err(format!("stages.{name}.{k} = {x}: must be a positive number"));
                    }
                    if s.floor.is_none() {
                        return Err(format!("stages.{name}.{k}: needs `floor` (one of {})", FLOORS.join(", ")));
                    }
                }
            }
            if let Some(f) = &s.floor
                && !FLOORS.contains(&f.as_str())
            {
                return Err(format!("stages.{name}.floor = {f:?}: one of {}", FLOORS.join(", ")));
            }
            if let Some(at) = &s.floor_at
                && at != "same"
                && at != "p50"
            {
                return Err(format!("stages.{name}.floor_at = {at:?}: \"same\" or \"p50\""));
            }
        }
        Ok(())
    }

    /// Every breach of this budget by `report`, one line each, in a stable order (empty: pass).
    pub fn check(&self, report: &BenchReport) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(max) = self.allocs_per_event
            && report.allocs_per_event > max
            && report.allocs.count > self.allocs_allowance
        {
            out.push(format!(
                "allocs_per_event {:.4} > budget {max} ({} allocations over {} events, {} tolerated per run)",
                report.allocs_per_event, report.allocs.count, report.allocs.events, self.allocs_allowance
            ));
        }
        if let Some(min) = self.min_throughput_eps
            && report.throughput_eps < min
        {
            out.push(format!("throughput_eps {:.0} < budget {min:.0}", report.throughput_eps));
        }
        if let Some(max) = self.max_dropped {
            for (what, n) in
                [("events.dropped", report.events.dropped), ("throughput.dropped", report.throughput.dropped)]
            {
                if n > max {
                    out.push(format!("{what} {n} > budget {max}"));
                }
            }
        }
        if let Some(max) = self.max_rss_bytes
            && report.rss_bytes > max
        {
            out.push(format!("rss_bytes {} > budget {max}", report.rss_bytes));
        }
        for (name, b) in &self.stages {
            let Some(s) = report.latency_ns.get(name) else {
                out.push(format!("{name}: missing from the report"));
                continue;
            };
            if let Some(min) = b.min_count
                && s.count < min
            {
                out.push(format!("{name} count {} < budget {min}", s.count));
            }
            let pcts = [
                ("p50", s.p50, b.p50_ns, b.p50_x),
                ("p99", s.p99, b.p99_ns, b.p99_x),
                ("p99.9", s.p999, b.p999_ns, b.p999_x),
            ];
            for (pct, value, ns, x) in pcts {
                if let Some(ceiling) = ns
                    && value > ceiling
                {
                    out.push(format!("{name} {pct} {value} ns > budget {ceiling} ns"));
                }
                let Some(x) = x else { continue };
                let floor_name = b.floor.as_deref().unwrap_or_default();
                let Some(floor) = report.floor_ns.get(floor_name) else {
                    out.push(format!("{name} {pct}: floor {floor_name} missing from the report"));
                    continue;
                };
                let (floor_pct, floor_v) = match (b.floor_at.as_deref(), pct) {
                    (Some("p50"), _) | (_, "p50") => ("p50", floor.p50),
                    (_, "p99") => ("p99", floor.p99),
                    _ => ("p99.9", floor.p999),
                };
                let ratio = value as f64 / floor_v.max(1) as f64;
                if ratio > x {
                    out.push(format!(
                        "{name} {pct} {value} ns = {ratio:.1}x {floor_name} {floor_pct} ({floor_v} ns) > budget {x}x"
                    ));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> BenchReport {
        let s = |p50, p99, p999| Summary { count: 1000, p50, p90: p50, p99, p999, max: p999 };
        BenchReport {
            latency_ns: [("tick_to_order".to_owned(), s(5_000, 10_000, 20_000))].into_iter().collect(),
            floor_ns: [
                ("ring_hop".to_owned(), s(100, 200, 400)),
                ("loopback_rtt".to_owned(), s(20_000, 40_000, 80_000)),
            ]
            .into_iter()
            .collect(),
            throughput_eps: 500_000.0,
            ..BenchReport::default()
        }
    }

    const BUDGET: &str = r#"
allocs_per_event = 0
min_throughput_eps = 100000
max_dropped = 0
[stages.tick_to_order]
min_count = 10
p50_ns = 8000
p99_ns = 30000
floor = "ring_hop"
p50_x = 60
p999_x = 60
"#;

    #[test]
    fn passes_within_budget_and_names_each_breach() {
        let b = Budget::parse(BUDGET).unwrap();
        assert_eq!(b.check(&report()), Vec::<String>::new());
        let mut r = report();
        r.allocs = ReportAllocs { count: 1, events: 40_000 };
        r.allocs_per_event = 1.0 / 40_000.0;
        assert_eq!(b.check(&r).len(), 1, "no allowance in this budget");
        let lenient = Budget { allocs_allowance: 1, ..b.clone() };
        assert_eq!(lenient.check(&r), Vec::<String>::new());
        r.allocs = ReportAllocs { count: 40_000, events: 40_000 };
        r.allocs_per_event = 1.0;
        assert_eq!(lenient.check(&r).len(), 1);
        r.throughput_eps = 50_000.0;
        r.latency_ns.get_mut("tick_to_order").unwrap().p50 = 10_000; // 8000 ns and 60x both
        r.latency_ns.get_mut("tick_to_order").unwrap().p999 = 30_000; // 75x the floor's p99.9
        let breaches = b.check(&r);
        assert_eq!(breaches.len(), 5, "{breaches:#?}");
        assert!(breaches[0].starts_with("allocs_per_event"));
        assert!(breaches[1].starts_with("throughput_eps 50000 < budget"));
        assert_eq!(breaches[2], "tick_to_order p50 10000 ns > budget 8000 ns");
        assert_eq!(breaches[3], "tick_to_order p50 10000 ns = 100.0x ring_hop p50 (100 ns) > budget 60x");
        assert_eq!(breaches[4], "tick_to_order p99.9 30000 ns = 75.0x ring_hop p99.9 (400 ns) > budget 60x");
        assert!(breaches.iter().all(|l| !l.contains('\n')));
    }

    #[test]
    fn refuses_bad_budgets_in_one_line() {
        for (text, want) in [
            ("[stages.nope]\np50_ns = 1\n", "stages.nope: unknown stage"),
            ("[stages.tick_to_order]\np50_x = 2\n", "stages.tick_to_order.p50_x: needs `floor`"),
            ("[stages.tick_to_order]\nfloor = \"disk\"\n", "stages.tick_to_order.floor = \"disk\""),
            ("[stages.tick_to_order]\np50_ns = 0\n", "stages.tick_to_order.p50_ns: must be positive"),
            ("allocs_per_event = -1\n", "allocs_per_event = -1"),
            ("bogus = 1\n", "line 1: unknown field `bogus`"),
        ] {
            let e = Budget::parse(text).unwrap_err();
            assert!(e.starts_with(want), "{e}");
            assert!(!e.contains('\n'));
        }
        let e = Budget::load(Path::new("/nonexistent/budget.toml")).unwrap_err();
        assert!(e.starts_with("budget /nonexistent/budget.toml: "), "{e}");
    }

    #[test]
    fn a_missing_stage_is_a_breach() {
        let b = Budget::parse("[stages.recv_to_decoded]\np50_ns = 100\n").unwrap();
        assert_eq!(b.check(&report()), ["recv_to_decoded: missing from the report"]);
    }
}
