//! OKX v5's order entry, simulator side: the private websocket (`login`, `order`,
//! `cancel-order`, the `orders` channel) and the signed REST queries, verified and answered as
//! OKX documents them.
//!
//! - `login` checks, in this order: the timestamp is Unix seconds (`60004 Invalid timestamp`),
//!   within 30 s of the wall clock (`60006 Timestamp request expired`), the API key is
//!   registered on this venue (`60005 Invalid apiKey`), the passphrase matches (`60024 Wrong
//!   passphrase`), and the sign is the base64 HMAC of `timestamp + "GET/users/self/verify"`
//!   (`60007 Invalid sign`); answers are `{"event":"login"|"error","code","msg","connId"}`.
//! - `order` / `cancel-order` need a login (`60011 Please log in`) and answer
//!   `{"id","op","code","msg","data":[{"ordId","clOrdId","tag","ts","sCode","sMsg"}],"inTime",
//!   "outTime"}` with `code` `"1"` and the order's own `sCode` when refused (`51008`
//!   insufficient balance, `51400` unknown order, `50011` rate limit of 60 requests per 2 s
//!   per instrument, …), or `60013 Invalid args` with empty `data` for a malformed request.
//! - `orders` pushes render the exchange's reports; `inTime`/`outTime` are wall-clock
//!   microseconds, `ts`/`uTime`/`fillTime` the market clock.
//! - REST `GET /api/v5/trade/orders-pending`, `/api/v5/trade/fills`, `/api/v5/account/positions`
//!   check `OK-ACCESS-KEY/SIGN/TIMESTAMP/PASSPHRASE` (codes 50102–50113, HTTP 401) and answer
//!   `{"code":"0","msg":"","data":[..]}`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbar_engine::fixed::{Scale, parse_mantissa};
use crossbar_engine::instrument::{Instrument, InstrumentId, InstrumentKind};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::book::Side;
use super::exchange::{
    AccountId, ExchangeError, ExecReport, FillView, OrderRef, OrderStatus, OrderView, PlaceRequest, Tif,
};
use super::private::{PrivatePath, RestRequest};
use super::server::{Shared, send};
use crate::auth::okx::{HttpMethod, login_signature_into, rest_signature_into};
use crate::auth::{HMAC_BASE64_LEN, HmacSigner};
use crate::okx::trade::codec::parse_iso8601_ms;
use crate::order::{SecretKey, write_fixed};

/// How far a login or REST timestamp may be from the venue's clock, ms.
const TIMESTAMP_WINDOW_MS: i64 = 30_000;
/// Order (and, separately, cancel) requests allowed per instrument per window.
const RATE_LIMIT: usize = 60;
/// The rate-limit window.
const RATE_WINDOW: Duration = Duration::from_secs(2);
/// How far back `fills` reaches (OKX: the last 3 days).
const FILLS_WINDOW_MS: i64 = 3 * 86_400_000;

static CONN_IDS: AtomicU64 = AtomicU64::new(0);

/// The private websocket a path names on an OKX venue.
pub(crate) fn ws_route(path: &str) -> Option<PrivatePath> {
    (path == crate::okx::trade::PRIVATE_WS_PATH).then_some(PrivatePath::OkxPrivate)
}

fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn wall_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

fn fixed(mantissa: i64, scale: Scale) -> String {
    let mut out = Vec::with_capacity(24);
    write_fixed(&mut out, mantissa, scale);
    String::from_utf8(out).unwrap_or_default()
}

fn inst_type(kind: InstrumentKind) -> &'static str {
    match kind {
        InstrumentKind::Spot => "SPOT",
        InstrumentKind::Option => "OPTION",
        _ => "SWAP",
    }
}

fn side_text(side: Side) -> &'static str {
    match side {
        Side::Bid => "buy",
        Side::Ask => "sell",
    }
}

fn ord_type(px: Option<i64>, tif: Tif) -> &'static str {
    match (px, tif) {
        (None, _) => "market",
        (_, Tif::Gtc) => "limit",
        (_, Tif::Ioc) => "ioc",
        (_, Tif::Fok) => "fok",
        (_, Tif::PostOnly) => "post_only",
    }
}

