//! The Binance frame decoder proper: one pass over the frame collects the fields, then the
//! message kind decides which of them become an event.
//!
//! Field order is never relied on: every member is stored in a slot by key (the last duplicate
//! wins) and the message is interpreted after the object has been read and validated whole.

use crossbar_engine::event::{
    BookChunk, BookUpdateKind, Funding, MarketBody, MarketEvent, Quote, SeqIds, Side, Trade, TradeId,
};
use crossbar_engine::fixed::{Px, Qty, RATE_SCALE, REFERENCE_SCALE, Rate, Scale};
use crossbar_engine::instrument::InstrumentId;

use super::BinanceMarket;
use super::depth::{BookWriter, for_each_level};
use crate::feed::{DecodeError, FrameKind, SymbolTable};
use crate::json::{Members, Value};

/// Longest symbol taken from a stream name; Binance symbols are far shorter.
const MAX_SYMBOL: usize = 32;

/// The members of one payload this decoder may read, by key. Keys are case-sensitive: `e`
/// (event type) and `E` (event time) are different fields.
#[derive(Default)]
struct Fields<'a> {
    e: Option<Value<'a>>,
    event_time: Option<Value<'a>>,
    tx_time: Option<Value<'a>>,
    s: Option<Value<'a>>,
    u: Option<Value<'a>>,
    first_id: Option<Value<'a>>,
    pu: Option<Value<'a>>,
    b: Option<Value<'a>>,
    bid_qty: Option<Value<'a>>,
    a: Option<Value<'a>>,
    ask_qty: Option<Value<'a>>,
    p: Option<Value<'a>>,
    q: Option<Value<'a>>,
    m: Option<Value<'a>>,
    t: Option<Value<'a>>,
    i: Option<Value<'a>>,
    r: Option<Value<'a>>,
    last_update_id: Option<Value<'a>>,
    bids: Option<Value<'a>>,
    asks: Option<Value<'a>>,
    result: Option<Value<'a>>,
    id: Option<Value<'a>>,
}

impl<'a> Fields<'a> {
    #[inline(always)]
    fn set(&mut self, key: &[u8], value: Value<'a>) {
        let slot = match key {
            b"e" => &mut self.e,
            b"E" => &mut self.event_time,
            b"T" => &mut self.tx_time,
            b"s" => &mut self.s,
            b"u" => &mut self.u,
            b"U" => &mut self.first_id,
            b"pu" => &mut self.pu,
            b"b" => &mut self.b,
            b"B" => &mut self.bid_qty,
            b"a" => &mut self.a,
            b"A" => &mut self.ask_qty,
            b"p" => &mut self.p,
            b"q" => &mut self.q,
            b"m" => &mut self.m,
            b"t" => &mut self.t,
            b"i" => &mut self.i,
            b"r" => &mut self.r,
            b"lastUpdateId" => &mut self.last_update_id,
            b"bids" => &mut self.bids,
            b"asks" => &mut self.asks,
            b"result" => &mut self.result,
            b"id" => &mut self.id,
            _ => return,
        };
        *slot = Some(value);
    }

    /// Venue time: `T` (transaction time) if present, else `E` (event time), else 0.
    #[inline]
    fn exch_ts(&self) -> Result<u64, DecodeError> {
        match (self.tx_time, self.event_time) {
            (Some(t), _) => t.u64("T"),
            (None, Some(e)) => e.u64("E"),
            (None, None) => Ok(0),
        }
    }
}

#[inline]
fn required<'a>(value: Option<Value<'a>>, field: &'static str) -> Result<Value<'a>, DecodeError> {
    value.ok_or(DecodeError::MissingField(field))
}

#[inline]
fn req_u64(value: Option<Value<'_>>, field: &'static str) -> Result<u64, DecodeError> {
    required(value, field)?.u64(field)
}

#[inline]
fn req_px(value: Option<Value<'_>>, field: &'static str, scale: Scale) -> Result<Px, DecodeError> {
    let s = required(value, field)?.str(field)?;
    Px::parse(s, scale).map_err(|source| DecodeError::BadNumber { field, source })
}

#[inline]
fn req_qty(value: Option<Value<'_>>, field: &'static str, scale: Scale) -> Result<Qty, DecodeError> {
    let s = required(value, field)?.str(field)?;
    Qty::parse(s, scale).map_err(|source| DecodeError::BadNumber { field, source })
}

