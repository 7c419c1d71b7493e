//! Binance spot and USD-M futures market data: stream names to subscribe and the frame decoder.
//!
//! The I/O thread connects to `/stream?streams=a/b/c` (built by [`combined_stream_path`] from
//! [`stream_names`]) and hands every text frame to a [`BinanceDecoder`]. Decoding is a pure
//! function of the frame: one validating pass over the JSON, no allocation, no `f64`; prices
//! and quantities are parsed exactly at the instrument's scales.
//!
//! Payloads arrive raw or wrapped as `{"stream":"<name>","data":{...}}`, members in any order:
//!
//! ```text
//! spot bookTicker     {"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000",
//!                      "a":"25.36520000","A":"40.66000000"}
//!                     -> Quote, seq.last = u, time 0
//! USD-M bookTicker    the same plus "e":"bookTicker","E":1568014460893,"T":1568014460891
//!                     -> Quote, seq.last = u, time T
//! depthUpdate         {"e":"depthUpdate","E":123456789,"T":123456788,"s":"BTCUSDT","U":157,
//!                      "u":160,"pu":149,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}
//!                     -> Book Delta chunks, seq first/last/prev = U/u/pu (pu 0 on spot),
//!                        time T, else E
//! spot depth<N>       {"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}
//!                     -> Book Snapshot chunks, seq.last = lastUpdateId; the symbol comes
//!                        from the stream name (bnbbtc@depth5@100ms -> BNBBTC)
//! aggTrade / trade    {"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.001",
//!                      "q":"100","T":1672515782136,"m":true}
//!                     -> Trade, id a / t, m (buyer is maker) -> Sell aggressor, time T
//! markPriceUpdate     {"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000",
//!                      "i":"11784.62659091","r":"0.00038167","T":1562306400000}
//!                     -> Funding (mark p, index i, rate r, next funding T), time E
//! subscribe reply     {"result":null,"id":1}                  -> FrameKind::SubscribeAck
//! shutdown notice     {"e":"serverShutdown","E":1770123456789} or stream "!serverShutdown"
//!                                                             -> FrameKind::ServerShutdown
//! ```
//!
//! Book messages become [`BookChunk`](crossbar_engine::event::BookChunk)s of at most
//! [`BOOK_CHUNK_LEVELS`](crossbar_engine::event::BOOK_CHUNK_LEVELS) levels, bids first then
//! asks, each side in message order; every chunk of a message carries the same sequence ids.
//! USD-M partial books (`<symbol>@depth<N>`) arrive as `depthUpdate` messages; they are marked
//! `Snapshot` when the combined-stream name says so, `Delta` otherwise. Sequencing rules (what
//! `U`, `u`, `pu` and `lastUpdateId` mean for a local book) belong to the book sequencer; this
//! module only carries the ids.

mod decode;
mod depth;
pub mod trade;

pub use depth::{DepthSnapshot, parse_depth_snapshot};

use crossbar_engine::event::MarketEvent;

use crate::feed::{DecodeError, FeedDecoder, FrameKind, SymbolTable};
use crate::json::PairLog;
use crate::wire::decode_market;

/// Which Binance market a connection serves; decides the stream set and which ids are required.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinanceMarket {
    /// Spot (`stream.binance.com`): book tickers and diffs without transaction time or `pu`.
    Spot,
    /// USD-M futures (`fstream.binance.com`): diffs must carry `pu`; mark price and funding.
    UsdM,
}

/// The streams one symbol is subscribed to, lowercase as Binance names them: book ticker,
/// 100 ms diff depth and aggregate trades, plus the 1 s mark price on USD-M.
pub fn stream_names(symbol: &str, market: BinanceMarket) -> Vec<String> {
    let sym = symbol.to_ascii_lowercase();
    let mut streams = vec![format!("{sym}@bookTicker"), format!("{sym}@depth@100ms"), format!("{sym}@aggTrade")];
    if market == BinanceMarket::UsdM {
        streams.push(format!("{sym}@markPrice@1s"));
    }
    streams
}

