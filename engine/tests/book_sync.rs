//! Local order books and their venue sync procedures, on recorded-style sequences per venue rule
//! (in order, duplicate, stale, gap, reorder, snapshot older than the first diff, resync), plus
//! property tests against a model and a proof that the hot path allocates nothing.
//!
//! Prices and quantities are mantissas; where natural they are the reference fixtures' values
//! (`../shared/reference/binance/usdm/depthUpdate_diff_depth.json`: `U`=157, `u`=160, `pu`=149,
//! bid `0.0024`×10, ask `0.0026`×100 at price scale 4).
// The counting global allocator below is the only unsafe code; the workspace denies it elsewhere.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;

use crossbar_engine::event::{BookUpdateKind, Level, MarketBody, MarketEvent, SeqIds, Side};
use crossbar_engine::fixed::{Px, Qty};
use crossbar_engine::instrument::InstrumentId;
use crossbar_engine::orderbook::{BookSync, L2Book, Resync, SyncOutcome, SyncPhase, SyncRule, Walk, for_each_chunk};
use proptest::prelude::*;

// ---------------------------------------------------------------- allocation counting

struct CountingAlloc;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count_alloc() {
    // `try_with`: allocations during thread teardown are not counted rather than panicking.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards the caller's arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the only addition is a thread-local counter that never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_alloc();
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_alloc();
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_alloc();
        // SAFETY: `ptr`/`layout` come from this allocator; `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocs_on_this_thread() -> u64 {
    ALLOCS.with(Cell::get)
}

// ---------------------------------------------------------------- helpers

fn lv(px: i64, qty: i64) -> Level {
    Level { px: Px(px), qty: Qty(qty) }
}

fn bid(px: i64, qty: i64) -> (Side, Level) {
    (Side::Buy, lv(px, qty))
}

fn ask(px: i64, qty: i64) -> (Side, Level) {
    (Side::Sell, lv(px, qty))
}

fn ids(first: u64, last: u64, prev: u64) -> SeqIds {
    SeqIds { first, last, prev }
}

fn delta(s: &mut BookSync, seq: SeqIds, levels: &[(Side, Level)], now: u64) -> SyncOutcome {
    s.on_message(BookUpdateKind::Delta, seq, levels, now)
}

fn snapshot(s: &mut BookSync, seq: SeqIds, levels: &[(Side, Level)], now: u64) -> SyncOutcome {
    s.on_message(BookUpdateKind::Snapshot, seq, levels, now)
}

#[track_caller]
fn assert_book(book: &L2Book, bids: &[Level], asks: &[Level]) {
    if let Some(m) = book.mismatch_with(bids, asks) {
        let ours: (Vec<_>, Vec<_>) = (book.levels(Side::Buy).collect(), book.levels(Side::Sell).collect());
        panic!("book differs at {m:?}\n  bids {:?}\n  asks {:?}", ours.0, ours.1);
    }
}

fn gap(expected: u64, got: u64) -> SyncOutcome {
    SyncOutcome::Gap { expected, got }
}

// ---------------------------------------------------------------- Binance spot

const E1: SeqIds = SeqIds { first: 157, last: 160, prev: 0 };
const E2: SeqIds = SeqIds { first: 161, last: 163, prev: 0 };
const E3: SeqIds = SeqIds { first: 164, last: 165, prev: 0 };
const E1_LEVELS: [(Side, Level); 2] = [(Side::Buy, lv_c(24, 10)), (Side::Sell, lv_c(26, 100))];
const E2_LEVELS: [(Side, Level); 3] = [(Side::Buy, lv_c(23, 5)), (Side::Sell, lv_c(26, 0)), (Side::Sell, lv_c(27, 7))];
const E3_LEVELS: [(Side, Level); 1] = [(Side::Buy, lv_c(24, 0))];

const fn lv_c(px: i64, qty: i64) -> Level {
    Level { px: Px(px), qty: Qty(qty) }
}

/// Spot synced through E1 (dropped), E2 (bridges `lastUpdateId` 162) and E3.
fn spot_live() -> BookSync {
    let mut s = BookSync::new(SyncRule::BinanceSpot, 100, 64);
    assert_eq!(delta(&mut s, E1, &E1_LEVELS, 1), SyncOutcome::Buffered);
    assert_eq!(delta(&mut s, E2, &E2_LEVELS, 2), SyncOutcome::Buffered);
    assert!(!s.whole());
    let snap = [bid(24, 9), bid(22, 1), ask(26, 100), ask(28, 3)];
    assert_eq!(snapshot(&mut s, ids(0, 162, 0), &snap, 3), SyncOutcome::Applied);
    assert!(s.whole());
    assert_book(s.book(), &[lv(24, 9), lv(23, 5), lv(22, 1)], &[lv(27, 7), lv(28, 3)]);
    assert_eq!(delta(&mut s, E3, &E3_LEVELS, 4), SyncOutcome::Applied);
    s
}

