//! The simulator's order entry and private streams: which front end serves a request, and the
//! fan-out of account reports to the private sessions that watch the account.
//!
//! Each venue's front end (`binance_trade`, `bybit_trade`, `okx_trade`) parses and verifies the
//! venue's own requests, calls the shared [`Exchange`], and renders answers and reports in the
//! venue's formats. Reports reach sessions through unbounded per-session queues: an account's
//! private events are never dropped (a session that stops reading is ended by its socket).

use std::sync::MutexGuard;
use std::sync::PoisonError;

use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;

use super::exchange::{AccountId, Exchange, ExecReport};
use super::server::Shared;
use super::{binance_trade, bybit_trade, okx_trade};
use crate::venue::Protocol;

/// Which private websocket a path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PrivatePath {
    /// Binance WebSocket API (`/ws-api/v3`, `/ws-fapi/v1`).
    BinanceWsApi,
    /// A Binance USD-M user data stream (`/ws/<listenKey>` on the order-entry host).
    BinanceUserStream(String),
    /// Bybit v5 order entry (`/v5/trade`).
    BybitTrade,
    /// Bybit v5 private streams (`/v5/private`).
    BybitPrivate,
    /// OKX v5 private websocket (`/ws/v5/private`): login, orders channel and order entry.
    OkxPrivate,
}

/// A REST request as the front ends see it.
#[derive(Debug)]
pub(crate) struct RestRequest<'a> {
    /// `GET`, `POST`, `DELETE`, `PUT`.
    pub method: &'a str,
    /// The path after the venue name, with its leading `/` (`/api/v3/openOrders`).
    pub path: &'a str,
    /// The raw query string (still percent-encoded), empty when none.
    pub query: &'a str,
    /// Header names (lowercase) and values.
    pub headers: &'a [(String, String)],
    /// The request body (form or JSON), empty when none.
    pub body: &'a str,
}

impl RestRequest<'_> {
    /// A header's value by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The private websocket `path` (after the venue name) names on a venue of protocol `api`.
pub(crate) fn ws_route(shared: &Shared, api: Protocol, path: &str) -> Option<PrivatePath> {
    match api {
        Protocol::BinanceSpot | Protocol::BinanceUsdm => binance_trade::ws_route(shared, api, path),
        Protocol::BybitSpot | Protocol::BybitLinear => bybit_trade::ws_route(path),
        Protocol::Okx => okx_trade::ws_route(path),
    }
}

/// Answers a private REST request (status, JSON body), or `None` when `req.path` is not one of
/// the venue's private endpoints.
pub(crate) fn rest(shared: &Shared, venue: usize, req: &RestRequest<'_>) -> Option<(u16, String)> {
    match shared.venue_api(venue) {
        api @ (Protocol::BinanceSpot | Protocol::BinanceUsdm) => binance_trade::rest(shared, venue, api, req),
        Protocol::BybitSpot | Protocol::BybitLinear => bybit_trade::rest(shared, venue, req),
        Protocol::Okx => okx_trade::rest(shared, venue, req),
    }
}

/// Serves one private websocket session until it ends.
pub(crate) async fn run_session(
    ws: WebSocketStream<TcpStream>,
    shared: &Shared,
    venue: usize,
    path: PrivatePath,
    stop: watch::Receiver<bool>,
) {
    match path {
        PrivatePath::BinanceWsApi => binance_trade::run_ws_api(ws, shared, venue, stop).await,
        PrivatePath::BinanceUserStream(key) => binance_trade::run_user_stream(ws, shared, venue, &key, stop).await,
        PrivatePath::BybitTrade => bybit_trade::run_trade(ws, shared, venue, stop).await,
        PrivatePath::BybitPrivate => bybit_trade::run_private(ws, shared, venue, stop).await,
        PrivatePath::OkxPrivate => okx_trade::run_private(ws, shared, venue, stop).await,
    }
}

/// First path segment of the simulator's own (not a venue's) endpoints: `GET /_sim/accounts`
/// shows every account's positions, open orders and fills, for operators and tests checking
/// that an engine's state equals the venue's. It never shows keys.
pub(crate) const ADMIN_PATH: &str = "_sim";