fn state_text(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::New => "live",
        OrderStatus::PartiallyFilled => "partially_filled",
        OrderStatus::Filled => "filled",
        OrderStatus::Canceled | OrderStatus::Expired => "canceled",
    }
}

fn avg_px(o: &OrderView, inst: &Instrument) -> String {
    if o.filled_qty == 0 {
        return "0".into();
    }
    // `filled_quote` is price × quantity × contract size.
    let qty = crossbar_engine::fixed::to_decimal(o.filled_qty, inst.qty_scale) * inst.contract_size;
    (o.filled_quote / qty).round_dp(u32::from(inst.price_scale.places()) + 4).normalize().to_string()
}

/// An order as OKX lists it (`orders` pushes and `orders-pending`), with `fill` fields when
/// one caused the update.
fn order_row(o: &OrderView, fill: Option<&FillView>, inst: &Instrument) -> Value {
    let (fill_px, fill_sz, trade_id, fill_fee, fee_ccy, exec_type, fill_time) = match fill {
        Some(f) => (
            fixed(f.px, inst.price_scale),
            fixed(f.qty, inst.qty_scale),
            f.trade_id.to_string(),
            (-f.fee).normalize().to_string(),
            f.fee_asset.clone(),
            if f.maker { "M" } else { "T" },
            f.time_ms.to_string(),
        ),
        None => (String::new(), "0".into(), String::new(), "0".into(), String::new(), "", String::new()),
    };
    let spot = inst.kind == InstrumentKind::Spot;
    json!({
        "instType": inst_type(inst.kind),
        "instId": inst.symbol,
        "tgtCcy": "",
        "ccy": "",
        "ordId": o.order_id.to_string(),
        "clOrdId": o.client_id,
        "tag": "",
        "px": o.px.map(|p| fixed(p, inst.price_scale)).unwrap_or_default(),
        "sz": fixed(o.qty, inst.qty_scale),
        "ordType": ord_type(o.px, o.tif),
        "side": side_text(o.side),
        "posSide": if spot { "" } else { "net" },
        "tdMode": if spot { "cash" } else { "cross" },
        "accFillSz": fixed(o.filled_qty, inst.qty_scale),
        "fillPx": fill_px,
        "tradeId": trade_id,
        "fillSz": fill_sz,
        "fillPnl": "0",
        "fillTime": fill_time,
        "fillFee": fill_fee,
        "fillFeeCcy": fee_ccy,
        "execType": exec_type,
        "avgPx": avg_px(o, inst),
        "state": state_text(o.status),
        "lever": if spot { "0" } else { "10" },
        "reduceOnly": if o.reduce_only { "true" } else { "false" },
        "category": "normal",
        "cancelSource": "",
        "amendResult": "",
        "reqId": "",
        "code": "0",
        "msg": "",
        "cTime": o.created_ms.to_string(),
        "uTime": o.updated_ms.to_string(),
    })
}

/// OKX's order status code and message for an exchange refusal.
fn refusal(e: &ExchangeError, inst: Option<&Instrument>, side: Side) -> (u64, String) {
    match e {
        ExchangeError::UnknownInstrument => {
            (51001, "Instrument ID, Instrument ID code or Spread ID doesn't exist.".into())
        }
        ExchangeError::InvalidPrice => (51000, "Parameter px error".into()),
        ExchangeError::InvalidQuantity => (51121, "Order quantity must be a multiple of the lot size.".into()),
        ExchangeError::InsufficientBalance => {
            let (ccy, what) = match inst {
                Some(i) if i.kind == InstrumentKind::Spot && side == Side::Ask => (i.base.as_str(), "balance"),
                Some(i) if i.kind == InstrumentKind::Spot => (i.quote.as_str(), "balance"),
                Some(i) => (i.quote.as_str(), "margin"),
                None => ("", "balance"),
            };
            (51008, format!("Order failed. Insufficient {ccy} {what} in account"))
        }
        ExchangeError::UnknownOrder => {
            (51400, "Order cancellation failed as the order has been filled, canceled or does not exist.".into())
        }
        ExchangeError::DuplicateClientId => (51016, "Client order ID already exists.".into()),
        ExchangeError::ReduceOnly => (
            51169,
            "Order failed because you don't have any positions in this direction for this contract to reduce or close."
                .into(),
        ),
        ExchangeError::NoLiquidity => (51109, "No available offers.".into()),
    }
}