#[test]
fn binance_spot_in_order_snapshot_bridges_buffered_diffs() {
    let s = spot_live();
    assert_book(s.book(), &[lv(23, 5), lv(22, 1)], &[lv(27, 7), lv(28, 3)]);
    assert_eq!(s.last_ids(), E3);
    let st = s.stats();
    assert_eq!((st.buffered, st.applied, st.gaps, st.stale), (2, 3, 0, 0));
    assert_eq!(st.last_time_to_whole_ns, None, "first sync is not a resync");
}

#[test]
fn binance_spot_duplicate_and_stale_diffs_are_ignored() {
    let mut s = spot_live();
    assert_eq!(delta(&mut s, E3, &E3_LEVELS, 5), SyncOutcome::Duplicate);
    assert_eq!(delta(&mut s, E2, &E2_LEVELS, 6), SyncOutcome::Stale);
    assert_eq!(delta(&mut s, E1, &E1_LEVELS, 7), SyncOutcome::Stale);
    assert!(s.whole());
    assert_book(s.book(), &[lv(23, 5), lv(22, 1)], &[lv(27, 7), lv(28, 3)]);
    assert_eq!((s.stats().duplicates, s.stats().stale), (1, 2));
}

#[test]
fn binance_spot_snapshot_older_than_first_diff_is_fetched_again() {
    let mut s = BookSync::new(SyncRule::BinanceSpot, 100, 64);
    assert_eq!(delta(&mut s, E1, &E1_LEVELS, 1), SyncOutcome::Buffered);
    let old = snapshot(&mut s, ids(0, 150, 0), &[bid(20, 1)], 2);
    assert_eq!(old, SyncOutcome::SnapshotTooOld { snapshot_id: 150, first_id: 157 });
    assert_eq!(old.resync(s.rule()), Some(Resync::FetchSnapshot));
    assert!(!s.whole());
    assert_eq!(s.buffered_chunks(), 1, "the buffer survives a refused snapshot");
    assert_eq!(snapshot(&mut s, ids(0, 158, 0), &[bid(24, 3), ask(26, 1)], 3), SyncOutcome::Applied);
    assert!(s.whole(), "E1 (157..=160) bridged 158");
    assert_book(s.book(), &[lv(24, 10)], &[lv(26, 100)]);
    assert_eq!(s.stats().snapshots_too_old, 1);
}

#[test]
fn binance_spot_gap_discards_book_until_resync_then_whole_again() {
    let mut s = spot_live();
    // 166..=167 is lost.
    let out = delta(&mut s, ids(168, 169, 0), &[bid(21, 4)], 1_000);
    assert_eq!(out, gap(166, 168));
    assert_eq!(out.resync(s.rule()), Some(Resync::FetchSnapshot));
    assert!(!s.whole());
    assert_eq!(s.phase(), SyncPhase::Unsynced);
    assert!(s.book().is_empty());
    assert_eq!(delta(&mut s, ids(170, 171, 0), &[ask(28, 0)], 2_000), SyncOutcome::Buffered);
    assert!(!s.whole());
    let snap = [bid(23, 5), bid(22, 1), bid(21, 4), ask(27, 7), ask(28, 3)];
    assert_eq!(snapshot(&mut s, ids(0, 169, 0), &snap, 5_000), SyncOutcome::Applied);
    assert!(s.whole());
    assert_book(s.book(), &[lv(23, 5), lv(22, 1), lv(21, 4)], &[lv(27, 7)]);
    let st = s.stats();
    assert_eq!((st.gaps, st.resync_requests, st.resyncs), (1, 1, 1));
    assert_eq!(st.last_time_to_whole_ns, Some(4_000));
}

#[test]
fn binance_spot_reordered_diffs_are_a_gap_then_stale() {
    let mut s = spot_live();
    assert_eq!(delta(&mut s, ids(168, 169, 0), &[bid(21, 4)], 10), gap(166, 168));
    assert_eq!(delta(&mut s, ids(166, 167, 0), &[bid(20, 4)], 11), SyncOutcome::Stale);
    assert!(!s.whole());
    assert_eq!(s.stats().gaps, 1);
}

#[test]
fn binance_spot_gap_inside_the_buffer_restarts_it() {
    let mut s = BookSync::new(SyncRule::BinanceSpot, 100, 64);
    assert_eq!(delta(&mut s, E1, &E1_LEVELS, 1), SyncOutcome::Buffered);
    assert_eq!(delta(&mut s, E3, &E3_LEVELS, 2), gap(161, 164));
    assert_eq!(s.buffered_chunks(), 1);
    let out = snapshot(&mut s, ids(0, 162, 0), &[bid(24, 9)], 3);
    assert_eq!(out, SyncOutcome::SnapshotTooOld { snapshot_id: 162, first_id: 164 });
}

