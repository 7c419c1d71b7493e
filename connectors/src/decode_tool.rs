//! The engine-free core of `crossbar decode --venue VENUE [FILE]`: raw websocket text frames in,
//! one JSON object per normalized event out, so a recorded session (or a frame pasted from a
//! venue's docs) can be checked against what the engine would see.
//!
//! Input is one frame per line; blank lines are skipped. Each frame goes through the venue's
//! real decoder, in learning mode (every symbol is accepted), and each event it yields is
//! printed on its own line, keys in this order:
//!
//! ```text
//! {"type":"quote","venue","symbol","bid_px","bid_qty","ask_px","ask_qty","update_id","exch_ts_ms"}
//! {"type":"book_snapshot"|"book_delta","venue","symbol","bids":[[px,qty],..],"asks":[..],
//!  "first_id","last_id","prev_id","exch_ts_ms"}
//! {"type":"trade","venue","symbol","px","qty","aggressor":"buy"|"sell","trade_id","exch_ts_ms"}
//! {"type":"funding","venue","symbol","mark_px","index_px","rate","next_funding_ms","exch_ts_ms"}
//! ```
//!
//! - `venue` is the VENUE argument, `symbol` the venue's own spelling.
//! - Prices, quantities and rates are JSON strings holding the exact decimal, without trailing
//!   zeros (`"16493.5"`); ids and times are JSON integers; `trade_id` is a JSON string.
//! - A book message is printed once, its chunks reassembled: bids then asks, each side in
//!   message order.
//! - `null` marks a field the venue does not give. Events use 0 for "none" in their sequence
//!   ids, times and reference prices, and no venue uses 0 as a real update id, time or mark,
//!   so the tool prints every 0 id, time, mark and index as `null` (Binance spot book
//!   tickers have no time, spot diffs no `pu`, OKX gives no mark or index with funding, OKX
//!   snapshots' `prevSeqId` is -1, Bybit and OKX ticker quotes have no update id).
//! - A valid frame without market data (subscribe replies, pongs, unknown kinds, a Binance
//!   partial book without the combined-stream name that says whose it is) prints nothing.
//! - A malformed frame prints nothing on stdout and `line N: <reason>` (N from 1) on stderr;
//!   decoding goes on with the next line.
//!
//! Scales: without an instrument registry the tool reads every price at scale
//! [`PRICE_SCALE`] (10 places: finer than any venue's tick, range ±9.2e8) and every quantity at
//! [`QTY_SCALE`] (8 places: the finest lot of Binance, Bybit and OKX, range ±9.2e10, enough for
//! meme-coin sizes that would overflow at 10). Mark and index prices use the engine's
//! `REFERENCE_SCALE`, rates its `RATE_SCALE`. A value with more decimals than its scale holds
//! (or too large for it) is reported as malformed, never rounded.

use std::fmt::{Display, Write as _};
use std::io::{BufRead, Write};

use crossbar_engine::event::{BookUpdateKind, MarketBody, MarketEvent, Side};
use crossbar_engine::fixed::{Px, Qty, RATE_SCALE, REFERENCE_SCALE, Scale, display};

use crate::binance::{BinanceDecoder, BinanceMarket};
use crate::bybit::{BybitCategory, BybitDecoder};
use crate::feed::{DecodeError, FeedDecoder, FrameKind, SymbolTable};
use crate::okx::OkxDecoder;

/// The VENUE names `crossbar decode` accepts.
pub const VENUES: [&str; 6] = ["binance-spot", "binance-usdm", "bybit-spot", "bybit-linear", "okx", "ethereum"];

/// Decimal places of every price the tool reads (see the [module documentation](self)).
pub const PRICE_SCALE: Scale = match Scale::new(10) {
    Ok(scale) => scale,
    Err(_) => panic!("10 is a valid scale"),
};

/// Decimal places of every quantity the tool reads (see the [module documentation](self)).
pub const QTY_SCALE: Scale = match Scale::new(8) {
    Ok(scale) => scale,
    Err(_) => panic!("8 is a valid scale"),
};