/// One private connection's state.
struct Conn<'s> {
    shared: &'s Shared,
    venue: usize,
    conn_id: String,
    account: Option<AccountId>,
    /// `orders` subscriptions: (instType, instId) filters, `""` for any.
    subs: Vec<(String, String)>,
    reports: Option<(u64, mpsc::UnboundedReceiver<ExecReport>)>,
    /// Recent request times per (op, instrument), for the rate limit.
    rate: HashMap<(bool, InstrumentId), VecDeque<Instant>>,
}

impl Conn<'_> {
    fn event_error(&self, code: u64, msg: &str, id: Option<&str>) -> String {
        let mut v = json!({"event": "error", "code": code.to_string(), "msg": msg, "connId": self.conn_id});
        if let Some(id) = id {
            v["id"] = Value::String(id.to_owned());
        }
        v.to_string()
    }

    /// Answers one text frame.
    fn on_text(&mut self, text: &str) -> String {
        let in_us = wall_us();
        if text == "ping" {
            return "pong".into();
        }
        let Ok(req) = serde_json::from_str::<Value>(text) else {
            return self.event_error(60012, &format!("Invalid request: {text}"), None);
        };
        let id = req.get("id").and_then(Value::as_str).map(str::to_owned);
        let op = req.get("op").and_then(Value::as_str).unwrap_or("");
        let arg = req.get("args").and_then(Value::as_array).and_then(|a| a.first()).cloned();
        match op {
            "login" => self.login(arg.as_ref()),
            "subscribe" => self.subscribe(arg.as_ref(), id.as_deref(), text),
            "unsubscribe" => {
                self.subs.clear();
                let mut v = json!({"event": "unsubscribe", "arg": arg.unwrap_or(Value::Null), "connId": self.conn_id});
                if let Some(id) = id {
                    v["id"] = Value::String(id);
                }
                v.to_string()
            }
            "order" | "cancel-order" => {
                let id = id.unwrap_or_default();
                let outcome = if self.account.is_none() {
                    Err((60011, "Please log in".to_owned()))
                } else if let Some(arg) = arg.as_ref().and_then(Value::as_object) {
                    if op == "order" { self.place(arg) } else { self.cancel(arg) }
                } else {
                    Err((60013, "Invalid args".to_owned()))
                };
                let (code, msg, data) = match outcome {
                    Ok(row) => ("0".to_owned(), String::new(), vec![row]),
                    Err((code, msg)) => (code.to_string(), msg, vec![]),
                };
                let code = match (&data[..], code.as_str()) {
                    ([row], _) if row["sCode"] != "0" => "1".to_owned(),
                    _ => code,
                };
                json!({"id": id, "op": op, "code": code, "msg": msg, "data": data,
                       "inTime": in_us.to_string(), "outTime": wall_us().to_string()})
                .to_string()
            }
            _ => self.event_error(60019, &format!("Invalid op: {op}"), id.as_deref()),
        }
    }

    fn login(&mut self, arg: Option<&Value>) -> String {
        let field = |k: &str| arg.and_then(|a| a.get(k)).and_then(Value::as_str).unwrap_or("");
        let (api_key, passphrase, timestamp, sign) =
            (field("apiKey"), field("passphrase"), field("timestamp"), field("sign"));
        if api_key.is_empty() || sign.is_empty() || timestamp.is_empty() {
            return self.event_error(60009, "Login failed.", None);
        }
        let Ok(ts) = timestamp.parse::<u64>() else { return self.event_error(60004, "Invalid timestamp", None) };
        let ts_ms = i64::try_from(ts).unwrap_or(i64::MAX / 2000).saturating_mul(1000);
        if (wall_ms() - ts_ms).abs() > TIMESTAMP_WINDOW_MS {
            return self.event_error(60006, "Timestamp request expired", None);
        }
        let checked = {
            let ex = self.shared.lock_exchange();
            match ex.account_by_key(self.shared.venue_name(self.venue), api_key) {
                None => Err((60005, "Invalid apiKey")),
                Some(acct) if acct.credentials.passphrase.as_ref().map(|p| p.expose()) != Some(passphrase) => {
                    Err((60024, "Wrong passphrase"))
                }
                Some(acct) => match &acct.credentials.key {
                    SecretKey::Hmac(secret) => {
                        let mut buf = [0u8; HMAC_BASE64_LEN];
                        let expected = login_signature_into(&HmacSigner::new(secret), ts, &mut buf);
                        if expected == sign { Ok(acct.id) } else { Err((60007, "Invalid sign")) }
                    }
                    SecretKey::Ed25519(_) => Err((60007, "Invalid sign")),
                },
            }
        };
        match checked {
            Ok(account) => {
                self.account = Some(account);
                json!({"event": "login", "code": "0", "msg": "", "connId": self.conn_id}).to_string()
            }
            Err((code, msg)) => self.event_error(code, msg, None),
        }
    }

    fn subscribe(&mut self, arg: Option<&Value>, id: Option<&str>, text: &str) -> String {
        let Some(arg) = arg else { return self.event_error(60012, &format!("Invalid request: {text}"), id) };
        let field = |k: &str| arg.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let (channel, inst_type, inst_id) = (field("channel"), field("instType"), field("instId"));
        if channel != "orders"
            || !matches!(inst_type.as_str(), "SPOT" | "MARGIN" | "SWAP" | "FUTURES" | "OPTION" | "ANY")
        {
            let msg = format!(
                "Wrong URL or channel:{channel},instType:{inst_type} doesn't exist. Please use the correct URL, channel and parameters referring to API document."
            );
            return self.event_error(60018, &msg, id);
        }
        let Some(account) = self.account else { return self.event_error(60011, "Please log in", id) };
        if self.reports.is_none() {
            self.reports = Some(self.shared.subscribe_private(account));
        }
        self.subs.push((if inst_type == "ANY" { String::new() } else { inst_type }, inst_id));
        let mut v = json!({"event": "subscribe", "arg": arg, "connId": self.conn_id});
        if let Some(id) = id {
            v["id"] = Value::String(id.to_owned());
        }
        v.to_string()
    }

    /// Counts a request against the limit; false when over it.
    fn within_rate(&mut self, cancel: bool, instrument: InstrumentId) -> bool {
        let now = Instant::now();
        let q = self.rate.entry((cancel, instrument)).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= RATE_WINDOW) {
            q.pop_front();
        }
        if q.len() >= RATE_LIMIT {
            return false;
        }
        q.push_back(now);
        true
    }

    /// The instrument an `instId` names on this venue.
    fn instrument(&self, arg: &serde_json::Map<String, Value>) -> Option<&Instrument> {
        let symbol = arg.get("instId").and_then(Value::as_str)?;
        let id = self.shared.instrument(self.venue, symbol)?;
        Some(self.shared.registry.get(id))
    }

    /// Places an order: the `data` row, or the request's error (code, msg).
    fn place(&mut self, arg: &serde_json::Map<String, Value>) -> Result<Value, (u64, String)> {
        let text = |k: &str| arg.get(k).and_then(Value::as_str).unwrap_or("");
        let cl_ord_id = text("clOrdId").to_owned();
        let row = |ord_id: &str, ts: i64, code: u64, msg: &str| {
            json!({"ordId": ord_id, "clOrdId": cl_ord_id, "tag": "", "ts": ts.to_string(),
                   "sCode": code.to_string(), "sMsg": msg})
        };
        let now = self.shared.lock_market().time_ms();
        let refuse = |code: u64, msg: &str| Ok(row("", now, code, msg));
        let Some(inst) = self.instrument(arg).cloned() else {
            return refuse(51001, "Instrument ID, Instrument ID code or Spread ID doesn't exist.");
        };
        let td_ok = match inst.kind {
            InstrumentKind::Spot => text("tdMode") == "cash",
            _ => matches!(text("tdMode"), "cross" | "isolated"),
        };
        if !td_ok {
            return refuse(51000, "Parameter tdMode error");
        }
        let side = match text("side") {
            "buy" => Side::Bid,
            "sell" => Side::Ask,
            _ => return refuse(51000, "Parameter side error"),
        };
        let (tif, market) = match text("ordType") {
            "limit" => (Tif::Gtc, false),
            "ioc" => (Tif::Ioc, false),
            "fok" => (Tif::Fok, false),
            "post_only" => (Tif::PostOnly, false),
            "market" => (Tif::Ioc, true),
            _ => return refuse(51000, "Parameter ordType error"),
        };
        let px = if market {
            None
        } else {
            match parse_mantissa(text("px").as_bytes(), inst.price_scale, false) {
                Ok(p) => Some(p),
                Err(_) => return refuse(51000, "Parameter px error"),
            }
        };
        let Ok(qty) = parse_mantissa(text("sz").as_bytes(), inst.qty_scale, false) else {
            return refuse(51000, "Parameter sz error");
        };
        if cl_ord_id.len() > 32 || !cl_ord_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return refuse(51000, "Parameter clOrdId error");
        }
        let reduce_only = match arg.get("reduceOnly") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
            Some(_) => return refuse(51000, "Parameter reduceOnly error"),
        };
        if !self.within_rate(false, inst.id) {
            return refuse(
                50011,
                "Rate limit reached. Please refer to API documentation and throttle requests accordingly.",
            );
        }
        let req = PlaceRequest { instrument: inst.id, client_id: cl_ord_id.clone(), side, px, qty, tif, reduce_only };
        let account = self.account.ok_or((60011, "Please log in".to_owned()))?;
        let placed = {
            let mut market = self.shared.lock_market();
            let time_ms = market.time_ms();
            self.shared.lock_exchange().place(account, &req, &mut market, time_ms)
        };
        self.shared.publish_reports();
        Ok(match placed {
            Ok(o) => row(&o.order_id.to_string(), o.created_ms, 0, "Order placed"),
            Err(e) => {
                let (code, msg) = refusal(&e, Some(&inst), side);
                row("", now, code, &msg)
            }
        })
    }

    /// Cancels an order: the `data` row, or the request's error.
    fn cancel(&mut self, arg: &serde_json::Map<String, Value>) -> Result<Value, (u64, String)> {
        let text = |k: &str| arg.get(k).and_then(Value::as_str).unwrap_or("");
        let (cl_ord_id, ord_id) = (text("clOrdId").to_owned(), text("ordId").to_owned());
        let row = |ord_id: &str, ts: i64, code: u64, msg: &str| json!({"ordId": ord_id, "clOrdId": cl_ord_id, "ts": ts.to_string(), "sCode": code.to_string(), "sMsg": msg});
        let now = self.shared.lock_market().time_ms();
        let Some(inst) = self.instrument(arg).cloned() else {
            return Ok(row(&ord_id, now, 51001, "Instrument ID, Instrument ID code or Spread ID doesn't exist."));
        };
        let order = if !ord_id.is_empty() {
            match ord_id.parse::<u64>() {
                Ok(id) => OrderRef::Id(id),
                Err(_) => return Ok(row(&ord_id, now, 51000, "Parameter ordId error")),
            }
        } else if !cl_ord_id.is_empty() {
            OrderRef::Client(&cl_ord_id)
        } else {
            return Ok(row("", now, 51003, "Either client order ID or order ID is required."));
        };
        if !self.within_rate(true, inst.id) {
            let msg = "Rate limit reached. Please refer to API documentation and throttle requests accordingly.";
            return Ok(row(&ord_id, now, 50011, msg));
        }
        let account = self.account.ok_or((60011, "Please log in".to_owned()))?;
        let cancelled = {
            let market = self.shared.lock_market();
            let time_ms = market.time_ms();
            self.shared.lock_exchange().cancel(account, inst.id, order, time_ms)
        };
        self.shared.publish_reports();
        Ok(match cancelled {
            Ok(o) => row(&o.order_id.to_string(), o.created_ms, 0, ""),
            Err(e) => {
                let (code, msg) = refusal(&e, Some(&inst), Side::Bid);
                row(&ord_id, now, code, &msg)
            }
        })
    }

    /// The `orders` push of a report, when a subscription wants it.
    fn push(&self, r: &ExecReport) -> Option<String> {
        let inst = self.shared.registry.get(r.order.instrument);
        let it = inst_type(inst.kind);
        let (sub_type, sub_id) =
            self.subs.iter().find(|(t, i)| (t.is_empty() || t == it) && (i.is_empty() || *i == inst.symbol))?;
        let mut arg = json!({"channel": "orders", "instType": if sub_type.is_empty() { "ANY" } else { sub_type.as_str() },
                             "uid": r.order.account.0.to_string()});
        if !sub_id.is_empty() {
            arg["instId"] = Value::String(sub_id.clone());
        }
        Some(json!({"arg": arg, "data": [order_row(&r.order, r.fill.as_ref(), inst)]}).to_string())
    }
}

