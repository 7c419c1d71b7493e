//! Order entry on the venues' own protocols: the client side of every venue's private API.
//!
//! One [`OrderSession`] per venue speaks that venue's order-entry protocol over its own
//! connections (Binance's WebSocket API and user data stream, Bybit v5's trade and private
//! websockets, OKX v5's private websocket), signs as the venue checks, and turns the venue's
//! acks, fills and rejects into the engine's [`OrderEvent`]s. [`VenueGateway`] puts the sessions
//! of one I/O thread behind the engine's [`Gateway`] trait, so the I/O loop drives them exactly
//! as it drives the paper gateway.
//!
//! Per order nothing allocates: frames are written into buffers the session owns, and sent as
//! raw masked websocket frames ([`crate::ws::WsConn::send_raw_text`]).
//!
//! [`Gateway`]: crossbar_engine::gateway::Gateway

pub mod ephemeral;
pub mod factory;
pub mod gateway;

use std::time::Duration;

use crossbar_engine::event::{ClientOrderId, OrderCommand, OrderEvent};
use crossbar_engine::fixed::Scale;
use crossbar_engine::gateway::GatewayError;
use crossbar_engine::instrument::VenueId;
use crossbar_engine::journal::VenueState;

pub use ephemeral::ephemeral_credentials;
pub use factory::{session_configs, session_for};
pub use gateway::{RunGateway, VenueGateway};

use crate::auth::SecretString;
use crate::venue::Protocol;
use crossbar_engine::instrument::{InstrumentId, InstrumentKind};
use rust_decimal::Decimal;

/// The private key of an API key, as the venue's key type needs it.
pub enum SecretKey {
    /// An HMAC-SHA256 secret (Binance HMAC keys, Bybit, OKX).
    Hmac(SecretString),
    /// An Ed25519 private key, PKCS#8 PEM (Binance Ed25519 keys: `session.logon`).
    Ed25519(SecretString),
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Hmac(_) => "Hmac(***)",
            Self::Ed25519(_) => "Ed25519(***)",
        })
    }
}

/// One venue account's credentials, loaded from the environment or a key file (never from
/// config text), zeroed on drop, printed as `***`.
#[derive(Debug)]
pub struct Credentials {
    /// The API key (sent to the venue, but still kept out of logs).
    pub api_key: SecretString,
    /// Its secret or private key.
    pub key: SecretKey,
    /// OKX's passphrase.
    pub passphrase: Option<SecretString>,
}

/// One instrument as an order session needs it: the venue's symbol and the scales of its
/// prices and quantities on the wire.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionInstrument {
    /// Engine id.
    pub id: InstrumentId,
    /// The venue's symbol (`BTCUSDT`, `BTC-USDT-SWAP`).
    pub symbol: String,
    /// Spot or perpetual.
    pub kind: InstrumentKind,
    /// Base asset.
    pub base: String,
    /// Quote asset.
    pub quote: String,
    /// Decimal places of prices.
    pub price_scale: Scale,
    /// Decimal places of quantities.
    pub qty_scale: Scale,
    /// Units of base per contract.
    pub contract_size: Decimal,
}

/// Everything an [`OrderSession`] is built from.
#[derive(Debug)]
pub struct SessionConfig {
    /// The venue's id in the run's registry.
    pub venue: VenueId,
    /// The venue's configured name (logs, reports).
    pub venue_name: String,
    /// Its protocol.
    pub protocol: Protocol,
    /// Order-entry websocket base URL: `wss://ws-api.binance.com:443`, or the simulator's
    /// `ws://127.0.0.1:PORT/<venue>`; the session appends its protocol's paths
    /// (`/ws-api/v3`, `/ws-fapi/v1`, `/v5/trade` and `/v5/private`, `/ws/v5/private`).
    pub ws_url: String,
    /// REST base URL (fallback and start-up queries), e.g. `https://api.binance.com` or
    /// `http://127.0.0.1:PORT/<venue>`.
    pub rest_url: String,
    /// The account's credentials.
    pub credentials: Credentials,
    /// The venue's instruments in this run.
    pub instruments: Vec<SessionInstrument>,
    /// How long after its timestamp a request stays valid at the venue (`recvWindow`), ms.
    pub recv_window_ms: u64,
}

