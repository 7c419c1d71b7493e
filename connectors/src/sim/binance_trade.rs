//! Binance's order entry, simulator side: the WebSocket API (`order.place`, `order.cancel`,
//! `order.status`, `session.logon`, user data streams) and the signed REST endpoints, verified
//! and answered as Binance documents them.
//!
//! Served on a venue of protocol `binance-spot` (`ws://ADDR/<venue>/ws-api/v3`) or
//! `binance-usdm` (`ws://ADDR/<venue>/ws-fapi/v1`, user data streams at
//! `ws://ADDR/<venue>/ws/<listenKey>`), plus the REST paths listed at [`rest`].
//!
//! Verification follows Binance's "SIGNED request security" rules: the WebSocket API signs every
//! parameter but `signature`, sorted by name, `name=value` joined by `&`; REST signs the query
//! string followed by the form body exactly as sent; HMAC-SHA256 keys sign in hex (compared
//! case-insensitively), Ed25519 keys in base64. A request is refused with -1021 when its
//! `timestamp` is 1000 ms or more ahead of the server's wall clock or older than `recvWindow`
//! (default 5000 ms, at most 60000 ms). Errors carry Binance's documented codes, messages and
//! statuses (`errors.md`; USD-M's own codes where the futures API differs).
//!
//! WebSocket API methods: `session.logon` (Ed25519 keys), `session.status`, `session.logout`,
//! `time`, `ping`, `order.place`, `order.cancel`, `order.status`, `openOrders.status`; spot also
//! `openOrders.cancelAll`, `myTrades`, `account.status`, `userDataStream.subscribe` (logged-on
//! session), `userDataStream.subscribe.signature`, `userDataStream.unsubscribe` (events arrive
//! on the same connection as `{"subscriptionId":N,"event":{…}}`: `executionReport`, then
//! `outboundAccountPosition`); USD-M also `account.position` / `v2/account.position`,
//! `account.balance` / `v2/account.balance`, `userDataStream.start` / `ping` / `stop` (the
//! listen key's stream carries `ORDER_TRADE_UPDATE` and, after fills, `ACCOUNT_UPDATE`). A
//! method may carry the `v3/` prefix on spot.
//!
//! Rate limits are counted per API key (per connection for requests that name no key) in fixed
//! windows starting on the interval's boundary, as Binance does, and reported in every WebSocket
//! API response's `rateLimits`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use crossbar_engine::fixed::{self, FixedError, Scale};
use crossbar_engine::instrument::{Instrument, InstrumentId};
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tungstenite::Utf8Bytes;

use super::book::Side;
use super::exchange::{
    AccountId, ExchangeError, ExecReport, FillView, OrderRef, OrderStatus, OrderView, PlaceRequest, Tif,
};
use super::private::{PrivatePath, RestRequest};
use super::server::{End, Shared, close_session, session_loop};
use crate::auth::binance::ws_signature_payload;
use crate::auth::{Ed25519Signer, HmacSigner};
use crate::order::SecretKey;
use crate::venue::Protocol;

/// The spot WebSocket API's path under the venue prefix.
pub(crate) const SPOT_WS_API_PATH: &str = "/ws-api/v3";
/// The USD-M WebSocket API's path under the venue prefix.
pub(crate) const USDM_WS_API_PATH: &str = "/ws-fapi/v1";
/// `recvWindow` when a request gives none (Binance's documented default).
const DEFAULT_RECV_WINDOW_MS: i64 = 5_000;
/// Largest `recvWindow` accepted (Binance's documented maximum).
const MAX_RECV_WINDOW_MS: i64 = 60_000;
/// A timestamp this far ahead of the server's clock, or more, is refused.
const AHEAD_TOLERANCE_MS: i64 = 1_000;
/// Spot request weight allowed per minute and key (Binance spot's `REQUEST_WEIGHT` limit).
pub const SPOT_WEIGHT_PER_MINUTE: u32 = 6_000;
/// Spot new orders allowed per 10 seconds and key (the simulator's `ORDERS` limit).
pub const SPOT_ORDERS_PER_10S: u32 = 100;
/// USD-M request weight allowed per minute and key (Binance futures' `REQUEST_WEIGHT` limit).
pub const USDM_WEIGHT_PER_MINUTE: u32 = 2_400;
/// USD-M new orders allowed per 10 seconds and key (Binance futures' `ORDERS` limit).
pub const USDM_ORDERS_PER_10S: u32 = 300;
/// How long a USD-M listen key lives without a keepalive (Binance: 60 minutes).
const LISTEN_KEY_VALIDITY_MS: i64 = 60 * 60 * 1000;
/// How often a user data stream checks that its listen key is still valid.
const LISTEN_KEY_CHECK: Duration = Duration::from_secs(1);
/// Most trades `myTrades` / `userTrades` return (Binance's maximum `limit`).
const MAX_TRADES_LIMIT: usize = 1_000;

// ---- errors ------------------------------------------------------------------------------------

/// A refusal as Binance words it: HTTP (or WebSocket API `status`) code, error code, message.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ApiError {
    status: u16,
    code: i32,
    msg: String,
}

fn api_err(status: u16, code: i32, msg: impl Into<String>) -> ApiError {
    ApiError { status, code, msg: msg.into() }
}

