//! The OKX frame decoder proper: one pass over the top-level object reads `arg` in place and
//! keeps the other members; the channel then decides what each element of `data` becomes.
//!
//! Field order is never relied on: every member is stored in a slot by key (the last duplicate
//! wins) and a message is interpreted only after its object has been read and validated whole.

use crossbar_engine::event::{
    BookChunk, BookUpdateKind, Funding, MarketBody, MarketEvent, Quote, SeqIds, Side, Trade, TradeId,
};
use crossbar_engine::fixed::{Px, Qty};

use crate::feed::{DecodeError, FrameKind, SymbolTable};
use crate::json::{Members, Value};
use crate::wire::{
    Inst, best_level, event, for_each_object, lookup, member_slots, px, qty, req_px, req_qty, req_rate, req_str_u64,
    req_u64, required, write_book,
};

/// OKX levels are `[price, size, liquidated orders (deprecated, "0"), order count]`.
const LEVEL_WIDTH: usize = 4;

/// The notice code that announces a service upgrade: the connection closes soon.
const CODE_SERVICE_UPGRADE: &[u8] = b"64008";

/// The top-level members this decoder reads; `channel` and `inst_id` come from `arg`.
#[derive(Default)]
struct Top<'a> {
    arg: bool,
    channel: Option<Value<'a>>,
    inst_id: Option<Value<'a>>,
    action: Option<Value<'a>>,
    data: Option<Value<'a>>,
    event: Option<Value<'a>>,
    code: Option<Value<'a>>,
}

impl<'a> Top<'a> {
    fn read(frame: &'a [u8]) -> Result<Self, DecodeError> {
        let mut members = Members::new(frame);
        let mut top = Self::default();
        // Members up to `arg` (or the end) in one tight loop; `arg` is read in the same pass.
        while members.members_until(Some(b"arg"), |key, value| {
            let slot = match key {
                b"action" => &mut top.action,
                b"data" => &mut top.data,
                b"event" => &mut top.event,
                b"code" => &mut top.code,
                _ => return,
            };
            *slot = Some(value);
        })? {
            let Some(mut arg) = members.enter_object()? else {
                return Err(DecodeError::WrongType("arg"));
            };
            arg.members_until(None, |key, value| match key {
                b"channel" => top.channel = Some(value),
                b"instId" => top.inst_id = Some(value),
                _ => {}
            })?;
            members.resume(&arg)?;
            top.arg = true;
        }
        Ok(top)
    }
}

/// What a channel carries, per element of `data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channel {
    /// `books`, `books-l2-tbt`, `books50-l2-tbt`: snapshot or update after `action`.
    Books,
    /// `books5`: always a whole five-level book.
    Books5,
    /// `bbo-tbt`: best bid and ask.
    Bbo,
    /// `trades`.
    Trades,
    /// `funding-rate`.
    Funding,
    /// `tickers`.
    Tickers,
}

impl Channel {
    fn of(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"books" | b"books-l2-tbt" | b"books50-l2-tbt" => Self::Books,
            b"books5" => Self::Books5,
            b"bbo-tbt" => Self::Bbo,
            b"trades" => Self::Trades,
            b"funding-rate" => Self::Funding,
            b"tickers" => Self::Tickers,
            _ => return None,
        })
    }
}

member_slots! {
    /// The members of one element of `data` this decoder may read.
    struct Fields {
        asks: b"asks",
        bids: b"bids",
        ts: b"ts",
        seq_id: b"seqId",
        prev_seq_id: b"prevSeqId",
        trade_id: b"tradeId",
        px: b"px",
        sz: b"sz",
        side: b"side",
        funding_rate: b"fundingRate",
        funding_time: b"fundingTime",
        bid_px: b"bidPx",
        bid_sz: b"bidSz",
        ask_px: b"askPx",
        ask_sz: b"askSz",
    }
}

impl Fields<'_> {
    /// `ts`: venue time in ms, a string of digits.
    #[inline]
    fn ts(&self) -> Result<u64, DecodeError> {
        req_str_u64(self.ts, "ts")
    }

    /// `prevSeqId`: 0 when absent or `-1` (a snapshot has no predecessor).
    #[inline]
    fn prev_seq_id(&self) -> Result<u64, DecodeError> {
        match self.prev_seq_id {
            None | Some(Value::Num(b"-1")) => Ok(0),
            Some(v) => v.u64("prevSeqId"),
        }
    }
}

/// Decodes one frame, appending its events to `out`. The caller truncates `out` back unless
/// this returns `Ok(FrameKind::Market)`.
pub(super) fn decode_frame(
    symbols: &mut SymbolTable,
    frame: &[u8],
    recv_ns: u64,
    out: &mut Vec<MarketEvent>,
) -> Result<FrameKind, DecodeError> {
    if frame.trim_ascii() == b"pong" {
        return Ok(FrameKind::Pong);
    }
    let top = Top::read(frame)?;
    if let Some(event) = top.event {
        return Ok(match event.str("event")? {
            b"subscribe" => FrameKind::SubscribeAck,
            b"notice" if top.code == Some(Value::Str(CODE_SERVICE_UPGRADE)) => FrameKind::ServerShutdown,
            // `error`, `unsubscribe`, `channel-conn-count`, other notices.
            _ => FrameKind::Unknown,
        });
    }
    if !top.arg {
        return Ok(FrameKind::Unknown);
    }
    let Some(channel) = Channel::of(required(top.channel, "channel")?.str("channel")?) else {
        return Ok(FrameKind::Unknown);
    };
    let Some(inst) = lookup(symbols, required(top.inst_id, "instId")?.str("instId")?) else {
        return Ok(FrameKind::UnknownSymbol);
    };
    let book_kind = match channel {
        Channel::Books => match required(top.action, "action")?.str("action")? {
            b"snapshot" => BookUpdateKind::Snapshot,
            b"update" => BookUpdateKind::Delta,
            _ => return Err(DecodeError::WrongType("action")),
        },
        _ => BookUpdateKind::Snapshot,
    };
    for_each_object(top.data, "data", Fields::set, |f| match channel {
        Channel::Books | Channel::Books5 => book(&f, inst, book_kind, recv_ns, out),
        Channel::Bbo => bbo(&f, inst, recv_ns, out),
        Channel::Trades => trade(&f, inst, recv_ns, out),
        Channel::Funding => funding(&f, inst, recv_ns, out),
        Channel::Tickers => ticker(&f, inst, recv_ns, out),
    })?;
    Ok(FrameKind::Market)
}

