//! The Binance frame decoder proper: one pass over the frame collects the fields, then the
//! message kind decides which of them become an event.
//!
//! Field order is never relied on: every member is stored in a slot by key (the last duplicate
//! wins) and the message is interpreted after the object has been read and validated whole.

use crossbar_engine::event::{
    BookChunk, BookUpdateKind, Funding, Level, MarketBody, MarketEvent, Quote, SeqIds, Side, Trade, TradeId,
};
use crossbar_engine::fixed::{Px, Qty, REFERENCE_SCALE};

use super::BinanceMarket;
use super::depth::exch_ts;
use crate::feed::{DecodeError, FrameKind, SymbolTable};
use crate::json::{Members, PairLog, Value, compact_members, compact_str};
use crate::wire::{
    BookWriter, Inst, LevelShape, event, lookup, member_slots, req_px, req_qty, req_rate, req_u64, required, write_book,
};

/// Longest symbol taken from a stream name; Binance symbols are far shorter.
const MAX_SYMBOL: usize = 32;

member_slots! {
    /// The members of one payload this decoder may read, by key. Keys are case-sensitive: `e`
    /// (event type) and `E` (event time) are different fields.
    struct Fields {
        e: b"e",
        event_time: b"E",
        tx_time: b"T",
        s: b"s",
        u: b"u",
        first_id: b"U",
        pu: b"pu",
        b: b"b",
        bid_qty: b"B",
        a: b"a",
        ask_qty: b"A",
        p: b"p",
        q: b"q",
        m: b"m",
        t: b"t",
        i: b"i",
        r: b"r",
        last_update_id: b"lastUpdateId",
        bids: b"bids",
        asks: b"asks",
        result: b"result",
        id: b"id",
    }
}

impl Fields<'_> {
    /// Venue time: `T` (transaction time) if present, else `E` (event time), else 0.
    #[inline]
    fn exch_ts(&self) -> Result<u64, DecodeError> {
        exch_ts(self.tx_time, self.event_time)
    }
}

/// Per-frame context.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    market: BinanceMarket,
    recv_ns: u64,
    /// The combined-stream name, when the payload came wrapped.
    stream: Option<&'a [u8]>,
    /// The book levels the fast pass kept, when it took the frame.
    levels: Option<Levels<'a>>,
}

/// The book-level rows the fast pass kept while it validated them, read instead of walking
/// the arrays again.
#[derive(Clone, Copy)]
struct Levels<'a> {
    frame: &'a [u8],
    log: &'a PairLog,
}

/// The instrument named by the payload's `s`; `None` when it is not tracked.
#[inline]
fn instrument(symbols: &mut SymbolTable, f: &Fields<'_>) -> Result<Option<Inst>, DecodeError> {
    let symbol = required(f.s, "s")?.str("s")?;
    Ok(lookup(symbols, symbol))
}

/// What one pass over a frame collected: the payload's members, and the combined-stream
/// wrapper's parts when there was one.
#[derive(Default)]
struct Scan<'a> {
    f: Fields<'a>,
    /// The top-level `stream` member.
    stream: Option<Value<'a>>,
    /// A `data` object was read into `f`.
    wrapped: bool,
    /// A `data` member that is not an object.
    data_not_object: bool,
}

/// The fast pass over the compact frames Binance sends: `{"stream":"<name>","data":{...}}`
/// or a bare payload, no whitespace (see [`compact_members`]). Fills `scan` exactly as
/// [`scan_general`] would and returns true, or returns false on any other layout or any
/// defect, `scan` then to be thrown away.
#[inline(always)]
fn scan_compact<'a>(frame: &'a [u8], scan: &mut Scan<'a>, log: &mut PairLog) -> bool {
    const WRAPPER: &[u8] = br#"{"stream":"#;
    const DATA: &[u8] = br#","data":"#;
    if frame.starts_with(WRAPPER) {
        let Some((name, after)) = compact_str(frame, WRAPPER.len()) else {
            return false;
        };
        let at = after + DATA.len();
        if frame.get(after..at) != Some(DATA) {
            return false;
        }
        let f = &mut scan.f;
        let Some(end) = compact_members(frame, at, 2, Some(log), |key, value| f.set(key, value)) else {
            return false;
        };
        if frame.get(end) != Some(&b'}') || end + 1 != frame.len() {
            return false;
        }
        scan.stream = Some(Value::Str(name));
        scan.wrapped = true;
        true
    } else {
        // A bare payload; `stream` or `data` members make it a (malformed) wrapper, which the
        // general pass sorts out.
        let mut wrapper_keys = false;
        let f = &mut scan.f;
        let end = compact_members(frame, 0, 1, Some(log), |key, value| match key {
            b"stream" | b"data" => wrapper_keys = true,
            _ => f.set(key, value),
        });
        end == Some(frame.len()) && !wrapper_keys
    }
}