fn missing(name: &str) -> ApiError {
    api_err(400, -1102, format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."))
}

fn bad_key() -> ApiError {
    api_err(401, -2015, "Invalid API-key, IP, or permissions for action.")
}

fn bad_signature() -> ApiError {
    api_err(400, -1022, "Signature for this request is not valid.")
}

fn bad_symbol() -> ApiError {
    api_err(400, -1121, "Invalid symbol.")
}

fn illegal(name: &str) -> ApiError {
    api_err(
        400,
        -1100,
        format!(
            "Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."
        ),
    )
}

/// An exchange refusal in the venue's words.
fn exchange_err(api: Protocol, e: &ExchangeError) -> ApiError {
    let usdm = api == Protocol::BinanceUsdm;
    match e {
        ExchangeError::UnknownInstrument => bad_symbol(),
        ExchangeError::InvalidPrice if usdm => api_err(400, -4014, "Price not increased by tick size."),
        ExchangeError::InvalidPrice => api_err(400, -1013, "Filter failure: PRICE_FILTER"),
        ExchangeError::InvalidQuantity if usdm => api_err(400, -4023, "Quantity not increased by step size."),
        ExchangeError::InvalidQuantity => api_err(400, -1013, "Filter failure: LOT_SIZE"),
        ExchangeError::InsufficientBalance if usdm => api_err(400, -2019, "Margin is insufficient."),
        ExchangeError::InsufficientBalance => {
            api_err(400, -2010, "Account has insufficient balance for requested action.")
        }
        ExchangeError::UnknownOrder => api_err(400, -2011, "Unknown order sent."),
        ExchangeError::DuplicateClientId if usdm => api_err(400, -4116, "ClientOrderId is duplicated."),
        ExchangeError::DuplicateClientId => api_err(400, -2010, "Duplicate order sent."),
        ExchangeError::ReduceOnly => api_err(400, -2022, "ReduceOnly Order is rejected."),
        ExchangeError::NoLiquidity => api_err(400, -2010, "Order book liquidity is less than symbol minimum quantity."),
    }
}

// ---- clocks and ids ----------------------------------------------------------------------------

/// The wall clock in ms: what request timestamps are checked against.
fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fresh id for execution reports (`I`), unique in the process.
fn next_execution_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A new 64-character listen key, unguessable enough for a loopback venue.
fn new_listen_key(api_key: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut h = Sha256::new();
    h.update(nanos.to_le_bytes());
    h.update(NEXT.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.update(api_key.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

// ---- state that outlives a connection: listen keys and per-key rate limits ---------------------

/// One fixed rate-limit window.
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    start: i64,
    count: u32,
}

impl Window {
    /// The count of the window containing `now` (a new window starts at zero).
    fn at(&mut self, now: i64, len_ms: i64) -> &mut u32 {
        let start = now - now.rem_euclid(len_ms);
        if start != self.start {
            *self = Self { start, count: 0 };
        }
        &mut self.count
    }
}

/// Counters of one API key (or one connection).
#[derive(Clone, Copy, Debug, Default)]
struct Limits {
    weight: Window,
    orders: Window,
}

/// An issued USD-M listen key.
#[derive(Clone, Debug)]
struct ListenKey {
    venue: String,
    api_key: String,
    expires_ms: i64,
}

/// What outlives a connection, per simulator: listen keys (a user stream connects after they
/// were issued on another connection) and each key's rate-limit counters (keyed by venue name
/// and API key).
#[derive(Debug)]
pub(crate) struct BinanceState {
    limits: HashMap<(String, String), Limits>,
    listen_keys: HashMap<String, ListenKey>,
    /// `SimConfig::binance_rate_limits`: false counts requests but never refuses one.
    enforce_limits: bool,
}

impl BinanceState {
    /// Empty state; `enforce_limits` as `SimConfig::binance_rate_limits`.
    pub(crate) fn new(enforce_limits: bool) -> Self {
        Self { limits: HashMap::new(), listen_keys: HashMap::new(), enforce_limits }
    }
}

fn registry(shared: &Shared) -> MutexGuard<'_, BinanceState> {
    shared.binance.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The valid listen key `key`, if issued and not expired.
fn listen_key(shared: &Shared, key: &str) -> Option<ListenKey> {
    registry(shared).listen_keys.get(key).filter(|k| k.expires_ms > wall_ms()).cloned()
}

/// The listen key of an account, extended by the validity period (a new one if none).
fn start_listen_key(shared: &Shared, venue: &str, api_key: &str) -> String {
    let now = wall_ms();
    let mut reg = registry(shared);
    reg.listen_keys.retain(|_, k| k.expires_ms > now);
    let expires_ms = now + LISTEN_KEY_VALIDITY_MS;
    if let Some((key, k)) = reg.listen_keys.iter_mut().find(|(_, k)| k.venue == venue && k.api_key == api_key) {
        k.expires_ms = expires_ms;
        return key.clone();
    }
    let key = new_listen_key(api_key);
    reg.listen_keys.insert(key.clone(), ListenKey { venue: venue.to_owned(), api_key: api_key.to_owned(), expires_ms });
    key
}

/// Extends the account's listen key; -1125 when it has none.
fn keepalive_listen_key(shared: &Shared, venue: &str, api_key: &str) -> Result<String, ApiError> {
    let now = wall_ms();
    let mut reg = registry(shared);
    reg.listen_keys
        .iter_mut()
        .find(|(_, k)| k.venue == venue && k.api_key == api_key && k.expires_ms > now)
        .map(|(key, k)| {
            k.expires_ms = now + LISTEN_KEY_VALIDITY_MS;
            key.clone()
        })
        .ok_or_else(|| api_err(400, -1125, "This listenKey does not exist."))
}

/// Closes the account's listen key (its streams end at their next check).
fn stop_listen_key(shared: &Shared, venue: &str, api_key: &str) {
    registry(shared).listen_keys.retain(|_, k| !(k.venue == venue && k.api_key == api_key));
}

/// One `rateLimits` entry.
fn limit_entry(kind: &str, interval: &str, num: u32, limit: u32, count: u32) -> Value {
    json!({"rateLimitType": kind, "interval": interval, "intervalNum": num, "limit": limit, "count": count})
}

/// Charges a request of `weight` (and one new order when `order`) to `limits`; returns the
/// `rateLimits` entries, and the 429 refusal when a limit is exhausted (nothing is charged then).
/// With `enforce` false nothing is refused: the request is charged and reported whatever the count.
fn charge(
    limits: &mut Limits,
    api: Protocol,
    now: i64,
    weight: u32,
    order: bool,
    enforce: bool,
) -> (Vec<Value>, Option<ApiError>) {
    let (weight_limit, orders_limit) = match api {
        Protocol::BinanceUsdm => (USDM_WEIGHT_PER_MINUTE, USDM_ORDERS_PER_10S),
        _ => (SPOT_WEIGHT_PER_MINUTE, SPOT_ORDERS_PER_10S),
    };
    let mut refusal = None;
    let used = *limits.weight.at(now, 60_000);
    let orders = *limits.orders.at(now, 10_000);
    if enforce && used + weight > weight_limit {
        refusal = Some(api_err(
            429,
            -1003,
            format!(
                "Too much request weight used; current limit is {weight_limit} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."
            ),
        ));
    } else if enforce && order && orders + 1 > orders_limit {
        refusal = Some(api_err(
            429,
            -1015,
            format!("Too many new orders; current limit is {orders_limit} orders per 10 SECOND."),
        ));
    } else {
        *limits.weight.at(now, 60_000) += weight;
        if order {
            *limits.orders.at(now, 10_000) += 1;
        }
    }
    let mut entries = Vec::with_capacity(2);
    if order {
        entries.push(limit_entry("ORDERS", "SECOND", 10, orders_limit, limits.orders.count));
    }
    entries.push(limit_entry("REQUEST_WEIGHT", "MINUTE", 1, weight_limit, limits.weight.count));
    (entries, refusal)
}

/// Charges the API key `who` (venue name, key).
fn charge_key(
    shared: &Shared,
    who: &(String, String),
    api: Protocol,
    weight: u32,
    order: bool,
) -> (Vec<Value>, Option<ApiError>) {
    let now = wall_ms();
    let mut reg = registry(shared);
    let enforce = reg.enforce_limits;
    let limits = reg.limits.entry(who.clone()).or_default();
    charge(limits, api, now, weight, order, enforce)
}

// ---- parameters and signatures -----------------------------------------------------------------

/// A request's parameters as text, in the order given.
#[derive(Debug, Default)]
struct Params {
    items: Vec<(String, String)>,
}

impl Params {
    /// From a WebSocket API `params` object: strings as they are, numbers and booleans as their
    /// JSON text (what Binance signs); `null` counts as not sent.
    fn from_json(params: Option<&Map<String, Value>>) -> Self {
        let items = params
            .into_iter()
            .flatten()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect();
        Self { items }
    }

    /// From a query string and form body (percent-decoded values).
    fn from_query(parts: &[&str]) -> Self {
        let items = parts
            .iter()
            .flat_map(|p| p.split('&'))
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        Self { items }
    }

    /// A parameter's value; empty counts as not sent.
    fn get(&self, name: &str) -> Option<&str> {
        self.items.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    fn require(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| missing(name))
    }

    /// The WebSocket API signature payload: every parameter but `signature`, sorted.
    fn ws_payload(&self) -> String {
        let mut pairs: Vec<(&str, &str)> =
            self.items.iter().filter(|(k, _)| k != "signature").map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut out = String::new();
        if ws_signature_payload(&mut pairs, &mut out).is_err() {
            out.clear();
        }
        out
    }
}

/// Decodes `%XX` escapes and `+` (form encoding).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks `timestamp` and `recvWindow` against the wall clock as Binance's timing security does.
fn check_time(p: &Params) -> Result<(), ApiError> {
    let ts = p.require("timestamp")?;
    let mut ts: i64 = ts.parse().map_err(|_| missing("timestamp"))?;
    if ts > 100_000_000_000_000 {
        ts /= 1_000; // microseconds
    }
    let window = match p.get("recvWindow") {
        None => Decimal::from(DEFAULT_RECV_WINDOW_MS),
        Some(w) => w.parse::<Decimal>().map_err(|_| missing("recvWindow"))?,
    };
    if window > Decimal::from(MAX_RECV_WINDOW_MS) {
        return Err(api_err(
            400,
            -1102,
            format!("'recvWindow' contains unexpected value. Cannot be greater than {MAX_RECV_WINDOW_MS}."),
        ));
    }
    let now = wall_ms();
    if ts >= now + AHEAD_TOLERANCE_MS {
        return Err(api_err(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."));
    }
    if Decimal::from(now - ts) > window {
        return Err(api_err(400, -1021, "Timestamp for this request is outside of the recvWindow."));
    }
    Ok(())
}

/// Verifies `signature` over `payload` with the account's key: hex HMAC-SHA256 (any case) or
/// base64 Ed25519.
fn verify(key: &SecretKey, payload: &str, signature: &str) -> bool {
    match key {
        SecretKey::Hmac(secret) => {
            HmacSigner::new(secret).sign_hex(payload.as_bytes()).as_str().eq_ignore_ascii_case(signature)
        }
        SecretKey::Ed25519(pem) => {
            let Ok(signer) = Ed25519Signer::from_pkcs8_pem(pem) else { return false };
            let Ok(public) = VerifyingKey::from_bytes(&signer.public_key()) else { return false };
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(signature) else { return false };
            let Ok(sig) = Signature::from_slice(&raw) else { return false };
            public.verify(payload.as_bytes(), &sig).is_ok()
        }
    }
}

/// The account of `api_key` on `venue`, and whether its key is Ed25519.
fn account_of(shared: &Shared, venue: usize, api_key: &str) -> Result<(AccountId, bool), ApiError> {
    let ex = shared.lock_exchange();
    let account = ex.account_by_key(shared.venue_name(venue), api_key).ok_or_else(bad_key)?;
    Ok((account.id, matches!(account.credentials.key, SecretKey::Ed25519(_))))
}

/// Checks a signed request of `api_key`: its timestamp, then `signature` over `payload`.
fn verify_signed(
    shared: &Shared,
    venue: usize,
    api_key: &str,
    p: &Params,
    payload: &str,
) -> Result<AccountId, ApiError> {
    let signature = p.require("signature")?;
    p.require("timestamp")?;
    let (account, _) = account_of(shared, venue, api_key)?;
    check_time(p)?;
    let ok = {
        let ex = shared.lock_exchange();
        let acc = ex.account_by_key(shared.venue_name(venue), api_key).ok_or_else(bad_key)?;
        verify(&acc.credentials.key, payload, signature)
    };
    if ok { Ok(account) } else { Err(bad_signature()) }
}

// ---- rendering ---------------------------------------------------------------------------------

fn mantissa(m: i64, scale: Scale) -> String {
    fixed::display(m, scale).to_string()
}

fn dec(d: Decimal) -> String {
    d.normalize().to_string()
}

fn side_str(side: Side) -> &'static str {
    match side {
        Side::Bid => "BUY",
        Side::Ask => "SELL",
    }
}

fn status_str(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::New => "NEW",
        OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
        OrderStatus::Filled => "FILLED",
        OrderStatus::Canceled => "CANCELED",
        OrderStatus::Expired => "EXPIRED",
    }
}

fn type_str(api: Protocol, o: &OrderView) -> &'static str {
    match (o.px, o.tif) {
        (None, _) => "MARKET",
        (Some(_), Tif::PostOnly) if api == Protocol::BinanceSpot => "LIMIT_MAKER",
        _ => "LIMIT",
    }
}

/// An order's `timeInForce` as Binance shows it (market orders show `GTC`).
fn order_tif(api: Protocol, o: &OrderView) -> &'static str {
    if o.px.is_none() { "GTC" } else { tif_str(api, o.tif) }
}

fn tif_str(api: Protocol, tif: Tif) -> &'static str {
    match tif {
        Tif::Gtc => "GTC",
        Tif::Ioc => "IOC",
        Tif::Fok => "FOK",
        Tif::PostOnly if api == Protocol::BinanceUsdm => "GTX",
        Tif::PostOnly => "GTC",
    }
}

