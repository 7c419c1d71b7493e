//! Start-up queries (blocking, off the hot path): what the venue says the account holds, and
//! the USD-M REST cancel-all.
//!
//! - Spot, over a WebSocket API connection of its own: `openOrders.status` (all symbols), then
//!   per instrument `myTrades` (recent fills, which name only the venue's order id) and
//!   `allOrders` (the same orders' client ids, quantities and sides: one request per symbol
//!   rather than one per order, so a restart stays far inside the request-weight limit). Spot
//!   keeps no positions.
//! - USD-M over signed REST: `GET /fapi/v1/openOrders`, per instrument
//!   `GET /fapi/v1/userTrades` and `GET /fapi/v1/allOrders`; positions from the WebSocket
//!   API's `v2/account.position` (REST `GET /fapi/v2/positionRisk` if that fails).
//!
//! A fill whose order is older than `allOrders` reaches is looked up alone (`order.status`,
//! `GET /fapi/v1/order`).
//!
//! Orders whose client ids are not crossbar's are skipped.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::{Duration, Instant};

use crossbar_engine::event::{ClientOrderId, Fill, Side};
use crossbar_engine::fixed::{Px, Qty, Scale, parse_mantissa};
use crossbar_engine::journal::{VenueFill, VenueOrder, VenueState};
use rust_decimal::Decimal;
use serde_json::Value as J;

use super::{BinanceSession, Key, wall_ms};
use crate::auth::binance::session_logon_request;
use crate::order::{OrderError, parse_client_id};
use crate::ws::{Read, WsConn};

