//! The Bybit frame decoder proper: one pass over the top-level object collects its members, the
//! topic decides what the `data` member holds, and a second walk over `data` writes the events.
//!
//! Field order is never relied on: every member is stored in a slot by key (the last duplicate
//! wins) and a message is interpreted only after its object has been read and validated whole.

use crossbar_engine::event::{
    BookChunk, BookUpdateKind, Funding, MarketBody, MarketEvent, Quote, SeqIds, Side, Trade, TradeId,
};
use crossbar_engine::fixed::{Px, REFERENCE_SCALE};

use crate::feed::{DecodeError, FrameKind, SymbolTable};
use crate::json::{Value, parse_u64};
use crate::wire::{
    Inst, best_level, event, for_each_object, lookup, member_slots, non_empty, px, qty, rate, read_slots, req_px,
    req_qty, req_u64, required, write_book,
};

/// Bybit levels are `[price, size]`.
const LEVEL_WIDTH: usize = 2;

member_slots! {
    /// The top-level members this decoder reads.
    struct Top {
        topic: b"topic",
        kind: b"type",
        ts: b"ts",
        data: b"data",
        op: b"op",
        success: b"success",
        ret_msg: b"ret_msg",
    }
}

member_slots! {
    /// The members of an `orderbook` message's `data` this decoder reads.
    struct BookFields {
        bids: b"b",
        asks: b"a",
        update_id: b"u",
    }
}

member_slots! {
    /// The members of one `publicTrade` element this decoder reads.
    struct TradeFields {
        time: b"T",
        side: b"S",
        size: b"v",
        price: b"p",
        id: b"i",
    }
}

member_slots! {
    /// The members of a `tickers` message's `data` this decoder reads.
    struct TickerFields {
        bid_px: b"bid1Price",
        bid_qty: b"bid1Size",
        ask_px: b"ask1Price",
        ask_qty: b"ask1Size",
        mark: b"markPrice",
        index: b"indexPrice",
        funding_rate: b"fundingRate",
        next_funding: b"nextFundingTime",
    }
}

/// What a topic carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channel {
    /// `orderbook.{depth}.{symbol}`; `level1` for depth 1.
    Book { level1: bool },
    /// `publicTrade.{symbol}`.
    Trades,
    /// `tickers.{symbol}`.
    Tickers,
}

/// `(head, tail)` around the first `.`.
#[inline]
fn split_dot(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&c| c == b'.')?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// The channel and symbol of a topic; `None` for a topic this decoder does not read.
#[inline]
fn route(topic: &[u8]) -> Option<(Channel, &[u8])> {
    let (name, rest) = split_dot(topic)?;
    let (channel, symbol) = match name {
        b"orderbook" => {
            let (depth, symbol) = split_dot(rest)?;
            if depth.is_empty() || !depth.iter().all(u8::is_ascii_digit) {
                return None;
            }
            (Channel::Book { level1: depth == b"1" }, symbol)
        }
        b"publicTrade" => (Channel::Trades, rest),
        b"tickers" => (Channel::Tickers, rest),
        _ => return None,
    };
    (!symbol.is_empty()).then_some((channel, symbol))
}

/// Decodes one frame, appending its events to `out`. The caller truncates `out` back unless
/// this returns `Ok(FrameKind::Market)`.
pub(super) fn decode_frame(
    symbols: &mut SymbolTable,
    frame: &[u8],
    recv_ns: u64,
    out: &mut Vec<MarketEvent>,
) -> Result<FrameKind, DecodeError> {
    let top = read_slots(frame, Top::set)?;
    let Some(topic) = top.topic else {
        return control(&top);
    };
    let Some((channel, symbol)) = route(topic.str("topic")?) else {
        return Ok(FrameKind::Unknown);
    };
    let Some(inst) = lookup(symbols, symbol) else {
        return Ok(FrameKind::UnknownSymbol);
    };
    match channel {
        Channel::Book { level1 } => book(&top, inst, level1, recv_ns, out)?,
        Channel::Trades => trades(&top, inst, recv_ns, out)?,
        Channel::Tickers => ticker(&top, inst, recv_ns, out)?,
    }
    Ok(FrameKind::Market)
}

/// A frame without a topic: replies to our requests.
fn control(top: &Top<'_>) -> Result<FrameKind, DecodeError> {
    let op = top.op.map(|v| v.str("op")).transpose()?;
    let pong_msg = matches!(top.ret_msg, Some(Value::Str(b"pong")));
    Ok(match op {
        // Derivatives answer `{"op":"pong",..}`, spot `{"op":"ping","ret_msg":"pong",..}`.
        Some(b"pong") => FrameKind::Pong,
        _ if pong_msg => FrameKind::Pong,
        Some(b"subscribe") if top.success == Some(Value::Bool(true)) => FrameKind::SubscribeAck,
        // A refused subscription (`"success":false`), our own requests echoed, anything else.
        _ => FrameKind::Unknown,
    })
}

/// The `data` member as an object.
#[inline]
fn data_object<'a>(top: &Top<'a>) -> Result<&'a [u8], DecodeError> {
    match required(top.data, "data")? {
        Value::Object(obj) => Ok(obj),
        _ => Err(DecodeError::WrongType("data")),
    }
}