#[test]
fn binance_spot_full_buffer_evicts_oldest_and_catches_old_snapshots() {
    let mut s = BookSync::new(SyncRule::BinanceSpot, 100, 2);
    assert_eq!(delta(&mut s, E1, &E1_LEVELS, 1), SyncOutcome::Buffered);
    assert_eq!(delta(&mut s, E2, &E2_LEVELS, 2), SyncOutcome::Buffered);
    assert_eq!(delta(&mut s, E3, &E3_LEVELS, 3), SyncOutcome::Buffered);
    assert_eq!(s.stats().buffer_overflows, 1);
    let out = snapshot(&mut s, ids(0, 159, 0), &[bid(24, 9)], 4);
    assert_eq!(out, SyncOutcome::SnapshotTooOld { snapshot_id: 159, first_id: 161 });
    let big: Vec<_> = (0..12).map(|i| bid(10 + i, 1)).collect();
    assert_eq!(delta(&mut s, ids(166, 170, 0), &big, 5), SyncOutcome::BufferOverflow);
    assert_eq!(s.buffered_chunks(), 0);
}

// ---------------------------------------------------------------- Binance USD-M

/// The fixture diff: `U`=157, `u`=160, `pu`=149.
const F1: SeqIds = SeqIds { first: 157, last: 160, prev: 149 };
const F2: SeqIds = SeqIds { first: 161, last: 170, prev: 160 };
/// `U` jumps on futures: only `pu` matters.
const F3: SeqIds = SeqIds { first: 175, last: 180, prev: 170 };

fn usdm_live() -> BookSync {
    let mut s = BookSync::new(SyncRule::BinanceUsdm, 100, 64);
    assert_eq!(delta(&mut s, F1, &E1_LEVELS, 1), SyncOutcome::Buffered);
    assert_eq!(snapshot(&mut s, ids(0, 158, 0), &[bid(24, 3), bid(22, 1), ask(26, 1)], 2), SyncOutcome::Applied);
    assert!(s.whole());
    assert_eq!(delta(&mut s, F2, &[bid(25, 1)], 3), SyncOutcome::Applied);
    assert_eq!(delta(&mut s, F3, &[ask(26, 0), ask(27, 2)], 4), SyncOutcome::Applied);
    assert_book(s.book(), &[lv(25, 1), lv(24, 10), lv(22, 1)], &[lv(27, 2)]);
    s
}

#[test]
fn binance_usdm_in_order_with_pu_continuity() {
    let s = usdm_live();
    assert_eq!(s.last_ids(), F3);
    assert_eq!(s.stats().applied, 4);
}

#[test]
fn binance_usdm_first_event_may_end_at_snapshot_id_unlike_spot() {
    let snap = [bid(24, 3), ask(26, 1)];
    let mut usdm = BookSync::new(SyncRule::BinanceUsdm, 10, 8);
    delta(&mut usdm, F1, &E1_LEVELS, 1);
    assert_eq!(snapshot(&mut usdm, ids(0, 160, 0), &snap, 2), SyncOutcome::Applied);
    assert!(usdm.whole(), "U <= lastUpdateId <= u holds for u = lastUpdateId");
    assert_book(usdm.book(), &[lv(24, 10)], &[lv(26, 100)]);

    let mut spot = BookSync::new(SyncRule::BinanceSpot, 10, 8);
    delta(&mut spot, ids(157, 160, 0), &E1_LEVELS, 1);
    assert_eq!(snapshot(&mut spot, ids(0, 160, 0), &snap, 2), SyncOutcome::Applied);
    assert!(!spot.whole(), "spot drops u <= lastUpdateId and waits for a bridging diff");
    assert_book(spot.book(), &[lv(24, 3)], &[lv(26, 1)]);
    assert_eq!(delta(&mut spot, ids(161, 161, 0), &[bid(23, 1)], 3), SyncOutcome::Applied);
    assert!(spot.whole());
}

#[test]
fn binance_usdm_duplicate_stale_and_pu_gap() {
    let mut s = usdm_live();
    assert_eq!(delta(&mut s, F3, &[ask(26, 0)], 5), SyncOutcome::Duplicate);
    assert_eq!(delta(&mut s, F2, &[bid(25, 1)], 6), SyncOutcome::Stale);
    assert!(s.whole());
    let out = delta(&mut s, ids(181, 185, 179), &[bid(21, 1)], 100);
    assert_eq!(out, gap(180, 179));
    assert_eq!(out.resync(s.rule()), Some(Resync::FetchSnapshot));
    assert!(!s.whole() && s.book().is_empty());
    assert_eq!(delta(&mut s, ids(186, 190, 185), &[ask(27, 0)], 200), SyncOutcome::Buffered);
    let snap = [bid(25, 1), bid(21, 1), ask(27, 2), ask(29, 4)];
    assert_eq!(snapshot(&mut s, ids(0, 187, 0), &snap, 900), SyncOutcome::Applied);
    assert!(s.whole());
    assert_book(s.book(), &[lv(25, 1), lv(21, 1)], &[lv(29, 4)]);
    assert_eq!(s.stats().last_time_to_whole_ns, Some(800));
}

