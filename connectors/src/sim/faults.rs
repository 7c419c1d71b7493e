//! Fault injection: what goes wrong on a real venue's feed, on demand and reproducibly.
//!
//! Every outgoing market-data frame of a websocket session passes through its session's
//! [`ClientFaults`], which decides with a seeded RNG whether the frame is dropped (a gap),
//! duplicated, held back and sent after the next frame of its stream (a reorder), or preceded by
//! a malformed frame; and, per session, when the connection is dropped, when a venue shutdown
//! notice (Binance `serverShutdown`) ends it, and when the feed stalls for `stall_ms`. It is
//! protocol-agnostic: the caller classifies each frame ([`FrameClass`]) and supplies the
//! protocol's shutdown notice, if it has one.
//!
//! **Gaps are well defined.** A fault that breaks a book's sequence (a dropped or reordered depth
//! diff) is injected only into a stream whose client book is whole from the simulator's view, and
//! counted in `gaps_injected` only once the client can see it:
//!
//! - a stream starts *unsynced* when its session starts and after every gap the simulator
//!   injects into it;
//! - it becomes *bridging* when a depth snapshot of the instrument is served after that (REST:
//!   [`FaultHub::snapshot_served`]; a snapshot frame on the stream itself for venues that send
//!   one) and *whole* once a diff past the snapshot's last id has been queued and at least
//!   [`SETTLE`] passed since the snapshot was served (a client that asked for it has had time to
//!   apply it); any later snapshot of the instrument sends it back to bridging;
//! - a drop is counted when the next diff of the stream, which reveals it, is queued; a reorder
//!   when the overtaking diff is queued. If the session ends first the client never sees the gap
//!   (it resets on the disconnect) and nothing is counted; if a snapshot of the instrument was
//!   served between the drop and its reveal, a client that applied it may legitimately never see
//!   the gap, so it is counted apart in `gaps_covered`.
//!
//! Each such gap is then exactly one gap for a client following the venue's procedure: in
//! sequence the revealing diff breaks continuity; while it buffers diffs before a snapshot, the
//! buffer's own continuity check breaks.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use tungstenite::Utf8Bytes;

/// Least time between serving a snapshot and injecting a gap into a stream it heals.
pub const SETTLE: Duration = Duration::from_millis(200);

/// The `[simulator.faults]` section: rates per outgoing market-data frame and mean intervals per
/// session. Everything is off by default.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FaultConfig {
    /// Probability a frame is dropped (a depth diff dropped is a gap).
    pub drop_rate: f64,
    /// Probability a frame is sent twice.
    pub duplicate_rate: f64,
    /// Probability a frame is held and sent after the next frame of its stream.
    pub reorder_rate: f64,
    /// Probability a malformed frame (a truncated copy) is sent before a frame.
    pub malformed_rate: f64,
    /// Mean real seconds between injected disconnects of a session (0: never).
    pub disconnect_every_s: f64,
    /// Mean real seconds between venue shutdown notices on a session (0: never); the session
    /// closes right after the notice. Sessions of protocols without a notice are not affected.
    pub server_shutdown_every_s: f64,
    /// Mean real seconds between stalls of a session's feed (0: never).
    pub stall_every_s: f64,
    /// Length of a stall, real milliseconds: frames queue meanwhile and then go out in order.
    pub stall_ms: u64,
    /// Seed of the fault RNG (each session mixes in its own number).
    pub seed: u64,
}

impl FaultConfig {
    /// True when any fault can happen.
    pub fn enabled(&self) -> bool {
        self.drop_rate > 0.0
            || self.duplicate_rate > 0.0
            || self.reorder_rate > 0.0
            || self.malformed_rate > 0.0
            || self.disconnect_every_s > 0.0
            || self.server_shutdown_every_s > 0.0
            || (self.stall_every_s > 0.0 && self.stall_ms > 0)
    }

