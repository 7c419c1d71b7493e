//! One simulated L2 book with venue update ids, and the depth diffs a venue publishes from it.
//!
//! Prices and quantities are integer mantissas at the instrument's scales. Every change of one
//! level bumps the book's update id, so any book state is named by the id of the last change
//! applied, exactly what a venue's REST snapshot calls `lastUpdateId`.
//!
//! Diffs follow Binance's rules: an event covers the ids `U..=u` since the previous event and
//! carries the *absolute* quantity of the levels that changed, `0` meaning removed. To keep events
//! small, a level that was touched and came back to the quantity it had at the previous event is
//! left out, except when a snapshot was taken meanwhile: then every level touched before the
//! snapshot is sent, because the snapshot may hold an intermediate quantity of it.

use std::collections::BTreeMap;

use crossbar_engine::fixed::{Px, Qty};

/// Which side of the book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// Buy orders, best (highest) first.
    Bid,
    /// Sell orders, best (lowest) first.
    Ask,
}

/// One price level: price and resting quantity as mantissas at the instrument's scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Level {
    /// Price mantissa (a multiple of the tick).
    pub px: i64,
    /// Quantity mantissa (a multiple of the lot), always positive in a book.
    pub qty: i64,
}

/// A copy of a book at one update id, as the venue's REST depth endpoint returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookSnapshot {
    /// Id of the last change applied to this state (`lastUpdateId`).
    pub last_update_id: u64,
    /// Bids, best (highest) first.
    pub bids: Vec<(Px, Qty)>,
    /// Asks, best (lowest) first.
    pub asks: Vec<(Px, Qty)>,
}

/// The changes of a book between two published events, in the venue's diff-depth terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepthDiff {
    /// First update id in the event (`U`): the previous event's `u` + 1.
    pub first_update_id: u64,
    /// Final update id in the event (`u`).
    pub last_update_id: u64,
    /// Final update id of the previous event (`pu` on USD-M).
    pub prev_last_update_id: u64,
    /// Changed bid levels `(px, absolute qty)`, highest first; qty 0 removes the level.
    pub bids: Vec<(i64, i64)>,
    /// Changed ask levels `(px, absolute qty)`, lowest first; qty 0 removes the level.
    pub asks: Vec<(i64, i64)>,
}

/// A level touched since the last published diff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Touched {
    /// Its quantity when the last diff was published.
    before: i64,
    /// A snapshot was taken while it was touched: send it whatever its final quantity.
    pinned: bool,
}

/// A simulated L2 book: two sorted level vectors, an update id, and the levels touched since
/// the last diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimBook {
    bids: Vec<Level>,
    asks: Vec<Level>,
    update_id: u64,
    published_id: u64,
    touched_bids: BTreeMap<i64, Touched>,
    touched_asks: BTreeMap<i64, Touched>,
}

impl SimBook {
    /// An empty book whose first change will get id `last_update_id + 1`.
    pub fn new(last_update_id: u64) -> Self {
        Self {
            bids: Vec::new(),
            asks: Vec::new(),
            update_id: last_update_id,
            published_id: last_update_id,
            touched_bids: BTreeMap::new(),
            touched_asks: BTreeMap::new(),
        }
    }

    /// Id of the last change applied.
    pub fn update_id(&self) -> u64 {
        self.update_id
    }

    /// The levels of one side, best first.
    pub fn levels(&self, side: Side) -> &[Level] {
        match side {
            Side::Bid => &self.bids,
            Side::Ask => &self.asks,
        }
    }

    /// The best level of one side, if the side is not empty.
    pub fn best(&self, side: Side) -> Option<Level> {
        self.levels(side).first().copied()
    }

    /// The quantity resting at `px` on `side` (0 when no level).
    pub fn qty_at(&self, side: Side, px: i64) -> i64 {
        let levels = self.levels(side);
        match find(side, levels, px) {
            Ok(i) => levels[i].qty,
            Err(_) => 0,
        }
    }

    /// Sets the absolute quantity at `px` on `side`; 0 removes the level. A change bumps the
    /// update id; setting the quantity a level already has changes nothing.
    ///
    /// # Panics
    /// On a negative quantity or a non-positive price: the model never produces them.
    pub fn set(&mut self, side: Side, px: i64, qty: i64) {
        assert!(qty >= 0 && px > 0, "bad level {px} x {qty}");
        let (levels, touched) = match side {
            Side::Bid => (&mut self.bids, &mut self.touched_bids),
            Side::Ask => (&mut self.asks, &mut self.touched_asks),
        };
        let before = match find(side, levels, px) {
            Ok(i) => {
                let before = levels[i].qty;
                if qty == 0 {
                    levels.remove(i);
                } else {
                    levels[i].qty = qty;
                }
                before
            }
            Err(i) => {
                if qty != 0 {
                    levels.insert(i, Level { px, qty });
                }
                0
            }
        };
        if before != qty {
            touched.entry(px).or_insert(Touched { before, pinned: false });
            self.update_id += 1;
        }
    }

