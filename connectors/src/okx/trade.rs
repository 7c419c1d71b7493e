//! OKX v5 order entry: the private websocket (`login`, `order`, `cancel-order`, the `orders` channel).

use std::time::Duration;

use crossbar_engine::event::{OrderCommand, OrderEvent};
use crossbar_engine::gateway::GatewayError;
use crossbar_engine::instrument::VenueId;
use crossbar_engine::journal::VenueState;

use crate::order::{OrderError, OrderSession, SessionConfig, SessionStats};

/// One Okx account's order-entry session.
#[derive(Debug)]
pub struct OkxSession {
    cfg: SessionConfig,
    stats: SessionStats,
}

impl OkxSession {
    /// A session for `cfg`'s venue; it connects on its first `maintain`.
    ///
    /// # Errors
    /// An [`OrderError`] when the credentials do not suit the venue.
    pub fn new(cfg: SessionConfig) -> Result<Self, OrderError> {
        Ok(Self { cfg, stats: SessionStats::default() })
    }
}

impl OrderSession for OkxSession {
    fn gateway_name(&self) -> &'static str {
        "okx"
    }

    fn venue(&self) -> VenueId {
        self.cfg.venue
    }

    fn maintain(&mut self, now_ns: u64, registry: &mio::Registry, token: mio::Token) {
        let _ = (now_ns, registry, token);
    }

    fn ready(&self) -> bool {
        false
    }

    fn send(&mut self, cmd: &OrderCommand, now_ns: u64) -> Result<(), GatewayError> {
        let _ = (cmd, now_ns);
        Err(GatewayError::Disconnected)
    }

    fn poll(&mut self, now_ns: u64, out: &mut dyn FnMut(OrderEvent)) {
        let _ = (now_ns, out);
    }

    fn stats(&self) -> SessionStats {
        self.stats
    }

    fn venue_state(&mut self, timeout: Duration) -> Result<VenueState, OrderError> {
        let _ = timeout;
        Err(OrderError::Timeout("venue_state"))
    }
}