#[test]
fn binance_usdm_snapshot_too_old_before_and_after_it_is_held() {
    let mut s = BookSync::new(SyncRule::BinanceUsdm, 10, 8);
    delta(&mut s, F1, &E1_LEVELS, 1);
    let out = snapshot(&mut s, ids(0, 150, 0), &[bid(1, 1)], 2);
    assert_eq!(out, SyncOutcome::SnapshotTooOld { snapshot_id: 150, first_id: 157 });

    // A snapshot fetched before any diff arrived is held, then refused by the first live diff.
    let mut s = BookSync::new(SyncRule::BinanceUsdm, 10, 8);
    assert_eq!(snapshot(&mut s, ids(0, 100, 0), &[bid(1, 1)], 1), SyncOutcome::Applied);
    assert_eq!(s.phase(), SyncPhase::Bridging);
    assert!(!s.whole());
    let out = delta(&mut s, F1, &E1_LEVELS, 2);
    assert_eq!(out, SyncOutcome::SnapshotTooOld { snapshot_id: 100, first_id: 157 });
    assert_eq!(snapshot(&mut s, ids(0, 158, 0), &[bid(24, 3)], 3), SyncOutcome::Applied);
    assert!(s.whole());
    assert_book(s.book(), &[lv(24, 10)], &[lv(26, 100)]);
}

#[test]
fn binance_usdm_reorder_is_a_gap() {
    let mut s = usdm_live();
    assert_eq!(delta(&mut s, ids(191, 195, 190), &[bid(1, 1)], 1), gap(180, 190));
    assert_eq!(delta(&mut s, ids(181, 190, 180), &[bid(2, 1)], 2), SyncOutcome::Stale);
    assert!(!s.whole());
}

#[test]
fn chunks_interrupted_mid_message_are_a_gap() {
    let mut s = usdm_live();
    let levels: Vec<_> = (0..6).map(|i| bid(10 + i, 1)).collect();
    let mut chunks = Vec::new();
    for_each_chunk(BookUpdateKind::Delta, &levels, |c| chunks.push(c));
    assert_eq!(chunks.len(), 2);
    let seq = ids(181, 182, 180);
    assert_eq!(s.on_chunk(seq, &chunks[0], 1), SyncOutcome::Continuing);
    assert!(!s.whole(), "half a message is not a venue state");
    // The rest of that message is lost; the next one starts.
    let out = delta(&mut s, ids(183, 184, 182), &[bid(30, 1)], 2);
    assert_eq!(out, SyncOutcome::Partial);
    assert_eq!(out.resync(s.rule()), Some(Resync::FetchSnapshot));
    assert!(!s.whole() && s.book().is_empty());
    assert_eq!((s.stats().partial, s.stats().gaps), (1, 1));

    // A continuation chunk with no message open.
    let mut b = bybit_live();
    assert_eq!(b.on_chunk(ids(0, 18_521_290, 0), &chunks[1], 3), SyncOutcome::Partial);
    assert!(!b.whole());
}

// ---------------------------------------------------------------- Bybit

const BYBIT_U: u64 = 18_521_288;

/// The `orderbook_50_snapshot.json` fixture at price scale 2, quantity scale 3.
fn bybit_live() -> BookSync {
    let mut s = BookSync::new(SyncRule::Bybit, 200, 0);
    let snap = [bid(1_649_350, 6), bid(1_649_300, 100), ask(1_661_100, 29), ask(1_661_200, 213)];
    assert_eq!(snapshot(&mut s, ids(0, BYBIT_U, 0), &snap, 1), SyncOutcome::Applied);
    assert!(s.whole());
    s
}

#[test]
fn bybit_snapshot_then_deltas_in_order() {
    let mut s = bybit_live();
    let d1 = [bid(1_649_350, 0), ask(1_661_000, 5)];
    assert_eq!(delta(&mut s, ids(0, BYBIT_U + 1, 0), &d1, 2), SyncOutcome::Applied);
    assert_eq!(delta(&mut s, ids(0, BYBIT_U + 2, 0), &[ask(1_661_200, 0)], 3), SyncOutcome::Applied);
    assert_book(s.book(), &[lv(1_649_300, 100)], &[lv(1_661_000, 5), lv(1_661_100, 29)]);
    assert!(s.whole());
}

#[test]
fn bybit_duplicate_and_stale_deltas_are_ignored() {
    let mut s = bybit_live();
    let d1 = [bid(1_649_350, 0)];
    assert_eq!(delta(&mut s, ids(0, BYBIT_U + 1, 0), &d1, 2), SyncOutcome::Applied);
    assert_eq!(delta(&mut s, ids(0, BYBIT_U + 1, 0), &d1, 3), SyncOutcome::Duplicate);
    assert_eq!(delta(&mut s, ids(0, BYBIT_U - 5, 0), &[bid(1, 1)], 4), SyncOutcome::Stale);
    assert!(s.whole());
    assert_book(s.book(), &[lv(1_649_300, 100)], &[lv(1_661_100, 29), lv(1_661_200, 213)]);
}