/// Why `crossbar decode` could not run (a malformed frame is not one: it is reported and
/// skipped).
#[derive(Debug, thiserror::Error)]
pub enum DecodeToolError {
    /// The VENUE argument is not one of [`VENUES`].
    #[error("unknown venue {0:?}; valid venues: {valid}", valid = VENUES.join(", "))]
    UnknownVenue(String),
    /// Reading the input or writing the output failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// One of the shipped decoders, in learning mode.
enum Decoder {
    Binance(BinanceDecoder),
    Bybit(BybitDecoder),
    Okx(OkxDecoder),
}

impl Decoder {
    /// The decoder for `venue` and the venue's canonical name.
    fn for_venue(venue: &str) -> Option<(&'static str, Self)> {
        let symbols = SymbolTable::learning(PRICE_SCALE, QTY_SCALE);
        let name = VENUES.iter().copied().find(|v| *v == venue)?;
        let decoder = match name {
            "binance-spot" => Self::Binance(BinanceDecoder::new(BinanceMarket::Spot, symbols)),
            "binance-usdm" => Self::Binance(BinanceDecoder::new(BinanceMarket::UsdM, symbols)),
            "bybit-spot" => Self::Bybit(BybitDecoder::new(BybitCategory::Spot, symbols)),
            "bybit-linear" => Self::Bybit(BybitDecoder::new(BybitCategory::Linear, symbols)),
            _ => Self::Okx(OkxDecoder::new(symbols)),
        };
        Some((name, decoder))
    }

    fn decode(&mut self, frame: &mut [u8], out: &mut Vec<MarketEvent>) -> Result<FrameKind, DecodeError> {
        match self {
            Self::Binance(d) => d.decode(frame, 0, out),
            Self::Bybit(d) => d.decode(frame, 0, out),
            Self::Okx(d) => d.decode(frame, 0, out),
        }
    }