fn price_str(inst: &Instrument, px: Option<i64>) -> String {
    mantissa(px.unwrap_or(0), inst.price_scale)
}

/// Average fill price of an order ("0" when nothing filled).
fn avg_price(inst: &Instrument, o: &OrderView) -> String {
    if o.filled_qty == 0 {
        return "0".to_owned();
    }
    let qty = inst.qty(fixed::Qty(o.filled_qty));
    if qty.is_zero() { "0".to_owned() } else { dec(o.filled_quote / qty) }
}

fn symbol_of(shared: &Shared, id: InstrumentId) -> &Instrument {
    shared.registry.get(id)
}

/// An order as `order.place` (RESULT), `order.status` and `order.cancel` show it.
fn order_json(shared: &Shared, api: Protocol, o: &OrderView) -> Map<String, Value> {
    let inst = symbol_of(shared, o.instrument);
    let v = if api == Protocol::BinanceUsdm {
        json!({
            "orderId": o.order_id,
            "symbol": inst.symbol,
            "status": status_str(o.status),
            "clientOrderId": o.client_id,
            "price": price_str(inst, o.px),
            "avgPrice": avg_price(inst, o),
            "origQty": mantissa(o.qty, inst.qty_scale),
            "executedQty": mantissa(o.filled_qty, inst.qty_scale),
            "cumQty": mantissa(o.filled_qty, inst.qty_scale),
            "cumQuote": dec(o.filled_quote),
            "timeInForce": order_tif(api, o),
            "type": type_str(api, o),
            "reduceOnly": o.reduce_only,
            "closePosition": false,
            "side": side_str(o.side),
            "positionSide": "BOTH",
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": false,
            "origType": type_str(api, o),
            "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE",
            "goodTillDate": 0,
            "time": o.created_ms,
            "updateTime": o.updated_ms,
        })
    } else {
        json!({
            "symbol": inst.symbol,
            "orderId": o.order_id,
            "orderListId": -1,
            "clientOrderId": o.client_id,
            "price": price_str(inst, o.px),
            "origQty": mantissa(o.qty, inst.qty_scale),
            "executedQty": mantissa(o.filled_qty, inst.qty_scale),
            "origQuoteOrderQty": "0",
            "cummulativeQuoteQty": dec(o.filled_quote),
            "status": status_str(o.status),
            "timeInForce": order_tif(api, o),
            "type": type_str(api, o),
            "side": side_str(o.side),
            "selfTradePreventionMode": "NONE",
        })
    };
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Spot `order.status` / `GET /api/v3/order` / `openOrders.status` entries.
fn spot_status_json(shared: &Shared, o: &OrderView) -> Value {
    let mut m = order_json(shared, Protocol::BinanceSpot, o);
    m.insert("stopPrice".into(), "0".into());
    m.insert("icebergQty".into(), "0".into());
    m.insert("time".into(), o.created_ms.into());
    m.insert("updateTime".into(), o.updated_ms.into());
    m.insert("isWorking".into(), (!o.status.is_final()).into());
    m.insert("workingTime".into(), o.created_ms.into());
    Value::Object(m)
}

fn status_json(shared: &Shared, api: Protocol, o: &OrderView) -> Value {
    if api == Protocol::BinanceSpot { spot_status_json(shared, o) } else { Value::Object(order_json(shared, api, o)) }
}

/// A cancel's answer: the order as cancelled, with the id it was cancelled by.
fn cancel_json(shared: &Shared, api: Protocol, o: &OrderView, new_client_id: Option<&str>) -> Value {
    let mut m = order_json(shared, api, o);
    if api == Protocol::BinanceSpot {
        m.insert("origClientOrderId".into(), o.client_id.clone().into());
        m.insert("clientOrderId".into(), new_client_id.unwrap_or(&o.client_id).into());
        m.insert("transactTime".into(), o.updated_ms.into());
    }
    Value::Object(m)
}

/// Spot `fills` of a FULL `order.place` answer.
fn spot_fill_json(f: &FillView, inst: &Instrument) -> Value {
    json!({
        "price": mantissa(f.px, inst.price_scale),
        "qty": mantissa(f.qty, inst.qty_scale),
        "commission": dec(f.fee),
        "commissionAsset": f.fee_asset,
        "tradeId": f.trade_id,
    })
}

/// One trade of `myTrades` (spot) or `userTrades` (USD-M).
fn trade_json(api: Protocol, f: &FillView, inst: &Instrument) -> Value {
    let quote = inst.px(fixed::Px(f.px)) * inst.qty(fixed::Qty(f.qty));
    if api == Protocol::BinanceUsdm {
        json!({
            "buyer": f.side == Side::Bid,
            "commission": dec(f.fee),
            "commissionAsset": f.fee_asset,
            "id": f.trade_id,
            "maker": f.maker,
            "orderId": f.order_id,
            "price": mantissa(f.px, inst.price_scale),
            "qty": mantissa(f.qty, inst.qty_scale),
            "quoteQty": dec(quote),
            "realizedPnl": "0",
            "side": side_str(f.side),
            "positionSide": "BOTH",
            "symbol": inst.symbol,
            "time": f.time_ms,
        })
    } else {
        json!({
            "symbol": inst.symbol,
            "id": f.trade_id,
            "orderId": f.order_id,
            "orderListId": -1,
            "price": mantissa(f.px, inst.price_scale),
            "qty": mantissa(f.qty, inst.qty_scale),
            "quoteQty": dec(quote),
            "commission": dec(f.fee),
            "commissionAsset": f.fee_asset,
            "time": f.time_ms,
            "isBuyer": f.side == Side::Bid,
            "isMaker": f.maker,
            "isBestMatch": true,
        })
    }
}

/// The execution type of a report.
fn execution_type(r: &ExecReport) -> &'static str {
    if r.fill.is_some() {
        return "TRADE";
    }
    match r.order.status {
        OrderStatus::Canceled => "CANCELED",
        OrderStatus::Expired => "EXPIRED",
        _ => "NEW",
    }
}

