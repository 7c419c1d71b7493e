//! Bounded lock-free rings between pinned threads, with explicit backpressure.
//!
//! A ring is crossbeam's preallocated `ArrayQueue`: `push` never allocates and hands the item back
//! when full. What happens then is a policy of the item's kind, never an accident:
//! quotes may be conflated (dropped and counted), while order events, fills and commands are never
//! dropped: the producer waits and the wait is counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam::queue::ArrayQueue;
use crossbeam::utils::CachePadded;
use serde::Deserialize;

/// What a thread does when it finds no work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdlePolicy {
    /// Busy-spin: lowest latency, burns a core.
    Spin,
    /// `sched_yield` between polls: low latency, lets other threads in.
    #[default]
    Yield,
    /// Sleep briefly: for small machines and tests.
    Park,
}

/// Counts idle rounds and applies an [`IdlePolicy`].
#[derive(Debug)]
pub struct Idler {
    policy: IdlePolicy,
    idle_rounds: u32,
}

impl Idler {
    /// An idler with `policy`.
    pub fn new(policy: IdlePolicy) -> Self {
        Self { policy, idle_rounds: 0 }
    }

    /// Call after a round that did work.
    #[inline]
    pub fn busy(&mut self) {
        self.idle_rounds = 0;
    }

    /// Call after a round that found nothing: spins, yields or parks per policy. Spinning a
    /// little first keeps `yield` and `park` fast when work arrives in bursts.
    #[inline]
    pub fn idle(&mut self) {
        self.idle_rounds = self.idle_rounds.saturating_add(1);
        if self.idle_rounds < 64 {
            std::hint::spin_loop();
            return;
        }
        match self.policy {
            IdlePolicy::Spin => std::hint::spin_loop(),
            IdlePolicy::Yield => std::thread::yield_now(),
            IdlePolicy::Park => std::thread::sleep(Duration::from_micros(50)),
        }
    }

    /// How long a thread using this policy may block in a poll call when idle (`None`: not at
    /// all), so the I/O thread can sleep in epoll instead of sleeping blind.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.policy {
            IdlePolicy::Spin | IdlePolicy::Yield => None,
            IdlePolicy::Park => Some(Duration::from_micros(200)),
        }
    }
}

/// Paces a consumer's polls of a ring while events stream in back to back.
///
/// A consumer spinning on an empty ring reads the producer's tail and the next slot every few
/// tens of ns, so each push finds those cache lines in the consumer's cache and stalls taking
/// them back (a locked compare-exchange on a shared line: a cross-core round trip per event, a
/// large share of the I/O thread's time at maximum rate). Once [`STREAMING_RUN`] events in a row
/// arrived within [`FAST_GAP_NS`] of each other, an empty poll is followed by [`BACKOFF_NS`]
/// without touching the ring: the producer pushes several events into lines the consumer is not
/// reading, and the consumer takes them in one sweep. An isolated event (the fixed-rate latency
/// run, a quiet market) never meets a backoff, and one gap longer than [`FAST_GAP_NS`] ends
/// streaming, so the added wait is at most [`BACKOFF_NS`] and only under sustained load.
///
/// [`STREAMING_RUN`]: PollPacer::STREAMING_RUN
/// [`FAST_GAP_NS`]: PollPacer::FAST_GAP_NS
/// [`BACKOFF_NS`]: PollPacer::BACKOFF_NS
#[derive(Debug, Default, Clone)]
pub struct PollPacer {
    last_pop_ns: u64,
    run: u32,
    resume_ns: u64,
}

impl PollPacer {
    /// Largest gap between two events that still counts as streaming, ns.
    pub const FAST_GAP_NS: u64 = 8_000;
    /// Events in a row within [`PollPacer::FAST_GAP_NS`] before polls are paced.
    pub const STREAMING_RUN: u32 = 64;
    /// Time between an empty poll and the next while streaming, ns.
    pub const BACKOFF_NS: u64 = 4_000;

    /// A pacer that lets every poll through until events stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when a backoff is pending: ask [`PollPacer::may_poll`] with the time.
    #[inline]
    pub fn pacing(&self) -> bool {
        self.resume_ns != 0
    }

    /// Whether the consumer may poll the ring at `now`; clears an expired backoff.
    #[inline]
    pub fn may_poll(&mut self, now: u64) -> bool {
        if now >= self.resume_ns {
            self.resume_ns = 0;
            true
        } else {
            false
        }
    }

    /// Records an event taken at `now`.
    #[inline]
    pub fn popped(&mut self, now: u64) {
        let fast = now.saturating_sub(self.last_pop_ns) <= Self::FAST_GAP_NS;
        self.run = if fast { self.run.saturating_add(1) } else { 0 };
        self.last_pop_ns = now;
    }

