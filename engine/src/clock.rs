//! Time, injected.
//!
//! The core never reads the system clock for decisions: it is handed a [`Clock`], so the same code
//! runs live (monotonic clock) and in replay (the recorded receive time of the event in hand).
//! Latency stamps are the exception: they measure this machine, so they always come from
//! [`now_ns`].

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Monotonic nanoseconds since the first call in this process: the unit of every latency stamp.
///
/// One `clock_gettime` through the vDSO; no syscall, no lock, no allocation.
#[inline]
pub fn now_ns() -> u64 {
    let epoch = EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The time source of decision logic.
pub trait Clock {
    /// Current time in ns on this clock's own axis.
    fn now_ns(&self) -> u64;
}

/// The live clock: [`now_ns`].
#[derive(Clone, Copy, Debug, Default)]
pub struct MonotonicClock;

impl Clock for MonotonicClock {
    #[inline]
    fn now_ns(&self) -> u64 {
        now_ns()
    }
}

/// A clock that reads what it was last set to: for tests and replay.
#[derive(Debug, Default)]
pub struct ManualClock(core::cell::Cell<u64>);

impl ManualClock {
    /// A clock at `ns`.
    pub fn new(ns: u64) -> Self {
        Self(core::cell::Cell::new(ns))
    }

    /// Moves the clock to `ns`.
    pub fn set(&self, ns: u64) {
        self.0.set(ns);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.0.get()
    }
}
