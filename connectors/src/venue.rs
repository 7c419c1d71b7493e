//! Venue configuration and the wiring from config to connections.
//!
//! A venue is a name (unique in the run), a protocol (which connector speaks to it) and where it
//! lives: a real `wss://` base URL, or `sim` for the embedded simulator. The connector code is
//! the same either way; only the base URL differs.

use crossbar_engine::event::{BookUpdateKind, Level, MarketBody, MarketEvent, SeqIds, Side};
use crossbar_engine::instrument::{Instrument, InstrumentId, InstrumentKind, Registry};
use crossbar_engine::orderbook::{SyncRule, for_each_chunk};
use serde::Deserialize;

use crate::auth::{AuthError, KeySource};
use crate::binance::{BinanceDecoder, BinanceMarket, combined_stream_path, parse_depth_snapshot, stream_names};
use crate::bybit::{self, BybitCategory, BybitDecoder};
use crate::feed::{DecodeError, FeedDecoder, FrameKind, SymbolTable};
use crate::io::{FeedSpec, Heartbeat};
use crate::okx::{self, OkxDecoder};
use crate::order::{Credentials, SecretKey};

/// Which wire protocol a venue speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Protocol {
    /// Binance spot streams.
    #[serde(rename = "binance-spot")]
    BinanceSpot,
    /// Binance USD-M futures streams.
    #[serde(rename = "binance-usdm")]
    BinanceUsdm,
    /// Bybit v5 public spot streams (`/v5/public/spot`).
    #[serde(rename = "bybit-spot")]
    BybitSpot,
    /// Bybit v5 public linear (USDT perpetual) streams (`/v5/public/linear`).
    #[serde(rename = "bybit-linear")]
    BybitLinear,
    /// OKX v5 public channels (`/ws/v5/public`), spot and swap instruments alike.
    #[serde(rename = "okx")]
    Okx,
}

impl Protocol {
    /// The depth-book procedure of this protocol's streams.
    pub const fn sync_rule(self) -> SyncRule {
        match self {
            Self::BinanceSpot => SyncRule::BinanceSpot,
            Self::BinanceUsdm => SyncRule::BinanceUsdm,
            Self::BybitSpot | Self::BybitLinear => SyncRule::Bybit,
            Self::Okx => SyncRule::Okx,
        }
    }

    /// The REST URL of a depth snapshot of `symbol` (the deepest the venue serves), for
    /// protocols whose books start from one; `None` for Bybit and OKX, whose books start from
    /// the snapshot the stream sends on (re)subscribe.
    pub fn snapshot_url(self, rest_base: &str, symbol: &str) -> Option<String> {
        let base = rest_base.trim_end_matches('/');
        match self {
            Self::BinanceSpot => Some(format!("{base}/api/v3/depth?symbol={symbol}&limit=5000")),
            Self::BinanceUsdm => Some(format!("{base}/fapi/v1/depth?symbol={symbol}&limit=1000")),
            Self::BybitSpot | Self::BybitLinear | Self::Okx => None,
        }
    }

    /// The keep-alive rules of the venue: Bybit wants `{"op":"ping"}` every 20 s, OKX the text
    /// `ping` when nothing arrived for a while (it drops a connection quiet for 30 s), Binance
    /// pings us itself. Every venue gets an idle timeout: a connection with no frame at all for
    /// that long is presumed dead and reconnected.
    pub const fn heartbeat(self) -> Heartbeat {
        const S: u64 = 1_000_000_000;
        match self {
            Self::BinanceSpot | Self::BinanceUsdm => {
                Heartbeat { ping: None, every_ns: 0, when_quiet: false, idle_timeout_ns: 60 * S }
            }
            Self::BybitSpot | Self::BybitLinear => {
                Heartbeat { ping: Some(BYBIT_PING), every_ns: 20 * S, when_quiet: false, idle_timeout_ns: 45 * S }
            }
            Self::Okx => {
                Heartbeat { ping: Some(OKX_PING), every_ns: 25 * S, when_quiet: true, idle_timeout_ns: 40 * S }
            }
        }
    }

    /// The venue's real order-entry websocket base URL (what `order_ws_url` names for live
    /// trading): Binance's WebSocket API hosts, Bybit's and OKX's websocket hosts.
    pub const fn live_order_ws_url(self) -> &'static str {
        match self {
            Self::BinanceSpot => "wss://ws-api.binance.com:443",
            Self::BinanceUsdm => "wss://ws-fapi.binance.com",
            Self::BybitSpot | Self::BybitLinear => "wss://stream.bybit.com",
            Self::Okx => "wss://ws.okx.com:8443",
        }
    }

    /// The protocol's name as config spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::BinanceSpot => "binance-spot",
            Self::BinanceUsdm => "binance-usdm",
            Self::BybitSpot => "bybit-spot",
            Self::BybitLinear => "bybit-linear",
            Self::Okx => "okx",
        }
    }
}