/// Builds `venue_state` for the session's account.
pub(super) fn venue_state(s: &mut BinanceSession, timeout: Duration) -> Result<VenueState, OrderError> {
    let deadline = Instant::now() + timeout;
    let mut ws = Blocking::connect(s, deadline)?;
    let mut trades_by_symbol: Vec<Vec<J>> = Vec::new();
    let open: Vec<J>;
    let mut positions = None;
    let rest = Rest::new(s, deadline);
    if s.usdm {
        open = as_array(rest.get(s, "/fapi/v1/openOrders", &[], "openOrders")?, "openOrders")?;
        for inst in &s.cfg.instruments {
            let sym = [("limit", "1000".to_owned()), ("symbol", inst.symbol.clone())];
            trades_by_symbol.push(as_array(rest.get(s, "/fapi/v1/userTrades", &sym, "userTrades")?, "userTrades")?);
        }
        let pos = match ws.signed(s, "v2/account.position", &[], "v2/account.position") {
            Ok(v) => v,
            Err(_) => rest.get(s, "/fapi/v2/positionRisk", &[], "positionRisk")?,
        };
        let mut list = Vec::new();
        for p in as_array(pos, "positions")? {
            let (Some(sym), Some(amt)) = (p["symbol"].as_str(), p["positionAmt"].as_str()) else { continue };
            let Some(inst) = s.cfg.instruments.iter().find(|i| i.symbol == sym) else { continue };
            let amt = Decimal::from_str(amt).map_err(|_| malformed("positions", "positionAmt"))?;
            if let Some(entry) = list.iter_mut().find(|(id, _)| *id == inst.id) {
                let (_, total): &mut (_, Decimal) = entry;
                *total += amt;
            } else {
                list.push((inst.id, amt));
            }
        }
        positions = Some(list);
    } else {
        open = as_array(ws.signed(s, "openOrders.status", &[], "openOrders.status")?, "openOrders.status")?;
        for inst in &s.cfg.instruments {
            let sym = [("limit", "1000".to_owned()), ("symbol", inst.symbol.clone())];
            trades_by_symbol.push(as_array(ws.signed(s, "myTrades", &sym, "myTrades")?, "myTrades")?);
        }
    }

    let mut state = VenueState { positions, ..VenueState::default() };
    // Per instrument: order id -> what the venue says of the order.
    let mut orders: Vec<HashMap<u64, KnownOrder>> = vec![HashMap::new(); s.cfg.instruments.len()];
    for o in &open {
        let Some(sym) = o["symbol"].as_str() else { return Err(malformed("openOrders", "symbol")) };
        let Some(i) = s.cfg.instruments.iter().position(|i| i.symbol == sym) else { continue };
        let inst = &s.cfg.instruments[i];
        let (oid, entry) = order_entry(o, inst.qty_scale)?;
        orders[i].insert(oid, entry);
        let Some(cid) = entry.client else { continue };
        let done = qty_of(&o["executedQty"], inst.qty_scale, "executedQty")?;
        state.open_orders.push(VenueOrder {
            client_id: cid,
            instrument: inst.id,
            venue: s.cfg.venue,
            open_qty: Qty((entry.ordered - done).max(0)),
        });
    }
    for (i, inst) in s.cfg.instruments.iter().enumerate() {
        let Some(first) = trades_by_symbol[i].iter().filter_map(|t| t["orderId"].as_u64()).min() else { continue };
        let extra = [("limit", "1000".to_owned()), ("orderId", first.to_string()), ("symbol", inst.symbol.clone())];
        let all = if s.usdm {
            rest.get(s, "/fapi/v1/allOrders", &extra, "allOrders")?
        } else {
            ws.signed(s, "allOrders", &extra, "allOrders")?
        };
        for o in as_array(all, "allOrders")? {
            let (oid, entry) = order_entry(&o, inst.qty_scale)?;
            orders[i].entry(oid).or_insert(entry);
        }
        for t in &trades_by_symbol[i] {
            let Some(oid) = t["orderId"].as_u64() else { return Err(malformed("trades", "orderId")) };
            if orders[i].contains_key(&oid) {
                continue;
            }
            let extra = [("orderId", oid.to_string()), ("symbol", inst.symbol.clone())];
            let o = if s.usdm {
                rest.get(s, "/fapi/v1/order", &extra, "order")?
            } else {
                ws.signed(s, "order.status", &extra, "order.status")?
            };
            let (_, entry) = order_entry(&o, inst.qty_scale)?;
            orders[i].insert(oid, entry);
        }
    }
    ws.conn.close();
    for (i, inst) in s.cfg.instruments.iter().enumerate() {
        let orders = &orders[i];
        let mut trades = trades_by_symbol[i].clone();
        trades.sort_by_key(|t| t["id"].as_u64().unwrap_or(0));
        let mut cum: HashMap<u64, i64> = HashMap::new();
        for t in &trades {
            let Some(oid) = t["orderId"].as_u64() else { return Err(malformed("trades", "orderId")) };
            let Some(&KnownOrder { client: Some(cid), ordered, side }) = orders.get(&oid) else { continue };
            let Some(trade_id) = t["id"].as_u64() else { return Err(malformed("trades", "id")) };
            let qty = qty_of(&t["qty"], inst.qty_scale, "qty")?;
            let px = Px(mantissa(&t["price"], inst.price_scale, "price")?);
            let fee = t["commission"].as_str().and_then(|c| Decimal::from_str(c).ok()).unwrap_or_default();
            let maker = t["isMaker"].as_bool().or_else(|| t["maker"].as_bool()).unwrap_or(false);
            let filled = cum.entry(oid).or_insert(0);
            *filled += qty;
            state.fills.push(VenueFill {
                client_id: cid,
                instrument: inst.id,
                side,
                fill: Fill {
                    px,
                    qty: Qty(qty),
                    leaves_qty: Qty((ordered - *filled).max(0)),
                    fee,
                    taker: !maker,
                    trade_id,
                },
            });
        }
    }
    Ok(state)
}

/// What an order query says of one order.
#[derive(Clone, Copy)]
struct KnownOrder {
    /// Its client id, when crossbar's.
    client: Option<ClientOrderId>,
    /// Ordered quantity (mantissa).
    ordered: i64,
    /// Its side.
    side: Side,
}

/// An order's id and what it is.
fn order_entry(o: &J, scale: Scale) -> Result<(u64, KnownOrder), OrderError> {
    let Some(oid) = o["orderId"].as_u64() else { return Err(malformed("order", "orderId")) };
    // A cancelled spot order may carry the cancel's id as `clientOrderId` and its own as
    // `origClientOrderId`: either one that is crossbar's names it.
    let cid = [&o["origClientOrderId"], &o["clientOrderId"]]
        .into_iter()
        .find_map(|c| c.as_str().and_then(|c| parse_client_id(c.as_bytes())));
    let side = match o["side"].as_str() {
        Some("BUY") => Side::Buy,
        Some("SELL") => Side::Sell,
        _ => return Err(malformed("order", "side")),
    };
    Ok((oid, KnownOrder { client: cid, ordered: qty_of(&o["origQty"], scale, "origQty")?, side }))
}

