//! Binance book levels: `[["price","qty"], ...]` arrays into fixed-size [`BookChunk`] events,
//! and the REST depth snapshot the book sequencer starts from.

use crossbar_engine::event::{BOOK_CHUNK_LEVELS, BookChunk, BookUpdateKind, Level, MarketBody, MarketEvent, Side};
use crossbar_engine::fixed::{Px, Qty, Scale};

use crate::feed::DecodeError;
use crate::json::{Elements, Members, Value};

/// Calls `sink` with every level of the array `levels` (a message's `b`/`a`, `bids`/`asks`),
/// in message order.
///
/// # Errors
/// [`DecodeError::WrongType`] naming `field` when `levels` is not an array of
/// `["price","qty"]` string pairs, [`DecodeError::BadNumber`] for a price or quantity that is
/// not an exact non-negative decimal at its scale.
#[inline]
pub(super) fn for_each_level(
    levels: Value<'_>,
    field: &'static str,
    px_scale: Scale,
    qty_scale: Scale,
    mut sink: impl FnMut(Level),
) -> Result<(), DecodeError> {
    let Value::Array(array) = levels else {
        return Err(DecodeError::WrongType(field));
    };
    let wrong = DecodeError::WrongType(field);
    let mut it = Elements::new(array);
    while it.advance()? {
        let Some(mut pair) = it.enter_array()? else {
            return Err(wrong);
        };
        let px = pair.next_value()?.ok_or(wrong)?.str(field)?;
        let qty = pair.next_value()?.ok_or(wrong)?.str(field)?;
        if pair.next_value()?.is_some() {
            return Err(wrong);
        }
        it.resume(&pair)?;
        let px = Px::parse(px, px_scale).map_err(|source| DecodeError::BadNumber { field, source })?;
        let qty = Qty::parse(qty, qty_scale).map_err(|source| DecodeError::BadNumber { field, source })?;
        sink(Level { px, qty });
    }
    Ok(())
}

/// Packs the levels of one book message into consecutive [`BookChunk`] events.
///
/// Every chunk is a copy of `template` with its own body, so all chunks of a message carry the
/// same instrument, times and sequence ids; the first has `first`, the last has `last`, and a
/// message without levels still yields one (empty) chunk so its sequence ids reach the book.
pub(super) struct BookWriter<'o> {
    out: &'o mut Vec<MarketEvent>,
    template: MarketEvent,
    chunk: BookChunk,
    emitted: bool,
}

impl<'o> BookWriter<'o> {
    /// A writer appending to `out`.
    pub(super) fn new(out: &'o mut Vec<MarketEvent>, template: MarketEvent, kind: BookUpdateKind) -> Self {
        Self { out, template, chunk: BookChunk::new(kind), emitted: false }
    }

    /// Adds one level; `Side::Buy` is a bid, `Side::Sell` an ask.
    #[inline]
    pub(super) fn push(&mut self, side: Side, level: Level) {
        if usize::from(self.chunk.len) >= BOOK_CHUNK_LEVELS {
            self.flush(false);
        }
        let added = self.chunk.push(side, level);
        debug_assert!(added, "a flushed chunk has room");
    }

    #[inline]
    fn flush(&mut self, last: bool) {
        let mut chunk = self.chunk;
        chunk.first = !self.emitted;
        chunk.last = last;
        self.out.push(MarketEvent { body: MarketBody::Book(chunk), ..self.template });
        self.emitted = true;
        self.chunk = BookChunk::new(chunk.kind);
    }

    /// Emits the final chunk, marked `last`.
    #[inline]
    pub(super) fn finish(mut self) {
        self.flush(true);
    }
}

/// The header of a REST depth snapshot; its levels went into the caller's vectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DepthSnapshot {
    /// `lastUpdateId`: the book sequencer's starting point.
    pub last_update_id: u64,
    /// Venue time in ms: `T` (USD-M transaction time) if given, else `E`, else 0 (spot).
    pub exch_ts_ms: u64,
}

/// Parses a REST depth snapshot (`GET /api/v3/depth`, `GET /fapi/v1/depth`) into `bids` and
/// `asks`, which are cleared first and keep the venue's order (best first).
///
/// This runs off the hot path, when a book (re)syncs; it allocates only if the vectors must
/// grow.
///
/// ```text
/// {"lastUpdateId": 1027024, "E": 1589436922972, "T": 1589436922959,
///  "bids": [["4.00000000", "431.00000000"]], "asks": [["4.00000200", "12.00000000"]]}
/// ```
///
/// # Errors
/// [`DecodeError::Json`] for malformed JSON, [`DecodeError::MissingField`] without
/// `lastUpdateId`, `bids` or `asks`, [`DecodeError::WrongType`], [`DecodeError::BadInteger`]
/// or [`DecodeError::BadNumber`] for a field of the wrong shape. On error both vectors are left
/// empty.
pub fn parse_depth_snapshot(
    body: &[u8],
    price_scale: Scale,
    qty_scale: Scale,
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
) -> Result<DepthSnapshot, DecodeError> {
    bids.clear();
    asks.clear();
    let result = parse_snapshot_into(body, price_scale, qty_scale, bids, asks);
    if result.is_err() {
        bids.clear();
        asks.clear();
    }
    result
}

fn parse_snapshot_into(
    body: &[u8],
    price_scale: Scale,
    qty_scale: Scale,
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
) -> Result<DepthSnapshot, DecodeError> {
    let (mut id, mut event_ts, mut tx_ts, mut bid_levels, mut ask_levels) = (None, None, None, None, None);
    for member in Members::new(body) {
        let (key, value) = member?;
        match key {
            b"lastUpdateId" => id = Some(value),
            b"E" => event_ts = Some(value),
            b"T" => tx_ts = Some(value),
            b"bids" => bid_levels = Some(value),
            b"asks" => ask_levels = Some(value),
            _ => {}
        }
    }
    let last_update_id = id.ok_or(DecodeError::MissingField("lastUpdateId"))?.u64("lastUpdateId")?;
    let exch_ts_ms = match (tx_ts, event_ts) {
        (Some(t), _) => t.u64("T")?,
        (None, Some(e)) => e.u64("E")?,
        (None, None) => 0,
    };
    let bid_levels = bid_levels.ok_or(DecodeError::MissingField("bids"))?;
    let ask_levels = ask_levels.ok_or(DecodeError::MissingField("asks"))?;
    for_each_level(bid_levels, "bids", price_scale, qty_scale, |l| bids.push(l))?;
    for_each_level(ask_levels, "asks", price_scale, qty_scale, |l| asks.push(l))?;
    Ok(DepthSnapshot { last_update_id, exch_ts_ms })
}