#[test]
fn bybit_gap_and_reorder_need_a_new_snapshot() {
    let mut s = bybit_live();
    let out = delta(&mut s, ids(0, BYBIT_U + 2, 0), &[bid(1_649_000, 1)], 50);
    assert_eq!(out, gap(BYBIT_U + 1, BYBIT_U + 2));
    assert_eq!(out.resync(s.rule()), Some(Resync::Resubscribe));
    assert!(!s.whole() && s.book().is_empty());
    // The late one, and anything until the snapshot, cannot be applied.
    assert_eq!(delta(&mut s, ids(0, BYBIT_U + 1, 0), &[bid(1, 1)], 60), SyncOutcome::Unsynced);
    assert_eq!(delta(&mut s, ids(0, BYBIT_U + 3, 0), &[bid(1, 1)], 70), SyncOutcome::Unsynced);
    let snap = [bid(1_649_000, 1), ask(1_661_100, 29)];
    assert_eq!(snapshot(&mut s, ids(0, BYBIT_U + 4, 0), &snap, 250), SyncOutcome::Applied);
    assert!(s.whole());
    assert_book(s.book(), &[lv(1_649_000, 1)], &[lv(1_661_100, 29)]);
    let st = s.stats();
    assert_eq!((st.gaps, st.unsynced, st.resyncs, st.last_time_to_whole_ns), (1, 2, 1, Some(200)));
}

#[test]
fn bybit_restart_snapshot_with_u_1_is_authoritative() {
    let mut s = bybit_live();
    assert_eq!(snapshot(&mut s, ids(0, 1, 0), &[bid(100, 1), ask(200, 1)], 2), SyncOutcome::Applied);
    assert!(s.whole());
    assert_eq!(delta(&mut s, ids(0, 2, 0), &[ask(199, 3)], 3), SyncOutcome::Applied);
    assert_book(s.book(), &[lv(100, 1)], &[lv(199, 3), lv(200, 1)]);
}

#[test]
fn bybit_delta_before_any_snapshot_is_not_whole() {
    let mut s = BookSync::new(SyncRule::Bybit, 10, 0);
    assert_eq!(delta(&mut s, ids(0, 5, 0), &[bid(1, 1)], 1), SyncOutcome::Unsynced);
    assert!(!s.whole() && s.book().is_empty());
}

#[test]
fn crossed_book_after_a_delta_is_not_whole() {
    let mut s = bybit_live();
    let out = delta(&mut s, ids(0, BYBIT_U + 1, 0), &[bid(1_661_100, 1)], 2);
    assert_eq!(out, SyncOutcome::Crossed);
    assert_eq!(out.resync(s.rule()), Some(Resync::Resubscribe));
    assert!(!s.whole());
    assert_eq!(s.stats().crossed, 1);
}

// ---------------------------------------------------------------- OKX

const OKX_SEQ: u64 = 123_456;

/// The `books_snapshot.json` fixture's top levels at price scale 2 (`prevSeqId` -1 → 0).
fn okx_live() -> BookSync {
    let mut s = BookSync::new(SyncRule::Okx, 400, 0);
    let snap = [bid(847_697, 256), bid(847_555, 101), ask(847_698, 415), ask(847_700, 7)];
    assert_eq!(snapshot(&mut s, ids(0, OKX_SEQ, 0), &snap, 1), SyncOutcome::Applied);
    assert!(s.whole());
    s
}

#[test]
fn okx_updates_chain_by_prev_seq_id_and_heartbeats_pass() {
    let mut s = okx_live();
    let u1 = [ask(847_698, 0), bid(847_697, 300)];
    assert_eq!(delta(&mut s, ids(0, OKX_SEQ + 1, OKX_SEQ), &u1, 2), SyncOutcome::Applied);
    assert_eq!(delta(&mut s, ids(0, OKX_SEQ + 1, OKX_SEQ), &u1, 3), SyncOutcome::Duplicate);
    assert_eq!(delta(&mut s, ids(0, OKX_SEQ + 1, OKX_SEQ + 1), &[], 4), SyncOutcome::Applied);
    assert_eq!(delta(&mut s, ids(0, OKX_SEQ + 9, OKX_SEQ + 1), &[ask(847_699, 2)], 5), SyncOutcome::Applied);
    assert!(s.whole());
    assert_book(s.book(), &[lv(847_697, 300), lv(847_555, 101)], &[lv(847_699, 2), lv(847_700, 7)]);
    assert_eq!(s.stats().duplicates, 1);
}

