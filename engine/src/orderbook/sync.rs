//! [`BookSync`]: one instrument's [`L2Book`] kept in step with its venue by the venue's own
//! documented sequencing procedure, with every gap detected and the book marked not whole until a
//! resync completes.
//!
//! The sequencer is a pure state machine: it reads no clock (the caller passes `now_ns` with each
//! chunk, used only for time-to-whole), performs no I/O (a resync is *returned* as an outcome the
//! caller acts on: fetch a REST snapshot, or resubscribe) and allocates nothing after
//! [`BookSync::new`] (the pre-snapshot buffer is a bounded ring allocated once).
//!
//! Input is the engine's [`BookChunk`] stream: a venue message is a run of consecutive chunks from
//! `first` to `last`, all carrying the same [`SeqIds`]. Sequence checks run once per message, on
//! its first chunk; the message's outcome is returned with the chunk that decides it (the first
//! chunk for `Stale`, `Gap`, ...; the last chunk for `Applied`, `Buffered`, `Crossed`), every other
//! chunk returns [`SyncOutcome::Continuing`]. A message whose chunks are interrupted (a `first`
//! chunk before the previous message's `last`, or a continuation chunk that belongs to no open
//! message) means chunks were lost: it is [`SyncOutcome::Partial`], handled exactly like a gap.

use std::collections::VecDeque;

use super::for_each_chunk;
use super::levels::L2Book;
use crate::event::{BookChunk, BookUpdateKind, Level, MarketBody, MarketEvent, SeqIds, Side};

/// The venue family whose documented book procedure a [`BookSync`] follows.
///
/// Ids are read from [`SeqIds`]: Binance diffs `first`=`U`, `last`=`u`, `prev`=`pu`; a Binance
/// REST snapshot is injected as a [`BookUpdateKind::Snapshot`] message with `last`=`lastUpdateId`;
/// Bybit `last`=`u`; OKX `last`=`seqId`, `prev`=`prevSeqId`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncRule {
    /// Binance spot diff depth (`<symbol>@depth`) with a REST snapshot (`GET /api/v3/depth`).
    ///
    /// 1. Buffer diffs from the stream (checking they chain: each `U` = previous `u` + 1; a break
    ///    restarts the buffer at the new event and is reported as a gap).
    /// 2. The caller fetches a snapshot. If `lastUpdateId` < the first buffered `U`, the snapshot
    ///    predates the buffer: [`SyncOutcome::SnapshotTooOld`], fetch again.
    /// 3. Drop buffered events with `u <= lastUpdateId`; the book id becomes `lastUpdateId`.
    /// 4. Apply buffered, then live events: `u <` book id (or `u` = book id) is stale and ignored;
    ///    `U > book id + 1` is a gap (discard the book and start over); otherwise apply and set
    ///    the book id to `u`. The first applied event therefore has `U <= lastUpdateId + 1 <= u`.
    ///
    /// The book is whole once an event has bridged the snapshot (until then a fresh snapshot
    /// could still turn out older than the stream). A snapshot injected while live is stale.
    BinanceSpot,
    /// Binance USD-M futures diff depth with a REST snapshot (`GET /fapi/v1/depth`).
    ///
    /// Same buffering and too-old check as spot, but continuity is `pu`: drop buffered events with
    /// `u < lastUpdateId`; the first applied event must have `U <= lastUpdateId <= u`; after that
    /// each event's `pu` must equal the previous event's `u`, otherwise it is a gap and the book is
    /// resynced from a new snapshot. `U` may jump on futures, so it is not checked after the first.
    BinanceUsdm,
    /// Bybit v5 `orderbook.{depth}.{symbol}`.
    ///
    /// A `snapshot` is authoritative and replaces the book whatever its `u` (Bybit resends one
    /// with `u` = 1 after a service restart). A `delta` applies when its `u` is the last `u` + 1
    /// (the docs: the update id is normally continuous); `u` equal to the last is a duplicate and
    /// lower is stale, both ignored; higher than last + 1 is a gap (resubscribe for a new
    /// snapshot). A delta before any snapshot cannot be applied: the book is not whole.
    Bybit,
    /// OKX v5 `books` channel.
    ///
    /// A `snapshot` replaces the book. Each `update`'s `prevSeqId` must equal the last `seqId`
    /// applied, else it is a gap (resubscribe). An update with `seqId` = `prevSeqId` is a no-change
    /// heartbeat and is fine. An update ending at the last `seqId` from an earlier one repeats the
    /// last update: a duplicate. A `seqId` lower than the last (the sequence resets after
    /// maintenance) is treated as a gap. Deltas before a snapshot are ignored.
    Okx,
}

