//! [`L2Book`]: a price-level book kept as two sorted fixed-capacity arrays.
//!
//! Each side is a `Vec<Level>` allocated once at construction and never grown: inserts and
//! removals are a binary search plus a `memmove` inside the existing allocation. Levels are stored
//! worst-first so the best price sits at the end of the array, where most venue updates land, and
//! a change at the top of the book moves few bytes.
//!
//! Capacity is a hard bound. When a side is full, a new level better than its worst level evicts
//! that worst level, and a new level worse than all held ones is dropped; both are counted in
//! [`L2Book::dropped_levels`]. Past that point the far tail of the side is **unknown**, exactly like
//! levels outside the depth of a venue snapshot: a later removal nearer the top leaves a hole at
//! the bottom that only a venue update for that price can fill. Depth walks therefore see at most
//! `capacity` levels per side; size the capacity above the depth the router will ever walk.

use core::cmp::Ordering;

use crate::event::{Level, Side};
use crate::fixed::{Px, Qty};

/// What one absolute-quantity update did to a side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LevelChange {
    /// A new price level was inserted.
    Inserted,
    /// An existing level got a new quantity.
    Updated,
    /// An existing level was removed (quantity zero).
    Removed,
    /// A removal for a price the book does not hold: nothing changed.
    Absent,
    /// The side was full and the level was worse than all held ones: not stored, counted.
    Dropped,
}

/// The result of walking one side of the book: what a marketable order of a given size would
/// take, for the router to compare venues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Walk {
    /// Quantity the visible levels can fill (less than asked when the side is too thin).
    pub filled: Qty,
    /// Exact sum of `px × qty` over the levels taken, in price-mantissa × quantity-mantissa units;
    /// `i128` so no realistic book can overflow it.
    pub cost: i128,
}

impl Walk {
    /// Volume-weighted average price of the fill in price-mantissa units, rounded toward zero;
    /// `None` when nothing filled. The exact value is `cost / filled`.
    pub fn avg_px_floor(&self) -> Option<i128> {
        (self.filled.0 > 0).then(|| self.cost / i128::from(self.filled.0))
    }
}

/// Where two books (or a book and a snapshot) first differ, for test failure messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelMismatch {
    /// Book side: `Side::Buy` for bids, `Side::Sell` for asks.
    pub side: Side,
    /// Index from the best level (0 = best).
    pub index: usize,
    /// Our level there, `None` past our depth.
    pub ours: Option<Level>,
    /// Their level there, `None` past their depth.
    pub theirs: Option<Level>,
}

/// One side, worst level first, best level last.
#[derive(Clone, Debug)]
struct Ladder {
    levels: Vec<Level>,
    cap: usize,
    is_ask: bool,
}

impl Ladder {
    fn new(cap: usize, is_ask: bool) -> Self {
        Self { levels: Vec::with_capacity(cap), cap, is_ask }
    }

    /// Storage order of `a` against `b`: `Less` when `a` is the worse price.
    #[inline]
    fn rank(&self, a: Px, b: Px) -> Ordering {
        if self.is_ask { b.cmp(&a) } else { a.cmp(&b) }
    }

    #[inline]
    fn find(&self, px: Px) -> Result<usize, usize> {
        self.levels.binary_search_by(|l| self.rank(l.px, px))
    }

    #[inline]
    fn set(&mut self, px: Px, qty: Qty, dropped: &mut u64) -> LevelChange {
        match self.find(px) {
            Ok(i) if qty.0 <= 0 => {
                self.levels.remove(i);
                LevelChange::Removed
            }
            Ok(i) => {
                self.levels[i].qty = qty;
                LevelChange::Updated
            }
            Err(_) if qty.0 <= 0 => LevelChange::Absent,
            Err(i) if self.levels.len() < self.cap => {
                self.levels.insert(i, Level { px, qty });
                LevelChange::Inserted
            }
            Err(0) => {
                *dropped += 1;
                LevelChange::Dropped
            }
            Err(i) => {
                // Full: the worst level (index 0) makes room for a better one.
                self.levels.remove(0);
                self.levels.insert(i - 1, Level { px, qty });
                *dropped += 1;
                LevelChange::Inserted
            }
        }
    }

    fn best_first(&self) -> impl ExactSizeIterator<Item = &Level> + DoubleEndedIterator {
        self.levels.iter().rev()
    }