    /// Takes up to `qty` from the best level of `side`, as an aggressor order would, and
    /// returns the price and the quantity taken; `None` when the side is empty.
    pub fn take(&mut self, side: Side, qty: i64) -> Option<(i64, i64)> {
        let best = self.best(side)?;
        let taken = qty.clamp(0, best.qty);
        self.set(side, best.px, best.qty - taken);
        Some((best.px, taken))
    }

    /// Moves the inside of the book to `bid` / `ask` the way market makers requote: levels that
    /// would cross the new inside are cancelled, new levels are placed from the new inside out
    /// to the old one, then each side is trimmed or extended to `depth` levels one `tick` apart
    /// (gaps allowed). `new_qty(must_fill)` sizes a new level: 0 leaves the price empty, which it
    /// may do only when `must_fill` is false (the new best must get a size).
    ///
    /// # Panics
    /// When `bid >= ask` or a price is not positive.
    pub fn requote(&mut self, bid: i64, ask: i64, tick: i64, depth: usize, new_qty: &mut impl FnMut(bool) -> i64) {
        assert!(0 < bid && bid < ask && tick > 0, "bad inside {bid}/{ask}");
        self.requote_side(Side::Bid, bid, -tick, depth, new_qty);
        self.requote_side(Side::Ask, ask, tick, depth, new_qty);
    }

    fn requote_side(
        &mut self,
        side: Side,
        best: i64,
        outward: i64,
        depth: usize,
        new_qty: &mut impl FnMut(bool) -> i64,
    ) {
        let better = |a: i64, b: i64| if outward < 0 { a > b } else { a < b };
        // Cancel what would cross.
        while let Some(l) = self.best(side).filter(|l| better(l.px, best)) {
            self.set(side, l.px, 0);
        }
        // Fill from the new inside out to the old one (or to `depth` levels on an empty side).
        let old_best = self.best(side).map(|l| l.px);
        let mut px = best;
        let mut placed = 0;
        let mut tries = 0;
        while px > 0 && placed < depth && tries < 4 * depth && old_best.is_none_or(|b| better(px, b)) {
            let qty = new_qty(px == best);
            debug_assert!(qty > 0 || px != best, "the best level must get a size");
            if qty > 0 {
                self.set(side, px, qty);
                placed += 1;
            }
            px += outward;
            tries += 1;
        }
        // Trim the far end, then extend it.
        while self.levels(side).len() > depth {
            let far = *self.levels(side).last().expect("non-empty");
            self.set(side, far.px, 0);
        }
        let mut tries = 0;
        while self.levels(side).len() < depth && tries < 4 * depth {
            let mut px = self.levels(side).last().map_or(best, |l| l.px + outward);
            let mut qty = new_qty(px == best);
            if qty == 0 {
                // Leave `px` empty: the next level goes one tick further out.
                px += outward;
                qty = new_qty(true);
            }
            if px <= 0 {
                break;
            }
            self.set(side, px, qty);
            tries += 1;
        }
    }

    /// A copy of the best `limit` levels per side at the current update id.
    ///
    /// Levels touched since the last diff are marked so the next diff carries them whatever
    /// their final quantity: a client applying it on top of this snapshot then ends up exact.
    pub fn snapshot(&mut self, limit: usize) -> BookSnapshot {
        for t in self.touched_bids.values_mut().chain(self.touched_asks.values_mut()) {
            t.pinned = true;
        }
        let copy = |levels: &[Level]| levels.iter().take(limit).map(|l| (Px(l.px), Qty(l.qty))).collect();
        BookSnapshot { last_update_id: self.update_id, bids: copy(&self.bids), asks: copy(&self.asks) }
    }

    /// The diff since the last published one, or `None` when nothing changed; afterwards the
    /// book counts as published up to its current update id.
    pub fn take_diff(&mut self) -> Option<DepthDiff> {
        if self.update_id == self.published_id {
            return None;
        }
        let changed = |touched: &BTreeMap<i64, Touched>, side: Side, book: &Self| -> Vec<(i64, i64)> {
            let mut out: Vec<(i64, i64)> = touched
                .iter()
                .map(|(&px, t)| (px, t, book.qty_at(side, px)))
                .filter(|(_, t, now)| t.pinned || t.before != *now)
                .map(|(px, _, now)| (px, now))
                .collect();
            if side == Side::Bid {
                out.reverse();
            }
            out
        };
        let diff = DepthDiff {
            first_update_id: self.published_id + 1,
            last_update_id: self.update_id,
            prev_last_update_id: self.published_id,
            bids: changed(&self.touched_bids, Side::Bid, self),
            asks: changed(&self.touched_asks, Side::Ask, self),
        };
        self.touched_bids.clear();
        self.touched_asks.clear();
        self.published_id = self.update_id;
        Some(diff)
    }
}