/// Bybit's application ping (its answer is `{"op":"pong",..}` or `"ret_msg":"pong"`).
pub const BYBIT_PING: &str = r#"{"op":"ping"}"#;
/// OKX's application ping (its answer is the text `pong`).
pub const OKX_PING: &str = "ping";

/// Where orders for a venue go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayKind {
    /// The venue's own order-entry protocol (Binance WebSocket API, Bybit v5 and OKX v5 private
    /// websockets), signed with the account's credentials: to the real venue, or to the
    /// simulator, which speaks the same protocols.
    #[default]
    Venue,
    /// In-process paper matching against the venue's own book: an explicit research option.
    Paper,
}

/// `[venues.credentials]`: where a venue account's secrets live. Each entry is a
/// [`KeySource`] (`{ env = "VAR" }` or `{ file = "path" }`), never the secret itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    /// The API key.
    pub api_key: KeySource,
    /// An HMAC-SHA256 API secret (Binance HMAC keys, Bybit, OKX).
    #[serde(default)]
    pub secret: Option<KeySource>,
    /// An Ed25519 private key, PKCS#8 PEM (Binance Ed25519 keys).
    #[serde(default)]
    pub private_key: Option<KeySource>,
    /// OKX's API passphrase.
    #[serde(default)]
    pub passphrase: Option<KeySource>,
}

impl CredentialsConfig {
    /// Checks the sources are well-formed and that exactly one of `secret` and `private_key`
    /// is given, so a bad table fails at config load rather than at the first login.
    ///
    /// # Errors
    /// One line naming the field.
    pub fn validate(&self) -> Result<(), String> {
        self.api_key.validate().map_err(|e| format!("credentials.api_key: {e}"))?;
        let sources = [("secret", &self.secret), ("private_key", &self.private_key), ("passphrase", &self.passphrase)];
        for (name, src) in sources {
            if let Some(src) = src {
                src.validate().map_err(|e| format!("credentials.{name}: {e}"))?;
            }
        }
        match (&self.secret, &self.private_key) {
            (Some(_), Some(_)) => Err("credentials: give `secret` (HMAC) or `private_key` (Ed25519), not both".into()),
            (None, None) => Err("credentials: give `secret` (HMAC) or `private_key` (Ed25519)".into()),
            _ => Ok(()),
        }
    }

    /// Loads the secrets from the environment or the key files named, for venue `venue`.
    ///
    /// # Errors
    /// [`VenueError::Credentials`] naming the venue and the variable or file (never the
    /// content).
    pub fn load(&self, venue: &str) -> Result<Credentials, VenueError> {
        let fail = |detail: String| VenueError::Credentials { venue: venue.to_owned(), detail };
        self.validate().map_err(fail)?;
        let auth = |e: AuthError| fail(e.to_string());
        let api_key = self.api_key.load().map_err(auth)?;
        let key = match (&self.secret, &self.private_key) {
            (Some(s), _) => SecretKey::Hmac(s.load().map_err(auth)?),
            (None, Some(k)) => SecretKey::Ed25519(k.load().map_err(auth)?),
            (None, None) => return Err(fail("credentials: no secret".into())),
        };
        Ok(Credentials {
            api_key,
            key,
            passphrase: self.passphrase.as_ref().map(KeySource::load).transpose().map_err(auth)?,
        })
    }
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
    /// Where its orders go: `venue` (its own order-entry protocol, the default) or `paper`.
    #[serde(default)]
    pub gateway: GatewayKind,
    /// Order-entry websocket base URL, or `sim` for the embedded simulator. Real ones:
    /// `wss://ws-api.binance.com:443` (spot), `wss://ws-fapi.binance.com` (USD-M),
    /// `wss://stream.bybit.com`, `wss://ws.okx.com:8443`; the session appends its paths.
    #[serde(default = "sim_url")]
    pub order_ws_url: String,
    /// How long a signed request stays valid at the venue (`recvWindow`), ms.
    #[serde(default = "default_recv_window_ms")]
    pub recv_window_ms: u64,
    /// Where the account's secrets live (environment variables or key files). Without it, a
    /// simulated venue gets fresh random credentials for the run; a real one cannot trade.
    #[serde(default)]
    pub credentials: Option<CredentialsConfig>,
}

fn sim_url() -> String {
    "sim".to_owned()
}

const fn default_recv_window_ms() -> u64 {
    5_000
}

impl VenueConfig {
    /// True when this venue is served by the embedded simulator (its market data or its
    /// order entry).
    pub fn is_simulated(&self) -> bool {
        self.ws_url == "sim" || self.rest_url == "sim" || self.orders_simulated()
    }

    /// True when this venue's orders go to the embedded simulator's order entry.
    pub fn orders_simulated(&self) -> bool {
        self.gateway == GatewayKind::Venue && self.order_ws_url == "sim"
    }
}

