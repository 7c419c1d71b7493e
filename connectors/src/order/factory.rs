//! From config to order sessions: which session type speaks a protocol, and the
//! [`SessionConfig`] of every venue whose orders go over its own protocol.

use crossbar_engine::instrument::Registry;

use super::{Credentials, OrderError, OrderSession, SessionConfig, SessionInstrument};
use crate::venue::{Endpoints, GatewayKind, Protocol, VenueConfig, VenueError};

/// The order session for `cfg`'s protocol: Binance's WebSocket API (spot and USD-M), Bybit v5
/// or OKX v5.
///
/// # Errors
/// The session's own refusal (credentials that do not suit the venue).
pub fn session_for(cfg: SessionConfig) -> Result<Box<dyn OrderSession>, OrderError> {
    Ok(match cfg.protocol {
        Protocol::BinanceSpot | Protocol::BinanceUsdm => Box::new(crate::binance::trade::BinanceSession::new(cfg)?),
        Protocol::BybitSpot | Protocol::BybitLinear => Box::new(crate::bybit::trade::BybitSession::new(cfg)?),
        Protocol::Okx => Box::new(crate::okx::trade::OkxSession::new(cfg)?),
    })
}

/// The instruments of `venue` in `registry`, as its order session needs them.
pub fn session_instruments(registry: &Registry, venue: crossbar_engine::instrument::VenueId) -> Vec<SessionInstrument> {
    registry
        .instruments()
        .iter()
        .filter(|i| i.venue == venue)
        .map(|i| SessionInstrument {
            id: i.id,
            symbol: i.symbol.clone(),
            kind: i.kind,
            base: i.base.clone(),
            quote: i.quote.clone(),
            price_scale: i.price_scale,
            qty_scale: i.qty_scale,
            contract_size: i.contract_size,
        })
        .collect()
}

/// One [`SessionConfig`] per venue whose `gateway` is `venue`, in config order.
///
/// `endpoints` resolves a venue's order-entry websocket base (`ws`) and REST base (`rest`),
/// `sim` replaced by the simulator's URLs; `credentials` produces its account's credentials
/// (loaded from the environment or key files, or drawn fresh for a simulated venue).
///
/// # Errors
/// [`VenueError::NoInstruments`] for a venue without instruments, and whatever `credentials`
/// returns.
pub fn session_configs(
    venues: &[VenueConfig],
    registry: &Registry,
    endpoints: impl Fn(&VenueConfig) -> Endpoints,
    mut credentials: impl FnMut(&VenueConfig) -> Result<Credentials, VenueError>,
) -> Result<Vec<SessionConfig>, VenueError> {
    let mut out = Vec::new();
    for v in venues.iter().filter(|v| v.gateway == GatewayKind::Venue) {
        let Some(venue) = registry.venue_id(&v.name) else { continue };
        let instruments = session_instruments(registry, venue);
        if instruments.is_empty() {
            return Err(VenueError::NoInstruments(v.name.clone()));
        }
        let Endpoints { ws, rest } = endpoints(v);
        out.push(SessionConfig {
            venue,
            venue_name: v.name.clone(),
            protocol: v.protocol,
            ws_url: ws,
            rest_url: rest,
            credentials: credentials(v)?,
            instruments,
            recv_window_ms: v.recv_window_ms,
        });
    }
    Ok(out)
}
