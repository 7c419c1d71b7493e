//! Bybit v5 public wire formats for the simulator (`/v5/public/spot`, `/v5/public/linear`):
//! the subscribe, unsubscribe and ping replies, and the frames of each topic, as Bybit prints
//! them. Prices and quantities carry the instrument's decimals, ids and times are JSON
//! integers except `nextFundingTime` (a string of digits):
//!
//! ```text
//! orderbook.1.S    {"topic":"orderbook.1.S","type":"snapshot","ts":T,"data":{"s":"S","b":[[px,qty]],
//!                   "a":[[px,qty]],"u":U,"seq":U},"cts":T}          (best bid/ask changed)
//! orderbook.50.S   snapshot on subscribe, then "type":"delta" with u = previous u + 1 and
//!                  seq = the simulator's book update id; a size "0" deletes a level
//! publicTrade.S    {"topic":"publicTrade.S","type":"snapshot","ts":T,"data":[{"T":T,"s":"S",
//!                   "S":"Buy"|"Sell","v":qty,"p":px,"L":"ZeroPlusTick","i":id,"BT":false,
//!                   "seq":N}]}   (i: digits on spot, a UUID on linear)
//! tickers.S        linear only: {"topic":"tickers.S","type":"snapshot","data":{"symbol":"S",
//!                   "markPrice":..,"indexPrice":..,"fundingRate":..,"nextFundingTime":"..",
//!                   "fundingIntervalHour":"8"},"cs":N,"ts":T}
//! ```

use std::fmt::Write as _;

use serde_json::Value;

use super::binance::{StreamKind, write_fixed};
use super::book::BookSnapshot;
use super::model::SimEvent;
use super::topics::{Levels, Request, TopicSymbol};
use crate::venue::Protocol;

/// Topics served per symbol: `(prefix, stream)`; the book is the 50-level one.
const TOPICS: [(&str, StreamKind); 4] = [
    ("orderbook.1.", StreamKind::BookTicker),
    ("orderbook.50.", StreamKind::Depth),
    ("publicTrade.", StreamKind::AggTrade),
    ("tickers.", StreamKind::MarkPrice),
];

/// The connection id Bybit echoes in replies.
fn conn_id(conn: u64) -> String {
    format!("sim-{conn:08x}")
}

/// Parses `{"op":"subscribe"|"unsubscribe"|"ping","args":[..],"req_id":..}`.
pub(crate) fn parse_request(conn: u64, text: &str) -> Request {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return Request::Reply(reply(conn, false, "", "Invalid request: not JSON"));
    };
    let op = v["op"].as_str().unwrap_or_default();
    if op == "ping" {
        let cid = conn_id(conn);
        return Request::Reply(format!(
            r#"{{"success":true,"ret_msg":"pong","conn_id":"{cid}","req_id":"","op":"ping"}}"#
        ));
    }
    if op != "subscribe" && op != "unsubscribe" {
        return Request::Reply(reply(conn, false, op, "Invalid request: unknown op"));
    }
    let Some(args) = v["args"].as_array() else {
        return Request::Reply(reply(conn, false, op, "Invalid request: args is not an array"));
    };
    let mut topics = Vec::with_capacity(args.len());
    for arg in args {
        let topic = arg.as_str().unwrap_or_default();
        let found = TOPICS.iter().find_map(|(prefix, kind)| topic.strip_prefix(prefix).map(|s| (*kind, s)));
        match found {
            Some((kind, symbol)) if !symbol.is_empty() => topics.push((kind, symbol.to_owned(), topic.to_owned())),
            _ => return Request::Reply(error(conn, topic)),
        }
    }
    if op == "subscribe" { Request::Subscribe(topics) } else { Request::Unsubscribe(topics) }
}