impl SyncRule {
    /// How this venue family heals after a gap: Binance keeps the stream and needs a new REST
    /// snapshot; Bybit and OKX send a snapshot on (re)subscribe.
    pub const fn resync(self) -> Resync {
        match self {
            Self::BinanceSpot | Self::BinanceUsdm => Resync::FetchSnapshot,
            Self::Bybit | Self::Okx => Resync::Resubscribe,
        }
    }

    const fn buffers(self) -> bool {
        matches!(self, Self::BinanceSpot | Self::BinanceUsdm)
    }
}

/// What the caller must do to make a book whole again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resync {
    /// Fetch a REST snapshot and inject it as a snapshot message (Binance).
    FetchSnapshot,
    /// Unsubscribe and resubscribe the book channel; the venue answers with a snapshot.
    Resubscribe,
}

/// What one chunk did. Expected states, not errors: the sequencer never fails on any input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    /// A chunk whose message's outcome is reported by another chunk.
    Continuing,
    /// The message was applied to the book (a snapshot, or an in-sequence delta).
    Applied,
    /// Held in the pre-snapshot buffer (Binance) until a snapshot arrives.
    Buffered,
    /// Older than the book: ignored.
    Stale,
    /// A repeat of the last message: ignored.
    Duplicate,
    /// A delta while no snapshot is held (Bybit, OKX): ignored; the book is not whole.
    Unsynced,
    /// The pre-snapshot buffer is full even after evicting older messages: this message was
    /// dropped. A later snapshot older than what remains is caught as too old.
    BufferOverflow,
    /// The snapshot (`lastUpdateId` = `snapshot_id`) predates the first diff it must bridge
    /// (`first_id` = its `U`): fetch another ([`Resync::FetchSnapshot`]).
    SnapshotTooOld {
        /// The snapshot's `lastUpdateId`.
        snapshot_id: u64,
        /// `U` of the first event the snapshot had to reach.
        first_id: u64,
    },
    /// A message is missing: the continuity id held `got` where `expected` was due. The book is
    /// not whole and has been discarded; the caller must resync.
    Gap {
        /// The id continuity required.
        expected: u64,
        /// The id the message carried.
        got: u64,
    },
    /// The book crossed after applying a message, so an update was missed: not whole, resync.
    Crossed,
    /// A message's chunks were interrupted (chunks lost between the decoder and the book):
    /// handled as a gap.
    Partial,
}

impl SyncOutcome {
    /// The action this outcome asks of the caller under `rule`, `None` when nothing is needed.
    pub const fn resync(self, rule: SyncRule) -> Option<Resync> {
        match self {
            Self::SnapshotTooOld { .. } => Some(Resync::FetchSnapshot),
            Self::Gap { .. } | Self::Crossed | Self::Partial => Some(rule.resync()),
            _ => None,
        }
    }

    /// True when the caller must resync (see [`SyncOutcome::resync`]).
    pub const fn needs_resync(self) -> bool {
        matches!(self, Self::SnapshotTooOld { .. } | Self::Gap { .. } | Self::Crossed | Self::Partial)
    }
}

/// Where the sequencer is in the venue's procedure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncPhase {
    /// No usable book: buffering diffs (Binance) or waiting for a snapshot (Bybit, OKX).
    Unsynced,
    /// Binance only: a snapshot is held but no diff has bridged it yet.
    Bridging,
    /// In sequence; the book is whole.
    Live,
}