/// The general pass: any valid JSON layout, every defect named.
fn scan_general<'a>(frame: &'a [u8], scan: &mut Scan<'a>) -> Result<(), DecodeError> {
    let mut top = Members::new(frame);
    let Scan { f, stream, wrapped, data_not_object } = scan;
    // Members up to `data` (or the end) in one tight loop; a combined-stream wrapper's payload
    // is then read in this same pass. Top-level members seen before `data` are dropped, those
    // after it ignored.
    while top.members_until(Some(b"data"), |key, value| {
        if key == b"stream" {
            *stream = Some(value);
        } else if !*wrapped {
            f.set(key, value);
        }
    })? {
        if let Some(mut data) = top.enter_object()? {
            *f = Fields::default();
            data.members_until(None, |key, value| f.set(key, value))?;
            top.resume(&data)?;
            *wrapped = true;
        } else {
            top.value()?;
            *data_not_object = true;
        }
    }
    Ok(())
}

/// Decodes one frame, appending its events to `out`. The caller truncates `out` back unless
/// this returns `Ok(FrameKind::Market)`.
///
/// The compact layout Binance sends takes the fast pass; anything else, and every defect,
/// the general one, so the outcome is the same either way (`fast` false forces the general
/// pass, for the differential tests).
#[inline(always)]
pub(super) fn decode_frame(
    market: BinanceMarket,
    symbols: &mut SymbolTable,
    frame: &[u8],
    recv_ns: u64,
    out: &mut Vec<MarketEvent>,
    log: Option<&mut PairLog>,
) -> Result<FrameKind, DecodeError> {
    let mut scan = Scan::default();
    let mut levels = None;
    if let Some(log) = log
        && scan_compact(frame, &mut scan, log)
    {
        levels = Some(Levels { frame, log: &*log });
    }
    if levels.is_none() {
        scan = Scan::default();
        scan_general(frame, &mut scan)?;
    }
    let Scan { f, stream, wrapped, data_not_object } = &scan;
    let (stream, wrapped, data_not_object) = (*stream, *wrapped, *data_not_object);
    let stream = if wrapped || data_not_object || stream.is_some() {
        if data_not_object {
            return Err(DecodeError::WrongType("data"));
        }
        let name = required(stream, "stream")?.str("stream")?;
        if !wrapped {
            return Err(DecodeError::MissingField("data"));
        }
        Some(name)
    } else {
        None
    };
    let ctx = Ctx { market, recv_ns, stream, levels };
    decode_payload(ctx, symbols, f, out)
}

/// A payload that names its instrument in `s`, by message kind.
#[derive(Clone, Copy)]
enum Payload<'a> {
    /// `bookTicker`, or a spot book ticker told by its shape.
    BookTicker,
    /// `depthUpdate`.
    DepthUpdate,
    /// `aggTrade` (id field `a`) or `trade` (id field `t`): the id's field name and value.
    Trade(&'static str, Option<Value<'a>>),
    /// `markPriceUpdate`.
    MarkPrice,
}

fn decode_payload(
    ctx: Ctx<'_>,
    symbols: &mut SymbolTable,
    f: &Fields<'_>,
    out: &mut Vec<MarketEvent>,
) -> Result<FrameKind, DecodeError> {
    if ctx.stream == Some(b"!serverShutdown") {
        return Ok(FrameKind::ServerShutdown);
    }
    let payload = match f.e {
        Some(Value::Str(kind)) => match kind {
            b"bookTicker" => Payload::BookTicker,
            b"depthUpdate" => Payload::DepthUpdate,
            b"aggTrade" => Payload::Trade("a", f.a),
            b"trade" => Payload::Trade("t", f.t),
            b"markPriceUpdate" => Payload::MarkPrice,
            b"serverShutdown" => return Ok(FrameKind::ServerShutdown),
            _ => return Ok(FrameKind::Unknown),
        },
        Some(_) => return Err(DecodeError::WrongType("e")),
        // Spot partial depth and spot book ticker carry no event type: tell them by shape.
        None if f.last_update_id.is_some() => return partial_depth(ctx, symbols, f, out),
        None if f.u.is_some() => Payload::BookTicker,
        None if f.result == Some(Value::Null) && f.id.is_some() => return Ok(FrameKind::SubscribeAck),
        None => return Ok(FrameKind::Unknown),
    };
    let Some(inst) = instrument(symbols, f)? else {
        return Ok(FrameKind::UnknownSymbol);
    };
    match payload {
        Payload::BookTicker => book_ticker(ctx, inst, f, out)?,
        Payload::DepthUpdate => depth_update(ctx, inst, f, out)?,
        Payload::Trade(id_field, id) => trade(ctx, inst, f, (id_field, id), out)?,
        Payload::MarkPrice => mark_price(ctx, inst, f, out)?,
    }
    Ok(FrameKind::Market)
}