#[inline]
fn req_rate(value: Option<Value<'_>>, field: &'static str) -> Result<Rate, DecodeError> {
    let s = required(value, field)?.str(field)?;
    Rate::parse(s, RATE_SCALE).map_err(|source| DecodeError::BadNumber { field, source })
}

/// What the decoder needs of a tracked symbol.
#[derive(Clone, Copy)]
struct Inst {
    id: InstrumentId,
    px: Scale,
    qty: Scale,
}

/// Per-frame context.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    market: BinanceMarket,
    recv_ns: u64,
    /// The combined-stream name, when the payload came wrapped.
    stream: Option<&'a [u8]>,
}

impl Ctx<'_> {
    #[inline]
    fn event(&self, inst: Inst, exch_ts_ms: u64, seq: SeqIds, body: MarketBody) -> MarketEvent {
        MarketEvent { instrument: inst.id, exch_ts_ms, recv_ns: self.recv_ns, decoded_ns: 0, seq, body }
    }
}

#[inline]
fn lookup(symbols: &mut SymbolTable, symbol: &[u8]) -> Option<Inst> {
    symbols.lookup(symbol).map(|e| Inst { id: e.instrument, px: e.price_scale, qty: e.qty_scale })
}

/// The instrument named by the payload's `s`; `None` when it is not tracked.
#[inline]
fn instrument(symbols: &mut SymbolTable, f: &Fields<'_>) -> Result<Option<Inst>, DecodeError> {
    let symbol = required(f.s, "s")?.str("s")?;
    Ok(lookup(symbols, symbol))
}

/// Decodes one frame, appending its events to `out`. The caller truncates `out` back unless
/// this returns `Ok(FrameKind::Market)`.
pub(super) fn decode_frame(
    market: BinanceMarket,
    symbols: &mut SymbolTable,
    frame: &[u8],
    recv_ns: u64,
    out: &mut Vec<MarketEvent>,
) -> Result<FrameKind, DecodeError> {
    let mut top = Members::new(frame);
    let mut f = Fields::default();
    let mut stream = None;
    let mut wrapped = false;
    let mut data_not_object = false;
    while let Some(key) = top.next_key()? {
        match key {
            b"stream" => stream = Some(top.value()?),
            b"data" => {
                if let Some(mut data) = top.enter_object()? {
                    // A combined-stream wrapper: the payload is `data`, read in this same pass.
                    // Top-level members seen before it are dropped, those after it ignored.
                    f = Fields::default();
                    while let Some(key) = data.next_key()? {
                        let value = data.value()?;
                        f.set(key, value);
                    }
                    top.resume(&data)?;
                    wrapped = true;
                } else {
                    top.value()?;
                    data_not_object = true;
                }
            }
            _ => {
                let value = top.value()?;
                if !wrapped {
                    f.set(key, value);
                }
            }
        }
    }
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
    let ctx = Ctx { market, recv_ns, stream };
    decode_payload(ctx, symbols, &f, out)
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
    match f.e {
        Some(Value::Str(kind)) => match kind {
            b"bookTicker" => book_ticker(ctx, symbols, f, out),
            b"depthUpdate" => depth_update(ctx, symbols, f, out),
            b"aggTrade" => trade(ctx, symbols, f, ("a", f.a), out),
            b"trade" => trade(ctx, symbols, f, ("t", f.t), out),
            b"markPriceUpdate" => mark_price(ctx, symbols, f, out),
            b"serverShutdown" => Ok(FrameKind::ServerShutdown),
            _ => Ok(FrameKind::Unknown),
        },
        Some(_) => Err(DecodeError::WrongType("e")),
        // Spot partial depth and spot book ticker carry no event type: tell them by shape.
        None if f.last_update_id.is_some() => partial_depth(ctx, symbols, f, out),
        None if f.u.is_some() => book_ticker(ctx, symbols, f, out),
        None if f.result == Some(Value::Null) && f.id.is_some() => Ok(FrameKind::SubscribeAck),
        None => Ok(FrameKind::Unknown),
    }
}

/// `bookTicker`: best bid and ask.
fn book_ticker(
    ctx: Ctx<'_>,
    symbols: &mut SymbolTable,
    f: &Fields<'_>,
    out: &mut Vec<MarketEvent>,
) -> Result<FrameKind, DecodeError> {
    let Some(inst) = instrument(symbols, f)? else {
        return Ok(FrameKind::UnknownSymbol);
    };
    let last = req_u64(f.u, "u")?;
    let quote = Quote {
        bid_px: req_px(f.b, "b", inst.px)?,
        bid_qty: req_qty(f.bid_qty, "B", inst.qty)?,
        ask_px: req_px(f.a, "a", inst.px)?,
        ask_qty: req_qty(f.ask_qty, "A", inst.qty)?,
    };
    let exch_ts = f.exch_ts()?;
    let seq = SeqIds { first: 0, last, prev: 0 };
    out.push(ctx.event(inst, exch_ts, seq, MarketBody::Quote(quote)));
    Ok(FrameKind::Market)
}