    /// Checks every rate is a probability and the frame rates sum to at most 1.
    ///
    /// # Errors
    /// A message naming the offending field.
    pub fn validate(&self) -> Result<(), String> {
        let rates = [
            ("drop_rate", self.drop_rate),
            ("duplicate_rate", self.duplicate_rate),
            ("reorder_rate", self.reorder_rate),
            ("malformed_rate", self.malformed_rate),
        ];
        for (name, r) in rates {
            if !(r.is_finite() && (0.0..=1.0).contains(&r)) {
                return Err(format!("faults.{name} must be in 0..=1, got {r}"));
            }
        }
        if rates.iter().map(|(_, r)| r).sum::<f64>() > 1.0 {
            return Err("faults: drop, duplicate, reorder and malformed rates must sum to at most 1".into());
        }
        let every = [
            ("disconnect_every_s", self.disconnect_every_s),
            ("server_shutdown_every_s", self.server_shutdown_every_s),
            ("stall_every_s", self.stall_every_s),
        ];
        for (name, s) in every {
            if !(s.is_finite() && s >= 0.0) {
                return Err(format!("faults.{name} must be finite and >= 0, got {s}"));
            }
        }
        if self.stall_ms > 60_000 {
            return Err(format!("faults.stall_ms must be at most 60000, got {}", self.stall_ms));
        }
        Ok(())
    }
}

/// Counters of injected faults, read through [`super::SimStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Frames dropped.
    pub dropped: u64,
    /// Frames sent twice.
    pub duplicated: u64,
    /// Frames sent after the next frame of their stream.
    pub reordered: u64,
    /// Malformed frames sent.
    pub malformed: u64,
    /// Sessions ended by an injected disconnect.
    pub disconnects: u64,
    /// Sessions ended by an injected venue shutdown notice.
    pub server_shutdowns: u64,
    /// Feed stalls.
    pub stalls: u64,
    /// Gaps a client following the venue's procedure must detect (see the module doc).
    pub gaps_injected: u64,
    /// Dropped or reordered depth diffs a snapshot served before their reveal may have healed.
    pub gaps_covered: u64,
}

/// What a frame carries, as far as faults care. `stream` identifies the stream within the
/// session (a reorder waits for the next frame of the same stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameClass {
    /// A depth diff of `instrument` ending at update id `last_id`.
    Diff {
        /// The stream.
        stream: u64,
        /// Instrument index.
        instrument: usize,
        /// The diff's last update id.
        last_id: u64,
    },
    /// A depth snapshot sent on the stream itself (venues that resync by resubscribing).
    #[cfg_attr(not(test), allow(dead_code))] // for the Bybit and OKX streams, which send them
    Snapshot {
        /// The stream.
        stream: u64,
        /// Instrument index.
        instrument: usize,
    },
    /// Anything else: quotes, trades, marks.
    Other {
        /// The stream.
        stream: u64,
    },
}

impl FrameClass {
    fn stream(self) -> u64 {
        match self {
            Self::Diff { stream, .. } | Self::Snapshot { stream, .. } | Self::Other { stream } => stream,
        }
    }
}

/// A snapshot served: its generation (1, 2, ... per instrument), last update id and time.
#[derive(Clone, Copy, Debug)]
struct Served {
    generation: u64,
    last_id: u64,
    at: Instant,
}

/// The faults configuration and what every session's book streams need to know about snapshots
/// served. Lives beside the subscription hub, under its lock.
#[derive(Debug)]
pub(crate) struct FaultHub {
    pub(crate) cfg: FaultConfig,
    served: Vec<Served>,
    sessions: u64,
}

impl FaultHub {
    pub(crate) fn new(cfg: FaultConfig, instruments: usize) -> Self {
        let none = Served { generation: 0, last_id: 0, at: Instant::now() };
        Self { cfg, served: vec![none; instruments], sessions: 0 }
    }

    /// Records that a depth snapshot of `instrument` with `last_id` was served now.
    pub(crate) fn snapshot_served(&mut self, instrument: usize, last_id: u64, now: Instant) {
        if let Some(s) = self.served.get_mut(instrument) {
            *s = Served { generation: s.generation + 1, last_id, at: now };
        }
    }