/// Why the venues could not be wired.
#[derive(Debug, thiserror::Error)]
pub enum VenueError {
    /// A venue has no instrument to subscribe to.
    #[error("venue {0:?} has no instruments")]
    NoInstruments(String),
    /// A venue's credentials could not be loaded.
    #[error("venue {venue:?}: {detail}")]
    Credentials {
        /// The venue's name.
        venue: String,
        /// What failed: the variable or file named, never a secret.
        detail: String,
    },
}

/// Every venue decoder crossbar ships, as one enum for static dispatch on the I/O thread.
#[derive(Clone, Debug)]
pub enum VenueDecoder {
    /// Binance spot or USD-M.
    Binance(BinanceDecoder),
    /// Bybit v5 spot or linear.
    Bybit(BybitDecoder),
    /// OKX v5.
    Okx(OkxDecoder),
}

impl FeedDecoder for VenueDecoder {
    #[inline]
    fn decode(&mut self, frame: &mut [u8], recv_ns: u64, out: &mut Vec<MarketEvent>) -> Result<FrameKind, DecodeError> {
        match self {
            Self::Binance(d) => d.decode(frame, recv_ns, out),
            Self::Bybit(d) => d.decode(frame, recv_ns, out),
            Self::Okx(d) => d.decode(frame, recv_ns, out),
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
            // Their books start from the snapshot the stream sends on (re)subscribe.
            Self::Bybit(_) | Self::Okx(_) => Ok(false),
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
/// stream path), the subscribe requests to send once connected (Bybit, OKX), its heartbeat, the
/// requests that resubscribe one instrument's book (Bybit, OKX: the venue answers with a fresh
/// snapshot), its decoder, its instruments and their REST snapshot URLs (Binance).
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
        let base = base.trim_end_matches('/');
        let symbols = SymbolTable::for_venue(registry, venue);
        let ids: Vec<InstrumentId> = instruments.iter().map(|i| i.id).collect();
        let (url, subscribe, resubscribe, decoder) = match v.protocol {
            Protocol::BinanceSpot | Protocol::BinanceUsdm => {
                let market =
                    if v.protocol == Protocol::BinanceSpot { BinanceMarket::Spot } else { BinanceMarket::UsdM };
                let streams: Vec<String> = instruments.iter().flat_map(|i| stream_names(&i.symbol, market)).collect();
                let url = format!("{base}{}", combined_stream_path(&streams));
                (url, Vec::new(), Vec::new(), VenueDecoder::Binance(BinanceDecoder::new(market, symbols)))
            }
            Protocol::BybitSpot | Protocol::BybitLinear => {
                let category =
                    if v.protocol == Protocol::BybitSpot { BybitCategory::Spot } else { BybitCategory::Linear };
                let topics: Vec<String> = instruments.iter().flat_map(|i| bybit::topics(&i.symbol, category)).collect();
                // Bybit takes at most 10 topics per spot request.
                let subscribe = topics.chunks(10).map(bybit::subscribe_request).collect();
                let resubscribe = instruments
                    .iter()
                    .map(|i| {
                        let topic = [format!("orderbook.{}.{}", bybit::BOOK_DEPTH, i.symbol)];
                        let unsub = bybit::subscribe_request(&topic).replacen("subscribe", "unsubscribe", 1);
                        (i.id, vec![unsub, bybit::subscribe_request(&topic)])
                    })
                    .collect();
                let url = format!("{base}{}", category.ws_path());
                (url, subscribe, resubscribe, VenueDecoder::Bybit(BybitDecoder::new(category, symbols)))
            }
            Protocol::Okx => {
                let args: Vec<(&str, &str)> = instruments
                    .iter()
                    .flat_map(|i| {
                        let funding =
                            (i.kind == InstrumentKind::Perpetual).then_some(("funding-rate", i.symbol.as_str()));
                        [("books", i.symbol.as_str()), ("bbo-tbt", i.symbol.as_str()), ("trades", i.symbol.as_str())]
                            .into_iter()
                            .chain(funding)
                    })
                    .collect();
                let resubscribe = instruments
                    .iter()
                    .map(|i| {
                        let sub = okx::subscribe_request(&[("books", i.symbol.as_str())]);
                        (i.id, vec![sub.replacen("subscribe", "unsubscribe", 1), sub])
                    })
                    .collect();
                let url = format!("{base}{}", okx::PUBLIC_WS_PATH);
                (url, vec![okx::subscribe_request(&args)], resubscribe, VenueDecoder::Okx(OkxDecoder::new(symbols)))
            }
        };
        feeds.push(FeedSpec {
            venue: v.name.clone(),
            url,
            subscribe,
            heartbeat: v.protocol.heartbeat(),
            resubscribe,
            decoder,
            instruments: ids,
            snapshot_urls: instruments
                .iter()
                .filter_map(|i| v.protocol.snapshot_url(&rest, &i.symbol).map(|u| (i.id, u)))
                .collect(),
        });
    }
    Ok(feeds)
}