/// Why a session could not do what was asked outside the per-order path (start-up queries,
/// credentials). Messages never carry secrets.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// Credentials could not be loaded or used.
    #[error("credentials: {0}")]
    Auth(#[from] crate::auth::AuthError),
    /// The connection could not be opened or broke.
    #[error("connection: {0}")]
    Ws(#[from] crate::ws::WsError),
    /// The venue answered a request with an error.
    #[error("venue refused {request}: code {code}: {msg}")]
    Venue {
        /// The request that failed (`openOrders.status`, `login`, …).
        request: &'static str,
        /// The venue's error code.
        code: i64,
        /// The venue's message.
        msg: String,
    },
    /// The venue's answer could not be understood.
    #[error("malformed answer to {request}: {detail}")]
    Malformed {
        /// The request.
        request: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// No answer in time.
    #[error("no answer to {0} in time")]
    Timeout(&'static str),
    /// An HTTP (REST fallback) request failed.
    #[error("http: {0}")]
    Http(String),
}

/// Per-session counters: the report's `venues` row of one venue (the session fills in
/// everything but `venue` and `gateway`, which the gateway sets).
pub type SessionStats = crossbar_engine::gateway::VenueCounters;

/// One venue's order-entry protocol, client side, driven by the I/O thread that owns it.
///
/// Every method but [`OrderSession::venue_state`] is non-blocking: connects and logins progress
/// through [`OrderSession::maintain`], answers arrive through [`OrderSession::poll`].
pub trait OrderSession: Send {
    /// The protocol's name for reports (`binance-ws-api`, `bybit-v5-ws`, `okx-v5-ws`).
    fn gateway_name(&self) -> &'static str;

    /// The venue it serves.
    fn venue(&self) -> VenueId;

    /// Connects, logs in and subscribes private streams when down (with jittered back-off),
    /// keeps open connections alive (pings, idle timeouts). Called about every millisecond by
    /// the I/O thread, and once before the first [`OrderSession::send`]. Sockets it opens are
    /// registered with `registry` under `token` (all of a session's sockets share it); sockets
    /// it closes are deregistered.
    fn maintain(&mut self, now_ns: u64, registry: &mio::Registry, token: mio::Token);

    /// True when orders can be written now (connected and logged in).
    fn ready(&self) -> bool;

    /// Encodes, signs and writes a new order or cancel. Returns once the bytes are written to
    /// the socket (or the socket's send buffer); the venue's answer comes through `poll`.
    ///
    /// # Errors
    /// [`GatewayError::Disconnected`] when not ready (the order was not written), and
    /// [`GatewayError::NotServed`] for an instrument of another venue.
    fn send(&mut self, cmd: &OrderCommand, now_ns: u64) -> Result<(), GatewayError>;

    /// Reads whatever the venue has sent without blocking and hands out the order events.
    fn poll(&mut self, now_ns: u64, out: &mut dyn FnMut(OrderEvent));

    /// Counters so far.
    fn stats(&self) -> SessionStats;

    /// What the venue says the account holds (open orders, recent fills, positions), asked over
    /// a connection of its own and waited for (up to `timeout`): used once at start, before
    /// the I/O thread runs, to reconcile the journal with the venue.
    ///
    /// # Errors
    /// An [`OrderError`] when the venue could not be asked or answered with an error.
    fn venue_state(&mut self, timeout: Duration) -> Result<VenueState, OrderError>;
}

/// Prefix of every client order id crossbar sends: ids without it are not crossbar's.
pub const CLIENT_ID_PREFIX: &str = "xb";

/// Longest wire client id: `xb` + 20 digits.
pub const CLIENT_ID_MAX: usize = 22;

/// Writes `id` as the venue client order id `xb<decimal>`: letters and digits only, so every
/// venue's rules accept it (Binance ≤ 36 chars, Bybit `orderLinkId` ≤ 36, OKX `clOrdId` ≤ 32
/// alphanumerics).
pub fn write_client_id(out: &mut Vec<u8>, id: ClientOrderId) {
    out.extend_from_slice(CLIENT_ID_PREFIX.as_bytes());
    write_u64(out, id.0);
}

/// Parses a venue client order id written by [`write_client_id`]; `None` for anything else (an
/// order placed by hand or by another system on the same account).
pub fn parse_client_id(wire: &[u8]) -> Option<ClientOrderId> {
    let digits = wire.strip_prefix(CLIENT_ID_PREFIX.as_bytes())?;
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(ClientOrderId(v))
}

/// Appends `v` in decimal without allocating (beyond `out`'s capacity).
pub fn write_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends a fixed-point mantissa at `scale` as a plain decimal (`"0.015"`, `"100"`), exact,
/// without trailing zeros and without allocating: how prices and quantities go on the wire.
pub fn write_fixed(out: &mut Vec<u8>, mantissa: i64, scale: Scale) {
    if mantissa < 0 {
        out.push(b'-');
    }
    let m = mantissa.unsigned_abs();
    let places = u32::from(scale.places());
    let pow = 10u64.pow(places);
    write_u64(out, m / pow);
    let mut frac = m % pow;
    if frac == 0 {
        return;
    }
    out.push(b'.');
    let mut width = places;
    while frac.is_multiple_of(10) {
        frac /= 10;
        width -= 1;
    }
    let start = out.len();
    write_u64(out, frac);
    let written = (out.len() - start) as u32;
    for _ in written..width {
        out.insert(start, b'0');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(m: i64, places: u8) -> String {
        let mut out = Vec::new();
        write_fixed(&mut out, m, Scale::new(places).unwrap());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fixed_point_values_are_written_exactly_without_trailing_zeros() {
        assert_eq!(fixed(1_000_000, 2), "10000");
        assert_eq!(fixed(1_000_050, 2), "10000.5");
        assert_eq!(fixed(15, 3), "0.015");
        assert_eq!(fixed(1, 8), "0.00000001");
        assert_eq!(fixed(0, 4), "0");
        assert_eq!(fixed(-2_500, 3), "-2.5");
        assert_eq!(fixed(123_456_789, 0), "123456789");
    }

    #[test]
    fn client_ids_round_trip_and_foreign_ids_are_not_ours() {
        let mut out = Vec::new();
        write_client_id(&mut out, ClientOrderId(u64::MAX));
        assert_eq!(out, b"xb18446744073709551615");
        assert!(out.len() <= CLIENT_ID_MAX);
        assert_eq!(parse_client_id(&out), Some(ClientOrderId(u64::MAX)));
        assert_eq!(parse_client_id(b"xb42"), Some(ClientOrderId(42)));
        for foreign in [&b"web_123"[..], b"xb", b"xb12a", b"XB12", b"xb184467440737095516150"] {
            assert_eq!(parse_client_id(foreign), None, "{foreign:?}");
        }
    }
}