    /// The fault state of a new session; `shutdown_notice` builds the protocol's shutdown
    /// notice from the simulated time, when it has one.
    pub(crate) fn session(&mut self, now: Instant, shutdown_notice: Option<fn(i64) -> String>) -> ClientFaults {
        self.sessions += 1;
        let mut rng = SmallRng::seed_from_u64(self.cfg.seed ^ self.sessions.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let cfg = &self.cfg;
        let mut after = |mean_s: f64| (mean_s > 0.0).then(|| now + exponential(&mut rng, mean_s));
        let next_disconnect = after(cfg.disconnect_every_s);
        let next_shutdown = if shutdown_notice.is_some() { after(cfg.server_shutdown_every_s) } else { None };
        let next_stall = if cfg.stall_ms > 0 { after(cfg.stall_every_s) } else { None };
        let books = self.served.iter().map(|s| BookView::Unsynced { since: s.generation }).collect();
        ClientFaults {
            rng,
            books,
            held: None,
            next_disconnect,
            next_shutdown,
            next_stall,
            stalled_until: None,
            stalled: Vec::new(),
            shutdown_notice,
        }
    }
}

/// An exponentially distributed wait with mean `mean_s` seconds (at least 1 ms).
fn exponential(rng: &mut SmallRng, mean_s: f64) -> Duration {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    Duration::from_secs_f64((-u.ln() * mean_s).clamp(0.001, 86_400.0))
}

/// A client book stream as the simulator sees it (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BookView {
    /// Needs a snapshot of generation > `since`.
    Unsynced { since: u64 },
    /// A snapshot was served; whole once a diff past `last_id` is queued after `at` + SETTLE.
    Bridging { generation: u64, last_id: u64, at: Instant },
    /// Whole since the snapshot of `generation`.
    Whole { generation: u64 },
    /// A diff was dropped when the snapshot generation was `generation`; the next diff reveals it.
    Dropped { generation: u64 },
}

/// What a session must do after [`ClientFaults::tick`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SessionFault {
    /// Nothing: carry on.
    None,
    /// End the session after the frames queued so far (an injected disconnect or shutdown).
    End,
}

/// One session's faults: its RNG, its book streams, a held frame and its timers.
#[derive(Debug)]
pub(crate) struct ClientFaults {
    rng: SmallRng,
    books: Vec<BookView>,
    /// A frame held for a reorder: its class and text, and the snapshot generation then.
    held: Option<(FrameClass, Utf8Bytes, u64)>,
    next_disconnect: Option<Instant>,
    next_shutdown: Option<Instant>,
    next_stall: Option<Instant>,
    stalled_until: Option<Instant>,
    stalled: Vec<Utf8Bytes>,
    shutdown_notice: Option<fn(i64) -> String>,
}

impl ClientFaults {
    /// Session-level faults due at `now`: ends a stall (its frames go to `out`), starts one, or
    /// asks for the session to end (after the shutdown notice, pushed to `out`, when that is the
    /// fault). `time_ms` is the simulated time for the notice.
    pub(crate) fn tick(
        &mut self,
        hub: &FaultHub,
        stats: &mut FaultStats,
        now: Instant,
        time_ms: i64,
        out: &mut Vec<Utf8Bytes>,
    ) -> SessionFault {
        if self.stalled_until.is_some_and(|t| now >= t) {
            self.stalled_until = None;
            out.append(&mut self.stalled);
        }
        if !hub.cfg.enabled() {
            return SessionFault::None;
        }
        if self.next_stall.is_some_and(|t| now >= t) && self.stalled_until.is_none() {
            stats.stalls += 1;
            self.stalled_until = Some(now + Duration::from_millis(hub.cfg.stall_ms));
            self.next_stall = Some(now + exponential(&mut self.rng, hub.cfg.stall_every_s));
        }
        let due = |t: Option<Instant>| t.is_some_and(|t| now >= t);
        if due(self.next_shutdown)
            && let Some(notice) = self.shutdown_notice
        {
            stats.server_shutdowns += 1;
            self.flush_for_end(out);
            out.push(notice(time_ms).into());
            return SessionFault::End;
        }
        if due(self.next_disconnect) {
            stats.disconnects += 1;
            self.flush_for_end(out);
            return SessionFault::End;
        }
        SessionFault::None
    }

    /// Before an injected end: what a stall held goes out (a held reorder frame is dropped with
    /// the session, like everything the client never reads).
    fn flush_for_end(&mut self, out: &mut Vec<Utf8Bytes>) {
        self.stalled_until = None;
        out.append(&mut self.stalled);
        self.held = None;
    }

    /// Decides the fate of one frame; what is to be queued now goes to `out`, in order.
    pub(crate) fn on_frame(
        &mut self,
        hub: &FaultHub,
        stats: &mut FaultStats,
        class: FrameClass,
        frame: &Utf8Bytes,
        now: Instant,
        out: &mut Vec<Utf8Bytes>,
    ) {
        if self.stalled_until.is_some() {
            let mut produced = Vec::new();
            self.decide(hub, stats, class, frame, now, &mut produced);
            self.stalled.append(&mut produced);
        } else {
            self.decide(hub, stats, class, frame, now, out);
        }
    }

