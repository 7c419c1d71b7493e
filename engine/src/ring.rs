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
}