/// The request path of a combined-stream connection: `/stream?streams=a/b/c`.
///
/// Binance allows at most 1024 streams per connection; splitting larger sets over several
/// connections is the caller's job.
pub fn combined_stream_path<S: AsRef<str>>(streams: &[S]) -> String {
    let mut path = String::from("/stream?streams=");
    for (i, stream) in streams.iter().enumerate() {
        if i > 0 {
            path.push('/');
        }
        path.push_str(stream.as_ref());
    }
    path
}

/// Decodes Binance spot or USD-M market-data frames (raw or combined streams) into
/// [`MarketEvent`]s for the symbols of its [`SymbolTable`].
///
/// Events carry `recv_ns` as given and `decoded_ns = 0` (the I/O thread stamps it). After the
/// symbol table has seen its symbols, decoding allocates nothing as long as `out` has room.
/// A frame that fails leaves `out` exactly as it was.
#[derive(Clone, Debug)]
pub struct BinanceDecoder {
    market: BinanceMarket,
    symbols: SymbolTable,
    /// Book levels the fast pass keeps while validating a frame; reused frame after frame.
    levels: Box<PairLog>,
}

impl BinanceDecoder {
    /// A decoder for `market` tracking `symbols` (spelled as Binance does: `BTCUSDT`).
    pub fn new(market: BinanceMarket, symbols: SymbolTable) -> Self {
        Self { market, symbols, levels: Box::default() }
    }

    /// The market it decodes.
    pub fn market(&self) -> BinanceMarket {
        self.market
    }

    /// The symbols it tracks (including those learned, in learning mode).
    pub fn symbols(&self) -> &SymbolTable {
        &self.symbols
    }
}

impl FeedDecoder for BinanceDecoder {
    /// Decodes one frame; see the [module documentation](self) for the message kinds.
    ///
    /// # Errors
    /// [`DecodeError::Json`] for malformed JSON (or a wrapper that is not shaped
    /// `{"stream","data"}`), [`DecodeError::MissingField`] / [`DecodeError::WrongType`] for a
    /// field the message kind needs, [`DecodeError::BadNumber`] for a price, quantity or rate
    /// that is not an exact plain decimal at its scale (exponent, `NaN`, sign, excess digits),
    /// [`DecodeError::BadInteger`] for an id or time that is not a `u64`.
    #[inline]
    fn decode(&mut self, frame: &mut [u8], recv_ns: u64, out: &mut Vec<MarketEvent>) -> Result<FrameKind, DecodeError> {
        decode_market(out, |out| {
            decode::decode_frame(self.market, &mut self.symbols, frame, recv_ns, out, Some(&mut self.levels))
        })
    }
}

impl BinanceDecoder {
    /// [`FeedDecoder::decode`] without the fast pass over compact frames: every frame walked
    /// by the general scanner. Only for the differential tests that hold the fast pass to it.
    #[doc(hidden)]
    pub fn decode_general(
        &mut self,
        frame: &[u8],
        recv_ns: u64,
        out: &mut Vec<MarketEvent>,
    ) -> Result<FrameKind, DecodeError> {
        decode_market(out, |out| decode::decode_frame(self.market, &mut self.symbols, frame, recv_ns, out, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_stream_names_and_path() {
        let spot = stream_names("BNBBTC", BinanceMarket::Spot);
        assert_eq!(spot, ["bnbbtc@bookTicker", "bnbbtc@depth@100ms", "bnbbtc@aggTrade"]);
        let usdm = stream_names("BTCUSDT", BinanceMarket::UsdM);
        assert_eq!(usdm.last().map(String::as_str), Some("btcusdt@markPrice@1s"));
        assert_eq!(combined_stream_path(&spot), "/stream?streams=bnbbtc@bookTicker/bnbbtc@depth@100ms/bnbbtc@aggTrade");
        assert_eq!(combined_stream_path::<String>(&[]), "/stream?streams=");
    }
}