    /// True when the next empty poll needs the time ([`PollPacer::empty`]).
    #[inline]
    pub fn streaming(&self) -> bool {
        self.run >= Self::STREAMING_RUN
    }

    /// Records an empty poll at `now`: backs off while streaming, ends streaming after a long gap.
    #[inline]
    pub fn empty(&mut self, now: u64) {
        if now.saturating_sub(self.last_pop_ns) > Self::FAST_GAP_NS {
            self.run = 0;
        } else if self.run >= Self::STREAMING_RUN {
            self.resume_ns = now + Self::BACKOFF_NS;
        }
    }
}

/// Counters of one ring, padded so producer and consumer do not share a cache line.
#[derive(Debug, Default)]
pub struct RingStats {
    /// Items the producer pushed.
    pub pushed: CachePadded<AtomicU64>,
    /// Items dropped by conflation because the ring was full.
    pub conflated: CachePadded<AtomicU64>,
    /// Times a lossless producer found the ring full and had to wait.
    pub full_waits: CachePadded<AtomicU64>,
}

/// A bounded lock-free ring with counters. Each hot path uses it one producer to one consumer;
/// the queue underneath (crossbeam's `ArrayQueue`) is also safe with several producers, which the
/// core's market ring relies on when the DEX feed thread pushes beside the I/O thread.
#[derive(Debug)]
pub struct Ring<T> {
    queue: ArrayQueue<T>,
    stats: RingStats,
}

impl<T> Ring<T> {
    /// A ring of `capacity` slots, allocated now and never again.
    ///
    /// # Panics
    /// If `capacity` is zero (config validation refuses it first).
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self { queue: ArrayQueue::new(capacity), stats: RingStats::default() })
    }

    /// Pushes, dropping the item when full (conflation). Returns false when it was dropped.
    #[inline]
    pub fn push_or_drop(&self, item: T) -> bool {
        match self.queue.push(item) {
            Ok(()) => {
                self.stats.pushed.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.stats.conflated.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Pushes, waiting while full: for items that must never be lost. The wait is counted.
    #[inline]
    pub fn push_lossless(&self, mut item: T) {
        let mut waited = false;
        loop {
            match self.queue.push(item) {
                Ok(()) => {
                    self.stats.pushed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(back) => {
                    if !waited {
                        self.stats.full_waits.fetch_add(1, Ordering::Relaxed);
                        waited = true;
                    }
                    item = back;
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Takes the oldest item, if any.
    #[inline]
    pub fn pop(&self) -> Option<T> {
        self.queue.pop()
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Its counters.
    pub fn stats(&self) -> &RingStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflation_and_lossless_are_counted() {
        let r = Ring::new(2);
        assert!(r.push_or_drop(1));
        assert!(r.push_or_drop(2));
        assert!(!r.push_or_drop(3));
        assert_eq!(r.stats().conflated.load(Ordering::Relaxed), 1);
        let r2 = Arc::clone(&r);
        let t = std::thread::spawn(move || r2.push_lossless(4));
        while r.stats().full_waits.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        assert_eq!(r.pop(), Some(1));
        t.join().unwrap();
        assert_eq!(r.pop(), Some(2));
        assert_eq!(r.pop(), Some(4));
        assert_eq!(r.pop(), None);
        assert_eq!(r.stats().pushed.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn pacer_backs_off_only_while_streaming() {
        let mut p = PollPacer::new();
        // Isolated events 100 us apart: never paced.
        for k in 1..200u64 {
            p.popped(k * 100_000);
            p.empty(k * 100_000 + 10);
            assert!(!p.pacing());
        }
        // A burst as long as the streaming run: not paced yet.
        let t0 = 50_000_000;
        for k in 0..u64::from(PollPacer::STREAMING_RUN) {
            p.popped(t0 + k * 1_000);
        }
        p.empty(t0 + 64_000);
        assert!(!p.pacing());
        // One more fast event makes it a stream: the next empty poll backs off.
        p.popped(t0 + 64_500);
        assert!(p.streaming());
        p.empty(t0 + 65_000);
        assert!(p.pacing());
        assert!(!p.may_poll(t0 + 65_000 + PollPacer::BACKOFF_NS - 1));
        assert!(p.may_poll(t0 + 65_000 + PollPacer::BACKOFF_NS));
        assert!(!p.pacing());
        // A gap longer than FAST_GAP_NS ends streaming: no backoff, and the run starts over.
        p.empty(t0 + 64_500 + PollPacer::FAST_GAP_NS + 1);
        assert!(!p.pacing());
        assert!(!p.streaming());
        p.popped(t0 + 80_000);
        p.empty(t0 + 80_001);
        assert!(!p.pacing());
    }
}