/// A spot `executionReport` event (without the `subscriptionId` wrapper).
fn execution_report(shared: &Shared, r: &ExecReport, event_ms: i64) -> Value {
    let api = Protocol::BinanceSpot;
    let o = &r.order;
    let inst = symbol_of(shared, o.instrument);
    let (l, lp, n, nasset, t, m, y, tt) = match &r.fill {
        Some(f) => (
            mantissa(f.qty, inst.qty_scale),
            mantissa(f.px, inst.price_scale),
            dec(f.fee),
            Value::String(f.fee_asset.clone()),
            i64::try_from(f.trade_id).unwrap_or(i64::MAX),
            f.maker,
            dec(inst.px(fixed::Px(f.px)) * inst.qty(fixed::Qty(f.qty))),
            f.time_ms,
        ),
        None => ("0".into(), "0".into(), "0".into(), Value::Null, -1, false, "0".into(), o.updated_ms),
    };
    let x = execution_type(r);
    let on_book = o.px.is_some() && !o.status.is_final();
    json!({
        "e": "executionReport",
        "E": event_ms,
        "s": inst.symbol,
        "c": o.client_id,
        "S": side_str(o.side),
        "o": type_str(api, o),
        "f": order_tif(api, o),
        "q": mantissa(o.qty, inst.qty_scale),
        "p": price_str(inst, o.px),
        "P": "0",
        "F": "0",
        "g": -1,
        "C": if x == "CANCELED" { o.client_id.as_str() } else { "" },
        "x": x,
        "X": status_str(o.status),
        "r": "NONE",
        "i": o.order_id,
        "l": l,
        "z": mantissa(o.filled_qty, inst.qty_scale),
        "L": lp,
        "n": n,
        "N": nasset,
        "T": tt,
        "t": t,
        "I": next_execution_id(),
        "w": on_book,
        "m": m,
        "M": false,
        "O": o.created_ms,
        "Z": dec(o.filled_quote),
        "Y": y,
        "Q": "0",
        "W": o.created_ms,
        "V": "NONE",
    })
}

/// A USD-M `ORDER_TRADE_UPDATE` event.
fn order_trade_update(shared: &Shared, r: &ExecReport, event_ms: i64) -> Value {
    let api = Protocol::BinanceUsdm;
    let o = &r.order;
    let inst = symbol_of(shared, o.instrument);
    let (l, lp, n, nasset, t, m, tt) = match &r.fill {
        Some(f) => (
            mantissa(f.qty, inst.qty_scale),
            mantissa(f.px, inst.price_scale),
            dec(f.fee),
            f.fee_asset.clone(),
            f.trade_id,
            f.maker,
            f.time_ms,
        ),
        None => ("0".into(), "0".into(), "0".into(), inst.quote.clone(), 0, false, o.updated_ms),
    };
    json!({
        "e": "ORDER_TRADE_UPDATE",
        "E": event_ms,
        "T": tt,
        "o": {
            "s": inst.symbol,
            "c": o.client_id,
            "S": side_str(o.side),
            "o": type_str(api, o),
            "f": order_tif(api, o),
            "q": mantissa(o.qty, inst.qty_scale),
            "p": price_str(inst, o.px),
            "ap": avg_price(inst, o),
            "sp": "0",
            "x": execution_type(r),
            "X": status_str(o.status),
            "i": o.order_id,
            "l": l,
            "z": mantissa(o.filled_qty, inst.qty_scale),
            "L": lp,
            "N": nasset,
            "n": n,
            "T": tt,
            "t": t,
            "b": "0",
            "a": "0",
            "m": m,
            "R": o.reduce_only,
            "wt": "CONTRACT_PRICE",
            "ot": type_str(api, o),
            "ps": "BOTH",
            "cp": false,
            "rp": "0",
            "pP": false,
            "si": 0,
            "ss": 0,
            "V": "NONE",
            "pm": "NONE",
            "gtd": 0,
        }
    })
}

/// A USD-M `ACCOUNT_UPDATE` after a fill: the margin asset's wallet and the instrument's
/// position (one-way mode: `BOTH`).
fn account_update(shared: &Shared, r: &ExecReport, event_ms: i64) -> Value {
    let inst = symbol_of(shared, r.order.instrument);
    let (balances, position) = {
        let ex = shared.lock_exchange();
        let position = ex.positions(r.order.account).into_iter().find(|(id, _)| *id == r.order.instrument);
        (ex.balances(r.order.account), position)
    };
    let wallet: Vec<Value> = balances
        .iter()
        .filter(|b| b.asset == inst.quote)
        .map(|b| json!({"a": b.asset, "wb": dec(b.free + b.locked), "cw": dec(b.free + b.locked), "bc": "0"}))
        .collect();
    let positions: Vec<Value> = position
        .iter()
        .map(|(_, p)| {
            json!({
                "s": inst.symbol,
                "pa": mantissa(p.qty, inst.qty_scale),
                "ep": dec(p.entry_px),
                "bep": dec(p.entry_px),
                "cr": dec(p.realized),
                "up": "0",
                "mt": "cross",
                "iw": "0",
                "ps": "BOTH",
            })
        })
        .collect();
    let time = r.fill.as_ref().map_or(r.order.updated_ms, |f| f.time_ms);
    json!({"e": "ACCOUNT_UPDATE", "E": event_ms, "T": time, "a": {"m": "ORDER", "B": wallet, "P": positions}})
}

// ---- the methods, shared by the WebSocket API and REST ----------------------------------------

/// Who a verified request acts for.
struct Ctx<'a> {
    shared: &'a Shared,
    venue: usize,
    api: Protocol,
    account: AccountId,
}