/// Counters a desk reads to see how healthy a feed is. Plain values, read by the owner thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Messages applied to the book (snapshots and deltas, buffered ones included).
    pub applied: u64,
    /// Messages buffered before a snapshot.
    pub buffered: u64,
    /// Stale messages ignored.
    pub stale: u64,
    /// Duplicate messages ignored.
    pub duplicates: u64,
    /// Deltas ignored while no snapshot was held.
    pub unsynced: u64,
    /// Sequence gaps detected, partial messages included.
    pub gaps: u64,
    /// Of `gaps`, those that were interrupted chunk runs.
    pub partial: u64,
    /// Books found crossed after a message.
    pub crossed: u64,
    /// Snapshots refused as older than the stream.
    pub snapshots_too_old: u64,
    /// Messages or evictions caused by a full pre-snapshot buffer.
    pub buffer_overflows: u64,
    /// Resyncs requested of the caller.
    pub resync_requests: u64,
    /// Times the book became whole again after a gap or a [`BookSync::reset`].
    pub resyncs: u64,
    /// ns from the latest loss (gap detection or reset) to whole again, `None` before the first.
    pub last_time_to_whole_ns: Option<u64>,
    /// Longest time to whole seen.
    pub max_time_to_whole_ns: u64,
    /// Sum of all times to whole (divide by `resyncs` for the mean).
    pub total_time_to_whole_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Disposition {
    Apply,
    Buffer,
    Ignore,
}

/// The message whose chunks are being received.
#[derive(Clone, Copy, Debug)]
struct Open {
    seq: SeqIds,
    kind: BookUpdateKind,
    disp: Disposition,
    /// Its outcome was already returned.
    reported: bool,
    /// Chunks of it in the buffer.
    buffered: usize,
}

/// The sequencing decision for a message, before any side effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    ApplySnapshot,
    Apply,
    Buffer,
    Stale,
    Duplicate,
    Unsynced,
    BufferGap { expected: u64, got: u64 },
    Gap { expected: u64, got: u64 },
    TooOld { snapshot_id: u64, first_id: u64 },
}

/// One instrument's local book and the state machine that keeps it equal to the venue's.
///
/// Owned by one thread; feed it every book chunk of its instrument in arrival order, and act on
/// outcomes for which [`SyncOutcome::needs_resync`] is true. [`BookSync::whole`] is the guard the
/// core checks before trading on [`BookSync::book`]. It starts not whole: the caller subscribes
/// and, for Binance, fetches the first snapshot, as after any gap.
#[derive(Clone, Debug)]
pub struct BookSync {
    rule: SyncRule,
    book: L2Book,
    phase: SyncPhase,
    /// Ids of the last message applied (the snapshot's while bridging).
    last: SeqIds,
    whole: bool,
    buffer: VecDeque<(SeqIds, BookChunk)>,
    buffer_cap: usize,
    open: Option<Open>,
    lost_at_ns: Option<u64>,
    stats: SyncStats,
}

impl BookSync {
    /// A sequencer for `rule` whose book holds `depth` levels per side and whose pre-snapshot
    /// buffer holds `buffer_chunks` chunks (Binance only; size it for the diffs that arrive during
    /// one REST round trip). These are the only allocations it makes.
    pub fn new(rule: SyncRule, depth: usize, buffer_chunks: usize) -> Self {
        let buffer_cap = if rule.buffers() { buffer_chunks } else { 0 };
        Self {
            rule,
            book: L2Book::new(depth),
            phase: SyncPhase::Unsynced,
            last: SeqIds::default(),
            whole: false,
            buffer: VecDeque::with_capacity(buffer_cap),
            buffer_cap,
            open: None,
            lost_at_ns: None,
            stats: SyncStats::default(),
        }
    }

