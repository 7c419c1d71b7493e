//! OKX v5 public wire formats for the simulator (`/ws/v5/public`): the subscribe,
//! unsubscribe and error events, the `ping`/`pong` text heartbeat, and the frames of each
//! channel as OKX prints them. Prices and quantities are decimal strings without trailing
//! zeros, times strings of digits, `seqId`/`prevSeqId` JSON integers:
//!
//! ```text
//! books        {"arg":{"channel":"books","instId":"I"},"action":"snapshot"|"update",
//!               "data":[{"asks":[[px,sz,"0","1"]],"bids":[..],"ts":"T","checksum":0,
//!                        "prevSeqId":P,"seqId":S}]}
//!              snapshot on subscribe (prevSeqId -1), then updates whose prevSeqId is the
//!              previous seqId; seqId = the simulator's book update id; size "0" deletes
//! bbo-tbt      {"arg":{..},"data":[{"asks":[[px,sz,"0","1"]],"bids":[..],"ts":"T","seqId":U}]}
//! trades       {"arg":{..},"data":[{"instId":"I","tradeId":"N","px":..,"sz":..,"side":"buy",
//!               "ts":"T","count":"K","source":"0","seqId":N}]}
//! funding-rate swaps only: {"arg":{..},"data":[{"fundingRate":..,"fundingTime":"..",
//!               "nextFundingTime":"..","instId":"I","instType":"SWAP",...,"ts":"T"}]}
//! ```

use std::fmt::Write as _;

use serde_json::Value;

use super::binance::{StreamKind, write_fixed};
use super::book::BookSnapshot;
use super::model::SimEvent;
use super::topics::{Levels, Request, TopicSymbol};

/// Channels served: `(name, stream)`.
const CHANNELS: [(&str, StreamKind); 4] = [
    ("bbo-tbt", StreamKind::BookTicker),
    ("books", StreamKind::Depth),
    ("trades", StreamKind::AggTrade),
    ("funding-rate", StreamKind::MarkPrice),
];

fn conn_id(conn: u64) -> String {
    format!("{conn:08x}")
}

fn arg_json(channel: &str, inst_id: &str) -> String {
    format!(r#"{{"channel":{},"instId":{}}}"#, Value::String(channel.to_owned()), Value::String(inst_id.to_owned()))
}

/// Parses `ping` or `{"op":"subscribe"|"unsubscribe","args":[{"channel":..,"instId":..}]}`.
pub(crate) fn parse_request(conn: u64, text: &str) -> Request {
    if text == "ping" {
        return Request::Reply("pong".to_owned());
    }
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return Request::Reply(error_event(conn, "60012", &format!("Invalid request: {text}")));
    };
    let op = v["op"].as_str().unwrap_or_default();
    if op != "subscribe" && op != "unsubscribe" {
        return Request::Reply(error_event(conn, "60012", &format!("Invalid request: {text}")));
    }
    let Some(args) = v["args"].as_array().filter(|a| !a.is_empty()) else {
        return Request::Reply(error_event(conn, "60012", &format!("Invalid request: {text}")));
    };
    let mut topics = Vec::with_capacity(args.len());
    for arg in args {
        let (channel, inst) = (arg["channel"].as_str().unwrap_or_default(), arg["instId"].as_str().unwrap_or_default());
        match CHANNELS.iter().find(|(name, _)| *name == channel) {
            Some((_, kind)) if !inst.is_empty() => topics.push((*kind, inst.to_owned(), arg_json(channel, inst))),
            _ => return Request::Reply(error(conn, &arg_json(channel, inst))),
        }
    }
    if op == "subscribe" { Request::Subscribe(topics) } else { Request::Unsubscribe(topics) }
}

