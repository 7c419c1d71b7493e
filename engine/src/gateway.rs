//! The order-entry plug-in point: where commands go.
//!
//! A gateway lives on the I/O thread that owns its venue's connections: a live venue's order
//! entry, the simulator over the same wire protocol, or the in-process paper matcher. It must not
//! block: `send` writes (or queues) and returns; outcomes come back later through `poll` as order
//! events. A transport failure is reported as such, never as a venue rejection.

use crate::event::{MarketEvent, OrderCommand, OrderEvent};
use crate::instrument::VenueId;

/// Why a gateway could not take a command. The order is not failed by this: its state stays
/// unknown until the venue (or reconciliation) says.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The connection is down; the command was not written.
    #[error("gateway disconnected")]
    Disconnected,
    /// The gateway's outbound queue is full.
    #[error("gateway queue full")]
    QueueFull,
    /// The command names a venue or instrument this gateway does not serve.
    #[error("gateway does not serve this venue or instrument")]
    NotServed,
}

/// Where order commands go, driven by the I/O thread.
pub trait Gateway {
    /// The protocol name reports show (`paper`, `binance-ws-api`, …).
    fn name(&self) -> &'static str;

    /// Sees every market event the I/O thread decodes, before it goes to the core: simulated
    /// gateways match against it; live ones ignore it.
    fn on_market(&mut self, ev: &MarketEvent) {
        let _ = ev;
    }

    /// Writes (or queues) a command. Returns once the bytes are handed to the socket or queue.
    ///
    /// # Errors
    /// A [`GatewayError`] when it could not.
    fn send(&mut self, cmd: &OrderCommand, now_ns: u64) -> Result<(), GatewayError>;

    /// When the gateway next has something due without any socket activity (a simulated
    /// venue's delayed answer), so an I/O thread that sleeps in epoll wakes in time.
    fn next_due_ns(&self) -> Option<u64> {
        None
    }

    /// Hands every order event that is due by `now_ns` to `out`.
    fn poll(&mut self, now_ns: u64, out: &mut dyn FnMut(OrderEvent));

    /// A descriptor that turns readable when the gateway has input to `poll` (its own epoll
    /// instance, for a gateway with sockets), so an I/O thread sleeping in epoll wakes for it.
    fn readiness_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }

    /// Periodic upkeep, about every millisecond: connects, logins, pings, reconnects.
    fn maintain(&mut self, now_ns: u64) {
        let _ = now_ns;
    }

    /// Appends one row of counters per venue this gateway serves, for the report.
    fn venue_counters(&self, out: &mut Vec<VenueCounters>) {
        let _ = out;
    }
}

/// What one venue's order entry did in a run: the report's `venues` rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VenueCounters {
    /// The venue.
    pub venue: VenueId,
    /// The protocol its orders went over (`binance-ws-api`, `paper`, …).
    pub gateway: &'static str,
    /// New orders written to the venue.
    pub orders_sent: u64,
    /// Cancels written to the venue.
    pub cancels_sent: u64,
    /// Orders the venue accepted.
    pub acks: u64,
    /// Fills received (partial fills each count).
    pub fills: u64,
    /// Orders (or cancels) the venue refused.
    pub rejects: u64,
    /// Fills already seen (same trade id) and dropped.
    pub duplicate_fills: u64,
    /// Private frames that could not be decoded: dropped, counted.
    pub malformed: u64,
    /// Private frames of a kind the session does not use.
    pub unknown: u64,
    /// Account pushes (balances, positions: Binance `outboundAccountPosition`,
    /// `ACCOUNT_UPDATE`, `balanceUpdate`) read and not acted on: positions come from fills, and
    /// are compared with the venue's at start-up reconciliation.
    pub account_updates: u64,
    /// Successful connects and logins.
    pub connects: u64,
    /// Connections lost.
    pub disconnects: u64,
    /// Commands refused because the session was not connected and logged in.
    pub not_ready: u64,
    /// Cancel-all requests sent on reconnect (orders left open while the session was down).
    pub cancel_alls: u64,
    /// Requests the venue refused for its rate limit.
    pub rate_limited: u64,
    /// Latest estimate of venue clock minus local wall clock, ms.
    pub clock_offset_ms: i64,
    /// Weight or request budget used in the venue's current rate-limit window, as it reported.
    pub rate_used: u64,
    /// That window's limit, as the venue reported it (0: not reported).
    pub rate_limit: u64,
}
