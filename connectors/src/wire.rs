//! Wire helpers shared by the Binance, Bybit and OKX decoders: required-field lookups, exact
//! fixed-point fields that name themselves in their errors, arrays of price levels, the packing
//! of one book message into fixed-size [`BookChunk`] events, and the [`FeedDecoder`] contract
//! that a frame which is not market data leaves `out` as it was.
//!
//! All three venues send prices, sizes and funding rates as decimal strings and book levels as
//! arrays of strings (`["0.0024","10"]` on Binance, `["16493.50","0.006"]` on Bybit,
//! `["8476.98","415","0","13"]` on OKX), so the code lives once, here; each venue's message
//! shapes stay in its own module.
//!
//! [`FeedDecoder`]: crate::feed::FeedDecoder

use crossbar_engine::event::{
    BOOK_CHUNK_LEVELS, BookChunk, BookUpdateKind, Level, MarketBody, MarketEvent, SeqIds, Side,
};
use crossbar_engine::fixed::{Px, Qty, RATE_SCALE, Rate, Scale};
use crossbar_engine::instrument::InstrumentId;

use crate::feed::{DecodeError, FrameKind, SymbolTable};
use crate::json::{Elements, Members, Value, for_each_string_row, parse_u64};

/// Declares a struct of optional JSON member slots, `field: b"key"` each, and its `set`, which
/// stores a member in the slot of its key (the last duplicate wins) and ignores other keys.
/// Decoders collect a message's members this way in one pass and interpret them afterwards, so
/// member order is never relied on.
macro_rules! member_slots {
    ($(#[$meta:meta])* struct $name:ident { $($field:ident: $key:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Default)]
        struct $name<'a> {
            $($field: Option<$crate::json::Value<'a>>,)*
        }

        impl<'a> $name<'a> {
            /// Stores `value` in the slot of `key`, if it has one.
            #[inline(always)]
            fn set(&mut self, key: &[u8], value: $crate::json::Value<'a>) {
                let slot = match key {
                    $($key => &mut self.$field,)*
                    _ => return,
                };
                *slot = Some(value);
            }
        }
    };
}
pub(crate) use member_slots;

/// The slots `S` (a [`member_slots!`] struct) filled from the members of the object `obj` by
/// `set` (its `S::set`).
///
/// # Errors
/// [`DecodeError::Json`] when `obj` is not a well-formed object.
#[inline]
pub(crate) fn read_slots<'a, S: Default>(
    obj: &'a [u8],
    set: impl Fn(&mut S, &'a [u8], Value<'a>),
) -> Result<S, DecodeError> {
    let mut slots = S::default();
    Members::new(obj).members_until(None, |key, value| set(&mut slots, key, value))?;
    Ok(slots)
}

/// Calls `each` with the slots `S` (a [`member_slots!`] struct, filled by `set`) of every
/// element of the required array `data` (named `field`), each of which must be an object: the
/// `data` member of Bybit trades and of every OKX message. Each object is read in the same pass
/// as the array, once.
///
/// # Errors
/// [`DecodeError::MissingField`] / [`DecodeError::WrongType`] naming `field` when `data` is
/// absent, not an array or holds something else than objects; whatever `each` returns.
#[inline]
pub(crate) fn for_each_object<'a, S: Default>(
    data: Option<Value<'a>>,
    field: &'static str,
    set: impl Fn(&mut S, &'a [u8], Value<'a>),
    mut each: impl FnMut(S) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let Value::Array(array) = required(data, field)? else {
        return Err(DecodeError::WrongType(field));
    };
    let mut elements = Elements::new(array);
    while elements.advance()? {
        let Some(mut obj) = elements.enter_object()? else {
            return Err(DecodeError::WrongType(field));
        };
        let mut slots = S::default();
        obj.members_until(None, |key, value| set(&mut slots, key, value))?;
        elements.resume_object(&obj)?;
        each(slots)?;
    }
    Ok(())
}