impl Ctx<'_> {
    fn instrument(&self, p: &Params) -> Result<InstrumentId, ApiError> {
        self.shared.instrument(self.venue, p.require("symbol")?).ok_or_else(bad_symbol)
    }

    fn optional_instrument(&self, p: &Params) -> Result<Option<InstrumentId>, ApiError> {
        match p.get("symbol") {
            None => Ok(None),
            Some(s) => self.shared.instrument(self.venue, s).map(Some).ok_or_else(bad_symbol),
        }
    }

    fn market_time(&self) -> i64 {
        self.shared.lock_market().time_ms()
    }

    /// `order.place`, `POST /api/v3/order`, `POST /fapi/v1/order`.
    fn place(&self, p: &Params) -> Result<Value, ApiError> {
        let usdm = self.api == Protocol::BinanceUsdm;
        let id = self.instrument(p)?;
        let inst = symbol_of(self.shared, id);
        let side = match p.require("side")? {
            "BUY" => Side::Bid,
            "SELL" => Side::Ask,
            _ => return Err(api_err(400, -1117, "Invalid side.")),
        };
        let kind = p.require("type")?;
        let limit = match kind {
            "LIMIT" => true,
            "LIMIT_MAKER" if !usdm => true,
            "MARKET" => false,
            _ => return Err(api_err(400, -1116, "Invalid orderType.")),
        };
        let tif = match kind {
            "LIMIT_MAKER" => Tif::PostOnly,
            "MARKET" => Tif::Ioc,
            _ => match p.require("timeInForce")? {
                "GTC" => Tif::Gtc,
                "IOC" => Tif::Ioc,
                "FOK" => Tif::Fok,
                "GTX" if usdm => Tif::PostOnly,
                _ => return Err(api_err(400, -1115, "Invalid timeInForce.")),
            },
        };
        let parse = |name: &str, scale: Scale, text: &str, filter: ExchangeError| {
            fixed::parse_mantissa(text.as_bytes(), scale, false).map_err(|e| match e {
                FixedError::TooManyDecimals { .. } if usdm => {
                    api_err(400, -1111, "Precision is over the maximum defined for this asset.")
                }
                FixedError::TooManyDecimals { .. } => exchange_err(self.api, &filter),
                _ => illegal(name),
            })
        };
        let px = if limit {
            Some(parse("price", inst.price_scale, p.require("price")?, ExchangeError::InvalidPrice)?)
        } else {
            None
        };
        let qty = parse("quantity", inst.qty_scale, p.require("quantity")?, ExchangeError::InvalidQuantity)?;
        let reduce_only = usdm && p.get("reduceOnly") == Some("true");
        let req = PlaceRequest {
            instrument: id,
            client_id: p.get("newClientOrderId").unwrap_or_default().to_owned(),
            side,
            px,
            qty,
            tif,
            reduce_only,
        };
        let placed = {
            let mut market = self.shared.lock_market();
            let time_ms = market.time_ms();
            self.shared.lock_exchange().place(self.account, &req, &mut market, time_ms)
        };
        self.shared.publish_reports();
        let order = placed.map_err(|e| exchange_err(self.api, &e))?;
        if !usdm && tif == Tif::PostOnly && order.status == OrderStatus::Expired && order.filled_qty == 0 {
            return Err(api_err(400, -2010, "Order would immediately match and take."));
        }
        let mut m = order_json(self.shared, self.api, &order);
        if usdm {
            return Ok(Value::Object(m));
        }
        m.insert("transactTime".into(), order.created_ms.into());
        m.insert("workingTime".into(), order.created_ms.into());
        let resp = p.get("newOrderRespType").unwrap_or("FULL");
        match resp {
            "ACK" => Ok(json!({
                "symbol": inst.symbol,
                "orderId": order.order_id,
                "orderListId": -1,
                "clientOrderId": order.client_id,
                "transactTime": order.created_ms,
            })),
            "RESULT" => Ok(Value::Object(m)),
            _ => {
                let fills: Vec<Value> = self
                    .shared
                    .lock_exchange()
                    .fills(self.account, Some(id), order.created_ms)
                    .iter()
                    .filter(|f| f.order_id == order.order_id)
                    .map(|f| spot_fill_json(f, inst))
                    .collect();
                m.insert("fills".into(), Value::Array(fills));
                Ok(Value::Object(m))
            }
        }
    }

    /// The order a cancel or query names (`orderId` first, then `origClientOrderId`).
    fn order_ref<'p>(&self, p: &'p Params) -> Result<(OrderRef<'p>, Option<&'p str>), ApiError> {
        let client = p.get("origClientOrderId").or_else(|| p.get("origClientOrderID"));
        match (p.get("orderId"), client) {
            (Some(id), client) => {
                let id = id.parse::<u64>().map_err(|_| illegal("orderId"))?;
                Ok((OrderRef::Id(id), client))
            }
            (None, Some(c)) => Ok((OrderRef::Client(c), None)),
            (None, None) => Err(api_err(
                400,
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )),
        }
    }

    /// `order.cancel`, `DELETE /api/v3/order`, `DELETE /fapi/v1/order`.
    fn cancel(&self, p: &Params) -> Result<Value, ApiError> {
        let id = self.instrument(p)?;
        let (order, check) = self.order_ref(p)?;
        if let Some(client) = check {
            let found = self.shared.lock_exchange().order(self.account, id, order);
            if found.is_some_and(|o| o.client_id != client) {
                return Err(api_err(400, -2011, "Unknown order sent."));
            }
        }
        let cancelled = {
            let market = self.shared.lock_market();
            let time_ms = market.time_ms();
            let r = self.shared.lock_exchange().cancel(self.account, id, order, time_ms);
            drop(market);
            r
        };
        self.shared.publish_reports();
        let o = cancelled.map_err(|e| exchange_err(self.api, &e))?;
        Ok(cancel_json(self.shared, self.api, &o, p.get("newClientOrderId")))
    }

    /// `order.status`, `GET /api/v3/order`, `GET /fapi/v1/order`.
    fn status(&self, p: &Params) -> Result<Value, ApiError> {
        let id = self.instrument(p)?;
        let (order, check) = self.order_ref(p)?;
        let o = self.shared.lock_exchange().order(self.account, id, order);
        match o {
            Some(o) if check.is_none_or(|c| c == o.client_id) => Ok(status_json(self.shared, self.api, &o)),
            _ => Err(api_err(400, -2013, "Order does not exist.")),
        }
    }

    /// `openOrders.status`, `GET /api/v3/openOrders`, `GET /fapi/v1/openOrders`.
    fn open_orders(&self, p: &Params) -> Result<Value, ApiError> {
        let id = self.optional_instrument(p)?;
        let orders = self.shared.lock_exchange().open_orders(self.account, id);
        Ok(Value::Array(orders.iter().map(|o| status_json(self.shared, self.api, o)).collect()))
    }

    /// Cancels every open order on `symbol`; returns them as cancelled.
    fn cancel_all_orders(&self, p: &Params) -> Result<Vec<OrderView>, ApiError> {
        let id = self.instrument(p)?;
        let cancelled = {
            let market = self.shared.lock_market();
            let time_ms = market.time_ms();
            let r = self.shared.lock_exchange().cancel_all(self.account, Some(id), time_ms);
            drop(market);
            r
        };
        self.shared.publish_reports();
        Ok(cancelled)
    }

    /// `openOrders.cancelAll`, `DELETE /api/v3/openOrders` (spot: -2011 when none is open).
    fn cancel_all(&self, p: &Params) -> Result<Value, ApiError> {
        let cancelled = self.cancel_all_orders(p)?;
        if cancelled.is_empty() {
            return Err(api_err(400, -2011, "Unknown order sent."));
        }
        Ok(Value::Array(cancelled.iter().map(|o| cancel_json(self.shared, self.api, o, None)).collect()))
    }

    /// `allOrders`, `GET /api/v3/allOrders`, `GET /fapi/v1/allOrders`: the account's orders on
    /// `symbol`, open and ended, by order id (`orderId` ≥, `limit` most recent, default 500).
    fn all_orders(&self, p: &Params) -> Result<Value, ApiError> {
        let id = self.instrument(p)?;
        let num = |name: &str| -> Result<Option<i64>, ApiError> {
            p.get(name).map(|v| v.parse::<i64>().map_err(|_| illegal(name))).transpose()
        };
        let from = num("orderId")?;
        let limit = num("limit")?.map_or(500, |l| usize::try_from(l).unwrap_or(0).clamp(1, 1_000));
        let orders = self.shared.lock_exchange().orders(self.account, id);
        let chosen: Vec<&OrderView> =
            orders.iter().filter(|o| from.is_none_or(|f| i64::try_from(o.order_id).unwrap_or(i64::MAX) >= f)).collect();
        let picked: Vec<Value> = if from.is_some() {
            chosen.iter().take(limit).map(|o| status_json(self.shared, self.api, o)).collect()
        } else {
            let skip = chosen.len().saturating_sub(limit);
            chosen.iter().skip(skip).map(|o| status_json(self.shared, self.api, o)).collect()
        };
        Ok(Value::Array(picked))
    }

    /// `myTrades`, `GET /api/v3/myTrades`, `GET /fapi/v1/userTrades`.
    fn trades(&self, p: &Params) -> Result<Value, ApiError> {
        let id = self.instrument(p)?;
        let num = |name: &str| -> Result<Option<i64>, ApiError> {
            p.get(name).map(|v| v.parse::<i64>().map_err(|_| illegal(name))).transpose()
        };
        let (start, end, from_id, order_id) = (num("startTime")?, num("endTime")?, num("fromId")?, num("orderId")?);
        let limit = num("limit")?.map_or(500, |l| usize::try_from(l).unwrap_or(0).clamp(1, MAX_TRADES_LIMIT));
        let fills = self.shared.lock_exchange().fills(self.account, Some(id), start.unwrap_or(0));
        let inst = symbol_of(self.shared, id);
        let chosen: Vec<&FillView> = fills
            .iter()
            .filter(|f| end.is_none_or(|e| f.time_ms <= e))
            .filter(|f| from_id.is_none_or(|i| i64::try_from(f.trade_id).unwrap_or(i64::MAX) >= i))
            .filter(|f| order_id.is_none_or(|i| i64::try_from(f.order_id).unwrap_or(i64::MAX) == i))
            .collect();
        let picked: Vec<Value> = if from_id.is_some() || start.is_some() {
            chosen.iter().take(limit).map(|f| trade_json(self.api, f, inst)).collect()
        } else {
            let skip = chosen.len().saturating_sub(limit);
            chosen.iter().skip(skip).map(|f| trade_json(self.api, f, inst)).collect()
        };
        Ok(Value::Array(picked))
    }

    /// `account.status`, `GET /api/v3/account`: spot balances.
    fn account(&self) -> Result<Value, ApiError> {
        let balances = self.shared.lock_exchange().balances(self.account);
        let inst = self
            .shared
            .registry
            .instruments()
            .iter()
            .find(|i| i.venue.index() == self.venue)
            .map(|i| (i.maker_fee, i.taker_fee));
        let (maker, taker) = inst.unwrap_or_default();
        let bps = |r: Decimal| (r * Decimal::from(10_000)).round().to_string().parse::<i64>().unwrap_or(0);
        let balances: Vec<Value> =
            balances.iter().map(|b| json!({"asset": b.asset, "free": dec(b.free), "locked": dec(b.locked)})).collect();
        Ok(json!({
            "makerCommission": bps(maker),
            "takerCommission": bps(taker),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": dec(maker), "taker": dec(taker), "buyer": "0", "seller": "0"},
            "canTrade": true,
            "canWithdraw": false,
            "canDeposit": false,
            "brokered": false,
            "requireSelfTradePrevention": false,
            "preventSor": false,
            "updateTime": self.market_time(),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": self.account.0,
        }))
    }

    /// `account.balance` / `v2/account.balance`, `GET /fapi/v2|v3/balance`: USD-M wallet
    /// balances (free is what new orders may use; locked is margin in use).
    fn futures_balances(&self) -> Result<Value, ApiError> {
        let balances = self.shared.lock_exchange().balances(self.account);
        let now = self.market_time();
        Ok(Value::Array(
            balances
                .iter()
                .map(|b| {
                    json!({
                        "accountAlias": "",
                        "asset": b.asset,
                        "balance": dec(b.free + b.locked),
                        "crossWalletBalance": dec(b.free + b.locked),
                        "crossUnPnl": "0",
                        "availableBalance": dec(b.free),
                        "maxWithdrawAmount": dec(b.free),
                        "marginAvailable": true,
                        "updateTime": now,
                    })
                })
                .collect(),
        ))
    }

    /// `account.position` / `v2/account.position` (`ws`) and `GET /fapi/v2|v3/positionRisk`:
    /// USD-M positions, marked at the book's mid price.
    fn positions(&self, p: &Params, ws: bool) -> Result<Value, ApiError> {
        let only = self.optional_instrument(p)?;
        let (positions, leverage) = {
            let ex = self.shared.lock_exchange();
            (ex.positions(self.account), ex.leverage())
        };
        let now = self.market_time();
        let mut out = Vec::new();
        for (id, pos) in positions {
            if only.is_some_and(|o| o != id) || self.shared.registry.get(id).venue.index() != self.venue {
                continue;
            }
            let inst = symbol_of(self.shared, id);
            let mark = {
                let market = self.shared.lock_market();
                market.book(id).and_then(|b| Some((b.best(Side::Bid)?.px, b.best(Side::Ask)?.px)))
            };
            let mark =
                mark.map_or(pos.entry_px, |(b, a)| (inst.px(fixed::Px(b)) + inst.px(fixed::Px(a))) / Decimal::from(2));
            let amt = inst.qty(fixed::Qty(pos.qty));
            let upnl = (mark - pos.entry_px) * amt;
            let notional = mark * amt;
            let margin = notional.abs() / Decimal::from(leverage);
            let profit_key = if ws { "unrealizedProfit" } else { "unRealizedProfit" };
            let mut v = json!({
                "symbol": inst.symbol,
                "positionSide": "BOTH",
                "positionAmt": mantissa(pos.qty, inst.qty_scale),
                "entryPrice": dec(pos.entry_px),
                "breakEvenPrice": dec(pos.entry_px),
                "markPrice": dec(mark),
                "liquidationPrice": "0",
                "isolatedMargin": "0",
                "notional": dec(notional),
                "marginAsset": inst.quote,
                "isolatedWallet": "0",
                "initialMargin": dec(margin),
                "positionInitialMargin": dec(margin),
                "marginType": "cross",
                "isAutoAddMargin": "false",
                "adl": 0,
                "updateTime": now,
            });
            if let Value::Object(m) = &mut v {
                m.insert(profit_key.into(), dec(upnl).into());
                if !ws {
                    // positionRisk (v2) reports the leverage; the WebSocket API's v2 does not.
                    m.insert("leverage".into(), leverage.to_string().into());
                }
            }
            out.push(v);
        }
        Ok(Value::Array(out))
    }
}

