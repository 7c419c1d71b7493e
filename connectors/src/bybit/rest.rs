//! The Bybit REST order book snapshot (`GET /v5/market/orderbook`), the starting point of a
//! local book that is then kept by the `orderbook.{depth}.{symbol}` deltas.

use crossbar_engine::event::Level;
use crossbar_engine::fixed::Scale;
use crossbar_engine::instrument::InstrumentId;

use crate::feed::DecodeError;
use crate::json::Value;
use crate::wire::{Inst, for_each_level, member_slots, parse_levels_into, read_slots, req_u64, required};

member_slots! {
    /// The members of the response this parser reads.
    struct Response {
        ret_code: b"retCode",
        result: b"result",
    }
}

member_slots! {
    /// The members of `result` this parser reads.
    struct Book {
        b: b"b",
        a: b"a",
        u: b"u",
        seq: b"seq",
        ts: b"ts",
    }
}

/// The header of a REST book snapshot; its levels went into the caller's vectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrderbookSnapshot {
    /// `u`: the update id the websocket deltas continue from.
    pub update_id: u64,
    /// `seq`: the cross sequence, comparable with the websocket's `seq`.
    pub cross_seq: u64,
    /// `ts`: venue time of the book in ms.
    pub exch_ts_ms: u64,
}

/// Why a REST snapshot could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The venue refused the request (`retCode` not 0): retry later, the body holds no book.
    #[error("Bybit refused the request: retCode {0}")]
    Refused(u64),
    /// The body is not a well-formed snapshot.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Parses a REST order book response into `bids` and `asks` (best first, as Bybit orders
/// them), which are cleared first. Runs off the hot path when a book (re)syncs; it allocates
/// only when the vectors must grow.
///
/// ```text
/// {"retCode":0,"retMsg":"OK","result":{"s":"BTCUSDT","a":[["65557.7","16.606555"]],
///  "b":[["65485.47","47.081829"]],"ts":1716863719031,"u":230704,"seq":1432604333,
///  "cts":1716863718905},"retExtInfo":{},"time":1716863719382}
/// ```
///
/// # Errors
/// [`SnapshotError::Refused`] for a non-zero `retCode`; [`SnapshotError::Decode`] with
/// [`DecodeError::Json`] for malformed JSON, [`DecodeError::MissingField`] without `retCode`,
/// `result`, `b`, `a`, `u`, `seq` or `ts`, and [`DecodeError::WrongType`],
/// [`DecodeError::BadInteger`] or [`DecodeError::BadNumber`] for a field of the wrong shape.
/// On error both vectors are left empty.
pub fn parse_orderbook_snapshot(
    body: &[u8],
    price_scale: Scale,
    qty_scale: Scale,
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
) -> Result<OrderbookSnapshot, SnapshotError> {
    let inst = Inst { id: InstrumentId(0), px: price_scale, qty: qty_scale };
    parse_levels_into(bids, asks, |bids, asks| parse_into(body, inst, bids, asks))
}

fn parse_into(
    body: &[u8],
    inst: Inst,
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
) -> Result<OrderbookSnapshot, SnapshotError> {
    let response = read_slots(body, Response::set)?;
    let code = req_u64(response.ret_code, "retCode")?;
    if code != 0 {
        return Err(SnapshotError::Refused(code));
    }
    let Value::Object(result) = required(response.result, "result")? else {
        return Err(DecodeError::WrongType("result").into());
    };
    let book = read_slots(result, Book::set)?;
    let snapshot = OrderbookSnapshot {
        update_id: req_u64(book.u, "u")?,
        cross_seq: req_u64(book.seq, "seq")?,
        exch_ts_ms: req_u64(book.ts, "ts")?,
    };
    for_each_level(required(book.b, "b")?, "b", 2, inst, |l| bids.push(l))?;
    for_each_level(required(book.a, "a")?, "a", 2, inst, |l| asks.push(l))?;
    Ok(snapshot)
}