/// `books*`: one book message, bids then asks; seq.last = seqId, seq.prev = prevSeqId.
fn book(
    f: &Fields<'_>,
    inst: Inst,
    kind: BookUpdateKind,
    recv_ns: u64,
    out: &mut Vec<MarketEvent>,
) -> Result<(), DecodeError> {
    let seq = SeqIds { first: 0, last: req_u64(f.seq_id, "seqId")?, prev: f.prev_seq_id()? };
    let exch_ts = f.ts()?;
    let (bids, asks) = (required(f.bids, "bids")?, required(f.asks, "asks")?);
    let template = event(inst, recv_ns, exch_ts, seq, MarketBody::Book(BookChunk::new(kind)));
    write_book(out, template, kind, inst, LEVEL_WIDTH, (bids, "bids"), (asks, "asks"))
}

/// `bbo-tbt`: the first bid and ask (a zero side when one is empty); seq.last = seqId.
fn bbo(f: &Fields<'_>, inst: Inst, recv_ns: u64, out: &mut Vec<MarketEvent>) -> Result<(), DecodeError> {
    let seq = SeqIds { first: 0, last: req_u64(f.seq_id, "seqId")?, prev: 0 };
    let exch_ts = f.ts()?;
    let bid = best_level(required(f.bids, "bids")?, "bids", LEVEL_WIDTH, inst)?;
    let ask = best_level(required(f.asks, "asks")?, "asks", LEVEL_WIDTH, inst)?;
    let quote = Quote { bid_px: bid.px, bid_qty: bid.qty, ask_px: ask.px, ask_qty: ask.qty };
    out.push(event(inst, recv_ns, exch_ts, seq, MarketBody::Quote(quote)));
    Ok(())
}

/// `trades`: one public trade.
fn trade(f: &Fields<'_>, inst: Inst, recv_ns: u64, out: &mut Vec<MarketEvent>) -> Result<(), DecodeError> {
    let trade_id = TradeId::from_bytes(required(f.trade_id, "tradeId")?.str("tradeId")?)
        .ok_or(DecodeError::WrongType("tradeId"))?;
    let aggressor = match required(f.side, "side")?.str("side")? {
        b"buy" => Side::Buy,
        b"sell" => Side::Sell,
        _ => return Err(DecodeError::WrongType("side")),
    };
    let trade = Trade { px: req_px(f.px, "px", inst.px)?, qty: req_qty(f.sz, "sz", inst.qty)?, aggressor, trade_id };
    let exch_ts = f.ts()?;
    out.push(event(inst, recv_ns, exch_ts, SeqIds::default(), MarketBody::Trade(trade)));
    Ok(())
}

/// `funding-rate`: the rate for the settlement at `fundingTime`; OKX gives no mark or index
/// here (they are channels of their own), so both are `Px(0)`.
fn funding(f: &Fields<'_>, inst: Inst, recv_ns: u64, out: &mut Vec<MarketEvent>) -> Result<(), DecodeError> {
    let funding = Funding {
        mark_px: Px(0),
        index_px: Px(0),
        rate: req_rate(f.funding_rate, "fundingRate")?,
        next_funding_ms: req_str_u64(f.funding_time, "fundingTime")?,
    };
    let exch_ts = f.ts()?;
    out.push(event(inst, recv_ns, exch_ts, SeqIds::default(), MarketBody::Funding(funding)));
    Ok(())
}

/// `tickers`: a quote from bidPx/bidSz/askPx/askSz. OKX sends `""` for a side the book does
/// not have; such a side is zero, as on an empty `bbo-tbt` side.
fn ticker(f: &Fields<'_>, inst: Inst, recv_ns: u64, out: &mut Vec<MarketEvent>) -> Result<(), DecodeError> {
    let price = |v: Option<Value<'_>>, field| -> Result<Px, DecodeError> {
        let s = required(v, field)?.str(field)?;
        if s.is_empty() { Ok(Px(0)) } else { px(s, field, inst.px) }
    };
    let size = |v: Option<Value<'_>>, field| -> Result<Qty, DecodeError> {
        let s = required(v, field)?.str(field)?;
        if s.is_empty() { Ok(Qty(0)) } else { qty(s, field, inst.qty) }
    };
    let quote = Quote {
        bid_px: price(f.bid_px, "bidPx")?,
        bid_qty: size(f.bid_sz, "bidSz")?,
        ask_px: price(f.ask_px, "askPx")?,
        ask_qty: size(f.ask_sz, "askSz")?,
    };
    let exch_ts = f.ts()?;
    out.push(event(inst, recv_ns, exch_ts, SeqIds::default(), MarketBody::Quote(quote)));
    Ok(())
}