    /// The rule set in force.
    pub fn rule(&self) -> SyncRule {
        self.rule
    }

    /// The book, read-only. Trade on it only while [`BookSync::whole`] is true.
    pub fn book(&self) -> &L2Book {
        &self.book
    }

    /// True when the book is provably the venue's: in sequence, not crossed, and not in the middle
    /// of applying a multi-chunk message.
    pub fn whole(&self) -> bool {
        self.whole && !matches!(self.open, Some(Open { disp: Disposition::Apply, .. }))
    }

    /// Where the procedure stands.
    pub fn phase(&self) -> SyncPhase {
        self.phase
    }

    /// Counters and time-to-whole.
    pub fn stats(&self) -> &SyncStats {
        &self.stats
    }

    /// Ids of the last message applied (the snapshot's until a diff bridges it).
    pub fn last_ids(&self) -> SeqIds {
        self.last
    }

    /// Chunks waiting in the pre-snapshot buffer.
    pub fn buffered_chunks(&self) -> usize {
        self.buffer.len()
    }

    /// Drops the book and any buffer and marks it not whole from `now_ns`, for a disconnect: the
    /// caller resubscribes (and, for Binance, fetches a snapshot). Time to whole counts from here.
    pub fn reset(&mut self, now_ns: u64) {
        self.open = None;
        self.discard(now_ns);
    }

    /// Feeds a market event; `None` when it is not a book chunk. Uses `recv_ns` as the time.
    pub fn on_event(&mut self, ev: &MarketEvent) -> Option<SyncOutcome> {
        match ev.body {
            MarketBody::Book(chunk) => Some(self.on_chunk(ev.seq, &chunk, ev.recv_ns)),
            _ => None,
        }
    }

    /// Feeds a whole message given as levels (bids and asks mixed, `Side::Buy` = bid), chunked as
    /// the engine's rings carry it; returns the message's outcome (the first one reported).
    pub fn on_message(
        &mut self,
        kind: BookUpdateKind,
        seq: SeqIds,
        levels: &[(Side, Level)],
        now_ns: u64,
    ) -> SyncOutcome {
        let mut result = SyncOutcome::Continuing;
        for_each_chunk(kind, levels, |chunk| {
            let out = self.on_chunk(seq, &chunk, now_ns);
            if result == SyncOutcome::Continuing {
                result = out;
            }
        });
        result
    }

    /// Feeds one chunk of a venue message with the message's ids, at local time `now_ns`.
    ///
    /// A message's chunks must be contiguous, a REST snapshot included: inject it as one run.
    /// When a first chunk interrupts an unfinished message, [`SyncOutcome::Partial`] is returned
    /// for the broken one and the new message is still processed (the stats count its outcome).
    pub fn on_chunk(&mut self, seq: SeqIds, chunk: &BookChunk, now_ns: u64) -> SyncOutcome {
        let mut out = SyncOutcome::Continuing;
        let mut open = if chunk.first {
            if self.open.take().is_some() {
                out = self.partial(now_ns);
            }
            let (disp, report) = self.begin(seq, chunk.kind, now_ns);
            if let (Some(r), SyncOutcome::Continuing) = (report, out) {
                out = r;
            }
            Open { seq, kind: chunk.kind, disp, reported: report.is_some(), buffered: 0 }
        } else {
            match self.open.take() {
                Some(o) if o.seq == seq && o.kind == chunk.kind => o,
                _ => {
                    out = self.partial(now_ns);
                    Open { seq, kind: chunk.kind, disp: Disposition::Ignore, reported: true, buffered: 0 }
                }
            }
        };
        match open.disp {
            Disposition::Apply => self.apply_chunk(chunk),
            Disposition::Buffer => {
                if !self.push_buffer(seq, chunk, &mut open) {
                    open.disp = Disposition::Ignore;
                    if !open.reported {
                        open.reported = true;
                        if out == SyncOutcome::Continuing {
                            out = SyncOutcome::BufferOverflow;
                        }
                    }
                }
            }
            Disposition::Ignore => {}
        }
        if !chunk.last {
            self.open = Some(open);
            return out;
        }
        let fin = match open.disp {
            Disposition::Apply => self.finish(open, now_ns),
            Disposition::Buffer => {
                self.stats.buffered += 1;
                SyncOutcome::Buffered
            }
            Disposition::Ignore => SyncOutcome::Continuing,
        };
        if !open.reported && out == SyncOutcome::Continuing {
            out = fin;
        }
        out
    }