/// `bookTicker`: best bid and ask.
fn book_ticker(ctx: Ctx<'_>, inst: Inst, f: &Fields<'_>, out: &mut Vec<MarketEvent>) -> Result<(), DecodeError> {
    let last = req_u64(f.u, "u")?;
    let quote = Quote {
        bid_px: req_px(f.b, "b", inst.px)?,
        bid_qty: req_qty(f.bid_qty, "B", inst.qty)?,
        ask_px: req_px(f.a, "a", inst.px)?,
        ask_qty: req_qty(f.ask_qty, "A", inst.qty)?,
    };
    let exch_ts = f.exch_ts()?;
    let seq = SeqIds { first: 0, last, prev: 0 };
    out.push(event(inst, ctx.recv_ns, exch_ts, seq, MarketBody::Quote(quote)));
    Ok(())
}

/// `depthUpdate`: a diff (or, on a USD-M `<symbol>@depth<N>` stream, a partial book).
fn depth_update(ctx: Ctx<'_>, inst: Inst, f: &Fields<'_>, out: &mut Vec<MarketEvent>) -> Result<(), DecodeError> {
    let first = req_u64(f.first_id, "U")?;
    let last = req_u64(f.u, "u")?;
    let prev = match (f.pu, ctx.market) {
        (Some(pu), _) => pu.u64("pu")?,
        (None, BinanceMarket::UsdM) => return Err(DecodeError::MissingField("pu")),
        (None, BinanceMarket::Spot) => 0,
    };
    let exch_ts = f.exch_ts()?;
    let bids = required(f.b, "b")?;
    let asks = required(f.a, "a")?;
    let kind =
        if ctx.stream.is_some_and(is_partial_depth_stream) { BookUpdateKind::Snapshot } else { BookUpdateKind::Delta };
    let template =
        event(inst, ctx.recv_ns, exch_ts, SeqIds { first, last, prev }, MarketBody::Book(BookChunk::new(kind)));
    if let (Some(levels), Value::Array(b), Value::Array(a)) = (ctx.levels, bids, asks) {
        let frame = levels.frame;
        if let (Some(b), Some(a)) = (levels.log.rows(frame, b), levels.log.rows(frame, a)) {
            // Both sides were kept as pairs of strings: the same levels, parsed in the same
            // order and with the same results, as `write_book` would read from the arrays
            // (`parse_at` takes a short string as one word of the frame).
            let mut writer = BookWriter::new(out, template, kind);
            for (side, field, rows) in [(Side::Buy, "b", b), (Side::Sell, "a", a)] {
                let bad = |source| DecodeError::BadNumber { field, source };
                for [p0, p1, q0, q1] in rows {
                    let px = Px::parse_at(frame, p0, p1, inst.px).map_err(bad)?;
                    let qty = Qty::parse_at(frame, q0, q1, inst.qty).map_err(bad)?;
                    writer.push(side, Level { px, qty });
                }
            }
            writer.finish();
            return Ok(());
        }
    }
    write_book(out, template, kind, inst, LevelShape::PAIR, (bids, "b"), (asks, "a"))
}

/// Spot `<symbol>@depth<N>`: a top-N snapshot without symbol or event type; the symbol comes
/// from the combined-stream name (a raw stream cannot say whose book it is: `UnknownSymbol`).
fn partial_depth(
    ctx: Ctx<'_>,
    symbols: &mut SymbolTable,
    f: &Fields<'_>,
    out: &mut Vec<MarketEvent>,
) -> Result<FrameKind, DecodeError> {
    let mut buf = [0u8; MAX_SYMBOL];
    let Some(symbol) = ctx.stream.and_then(|s| stream_symbol(s, &mut buf)) else {
        return Ok(FrameKind::UnknownSymbol);
    };
    let Some(inst) = lookup(symbols, symbol) else {
        return Ok(FrameKind::UnknownSymbol);
    };
    let last = req_u64(f.last_update_id, "lastUpdateId")?;
    let exch_ts = f.exch_ts()?;
    let bids = required(f.bids, "bids")?;
    let asks = required(f.asks, "asks")?;
    let kind = BookUpdateKind::Snapshot;
    let template =
        event(inst, ctx.recv_ns, exch_ts, SeqIds { first: 0, last, prev: 0 }, MarketBody::Book(BookChunk::new(kind)));
    write_book(out, template, kind, inst, LevelShape::PAIR, (bids, "bids"), (asks, "asks"))?;
    Ok(FrameKind::Market)
}