/// What a decoder needs of a tracked symbol.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Inst {
    /// The engine's id.
    pub(crate) id: InstrumentId,
    /// Price scale.
    pub(crate) px: Scale,
    /// Quantity scale.
    pub(crate) qty: Scale,
}

/// The tracked instrument spelled `symbol`, learning it in learning mode.
#[inline]
pub(crate) fn lookup(symbols: &mut SymbolTable, symbol: &[u8]) -> Option<Inst> {
    symbols.lookup(symbol).map(|e| Inst { id: e.instrument, px: e.price_scale, qty: e.qty_scale })
}

/// An event of `inst` stamped with `recv_ns` (`decoded_ns` is the I/O thread's to set).
#[inline]
pub(crate) fn event(inst: Inst, recv_ns: u64, exch_ts_ms: u64, seq: SeqIds, body: MarketBody) -> MarketEvent {
    MarketEvent { instrument: inst.id, exch_ts_ms, recv_ns, decoded_ns: 0, seq, body }
}

/// `value`, or [`DecodeError::MissingField`] naming `field`.
#[inline]
pub(crate) fn required<'a>(value: Option<Value<'a>>, field: &'static str) -> Result<Value<'a>, DecodeError> {
    value.ok_or(DecodeError::MissingField(field))
}

/// A required JSON integer as a `u64`.
#[inline]
pub(crate) fn req_u64(value: Option<Value<'_>>, field: &'static str) -> Result<u64, DecodeError> {
    required(value, field)?.u64(field)
}

/// A required string of digits (`"1597026383085"`) as a `u64`.
#[inline]
pub(crate) fn req_str_u64(value: Option<Value<'_>>, field: &'static str) -> Result<u64, DecodeError> {
    parse_u64(required(value, field)?.str(field)?, field)
}

/// A required price string at `scale`.
#[inline]
pub(crate) fn req_px(value: Option<Value<'_>>, field: &'static str, scale: Scale) -> Result<Px, DecodeError> {
    px(required(value, field)?.str(field)?, field, scale)
}

/// A required quantity string at `scale`.
#[inline]
pub(crate) fn req_qty(value: Option<Value<'_>>, field: &'static str, scale: Scale) -> Result<Qty, DecodeError> {
    qty(required(value, field)?.str(field)?, field, scale)
}

/// A required funding-rate string at [`RATE_SCALE`] (see [`rate`]).
#[inline]
pub(crate) fn req_rate(value: Option<Value<'_>>, field: &'static str) -> Result<Rate, DecodeError> {
    rate(required(value, field)?.str(field)?, field)
}

/// A price string at `scale`, exactly.
#[inline]
pub(crate) fn px(s: &[u8], field: &'static str, scale: Scale) -> Result<Px, DecodeError> {
    Px::parse(s, scale).map_err(|source| DecodeError::BadNumber { field, source })
}

/// A quantity string at `scale`, exactly.
#[inline]
pub(crate) fn qty(s: &[u8], field: &'static str, scale: Scale) -> Result<Qty, DecodeError> {
    Qty::parse(s, scale).map_err(|source| DecodeError::BadNumber { field, source })
}

/// The contents of a string field that may be absent or empty (`"fundingRate": ""` on a dated
/// future): `None` for both.
///
/// # Errors
/// [`DecodeError::WrongType`] when present but not an escape-free string.
#[inline]
pub(crate) fn non_empty<'a>(value: Option<Value<'a>>, field: &'static str) -> Result<Option<&'a [u8]>, DecodeError> {
    match value {
        None => Ok(None),
        Some(v) => v.str(field).map(|s| (!s.is_empty()).then_some(s)),
    }
}

/// A funding rate at [`RATE_SCALE`], exactly: sixteen places hold every venue's digits (OKX
/// sends `"0.0001875391284828"`), so more is malformed, never rounded.
///
/// # Errors
/// [`DecodeError::BadNumber`] for anything [`Rate::parse`] refuses.
#[inline]
pub(crate) fn rate(s: &[u8], field: &'static str) -> Result<Rate, DecodeError> {
    Rate::parse(s, RATE_SCALE).map_err(|source| DecodeError::BadNumber { field, source })
}