fn error_event(conn: u64, code: &str, msg: &str) -> String {
    let (cid, msg) = (conn_id(conn), Value::String(msg.to_owned()));
    format!(r#"{{"event":"error","code":"{code}","msg":{msg},"connId":"{cid}"}}"#)
}

/// The event acknowledging one (un)subscribed argument (`arg` is its JSON object).
pub(crate) fn ack(conn: u64, subscribe: bool, arg: &str) -> String {
    let event = if subscribe { "subscribe" } else { "unsubscribe" };
    format!(r#"{{"event":"{event}","arg":{arg},"connId":"{}"}}"#, conn_id(conn))
}

/// The error event refusing an argument the venue does not have (`arg` is its JSON object).
pub(crate) fn error(conn: u64, arg: &str) -> String {
    error_event(conn, "60018", &format!("Wrong URL or channel:{arg} doesn't exist."))
}

/// A `books` or `bbo-tbt` data element.
fn book_data(out: &mut String, t: &TopicSymbol, time_ms: i64, levels: (Levels<'_>, Levels<'_>)) {
    out.push_str(r#""data":[{"asks":"#);
    t.levels(out, levels.1);
    out.push_str(r#","bids":"#);
    t.levels(out, levels.0);
    let _ = write!(out, r#","ts":"{time_ms}""#);
}

/// Writes the frame of `ev`; `book_seq` is `(prevSeqId, seqId)` for an update.
pub(crate) fn write_event(out: &mut String, ev: &SimEvent, t: &TopicSymbol, book_seq: (u64, u64)) -> bool {
    let inst = &t.symbol;
    match ev {
        SimEvent::BookTicker { update_id, time_ms, bid, ask, .. } => {
            let _ = write!(out, r#"{{"arg":{{"channel":"bbo-tbt","instId":"{inst}"}},"#);
            let (mut b, mut a) = (std::iter::once((bid.px, bid.qty)), std::iter::once((ask.px, ask.qty)));
            book_data(out, t, *time_ms, (&mut b, &mut a));
            let _ = write!(out, r#","seqId":{update_id}}}]}}"#);
        }
        SimEvent::Depth { time_ms, diff, .. } => {
            let _ = write!(out, r#"{{"arg":{{"channel":"books","instId":"{inst}"}},"action":"update","#);
            let (mut b, mut a) = (diff.bids.iter().copied(), diff.asks.iter().copied());
            book_data(out, t, *time_ms, (&mut b, &mut a));
            let _ = write!(out, r#","checksum":0,"prevSeqId":{},"seqId":{}}}]}}"#, book_seq.0, book_seq.1);
        }
        SimEvent::Trade { time_ms, agg_id, px, qty, first_trade_id, last_trade_id, buyer_maker, .. } => {
            let side = if *buyer_maker { "sell" } else { "buy" };
            let _ = write!(
                out,
                r#"{{"arg":{{"channel":"trades","instId":"{inst}"}},"data":[{{"instId":"{inst}","tradeId":"{agg_id}","px":""#
            );
            t.px(out, *px);
            out.push_str(r#"","sz":""#);
            t.qty(out, *qty);
            let count = last_trade_id.saturating_sub(*first_trade_id) + 1;
            let _ = write!(
                out,
                r#"","side":"{side}","ts":"{time_ms}","count":"{count}","source":"0","seqId":{agg_id}}}]}}"#
            );
        }
        SimEvent::Mark { time_ms, funding_rate_e8, next_funding_ms, .. } => {
            if !t.perpetual {
                return false;
            }
            let _ = write!(
                out,
                r#"{{"arg":{{"channel":"funding-rate","instId":"{inst}"}},"data":[{{"formulaType":"noRate","fundingRate":""#
            );
            write_fixed(out, *funding_rate_e8, 8, 8);
            let next = next_funding_ms + 8 * 3_600_000;
            let _ = write!(
                out,
                r#"","fundingTime":"{next_funding_ms}","impactValue":"","instId":"{inst}","instType":"SWAP","interestRate":"","method":"current_period","maxFundingRate":"0.00375","minFundingRate":"-0.00375","nextFundingRate":"","nextFundingTime":"{next}","premium":"0","settFundingRate":"0","settState":"settled","ts":"{time_ms}"}}]}}"#
            );
        }
        SimEvent::FundingSettled { .. } => return false,
    }
    true
}

/// The `books` snapshot sent on subscribe.
pub(crate) fn book_snapshot(out: &mut String, t: &TopicSymbol, snap: &BookSnapshot, time_ms: i64, seq_id: u64) {
    let _ = write!(out, r#"{{"arg":{{"channel":"books","instId":"{}"}},"action":"snapshot","#, t.symbol);
    let mut b = snap.bids.iter().take(400).map(|(p, q)| (p.0, q.0));
    let mut a = snap.asks.iter().take(400).map(|(p, q)| (p.0, q.0));
    book_data(out, t, time_ms, (&mut b, &mut a));
    let _ = write!(out, r#","checksum":0,"prevSeqId":-1,"seqId":{seq_id}}}]}}"#);
}
