//! Bybit v5's order entry, simulator side: the trade websocket (`auth`, `order.create`,
//! `order.cancel`), the private streams (`order`, `execution`) and the signed REST queries,
//! verified and answered as Bybit documents them.
//!
//! - `auth` (both websockets): `args` = `[api_key, expires, hex HMAC-SHA256("GET/realtime" +
//!   expires)]`; `expires` must be in the future. Trade websocket answers `{"retCode":..,
//!   "retMsg":..,"op":"auth","connId":..}`: 10001 `Params Error` (malformed or expired),
//!   10003 (unknown key), 10004 (wrong signature), 20001 (repeat auth). The private stream
//!   answers `{"success":..,"ret_msg":..,"op":"auth","conn_id":..}`.
//! - `order.create` / `order.cancel`: `header.X-BAPI-TIMESTAMP` must satisfy
//!   `server_time - recv_window <= timestamp < server_time + 1000` (10002), `recv_window`
//!   from `X-BAPI-RECV-WINDOW` (default 5000); per connection and op at most 10 requests a
//!   second on linear, 20 on spot (10006 `Too many visits!`); the exchange's refusals map to
//!   Bybit's codes ([`error_code`]). Every answer carries the `X-Bapi-Limit*` and `Timenow`
//!   headers.
//! - Private stream: `subscribe` to `order` / `execution`; every account report is pushed as
//!   an `execution` message (when it carries a fill) and then an `order` message.
//! - REST (`X-BAPI-API-KEY`, `X-BAPI-TIMESTAMP`, `X-BAPI-RECV-WINDOW`, `X-BAPI-SIGN` = hex
//!   HMAC of timestamp + key + recv_window + query or body): `GET /v5/order/realtime`,
//!   `GET /v5/execution/list`, `GET /v5/position/list`, `POST /v5/order/cancel-all`.
//!
//! Request times use the wall clock; event times use the simulator's market clock.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crossbar_engine::fixed::{Scale, parse_mantissa, to_decimal};
use crossbar_engine::instrument::{Instrument, InstrumentId};
use futures_util::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tungstenite::Message;

use super::book::Side;
use super::exchange::{
    AccountId, ExchangeError, ExecReport, FillView, OrderRef, OrderStatus, OrderView, PlaceRequest, Tif,
};
use super::private::{PrivatePath, RestRequest};
use super::server::Shared;
use crate::auth::{HEX_SIG_LEN, HmacSigner, bybit as sign};
use crate::order::SecretKey;
use crate::venue::Protocol;

/// Receive window when a request names none, ms.
const DEFAULT_RECV_WINDOW: i64 = 5_000;
/// How far ahead of the server a request timestamp may be, ms.
const AHEAD_MS: i64 = 1_000;

/// The private websocket a path names on a Bybit venue.
pub(crate) fn ws_route(path: &str) -> Option<PrivatePath> {
    match path.split('?').next().unwrap_or(path) {
        "/v5/trade" => Some(PrivatePath::BybitTrade),
        "/v5/private" => Some(PrivatePath::BybitPrivate),
        _ => None,
    }
}

fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn is_spot(shared: &Shared, venue: usize) -> bool {
    shared.venue_api(venue) == Protocol::BybitSpot
}

fn category(shared: &Shared, venue: usize) -> &'static str {
    if is_spot(shared, venue) { "spot" } else { "linear" }
}

/// Bybit's code and message for an exchange refusal (spot codes are the 170xxx family).
pub(crate) fn error_code(spot: bool, e: &ExchangeError) -> (i64, &'static str) {
    match (e, spot) {
        (ExchangeError::UnknownInstrument, true) => (170_121, "Invalid symbol."),
        (ExchangeError::UnknownInstrument, false) => (10_001, "params error: symbol invalid"),
        (ExchangeError::InvalidPrice, true) => (170_134, "Order price decimal too long."),
        (ExchangeError::InvalidPrice, false) => (10_001, "params error: price invalid"),
        (ExchangeError::InvalidQuantity, true) => (170_137, "Order volume decimal too long."),
        (ExchangeError::InvalidQuantity, false) => (10_001, "params error: qty invalid"),
        (ExchangeError::InsufficientBalance, true) => (170_131, "Balance insufficient"),
        (ExchangeError::InsufficientBalance, false) => (110_007, "Available balance is insufficient"),
        (ExchangeError::UnknownOrder, true) => (170_213, "Order does not exist."),
        (ExchangeError::UnknownOrder, false) => (110_001, "Order does not exist"),
        (ExchangeError::DuplicateClientId, true) => (170_141, "Duplicate clientOrderId"),
        (ExchangeError::DuplicateClientId, false) => (110_072, "OrderLinkedID is duplicate"),
        (ExchangeError::ReduceOnly, _) => (110_017, "orderQty will be truncated to zero"),
        (ExchangeError::NoLiquidity, _) => (170_210, "New order rejected."),
    }
}