#[test]
fn okx_gap_reorder_and_sequence_reset_need_resubscribe() {
    let mut s = okx_live();
    // Update 123457 is lost (or arrives late).
    let out = delta(&mut s, ids(0, OKX_SEQ + 2, OKX_SEQ + 1), &[bid(1, 1)], 10);
    assert_eq!(out, gap(OKX_SEQ, OKX_SEQ + 1));
    assert_eq!(out.resync(s.rule()), Some(Resync::Resubscribe));
    assert!(!s.whole());
    assert_eq!(delta(&mut s, ids(0, OKX_SEQ + 1, OKX_SEQ), &[bid(1, 1)], 11), SyncOutcome::Unsynced);
    assert_eq!(snapshot(&mut s, ids(0, 200_000, 0), &[bid(5, 1), ask(6, 1)], 40), SyncOutcome::Applied);
    assert!(s.whole());
    assert_eq!(s.stats().last_time_to_whole_ns, Some(30));
    // After maintenance the sequence restarts lower: a gap, never stale.
    assert_eq!(delta(&mut s, ids(0, 7, 6), &[bid(5, 2)], 50), gap(200_000, 7));
    assert!(!s.whole() && s.book().is_empty());
    assert_eq!(s.stats().gaps, 2);
}

// ---------------------------------------------------------------- events, reset, allocations

fn book_event(seq: SeqIds, chunk: crossbar_engine::event::BookChunk, now: u64) -> MarketEvent {
    MarketEvent {
        instrument: InstrumentId(0),
        exch_ts_ms: 0,
        recv_ns: now,
        decoded_ns: now,
        seq,
        body: MarketBody::Book(chunk),
    }
}

#[test]
fn reset_on_disconnect_times_the_way_back_to_whole() {
    let mut s = okx_live();
    s.reset(1_000);
    assert!(!s.whole() && s.book().is_empty());
    let mut events = Vec::new();
    for_each_chunk(BookUpdateKind::Snapshot, &[bid(5, 1), ask(6, 1)], |c| {
        events.push(book_event(ids(0, 9, 0), c, 4_500))
    });
    let outs: Vec<_> = events.iter().filter_map(|e| s.on_event(e)).collect();
    assert_eq!(outs, [SyncOutcome::Applied]);
    assert!(s.whole());
    assert_eq!((s.stats().resyncs, s.stats().last_time_to_whole_ns, s.stats().resync_requests), (1, Some(3_500), 0));
}

#[test]
fn sync_and_book_allocate_nothing_after_construction() {
    let spot_snap = [bid(24, 9), bid(22, 1), ask(26, 100), ask(28, 3)];
    let wide: Vec<_> = (0..40).map(|i| if i % 2 == 0 { bid(1_000 - i, 1) } else { ask(2_000 + i, 1) }).collect();
    let mut spot = BookSync::new(SyncRule::BinanceSpot, 16, 4);
    let mut usdm = BookSync::new(SyncRule::BinanceUsdm, 16, 64);
    let mut bybit = BookSync::new(SyncRule::Bybit, 16, 0);
    let mut okx = BookSync::new(SyncRule::Okx, 16, 0);
    let quote_event = MarketEvent {
        body: MarketBody::Status(crossbar_engine::event::FeedStatus::Connected),
        ..book_event(ids(0, 0, 0), crossbar_engine::event::BookChunk::new(BookUpdateKind::Delta), 0)
    };

    let mut half = crossbar_engine::event::BookChunk::new(BookUpdateKind::Delta);
    half.first = true;
    half.push(Side::Buy, lv(7, 7));

    let probe = allocs_on_this_thread();
    drop(std::hint::black_box(Vec::<u64>::with_capacity(4)));
    assert_eq!(allocs_on_this_thread(), probe + 1, "the counting allocator counts");

    let before = allocs_on_this_thread();
    let mut sink = 0u64;
    for round in 0..50u64 {
        let base = 1_000 + round * 100;
        let t = round * 1_000;
        // Binance spot: buffer (with eviction), too old, snapshot, live, gap.
        for k in 0..6 {
            delta(&mut spot, ids(base + k, base + k, 0), &wide[..6], t + k);
        }
        snapshot(&mut spot, ids(0, base, 0), &spot_snap, t + 7);
        snapshot(&mut spot, ids(0, base + 4, 0), &wide, t + 8);
        delta(&mut spot, ids(base + 6, base + 6, 0), &[bid(990, 0)], t + 9);
        delta(&mut spot, ids(base + 9, base + 9, 0), &[bid(990, 0)], t + 10);
        // Binance USD-M: live chain, duplicate, gap, partial.
        snapshot(&mut usdm, ids(0, base, 0), &wide, t);
        delta(&mut usdm, ids(base, base + 2, base - 1), &wide[..3], t + 1);
        delta(&mut usdm, ids(base, base + 2, base - 1), &wide[..3], t + 2);
        delta(&mut usdm, ids(base + 5, base + 6, base + 4), &wide[..9], t + 3);
        usdm.on_chunk(ids(base + 7, base + 8, base + 6), &half, t + 4);
        // Bybit and OKX: snapshot, deltas, crossed, gap, heartbeat.
        snapshot(&mut bybit, ids(0, base, 0), &wide, t);
        delta(&mut bybit, ids(0, base + 1, 0), &wide[3..9], t + 1);
        delta(&mut bybit, ids(0, base + 2, 0), &[bid(5_000, 1)], t + 2);
        snapshot(&mut okx, ids(0, base, 0), &wide, t);
        delta(&mut okx, ids(0, base + 1, base), &[], t + 1);
        delta(&mut okx, ids(0, base + 3, base + 2), &wide[..5], t + 2);
        assert!(usdm.on_event(&quote_event).is_none());
        let w = bybit.book().walk(Side::Buy, Qty(7));
        sink = sink.wrapping_add(w.filled.0 as u64) ^ u64::from(spot.whole()) ^ okx.stats().gaps;
    }
    let after = allocs_on_this_thread();
    assert_eq!(after - before, 0, "allocations on the hot path (sink {sink})");
    assert!(spot.stats().buffer_overflows > 0 && usdm.stats().gaps > 0 && bybit.stats().crossed > 0);
    assert!(okx.stats().gaps > 0 && spot.stats().snapshots_too_old > 0 && spot.stats().resyncs > 0);
    assert!(usdm.stats().partial > 0 && spot.book().dropped_levels() > 0);
}

