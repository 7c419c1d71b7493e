//! OKX v5 public market data: the subscribe request and the frame decoder.
//!
//! The I/O thread connects to [`PUBLIC_WS_PATH`], sends [`subscribe_request`] for the channels
//! of its instruments, and hands every text frame to an [`OkxDecoder`]. Decoding is a pure
//! function of the frame: no allocation, no `f64`; prices and quantities are parsed exactly at
//! the instrument's scales. Numbers arrive as strings and times as strings of digits, except
//! `seqId`/`prevSeqId`, which are JSON integers. Members arrive in any order; none is relied
//! on. `arg.channel` selects the decoding and `arg.instId` is the symbol (`BTC-USDT` spot,
//! `BTC-USDT-SWAP` perpetual); every element of `data` becomes its own message:
//!
//! ```text
//! books (also books-l2-tbt, books50-l2-tbt)
//!   {"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update",
//!    "data":[{"asks":[["8476.98","415","0","13"]],"bids":[["8476.97","256","0","12"]],
//!             "ts":"1597026383085","checksum":0,"prevSeqId":123456,"seqId":123457}]}
//!   -> Book chunks, Snapshot for action "snapshot", Delta for "update"; bids first, then
//!      asks; seq.last = seqId, seq.prev = prevSeqId (a snapshot's -1 becomes 0: none);
//!      time ts; checksum ignored (deprecated, always 0)
//! books5    the same shape without action -> Book chunks, Snapshot
//! bbo-tbt   {"asks":[["111.06","55154","0","2"]],"bids":[["111.05","57745","0","2"]],
//!            "ts":"1670324386802","seqId":363996337}
//!           -> Quote from the first bid and ask (a zero side when one is empty);
//!              seq.last = seqId; time ts
//! trades    {"instId":"BTC-USDT","tradeId":"130639474","px":"42219.9","sz":"0.12060306",
//!            "side":"buy","ts":"1630048897897","count":"3","source":"0","seqId":1234}
//!           -> Trade: id tradeId verbatim, aggressor side; time ts
//! funding-rate {"fundingRate":"0.0001875391284828","fundingTime":"1700726400000",
//!               "ts":"1700724675402", ...}
//!           -> Funding: rate fundingRate (rounded half to even to RATE_SCALE when it has
//!              more decimals: OKX sends sixteen), next_funding_ms fundingTime, mark and
//!              index Px(0) (not given); time ts
//! tickers   {"bidPx":"8888.88","bidSz":"5","askPx":"9999.99","askSz":"11",
//!            "ts":"1597026383085", ...}
//!           -> Quote (an empty-string side is zero); no update id; time ts
//! {"event":"subscribe",...}                      -> FrameKind::SubscribeAck
//! {"event":"notice","code":"64008",...}          -> FrameKind::ServerShutdown (service upgrade)
//! {"event":"error",...}, other events            -> FrameKind::Unknown
//! pong (plain text, not JSON)                    -> FrameKind::Pong
//! ```
//!
//! A channel this decoder does not read is [`FrameKind::Unknown`]. Enum-like strings outside
//! their documented set (`action`, `side`) are [`DecodeError::WrongType`]. Sequencing rules
//! (`prevSeqId` must equal the last `seqId` applied, else resubscribe) belong to the book
//! sequencer; this module only carries the ids.

mod decode;
pub mod trade;

use crossbar_engine::event::MarketEvent;

use crate::feed::{DecodeError, FeedDecoder, FrameKind, SymbolTable};
use crate::wire::decode_market;

/// The websocket path of OKX's public channels.
pub const PUBLIC_WS_PATH: &str = "/ws/v5/public";

/// The subscribe request for `(channel, instId)` pairs:
/// `{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"}, ...]}`.
///
/// OKX limits a request to 64 KiB of arguments; splitting larger sets is the caller's job.
pub fn subscribe_request(args: &[(&str, &str)]) -> String {
    let args: Vec<serde_json::Value> =
        args.iter().map(|(channel, inst_id)| serde_json::json!({ "channel": channel, "instId": inst_id })).collect();
    let args = serde_json::to_string(&args).unwrap_or_else(|_| "[]".to_owned());
    format!(r#"{{"op":"subscribe","args":{args}}}"#)
}

/// Decodes OKX v5 public frames into [`MarketEvent`]s for the instruments of its
/// [`SymbolTable`].
///
/// Events carry `recv_ns` as given and `decoded_ns = 0` (the I/O thread stamps it). After the
/// symbol table has seen its symbols, decoding allocates nothing as long as `out` has room.
/// A frame that fails leaves `out` exactly as it was.
#[derive(Clone, Debug)]
pub struct OkxDecoder {
    symbols: SymbolTable,
}

impl OkxDecoder {
    /// A decoder tracking `symbols`, spelled as OKX instrument ids (`BTC-USDT-SWAP`).
    pub fn new(symbols: SymbolTable) -> Self {
        Self { symbols }
    }

    /// The symbols it tracks (including those learned, in learning mode).
    pub fn symbols(&self) -> &SymbolTable {
        &self.symbols
    }
}

impl FeedDecoder for OkxDecoder {
    /// Decodes one frame; see the [module documentation](self) for the message kinds.
    ///
    /// # Errors
    /// [`DecodeError::Json`] for malformed JSON (anything but the text `pong` that is not a
    /// JSON object), [`DecodeError::MissingField`] / [`DecodeError::WrongType`] for a field the
    /// channel needs (or an `action`/`side` outside the documented values, or a trade id
    /// longer than the engine keeps), [`DecodeError::BadNumber`] for a price, quantity or rate
    /// that is not an exact plain decimal at its scale (exponent, `NaN`, negative, excess
    /// digits), [`DecodeError::BadInteger`] for an id or time that is not a `u64`.
    #[inline]
    fn decode(&mut self, frame: &mut [u8], recv_ns: u64, out: &mut Vec<MarketEvent>) -> Result<FrameKind, DecodeError> {
        decode_market(out, |out| decode::decode_frame(&mut self.symbols, frame, recv_ns, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_subscribe_requests() {
        assert_eq!(
            subscribe_request(&[("books", "BTC-USDT"), ("funding-rate", "BTC-USDT-SWAP")]),
            r#"{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"},{"channel":"funding-rate","instId":"BTC-USDT-SWAP"}]}"#
        );
        assert_eq!(subscribe_request(&[]), r#"{"op":"subscribe","args":[]}"#);
    }
}