/// Bybit's order id: digits on spot, a UUID on derivatives.
fn order_id(spot: bool, id: u64) -> String {
    if spot {
        format!("{}", 1_900_000_000_000_000_000u64 + id)
    } else {
        format!("{:08x}-5b31-4c1a-9112-{id:012x}", id as u32)
    }
}

/// Bybit's execution id: digits on spot, a UUID on derivatives.
fn exec_id(spot: bool, id: u64) -> String {
    if spot {
        format!("{}", 2_100_000_000_000_000_000u64 + id)
    } else {
        format!("{:08x}-0f18-5866-9415-{id:012x}", (id.wrapping_mul(0x9E37_79B9)) as u32)
    }
}

fn fixed(m: i64, scale: Scale) -> String {
    let mut out = Vec::new();
    crate::order::write_fixed(&mut out, m, scale);
    String::from_utf8(out).unwrap_or_default()
}

fn dec(d: Decimal) -> String {
    d.normalize().to_string()
}

fn side_name(side: Side) -> &'static str {
    if side == Side::Bid { "Buy" } else { "Sell" }
}

fn tif_name(tif: Tif) -> &'static str {
    match tif {
        Tif::Gtc => "GTC",
        Tif::Ioc => "IOC",
        Tif::Fok => "FOK",
        Tif::PostOnly => "PostOnly",
    }
}

/// `orderStatus`, `cancelType` and `rejectReason` of an order.
fn status(spot: bool, o: &OrderView) -> (&'static str, &'static str, &'static str) {
    match o.status {
        OrderStatus::New => ("New", "UNKNOWN", "EC_NoError"),
        OrderStatus::PartiallyFilled => ("PartiallyFilled", "UNKNOWN", "EC_NoError"),
        OrderStatus::Filled => ("Filled", "UNKNOWN", "EC_NoError"),
        OrderStatus::Canceled => (
            if spot && o.filled_qty > 0 { "PartiallyFilledCanceled" } else { "Cancelled" },
            "CancelByUser",
            "EC_PerCancelRequest",
        ),
        OrderStatus::Expired => {
            let status = if spot && o.filled_qty > 0 { "PartiallyFilledCanceled" } else { "Cancelled" };
            let reason = if o.tif == Tif::PostOnly { "EC_PostOnlyWillTakeLiquidity" } else { "EC_CancelForNoFullFill" };
            (status, "UNKNOWN", reason)
        }
    }
}

/// One order as Bybit's `order` topic and `/v5/order/realtime` print it.
fn order_json(spot: bool, inst: &Instrument, o: &OrderView, cum_fee: Decimal) -> String {
    let (st, cancel_type, reject) = status(spot, o);
    let filled = to_decimal(o.filled_qty, inst.qty_scale);
    let avg = if o.filled_qty > 0 {
        dec((o.filled_quote / filled).round_dp(u32::from(inst.price_scale.places()) + 4))
    } else {
        "0".into()
    };
    let leaves_m = if o.status.is_final() { 0 } else { o.qty - o.filled_qty };
    let px = o.px.map_or_else(|| "0".to_owned(), |p| fixed(p, inst.price_scale));
    let leaves_value =
        o.px.map_or(Decimal::ZERO, |p| to_decimal(p, inst.price_scale) * to_decimal(leaves_m, inst.qty_scale));
    format!(
        concat!(
            r#"{{"category":"{cat}","symbol":"{sym}","orderId":"{oid}","orderLinkId":{link},"blockTradeId":"","side":"{side}","#,
            r#""positionIdx":0,"orderStatus":"{st}","cancelType":"{ct}","rejectReason":"{rr}","avgPrice":"{avg}","#,
            r#""leavesQty":"{lq}","leavesValue":"{lv}","cumExecQty":"{cq}","cumExecValue":"{cv}","cumExecFee":"{cf}","#,
            r#""timeInForce":"{tif}","orderType":"{ot}","stopOrderType":"","orderIv":"","triggerPrice":"","takeProfit":"","#,
            r#""stopLoss":"","triggerBy":"","tpTriggerBy":"","slTriggerBy":"","triggerDirection":0,"placeType":"","#,
            r#""lastPriceOnCreated":"","closeOnTrigger":false,"reduceOnly":{ro},"smpGroup":0,"smpType":"None","smpOrderId":"","#,
            r#""price":"{px}","qty":"{qty}","createType":"CreateByUser","feeCurrency":"","closedPnl":"0","#,
            r#""createdTime":"{ct_ms}","updatedTime":"{ut_ms}"}}"#
        ),
        cat = if spot { "spot" } else { "linear" },
        sym = inst.symbol,
        oid = order_id(spot, o.order_id),
        link = Value::String(o.client_id.clone()),
        side = side_name(o.side),
        st = st,
        ct = cancel_type,
        rr = reject,
        avg = avg,
        lq = fixed(leaves_m, inst.qty_scale),
        lv = dec(leaves_value),
        cq = fixed(o.filled_qty, inst.qty_scale),
        cv = dec(o.filled_quote),
        cf = dec(cum_fee),
        tif = tif_name(o.tif),
        ot = if o.px.is_some() { "Limit" } else { "Market" },
        ro = o.reduce_only,
        px = px,
        qty = fixed(o.qty, inst.qty_scale),
        ct_ms = o.created_ms,
        ut_ms = o.updated_ms,
    )
}