// ---------------------------------------------------------------- properties

fn arb_levels(max: usize) -> impl Strategy<Value = Vec<(Side, Level)>> {
    // Bids below 40, asks above: streams never cross, so sync properties are about ids alone.
    prop::collection::vec((any::<bool>(), 1i64..40, 0i64..4), 0..max)
        .prop_map(|v| v.into_iter().map(|(is_ask, px, q)| if is_ask { ask(px + 40, q) } else { bid(px, q) }).collect())
}

/// Every level of `book`, bids then asks, as a snapshot message.
fn as_snapshot(book: &L2Book) -> Vec<(Side, Level)> {
    let bids = book.levels(Side::Buy).map(|l| (Side::Buy, *l));
    bids.chain(book.levels(Side::Sell).map(|l| (Side::Sell, *l))).collect()
}

/// Ids of an in-order stream of `n` messages for `rule`, from per-message widths; `ids[0]` are the
/// ids of the state before the first message (what a snapshot of it carries in `last`).
fn stream_ids(rule: SyncRule, widths: &[u64]) -> Vec<SeqIds> {
    let mut out = vec![ids(0, 999, 0)];
    for &w in widths {
        let prev = out[out.len() - 1].last;
        out.push(match rule {
            SyncRule::BinanceSpot => ids(prev + 1, prev + 1 + w, 0),
            SyncRule::BinanceUsdm => ids(prev + 1 + w % 2, prev + 2 + w, prev),
            SyncRule::Bybit => ids(0, prev + 1, 0),
            SyncRule::Okx => ids(0, prev + 1 + w, prev),
        });
    }
    out
}

const RULES: [SyncRule; 4] = [SyncRule::BinanceSpot, SyncRule::BinanceUsdm, SyncRule::Bybit, SyncRule::Okx];