    /// The venue rule's decision for a message with `seq`, without side effects.
    fn classify(&self, seq: SeqIds, kind: BookUpdateKind) -> Verdict {
        let b = self.last.last;
        match (self.rule, kind) {
            (SyncRule::BinanceSpot | SyncRule::BinanceUsdm, BookUpdateKind::Snapshot) => match self.phase {
                SyncPhase::Live => Verdict::Stale,
                SyncPhase::Bridging => Verdict::ApplySnapshot,
                SyncPhase::Unsynced => match self.buffer.front() {
                    Some((first, _)) if seq.last < first.first => {
                        Verdict::TooOld { snapshot_id: seq.last, first_id: first.first }
                    }
                    _ => Verdict::ApplySnapshot,
                },
            },
            (SyncRule::BinanceSpot, BookUpdateKind::Delta) => match self.phase {
                SyncPhase::Unsynced => match self.buffer.back() {
                    None => Verdict::Buffer,
                    Some((prev, _)) if seq.last <= prev.last => Verdict::Stale,
                    Some((prev, _)) if seq.first > prev.last.saturating_add(1) => {
                        Verdict::BufferGap { expected: prev.last.saturating_add(1), got: seq.first }
                    }
                    Some(_) => Verdict::Buffer,
                },
                SyncPhase::Bridging if seq.last <= b => Verdict::Stale,
                SyncPhase::Bridging if seq.first > b.saturating_add(1) => {
                    Verdict::TooOld { snapshot_id: b, first_id: seq.first }
                }
                SyncPhase::Bridging => Verdict::Apply,
                SyncPhase::Live if seq.last == b && seq.first == self.last.first => Verdict::Duplicate,
                SyncPhase::Live if seq.last <= b => Verdict::Stale,
                SyncPhase::Live if seq.first > b.saturating_add(1) => {
                    Verdict::Gap { expected: b.saturating_add(1), got: seq.first }
                }
                SyncPhase::Live => Verdict::Apply,
            },
            (SyncRule::BinanceUsdm, BookUpdateKind::Delta) => match self.phase {
                SyncPhase::Unsynced => match self.buffer.back() {
                    None => Verdict::Buffer,
                    Some((prev, _)) if seq.last <= prev.last => Verdict::Stale,
                    Some((prev, _)) if seq.prev != prev.last => {
                        Verdict::BufferGap { expected: prev.last, got: seq.prev }
                    }
                    Some(_) => Verdict::Buffer,
                },
                SyncPhase::Bridging if seq.last < b => Verdict::Stale,
                SyncPhase::Bridging if seq.first > b => Verdict::TooOld { snapshot_id: b, first_id: seq.first },
                SyncPhase::Bridging => Verdict::Apply,
                SyncPhase::Live if seq.last == b && seq.prev == self.last.prev => Verdict::Duplicate,
                SyncPhase::Live if seq.last <= b => Verdict::Stale,
                SyncPhase::Live if seq.prev != b => Verdict::Gap { expected: b, got: seq.prev },
                SyncPhase::Live => Verdict::Apply,
            },
            (SyncRule::Bybit | SyncRule::Okx, BookUpdateKind::Snapshot) => Verdict::ApplySnapshot,
            (SyncRule::Bybit, BookUpdateKind::Delta) => match self.phase {
                SyncPhase::Live if seq.last == b => Verdict::Duplicate,
                SyncPhase::Live if seq.last < b => Verdict::Stale,
                SyncPhase::Live if seq.last > b.saturating_add(1) => {
                    Verdict::Gap { expected: b.saturating_add(1), got: seq.last }
                }
                SyncPhase::Live => Verdict::Apply,
                SyncPhase::Unsynced | SyncPhase::Bridging => Verdict::Unsynced,
            },
            (SyncRule::Okx, BookUpdateKind::Delta) => match self.phase {
                // A lower seqId: the venue reset its sequence (maintenance); never stale over TCP.
                SyncPhase::Live if seq.last < b => Verdict::Gap { expected: b, got: seq.last },
                SyncPhase::Live if seq.prev == b => Verdict::Apply,
                // Only one update ends at the book's seqId, and it was applied: a repeat.
                SyncPhase::Live if seq.last == b && seq.prev < b => Verdict::Duplicate,
                SyncPhase::Live => Verdict::Gap { expected: b, got: seq.prev },
                SyncPhase::Unsynced | SyncPhase::Bridging => Verdict::Unsynced,
            },
        }
    }