/// Position of `px` in a side's levels (`Ok`) or where it would be inserted (`Err`).
fn find(side: Side, levels: &[Level], px: i64) -> Result<usize, usize> {
    match side {
        Side::Bid => levels.binary_search_by(|l| px.cmp(&l.px)),
        Side::Ask => levels.binary_search_by(|l| l.px.cmp(&px)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client-side book applying snapshots and diffs, to check the publisher against.
    #[derive(Default)]
    struct Mirror {
        bids: BTreeMap<i64, i64>,
        asks: BTreeMap<i64, i64>,
    }

    impl Mirror {
        fn from_snapshot(s: &BookSnapshot) -> Self {
            Self {
                bids: s.bids.iter().map(|(p, q)| (p.0, q.0)).collect(),
                asks: s.asks.iter().map(|(p, q)| (p.0, q.0)).collect(),
            }
        }

        fn apply(&mut self, d: &DepthDiff) {
            for (map, levels) in [(&mut self.bids, &d.bids), (&mut self.asks, &d.asks)] {
                for &(px, qty) in levels {
                    if qty == 0 {
                        map.remove(&px);
                    } else {
                        map.insert(px, qty);
                    }
                }
            }
        }

        fn matches(&self, book: &SimBook) -> bool {
            let side = |map: &BTreeMap<i64, i64>, s: Side| {
                let mut v: Vec<Level> = map.iter().map(|(&px, &qty)| Level { px, qty }).collect();
                if s == Side::Bid {
                    v.reverse();
                }
                v == book.levels(s)
            };
            side(&self.bids, Side::Bid) && side(&self.asks, Side::Ask)
        }
    }

    fn sizes() -> impl FnMut(bool) -> i64 {
        let mut n = 0i64;
        move |best| {
            n += 1;
            if !best && n % 5 == 0 { 0 } else { 1 + n % 7 }
        }
    }

    #[test]
    fn set_keeps_sides_sorted_and_bumps_ids_only_on_change() {
        let mut b = SimBook::new(10);
        b.set(Side::Bid, 100, 5);
        b.set(Side::Bid, 102, 1);
        b.set(Side::Bid, 101, 2);
        b.set(Side::Ask, 105, 3);
        b.set(Side::Ask, 103, 4);
        assert_eq!(b.update_id(), 15);
        b.set(Side::Bid, 101, 2);
        assert_eq!(b.update_id(), 15);
        let px = |s| b.levels(s).iter().map(|l| l.px).collect::<Vec<_>>();
        assert_eq!(px(Side::Bid), [102, 101, 100]);
        assert_eq!(px(Side::Ask), [103, 105]);
        assert_eq!(b.take(Side::Ask, 10), Some((103, 4)));
        assert_eq!(b.best(Side::Ask), Some(Level { px: 105, qty: 3 }));
    }

    #[test]
    fn requote_places_the_inside_and_keeps_depth() {
        let mut b = SimBook::new(0);
        let mut q = sizes();
        b.requote(1000, 1003, 1, 10, &mut q);
        for (target, depth) in [(1000, 10), (1010, 10), (990, 10), (1500, 10), (1500, 4), (20, 6)] {
            b.requote(target, target + 2, 1, depth, &mut q);
            assert_eq!(b.best(Side::Bid).map(|l| l.px), Some(target));
            assert_eq!(b.best(Side::Ask).map(|l| l.px), Some(target + 2));
            assert_eq!(b.levels(Side::Bid).len(), depth);
            assert_eq!(b.levels(Side::Ask).len(), depth);
            assert!(b.levels(Side::Bid).windows(2).all(|w| w[0].px > w[1].px));
            assert!(b.levels(Side::Ask).windows(2).all(|w| w[0].px < w[1].px));
        }
    }

    #[test]
    fn diffs_are_contiguous_and_rebuild_the_book() {
        let mut b = SimBook::new(7);
        let mut q = sizes();
        b.requote(500, 502, 1, 8, &mut q);
        let mut mirror = Mirror::default();
        let mut prev = 7;
        for i in 0..200i64 {
            let mid = 500 + (i * 7919) % 23 - 11;
            b.requote(mid, mid + 1 + i % 3, 1, 8, &mut q);
            if i % 3 == 0 {
                b.take(Side::Bid, 2);
            }
            if let Some(d) = b.take_diff() {
                assert_eq!(d.first_update_id, prev + 1);
                assert_eq!(d.prev_last_update_id, prev);
                prev = d.last_update_id;
                mirror.apply(&d);
            }
            assert!(mirror.matches(&b), "diverged at {i}");
        }
    }

    #[test]
    fn a_snapshot_inside_an_event_range_is_still_exact() {
        let mut b = SimBook::new(0);
        b.set(Side::Bid, 100, 5);
        b.set(Side::Ask, 101, 5);
        b.take_diff();
        // Touch a level, snapshot, put it back: the event must still carry it.
        b.set(Side::Bid, 100, 9);
        let snap = b.snapshot(100);
        b.set(Side::Bid, 100, 5);
        let mut mirror = Mirror::from_snapshot(&snap);
        let d = b.take_diff().expect("changed");
        assert!(d.first_update_id <= snap.last_update_id + 1 && snap.last_update_id <= d.last_update_id);
        assert_eq!(d.bids, [(100, 5)]);
        mirror.apply(&d);
        assert!(mirror.matches(&b));
        // Without a snapshot the same round trip is left out.
        b.set(Side::Bid, 100, 9);
        b.set(Side::Bid, 100, 5);
        assert_eq!(b.take_diff().map(|d| d.bids.len()), Some(0));
    }
}