/// Sessions watching accounts.
#[derive(Debug, Default)]
pub(crate) struct PrivateHub {
    subs: Vec<(u64, AccountId, mpsc::UnboundedSender<ExecReport>)>,
    next: u64,
    scratch: Vec<ExecReport>,
}

impl Shared {
    /// The back office.
    pub(crate) fn lock_exchange(&self) -> MutexGuard<'_, Exchange> {
        self.exchange.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_private(&self) -> MutexGuard<'_, PrivateHub> {
        self.private.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts delivering `account`'s reports to a new queue; returns its id (to unsubscribe)
    /// and the queue.
    pub(crate) fn subscribe_private(&self, account: AccountId) -> (u64, mpsc::UnboundedReceiver<ExecReport>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut hub = self.lock_private();
        hub.next += 1;
        let id = hub.next;
        hub.subs.push((id, account, tx));
        (id, rx)
    }

    /// Stops a subscription.
    pub(crate) fn unsubscribe_private(&self, id: u64) {
        self.lock_private().subs.retain(|(i, _, _)| *i != id);
    }

    /// Every account as JSON: per account its venue, index, net position per instrument (the
    /// signed sum of its fills, spot and perpetual alike), open orders and fills (client id
    /// and trade id), all quantities and prices as exact decimal strings.
    pub(crate) fn accounts_json(&self) -> String {
        use serde_json::json;
        let ex = self.lock_exchange();
        let reg = &self.registry;
        let side = |s: super::book::Side| if s == super::book::Side::Bid { "BUY" } else { "SELL" };
        let accounts: Vec<_> = ex
            .accounts()
            .iter()
            .map(|a| {
                let fills = ex.fills(a.id, None, i64::MIN);
                let mut net = std::collections::BTreeMap::new();
                for f in &fills {
                    let signed = if f.side == super::book::Side::Bid { f.qty } else { -f.qty };
                    *net.entry(f.instrument).or_insert(0i64) += signed;
                }
                let qty = |id: crossbar_engine::instrument::InstrumentId, m: i64| {
                    crossbar_engine::fixed::display(m, reg.get(id).qty_scale).to_string()
                };
                let px = |id: crossbar_engine::instrument::InstrumentId, m: i64| {
                    crossbar_engine::fixed::display(m, reg.get(id).price_scale).to_string()
                };
                json!({
                    "venue": a.venue,
                    "account": a.id.0,
                    "positions": net.iter().map(|(id, m)| json!({"symbol": reg.get(*id).symbol, "qty": qty(*id, *m)})).collect::<Vec<_>>(),
                    "open_orders": ex.open_orders(a.id, None).iter().map(|o| json!({
                        "client_id": o.client_id,
                        "symbol": reg.get(o.instrument).symbol,
                        "side": side(o.side),
                        "px": o.px.map(|p| px(o.instrument, p)),
                        "qty": qty(o.instrument, o.qty),
                        "filled": qty(o.instrument, o.filled_qty),
                    })).collect::<Vec<_>>(),
                    "fills": fills.iter().map(|f| json!({
                        "client_id": f.client_id,
                        "trade_id": f.trade_id,
                        "symbol": reg.get(f.instrument).symbol,
                        "side": side(f.side),
                        "px": px(f.instrument, f.px),
                        "qty": qty(f.instrument, f.qty),
                        "fee": f.fee.normalize().to_string(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "accounts": accounts }).to_string()
    }

    /// Sends every report the exchange queued to the sessions watching its account. Call after
    /// every exchange call that can change orders (place, cancel, a market step).
    pub(crate) fn publish_reports(&self) {
        let mut hub = self.lock_private();
        let hub = &mut *hub;
        self.lock_exchange().drain_reports(&mut hub.scratch);
        for r in hub.scratch.drain(..) {
            hub.subs.retain(|(_, account, tx)| *account != r.order.account || tx.send(r.clone()).is_ok());
        }
    }
}