    fn nth_best(&self, i: usize) -> Option<Level> {
        let len = self.levels.len();
        (i < len).then(|| self.levels[len - 1 - i])
    }

    fn walk(&self, qty: Qty) -> Walk {
        let mut left = qty.0.max(0);
        let mut cost: i128 = 0;
        for l in self.best_first() {
            if left == 0 {
                break;
            }
            let take = left.min(l.qty.0.max(0));
            cost += i128::from(take) * i128::from(l.px.0);
            left -= take;
        }
        Walk { filled: Qty(qty.0.max(0) - left), cost }
    }

    fn first_mismatch<'a>(&self, side: Side, theirs: impl Iterator<Item = &'a Level>) -> Option<LevelMismatch> {
        let mut ours = self.best_first();
        let mut theirs = theirs;
        let mut index = 0;
        loop {
            let (a, b) = (ours.next().copied(), theirs.next().copied());
            if a.is_none() && b.is_none() {
                return None;
            }
            if a != b {
                return Some(LevelMismatch { side, index, ours: a, theirs: b });
            }
            index += 1;
        }
    }
}

/// A level-2 order book: absolute quantities per price, both sides sorted, bounded, and never
/// allocating after [`L2Book::new`].
///
/// Book sides are named with [`Side`]: `Side::Buy` is the bid side, `Side::Sell` the ask side.
/// The book holds whatever it is told; whether it is *whole* (in sync with the venue) is the
/// business of [`super::BookSync`], which owns one.
#[derive(Clone, Debug)]
pub struct L2Book {
    bids: Ladder,
    asks: Ladder,
    dropped: u64,
}

impl L2Book {
    /// An empty book holding at most `capacity` levels per side (the one allocation it makes).
    pub fn new(capacity: usize) -> Self {
        Self { bids: Ladder::new(capacity, false), asks: Ladder::new(capacity, true), dropped: 0 }
    }

    /// Levels per side the book can hold.
    pub fn capacity(&self) -> usize {
        self.bids.cap
    }