fn malformed(request: &'static str, field: &str) -> OrderError {
    OrderError::Malformed { request, detail: format!("field {field:?} missing or invalid") }
}

fn as_array(v: J, request: &'static str) -> Result<Vec<J>, OrderError> {
    match v {
        J::Array(a) => Ok(a),
        _ => Err(OrderError::Malformed { request, detail: "expected an array".into() }),
    }
}

fn mantissa(v: &J, scale: Scale, field: &'static str) -> Result<i64, OrderError> {
    let text = v.as_str().ok_or_else(|| malformed("state", field))?;
    parse_mantissa(text.as_bytes(), scale, false).map_err(|_| malformed("state", field))
}

fn qty_of(v: &J, scale: Scale, field: &'static str) -> Result<i64, OrderError> {
    mantissa(v, scale, field)
}

/// The signature payload and JSON params of a signed request, keys sorted.
fn signed_params(s: &BinanceSession, extra: &[(&str, String)], logged_on: bool) -> (BTreeMap<String, J>, String) {
    let mut params: BTreeMap<String, J> = BTreeMap::new();
    for (k, v) in extra {
        params.insert((*k).to_owned(), J::String(v.clone()));
    }
    if !logged_on {
        params.insert("apiKey".into(), J::String(s.cfg.credentials.api_key.expose().to_owned()));
    }
    params.insert("recvWindow".into(), J::from(s.cfg.recv_window_ms));
    params.insert("timestamp".into(), J::from(s.venue_ms()));
    let payload = params
        .iter()
        .map(|(k, v)| match v {
            J::String(t) => format!("{k}={t}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join("&");
    (params, payload)
}

fn sign(key: &Key, payload: &[u8]) -> String {
    match key {
        Key::Hmac(h) => {
            let mut hex = [0u8; crate::auth::HEX_SIG_LEN];
            h.sign_hex_into(&[payload], &mut hex).to_owned()
        }
        Key::Ed25519(e) => {
            let mut b64 = [0u8; crate::auth::ed25519::ED25519_BASE64_LEN];
            e.sign_base64_into(payload, &mut b64).to_owned()
        }
    }
}

/// A blocking WebSocket API connection for start-up requests.
struct Blocking {
    conn: WsConn,
    deadline: Instant,
    logged_on: bool,
    next_id: u64,
    buf: Vec<u8>,
}

impl Blocking {
    fn connect(s: &mut BinanceSession, deadline: Instant) -> Result<Self, OrderError> {
        let conn = WsConn::connect(&s.api_url(), super::CONNECT_TIMEOUT)?;
        let mut b = Self { conn, deadline, logged_on: false, next_id: 0, buf: Vec::new() };
        let sent = wall_ms();
        let t = b.request("{\"id\":\"q0\",\"method\":\"time\"}", "q0", "time")?;
        if let Some(server) = t["serverTime"].as_i64() {
            s.stats.clock_offset_ms = server - (sent + wall_ms()) / 2;
        }
        b.next_id = 1;
        if let Key::Ed25519(signer) = &s.key {
            let window = u32::try_from(s.cfg.recv_window_ms).ok();
            let req = session_logon_request("q1", &s.cfg.credentials.api_key, signer, s.venue_ms(), window);
            b.request(&req, "q1", "session.logon")?;
            b.logged_on = true;
            b.next_id = 2;
        }
        Ok(b)
    }

    fn signed(
        &mut self,
        s: &BinanceSession,
        method: &str,
        extra: &[(&str, String)],
        what: &'static str,
    ) -> Result<J, OrderError> {
        let (mut params, payload) = signed_params(s, extra, self.logged_on);
        if !self.logged_on {
            params.insert("signature".into(), J::String(sign(&s.key, payload.as_bytes())));
        }
        let id = format!("q{}", self.next_id);
        self.next_id += 1;
        let frame = serde_json::json!({"id": id, "method": method, "params": params}).to_string();
        self.request(&frame, &id, what)
    }

    fn request(&mut self, frame: &str, id: &str, what: &'static str) -> Result<J, OrderError> {
        self.conn.send_text(frame)?;
        loop {
            self.conn.flush()?;
            match self.conn.read(&mut self.buf)? {
                Read::Data(d) => {
                    let Ok(v) = serde_json::from_slice::<J>(d) else { continue };
                    if v["id"].as_str() != Some(id) {
                        continue;
                    }
                    if v["status"].as_u64() == Some(200) {
                        return Ok(v["result"].clone());
                    }
                    return Err(OrderError::Venue {
                        request: what,
                        code: v["error"]["code"].as_i64().unwrap_or(0),
                        msg: v["error"]["msg"].as_str().unwrap_or_default().to_owned(),
                    });
                }
                Read::Control => {}
                Read::WouldBlock => {
                    if Instant::now() >= self.deadline {
                        return Err(OrderError::Timeout(what));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
}

/// Signed REST calls (USD-M start-up queries and cancel-all).
struct Rest {
    agent: ureq::Agent,
}

impl Rest {
    fn new(_s: &BinanceSession, deadline: Instant) -> Self {
        let timeout = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into();
        Self { agent }
    }

    fn url(s: &BinanceSession, path: &str, extra: &[(&str, String)]) -> String {
        let (_, payload) = signed_params_rest(s, extra);
        let sig = sign(&s.key, payload.as_bytes());
        let sig: String = sig
            .bytes()
            .map(|b| match b {
                b'+' => "%2B".to_owned(),
                b'/' => "%2F".to_owned(),
                b'=' => "%3D".to_owned(),
                other => char::from(other).to_string(),
            })
            .collect();
        format!("{}{path}?{payload}&signature={sig}", s.cfg.rest_url.trim_end_matches('/'))
    }

    fn get(
        &self,
        s: &BinanceSession,
        path: &str,
        extra: &[(&str, String)],
        what: &'static str,
    ) -> Result<J, OrderError> {
        let url = Self::url(s, path, extra);
        let req = self.agent.get(&url).header("X-MBX-APIKEY", s.cfg.credentials.api_key.expose());
        read_rest(req.call(), what)
    }

    fn delete(
        &self,
        s: &BinanceSession,
        path: &str,
        extra: &[(&str, String)],
        what: &'static str,
    ) -> Result<J, OrderError> {
        let url = Self::url(s, path, extra);
        let req = self.agent.delete(&url).header("X-MBX-APIKEY", s.cfg.credentials.api_key.expose());
        read_rest(req.call(), what)
    }
}

/// REST query parameters (no apiKey: it goes in the `X-MBX-APIKEY` header), in a stable order.
fn signed_params_rest(s: &BinanceSession, extra: &[(&str, String)]) -> ((), String) {
    let mut parts: Vec<String> = extra.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.push(format!("recvWindow={}", s.cfg.recv_window_ms));
    parts.push(format!("timestamp={}", s.venue_ms()));
    ((), parts.join("&"))
}

fn read_rest(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>, what: &'static str) -> Result<J, OrderError> {
    let mut resp = resp.map_err(|e| OrderError::Http(format!("{what}: {e}")))?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().map_err(|e| OrderError::Http(format!("{what}: {e}")))?;
    let v: J =
        serde_json::from_str(&body).map_err(|_| OrderError::Malformed { request: what, detail: "not JSON".into() })?;
    if status == 200 {
        return Ok(v);
    }
    Err(OrderError::Venue {
        request: what,
        code: v["code"].as_i64().unwrap_or(i64::from(status)),
        msg: v["msg"].as_str().unwrap_or_default().to_owned(),
    })
}

/// USD-M cancel-on-reconnect: `DELETE /fapi/v1/allOpenOrders?symbol=…` (blocking, up to 3 s;
/// runs only on a reconnect with orders left open).
pub(super) fn rest_cancel_all(s: &BinanceSession, idx: usize) -> Result<(), OrderError> {
    let rest = Rest::new(s, Instant::now() + super::CONNECT_TIMEOUT);
    let sym = [("symbol", s.cfg.instruments[idx].symbol.clone())];
    rest.delete(s, "/fapi/v1/allOpenOrders", &sym, "allOpenOrders").map(|_| ())
}