// ---- WebSocket API -----------------------------------------------------------------------------

/// How a method is authorized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Security {
    /// Public.
    None,
    /// `SIGNED` (`TRADE`, `USER_DATA`): signature, or the session's logged-on key.
    Signed,
    /// `apiKey` only (USD-M listen key management).
    ApiKey,
    /// Needs the session's logged-on key (spot `userDataStream.subscribe`).
    Session,
}

/// A method's security, request weight and whether it counts as a new order; `None` for a
/// method the venue does not have.
fn method_info(api: Protocol, method: &str) -> Option<(Security, u32, bool)> {
    let usdm = api == Protocol::BinanceUsdm;
    Some(match method {
        "session.logon" => (Security::None, 2, false),
        "session.status" | "session.logout" => (Security::None, 2, false),
        "time" | "ping" => (Security::None, 1, false),
        "order.place" => (Security::Signed, 1, true),
        "order.cancel" => (Security::Signed, 1, false),
        "order.status" => (Security::Signed, if usdm { 1 } else { 4 }, false),
        "openOrders.status" => (Security::Signed, if usdm { 1 } else { 6 }, false),
        "openOrders.cancelAll" if !usdm => (Security::Signed, 1, false),
        "myTrades" | "allOrders" if !usdm => (Security::Signed, 20, false),
        "account.status" if !usdm => (Security::Signed, 20, false),
        "account.position" | "v2/account.position" if usdm => (Security::Signed, 5, false),
        "account.balance" | "v2/account.balance" if usdm => (Security::Signed, 5, false),
        "userDataStream.subscribe" | "userDataStream.unsubscribe" if !usdm => (Security::Session, 2, false),
        "userDataStream.subscribe.signature" if !usdm => (Security::Signed, 2, false),
        "userDataStream.start" | "userDataStream.ping" | "userDataStream.stop" if usdm => (Security::ApiKey, 1, false),
        _ => return None,
    })
}

/// One WebSocket API connection's state.
struct WsSession<'a> {
    shared: &'a Shared,
    venue: usize,
    api: Protocol,
    connected_ms: i64,
    /// The logged-on API key and when.
    logon: Option<(String, i64)>,
    /// The active user data stream subscription: its id and hub subscription.
    subscription: Option<(u32, u64)>,
    next_subscription: u32,
    /// A new subscription's queue, for the forwarder to take.
    pending: Option<mpsc::UnboundedReceiver<ExecReport>>,
    /// Counters of requests that name no key.
    anonymous: Limits,
    /// `SimConfig::binance_rate_limits`.
    enforce_limits: bool,
}

/// A request that failed before it could be charged to a key.
struct Refused(ApiError);

impl<'a> WsSession<'a> {
    fn new(shared: &'a Shared, venue: usize) -> Self {
        Self {
            shared,
            venue,
            api: shared.venue_api(venue),
            connected_ms: wall_ms(),
            logon: None,
            subscription: None,
            next_subscription: 0,
            pending: None,
            anonymous: Limits::default(),
            enforce_limits: registry(shared).enforce_limits,
        }
    }

    fn who(&self, api_key: &str) -> (String, String) {
        (self.shared.venue_name(self.venue).to_owned(), api_key.to_owned())
    }

    /// Answers one request frame.
    fn handle(&mut self, text: &str, wake: &Notify) -> String {
        let Ok(Value::Object(req)) = serde_json::from_str::<Value>(text) else {
            return render(
                &Value::Null,
                Err(api_err(400, -1102, "A mandatory parameter was not sent, was empty/null, or malformed.")),
                &[],
            );
        };
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        let Some(method) = req.get("method").and_then(Value::as_str) else {
            return render(&id, Err(missing("method")), &[]);
        };
        let method =
            if self.api == Protocol::BinanceSpot { method.strip_prefix("v3/").unwrap_or(method) } else { method };
        let params = Params::from_json(req.get("params").and_then(Value::as_object));
        let Some((security, mut weight, order)) = method_info(self.api, method) else {
            let (limits, _) = charge(&mut self.anonymous, self.api, wall_ms(), 1, false, self.enforce_limits);
            return render(&id, Err(api_err(400, -1102, format!("Unknown method '{method}'."))), &limits);
        };
        if method == "openOrders.status" && params.get("symbol").is_none() {
            // Binance weighs the all-symbols query more (spot 80, USD-M 40).
            weight = if self.api == Protocol::BinanceSpot { 80 } else { 40 };
        }
        match self.authorize(security, &params) {
            Err(Refused(e)) => {
                let (limits, _) = charge(&mut self.anonymous, self.api, wall_ms(), weight, false, self.enforce_limits);
                render(&id, Err(e), &limits)
            }
            Ok(who) => {
                let (limits, refusal) = match &who {
                    Some((_, key)) => charge_key(self.shared, &self.who(key), self.api, weight, order),
                    None => charge(&mut self.anonymous, self.api, wall_ms(), weight, order, self.enforce_limits),
                };
                if let Some(e) = refusal {
                    return render(&id, Err(e), &limits);
                }
                let result = self.execute(method, &params, who, wake);
                render(&id, result, &limits)
            }
        }
    }

