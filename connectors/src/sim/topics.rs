//! What the simulator's topic-subscribed venues (Bybit v5, OKX v5) share: per-instrument wire
//! descriptions with the book sequence each publishes, the mapping from topics to the
//! simulator's streams, and the dispatch to the venue's encoder.
//!
//! Both venues are subscribed to after connecting, with a JSON request naming topics; a book
//! subscription is answered by a snapshot and then deltas. The server queues that snapshot
//! under the hub lock, so it comes before any delta published after it, and labels it with the
//! id of the last delta published: the next delta continues from it (Bybit `u` + 1, OKX
//! `prevSeqId` = the snapshot's `seqId`). A delta published before the snapshot was taken but
//! queued after it re-sets levels to the values they had; every level it touched and that
//! changed since is in the following delta, so the book still ends up exact.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbar_engine::instrument::{Instrument, InstrumentKind};

use super::binance::{StreamKind, write_fixed};
use super::book::BookSnapshot;
use super::model::SimEvent;
use super::{bybit, okx};
use crate::venue::Protocol;

/// How one instrument of a Bybit or OKX venue looks on the wire.
#[derive(Debug)]
pub(crate) struct TopicSymbol {
    /// The venue symbol (`BTCUSDT`, `BTC-USDT-SWAP`).
    pub(crate) symbol: String,
    /// The venue's protocol.
    pub(crate) protocol: Protocol,
    /// Perpetuals publish funding (Bybit linear tickers, OKX `funding-rate`).
    pub(crate) perpetual: bool,
    price_scale: u8,
    qty_scale: u8,
    /// Bybit: `u` of the last book message; OKX: `seqId` of the last one. Advanced only under
    /// the hub lock.
    book_seq: AtomicU64,
}

impl TopicSymbol {
    /// The wire description of `inst`, whose book is published up to update id `book_id`.
    pub(crate) fn new(inst: &Instrument, protocol: Protocol, book_id: u64) -> Self {
        Self {
            symbol: inst.symbol.clone(),
            protocol,
            perpetual: inst.kind == InstrumentKind::Perpetual,
            price_scale: inst.price_scale.places(),
            qty_scale: inst.qty_scale.places(),
            book_seq: AtomicU64::new(book_id),
        }
    }

    /// True for the protocols served through this module.
    pub(crate) fn serves(protocol: Protocol) -> bool {
        matches!(protocol, Protocol::BybitSpot | Protocol::BybitLinear | Protocol::Okx)
    }

    /// The websocket path of the venue's public streams.
    pub(crate) fn ws_path(protocol: Protocol) -> &'static str {
        match protocol {
            Protocol::BybitSpot => "v5/public/spot",
            Protocol::BybitLinear => "v5/public/linear",
            _ => "ws/v5/public",
        }
    }

    /// The id the last book message carried.
    pub(crate) fn book_seq(&self) -> u64 {
        self.book_seq.load(Ordering::Relaxed)
    }

    /// Moves the book sequence on for a delta covering update ids up to `last_update_id`;
    /// returns `(previous, this)`.
    fn advance(&self, last_update_id: u64) -> (u64, u64) {
        let prev = self.book_seq();
        let next = if self.protocol == Protocol::Okx { last_update_id.max(prev + 1) } else { prev + 1 };
        self.book_seq.store(next, Ordering::Relaxed);
        (prev, next)
    }

    /// A price: Bybit prints the instrument's decimals, OKX trims trailing zeros.
    pub(crate) fn px(&self, out: &mut String, m: i64) {
        self.number(out, m, self.price_scale);
    }

    /// A quantity, printed like a price.
    pub(crate) fn qty(&self, out: &mut String, m: i64) {
        self.number(out, m, self.qty_scale);
    }

    /// `m × 10^-scale` in the venue's style.
    pub(crate) fn number(&self, out: &mut String, m: i64, scale: u8) {
        let start = out.len();
        write_fixed(out, m, scale, scale);
        if self.protocol == Protocol::Okx && out[start..].contains('.') {
            let trimmed = out.trim_end_matches('0').trim_end_matches('.').len();
            out.truncate(trimmed);
        }
    }

    /// A `[["px","qty"],...]` array; OKX levels carry `"0"` (deprecated) and an order count.
    pub(crate) fn levels(&self, out: &mut String, levels: impl Iterator<Item = (i64, i64)>) {
        out.push('[');
        for (i, (px, qty)) in levels.enumerate() {
            out.push_str(if i == 0 { "[\"" } else { ",[\"" });
            self.px(out, px);
            out.push_str("\",\"");
            self.qty(out, qty);
            out.push_str(if self.protocol == Protocol::Okx { "\",\"0\",\"1\"]" } else { "\"]" });
        }
        out.push(']');
    }
}

/// One side's `(price, size)` mantissas, in wire order.
pub(crate) type Levels<'a> = &'a mut dyn Iterator<Item = (i64, i64)>;

/// A request a client sent, parsed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// Subscribe to `(stream, symbol)` pairs; the strings are the venue's own spelling of each
    /// topic (Bybit) or argument (OKX), echoed in acks.
    Subscribe(Vec<(StreamKind, String, String)>),
    /// Unsubscribe from them.
    Unsubscribe(Vec<(StreamKind, String, String)>),
    /// Anything answered at once: pings, malformed or refused requests.
    Reply(String),
}

/// Parses a request of a client with connection id `conn`.
pub(crate) fn parse_request(protocol: Protocol, conn: u64, text: &str) -> Request {
    if protocol == Protocol::Okx { okx::parse_request(conn, text) } else { bybit::parse_request(conn, text) }
}

/// The acks of a (un)subscribe request.
pub(crate) fn acks(
    protocol: Protocol,
    conn: u64,
    subscribe: bool,
    topics: &[(StreamKind, String, String)],
) -> Vec<String> {
    if protocol == Protocol::Okx {
        topics.iter().map(|(_, _, arg)| okx::ack(conn, subscribe, arg)).collect()
    } else {
        vec![bybit::ack(conn, subscribe)]
    }
}

/// The reply refusing a request for a topic the venue does not have.
pub(crate) fn unknown_topic(protocol: Protocol, conn: u64, topic: &str) -> String {
    if protocol == Protocol::Okx { okx::error(conn, topic) } else { bybit::error(conn, topic) }
}

/// Writes the frame of `ev` into `out` (cleared first); false when the venue publishes nothing
/// for it (spot funding, settlements). Book deltas advance the book sequence either way.
pub(crate) fn write_event(out: &mut String, ev: &SimEvent, t: &TopicSymbol) -> bool {
    out.clear();
    let seq = match ev {
        SimEvent::Depth { diff, .. } => t.advance(diff.last_update_id),
        _ => (0, 0),
    };
    if t.protocol == Protocol::Okx { okx::write_event(out, ev, t, seq) } else { bybit::write_event(out, ev, t, seq) }
}

/// The snapshot frame answering a book subscription: `snap` labelled with the last published
/// book id, at simulated time `time_ms`.
pub(crate) fn book_snapshot(t: &TopicSymbol, snap: &BookSnapshot, time_ms: i64) -> String {
    let mut out = String::with_capacity(128 + 40 * (snap.bids.len() + snap.asks.len()));
    if t.protocol == Protocol::Okx {
        okx::book_snapshot(&mut out, t, snap, time_ms, t.book_seq());
    } else {
        bybit::book_snapshot(&mut out, t, snap, time_ms, t.book_seq());
    }
    out
}