    /// Acts on the first chunk of a message: returns how its chunks are handled and, when decided
    /// now, its outcome.
    fn begin(&mut self, seq: SeqIds, kind: BookUpdateKind, now_ns: u64) -> (Disposition, Option<SyncOutcome>) {
        match self.classify(seq, kind) {
            Verdict::ApplySnapshot => {
                self.book.clear();
                (Disposition::Apply, None)
            }
            Verdict::Apply => (Disposition::Apply, None),
            Verdict::Buffer => (Disposition::Buffer, None),
            Verdict::Stale => {
                self.stats.stale += 1;
                (Disposition::Ignore, Some(SyncOutcome::Stale))
            }
            Verdict::Duplicate => {
                self.stats.duplicates += 1;
                (Disposition::Ignore, Some(SyncOutcome::Duplicate))
            }
            Verdict::Unsynced => {
                self.stats.unsynced += 1;
                (Disposition::Ignore, Some(SyncOutcome::Unsynced))
            }
            Verdict::BufferGap { expected, got } | Verdict::Gap { expected, got } => {
                self.lose(now_ns);
                self.stats.gaps += 1;
                // Binance keeps the message that revealed the gap: it starts the new buffer.
                let disp = if self.rule.buffers() { Disposition::Buffer } else { Disposition::Ignore };
                (disp, Some(SyncOutcome::Gap { expected, got }))
            }
            Verdict::TooOld { snapshot_id, first_id } => {
                self.stats.snapshots_too_old += 1;
                self.stats.resync_requests += 1;
                let out = Some(SyncOutcome::SnapshotTooOld { snapshot_id, first_id });
                if kind == BookUpdateKind::Snapshot {
                    (Disposition::Ignore, out)
                } else {
                    // A diff that does not reach back to the held snapshot: it starts a buffer.
                    self.phase = SyncPhase::Unsynced;
                    self.book.clear();
                    self.buffer.clear();
                    (Disposition::Buffer, out)
                }
            }
        }
    }

    /// Completes an applied message: moves the procedure on and checks the book.
    fn finish(&mut self, open: Open, now_ns: u64) -> SyncOutcome {
        self.stats.applied += 1;
        self.last = open.seq;
        let mut out = SyncOutcome::Applied;
        if open.kind == BookUpdateKind::Snapshot && self.rule.buffers() {
            self.phase = SyncPhase::Bridging;
            out = self.drain(now_ns);
        } else {
            self.phase = SyncPhase::Live;
        }
        if out == SyncOutcome::Applied && self.book.is_crossed() {
            self.lose(now_ns);
            self.stats.crossed += 1;
            out = SyncOutcome::Crossed;
        }
        if self.phase == SyncPhase::Live && !self.whole {
            self.whole = true;
            if let Some(t) = self.lost_at_ns.take() {
                let dt = now_ns.saturating_sub(t);
                self.stats.resyncs += 1;
                self.stats.last_time_to_whole_ns = Some(dt);
                self.stats.max_time_to_whole_ns = self.stats.max_time_to_whole_ns.max(dt);
                self.stats.total_time_to_whole_ns = self.stats.total_time_to_whole_ns.saturating_add(dt);
            }
        }
        out
    }