    /// Verifies a request as its method requires; the account and API key it acts for.
    fn authorize(&self, security: Security, p: &Params) -> Result<Option<(AccountId, String)>, Refused> {
        let (shared, venue) = (self.shared, self.venue);
        match security {
            Security::None => Ok(None),
            Security::ApiKey => {
                let key = p.get("apiKey").map(str::to_owned).or_else(|| self.logon.as_ref().map(|(k, _)| k.clone()));
                let key = key.ok_or_else(|| Refused(missing("apiKey")))?;
                let (account, _) = account_of(shared, venue, &key).map_err(Refused)?;
                Ok(Some((account, key)))
            }
            Security::Session => match &self.logon {
                Some((key, _)) => {
                    let (account, _) = account_of(shared, venue, key).map_err(Refused)?;
                    Ok(Some((account, key.clone())))
                }
                None => Err(Refused(api_err(401, -2015, "Invalid API-key, IP, or permissions for action."))),
            },
            Security::Signed => {
                if let Some(key) = p.get("apiKey") {
                    let account = verify_signed(shared, venue, key, p, &p.ws_payload()).map_err(Refused)?;
                    return Ok(Some((account, key.to_owned())));
                }
                if p.get("signature").is_some() {
                    return Err(Refused(missing("apiKey")));
                }
                let Some((key, _)) = &self.logon else { return Err(Refused(missing("apiKey"))) };
                let (account, _) = account_of(shared, venue, key).map_err(Refused)?;
                check_time(p).map_err(Refused)?;
                Ok(Some((account, key.clone())))
            }
        }
    }

    fn session_json(&self) -> Value {
        json!({
            "apiKey": self.logon.as_ref().map(|(k, _)| k.clone()),
            "authorizedSince": self.logon.as_ref().map(|(_, t)| *t),
            "connectedSince": self.connected_ms,
            "returnRateLimits": true,
            "serverTime": wall_ms(),
            "userDataStream": self.subscription.is_some(),
        })
    }

    /// Ends the user data stream subscription, if any.
    fn unsubscribe(&mut self) {
        if let Some((_, hub)) = self.subscription.take() {
            self.shared.unsubscribe_private(hub);
        }
        self.pending = None;
    }

    fn subscribe(&mut self, account: AccountId, wake: &Notify) -> Result<Value, ApiError> {
        if self.subscription.is_some() {
            return Err(api_err(400, -2035, "User Data Stream subscription already active."));
        }
        let (hub, rx) = self.shared.subscribe_private(account);
        let id = self.next_subscription;
        self.next_subscription += 1;
        self.subscription = Some((id, hub));
        self.pending = Some(rx);
        wake.notify_one();
        Ok(json!({"subscriptionId": id}))
    }

    fn execute(
        &mut self,
        method: &str,
        p: &Params,
        who: Option<(AccountId, String)>,
        wake: &Notify,
    ) -> Result<Value, ApiError> {
        let (shared, venue, api) = (self.shared, self.venue, self.api);
        match (method, who) {
            ("time", _) => Ok(json!({"serverTime": wall_ms()})),
            ("ping", _) => Ok(json!({})),
            ("session.status", _) => Ok(self.session_json()),
            ("session.logout", _) => {
                self.unsubscribe();
                self.logon = None;
                Ok(self.session_json())
            }
            ("session.logon", _) => {
                let key = p.require("apiKey")?;
                p.require("signature")?;
                p.require("timestamp")?;
                let (_, ed25519) = account_of(shared, venue, key)?;
                if !ed25519 {
                    return Err(bad_key());
                }
                verify_signed(shared, venue, key, p, &p.ws_payload())?;
                if self.logon.as_ref().is_some_and(|(k, _)| k != key) {
                    self.unsubscribe();
                }
                self.logon = Some((key.to_owned(), wall_ms()));
                Ok(self.session_json())
            }
            ("userDataStream.subscribe" | "userDataStream.subscribe.signature", Some((account, _))) => {
                self.subscribe(account, wake)
            }
            ("userDataStream.unsubscribe", _) => {
                self.unsubscribe();
                Ok(json!({}))
            }
            ("userDataStream.start", Some((_, key))) => {
                Ok(json!({"listenKey": start_listen_key(shared, shared.venue_name(venue), &key)}))
            }
            ("userDataStream.ping", Some((_, key))) => {
                Ok(json!({"listenKey": keepalive_listen_key(shared, shared.venue_name(venue), &key)?}))
            }
            ("userDataStream.stop", Some((_, key))) => {
                stop_listen_key(shared, shared.venue_name(venue), &key);
                Ok(json!({}))
            }
            (_, Some((account, _))) => {
                let ctx = Ctx { shared, venue, api, account };
                match method {
                    "order.place" => ctx.place(p),
                    "order.cancel" => ctx.cancel(p),
                    "order.status" => ctx.status(p),
                    "openOrders.status" => ctx.open_orders(p),
                    "openOrders.cancelAll" => ctx.cancel_all(p),
                    "myTrades" => ctx.trades(p),
                    "allOrders" => ctx.all_orders(p),
                    "account.status" => ctx.account(),
                    "account.balance" | "v2/account.balance" => ctx.futures_balances(),
                    _ => ctx.positions(p, true),
                }
            }
            (_, None) => Err(missing("apiKey")),
        }
    }

    /// The event frames of a report for this session's subscription (none once it ended): the
    /// `executionReport`, then `outboundAccountPosition` with the instrument's two assets (an
    /// order's acceptance, fills and end all move balances between free and locked).
    fn event_frames(&self, report: &ExecReport) -> Vec<String> {
        let Some((id, _)) = self.subscription else { return Vec::new() };
        let event_ms = self.shared.lock_market().time_ms();
        let event = execution_report(self.shared, report, event_ms);
        let inst = symbol_of(self.shared, report.order.instrument);
        let balances = self.shared.lock_exchange().balances(report.order.account);
        let changed: Vec<Value> = balances
            .iter()
            .filter(|b| b.asset == inst.base || b.asset == inst.quote)
            .map(|b| json!({"a": b.asset, "f": dec(b.free), "l": dec(b.locked)}))
            .collect();
        let position = json!({"e": "outboundAccountPosition", "E": event_ms, "u": event_ms, "B": changed});
        vec![
            json!({"subscriptionId": id, "event": event}).to_string(),
            json!({"subscriptionId": id, "event": position}).to_string(),
        ]
    }
}

/// A WebSocket API response frame.
fn render(id: &Value, result: Result<Value, ApiError>, limits: &[Value]) -> String {
    let mut m = Map::new();
    m.insert("id".into(), id.clone());
    match result {
        Ok(v) => {
            m.insert("status".into(), 200.into());
            m.insert("result".into(), v);
        }
        Err(e) => {
            m.insert("status".into(), e.status.into());
            m.insert("error".into(), json!({"code": e.code, "msg": e.msg}));
        }
    }
    if !limits.is_empty() {
        m.insert("rateLimits".into(), Value::Array(limits.to_vec()));
    }
    Value::Object(m).to_string()
}

fn lock_session<'m, 'a>(s: &'m Mutex<WsSession<'a>>) -> MutexGuard<'m, WsSession<'a>> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Moves a session's account reports into its outgoing queue as events, until the session ends
/// (a full queue kicks the session: private events are never dropped silently).
async fn forward_reports(
    session: &Mutex<WsSession<'_>>,
    wake: &Notify,
    tx: &mpsc::Sender<Utf8Bytes>,
    kick: &Notify,
) -> End {
    loop {
        let pending = lock_session(session).pending.take();
        let Some(mut rx) = pending else {
            wake.notified().await;
            continue;
        };
        while let Some(report) = rx.recv().await {
            let frames = lock_session(session).event_frames(&report);
            for frame in frames {
                if tx.try_send(frame.into()).is_err() {
                    kick.notify_one();
                }
            }
        }
    }
}

/// The private websocket a path names on a Binance venue: the venue's WebSocket API, or (USD-M)
/// `/ws/<listenKey>` for an issued, unexpired listen key; `None` (the public route) otherwise.
pub(crate) fn ws_route(shared: &Shared, api: Protocol, path: &str) -> Option<PrivatePath> {
    match api {
        Protocol::BinanceSpot if path == SPOT_WS_API_PATH => Some(PrivatePath::BinanceWsApi),
        Protocol::BinanceUsdm if path == USDM_WS_API_PATH => Some(PrivatePath::BinanceWsApi),
        Protocol::BinanceUsdm => {
            let key = path.strip_prefix("/ws/")?;
            listen_key(shared, key).map(|_| PrivatePath::BinanceUserStream(key.to_owned()))
        }
        _ => None,
    }
}