    fn decide(
        &mut self,
        hub: &FaultHub,
        stats: &mut FaultStats,
        class: FrameClass,
        frame: &Utf8Bytes,
        now: Instant,
        out: &mut Vec<Utf8Bytes>,
    ) {
        // Snapshots served since this stream last looked move it to bridging.
        let book = match class {
            FrameClass::Diff { instrument, .. } | FrameClass::Snapshot { instrument, .. } => {
                self.refresh(hub, instrument);
                Some(instrument)
            }
            FrameClass::Other { .. } => None,
        };
        // The frame a held one waits for: it overtakes, the held one follows.
        if let Some((held_class, _, _)) = &self.held
            && held_class.stream() == class.stream()
        {
            let (held_class, held, generation) = self.held.take().unwrap_or((class, frame.clone(), 0));
            out.push(frame.clone());
            out.push(held);
            if let FrameClass::Diff { instrument, .. } = held_class {
                self.gap_revealed(hub, stats, instrument, generation);
            }
            return;
        }
        // The diff after a dropped one goes out as it is: it reveals the gap.
        if let (FrameClass::Diff { instrument, .. }, Some(BookView::Dropped { generation })) =
            (class, book.map(|i| self.books[i]))
        {
            out.push(frame.clone());
            self.gap_revealed(hub, stats, instrument, generation);
            return;
        }
        // Drops and reorders break a book's sequence: diffs get them only while the book is whole,
        // snapshot frames never.
        let breaks = !matches!(class, FrameClass::Other { .. });
        let whole = matches!(class, FrameClass::Diff { .. })
            && book.is_some_and(|i| matches!(self.books[i], BookView::Whole { .. }));
        let roll: f64 = self.rng.random();
        let cfg = &hub.cfg;
        let mut at = cfg.drop_rate;
        if roll < at {
            // A dropped diff is allowed only into a whole book (see the module doc).
            if !breaks || whole {
                stats.dropped += 1;
                if let Some(i) = book.filter(|_| breaks) {
                    let generation = hub.served[i].generation;
                    self.books[i] = BookView::Dropped { generation };
                }
                return;
            }
        } else if roll < {
            at += cfg.duplicate_rate;
            at
        } {
            stats.duplicated += 1;
            self.emit(class, frame, now, out);
            out.push(frame.clone());
            return;
        } else if roll < {
            at += cfg.reorder_rate;
            at
        } {
            if self.held.is_none() && (!breaks || whole) {
                stats.reordered += 1;
                let generation = book.map_or(0, |i| hub.served[i].generation);
                if let Some(i) = book.filter(|_| breaks) {
                    self.books[i] = BookView::Dropped { generation };
                }
                self.held = Some((class, frame.clone(), generation));
                return;
            }
        } else if roll < at + cfg.malformed_rate {
            stats.malformed += 1;
            out.push(malformed(frame, &mut self.rng));
        }
        self.emit(class, frame, now, out);
    }

    /// Queues `frame` unchanged and moves its book stream along.
    fn emit(&mut self, class: FrameClass, frame: &Utf8Bytes, now: Instant, out: &mut Vec<Utf8Bytes>) {
        out.push(frame.clone());
        match class {
            FrameClass::Diff { instrument, last_id, .. } => match self.books[instrument] {
                BookView::Bridging { generation, last_id: snap, at }
                    if last_id > snap && now.saturating_duration_since(at) >= SETTLE =>
                {
                    self.books[instrument] = BookView::Whole { generation };
                }
                _ => {}
            },
            FrameClass::Snapshot { instrument, .. } => {
                let generation = match self.books[instrument] {
                    BookView::Unsynced { since } => since,
                    BookView::Bridging { generation, .. }
                    | BookView::Whole { generation }
                    | BookView::Dropped { generation } => generation,
                };
                self.books[instrument] = BookView::Whole { generation };
            }
            FrameClass::Other { .. } => {}
        }
    }

    /// A dropped or held diff of `instrument`, decided at snapshot `generation`, is now visible.
    fn gap_revealed(&mut self, hub: &FaultHub, stats: &mut FaultStats, instrument: usize, generation: u64) {
        let now_generation = hub.served[instrument].generation;
        if now_generation == generation {
            stats.gaps_injected += 1;
        } else {
            stats.gaps_covered += 1;
        }
        self.books[instrument] = BookView::Unsynced { since: now_generation };
    }

