//! Per-stage latency histograms, tick to order.
//!
//! Each thread records into its own [`LatencyRecorder`] (no sharing, no locks); at the end the
//! recorders are merged for the report. Histograms are allocated up front with a fixed range, so
//! recording never allocates: a value past the range is clamped to it and counted.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency a histogram tracks exactly (60 s); anything slower is clamped and counted.
pub const MAX_TRACKED_NS: u64 = 60_000_000_000;

/// A measured stage of the tick-to-order path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Socket read → normalized event (I/O thread).
    RecvToDecoded,
    /// Normalized event → dequeued by the core (ring hop).
    DecodedToDequeued,
    /// Dequeued → strategy decided.
    DequeuedToDecision,
    /// Decision → pre-trade risk passed.
    DecisionToRiskPassed,
    /// Risk passed → order bytes written (I/O thread).
    RiskPassedToOrderWritten,
    /// Command taken off the ring → order bytes written: the gateway's encode, sign and socket
    /// write alone, so a slow venue write is told apart from a late pick-up of the command.
    CommandToOrderWritten,
    /// Socket read → strategy decided: the core's headline.
    TickToDecision,
    /// Socket read → order written: the engine's headline.
    TickToOrder,
}

impl Stage {
    /// Every stage, in path order.
    pub const ALL: [Self; 8] = [
        Self::RecvToDecoded,
        Self::DecodedToDequeued,
        Self::DequeuedToDecision,
        Self::DecisionToRiskPassed,
        Self::RiskPassedToOrderWritten,
        Self::CommandToOrderWritten,
        Self::TickToDecision,
        Self::TickToOrder,
    ];

    /// The stage's name in reports (`latency_ns` keys) and `.hgrm` file names.
    pub const fn name(self) -> &'static str {
        match self {
            Self::RecvToDecoded => "recv_to_decoded",
            Self::DecodedToDequeued => "decoded_to_dequeued",
            Self::DequeuedToDecision => "dequeued_to_decision",
            Self::DecisionToRiskPassed => "decision_to_risk_passed",
            Self::RiskPassedToOrderWritten => "risk_passed_to_order_written",
            Self::CommandToOrderWritten => "command_to_order_written",
            Self::TickToDecision => "tick_to_decision",
            Self::TickToOrder => "tick_to_order",
        }
    }
}

/// One thread's histograms, one per [`Stage`].
#[derive(Clone, Debug)]
pub struct LatencyRecorder {
    hists: Vec<Histogram<u64>>,
    clamped: u64,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    /// Allocates every histogram now (3 significant digits, 1 ns to [`MAX_TRACKED_NS`]).
    pub fn new() -> Self {
        let hists = Stage::ALL
            .iter()
            .map(|_| Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).expect("static bounds are valid"))
            .collect();
        Self { hists, clamped: 0 }
    }

    /// Records `end - start` for `stage`. Never allocates; a clock that went backwards records 0
    /// ns rather than wrapping.
    #[inline]
    pub fn record(&mut self, stage: Stage, start_ns: u64, end_ns: u64) {
        let mut v = end_ns.saturating_sub(start_ns);
        if v > MAX_TRACKED_NS {
            v = MAX_TRACKED_NS;
            self.clamped += 1;
        }
        // In range by construction, so this cannot fail or resize.
        let _ = self.hists[stage as usize].record(v.max(1));
    }

    /// Adds another thread's samples into this one.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.hists.iter_mut().zip(&other.hists) {
            a.add(b).expect("same bounds on both sides");
        }
        self.clamped += other.clamped;
    }

    /// The histogram of `stage`.
    pub fn histogram(&self, stage: Stage) -> &Histogram<u64> {
        &self.hists[stage as usize]
    }

    /// Samples past [`MAX_TRACKED_NS`] that were clamped.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// Percentile summary of `stage`.
    pub fn summary(&self, stage: Stage) -> StageSummary {
        StageSummary::of(self.histogram(stage))
    }

    /// Writes `stage` in the `.hgrm` percentile-distribution text format that HdrHistogram's
    /// plotters read, values in microseconds.
    pub fn write_hgrm(&self, stage: Stage, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let h = self.histogram(stage);
        writeln!(out, "{:>12} {:>14} {:>10} {:>14}\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)")?;
        for v in h.iter_quantiles(1) {
            let q = v.quantile_iterated_to();
            let inv = if q < 1.0 { 1.0 / (1.0 - q) } else { f64::INFINITY };
            writeln!(
                out,
                "{:>12.3} {:>2.12} {:>10} {:>14.2}",
                v.value_iterated_to() as f64 / 1000.0,
                q,
                v.count_since_last_iteration(),
                inv
            )?;
        }
        writeln!(
            out,
            "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]\n#[Max     = {:>12.3}, Total count    = {:>12}]",
            h.mean() / 1000.0,
            h.stdev() / 1000.0,
            h.max() as f64 / 1000.0,
            h.len()
        )
    }
}

/// Count and percentiles of one stage, in ns, as the JSON report prints them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StageSummary {
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

impl StageSummary {
    /// Summarises a histogram.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_merges_and_summarises() {
        let mut a = LatencyRecorder::new();
        let mut b = LatencyRecorder::new();
        for v in 1..=1000u64 {
            a.record(Stage::TickToOrder, 0, v * 1000);
        }
        b.record(Stage::TickToOrder, 10, 5);
        b.record(Stage::TickToOrder, 0, MAX_TRACKED_NS * 2);
        a.merge(&b);
        let s = a.summary(Stage::TickToOrder);
        assert_eq!(s.count, 1002);
        assert!((499_000..=501_000).contains(&s.p50), "{s:?}");
        assert_eq!(a.clamped(), 1);
        assert!(s.max >= MAX_TRACKED_NS);
        assert_eq!(a.summary(Stage::TickToDecision).count, 0);
    }
}
