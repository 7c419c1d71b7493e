//! Bybit v5 public market data (categories spot and linear): topics to subscribe, the frame
//! decoder, and the REST book snapshot a local book starts from.
//!
//! The I/O thread connects to [`BybitCategory::ws_path`], sends [`subscribe_request`] for the
//! [`topics`] of its symbols, and hands every text frame to a [`BybitDecoder`]. Decoding is a
//! pure function of the frame: no allocation, no `f64`; prices and quantities are parsed
//! exactly at the instrument's scales. Members arrive in any order (Bybit's order differs
//! between streams), so none is relied on:
//!
//! ```text
//! orderbook.{1|50|200|1000}.{symbol}
//!   {"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1672304484978,
//!    "data":{"s":"BTCUSDT","b":[["16493.50","0.006"]],"a":[["16611.00","0.029"]],
//!            "u":18521288,"seq":7961638724},"cts":1672304484976}
//!   -> Book chunks, Snapshot or Delta after `type`; seq.last = u; time = ts. A size "0" in a
//!      delta deletes the level (the book's business: the event carries Qty(0)).
//!   orderbook.1 snapshots -> one Quote instead (best bid and ask, a zero side when one side
//!      is empty), seq.last = u, time = ts. Level 1 is documented to send only snapshots (the
//!      same one again every 3 s when unchanged); should a level-1 delta come, it stays a
//!      Delta book message, since half a quote cannot be told from a vanished side.
//! publicTrade.{symbol}
//!   {"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,
//!    "data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50",
//!             "i":"20f43950-d8dd-5b31-9112-a178eb6023af","seq":1783284617}]}
//!   -> one Trade per element: px p, qty v, aggressor S, id i verbatim (a UUID on
//!      derivatives, digits on spot), time T
//! tickers.{symbol}
//!   {"topic":"tickers.BTCUSDT","type":"snapshot","ts":1760325052630,"cs":9532239429,
//!    "data":{"symbol":"BTCUSDT","markPrice":"66666.60","indexPrice":"115418.19",
//!            "fundingRate":"-0.005","nextFundingTime":"1760342400000",
//!            "bid1Price":"66666.60","bid1Size":"23789.165","ask1Price":"66666.70", ...}}
//!   -> a Quote when bid1Price, bid1Size, ask1Price and ask1Size are all given (time ts,
//!      no update id), then a Funding when fundingRate and nextFundingTime are both given
//!      (mark and index at REFERENCE_SCALE, Px(0) when absent; time ts).
//!      Linear ticker deltas carry only the fields that changed and dated futures send
//!      `"fundingRate":""`: an empty string counts as absent, and a message with neither
//!      set complete (spot tickers carry no bid/ask at all) is valid and yields no event.
//!      Every field present is validated all the same. Subscribe to tickers or to
//!      orderbook.1 for quotes, not both: ticker quotes have no update id to order them by.
//! subscribe reply   {"success":true,"ret_msg":"","conn_id":"..","op":"subscribe"}
//!                   -> FrameKind::SubscribeAck ("success":false -> FrameKind::Unknown)
//! heartbeat reply   {"op":"pong",..} or {"success":true,"ret_msg":"pong",..}
//!                   -> FrameKind::Pong
//! ```
//!
//! A topic this decoder does not read (`kline.1.BTCUSDT`, say) is [`FrameKind::Unknown`]. A
//! market message that decodes is [`FrameKind::Market`] even when it yields no event. The
//! symbol is the topic's, so `data.s` and `data.symbol` are not read. Enum-like strings
//! outside their documented set (`type`, `S`) are [`DecodeError::WrongType`]. Sequencing rules
//! (a snapshot resets the book; `u` continuity of deltas) belong to the book sequencer; this
//! module only carries the ids.

mod decode;
mod rest;
pub mod trade;

pub use rest::{OrderbookSnapshot, SnapshotError, parse_orderbook_snapshot};

use crossbar_engine::event::MarketEvent;

use crate::feed::{DecodeError, FeedDecoder, FrameKind, SymbolTable};
use crate::wire::decode_market;

/// Which Bybit product category a connection serves: each has its own public endpoint, and the
/// same symbol (`BTCUSDT`) names a different instrument in each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BybitCategory {
    /// Spot: tickers carry no best bid/ask and no funding.
    Spot,
    /// USDT and USDC perpetuals and futures: tickers carry mark, index and funding.
    Linear,
}

