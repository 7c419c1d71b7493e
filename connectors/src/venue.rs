//! Venue configuration and the wiring from config to connections.
//!
//! A venue is a name (unique in the run), a protocol (which connector speaks to it) and where it
//! lives: a real `wss://` base URL, or `sim` for the embedded simulator. The connector code is
//! the same either way; only the base URL differs.

use crossbar_engine::event::MarketEvent;
use crossbar_engine::instrument::{Instrument, Registry};
use serde::Deserialize;

use crate::binance::{BinanceDecoder, BinanceMarket, combined_stream_path, stream_names};
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
        self.ws_url == "sim"
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
}

/// Builds one market-data connection per venue: its URL (`base_url(venue)` plus the venue's
/// stream path), its decoder and its instruments.
///
/// # Errors
/// A [`VenueError`] for a venue that cannot be wired.
pub fn build_feeds(
    venues: &[VenueConfig],
    registry: &Registry,
    base_url: impl Fn(&VenueConfig) -> String,
) -> Result<Vec<FeedSpec<VenueDecoder>>, VenueError> {
    let mut feeds = Vec::with_capacity(venues.len());
    for v in venues {
        let Some(venue) = registry.venue_id(&v.name) else { continue };
        let instruments: Vec<&Instrument> = registry.instruments().iter().filter(|i| i.venue == venue).collect();
        if instruments.is_empty() {
            return Err(VenueError::NoInstruments(v.name.clone()));
        }
        let base = base_url(v);
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
        });
    }
    Ok(feeds)
}