/// One fill as Bybit's `execution` topic and `/v5/execution/list` print it.
fn exec_json(spot: bool, inst: &Instrument, o: &OrderView, f: &FillView) -> String {
    let value = to_decimal(f.px, inst.price_scale) * to_decimal(f.qty, inst.qty_scale);
    let rate = if f.maker { inst.maker_fee } else { inst.taker_fee };
    let leaves = if o.status.is_final() { 0 } else { o.qty - o.filled_qty };
    format!(
        concat!(
            r#"{{"category":"{cat}","symbol":"{sym}","closedSize":"0","execFee":"{fee}","execId":"{eid}","#,
            r#""execPrice":"{px}","execQty":"{qty}","execType":"Trade","execValue":"{val}","feeRate":"{rate}","#,
            r#""tradeIv":"","markIv":"","blockTradeId":"","markPrice":"","indexPrice":"","underlyingPrice":"","#,
            r#""leavesQty":"{lq}","orderId":"{oid}","orderLinkId":{link},"orderPrice":"{opx}","orderQty":"{oq}","#,
            r#""orderType":"{ot}","stopOrderType":"UNKNOWN","side":"{side}","execTime":"{t}","isLeverage":"0","#,
            r#""isMaker":{maker},"seq":{seq},"marketUnit":"","execPnl":"0","createType":"CreateByUser","feeCurrency":"{fc}"}}"#
        ),
        cat = if spot { "spot" } else { "linear" },
        sym = inst.symbol,
        fee = dec(f.fee),
        eid = exec_id(spot, f.trade_id),
        px = fixed(f.px, inst.price_scale),
        qty = fixed(f.qty, inst.qty_scale),
        val = dec(value),
        rate = dec(rate),
        lq = fixed(leaves, inst.qty_scale),
        oid = order_id(spot, o.order_id),
        link = Value::String(o.client_id.clone()),
        opx = o.px.map_or_else(|| "0".to_owned(), |p| fixed(p, inst.price_scale)),
        oq = fixed(o.qty, inst.qty_scale),
        ot = if o.px.is_some() { "Limit" } else { "Market" },
        side = side_name(f.side),
        t = f.time_ms,
        maker = f.maker,
        seq = f.trade_id,
        fc = f.fee_asset,
    )
}