    /// Applies snapshots served since this stream last looked.
    fn refresh(&mut self, hub: &FaultHub, instrument: usize) {
        let served = hub.served[instrument];
        let view = &mut self.books[instrument];
        let newer = match *view {
            BookView::Unsynced { since } => served.generation > since,
            BookView::Bridging { generation, .. } | BookView::Whole { generation } => served.generation > generation,
            // The reveal decides (see `gap_revealed`).
            BookView::Dropped { .. } => false,
        };
        if newer {
            *view = BookView::Bridging { generation: served.generation, last_id: served.last_id, at: served.at };
        }
    }
}

/// A malformed copy of `frame`: cut short in its first half (broken JSON), or garbage.
fn malformed(frame: &Utf8Bytes, rng: &mut SmallRng) -> Utf8Bytes {
    let text = frame.as_str();
    if text.len() < 4 || rng.random_bool(0.2) {
        return "\u{1}not json".into();
    }
    let mut cut = rng.random_range(1..text.len() / 2);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].to_owned().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(last_id: u64) -> FrameClass {
        FrameClass::Diff { stream: 1, instrument: 0, last_id }
    }

    fn run(
        c: &mut ClientFaults,
        hub: &FaultHub,
        stats: &mut FaultStats,
        class: FrameClass,
        text: &str,
        now: Instant,
    ) -> Vec<String> {
        let mut out = Vec::new();
        c.on_frame(hub, stats, class, &Utf8Bytes::from(text.to_owned()), now, &mut out);
        out.iter().map(|f| f.as_str().to_owned()).collect()
    }

    #[test]
    fn gaps_only_into_whole_books_and_counted_when_revealed() {
        let t0 = Instant::now();
        let mut hub = FaultHub::new(FaultConfig { drop_rate: 1.0, ..FaultConfig::default() }, 1);
        let mut stats = FaultStats::default();
        let mut c = hub.session(t0, None);
        // Unsynced: diffs pass untouched, others are dropped.
        assert_eq!(run(&mut c, &hub, &mut stats, diff(10), "d10", t0), ["d10"]);
        assert!(run(&mut c, &hub, &mut stats, FrameClass::Other { stream: 2 }, "q", t0).is_empty());
        // A snapshot at 12; a diff past it before SETTLE does not make the book whole.
        hub.snapshot_served(0, 12, t0);
        assert_eq!(run(&mut c, &hub, &mut stats, diff(13), "d13", t0), ["d13"]);
        let later = t0 + SETTLE;
        assert_eq!(run(&mut c, &hub, &mut stats, diff(14), "d14", later), ["d14"]);
        assert_eq!(stats, FaultStats { dropped: 1, ..FaultStats::default() });
        // Whole: dropped, then revealed by the next diff, which goes out.
        assert!(run(&mut c, &hub, &mut stats, diff(15), "d15", later).is_empty());
        assert_eq!(stats.gaps_injected, 0);
        assert_eq!(run(&mut c, &hub, &mut stats, diff(16), "d16", later), ["d16"]);
        assert_eq!((stats.dropped, stats.gaps_injected, stats.gaps_covered), (2, 1, 0));
        // Unsynced again until the next snapshot.
        assert_eq!(run(&mut c, &hub, &mut stats, diff(17), "d17", later), ["d17"]);
        // A snapshot served between a drop and its reveal makes the gap covered, not injected.
        hub.snapshot_served(0, 17, later);
        let later = later + SETTLE;
        assert_eq!(run(&mut c, &hub, &mut stats, diff(18), "d18", later), ["d18"]);
        assert!(run(&mut c, &hub, &mut stats, diff(19), "d19", later).is_empty());
        hub.snapshot_served(0, 19, later);
        assert_eq!(run(&mut c, &hub, &mut stats, diff(20), "d20", later), ["d20"]);
        assert_eq!((stats.dropped, stats.gaps_injected, stats.gaps_covered), (3, 1, 1));
    }

    #[test]
    fn reorders_swap_with_the_next_frame_of_the_stream_and_snapshot_frames_heal() {
        let t0 = Instant::now();
        let mut hub = FaultHub::new(FaultConfig { reorder_rate: 1.0, ..FaultConfig::default() }, 1);
        let mut stats = FaultStats::default();
        let mut c = hub.session(t0, None);
        let snap = FrameClass::Snapshot { stream: 1, instrument: 0 };
        assert_eq!(run(&mut c, &hub, &mut stats, snap, "s", t0), ["s"]);
        assert!(run(&mut c, &hub, &mut stats, diff(2), "d2", t0).is_empty());
        // Another stream passes meanwhile (nothing else can be held).
        assert_eq!(run(&mut c, &hub, &mut stats, FrameClass::Other { stream: 7 }, "q", t0), ["q"]);
        assert_eq!(run(&mut c, &hub, &mut stats, diff(3), "d3", t0), ["d3", "d2"]);
        assert_eq!((stats.reordered, stats.gaps_injected), (1, 1));
    }

    #[test]
    fn duplicates_and_malformed_frames_keep_the_frame() {
        let t0 = Instant::now();
        let cfg = FaultConfig { duplicate_rate: 0.5, malformed_rate: 0.5, seed: 3, ..FaultConfig::default() };
        let mut hub = FaultHub::new(cfg, 1);
        let mut stats = FaultStats::default();
        let mut c = hub.session(t0, None);
        let frame = r#"{"e":"depthUpdate","U":1,"u":2,"b":[["1.00","2"]],"a":[]}"#;
        for _ in 0..200 {
            let out = run(&mut c, &hub, &mut stats, diff(2), frame, t0);
            assert_eq!(out.len(), 2);
            assert_eq!(out[1], frame);
            assert!(out[0] == frame || serde_json::from_str::<serde_json::Value>(&out[0]).is_err(), "{}", out[0]);
        }
        assert_eq!(stats.duplicated + stats.malformed, 200);
        assert!(stats.duplicated > 50 && stats.malformed > 50, "{stats:?}");
    }

    #[test]
    fn stalls_hold_frames_in_order_and_sessions_end_after_a_notice() {
        let t0 = Instant::now();
        let mut hub = FaultHub::new(FaultConfig { stall_every_s: 1.0, stall_ms: 50, ..FaultConfig::default() }, 1);
        let mut stats = FaultStats::default();
        let mut c = hub.session(t0, None);
        let stall_at = c.next_stall.unwrap();
        let mut out = Vec::new();
        assert_eq!(c.tick(&hub, &mut stats, stall_at, 5, &mut out), SessionFault::None);
        assert_eq!(stats.stalls, 1);
        for i in 0..3 {
            let class = FrameClass::Other { stream: 1 };
            assert!(run(&mut c, &hub, &mut stats, class, &format!("f{i}"), stall_at).is_empty());
        }
        assert_eq!(c.tick(&hub, &mut stats, stall_at + Duration::from_millis(49), 5, &mut out), SessionFault::None);
        assert!(out.is_empty());
        c.tick(&hub, &mut stats, stall_at + Duration::from_millis(50), 5, &mut out);
        assert_eq!(out.iter().map(|f| f.as_str()).collect::<Vec<_>>(), ["f0", "f1", "f2"]);

        fn notice(t: i64) -> String {
            format!("bye {t}")
        }
        let mut hub = FaultHub::new(FaultConfig { server_shutdown_every_s: 1.0, ..FaultConfig::default() }, 1);

        assert!(hub.session(t0, None).next_shutdown.is_none());
        let mut c = hub.session(t0, Some(notice));
        let end_at = c.next_shutdown.unwrap();
        let mut out = Vec::new();
        assert_eq!(c.tick(&hub, &mut stats, end_at - Duration::from_millis(1), 9, &mut out), SessionFault::None);
        assert_eq!(c.tick(&hub, &mut stats, end_at, 9, &mut out), SessionFault::End);
        assert_eq!(stats.server_shutdowns, 1);
        assert_eq!(out.iter().map(|f| f.as_str()).collect::<Vec<_>>(), ["bye 9"]);
    }

    #[test]
    fn bad_rates_are_refused() {
        assert!(FaultConfig::default().validate().is_ok() && !FaultConfig::default().enabled());
        let cfg = FaultConfig { drop_rate: 0.7, reorder_rate: 0.5, ..FaultConfig::default() };
        assert!(cfg.validate().unwrap_err().contains("sum"));
        let cfg = FaultConfig { stall_every_s: f64::NAN, ..FaultConfig::default() };
        assert!(cfg.validate().unwrap_err().contains("stall_every_s"));
    }
}