/// `depthUpdate`: a diff (or, on a USD-M `<symbol>@depth<N>` stream, a partial book).
fn depth_update(
    ctx: Ctx<'_>,
    symbols: &mut SymbolTable,
    f: &Fields<'_>,
    out: &mut Vec<MarketEvent>,
) -> Result<FrameKind, DecodeError> {
    let Some(inst) = instrument(symbols, f)? else {
        return Ok(FrameKind::UnknownSymbol);
    };
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
    let template = ctx.event(inst, exch_ts, SeqIds { first, last, prev }, MarketBody::Book(BookChunk::new(kind)));
    write_book(out, template, kind, inst, (bids, "b"), (asks, "a"))?;
    Ok(FrameKind::Market)
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
    let template = ctx.event(inst, exch_ts, SeqIds { first: 0, last, prev: 0 }, MarketBody::Book(BookChunk::new(kind)));
    write_book(out, template, kind, inst, (bids, "bids"), (asks, "asks"))?;
    Ok(FrameKind::Market)
}

/// Writes the bids, then the asks, as chunks copied from `template`.
#[inline]
fn write_book(
    out: &mut Vec<MarketEvent>,
    template: MarketEvent,
    kind: BookUpdateKind,
    inst: Inst,
    (bids, bids_field): (Value<'_>, &'static str),
    (asks, asks_field): (Value<'_>, &'static str),
) -> Result<(), DecodeError> {
    let mut writer = BookWriter::new(out, template, kind);
    for_each_level(bids, bids_field, inst.px, inst.qty, |l| writer.push(Side::Buy, l))?;
    for_each_level(asks, asks_field, inst.px, inst.qty, |l| writer.push(Side::Sell, l))?;
    writer.finish();
    Ok(())
}

/// `aggTrade` (id field `a`) and `trade` (id field `t`).
fn trade(
    ctx: Ctx<'_>,
    symbols: &mut SymbolTable,
    f: &Fields<'_>,
    (id_field, id): (&'static str, Option<Value<'_>>),
    out: &mut Vec<MarketEvent>,
) -> Result<FrameKind, DecodeError> {
    let Some(inst) = instrument(symbols, f)? else {
        return Ok(FrameKind::UnknownSymbol);
    };
    let trade_id = req_u64(id, id_field)?;
    let px = req_px(f.p, "p", inst.px)?;
    let qty = req_qty(f.q, "q", inst.qty)?;
    // `m`: the buyer was the maker, so the taker sold.
    let buyer_is_maker = required(f.m, "m")?.bool("m")?;
    let exch_ts = req_u64(f.tx_time, "T")?;
    let aggressor = if buyer_is_maker { Side::Sell } else { Side::Buy };
    let body = MarketBody::Trade(Trade { px, qty, aggressor, trade_id: TradeId::from_u64(trade_id) });
    out.push(ctx.event(inst, exch_ts, SeqIds::default(), body));
    Ok(FrameKind::Market)
}

/// USD-M `markPriceUpdate`: mark, index, funding rate and next funding time. Its `T` is the
/// next funding time, so the event time is `E`.
fn mark_price(
    ctx: Ctx<'_>,
    symbols: &mut SymbolTable,
    f: &Fields<'_>,
    out: &mut Vec<MarketEvent>,
) -> Result<FrameKind, DecodeError> {
    let Some(inst) = instrument(symbols, f)? else {
        return Ok(FrameKind::UnknownSymbol);
    };
    let funding = Funding {
        mark_px: req_px(f.p, "p", REFERENCE_SCALE)?,
        index_px: req_px(f.i, "i", REFERENCE_SCALE)?,
        rate: req_rate(f.r, "r")?,
        next_funding_ms: req_u64(f.tx_time, "T")?,
    };
    let exch_ts = req_u64(f.event_time, "E")?;
    out.push(ctx.event(inst, exch_ts, SeqIds::default(), MarketBody::Funding(funding)));
    Ok(FrameKind::Market)
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
