//! Binance's order entry, simulator side: the WebSocket API (`order.place`, `order.cancel`,
//! `order.status`, `session.logon`, user data streams) and the signed REST endpoints, verified
//! and answered as Binance documents them.

use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;

use super::private::{PrivatePath, RestRequest};
use super::server::Shared;
use crate::venue::Protocol;

/// The private websocket a path names on a Binance venue.
pub(crate) fn ws_route(api: Protocol, path: &str) -> Option<PrivatePath> {
    let _ = (api, path);
    None
}

/// Answers a signed REST request.
pub(crate) fn rest(shared: &Shared, venue: usize, api: Protocol, req: &RestRequest<'_>) -> Option<(u16, String)> {
    let _ = (shared, venue, api, req);
    None
}

/// Serves one WebSocket API session.
pub(crate) async fn run_ws_api(
    ws: WebSocketStream<TcpStream>,
    shared: &Shared,
    venue: usize,
    stop: watch::Receiver<bool>,
) {
    let _ = (ws, shared, venue, stop);
}

/// Serves one USD-M user data stream.
pub(crate) async fn run_user_stream(
    ws: WebSocketStream<TcpStream>,
    shared: &Shared,
    venue: usize,
    listen_key: &str,
    stop: watch::Receiver<bool>,
) {
    let _ = (ws, shared, venue, listen_key, stop);
}