fn reply(conn: u64, success: bool, op: &str, msg: &str) -> String {
    let cid = conn_id(conn);
    let msg = Value::String(msg.to_owned());
    let op = Value::String(op.to_owned());
    format!(r#"{{"success":{success},"ret_msg":{msg},"conn_id":"{cid}","req_id":"","op":{op}}}"#)
}

/// The reply to a successful (un)subscribe request.
pub(crate) fn ack(conn: u64, subscribe: bool) -> String {
    reply(conn, true, if subscribe { "subscribe" } else { "unsubscribe" }, "")
}

/// The reply refusing a request naming an unknown topic.
pub(crate) fn error(conn: u64, topic: &str) -> String {
    reply(conn, false, "subscribe", &format!("Invalid topic :[{topic}]"))
}

/// A `{"s":..,"b":..,"a":..,"u":..,"seq":..}` book message of `kind`.
fn book(
    out: &mut String,
    t: &TopicSymbol,
    (depth, kind): (u32, &str),
    time_ms: i64,
    (u, seq): (u64, u64),
    levels: (Levels<'_>, Levels<'_>),
) {
    let sym = &t.symbol;
    let _ =
        write!(out, r#"{{"topic":"orderbook.{depth}.{sym}","type":"{kind}","ts":{time_ms},"data":{{"s":"{sym}","b":"#);
    t.levels(out, levels.0);
    out.push_str(r#","a":"#);
    t.levels(out, levels.1);
    let _ = write!(out, r#","u":{u},"seq":{seq}}},"cts":{time_ms}}}"#);
}

/// Writes the frame of `ev`; `book_seq` is `(previous u, this u)` for a delta.
pub(crate) fn write_event(out: &mut String, ev: &SimEvent, t: &TopicSymbol, book_seq: (u64, u64)) -> bool {
    let sym = &t.symbol;
    match ev {
        SimEvent::BookTicker { update_id, time_ms, bid, ask, .. } => {
            let (mut b, mut a) = (std::iter::once((bid.px, bid.qty)), std::iter::once((ask.px, ask.qty)));
            book(out, t, (1, "snapshot"), *time_ms, (*update_id, *update_id), (&mut b, &mut a));
        }
        SimEvent::Depth { time_ms, diff, .. } => {
            let (mut b, mut a) = (diff.bids.iter().copied(), diff.asks.iter().copied());
            book(out, t, (50, "delta"), *time_ms, (book_seq.1, diff.last_update_id), (&mut b, &mut a));
        }
        SimEvent::Trade { time_ms, agg_id, px, qty, buyer_maker, .. } => {
            let side = if *buyer_maker { "Sell" } else { "Buy" };
            let _ = write!(
                out,
                r#"{{"topic":"publicTrade.{sym}","type":"snapshot","ts":{time_ms},"data":[{{"T":{time_ms},"s":"{sym}","S":"{side}","v":""#
            );
            t.qty(out, *qty);
            out.push_str(r#"","p":""#);
            t.px(out, *px);
            out.push_str(r#"","L":"ZeroPlusTick","i":""#);
            out.push_str(&trade_id(t.protocol, *agg_id));
            let _ = write!(out, r#"","BT":false,"seq":{agg_id}}}]}}"#);
        }
        SimEvent::Mark { time_ms, mark_px, index_e8, funding_rate_e8, next_funding_ms, .. } => {
            if t.protocol != Protocol::BybitLinear {
                return false;
            }
            let _ =
                write!(out, r#"{{"topic":"tickers.{sym}","type":"snapshot","data":{{"symbol":"{sym}","markPrice":""#);
            t.px(out, *mark_px);
            out.push_str(r#"","indexPrice":""#);
            write_trimmed(out, *index_e8, 8);
            out.push_str(r#"","fundingRate":""#);
            write_trimmed(out, *funding_rate_e8, 8);
            let _ = write!(
                out,
                r#"","nextFundingTime":"{next_funding_ms}","fundingIntervalHour":"8"}},"cs":{time_ms},"ts":{time_ms}}}"#
            );
        }
        SimEvent::FundingSettled { .. } => return false,
    }
    true
}

/// Bybit's trade id: digits on spot, a UUID on derivatives (derived from the aggregate id).
pub(crate) fn trade_id(protocol: Protocol, agg_id: u64) -> String {
    if protocol == Protocol::BybitSpot {
        format!("{}", 2_290_000_000_000_000_000u64 + agg_id)
    } else {
        format!("{:08x}-{:04x}-5b31-9112-{:012x}", agg_id.wrapping_mul(0x9E37_79B9) as u32, agg_id & 0xffff, agg_id)
    }
}

/// `m × 10^-scale` without trailing zeros (Bybit's style for rates and index prices).
fn write_trimmed(out: &mut String, m: i64, scale: u8) {
    let start = out.len();
    write_fixed(out, m, scale, scale);
    let trimmed = out[start..].trim_end_matches('0').trim_end_matches('.').len();
    out.truncate(start + trimmed);
}

/// The `orderbook.50` snapshot sent on subscribe.
pub(crate) fn book_snapshot(out: &mut String, t: &TopicSymbol, snap: &BookSnapshot, time_ms: i64, u: u64) {
    let mut b = snap.bids.iter().take(50).map(|(p, q)| (p.0, q.0));
    let mut a = snap.asks.iter().take(50).map(|(p, q)| (p.0, q.0));
    book(out, t, (50, "snapshot"), time_ms, (u, snap.last_update_id), (&mut b, &mut a));
}