/// Answers a signed REST request.
pub(crate) fn rest(shared: &Shared, venue: usize, req: &RestRequest<'_>) -> Option<(u16, String)> {
    if !matches!(req.path, "/api/v5/trade/orders-pending" | "/api/v5/trade/fills" | "/api/v5/account/positions") {
        return None;
    }
    let error = |status: u16, code: u64, msg: &str| {
        Some((status, json!({"code": code.to_string(), "data": [], "msg": msg}).to_string()))
    };
    if req.method != "GET" {
        return error(405, 50115, "Invalid request method.");
    }
    let header = |name: &str| req.header(name).filter(|v| !v.is_empty());
    let Some(key) = header("ok-access-key") else {
        return error(401, 50103, "Request header \"OK-ACCESS-KEY\" cannot be empty.");
    };
    let Some(passphrase) = header("ok-access-passphrase") else {
        return error(401, 50104, "Request header \"OK-ACCESS-PASSPHRASE\" cannot be empty.");
    };
    let Some(sign) = header("ok-access-sign") else {
        return error(401, 50106, "Request header \"OK-ACCESS-SIGN\" cannot be empty.");
    };
    let Some(timestamp) = header("ok-access-timestamp") else {
        return error(401, 50107, "Request header \"OK-ACCESS-TIMESTAMP\" cannot be empty.");
    };
    let Some(ts_ms) = parse_iso8601_ms(timestamp) else {
        return error(401, 50112, "Invalid OK-ACCESS-TIMESTAMP.");
    };
    if (wall_ms() - ts_ms).abs() > TIMESTAMP_WINDOW_MS {
        return error(401, 50102, "Timestamp request expired.");
    }
    let request_path = if req.query.is_empty() { req.path.to_owned() } else { format!("{}?{}", req.path, req.query) };
    let account = {
        let ex = shared.lock_exchange();
        let Some(acct) = ex.account_by_key(shared.venue_name(venue), key) else {
            return error(401, 50111, "Invalid OK-ACCESS-KEY.");
        };
        if acct.credentials.passphrase.as_ref().map(|p| p.expose()) != Some(passphrase) {
            return error(401, 50105, "Request header \"OK-ACCESS-PASSPHRASE\" incorrect.");
        }
        let SecretKey::Hmac(secret) = &acct.credentials.key else {
            return error(401, 50113, "Invalid signature.");
        };
        let mut buf = [0u8; HMAC_BASE64_LEN];
        let expected = rest_signature_into(
            &HmacSigner::new(secret),
            timestamp,
            HttpMethod::Get,
            &request_path,
            req.body,
            &mut buf,
        );
        if expected != sign {
            return error(401, 50113, "Invalid signature.");
        }
        acct.id
    };
    let param =
        |name: &str| req.query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v);
    let (want_type, want_id) = (param("instType").unwrap_or(""), param("instId").unwrap_or(""));
    let wanted = |inst: &Instrument| {
        (want_type.is_empty() || want_type == inst_type(inst.kind)) && (want_id.is_empty() || want_id == inst.symbol)
    };
    let limit = param("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(100).clamp(1, 100);
    let now_ms = shared.lock_market().time_ms();
    let ex = shared.lock_exchange();
    let rows: Vec<Value> = match req.path {
        "/api/v5/trade/orders-pending" => ex
            .open_orders(account, None)
            .iter()
            .rev()
            .filter_map(|o| {
                let inst = shared.registry.get(o.instrument);
                wanted(inst).then(|| order_row(o, None, inst))
            })
            .take(limit)
            .collect(),
        "/api/v5/trade/fills" => ex
            .fills(account, None, now_ms - FILLS_WINDOW_MS)
            .iter()
            .rev()
            .filter_map(|f| {
                let inst = shared.registry.get(f.instrument);
                wanted(inst).then(|| {
                    json!({"instType": inst_type(inst.kind), "instId": inst.symbol, "tradeId": f.trade_id.to_string(),
                           "ordId": f.order_id.to_string(), "clOrdId": f.client_id, "billId": f.trade_id.to_string(),
                           "tag": "", "fillPx": fixed(f.px, inst.price_scale), "fillSz": fixed(f.qty, inst.qty_scale),
                           "side": side_text(f.side), "posSide": if inst.kind == InstrumentKind::Spot { "" } else { "net" },
                           "execType": if f.maker { "M" } else { "T" }, "feeCcy": f.fee_asset,
                           "fee": (-f.fee).normalize().to_string(), "ts": f.time_ms.to_string(),
                           "fillTime": f.time_ms.to_string()})
                })
            })
            .take(limit)
            .collect(),
        _ => ex
            .positions(account)
            .iter()
            .filter_map(|(id, p)| {
                let inst = shared.registry.get(*id);
                (p.qty != 0 && inst.kind != InstrumentKind::Spot && wanted(inst)).then(|| {
                    json!({"instType": inst_type(inst.kind), "instId": inst.symbol, "mgnMode": "cross",
                           "posId": id.0.to_string(), "posSide": "net", "pos": fixed(p.qty, inst.qty_scale),
                           "avgPx": p.entry_px.normalize().to_string(), "ccy": inst.quote, "lever": "10",
                           "realizedPnl": p.realized.normalize().to_string(), "upl": "0",
                           "cTime": now_ms.to_string(), "uTime": now_ms.to_string()})
                })
            })
            .collect(),
    };
    Some((200, json!({"code": "0", "msg": "", "data": rows}).to_string()))
}