/// Checks an `auth` request's `args`; the account on success, else Bybit's code and message.
fn check_auth(shared: &Shared, venue: usize, args: &Value) -> Result<AccountId, (i64, &'static str)> {
    const PARAMS: (i64, &str) = (10_001, "Params Error");
    let a = args.as_array().filter(|a| a.len() == 3).ok_or(PARAMS)?;
    let key = a[0].as_str().ok_or(PARAMS)?;
    let expires = match &a[1] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or(PARAMS)?;
    let sig = a[2].as_str().ok_or(PARAMS)?;
    let ex = shared.lock_exchange();
    let account = ex.account_by_key(shared.venue_name(venue), key).ok_or((10_003, "Invalid apikey"))?;
    if expires <= wall_ms() {
        return Err(PARAMS);
    }
    let SecretKey::Hmac(secret) = &account.credentials.key else { return Err((10_003, "Invalid apikey")) };
    let mut want = [0u8; HEX_SIG_LEN];
    let want = sign::ws_auth_signature_into(&HmacSigner::new(secret), expires.unsigned_abs(), &mut want);
    if !constant_eq(want.as_bytes(), sig.as_bytes()) {
        return Err((10_004, "Invalid sign"));
    }
    Ok(account.id)
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks a request timestamp against the receive window.
fn check_time(ts: Option<i64>, window: Option<i64>) -> Result<(), (i64, String)> {
    let now = wall_ms();
    let window = window.unwrap_or(DEFAULT_RECV_WINDOW);
    let Some(ts) = ts else { return Err((10_001, "Params Error: X-BAPI-TIMESTAMP is required".into())) };
    if !(now - window <= ts && ts < now + AHEAD_MS) {
        return Err((
            10_002,
            format!(
                "invalid request, please check your server timestamp or recv_window param. req_timestamp[{ts}],server_timestamp[{now}],recv_window[{window}]"
            ),
        ));
    }
    Ok(())
}

fn num_field(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Per-op request counts in the current one-second window.
#[derive(Default)]
struct RateWindow {
    second: i64,
    used: HashMap<&'static str, u64>,
}

/// The state of one trade websocket.
struct TradeSession<'a> {
    shared: &'a Shared,
    venue: usize,
    spot: bool,
    conn_id: String,
    account: Option<AccountId>,
    rate: RateWindow,
}

impl TradeSession<'_> {
    fn limit(&self) -> u64 {
        if self.spot { 20 } else { 10 }
    }

    fn reply(
        &self,
        req_id: Option<&str>,
        op: &str,
        code: i64,
        msg: &str,
        data: &str,
        header: Option<(u64, u64)>,
    ) -> String {
        let mut out = String::with_capacity(256);
        out.push('{');
        if let Some(id) = req_id {
            let _ = write!(out, r#""reqId":{},"#, Value::String(id.to_owned()));
        }
        let _ = write!(
            out,
            r#""retCode":{code},"retMsg":{},"op":{}"#,
            Value::String(msg.to_owned()),
            Value::String(op.to_owned())
        );
        if let Some((limit, left)) = header {
            let now = wall_ms();
            let _ = write!(
                out,
                r#","data":{data},"retExtInfo":{{}},"header":{{"X-Bapi-Limit":"{limit}","X-Bapi-Limit-Status":"{left}","X-Bapi-Limit-Reset-Timestamp":"{now}","Traceid":"{now:032x}","Timenow":"{now}"}}"#
            );
        }
        let _ = write!(out, r#","connId":"{}"}}"#, self.conn_id);
        out
    }

    fn handle(&mut self, text: &str) -> String {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return self.reply(None, "", 10_001, "Params Error", "{}", None);
        };
        let req_id = v["reqId"].as_str().or_else(|| v["req_id"].as_str());
        let op = v["op"].as_str().unwrap_or_default();
        match op {
            "auth" => {
                if self.account.is_some() {
                    return self.reply(req_id, "auth", 20_001, "Repeat auth", "{}", None);
                }
                match check_auth(self.shared, self.venue, &v["args"]) {
                    Ok(account) => {
                        self.account = Some(account);
                        self.reply(req_id, "auth", 0, "OK", "{}", None)
                    }
                    Err((code, msg)) => self.reply(req_id, "auth", code, msg, "{}", None),
                }
            }
            "ping" => {
                let now = wall_ms();
                format!(r#"{{"retCode":0,"retMsg":"OK","op":"pong","data":["{now}"],"connId":"{}"}}"#, self.conn_id)
            }
            "order.create" | "order.cancel" => {
                let op: &'static str = if op == "order.create" { "order.create" } else { "order.cancel" };
                let header = self.take_rate(op);
                let (code, msg, data) = match self.order_op(op, &v, header) {
                    Ok(data) => (0, "OK".to_owned(), data),
                    Err((code, msg)) => (code, msg, "{}".to_owned()),
                };
                self.reply(req_id, op, code, &msg, &data, Some(header))
            }
            _ => self.reply(req_id, op, 10_404, "op type is not found", "{}", None),
        }
    }

    /// Counts a request of `op`; returns (limit, remaining) after it (remaining 0 and over
    /// when refused: `left` is then `u64::MAX`).
    fn take_rate(&mut self, op: &'static str) -> (u64, u64) {
        let second = wall_ms() / 1_000;
        if self.rate.second != second {
            self.rate.second = second;
            self.rate.used.clear();
        }
        let limit = self.limit();
        let used = self.rate.used.entry(op).or_insert(0);
        *used += 1;
        (limit, limit.saturating_sub(*used))
    }

    fn order_op(&mut self, op: &'static str, v: &Value, (limit, _): (u64, u64)) -> Result<String, (i64, String)> {
        let Some(account) = self.account else { return Err((10_007, "User authentication failed.".into())) };
        let header = &v["header"];
        check_time(num_field(&header["X-BAPI-TIMESTAMP"]), num_field(&header["X-BAPI-RECV-WINDOW"]))?;
        if self.rate.used.get(op).copied().unwrap_or(0) > limit {
            return Err((10_006, "Too many visits!".into()));
        }
        let arg = v["args"].as_array().and_then(|a| a.first()).ok_or((10_001, "Params Error".to_owned()))?;
        let cat = category(self.shared, self.venue);
        if arg["category"].as_str() != Some(cat) {
            return Err((10_404, "category is not correct/supported".into()));
        }
        let symbol = arg["symbol"].as_str().unwrap_or_default();
        let Some(instrument) = self.shared.instrument(self.venue, symbol) else {
            let (code, msg) = error_code(self.spot, &ExchangeError::UnknownInstrument);
            return Err((code, msg.into()));
        };
        let exchange_err = |e: ExchangeError| {
            let (code, msg) = error_code(self.spot, &e);
            (code, msg.to_owned())
        };
        let time_ms;
        let result = if op == "order.create" {
            let req = self.parse_create(arg, instrument)?;
            let mut market = self.shared.lock_market();
            time_ms = market.time_ms();
            let r = self.shared.lock_exchange().place(account, &req, &mut market, time_ms);
            drop(market);
            r
        } else {
            let oid = arg["orderId"].as_str().unwrap_or_default();
            let link = arg["orderLinkId"].as_str().unwrap_or_default();
            let id_num: Option<u64> = if oid.is_empty() {
                None
            } else if self.spot {
                oid.parse::<u64>().ok().and_then(|n| n.checked_sub(1_900_000_000_000_000_000))
            } else {
                oid.rsplit('-').next().and_then(|h| u64::from_str_radix(h, 16).ok())
            };
            let order = match (id_num, link.is_empty()) {
                (Some(id), _) => OrderRef::Id(id),
                (None, false) => OrderRef::Client(link),
                (None, true) if oid.is_empty() => {
                    return Err((10_001, "params error: orderId or orderLinkId is required".into()));
                }
                (None, true) => return Err(exchange_err(ExchangeError::UnknownOrder)),
            };
            let market = self.shared.lock_market();
            time_ms = market.time_ms();
            let r = self.shared.lock_exchange().cancel(account, instrument, order, time_ms);
            drop(market);
            r
        };
        self.shared.publish_reports();
        let o = result.map_err(exchange_err)?;
        Ok(format!(
            r#"{{"orderId":"{}","orderLinkId":{}}}"#,
            order_id(self.spot, o.order_id),
            Value::String(o.client_id)
        ))
    }

    fn parse_create(&self, arg: &Value, instrument: InstrumentId) -> Result<PlaceRequest, (i64, String)> {
        let inst = self.shared.registry.get(instrument);
        let params = |what: &str| (10_001, format!("params error: {what}"));
        let side = match arg["side"].as_str() {
            Some("Buy") => Side::Bid,
            Some("Sell") => Side::Ask,
            _ => return Err(params("side invalid")),
        };
        let qty = arg["qty"].as_str().ok_or_else(|| params("qty is required"))?;
        let qty = parse_mantissa(qty.as_bytes(), inst.qty_scale, false).map_err(|_| {
            let (code, msg) = error_code(self.spot, &ExchangeError::InvalidQuantity);
            (code, msg.to_owned())
        })?;
        let px = match arg["orderType"].as_str() {
            Some("Limit") => {
                let p = arg["price"].as_str().ok_or_else(|| params("price is required for a Limit order"))?;
                Some(parse_mantissa(p.as_bytes(), inst.price_scale, false).map_err(|_| {
                    let (code, msg) = error_code(self.spot, &ExchangeError::InvalidPrice);
                    (code, msg.to_owned())
                })?)
            }
            Some("Market") => None,
            _ => return Err(params("orderType invalid")),
        };
        let tif = match arg["timeInForce"].as_str() {
            None | Some("GTC") => Tif::Gtc,
            Some("IOC") => Tif::Ioc,
            Some("FOK") => Tif::Fok,
            Some("PostOnly") => Tif::PostOnly,
            Some(_) => return Err(params("timeInForce invalid")),
        };
        let client_id = arg["orderLinkId"].as_str().unwrap_or_default().to_owned();
        if client_id.len() > 36 {
            return Err(params("orderLinkId is too long"));
        }
        let reduce_only = arg["reduceOnly"].as_bool().unwrap_or(false);
        Ok(PlaceRequest { instrument, client_id, side, px, qty, tif, reduce_only })
    }
}

/// A connection id in Bybit's style.
fn conn_id(tag: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("sim{tag}{n:016x}-{n}")
}

/// Serves one trade websocket session.
pub(crate) async fn run_trade(
    mut ws: WebSocketStream<TcpStream>,
    shared: &Shared,
    venue: usize,
    mut stop: watch::Receiver<bool>,
) {
    let mut s = TradeSession {
        shared,
        venue,
        spot: is_spot(shared, venue),
        conn_id: conn_id("t"),
        account: None,
        rate: RateWindow::default(),
    };
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let reply = s.handle(text.as_str());
                    if ws.send(Message::text(reply)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Ping(_))) => {
                    let _ = ws.flush().await;
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = ws.close(None).await;
}

/// Serves one private stream session.
pub(crate) async fn run_private(
    mut ws: WebSocketStream<TcpStream>,
    shared: &Shared,
    venue: usize,
    mut stop: watch::Receiver<bool>,
) {
    let spot = is_spot(shared, venue);
    let cid = conn_id("p");
    let mut account = None;
    let (mut orders, mut executions) = (false, false);
    let mut sub: Option<(u64, mpsc::UnboundedReceiver<ExecReport>)> = None;
    let mut cum_fees: HashMap<u64, Decimal> = HashMap::new();
    let reply = |req_id: &Value, success: bool, msg: &str, op: &str| {
        let id = if req_id.is_string() { format!(r#""req_id":{req_id},"#) } else { String::new() };
        format!(
            r#"{{{id}"success":{success},"ret_msg":{},"op":{},"conn_id":"{cid}"}}"#,
            Value::String(msg.to_owned()),
            Value::String(op.to_owned())
        )
    };
    loop {
        let report = async {
            match sub.as_mut() {
                Some((_, rx)) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let out: Vec<String> = tokio::select! {
            biased;
            _ = stop.changed() => break,
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                    let req_id = &v["req_id"];
                    let op = v["op"].as_str().unwrap_or_default();
                    vec![match op {
                        "ping" => {
                            let id = if req_id.is_string() { req_id.to_string() } else { r#""""#.to_owned() };
                            format!(r#"{{"req_id":{id},"op":"pong","args":["{}"],"conn_id":"{cid}"}}"#, wall_ms())
                        }
                        "auth" if account.is_some() => reply(req_id, false, "Repeat auth", "auth"),
                        "auth" => match check_auth(shared, venue, &v["args"]) {
                            Ok(a) => {
                                account = Some(a);
                                reply(req_id, true, "", "auth")
                            }
                            Err((_, msg)) => reply(req_id, false, msg, "auth"),
                        },
                        "subscribe" => match (account, v["args"].as_array()) {
                            (None, _) => reply(req_id, false, "Request not authorized", "subscribe"),
                            (Some(a), Some(args)) => {
                                let mut bad = None;
                                for t in args {
                                    match t.as_str() {
                                        Some("order") => orders = true,
                                        Some("execution") => executions = true,
                                        Some("position" | "wallet") => {}
                                        other => bad = Some(other.unwrap_or_default().to_owned()),
                                    }
                                }
                                if let Some(t) = bad {
                                    reply(req_id, false, &format!("Invalid topic :[{t}]"), "subscribe")
                                } else {
                                    if sub.is_none() && (orders || executions) {
                                        sub = Some(shared.subscribe_private(a));
                                    }
                                    reply(req_id, true, "", "subscribe")
                                }
                            }
                            (Some(_), None) => reply(req_id, false, "Params Error", "subscribe"),
                        },
                        _ => reply(req_id, false, "Invalid request: unknown op", op),
                    }]
                }
                Some(Ok(Message::Ping(_))) => {
                    let _ = ws.flush().await;
                    Vec::new()
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => Vec::new(),
            },
            r = report => match r {
                Some(r) => push_frames(shared, spot, &r, (orders, executions), &mut cum_fees),
                None => break,
            },
        };
        for frame in out {
            if ws.send(Message::text(frame)).await.is_err() {
                if let Some((id, _)) = sub {
                    shared.unsubscribe_private(id);
                }
                return;
            }
        }
    }
    if let Some((id, _)) = sub {
        shared.unsubscribe_private(id);
    }
    let _ = ws.close(None).await;
}

/// The private stream messages of one report: `execution` first (when it carries a fill),
/// then `order`.
fn push_frames(
    shared: &Shared,
    spot: bool,
    r: &ExecReport,
    (orders, executions): (bool, bool),
    cum_fees: &mut HashMap<u64, Decimal>,
) -> Vec<String> {
    let inst = shared.registry.get(r.order.instrument);
    let mut out = Vec::with_capacity(2);
    let time = r.order.updated_ms;
    if let Some(f) = &r.fill {
        *cum_fees.entry(r.order.order_id).or_default() += f.fee;
        if executions {
            out.push(format!(
                r#"{{"topic":"execution","id":"{}_{}_{}","creationTime":{time},"data":[{}]}}"#,
                r.order.account.0,
                inst.symbol,
                f.trade_id,
                exec_json(spot, inst, &r.order, f)
            ));
        }
    }
    let fee = cum_fees.get(&r.order.order_id).copied().unwrap_or_default();
    if r.order.status.is_final() {
        cum_fees.remove(&r.order.order_id);
    }
    if orders {
        out.push(format!(
            r#"{{"id":"{}-{}-{}","topic":"order","creationTime":{time},"data":[{}]}}"#,
            r.order.account.0,
            r.order.order_id,
            r.order.updated_ms,
            order_json(spot, inst, &r.order, fee)
        ));
    }
    out
}

/// A REST error body.
fn rest_error(code: i64, msg: &str) -> (u16, String) {
    (
        200,
        format!(
            r#"{{"retCode":{code},"retMsg":{},"result":{{}},"retExtInfo":{{}},"time":{}}}"#,
            Value::String(msg.to_owned()),
            wall_ms()
        ),
    )
}

fn rest_ok(result: &str) -> (u16, String) {
    (200, format!(r#"{{"retCode":0,"retMsg":"OK","result":{result},"retExtInfo":{{}},"time":{}}}"#, wall_ms()))
}

/// Verifies a REST request's `X-BAPI-*` headers.
fn rest_auth(shared: &Shared, venue: usize, req: &RestRequest<'_>) -> Result<AccountId, (u16, String)> {
    let key = req.header("x-bapi-api-key").ok_or_else(|| rest_error(10_003, "API key is invalid."))?;
    let ts = req.header("x-bapi-timestamp").and_then(|t| t.trim().parse::<i64>().ok());
    let window = match req.header("x-bapi-recv-window") {
        Some(w) => Some(w.trim().parse::<i64>().map_err(|_| rest_error(10_001, "Params Error"))?),
        None => None,
    };
    let sig = req.header("x-bapi-sign").unwrap_or_default();
    let ex = shared.lock_exchange();
    let account =
        ex.account_by_key(shared.venue_name(venue), key).ok_or_else(|| rest_error(10_003, "API key is invalid."))?;
    check_time(ts, window).map_err(|(code, msg)| rest_error(code, &msg))?;
    let SecretKey::Hmac(secret) = &account.credentials.key else {
        return Err(rest_error(10_003, "API key is invalid."));
    };
    let payload = if req.method == "GET" { req.query } else { req.body };
    let mut want = [0u8; HEX_SIG_LEN];
    let window = u32::try_from(window.unwrap_or(DEFAULT_RECV_WINDOW)).unwrap_or(0);
    let want = sign::rest_signature_into(
        &HmacSigner::new(secret),
        ts.unwrap_or_default().unsigned_abs(),
        &account.credentials.api_key,
        window,
        payload,
        &mut want,
    );
    if !constant_eq(want.as_bytes(), sig.as_bytes()) {
        return Err(rest_error(10_004, "Error sign, please check your signature generation algorithm."));
    }
    Ok(account.id)
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// Answers a signed REST request.
pub(crate) fn rest(shared: &Shared, venue: usize, req: &RestRequest<'_>) -> Option<(u16, String)> {
    let route = match (req.method, req.path) {
        ("GET", "/v5/order/realtime" | "/v5/execution/list" | "/v5/position/list")
        | ("POST", "/v5/order/cancel-all") => req.path,
        _ => return None,
    };
    let account = match rest_auth(shared, venue, req) {
        Ok(a) => a,
        Err(e) => return Some(e),
    };
    let spot = is_spot(shared, venue);
    let cat = category(shared, venue);
    let get = |name: &str| -> Option<String> {
        if req.method == "POST" {
            serde_json::from_str::<Value>(req.body).ok()?.get(name)?.as_str().map(str::to_owned)
        } else {
            query_param(req.query, name).map(str::to_owned)
        }
    };
    if get("category").as_deref() != Some(cat) {
        return Some(rest_error(10_001, "Illegal category"));
    }
    let symbol = get("symbol");
    let instrument = match &symbol {
        Some(s) => match shared.instrument(venue, s) {
            Some(i) => Some(i),
            None => {
                let (code, msg) = error_code(spot, &ExchangeError::UnknownInstrument);
                return Some(rest_error(code, msg));
            }
        },
        None => None,
    };
    if !spot
        && instrument.is_none()
        && get("settleCoin").is_none()
        && get("baseCoin").is_none()
        && route != "/v5/execution/list"
    {
        return Some(rest_error(
            10_001,
            "Missing some parameters that must be filled in, symbol or settleCoin or baseCoin",
        ));
    }
    let in_scope = |id: InstrumentId| {
        let inst = shared.registry.get(id);
        inst.venue.index() == venue
            && instrument.is_none_or(|i| i == id)
            && get("settleCoin").is_none_or(|c| c == inst.quote)
            && get("baseCoin").is_none_or(|c| c == inst.base)
    };
    let rows: Vec<String> = match route {
        "/v5/order/realtime" => {
            let open = shared.lock_exchange().open_orders(account, instrument);
            open.iter()
                .filter(|o| in_scope(o.instrument))
                .map(|o| order_json(spot, shared.registry.get(o.instrument), o, Decimal::ZERO))
                .collect()
        }
        "/v5/execution/list" => {
            let limit = get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(50).clamp(1, 100);
            let ex = shared.lock_exchange();
            let mut fills = ex.fills(account, instrument, 0);
            fills.retain(|f| in_scope(f.instrument));
            fills.reverse();
            fills.truncate(limit);
            fills
                .iter()
                .filter_map(|f| {
                    let o = ex.order(account, f.instrument, OrderRef::Id(f.order_id))?;
                    Some(exec_json(spot, shared.registry.get(f.instrument), &o, f))
                })
                .collect()
        }
        "/v5/position/list" => {
            if spot {
                return Some(rest_error(10_001, "Illegal category"));
            }
            let (positions, leverage) = {
                let ex = shared.lock_exchange();
                (ex.positions(account), ex.leverage())
            };
            positions
                .iter()
                .filter(|(id, _)| in_scope(*id))
                .map(|(id, p)| {
                    let inst = shared.registry.get(*id);
                    let side = match p.qty.signum() {
                        1 => "Buy",
                        -1 => "Sell",
                        _ => "",
                    };
                    let size = fixed(p.qty.abs(), inst.qty_scale);
                    let value = p.entry_px * to_decimal(p.qty.abs(), inst.qty_scale);
                    format!(
                        r#"{{"positionIdx":0,"riskId":1,"riskLimitValue":"2000000","symbol":"{}","side":"{side}","size":"{size}","avgPrice":"{}","positionValue":"{}","tradeMode":0,"positionStatus":"Normal","autoAddMargin":0,"adlRankIndicator":0,"leverage":"{leverage}","positionBalance":"0","markPrice":"","liqPrice":"","bustPrice":"","positionMM":"0","positionIM":"0","tpslMode":"Full","takeProfit":"0","stopLoss":"0","trailingStop":"0","unrealisedPnl":"0","curRealisedPnl":"{}","cumRealisedPnl":"{}","seq":0,"isReduceOnly":false,"createdTime":"0","updatedTime":"0"}}"#,
                        inst.symbol,
                        dec(p.entry_px),
                        dec(value),
                        dec(p.realized),
                        dec(p.realized),
                    )
                })
                .collect()
        }
        _ => {
            // POST /v5/order/cancel-all
            let market = shared.lock_market();
            let time_ms = market.time_ms();
            let cancelled = shared.lock_exchange().cancel_all(account, instrument, time_ms);
            drop(market);
            shared.publish_reports();
            let list: Vec<String> = cancelled
                .iter()
                .filter(|o| in_scope(o.instrument))
                .map(|o| {
                    format!(
                        r#"{{"orderId":"{}","orderLinkId":{}}}"#,
                        order_id(spot, o.order_id),
                        Value::String(o.client_id.clone())
                    )
                })
                .collect();
            return Some(rest_ok(&format!(r#"{{"list":[{}],"success":"1"}}"#, list.join(","))));
        }
    };
    Some(rest_ok(&format!(r#"{{"list":[{}],"nextPageCursor":"","category":"{cat}"}}"#, rows.join(","))))
}
