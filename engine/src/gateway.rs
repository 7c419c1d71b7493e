//! The order-entry plug-in point: where commands go.
//!
//! A gateway lives on the I/O thread that owns its venue's connections: a live venue's order
//! entry, the simulator over the same wire protocol, or the in-process paper matcher. It must not
//! block: `send` writes (or queues) and returns; outcomes come back later through `poll` as order
//! events. A transport failure is reported as such, never as a venue rejection.

use crate::event::{MarketEvent, OrderCommand, OrderEvent};

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
}