proptest! {
    #[test]
    fn l2book_equals_a_btreemap_model(ops in prop::collection::vec((any::<bool>(), 0i64..60, 0i64..4), 0..300), q in 0i64..20) {
        let mut book = L2Book::new(1_000);
        let (mut bids, mut asks) = (BTreeMap::new(), BTreeMap::new());
        for (is_ask, px, qty) in ops {
            let (side, model) = if is_ask { (Side::Sell, &mut asks) } else { (Side::Buy, &mut bids) };
            book.set(side, Px(px), Qty(qty));
            if qty == 0 { model.remove(&px); } else { model.insert(px, qty); }
        }
        let want_bids: Vec<_> = bids.iter().rev().map(|(&p, &q)| lv(p, q)).collect();
        let want_asks: Vec<_> = asks.iter().map(|(&p, &q)| lv(p, q)).collect();
        prop_assert_eq!(book.mismatch_with(&want_bids, &want_asks), None);
        prop_assert_eq!(book.best_bid(), want_bids.first().copied());
        prop_assert_eq!(book.best_ask(), want_asks.first().copied());
        prop_assert_eq!(book.is_crossed(), matches!((want_bids.first(), want_asks.first()), (Some(b), Some(a)) if b.px >= a.px));
        let (mut left, mut cost) = (q, 0i128);
        for l in &want_asks {
            let take = left.min(l.qty.0);
            cost += i128::from(take) * i128::from(l.px.0);
            left -= take;
        }
        prop_assert_eq!(book.walk(Side::Buy, Qty(q)), Walk { filled: Qty(q - left), cost });
    }

    #[test]
    fn snapshot_at_any_split_gives_the_same_book(
        msgs in prop::collection::vec((arb_levels(9), 0u64..3), 1..25),
        k in any::<prop::sample::Index>(),
        s in any::<prop::sample::Index>(),
    ) {
        let n = msgs.len();
        let widths: Vec<u64> = msgs.iter().map(|m| m.1).collect();
        // The venue's book after each message.
        let mut truth = L2Book::new(1_000);
        let mut states = vec![as_snapshot(&truth)];
        for (levels, _) in &msgs {
            for &(side, l) in levels { truth.apply(side, l); }
            states.push(as_snapshot(&truth));
        }
        for rule in RULES {
            let seq = stream_ids(rule, &widths);
            let mut sync = BookSync::new(rule, 1_000, 4_096);
            // Binance: diffs 1..=k buffered, then a snapshot taken after diff s (s >= 1 so it is
            // not older than the stream). Bybit/OKX: the venue's snapshot comes in-stream after k.
            let k = if matches!(rule, SyncRule::Bybit | SyncRule::Okx) { k.index(n + 1) } else { 1 + k.index(n) };
            let s = if matches!(rule, SyncRule::Bybit | SyncRule::Okx) { k } else { 1 + s.index(n) };
            if k == 0 {
                prop_assert_eq!(snapshot(&mut sync, seq[0], &states[0], 0), SyncOutcome::Applied);
            }
            for i in 1..=n {
                let out = delta(&mut sync, seq[i], &msgs[i - 1].0, i as u64);
                prop_assert!(!out.needs_resync(), "{:?} message {} gave {:?}", rule, i, out);
                if i == k {
                    let out = snapshot(&mut sync, ids(0, seq[s].last, 0), &states[s], i as u64);
                    prop_assert_eq!(out, SyncOutcome::Applied);
                }
            }
            prop_assert_eq!(sync.book().first_mismatch(&truth), None, "{:?} k={} s={}", rule, k, s);
            let whole = !(rule == SyncRule::BinanceSpot && s == n);
            prop_assert_eq!(sync.whole(), whole, "{:?} k={} s={}", rule, k, s);
            prop_assert_eq!(sync.stats().gaps, 0);
        }
    }

    #[test]
    fn dropping_any_one_message_is_a_gap(
        msgs in prop::collection::vec((arb_levels(6), 0u64..3), 3..25),
        drop in any::<prop::sample::Index>(),
    ) {
        let n = msgs.len();
        let widths: Vec<u64> = msgs.iter().map(|m| m.1).collect();
        let j = 2 + drop.index(n - 2); // 1-based, neither the first (it bridges) nor the last
        let mut after_first = L2Book::new(1_000);
        for &(side, l) in &msgs[0].0 { after_first.apply(side, l); }
        for rule in RULES {
            let seq = stream_ids(rule, &widths);
            let mut sync = BookSync::new(rule, 1_000, 4_096);
            // USD-M's first diff must straddle the snapshot (`U <= lastUpdateId <= u`): snapshot
            // after the first message, which then re-applies idempotently; the others start at 0.
            if rule == SyncRule::BinanceUsdm {
                snapshot(&mut sync, seq[1], &as_snapshot(&after_first), 0);
            } else {
                snapshot(&mut sync, seq[0], &[], 0);
            }
            for i in 1..=n {
                if i == j { continue; }
                let out = delta(&mut sync, seq[i], &msgs[i - 1].0, i as u64);
                if i < j {
                    prop_assert_eq!(out, SyncOutcome::Applied);
                } else if i == j + 1 {
                    prop_assert!(matches!(out, SyncOutcome::Gap { .. }), "{:?} drop {} gave {:?}", rule, j, out);
                } else {
                    prop_assert!(!out.needs_resync());
                }
            }
            prop_assert_eq!(sync.stats().gaps, 1);
            prop_assert!(!sync.whole());
        }
    }

    #[test]
    fn any_chunk_sequence_is_handled_without_panic(
        chunks in prop::collection::vec(
            (any::<bool>(), any::<bool>(), any::<bool>(), 0u64..8, 0u64..8, 0u64..8, arb_levels(5)), 0..80),
    ) {
        for rule in RULES {
            let mut sync = BookSync::new(rule, 8, 6);
            for (i, (snap, first, last, a, b, c, levels)) in chunks.iter().enumerate() {
                let kind = if *snap { BookUpdateKind::Snapshot } else { BookUpdateKind::Delta };
                let mut chunk = crossbar_engine::event::BookChunk::new(kind);
                for &(side, l) in levels.iter().take(4) { chunk.push(side, l); }
                chunk.first = *first;
                chunk.last = *last;
                sync.on_chunk(ids(*a, a + b, *c), &chunk, i as u64);
                if sync.whole() {
                    prop_assert!(!sync.book().is_crossed());
                    prop_assert_eq!(sync.phase(), SyncPhase::Live);
                }
            }
        }
    }
}