/// Serves one WebSocket API session.
pub(crate) async fn run_ws_api(
    mut ws: WebSocketStream<TcpStream>,
    shared: &Shared,
    venue: usize,
    mut stop: watch::Receiver<bool>,
) {
    let (tx, mut rx) = mpsc::channel(shared.client_queue);
    let kick = Notify::new();
    let wake = Notify::new();
    let session = Mutex::new(WsSession::new(shared, venue));
    let end = {
        let serve =
            session_loop(&mut ws, shared, &mut stop, &kick, &mut rx, |text| lock_session(&session).handle(text, &wake));
        let forward = forward_reports(&session, &wake, &tx, &kick);
        tokio::pin!(serve, forward);
        tokio::select! {
            end = &mut serve => end,
            end = &mut forward => end,
        }
    };
    lock_session(&session).unsubscribe();
    close_session(ws, shared, end, || None).await;
}

/// Serves one USD-M user data stream: the account's `ORDER_TRADE_UPDATE` events until the
/// listen key is closed or expires (then `listenKeyExpired` and a close).
pub(crate) async fn run_user_stream(
    mut ws: WebSocketStream<TcpStream>,
    shared: &Shared,
    venue: usize,
    listen_key: &str,
    mut stop: watch::Receiver<bool>,
) {
    let account = self::listen_key(shared, listen_key)
        .filter(|k| k.venue == shared.venue_name(venue))
        .and_then(|k| account_of(shared, venue, &k.api_key).ok())
        .map(|(a, _)| a);
    let Some(account) = account else {
        let _ = tokio::time::timeout(super::server::CLOSE_TIMEOUT, ws.close(None)).await;
        return;
    };
    let (hub, mut reports) = shared.subscribe_private(account);
    let (tx, mut rx) = mpsc::channel(shared.client_queue);
    let kick = Notify::new();
    let end = {
        let serve = session_loop(&mut ws, shared, &mut stop, &kick, &mut rx, |_| {
            r#"{"error":{"code":2,"msg":"Invalid request: user data streams take no requests"},"id":null}"#.to_owned()
        });
        let forward = async {
            let mut check = tokio::time::interval(LISTEN_KEY_CHECK);
            loop {
                tokio::select! {
                    report = reports.recv() => {
                        let Some(report) = report else { return End::Slow };
                        let event_ms = shared.lock_market().time_ms();
                        let mut frames = vec![order_trade_update(shared, &report, event_ms).to_string()];
                        if report.fill.is_some() {
                            frames.push(account_update(shared, &report, event_ms).to_string());
                        }
                        for frame in frames {
                            if tx.try_send(frame.into()).is_err() {
                                kick.notify_one();
                            }
                        }
                    }
                    _ = check.tick() => {
                        if self::listen_key(shared, listen_key).is_none() {
                            return End::Shutdown;
                        }
                    }
                }
            }
        };
        tokio::pin!(serve, forward);
        tokio::select! {
            end = &mut serve => end,
            end = &mut forward => end,
        }
    };
    shared.unsubscribe_private(hub);
    let expired = end == End::Shutdown && self::listen_key(shared, listen_key).is_none();
    close_session(ws, shared, end, || {
        expired.then(|| {
            let event_ms = shared.lock_market().time_ms();
            json!({"e": "listenKeyExpired", "E": event_ms, "listenKey": listen_key}).to_string()
        })
    })
    .await;
}

// ---- REST --------------------------------------------------------------------------------------

/// Answers a signed REST request, or `None` when the path is not one of these:
///
/// - spot: `GET|POST|DELETE /api/v3/order`, `GET|DELETE /api/v3/openOrders`,
///   `GET /api/v3/myTrades`, `GET /api/v3/account`;
/// - USD-M: `GET|POST|DELETE /fapi/v1/order`, `GET /fapi/v1/openOrders`,
///   `DELETE /fapi/v1/allOpenOrders`, `GET /fapi/v1/userTrades`,
///   `GET /fapi/v2/positionRisk`, `GET /fapi/v3/positionRisk`, `GET /fapi/v2/balance`,
///   `GET /fapi/v3/balance`,
///   `POST|PUT|DELETE /fapi/v1/listenKey` (API key only).
pub(crate) fn rest(shared: &Shared, venue: usize, api: Protocol, req: &RestRequest<'_>) -> Option<(u16, String)> {
    let usdm = api == Protocol::BinanceUsdm;
    let route = match (usdm, req.method, req.path) {
        (false, "POST", "/api/v3/order") | (true, "POST", "/fapi/v1/order") => "place",
        (false, "DELETE", "/api/v3/order") | (true, "DELETE", "/fapi/v1/order") => "cancel",
        (false, "GET", "/api/v3/order") | (true, "GET", "/fapi/v1/order") => "status",
        (false, "GET", "/api/v3/openOrders") | (true, "GET", "/fapi/v1/openOrders") => "open",
        (false, "DELETE", "/api/v3/openOrders") | (true, "DELETE", "/fapi/v1/allOpenOrders") => "cancelAll",
        (false, "GET", "/api/v3/myTrades") | (true, "GET", "/fapi/v1/userTrades") => "trades",
        (false, "GET", "/api/v3/allOrders") | (true, "GET", "/fapi/v1/allOrders") => "allOrders",
        (false, "GET", "/api/v3/account") => "account",
        (true, "GET", "/fapi/v2/positionRisk" | "/fapi/v3/positionRisk") => "positions",
        (true, "GET", "/fapi/v2/balance" | "/fapi/v3/balance") => "balance",
        (true, "POST" | "PUT" | "DELETE", "/fapi/v1/listenKey") => "listenKey",
        _ => return None,
    };
    let (weight, order) = match route {
        "place" => (1, true),
        "status" => (if usdm { 1 } else { 4 }, false),
        "open" => (if usdm { 1 } else { 6 }, false),
        "trades" | "account" | "allOrders" => (if usdm { 5 } else { 20 }, false),
        "positions" | "balance" => (5, false),
        _ => (1, false),
    };
    let answer = rest_answer(shared, venue, api, req, route, weight, order);
    Some(match answer {
        Ok(v) => (200, v.to_string()),
        Err(e) => (e.status, json!({"code": e.code, "msg": e.msg}).to_string()),
    })
}

fn rest_answer(
    shared: &Shared,
    venue: usize,
    api: Protocol,
    req: &RestRequest<'_>,
    route: &str,
    weight: u32,
    order: bool,
) -> Result<Value, ApiError> {
    let key = req.header("x-mbx-apikey").filter(|k| !k.is_empty());
    let key = key.ok_or_else(|| api_err(401, -2014, "API-key format invalid."))?;
    let p = Params::from_query(&[req.query, req.body]);
    let account = if route == "listenKey" {
        account_of(shared, venue, key)?.0
    } else {
        // The signed payload: the query string then the body, as sent, without `signature`.
        let unsigned =
            |part: &str| part.split('&').filter(|kv| !kv.starts_with("signature=")).collect::<Vec<_>>().join("&");
        let payload = format!("{}{}", unsigned(req.query), unsigned(req.body));
        verify_signed(shared, venue, key, &p, &payload)?
    };
    let who = (shared.venue_name(venue).to_owned(), key.to_owned());
    if let (_, Some(e)) = charge_key(shared, &who, api, weight, order) {
        return Err(e);
    }
    let ctx = Ctx { shared, venue, api, account };
    match route {
        "place" => ctx.place(&p),
        "cancel" => ctx.cancel(&p),
        "status" => ctx.status(&p),
        "open" => ctx.open_orders(&p),
        "cancelAll" if api == Protocol::BinanceUsdm => {
            ctx.cancel_all_orders(&p)?;
            Ok(json!({"code": 200, "msg": "The operation of cancel all open order is done."}))
        }
        "cancelAll" => ctx.cancel_all(&p),
        "trades" => ctx.trades(&p),
        "allOrders" => ctx.all_orders(&p),
        "account" => ctx.account(),
        "positions" => ctx.positions(&p, false),
        "balance" => ctx.futures_balances(),
        _ => match req.method {
            "POST" => Ok(json!({"listenKey": start_listen_key(shared, &who.0, key)})),
            "PUT" => Ok(json!({"listenKey": keepalive_listen_key(shared, &who.0, key)?})),
            _ => {
                stop_listen_key(shared, &who.0, key);
                Ok(json!({}))
            }
        },
    }
}