/// `orderbook.{depth}.{symbol}`: book chunks, or a quote for a level-1 snapshot.
fn book(top: &Top<'_>, inst: Inst, level1: bool, recv_ns: u64, out: &mut Vec<MarketEvent>) -> Result<(), DecodeError> {
    let kind = match required(top.kind, "type")?.str("type")? {
        b"snapshot" => BookUpdateKind::Snapshot,
        b"delta" => BookUpdateKind::Delta,
        _ => return Err(DecodeError::WrongType("type")),
    };
    let exch_ts = req_u64(top.ts, "ts")?;
    let f = read_slots(data_object(top)?, BookFields::set)?;
    let seq = SeqIds { first: 0, last: req_u64(f.update_id, "u")?, prev: 0 };
    let (bids, asks) = (required(f.bids, "b")?, required(f.asks, "a")?);
    if level1 && kind == BookUpdateKind::Snapshot {
        let bid = best_level(bids, "b", LEVEL_WIDTH, inst)?;
        let ask = best_level(asks, "a", LEVEL_WIDTH, inst)?;
        let quote = Quote { bid_px: bid.px, bid_qty: bid.qty, ask_px: ask.px, ask_qty: ask.qty };
        out.push(event(inst, recv_ns, exch_ts, seq, MarketBody::Quote(quote)));
        return Ok(());
    }
    let template = event(inst, recv_ns, exch_ts, seq, MarketBody::Book(BookChunk::new(kind)));
    write_book(out, template, kind, inst, LEVEL_WIDTH, (bids, "b"), (asks, "a"))
}

/// `publicTrade.{symbol}`: one trade event per element of `data`.
fn trades(top: &Top<'_>, inst: Inst, recv_ns: u64, out: &mut Vec<MarketEvent>) -> Result<(), DecodeError> {
    for_each_object(top.data, "data", TradeFields::set, |f| {
        let exch_ts = req_u64(f.time, "T")?;
        let aggressor = match required(f.side, "S")?.str("S")? {
            b"Buy" => Side::Buy,
            b"Sell" => Side::Sell,
            _ => return Err(DecodeError::WrongType("S")),
        };
        let trade_id = TradeId::from_bytes(required(f.id, "i")?.str("i")?).ok_or(DecodeError::WrongType("i"))?;
        let trade =
            Trade { px: req_px(f.price, "p", inst.px)?, qty: req_qty(f.size, "v", inst.qty)?, aggressor, trade_id };
        out.push(event(inst, recv_ns, exch_ts, SeqIds::default(), MarketBody::Trade(trade)));
        Ok(())
    })
}

/// `tickers.{symbol}`: a quote when the four best bid/ask fields are all given, then a funding
/// event when both the rate and the next funding time are. Every field that is present is
/// validated either way; absent and empty fields are the same thing.
fn ticker(top: &Top<'_>, inst: Inst, recv_ns: u64, out: &mut Vec<MarketEvent>) -> Result<(), DecodeError> {
    let exch_ts = req_u64(top.ts, "ts")?;
    let TickerFields { bid_px, bid_qty, ask_px, ask_qty, mark, index, funding_rate, next_funding } =
        read_slots(data_object(top)?, TickerFields::set)?;
    let bid_px = non_empty(bid_px, "bid1Price")?.map(|s| px(s, "bid1Price", inst.px)).transpose()?;
    let bid_qty = non_empty(bid_qty, "bid1Size")?.map(|s| qty(s, "bid1Size", inst.qty)).transpose()?;
    let ask_px = non_empty(ask_px, "ask1Price")?.map(|s| px(s, "ask1Price", inst.px)).transpose()?;
    let ask_qty = non_empty(ask_qty, "ask1Size")?.map(|s| qty(s, "ask1Size", inst.qty)).transpose()?;
    let mark = non_empty(mark, "markPrice")?.map(|s| px(s, "markPrice", REFERENCE_SCALE)).transpose()?;
    let index = non_empty(index, "indexPrice")?.map(|s| px(s, "indexPrice", REFERENCE_SCALE)).transpose()?;
    let funding_rate = non_empty(funding_rate, "fundingRate")?.map(|s| rate(s, "fundingRate")).transpose()?;
    let next_funding =
        non_empty(next_funding, "nextFundingTime")?.map(|s| parse_u64(s, "nextFundingTime")).transpose()?;
    if let (Some(bid_px), Some(bid_qty), Some(ask_px), Some(ask_qty)) = (bid_px, bid_qty, ask_px, ask_qty) {
        let quote = Quote { bid_px, bid_qty, ask_px, ask_qty };
        out.push(event(inst, recv_ns, exch_ts, SeqIds::default(), MarketBody::Quote(quote)));
    }
    if let (Some(rate), Some(next_funding_ms)) = (funding_rate, next_funding) {
        let funding =
            Funding { mark_px: mark.unwrap_or(Px(0)), index_px: index.unwrap_or(Px(0)), rate, next_funding_ms };
        out.push(event(inst, recv_ns, exch_ts, SeqIds::default(), MarketBody::Funding(funding)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_route_to_channels() {
        assert_eq!(route(b"orderbook.50.BTCUSDT"), Some((Channel::Book { level1: false }, &b"BTCUSDT"[..])));
        assert_eq!(route(b"orderbook.1.BTCUSDT"), Some((Channel::Book { level1: true }, &b"BTCUSDT"[..])));
        assert_eq!(route(b"publicTrade.BTCUSDT"), Some((Channel::Trades, &b"BTCUSDT"[..])));
        assert_eq!(route(b"tickers.BTC-26DEC25"), Some((Channel::Tickers, &b"BTC-26DEC25"[..])));
        for topic in
            ["orderbook.x.BTCUSDT", "orderbook..BTCUSDT", "orderbook.50", "orderbook.50.", "tickers.", "kline.1.X", ""]
        {
            assert_eq!(route(topic.as_bytes()), None, "{topic}");
        }
    }
}