    /// Binance step 3–4 after a snapshot: drops what it covers and applies the rest of the buffer.
    fn drain(&mut self, now_ns: u64) -> SyncOutcome {
        let mut buf = core::mem::take(&mut self.buffer);
        let snapshot_id = self.last.last;
        let mut out = SyncOutcome::Applied;
        let mut i = 0;
        while i < buf.len() {
            let seq = buf[i].0;
            let Some(end) = (i..buf.len()).find(|&k| buf[k].1.last) else {
                break; // an unfinished message cannot be in the buffer; drop it if it were
            };
            let covered = match self.rule {
                SyncRule::BinanceSpot => seq.last <= snapshot_id,
                _ => seq.last < snapshot_id,
            };
            if !(self.phase == SyncPhase::Bridging && covered) {
                match self.classify(seq, BookUpdateKind::Delta) {
                    Verdict::Apply => {
                        for (_, chunk) in buf.range(i..=end) {
                            self.apply_chunk(chunk);
                        }
                        self.last = seq;
                        self.phase = SyncPhase::Live;
                        self.stats.applied += 1;
                    }
                    Verdict::Stale => self.stats.stale += 1,
                    Verdict::Duplicate => self.stats.duplicates += 1,
                    Verdict::Gap { expected, got } | Verdict::BufferGap { expected, got } => {
                        self.lose(now_ns);
                        self.stats.gaps += 1;
                        out = SyncOutcome::Gap { expected, got };
                    }
                    Verdict::TooOld { snapshot_id, first_id } => {
                        self.stats.snapshots_too_old += 1;
                        self.stats.resync_requests += 1;
                        self.phase = SyncPhase::Unsynced;
                        self.book.clear();
                        out = SyncOutcome::SnapshotTooOld { snapshot_id, first_id };
                    }
                    Verdict::ApplySnapshot | Verdict::Buffer | Verdict::Unsynced => {}
                }
                if out != SyncOutcome::Applied {
                    // The unapplied rest, from this message on, is the new buffer.
                    buf.drain(..i);
                    self.buffer = buf;
                    return out;
                }
            }
            i = end + 1;
        }
        buf.clear();
        self.buffer = buf;
        out
    }

    fn apply_chunk(&mut self, chunk: &BookChunk) {
        for (side, level) in chunk.iter() {
            self.book.apply(side, level);
        }
    }

    /// Appends a chunk of the open message to the buffer, evicting the oldest whole messages when
    /// full; false when the open message alone fills it (then it is dropped).
    fn push_buffer(&mut self, seq: SeqIds, chunk: &BookChunk, open: &mut Open) -> bool {
        if self.buffer.len() >= self.buffer_cap {
            self.stats.buffer_overflows += 1;
            if self.buffer.len() <= open.buffered {
                self.buffer.clear();
                return false;
            }
            self.buffer.pop_front();
            while self.buffer.front().is_some_and(|(_, c)| !c.first) {
                self.buffer.pop_front();
            }
        }
        self.buffer.push_back((seq, *chunk));
        open.buffered += 1;
        true
    }

    fn partial(&mut self, now_ns: u64) -> SyncOutcome {
        self.lose(now_ns);
        self.stats.gaps += 1;
        self.stats.partial += 1;
        SyncOutcome::Partial
    }

    /// A loss the sequencer detected: discard and ask the caller to resync.
    fn lose(&mut self, now_ns: u64) {
        self.discard(now_ns);
        self.stats.resync_requests += 1;
    }

    fn discard(&mut self, now_ns: u64) {
        self.whole = false;
        self.lost_at_ns.get_or_insert(now_ns);
        self.phase = SyncPhase::Unsynced;
        self.book.clear();
        self.buffer.clear();
    }
}