    fn ladder(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    /// Sets the absolute quantity at `px` on `side` (`Side::Buy` = bids); a zero (or negative,
    /// which decoders never produce) quantity removes the level, as every venue's diff format says.
    #[inline]
    pub fn set(&mut self, side: Side, px: Px, qty: Qty) -> LevelChange {
        match side {
            Side::Buy => self.bids.set(px, qty, &mut self.dropped),
            Side::Sell => self.asks.set(px, qty, &mut self.dropped),
        }
    }

    /// [`L2Book::set`] for a [`Level`].
    #[inline]
    pub fn apply(&mut self, side: Side, level: Level) -> LevelChange {
        self.set(side, level.px, level.qty)
    }

    /// Removes every level (keeps the allocation and the dropped-level count).
    pub fn clear(&mut self) {
        self.bids.levels.clear();
        self.asks.levels.clear();
    }

    /// Best bid, if any.
    #[inline]
    pub fn best_bid(&self) -> Option<Level> {
        self.bids.levels.last().copied()
    }

    /// Best ask, if any.
    #[inline]
    pub fn best_ask(&self) -> Option<Level> {
        self.asks.levels.last().copied()
    }

    /// True when both sides are present and the best bid is at or above the best ask: a venue's
    /// matching engine never leaves that state, so a local book in it has missed an update.
    #[inline]
    pub fn is_crossed(&self) -> bool {
        matches!((self.best_bid(), self.best_ask()), (Some(b), Some(a)) if b.px >= a.px)
    }

    /// Number of levels held on `side`.
    pub fn depth(&self, side: Side) -> usize {
        self.ladder(side).levels.len()
    }

    /// True when neither side holds a level.
    pub fn is_empty(&self) -> bool {
        self.bids.levels.is_empty() && self.asks.levels.is_empty()
    }

    /// The `i`-th best level of `side` (0 = best).
    pub fn level(&self, side: Side, i: usize) -> Option<Level> {
        self.ladder(side).nth_best(i)
    }

    /// The levels of `side`, best first.
    pub fn levels(&self, side: Side) -> impl ExactSizeIterator<Item = &Level> + DoubleEndedIterator {
        self.ladder(side).best_first()
    }

    /// Quantity resting at exactly `px` on `side`, if the book holds that level.
    pub fn qty_at(&self, side: Side, px: Px) -> Option<Qty> {
        let ladder = self.ladder(side);
        ladder.find(px).ok().map(|i| ladder.levels[i].qty)
    }

    /// Levels not stored (or evicted) because a side was full, since construction: when non-zero
    /// the far tail of the book is unknown.
    pub fn dropped_levels(&self) -> u64 {
        self.dropped
    }

    /// What taking `qty` as a `taker` would fill and cost against the visible levels: a buyer
    /// walks the asks from the best up, a seller the bids from the best down. Exact integers.
    pub fn walk(&self, taker: Side, qty: Qty) -> Walk {
        match taker {
            Side::Buy => self.asks.walk(qty),
            Side::Sell => self.bids.walk(qty),
        }
    }

    /// The first level where `self` and `other` differ, bids checked before asks; `None` when
    /// both hold exactly the same levels (capacity and dropped counts are not compared).
    pub fn first_mismatch(&self, other: &Self) -> Option<LevelMismatch> {
        self.bids
            .first_mismatch(Side::Buy, other.bids.best_first())
            .or_else(|| self.asks.first_mismatch(Side::Sell, other.asks.best_first()))
    }

    /// True when `self` and `other` hold exactly the same levels.
    pub fn same_levels(&self, other: &Self) -> bool {
        self.first_mismatch(other).is_none()
    }

    /// The first difference against a snapshot given as best-first bids and asks (for example a
    /// simulator's book); `None` when equal level for level.
    pub fn mismatch_with(&self, bids: &[Level], asks: &[Level]) -> Option<LevelMismatch> {
        self.bids.first_mismatch(Side::Buy, bids.iter()).or_else(|| self.asks.first_mismatch(Side::Sell, asks.iter()))
    }

    /// True when the book equals the best-first `bids` and `asks` level for level.
    pub fn matches(&self, bids: &[Level], asks: &[Level]) -> bool {
        self.mismatch_with(bids, asks).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(px: i64, qty: i64) -> Level {
        Level { px: Px(px), qty: Qty(qty) }
    }

    #[test]
    fn keeps_sides_sorted_best_first() {
        let mut b = L2Book::new(8);
        for px in [100, 102, 101] {
            b.set(Side::Buy, Px(px), Qty(1));
            b.set(Side::Sell, Px(px + 10), Qty(2));
        }
        assert!(b.matches(&[l(102, 1), l(101, 1), l(100, 1)], &[l(110, 2), l(111, 2), l(112, 2)]));
        assert_eq!(b.set(Side::Buy, Px(101), Qty(0)), LevelChange::Removed);
        assert_eq!(b.set(Side::Buy, Px(99), Qty(0)), LevelChange::Absent);
        assert_eq!(b.level(Side::Buy, 1), Some(l(100, 1)));
        assert!(!b.is_crossed());
        b.set(Side::Buy, Px(110), Qty(1));
        assert!(b.is_crossed());
    }

    #[test]
    fn full_side_drops_the_far_tail() {
        let mut b = L2Book::new(2);
        b.set(Side::Sell, Px(10), Qty(1));
        b.set(Side::Sell, Px(11), Qty(1));
        assert_eq!(b.set(Side::Sell, Px(12), Qty(1)), LevelChange::Dropped);
        assert_eq!(b.set(Side::Sell, Px(9), Qty(1)), LevelChange::Inserted);
        assert!(b.matches(&[], &[l(9, 1), l(10, 1)]));
        assert_eq!(b.dropped_levels(), 2);
        let mut z = L2Book::new(0);
        assert_eq!(z.set(Side::Buy, Px(1), Qty(1)), LevelChange::Dropped);
    }

    #[test]
    fn walk_is_exact() {
        let mut b = L2Book::new(4);
        b.set(Side::Sell, Px(100), Qty(2));
        b.set(Side::Sell, Px(101), Qty(3));
        let w = b.walk(Side::Buy, Qty(4));
        assert_eq!(w, Walk { filled: Qty(4), cost: 200 + 202 });
        assert_eq!(w.avg_px_floor(), Some(100));
        assert_eq!(b.walk(Side::Buy, Qty(9)).filled, Qty(5));
        assert_eq!(b.walk(Side::Sell, Qty(1)), Walk::default());
    }
}