/// How a venue spells one price level: an array of strings, price and quantity first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LevelShape {
    /// Strings in a level: price, quantity, then `width - 2` this crate does not use (OKX's
    /// deprecated liquidated-orders count and its order count).
    width: usize,
    /// Refuse a level at its first element past `width` (Binance) rather than read every
    /// element, each a string, before counting them (Bybit, OKX). The two differ only in which
    /// error a level that is too long and malformed further on gets.
    stop_at_extra: bool,
}

impl LevelShape {
    /// Binance's `["price","qty"]`: a third element is refused as soon as it is read.
    pub(crate) const PAIR: Self = Self { width: 2, stop_at_extra: true };
}

impl From<usize> for LevelShape {
    /// `width` strings, all read before their count is checked.
    #[inline]
    fn from(width: usize) -> Self {
        Self { width, stop_at_extra: false }
    }
}

/// Calls `sink` with every level of the array `levels`, in message order. Each level is an
/// array of strings of the venue's `shape` (a width: price, quantity, then `width - 2` strings
/// this crate does not use).
///
/// # Errors
/// [`DecodeError::WrongType`] naming `field` when `levels` is not an array of such arrays,
/// [`DecodeError::BadNumber`] for a price or quantity that is not an exact non-negative decimal
/// at its scale (a negative size is refused here, not deleted).
#[inline]
pub(crate) fn for_each_level(
    levels: Value<'_>,
    field: &'static str,
    shape: impl Into<LevelShape>,
    inst: Inst,
    mut sink: impl FnMut(Level),
) -> Result<(), DecodeError> {
    let LevelShape { width, stop_at_extra } = shape.into();
    let Value::Array(array) = levels else {
        return Err(DecodeError::WrongType(field));
    };
    // The scanner validated `array` when it returned it: walk it again for shape only.
    for_each_string_row(array, width, stop_at_extra, DecodeError::WrongType(field), |price, size| {
        sink(Level { px: px(price, field, inst.px)?, qty: qty(size, field, inst.qty)? });
        Ok(())
    })
}

/// The first level of `levels` (validating them all), or a zero level when the side is empty.
#[inline]
pub(crate) fn best_level(
    levels: Value<'_>,
    field: &'static str,
    shape: impl Into<LevelShape>,
    inst: Inst,
) -> Result<Level, DecodeError> {
    let mut best = None;
    for_each_level(levels, field, shape, inst, |l| {
        best.get_or_insert(l);
    })?;
    Ok(best.unwrap_or_default())
}

/// Packs the levels of one book message into consecutive [`BookChunk`] events.
///
/// Every chunk is a copy of `template` with its own body, so all chunks of a message carry the
/// same instrument, times and sequence ids; the first is marked `first`, the last `last`, and a
/// message without levels still yields one empty chunk so its sequence ids reach the book.
pub(crate) struct BookWriter<'o> {
    out: &'o mut Vec<MarketEvent>,
    template: MarketEvent,
    chunk: BookChunk,
    emitted: bool,
}

impl<'o> BookWriter<'o> {
    /// A writer appending `kind` chunks to `out`.
    #[inline]
    pub(crate) fn new(out: &'o mut Vec<MarketEvent>, template: MarketEvent, kind: BookUpdateKind) -> Self {
        Self { out, template, chunk: BookChunk::new(kind), emitted: false }
    }