/// The next report of a subscribed connection; never, while it has none.
async fn next_report(reports: &mut Option<(u64, mpsc::UnboundedReceiver<ExecReport>)>) -> Option<ExecReport> {
    match reports {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Serves one private websocket session.
pub(crate) async fn run_private(
    mut ws: WebSocketStream<TcpStream>,
    shared: &Shared,
    venue: usize,
    mut stop: watch::Receiver<bool>,
) {
    let conn_id = format!("{:08x}", CONN_IDS.fetch_add(1, Ordering::Relaxed) + 1);
    let mut conn =
        Conn { shared, venue, conn_id, account: None, subs: Vec::new(), reports: None, rate: HashMap::new() };
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => {
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                break;
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let reply = conn.on_text(text.as_str());
                    if !send(&mut ws, Message::text(reply)).await {
                        break;
                    }
                }
                Some(Ok(Message::Ping(_))) => {
                    if ws.flush().await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) => {
                    let _ = ws.flush().await;
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            report = next_report(&mut conn.reports) => {
                let Some(report) = report else { break };
                if let Some(frame) = conn.push(&report)
                    && !send(&mut ws, Message::text(frame)).await
                {
                    break;
                }
            }
        }
    }
    if let Some((id, _)) = conn.reports.take() {
        shared.unsubscribe_private(id);
    }
}