impl BybitCategory {
    /// The websocket path of its public streams.
    pub const fn ws_path(self) -> &'static str {
        match self {
            Self::Spot => "/v5/public/spot",
            Self::Linear => "/v5/public/linear",
        }
    }
}

/// Depth of the book topic a local book follows (`orderbook.50.{symbol}`).
pub const BOOK_DEPTH: u32 = 50;

/// The topics one symbol is subscribed to: the level-1 book (quotes), the 50-level book,
/// public trades, and on linear the ticker (mark, index, funding).
pub fn topics(symbol: &str, category: BybitCategory) -> Vec<String> {
    let mut topics = vec![
        format!("orderbook.1.{symbol}"),
        format!("orderbook.{BOOK_DEPTH}.{symbol}"),
        format!("publicTrade.{symbol}"),
    ];
    if category == BybitCategory::Linear {
        topics.push(format!("tickers.{symbol}"));
    }
    topics
}

/// The subscribe request for `topics`: `{"op":"subscribe","args":[...]}`.
///
/// Bybit limits the topics of one spot request (10) and the length of a request; splitting a
/// larger set over several requests is the caller's job.
pub fn subscribe_request<S: AsRef<str>>(topics: &[S]) -> String {
    let args: Vec<&str> = topics.iter().map(AsRef::as_ref).collect();
    let args = serde_json::to_string(&args).unwrap_or_else(|_| "[]".to_owned());
    format!(r#"{{"op":"subscribe","args":{args}}}"#)
}

/// Decodes Bybit v5 public frames into [`MarketEvent`]s for the symbols of its
/// [`SymbolTable`].
///
/// Events carry `recv_ns` as given and `decoded_ns = 0` (the I/O thread stamps it). After the
/// symbol table has seen its symbols, decoding allocates nothing as long as `out` has room.
/// A frame that fails leaves `out` exactly as it was.
#[derive(Clone, Debug)]
pub struct BybitDecoder {
    category: BybitCategory,
    symbols: SymbolTable,
}

impl BybitDecoder {
    /// A decoder for `category` tracking `symbols` (spelled as Bybit does: `BTCUSDT`).
    pub fn new(category: BybitCategory, symbols: SymbolTable) -> Self {
        Self { category, symbols }
    }

    /// The category it decodes.
    pub fn category(&self) -> BybitCategory {
        self.category
    }

    /// The symbols it tracks (including those learned, in learning mode).
    pub fn symbols(&self) -> &SymbolTable {
        &self.symbols
    }
}

impl FeedDecoder for BybitDecoder {
    /// Decodes one frame; see the [module documentation](self) for the message kinds.
    ///
    /// # Errors
    /// [`DecodeError::Json`] for malformed JSON, [`DecodeError::MissingField`] /
    /// [`DecodeError::WrongType`] for a field the message kind needs (or a `type`/`S` outside
    /// the documented values, or a trade id longer than the engine keeps),
    /// [`DecodeError::BadNumber`] for a price, quantity or rate that is not an exact plain
    /// decimal at its scale (exponent, `NaN`, negative, excess digits),
    /// [`DecodeError::BadInteger`] for an id or time that is not a `u64`.
    #[inline]
    fn decode(&mut self, frame: &mut [u8], recv_ns: u64, out: &mut Vec<MarketEvent>) -> Result<FrameKind, DecodeError> {
        decode_market(out, |out| decode::decode_frame(&mut self.symbols, frame, recv_ns, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_topics_and_requests() {
        assert_eq!(
            topics("BTCUSDT", BybitCategory::Spot),
            ["orderbook.1.BTCUSDT", "orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"]
        );
        assert_eq!(topics("BTCUSDT", BybitCategory::Linear).last().map(String::as_str), Some("tickers.BTCUSDT"));
        assert_eq!(
            subscribe_request(&["orderbook.1.BTCUSDT", "publicTrade.BTCUSDT"]),
            r#"{"op":"subscribe","args":["orderbook.1.BTCUSDT","publicTrade.BTCUSDT"]}"#
        );
        assert_eq!(BybitCategory::Linear.ws_path(), "/v5/public/linear");
    }
}