    /// Adds one level; `Side::Buy` is a bid, `Side::Sell` an ask.
    #[inline]
    pub(crate) fn push(&mut self, side: Side, level: Level) {
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
    pub(crate) fn finish(mut self) {
        self.flush(true);
    }
}

/// Writes a whole book message: the bids, then the asks, each side in message order, as chunks
/// copied from `template`. Levels are spelled as `shape` says (see [`for_each_level`]).
///
/// # Errors
/// As [`for_each_level`]; chunks already written stay in `out` for the caller to truncate.
#[inline]
pub(crate) fn write_book(
    out: &mut Vec<MarketEvent>,
    template: MarketEvent,
    kind: BookUpdateKind,
    inst: Inst,
    shape: impl Into<LevelShape>,
    (bids, bids_field): (Value<'_>, &'static str),
    (asks, asks_field): (Value<'_>, &'static str),
) -> Result<(), DecodeError> {
    let shape = shape.into();
    let mut writer = BookWriter::new(out, template, kind);
    for_each_level(bids, bids_field, shape, inst, |l| writer.push(Side::Buy, l))?;
    for_each_level(asks, asks_field, shape, inst, |l| writer.push(Side::Sell, l))?;
    writer.finish();
    Ok(())
}

/// The body of every venue's [`FeedDecoder::decode`](crate::feed::FeedDecoder::decode): runs
/// `decode_frame` on `out` and truncates `out` back to where it was unless the frame was
/// [`FrameKind::Market`], so a frame that fails never leaves half its events behind.
#[inline]
pub(crate) fn decode_market(
    out: &mut Vec<MarketEvent>,
    decode_frame: impl FnOnce(&mut Vec<MarketEvent>) -> Result<FrameKind, DecodeError>,
) -> Result<FrameKind, DecodeError> {
    let start = out.len();
    let result = decode_frame(out);
    if result != Ok(FrameKind::Market) {
        out.truncate(start);
    }
    result
}

/// Runs `parse` into `bids` and `asks`, which are cleared first and cleared again when it
/// fails: a REST book snapshot fills both or leaves both empty. Off the hot path; it allocates
/// only when the vectors must grow.
pub(crate) fn parse_levels_into<T, E>(
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
    parse: impl FnOnce(&mut Vec<Level>, &mut Vec<Level>) -> Result<T, E>,
) -> Result<T, E> {
    bids.clear();
    asks.clear();
    let result = parse(bids, asks);
    if result.is_err() {
        bids.clear();
        asks.clear();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbar_engine::fixed::FixedError;

    #[test]
    fn rates_are_exact_at_sixteen_places() {
        let r = |s: &str| rate(s.as_bytes(), "r");
        assert_eq!(r("-0.005"), Ok(Rate(-50_000_000_000_000)));
        assert_eq!(r("0.0001875391284828"), Ok(Rate(1_875_391_284_828)));
        assert_eq!(r("0.0000000000000001"), Ok(Rate(1)));
        let bad = |source| Err(DecodeError::BadNumber { field: "r", source });
        assert_eq!(r("0.00000000000000001"), bad(FixedError::TooManyDecimals { scale: 16 }));
        assert_eq!(r("1e-4"), bad(FixedError::Exponent));
    }

    #[test]
    fn levels_must_have_the_venue_width() {
        let inst = Inst { id: InstrumentId(0), px: Scale::new(2).unwrap(), qty: Scale::new(0).unwrap() };
        let levels = |s: &'static str| Value::Array(s.as_bytes());
        let mut got = Vec::new();
        assert_eq!(for_each_level(levels(r#"[["1.5","2","0","1"]]"#), "b", 4, inst, |l| got.push(l)), Ok(()));
        assert_eq!(got, [Level { px: Px(150), qty: Qty(2) }]);
        let wrong = Err(DecodeError::WrongType("b"));
        assert_eq!(for_each_level(levels(r#"[["1.5","2","0"]]"#), "b", 4, inst, |_| {}), wrong);
        assert_eq!(for_each_level(levels(r#"[["1.5","2","0"]]"#), "b", 2, inst, |_| {}), wrong);
        assert_eq!(for_each_level(levels(r#"[["1.5","2",0,"1"]]"#), "b", 4, inst, |_| {}), wrong);
        assert_eq!(best_level(levels("[]"), "b", 2, inst), Ok(Level::default()));
        assert_eq!(
            best_level(levels(r#"[["2","1"],["1","1"]]"#), "b", 2, inst),
            Ok(Level { px: Px(200), qty: Qty(1) })
        );
    }
}