    fn symbols(&self) -> &SymbolTable {
        match self {
            Self::Binance(d) => d.symbols(),
            Self::Bybit(d) => d.symbols(),
            Self::Okx(d) => d.symbols(),
        }
    }
}

/// Decodes `input` (one raw websocket text frame per line) for `venue` and prints one JSON
/// object per normalized event on `stdout`, one `line N: <reason>` per malformed frame on
/// `stderr`; see the [module documentation](self) for the schema. Returns whether any frame
/// was malformed.
///
/// # Errors
/// [`DecodeToolError::UnknownVenue`] when `venue` is not one of [`VENUES`] (nothing is read),
/// [`DecodeToolError::Io`] when reading `input` or writing either output fails.
pub fn run_decode(
    venue: &str,
    mut input: impl BufRead,
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> Result<bool, DecodeToolError> {
    if venue == "ethereum" {
        return run_ethereum(input, stdout, stderr);
    }
    let (venue, mut decoder) =
        Decoder::for_venue(venue).ok_or_else(|| DecodeToolError::UnknownVenue(venue.to_owned()))?;
    let mut printer = Printer::new(venue);
    let mut frame = Vec::with_capacity(64 * 1024);
    let mut events = Vec::with_capacity(1024);
    let mut any_malformed = false;
    let mut line_no = 0u64;
    loop {
        frame.clear();
        if input.read_until(b'\n', &mut frame)? == 0 {
            break;
        }
        line_no += 1;
        while let Some(b'\n' | b'\r') = frame.last() {
            frame.pop();
        }
        if frame.trim_ascii().is_empty() {
            continue;
        }
        events.clear();
        match decoder.decode(&mut frame, &mut events) {
            Ok(_) => {
                for ev in &events {
                    if let Some(line) = printer.event(ev, decoder.symbols()) {
                        stdout.write_all(line.as_bytes())?;
                    }
                }
            }
            Err(e) => {
                any_malformed = true;
                writeln!(stderr, "line {line_no}: {e}")?;
            }
        }
    }
    stdout.flush()?;
    stderr.flush()?;
    Ok(any_malformed)
}

/// Turns events into output lines, reassembling book chunks.
struct Printer {
    venue: &'static str,
    line: String,
    bids: Vec<(Px, Qty)>,
    asks: Vec<(Px, Qty)>,
}

impl Printer {
    fn new(venue: &'static str) -> Self {
        Self { venue, line: String::with_capacity(4096), bids: Vec::new(), asks: Vec::new() }
    }

    /// The line for `ev` (newline included), or `None` while a book message is incomplete.
    fn event(&mut self, ev: &MarketEvent, symbols: &SymbolTable) -> Option<&str> {
        let (symbol, px_scale, qty_scale) = match symbols.by_id(ev.instrument) {
            Some(e) => (String::from_utf8_lossy(&e.symbol).into_owned(), e.price_scale, e.qty_scale),
            None => (String::new(), PRICE_SCALE, QTY_SCALE),
        };
        let kind = match ev.body {
            MarketBody::Quote(_) => "quote",
            MarketBody::Book(c) if c.kind == BookUpdateKind::Snapshot => "book_snapshot",
            MarketBody::Book(_) => "book_delta",
            MarketBody::Trade(_) => "trade",
            MarketBody::Funding(_) => "funding",
            // CEX decoders never produce pool events; they come from the DEX feed.
            MarketBody::Status(_) | MarketBody::PoolState(_) | MarketBody::PendingSwap(_) => return None,
        };
        if let MarketBody::Book(chunk) = ev.body {
            if chunk.first {
                self.bids.clear();
                self.asks.clear();
            }
            for (side, level) in chunk.iter() {
                let levels = if side == Side::Buy { &mut self.bids } else { &mut self.asks };
                levels.push((level.px, level.qty));
            }
            if !chunk.last {
                return None;
            }
        }
        self.line.clear();
        let mut o = Obj::new(&mut self.line);
        o.string("type", kind);
        o.string("venue", self.venue);
        o.string("symbol", &symbol);
        match ev.body {
            MarketBody::Quote(q) => {
                o.decimal("bid_px", q.bid_px.0, px_scale);
                o.decimal("bid_qty", q.bid_qty.0, qty_scale);
                o.decimal("ask_px", q.ask_px.0, px_scale);
                o.decimal("ask_qty", q.ask_qty.0, qty_scale);
                o.id("update_id", ev.seq.last);
            }
            MarketBody::Book(_) => {
                o.levels("bids", &self.bids, px_scale, qty_scale);
                o.levels("asks", &self.asks, px_scale, qty_scale);
                o.id("first_id", ev.seq.first);
                o.id("last_id", ev.seq.last);
                o.id("prev_id", ev.seq.prev);
            }
            MarketBody::Trade(t) => {
                o.decimal("px", t.px.0, px_scale);
                o.decimal("qty", t.qty.0, qty_scale);
                o.string("aggressor", t.aggressor.as_str());
                o.string("trade_id", &String::from_utf8_lossy(t.trade_id.as_bytes()));
            }
            MarketBody::Funding(f) => {
                o.optional_decimal("mark_px", f.mark_px.0, REFERENCE_SCALE);
                o.optional_decimal("index_px", f.index_px.0, REFERENCE_SCALE);
                o.decimal("rate", f.rate.0, RATE_SCALE);
                o.id("next_funding_ms", f.next_funding_ms);
            }
            MarketBody::Status(_) | MarketBody::PoolState(_) | MarketBody::PendingSwap(_) => {}
        }
        o.id("exch_ts_ms", ev.exch_ts_ms);
        o.finish();
        Some(&self.line)
    }
}

/// A JSON object written member by member into a string, in the order the members are given.
struct Obj<'s> {
    s: &'s mut String,
    empty: bool,
}

impl<'s> Obj<'s> {
    fn new(s: &'s mut String) -> Self {
        s.push('{');
        Self { s, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.s.push(',');
        }
        self.empty = false;
        self.s.push('"');
        self.s.push_str(key);
        self.s.push_str("\":");
    }

    fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        // Escaping a `str` cannot fail.
        self.s.push_str(&serde_json::to_string(value).unwrap_or_default());
    }

    fn quoted(&mut self, value: impl Display) {
        let _ = write!(self.s, "\"{value}\"");
    }

    fn decimal(&mut self, key: &str, mantissa: i64, scale: Scale) {
        self.key(key);
        self.quoted(display(mantissa, scale));
    }

    /// A decimal, or `null` for 0 (a reference price the venue did not give).
    fn optional_decimal(&mut self, key: &str, mantissa: i64, scale: Scale) {
        if mantissa == 0 {
            self.key(key);
            self.s.push_str("null");
        } else {
            self.decimal(key, mantissa, scale);
        }
    }

    /// An id or time, or `null` for 0 (none given).
    fn id(&mut self, key: &str, value: u64) {
        self.key(key);
        if value == 0 {
            self.s.push_str("null");
        } else {
            let _ = write!(self.s, "{value}");
        }
    }

    fn levels(&mut self, key: &str, levels: &[(Px, Qty)], px_scale: Scale, qty_scale: Scale) {
        self.key(key);
        self.s.push('[');
        for (i, (px, qty)) in levels.iter().enumerate() {
            if i > 0 {
                self.s.push(',');
            }
            self.s.push('[');
            self.quoted(display(px.0, px_scale));
            self.s.push(',');
            self.quoted(display(qty.0, qty_scale));
            self.s.push(']');
        }
        self.s.push(']');
    }

    fn finish(self) {
        self.s.push_str("}\n");
    }
}

/// `--venue ethereum`: one `eth_subscription` notification per line, one `pending_swap` line per
/// decoded swap, pool-dependent fields `null` (there is no node to ask offline).
fn run_ethereum(
    mut input: impl BufRead,
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> Result<bool, DecodeToolError> {
    let (mut frame, mut out) = (Vec::with_capacity(64 * 1024), String::with_capacity(4 * 1024));
    let (mut any_malformed, mut line_no) = (false, 0u64);
    loop {
        frame.clear();
        if input.read_until(b'\n', &mut frame)? == 0 {
            break;
        }
        line_no += 1;
        if frame.trim_ascii().is_empty() {
            continue;
        }
        out.clear();
        match crate::eth::decode_notification_line(frame.trim_ascii(), &mut out) {
            Ok(_) => stdout.write_all(out.as_bytes())?,
            Err(e) => {
                any_malformed = true;
                writeln!(stderr, "line {line_no}: {e}")?;
            }
        }
    }
    stdout.flush()?;
    Ok(any_malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_venue_lists_the_valid_ones() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let got = run_decode("kraken", &b"{}\n"[..], &mut out, &mut err);
        let Err(e) = got else { panic!("accepted an unknown venue") };
        assert_eq!(
            e.to_string(),
            r#"unknown venue "kraken"; valid venues: binance-spot, binance-usdm, bybit-spot, bybit-linear, okx, ethereum"#
        );
        assert!(out.is_empty() && err.is_empty());
    }

    #[test]
    fn objects_keep_member_order_and_escape_strings() {
        let mut s = String::new();
        let mut o = Obj::new(&mut s);
        o.string("a", "x\"y");
        o.id("b", 0);
        o.id("c", 7);
        o.decimal("d", 1_649_350, Scale::new(2).unwrap());
        o.optional_decimal("e", 0, REFERENCE_SCALE);
        o.levels("f", &[(Px(10), Qty(0))], Scale::new(1).unwrap(), Scale::new(3).unwrap());
        o.finish();
        assert_eq!(s, "{\"a\":\"x\\\"y\",\"b\":null,\"c\":7,\"d\":\"16493.5\",\"e\":null,\"f\":[[\"1\",\"0\"]]}\n");
    }
}