/// `aggTrade` (id field `a`) and `trade` (id field `t`).
fn trade(
    ctx: Ctx<'_>,
    inst: Inst,
    f: &Fields<'_>,
    (id_field, id): (&'static str, Option<Value<'_>>),
    out: &mut Vec<MarketEvent>,
) -> Result<(), DecodeError> {
    let trade_id = req_u64(id, id_field)?;
    let px = req_px(f.p, "p", inst.px)?;
    let qty = req_qty(f.q, "q", inst.qty)?;
    // `m`: the buyer was the maker, so the taker sold.
    let buyer_is_maker = required(f.m, "m")?.bool("m")?;
    let exch_ts = req_u64(f.tx_time, "T")?;
    let aggressor = if buyer_is_maker { Side::Sell } else { Side::Buy };
    let body = MarketBody::Trade(Trade { px, qty, aggressor, trade_id: TradeId::from_u64(trade_id) });
    out.push(event(inst, ctx.recv_ns, exch_ts, SeqIds::default(), body));
    Ok(())
}

/// USD-M `markPriceUpdate`: mark, index, funding rate and next funding time. Its `T` is the
/// next funding time, so the event time is `E`.
fn mark_price(ctx: Ctx<'_>, inst: Inst, f: &Fields<'_>, out: &mut Vec<MarketEvent>) -> Result<(), DecodeError> {
    let funding = Funding {
        mark_px: req_px(f.p, "p", REFERENCE_SCALE)?,
        index_px: req_px(f.i, "i", REFERENCE_SCALE)?,
        rate: req_rate(f.r, "r")?,
        next_funding_ms: req_u64(f.tx_time, "T")?,
    };
    let exch_ts = req_u64(f.event_time, "E")?;
    out.push(event(inst, ctx.recv_ns, exch_ts, SeqIds::default(), MarketBody::Funding(funding)));
    Ok(())
}

/// The symbol of a stream name (`bnbbtc@depth5@100ms` → `BNBBTC`), uppercased into `buf`;
/// `None` when empty or longer than the buffer.
#[inline]
fn stream_symbol<'b>(stream: &[u8], buf: &'b mut [u8; MAX_SYMBOL]) -> Option<&'b [u8]> {
    let symbol = stream.split(|&c| c == b'@').next().filter(|s| !s.is_empty())?;
    let dst = buf.get_mut(..symbol.len())?;
    for (d, s) in dst.iter_mut().zip(symbol) {
        *d = s.to_ascii_uppercase();
    }
    Some(dst)
}

/// True for a partial-book stream name, `<symbol>@depth<N>[@<speed>]`.
#[inline]
fn is_partial_depth_stream(stream: &[u8]) -> bool {
    stream
        .split(|&c| c == b'@')
        .nth(1)
        .and_then(|channel| channel.strip_prefix(b"depth"))
        .is_some_and(|n| !n.is_empty() && n.iter().all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_give_symbol_and_kind() {
        let mut buf = [0u8; MAX_SYMBOL];
        assert_eq!(stream_symbol(b"bnbbtc@depth5@100ms", &mut buf), Some(&b"BNBBTC"[..]));
        assert_eq!(stream_symbol(b"btcusdt", &mut buf), Some(&b"BTCUSDT"[..]));
        assert_eq!(stream_symbol(b"@depth", &mut buf), None);
        assert_eq!(stream_symbol(&[b'a'; 33], &mut buf), None);
        assert!(is_partial_depth_stream(b"bnbbtc@depth5@100ms"));
        assert!(is_partial_depth_stream(b"btcusdt@depth20"));
        assert!(!is_partial_depth_stream(b"btcusdt@depth"));
        assert!(!is_partial_depth_stream(b"btcusdt@depth@100ms"));
        assert!(!is_partial_depth_stream(b"btcusdt@bookTicker"));
        assert!(!is_partial_depth_stream(b"depth5"));
    }
}
