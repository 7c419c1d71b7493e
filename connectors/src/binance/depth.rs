//! The Binance REST depth snapshot the book sequencer starts from, and the venue time rule it
//! shares with the stream payloads. Levels are `[["price","qty"], ...]` arrays
//! ([`LevelShape::PAIR`]), walked by the shared [`wire`](crate::wire) helpers.

use crossbar_engine::event::Level;
use crossbar_engine::fixed::Scale;
use crossbar_engine::instrument::InstrumentId;

use crate::feed::DecodeError;
use crate::json::Value;
use crate::wire::{Inst, LevelShape, for_each_level, member_slots, parse_levels_into, read_slots, req_u64, required};

/// Venue time in ms: `T` (transaction time) if present, else `E` (event time), else 0.
///
/// # Errors
/// [`DecodeError::WrongType`] / [`DecodeError::BadInteger`] when the one read is not a `u64`.
#[inline]
pub(super) fn exch_ts(tx_time: Option<Value<'_>>, event_time: Option<Value<'_>>) -> Result<u64, DecodeError> {
    match (tx_time, event_time) {
        (Some(t), _) => t.u64("T"),
        (None, Some(e)) => e.u64("E"),
        (None, None) => Ok(0),
    }
}

member_slots! {
    /// The members of a REST depth snapshot this parser reads.
    struct Snapshot {
        last_update_id: b"lastUpdateId",
        event_time: b"E",
        tx_time: b"T",
        bids: b"bids",
        asks: b"asks",
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
    let inst = Inst { id: InstrumentId(0), px: price_scale, qty: qty_scale };
    parse_levels_into(bids, asks, |bids, asks| parse_snapshot_into(body, inst, bids, asks))
}

fn parse_snapshot_into(
    body: &[u8],
    inst: Inst,
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
) -> Result<DepthSnapshot, DecodeError> {
    let f = read_slots(body, Snapshot::set)?;
    let last_update_id = req_u64(f.last_update_id, "lastUpdateId")?;
    let exch_ts_ms = exch_ts(f.tx_time, f.event_time)?;
    let bid_levels = required(f.bids, "bids")?;
    let ask_levels = required(f.asks, "asks")?;
    for_each_level(bid_levels, "bids", LevelShape::PAIR, inst, |l| bids.push(l))?;
    for_each_level(ask_levels, "asks", LevelShape::PAIR, inst, |l| asks.push(l))?;
    Ok(DepthSnapshot { last_update_id, exch_ts_ms })
}
