//! Venue configuration and the wiring from config to connections.
//!
//! A venue is a name (unique in the run), a protocol (which connector speaks to it) and where it
//! lives: a real `wss://` base URL, or `sim` for the embedded simulator. The connector code is
//! the same either way; only the base URL differs.

use crossbar_engine::event::{BookUpdateKind, Level, MarketBody, MarketEvent, SeqIds, Side};
use crossbar_engine::instrument::{Instrument, InstrumentId, Registry};
use crossbar_engine::orderbook::{SyncRule, for_each_chunk};
use serde::Deserialize;

use crate::binance::{BinanceDecoder, BinanceMarket, combined_stream_path, parse_depth_snapshot, stream_names};
use crate::feed::{DecodeError, FeedDecoder, FrameKind, SymbolTable};
use crate::io::FeedSpec;

/// Which wire protocol a venue speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Protocol {
    /// Binance spot streams.
    #[serde(rename = "binance-spot")]
    BinanceSpot,
    /// Binance USD-M futures streams.
    #[serde(rename = "binance-usdm")]
    BinanceUsdm,
}

impl Protocol {
    /// The depth-book procedure of this protocol's streams.
    pub const fn sync_rule(self) -> SyncRule {
        match self {
            Self::BinanceSpot => SyncRule::BinanceSpot,
            Self::BinanceUsdm => SyncRule::BinanceUsdm,
        }
    }

    /// The REST URL of a depth snapshot of `symbol` (the deepest the venue serves).
    pub fn snapshot_url(self, rest_base: &str, symbol: &str) -> String {
        let base = rest_base.trim_end_matches('/');
        match self {
            Self::BinanceSpot => format!("{base}/api/v3/depth?symbol={symbol}&limit=5000"),
            Self::BinanceUsdm => format!("{base}/fapi/v1/depth?symbol={symbol}&limit=1000"),
        }
    }

    /// The protocol's name as config spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::BinanceSpot => "binance-spot",
            Self::BinanceUsdm => "binance-usdm",
        }
    }
}

/// Where orders for a venue go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayKind {
    /// In-process paper matching against the venue's own book.
    #[default]
    Paper,
}

/// One `[[venues]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueConfig {
    /// Unique name; instruments refer to it.
    pub name: String,
    /// The connector that speaks to it.
    pub protocol: Protocol,
    /// Websocket base URL (`wss://stream.binance.com:9443`), or `sim` for the embedded simulator.
    #[serde(default = "sim_url")]
    pub ws_url: String,
    /// REST base URL (`https://api.binance.com`), or `sim`; book snapshots come from here.
    #[serde(default = "sim_url")]
    pub rest_url: String,
    /// Where its orders go.
    #[serde(default)]
    pub gateway: GatewayKind,
}

fn sim_url() -> String {
    "sim".to_owned()
}

impl VenueConfig {
    /// True when this venue is served by the embedded simulator.
    pub fn is_simulated(&self) -> bool {
        self.ws_url == "sim" || self.rest_url == "sim"
    }
}

/// Why the venues could not be wired.
#[derive(Debug, thiserror::Error)]
pub enum VenueError {
    /// A venue has no instrument to subscribe to.
    #[error("venue {0:?} has no instruments")]
    NoInstruments(String),
}

/// Every venue decoder crossbar ships, as one enum for static dispatch on the I/O thread.
#[derive(Clone, Debug)]
pub enum VenueDecoder {
    /// Binance spot or USD-M.
    Binance(BinanceDecoder),
}

impl FeedDecoder for VenueDecoder {
    #[inline]
    fn decode(&mut self, frame: &mut [u8], recv_ns: u64, out: &mut Vec<MarketEvent>) -> Result<FrameKind, DecodeError> {
        match self {
            Self::Binance(d) => d.decode(frame, recv_ns, out),
        }
    }

    fn snapshot(
        &mut self,
        body: &[u8],
        instrument: InstrumentId,
        recv_ns: u64,
        out: &mut Vec<MarketEvent>,
    ) -> Result<bool, DecodeError> {
        match self {
            Self::Binance(d) => {
                let Some(entry) = d.symbols().by_id(instrument) else { return Ok(false) };
                let (mut bids, mut asks) = (Vec::new(), Vec::new());
                let snap = parse_depth_snapshot(body, entry.price_scale, entry.qty_scale, &mut bids, &mut asks)?;
                let levels: Vec<(Side, Level)> =
                    bids.iter().map(|l| (Side::Buy, *l)).chain(asks.iter().map(|l| (Side::Sell, *l))).collect();
                let seq = SeqIds { last: snap.last_update_id, ..SeqIds::default() };
                for_each_chunk(BookUpdateKind::Snapshot, &levels, |chunk| {
                    out.push(MarketEvent {
                        instrument,
                        exch_ts_ms: snap.exch_ts_ms,
                        recv_ns,
                        decoded_ns: 0,
                        seq,
                        body: MarketBody::Book(chunk),
                    });
                });
                Ok(true)
            }
        }
    }
}

/// Where a venue's streams and REST API live, resolved (`sim` replaced by the simulator's URLs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// Websocket base URL.
    pub ws: String,
    /// REST base URL.
    pub rest: String,
}

/// Builds one market-data connection per venue: its URL (the websocket base plus the venue's
/// stream path), its decoder, its instruments and their REST snapshot URLs.
///
/// # Errors
/// A [`VenueError`] for a venue that cannot be wired.
pub fn build_feeds(
    venues: &[VenueConfig],
    registry: &Registry,
    endpoints: impl Fn(&VenueConfig) -> Endpoints,
) -> Result<Vec<FeedSpec<VenueDecoder>>, VenueError> {
    let mut feeds = Vec::with_capacity(venues.len());
    for v in venues {
        let Some(venue) = registry.venue_id(&v.name) else { continue };
        let instruments: Vec<&Instrument> = registry.instruments().iter().filter(|i| i.venue == venue).collect();
        if instruments.is_empty() {
            return Err(VenueError::NoInstruments(v.name.clone()));
        }
        let Endpoints { ws: base, rest } = endpoints(v);
        let market = match v.protocol {
            Protocol::BinanceSpot => BinanceMarket::Spot,
            Protocol::BinanceUsdm => BinanceMarket::UsdM,
        };
        let streams: Vec<String> = instruments.iter().flat_map(|i| stream_names(&i.symbol, market)).collect();
        feeds.push(FeedSpec {
            venue: v.name.clone(),
            url: format!("{}{}", base.trim_end_matches('/'), combined_stream_path(&streams)),
            subscribe: None,
            decoder: VenueDecoder::Binance(BinanceDecoder::new(market, SymbolTable::for_venue(registry, venue))),
            instruments: instruments.iter().map(|i| i.id).collect(),
            snapshot_urls: instruments.iter().map(|i| (i.id, v.protocol.snapshot_url(&rest, &i.symbol))).collect(),
        });
    }
    Ok(feeds)
}
