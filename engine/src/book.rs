//! The core's view of each instrument's market: best bid/ask, mark and funding, freshness.
//!
//! Owned by the core thread alone. A book that is not whole (a gap was seen, or the feed is
//! down) refuses to be traded on: [`TopOfBook::tradable`] is the guard strategies and risk use.

use crate::event::{FeedStatus, MarketBody, MarketEvent, Quote};
use crate::fixed::{Px, Rate};
use crate::instrument::InstrumentId;

/// The latest market state of one instrument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopOfBook {
    /// Latest best bid/ask; zero prices until the first quote.
    pub quote: Quote,
    /// Venue update id of the latest quote.
    pub update_id: u64,
    /// Local receive time of the latest event (ns, core clock axis).
    pub last_recv_ns: u64,
    /// Venue time of the latest event (ms), 0 when none.
    pub last_exch_ms: u64,
    /// Latest mark price (perpetuals) at [`crate::fixed::REFERENCE_SCALE`], `Px(0)` when none yet.
    pub mark_px: Px,
    /// Latest funding rate for the next settlement.
    pub funding_rate: Rate,
    /// Venue time of the next funding settlement (ms), 0 when unknown.
    pub next_funding_ms: u64,
    /// True when it may be traded: the feed is up and, where a depth book is kept, that book is
    /// in sequence. False after a gap or disconnect until resynced.
    pub whole: bool,
    /// The feed carrying this instrument is connected.
    pub feed_up: bool,
    /// The depth book is in sequence (always true for instruments without a depth book).
    pub depth_whole: bool,
}

impl TopOfBook {
    /// True when both sides are present and not crossed.
    pub fn has_two_sides(&self) -> bool {
        let q = &self.quote;
        q.bid_px.0 > 0 && q.ask_px.0 > 0 && q.bid_px < q.ask_px && !q.bid_qty.is_zero() && !q.ask_qty.is_zero()
    }

    /// True when it may be traded on: whole, two-sided, and updated within `max_age_ns` of `now_ns`.
    pub fn tradable(&self, now_ns: u64, max_age_ns: u64) -> bool {
        self.whole && self.has_two_sides() && now_ns.saturating_sub(self.last_recv_ns) <= max_age_ns
    }

    /// Mid price in price mantissa units, rounded down; `None` without two sides.
    pub fn mid(&self) -> Option<Px> {
        self.has_two_sides().then(|| Px((self.quote.bid_px.0 + self.quote.ask_px.0) / 2))
    }
}

/// Settlement seen in a funding update: the venue moved its next funding time on, so the
/// previous one was paid at the rate and mark in force before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FundingSettled {
    /// Venue time of the settlement (ms).
    pub at_ms: u64,
    /// Rate applied.
    pub rate: Rate,
    /// Mark price applied, at [`crate::fixed::REFERENCE_SCALE`].
    pub mark_px: Px,
}

/// Every instrument's [`TopOfBook`], indexed by [`InstrumentId`].
#[derive(Clone, Debug, Default)]
pub struct Books {
    books: Vec<TopOfBook>,
}

impl Books {
    /// Books for `n` instruments, all empty and whole.
    pub fn new(n: usize) -> Self {
        Self { books: vec![TopOfBook { whole: true, feed_up: true, depth_whole: true, ..TopOfBook::default() }; n] }
    }

    /// Records whether `id`'s depth book is in sequence (the core's sequencer decides).
    pub fn set_depth_whole(&mut self, id: InstrumentId, whole: bool) {
        if let Some(b) = self.books.get_mut(id.index()) {
            b.depth_whole = whole;
            b.whole = b.feed_up && b.depth_whole;
        }
    }

    /// The book of `id`.
    pub fn get(&self, id: InstrumentId) -> &TopOfBook {
        &self.books[id.index()]
    }

    /// Applies a market event; returns a funding settlement when this event reveals one.
    #[inline]
    pub fn apply(&mut self, ev: &MarketEvent) -> Option<FundingSettled> {
        let b = self.books.get_mut(ev.instrument.index())?;
        b.last_recv_ns = ev.recv_ns;
        if ev.exch_ts_ms != 0 {
            b.last_exch_ms = ev.exch_ts_ms;
        }
        match ev.body {
            MarketBody::Quote(q) => {
                // A quote older than the one held (a venue resend) must not move the book back.
                if ev.seq.last == 0 || ev.seq.last >= b.update_id {
                    b.quote = q;
                    b.update_id = ev.seq.last;
                }
                None
            }
            MarketBody::Funding(f) => {
                let settled =
                    (b.next_funding_ms != 0 && f.next_funding_ms > b.next_funding_ms).then_some(FundingSettled {
                        at_ms: b.next_funding_ms,
                        rate: b.funding_rate,
                        mark_px: if b.mark_px.0 > 0 { b.mark_px } else { f.mark_px },
                    });
                if f.mark_px.0 > 0 {
                    b.mark_px = f.mark_px;
                }
                b.funding_rate = f.rate;
                b.next_funding_ms = f.next_funding_ms;
                settled
            }
            MarketBody::Status(s) => {
                match s {
                    FeedStatus::Connected => b.feed_up = true,
                    FeedStatus::Disconnected => b.feed_up = false,
                    FeedStatus::Gap => b.depth_whole = false,
                    FeedStatus::Resynced => b.depth_whole = true,
                }
                b.whole = b.feed_up && b.depth_whole;
                None
            }
            MarketBody::Book(_) | MarketBody::Trade(_) | MarketBody::PoolState(_) | MarketBody::PendingSwap(_) => None,
        }
    }
}
