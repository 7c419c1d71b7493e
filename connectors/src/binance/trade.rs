//! Binance spot and USD-M order entry: the WebSocket API (`order.place`, `order.cancel`) with
//! HMAC or Ed25519 (`session.logon`) keys, and the user data stream (`executionReport`,
//! `ORDER_TRADE_UPDATE`).
//!
//! Connection sequence (one WebSocket API connection, `{ws_url}/ws-api/v3` on spot,
//! `{ws_url}/ws-fapi/v1` on USD-M):
//!
//! 1. `time`: the venue's `serverTime` against the local wall clock gives the clock offset
//!    added to every request `timestamp`.
//! 2. Ed25519 keys: `session.logon`; afterwards requests carry `timestamp` and `recvWindow`
//!    but no `apiKey` or `signature`. HMAC keys sign every request: `signature` is the
//!    lowercase hex HMAC-SHA256 of all other parameters sorted by name, `k=v` joined by `&`.
//! 3. User data: spot subscribes on the same connection (`userDataStream.subscribe` after a
//!    logon, `userDataStream.subscribe.signature` with an HMAC key, as the docs direct), and
//!    events arrive as `{"subscriptionId":N,"event":{...}}`. USD-M asks `userDataStream.start`
//!    for a listen key and opens `{ws_url}/ws/<listenKey>`; the key is kept alive with
//!    `userDataStream.ping` every 30 minutes.
//! 4. Ready. If orders were open when the previous connection dropped, each such instrument
//!    gets a cancel-all first (spot `openOrders.cancelAll`; USD-M REST
//!    `DELETE /fapi/v1/allOpenOrders`).
//!
//! Request ids tell the answer's order without a lookup: `xb<id>.<b|s><instrument index>` for
//! a new order (side and instrument for the reject event), `xb<id>.c<index>` for a cancel.
//!
//! Events: execution type `NEW` → Accepted, `TRADE` → Filled (duplicate trade ids dropped and
//! counted), `CANCELED` → Cancelled, `EXPIRED` / `TRADE_PREVENTION` → Expired, `REJECTED` →
//! Rejected. An error answer to `order.place` → Rejected with the reason its code means
//! ([`reject_reason`]; 429/418/-1015/-1003 → RateLimited and counted; a 5xx status, when the
//! venue itself does not know whether the order went in, → Transport).

mod decode;
mod state;

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbar_engine::event::{
    ClientOrderId, Fill, NewOrder, OrderCommand, OrderEvent, OrderEventKind, RejectReason, Side, TimeInForce,
};
use crossbar_engine::fixed::{Px, Qty, parse_mantissa};
use crossbar_engine::gateway::GatewayError;
use crossbar_engine::instrument::VenueId;
use crossbar_engine::journal::VenueState;
use mio::Interest;
use mio::unix::SourceFd;
use rust_decimal::Decimal;

use crate::auth::binance::session_logon_request;
use crate::auth::{Ed25519Signer, HmacSigner};
use crate::feed::DecodeError;
use crate::json::Value;
use crate::order::{
    OrderError, OrderSession, SecretKey, SessionConfig, SessionStats, parse_client_id, write_client_id, write_fixed,
    write_u64,
};
use crate::venue::Protocol;
use crate::ws::{Read, WsConn};

use decode::{Exec, Frame, Response};

/// How long a connect (TCP + TLS + websocket handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// From connect to ready (time, logon, subscribe) at most.
const LOGIN_TIMEOUT_NS: u64 = 10_000_000_000;
/// Nothing received (not even a ping: Binance pings every 20 s on spot, 3 min on USD-M) for
/// this long means the connection is dead.
const IDLE_TIMEOUT_NS: u64 = 400_000_000_000;
/// USD-M listen keys expire after 60 minutes without a ping; ping every 30.
const LISTEN_KEY_PING_NS: u64 = 30 * 60 * 1_000_000_000;
/// Reconnect back-off bounds.
const BACKOFF_MIN_NS: u64 = 100_000_000;
const BACKOFF_MAX_NS: u64 = 5_000_000_000;
/// Trade ids remembered for de-duplication.
const SEEN_TRADES: usize = 4096;

/// Where a session is in its connection sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No connection.
    Down,
    /// `time` sent.
    AwaitTime,
    /// `session.logon` sent.
    AwaitLogon,
    /// User data subscription (spot) or listen key (USD-M) requested.
    AwaitSubscribe,
    /// USD-M: listen key known, stream connection to open.
    OpenStream,
    /// Orders may be sent.
    Ready,
}

/// The signing half of the account's key.
enum Key {
    Hmac(HmacSigner),
    Ed25519(Ed25519Signer),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Hmac(_) => "Hmac(***)",
            Self::Ed25519(_) => "Ed25519(***)",
        })
    }
}

/// One Binance account's order-entry session (spot or USD-M, by `cfg.protocol`).
pub struct BinanceSession {
    cfg: SessionConfig,
    usdm: bool,
    key: Key,
    stats: SessionStats,
    api: Option<WsConn>,
    stream: Option<WsConn>,
    phase: Phase,
    phase_since_ns: u64,
    /// A read or write failed: `maintain` tears the connections down.
    broken: bool,
    next_attempt_ns: u64,
    backoff_ns: u64,
    rng: u64,
    last_rx_ns: u64,
    last_keepalive_ns: u64,
    listen_key: Option<String>,
    time_sent_ms: i64,
    /// Orders believed open per instrument (index of `cfg.instruments`).
    open: Vec<u32>,
    /// Instruments that had open orders when the last connection dropped.
    cancel_all_due: Vec<bool>,
    seen: Vec<(u32, u64)>,
    seen_next: usize,
    /// Fills whose commission was charged in an asset other than the quote asset.
    foreign_fee_fills: u64,
    frame: Vec<u8>,
    payload: Vec<u8>,
    read_buf: Vec<u8>,
}

impl std::fmt::Debug for BinanceSession {
    /// Venue, state and counters only: the frame buffers hold the API key, the listen key is
    /// a credential too.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinanceSession")
            .field("venue", &self.cfg.venue_name)
            .field("protocol", &self.cfg.protocol)
            .field("key", &self.key)
            .field("phase", &self.phase)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Drop for BinanceSession {
    /// The request buffers held the API key (and signature payloads): clear them.
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.frame.zeroize();
        self.payload.zeroize();
        if let Some(k) = self.listen_key.as_mut() {
            k.zeroize();
        }
    }
}

fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl BinanceSession {
    /// A session for `cfg`'s venue; it connects on its first `maintain`.
    ///
    /// # Errors
    /// An [`OrderError`] when the protocol is not a Binance one, the API key is not
    /// alphanumeric (Binance keys are), or the Ed25519 key does not parse.
    pub fn new(cfg: SessionConfig) -> Result<Self, OrderError> {
        let usdm = match cfg.protocol {
            Protocol::BinanceSpot => false,
            Protocol::BinanceUsdm => true,
            _ => {
                return Err(OrderError::Malformed { request: "config", detail: "not a Binance protocol".into() });
            }
        };
        if cfg.credentials.api_key.expose().is_empty()
            || !cfg.credentials.api_key.expose().bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(OrderError::Malformed { request: "credentials", detail: "API key is not alphanumeric".into() });
        }
        let key = match &cfg.credentials.key {
            SecretKey::Hmac(secret) => Key::Hmac(HmacSigner::new(secret)),
            SecretKey::Ed25519(pem) => Key::Ed25519(Ed25519Signer::from_pkcs8_pem(pem)?),
        };
        let n = cfg.instruments.len();
        let seed = (wall_ms() as u64) ^ (cfg.venue.index() as u64).rotate_left(17);
        Ok(Self {
            cfg,
            usdm,
            key,
            stats: SessionStats::default(),
            api: None,
            stream: None,
            phase: Phase::Down,
            phase_since_ns: 0,
            broken: false,
            next_attempt_ns: 0,
            backoff_ns: BACKOFF_MIN_NS,
            rng: seed | 1,
            last_rx_ns: 0,
            last_keepalive_ns: 0,
            listen_key: None,
            time_sent_ms: 0,
            open: vec![0; n],
            cancel_all_due: vec![false; n],
            seen: vec![(u32::MAX, 0); SEEN_TRADES],
            seen_next: 0,
            foreign_fee_fills: 0,
            frame: Vec::with_capacity(2048),
            payload: Vec::with_capacity(2048),
            read_buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Fills whose commission was charged in an asset other than the instrument's quote
    /// (BNB discounts): their `fee` is the commission as reported, in that asset.
    pub fn foreign_fee_fills(&self) -> u64 {
        self.foreign_fee_fills
    }

    /// The WebSocket API URL of this session's market.
    pub fn api_url(&self) -> String {
        format!("{}{}", self.cfg.ws_url.trim_end_matches('/'), if self.usdm { "/ws-fapi/v1" } else { "/ws-api/v3" })
    }

    /// Sets the estimated venue-minus-local clock offset (ms) that request timestamps carry.
    pub fn set_clock_offset_ms(&mut self, offset_ms: i64) {
        self.stats.clock_offset_ms = offset_ms;
    }

    /// The venue's clock now, as far as the session knows it (ms).
    fn venue_ms(&self) -> u64 {
        (wall_ms() + self.stats.clock_offset_ms).max(0) as u64
    }

    fn instrument_index(&self, id: crossbar_engine::instrument::InstrumentId) -> Option<usize> {
        self.cfg.instruments.iter().position(|i| i.id == id)
    }

    fn symbol_index(&self, symbol: &[u8]) -> Option<usize> {
        self.cfg.instruments.iter().position(|i| i.symbol.as_bytes() == symbol)
    }

    /// Encodes the `order.place` or `order.cancel` frame for `cmd` with request timestamp
    /// `timestamp_ms`, signed as the key requires, into the session's frame buffer; returns
    /// the frame. This is exactly what [`OrderSession::send`] writes (with the venue clock).
    ///
    /// # Errors
    /// [`GatewayError::NotServed`] for a command of another venue or instrument, or a resync.
    pub fn encode(&mut self, cmd: &OrderCommand, timestamp_ms: u64) -> Result<&[u8], GatewayError> {
        match cmd {
            OrderCommand::New { order, .. } => {
                if order.venue != self.cfg.venue {
                    return Err(GatewayError::NotServed);
                }
                let idx = self.instrument_index(order.instrument).ok_or(GatewayError::NotServed)?;
                self.encode_new(order, idx, timestamp_ms);
            }
            OrderCommand::Cancel { client_id, instrument, venue } => {
                if *venue != self.cfg.venue {
                    return Err(GatewayError::NotServed);
                }
                let idx = self.instrument_index(*instrument).ok_or(GatewayError::NotServed)?;
                self.encode_cancel(*client_id, idx, timestamp_ms);
            }
            OrderCommand::Resync { .. } => return Err(GatewayError::NotServed),
        }
        Ok(&self.frame)
    }

    fn encode_new(&mut self, order: &NewOrder, idx: usize, ts: u64) {
        let inst = &self.cfg.instruments[idx];
        let mut e = Enc::start(&mut self.frame, &mut self.payload);
        e.frame.extend_from_slice(b"{\"id\":\"");
        write_client_id(e.frame, order.client_id);
        e.frame.extend_from_slice(if order.side == Side::Buy { b".b" } else { b".s" });
        write_u64(e.frame, idx as u64);
        e.frame.extend_from_slice(b"\",\"method\":\"order.place\",\"params\":{");
        let hmac = matches!(self.key, Key::Hmac(_));
        if hmac {
            e.str(b"apiKey", self.cfg.credentials.api_key.expose().as_bytes());
        }
        e.key(b"newClientOrderId", true);
        write_client_id(e.frame, order.client_id);
        write_client_id(e.payload, order.client_id);
        e.close_str();
        if !self.usdm {
            e.str(b"newOrderRespType", b"ACK");
        }
        e.key(b"price", true);
        write_fixed(e.frame, order.px.0, inst.price_scale);
        write_fixed(e.payload, order.px.0, inst.price_scale);
        e.close_str();
        e.key(b"quantity", true);
        write_fixed(e.frame, order.qty.0, inst.qty_scale);
        write_fixed(e.payload, order.qty.0, inst.qty_scale);
        e.close_str();
        e.num(b"recvWindow", self.cfg.recv_window_ms);
        if self.usdm && order.reduce_only {
            e.str(b"reduceOnly", b"true");
        }
        e.str(b"side", if order.side == Side::Buy { b"BUY" } else { b"SELL" });
        e.str(b"symbol", inst.symbol.as_bytes());
        e.str(b"timeInForce", if order.tif == TimeInForce::Ioc { b"IOC" } else { b"GTC" });
        e.num(b"timestamp", ts);
        e.str(b"type", b"LIMIT");
        self.finish_params(hmac);
    }

    fn encode_cancel(&mut self, client_id: ClientOrderId, idx: usize, ts: u64) {
        let inst = &self.cfg.instruments[idx];
        let mut e = Enc::start(&mut self.frame, &mut self.payload);
        e.frame.extend_from_slice(b"{\"id\":\"");
        write_client_id(e.frame, client_id);
        e.frame.extend_from_slice(b".c");
        write_u64(e.frame, idx as u64);
        e.frame.extend_from_slice(b"\",\"method\":\"order.cancel\",\"params\":{");
        let hmac = matches!(self.key, Key::Hmac(_));
        if hmac {
            e.str(b"apiKey", self.cfg.credentials.api_key.expose().as_bytes());
        }
        e.key(b"origClientOrderId", true);
        write_client_id(e.frame, client_id);
        write_client_id(e.payload, client_id);
        e.close_str();
        e.num(b"recvWindow", self.cfg.recv_window_ms);
        e.str(b"symbol", inst.symbol.as_bytes());
        e.num(b"timestamp", ts);
        self.finish_params(hmac);
    }

    /// A signed request of a few parameters (cancel-all, user data subscription).
    fn encode_simple(&mut self, id: &[u8], method: &[u8], symbol: Option<usize>, ts: u64) {
        let hmac = matches!(self.key, Key::Hmac(_));
        let mut e = Enc::start(&mut self.frame, &mut self.payload);
        e.frame.extend_from_slice(b"{\"id\":\"");
        e.frame.extend_from_slice(id);
        e.frame.extend_from_slice(b"\",\"method\":\"");
        e.frame.extend_from_slice(method);
        e.frame.extend_from_slice(b"\",\"params\":{");
        if hmac {
            e.str(b"apiKey", self.cfg.credentials.api_key.expose().as_bytes());
        }
        e.num(b"recvWindow", self.cfg.recv_window_ms);
        if let Some(idx) = symbol {
            e.str(b"symbol", self.cfg.instruments[idx].symbol.as_bytes());
        }
        e.num(b"timestamp", ts);
        self.finish_params(hmac);
    }

    fn finish_params(&mut self, hmac: bool) {
        if let (true, Key::Hmac(signer)) = (hmac, &self.key) {
            let mut hex = [0u8; crate::auth::HEX_SIG_LEN];
            let sig = signer.sign_hex_into(&[&self.payload], &mut hex);
            self.frame.extend_from_slice(b",\"signature\":\"");
            self.frame.extend_from_slice(sig.as_bytes());
            self.frame.push(b'"');
        }
        self.frame.extend_from_slice(b"}}");
    }

    /// The frame of a request that carries only the API key (USD-M user data stream).
    fn encode_api_key_only(&mut self, id: &str, method: &str) {
        self.frame.clear();
        self.frame.extend_from_slice(b"{\"id\":\"");
        self.frame.extend_from_slice(id.as_bytes());
        self.frame.extend_from_slice(b"\",\"method\":\"");
        self.frame.extend_from_slice(method.as_bytes());
        self.frame.extend_from_slice(b"\",\"params\":{\"apiKey\":\"");
        self.frame.extend_from_slice(self.cfg.credentials.api_key.expose().as_bytes());
        self.frame.extend_from_slice(b"\"}}");
    }

    fn send_frame(&mut self) -> bool {
        let Some(api) = self.api.as_mut() else { return false };
        if api.send_raw_text(&self.frame).is_err() {
            self.broken = true;
            return false;
        }
        true
    }

    /// Hands one private frame (from either connection) to the session: responses update the
    /// connection state, rate limits and clock; order events go to `out`. Malformed frames
    /// are counted, never fatal.
    pub fn on_frame(&mut self, frame: &[u8], recv_ns: u64, out: &mut dyn FnMut(OrderEvent)) {
        if self.handle_frame(frame, recv_ns, out).is_err() {
            self.stats.malformed += 1;
        }
    }

    fn handle_frame(&mut self, frame: &[u8], recv_ns: u64, out: &mut dyn FnMut(OrderEvent)) -> Result<(), DecodeError> {
        match decode::classify(frame)? {
            Frame::Response(r) => self.on_response(&r, recv_ns, out),
            Frame::Event(obj) => self.on_event(obj, recv_ns, out),
            Frame::Other => {
                self.stats.unknown += 1;
                Ok(())
            }
        }
    }

    fn on_response(
        &mut self,
        r: &Response<'_>,
        recv_ns: u64,
        out: &mut dyn FnMut(OrderEvent),
    ) -> Result<(), DecodeError> {
        if let Some(arr) = r.rate_limits
            && let Some((used, limit)) = decode::busiest_rate_limit(arr)?
        {
            self.stats.rate_used = used;
            self.stats.rate_limit = limit;
        }
        let failed = r.status != 200;
        let rate = failed && (matches!(r.code, -1003 | -1015) || matches!(r.status, 418 | 429));
        if rate {
            self.stats.rate_limited += 1;
        }
        match r.id {
            b"time" => {
                let server = match r.result {
                    Some(Value::Object(obj)) => decode::member(obj, b"serverTime")?,
                    _ => None,
                };
                let Some(server) = server else { return Err(DecodeError::MissingField("serverTime")) };
                let server = server.u64("serverTime")? as i64;
                let now = wall_ms();
                self.stats.clock_offset_ms = server - (self.time_sent_ms + now) / 2;
                if self.phase == Phase::AwaitTime {
                    self.after_time(recv_ns);
                }
            }
            b"logon" => {
                if failed {
                    self.stats.rejects += 1;
                    self.broken = true;
                } else if self.phase == Phase::AwaitLogon {
                    self.subscribe(recv_ns);
                }
            }
            b"subscribe" => {
                if failed {
                    self.broken = true;
                } else if self.phase == Phase::AwaitSubscribe {
                    self.set_ready(recv_ns);
                }
            }
            b"listenKey" => {
                let key = match r.result {
                    Some(Value::Object(obj)) => decode::member(obj, b"listenKey")?,
                    _ => None,
                };
                match key {
                    Some(Value::Str(k)) if !failed && !k.is_empty() && k.iter().all(u8::is_ascii_alphanumeric) => {
                        self.listen_key = Some(String::from_utf8_lossy(k).into_owned());
                        if self.phase == Phase::AwaitSubscribe {
                            self.phase = Phase::OpenStream;
                        }
                    }
                    _ if failed => self.broken = true,
                    _ => return Err(DecodeError::MissingField("listenKey")),
                }
            }
            b"ping" => {
                // The listen key is gone (-1125): a new connection starts a new one.
                if failed {
                    self.broken = true;
                }
            }
            id => {
                // Cancel-alls (spot answers -2011 when nothing was open) and anything else
                // that is not an order's: nothing to report.
                let Some((cid, kind, idx)) = parse_request_id(id) else { return Ok(()) };
                if !failed {
                    return Ok(());
                }
                self.stats.rejects += 1;
                let Some(inst) = self.cfg.instruments.get(idx) else { return Ok(()) };
                let side = match kind {
                    b'b' => Side::Buy,
                    b's' => Side::Sell,
                    // A refused cancel (unknown order, already done): the order's own events
                    // tell its fate.
                    _ => return Ok(()),
                };
                // 5xx: the venue does not know whether the order went in; only reconcile
                // will tell (Transport), whatever the code says.
                let reason = if rate {
                    RejectReason::RateLimited
                } else if r.status >= 500 {
                    RejectReason::Transport
                } else {
                    reject_reason(r.code)
                };
                self.open[idx] = self.open[idx].saturating_sub(1);
                out(OrderEvent {
                    client_id: cid,
                    instrument: inst.id,
                    side,
                    exch_ts_ms: 0,
                    recv_ns,
                    kind: OrderEventKind::Rejected(reason),
                });
            }
        }
        Ok(())
    }

    fn on_event(&mut self, obj: &[u8], recv_ns: u64, out: &mut dyn FnMut(OrderEvent)) -> Result<(), DecodeError> {
        let mut ex = Exec::default();
        decode::read_exec(obj, &mut ex)?;
        match ex.e {
            b"executionReport" | b"ORDER_TRADE_UPDATE" => {}
            b"serverShutdown" => {
                self.broken = true;
                return Ok(());
            }
            b"listenKeyExpired" | b"eventStreamTerminated" => {
                self.broken = true;
                return Ok(());
            }
            b"outboundAccountPosition" | b"ACCOUNT_UPDATE" | b"balanceUpdate" => {
                self.stats.account_updates += 1;
                return Ok(());
            }
            _ => {
                self.stats.unknown += 1;
                return Ok(());
            }
        }
        let Some(idx) = self.symbol_index(ex.symbol) else {
            self.stats.unknown += 1;
            return Ok(());
        };
        let wire_id = if ex.x == b"CANCELED" && !ex.orig_c.is_empty() { ex.orig_c } else { ex.c };
        let Some(cid) = parse_client_id(wire_id) else {
            self.stats.unknown += 1;
            return Ok(());
        };
        let side = match ex.side {
            b"BUY" => Side::Buy,
            b"SELL" => Side::Sell,
            _ => return Err(DecodeError::WrongType("S")),
        };
        let inst = &self.cfg.instruments[idx];
        let exch_ts_ms = if ex.trade_ms != 0 { ex.trade_ms } else { ex.event_ms };
        let kind = match ex.x {
            b"NEW" => {
                self.stats.acks += 1;
                OrderEventKind::Accepted
            }
            b"TRADE" => {
                let bad = |field| move |source| DecodeError::BadNumber { field, source };
                let px = Px(parse_mantissa(ex.last_px, inst.price_scale, false).map_err(bad("L"))?);
                let qty = Qty(parse_mantissa(ex.l, inst.qty_scale, false).map_err(bad("l"))?);
                let ordered = parse_mantissa(ex.q, inst.qty_scale, false).map_err(bad("q"))?;
                let cum = parse_mantissa(ex.z, inst.qty_scale, false).map_err(bad("z"))?;
                let fee = if ex.n.is_empty() {
                    Decimal::ZERO
                } else {
                    let text = std::str::from_utf8(ex.n).map_err(|_| DecodeError::WrongType("n"))?;
                    Decimal::from_str(text).map_err(|_| DecodeError::WrongType("n"))?
                };
                let trade_id = u64::try_from(ex.t).map_err(|_| DecodeError::BadInteger("t"))?;
                let key = (idx as u32, trade_id);
                if self.seen.contains(&key) {
                    self.stats.duplicate_fills += 1;
                    return Ok(());
                }
                self.seen[self.seen_next] = key;
                self.seen_next = (self.seen_next + 1) % SEEN_TRADES;
                if !ex.fee_asset.is_empty() && ex.fee_asset != inst.quote.as_bytes() {
                    self.foreign_fee_fills += 1;
                }
                self.stats.fills += 1;
                let leaves = (ordered - cum).max(0);
                if leaves == 0 {
                    self.open[idx] = self.open[idx].saturating_sub(1);
                }
                OrderEventKind::Filled(Fill { px, qty, leaves_qty: Qty(leaves), fee, taker: !ex.maker, trade_id })
            }
            b"CANCELED" => {
                self.open[idx] = self.open[idx].saturating_sub(1);
                OrderEventKind::Cancelled
            }
            b"EXPIRED" | b"TRADE_PREVENTION" => {
                self.open[idx] = self.open[idx].saturating_sub(1);
                OrderEventKind::Expired
            }
            b"REJECTED" => {
                self.stats.rejects += 1;
                self.open[idx] = self.open[idx].saturating_sub(1);
                OrderEventKind::Rejected(spot_reject_reason(ex.reject))
            }
            _ => {
                // CALCULATED (liquidation), AMENDMENT, REPLACED: not ours to act on.
                self.stats.unknown += 1;
                return Ok(());
            }
        };
        out(OrderEvent { client_id: cid, instrument: inst.id, side, exch_ts_ms, recv_ns, kind });
        Ok(())
    }

    fn after_time(&mut self, now_ns: u64) {
        match self.key {
            Key::Ed25519(ref signer) => {
                let window = u32::try_from(self.cfg.recv_window_ms).ok();
                let ts = self.venue_ms();
                let req = session_logon_request("logon", &self.cfg.credentials.api_key, signer, ts, window);
                let ok = self.api.as_mut().is_some_and(|a| a.send_text(&req).is_ok());
                if !ok {
                    self.broken = true;
                }
                self.phase = Phase::AwaitLogon;
            }
            Key::Hmac(_) => self.subscribe(now_ns),
        }
    }

    fn subscribe(&mut self, _now_ns: u64) {
        if self.usdm {
            self.encode_api_key_only("listenKey", "userDataStream.start");
        } else if matches!(self.key, Key::Ed25519(_)) {
            self.frame.clear();
            self.frame.extend_from_slice(b"{\"id\":\"subscribe\",\"method\":\"userDataStream.subscribe\"}");
        } else {
            // HMAC: sign the subscription itself (apiKey, recvWindow, timestamp).
            let ts = self.venue_ms();
            let hmac = true;
            let mut e = Enc::start(&mut self.frame, &mut self.payload);
            e.frame.extend_from_slice(
                b"{\"id\":\"subscribe\",\"method\":\"userDataStream.subscribe.signature\",\"params\":{",
            );
            e.str(b"apiKey", self.cfg.credentials.api_key.expose().as_bytes());
            e.num(b"recvWindow", self.cfg.recv_window_ms);
            e.num(b"timestamp", ts);
            self.finish_params(hmac);
        }
        self.send_frame();
        self.phase = Phase::AwaitSubscribe;
    }

    fn set_ready(&mut self, now_ns: u64) {
        self.phase = Phase::Ready;
        self.phase_since_ns = now_ns;
        self.last_keepalive_ns = now_ns;
        self.stats.connects += 1;
        self.backoff_ns = BACKOFF_MIN_NS;
        for idx in 0..self.cancel_all_due.len() {
            if !self.cancel_all_due[idx] {
                continue;
            }
            self.cancel_all_due[idx] = false;
            self.open[idx] = 0;
            self.stats.cancel_alls += 1;
            if self.usdm {
                if let Err(e) = state::rest_cancel_all(self, idx) {
                    let _ = e; // the venue's own cancel-on-disconnect, or reconcile, settles it
                }
            } else {
                let ts = self.venue_ms();
                let mut id = *b"cancelAll.000";
                let n = idx % 1000;
                id[10] = b'0' + (n / 100) as u8;
                id[11] = b'0' + ((n / 10) % 10) as u8;
                id[12] = b'0' + (n % 10) as u8;
                self.encode_simple(&id, b"openOrders.cancelAll", Some(idx), ts);
                self.send_frame();
            }
        }
    }

    fn teardown(&mut self, now_ns: u64, registry: &mio::Registry) {
        for conn in [self.api.take(), self.stream.take()].into_iter().flatten() {
            let fd = conn.raw_fd();
            let _ = registry.deregister(&mut SourceFd(&fd));
            let mut conn = conn;
            conn.close();
        }
        if self.phase != Phase::Down {
            self.stats.disconnects += 1;
        }
        for (due, open) in self.cancel_all_due.iter_mut().zip(&self.open) {
            *due |= *open > 0;
        }
        self.phase = Phase::Down;
        self.broken = false;
        self.listen_key = None;
        // Jittered exponential back-off: half the current step plus a random part of it.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let step = self.backoff_ns;
        self.next_attempt_ns = now_ns + step / 2 + self.rng % (step / 2 + 1);
        self.backoff_ns = (step * 2).min(BACKOFF_MAX_NS);
    }

    fn connect(&mut self, now_ns: u64, registry: &mio::Registry, token: mio::Token) {
        let url = self.api_url();
        let conn = match WsConn::connect(&url, CONNECT_TIMEOUT) {
            Ok(c) => c,
            Err(_) => {
                self.teardown(now_ns, registry);
                return;
            }
        };
        let fd = conn.raw_fd();
        if registry.register(&mut SourceFd(&fd), token, Interest::READABLE).is_err() {
            self.teardown(now_ns, registry);
            return;
        }
        self.api = Some(conn);
        self.phase = Phase::AwaitTime;
        self.phase_since_ns = now_ns;
        self.last_rx_ns = now_ns;
        self.time_sent_ms = wall_ms();
        self.frame.clear();
        self.frame.extend_from_slice(b"{\"id\":\"time\",\"method\":\"time\"}");
        self.send_frame();
    }

    fn open_stream(&mut self, now_ns: u64, registry: &mio::Registry, token: mio::Token) {
        let Some(key) = self.listen_key.as_deref() else { return };
        let url = format!("{}/ws/{key}", self.cfg.ws_url.trim_end_matches('/'));
        match WsConn::connect(&url, CONNECT_TIMEOUT) {
            Ok(conn) => {
                let fd = conn.raw_fd();
                if registry.register(&mut SourceFd(&fd), token, Interest::READABLE).is_err() {
                    self.broken = true;
                    return;
                }
                self.stream = Some(conn);
                self.set_ready(now_ns);
            }
            Err(_) => self.broken = true,
        }
    }

    fn read_all(&mut self, recv_ns: u64, out: &mut dyn FnMut(OrderEvent)) {
        let mut buf = std::mem::take(&mut self.read_buf);
        for which in 0..2 {
            loop {
                let conn = if which == 0 { self.api.as_mut() } else { self.stream.as_mut() };
                let Some(conn) = conn else { break };
                match conn.read(&mut buf) {
                    Ok(Read::Data(_)) => {
                        self.last_rx_ns = recv_ns;
                        let frame = std::mem::take(&mut buf);
                        self.on_frame(&frame, recv_ns, out);
                        buf = frame;
                    }
                    Ok(Read::Control) => self.last_rx_ns = recv_ns,
                    Ok(Read::WouldBlock) => break,
                    Err(_) => {
                        self.broken = true;
                        break;
                    }
                }
            }
        }
        self.read_buf = buf;
    }
}

/// `xb<id>.<kind><index>` → (client id, kind byte, instrument index).
fn parse_request_id(id: &[u8]) -> Option<(ClientOrderId, u8, usize)> {
    let dot = id.iter().rposition(|&b| b == b'.')?;
    let cid = parse_client_id(&id[..dot])?;
    let (&kind, digits) = id[dot + 1..].split_first()?;
    if digits.is_empty() || digits.len() > 6 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let idx = digits.iter().fold(0usize, |a, &d| a * 10 + usize::from(d - b'0'));
    Some((cid, kind, idx))
}

/// The engine's reason for a Binance error code (spot and USD-M codes).
pub fn reject_reason(code: i64) -> RejectReason {
    match code {
        -2010 | -2018 | -2019 | -2027 | -2028 => RejectReason::InsufficientBalance,
        -1003 | -1015 => RejectReason::RateLimited,
        -1013 | -1100 | -1101 | -1102 | -1111 | -1112 | -1121 | -2015 => RejectReason::InvalidOrder,
        -4001..=-4000 => RejectReason::InvalidOrder,
        c if (-4199..=-4002).contains(&c) => RejectReason::InvalidOrder,
        -1016 | -3044 => RejectReason::MarketClosed,
        _ => RejectReason::Other,
    }
}

/// The engine's reason for a spot `executionReport`'s `r` (order reject reason).
fn spot_reject_reason(r: &[u8]) -> RejectReason {
    match r {
        b"INSUFFICIENT_BALANCES" => RejectReason::InsufficientBalance,
        b"STOP_PRICE_WOULD_TRIGGER_IMMEDIATELY" | b"WOULD_MATCH_IMMEDIATELY" | b"OCO_BAD_PRICES" => {
            RejectReason::InvalidOrder
        }
        _ => RejectReason::Other,
    }
}

/// Writes a request's parameters twice at once: as JSON members into the frame, and as the
/// signature payload (`k=v` joined by `&`) — callers add them sorted by name.
struct Enc<'a> {
    frame: &'a mut Vec<u8>,
    payload: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Enc<'a> {
    fn start(frame: &'a mut Vec<u8>, payload: &'a mut Vec<u8>) -> Self {
        frame.clear();
        payload.clear();
        Self { frame, payload, first: true }
    }

    fn key(&mut self, k: &[u8], quoted: bool) {
        if !self.first {
            self.frame.push(b',');
            self.payload.push(b'&');
        }
        self.first = false;
        self.frame.push(b'"');
        self.frame.extend_from_slice(k);
        self.frame.extend_from_slice(if quoted { b"\":\"" } else { b"\":" });
        self.payload.extend_from_slice(k);
        self.payload.push(b'=');
    }

    fn close_str(&mut self) {
        self.frame.push(b'"');
    }

    fn str(&mut self, k: &[u8], v: &[u8]) {
        self.key(k, true);
        self.frame.extend_from_slice(v);
        self.payload.extend_from_slice(v);
        self.close_str();
    }

    fn num(&mut self, k: &[u8], v: u64) {
        self.key(k, false);
        write_u64(self.frame, v);
        write_u64(self.payload, v);
    }
}

impl OrderSession for BinanceSession {
    fn gateway_name(&self) -> &'static str {
        "binance-ws-api"
    }

    fn venue(&self) -> VenueId {
        self.cfg.venue
    }

    fn maintain(&mut self, now_ns: u64, registry: &mio::Registry, token: mio::Token) {
        if self.broken {
            self.teardown(now_ns, registry);
            return;
        }
        match self.phase {
            Phase::Down => {
                if now_ns >= self.next_attempt_ns {
                    self.connect(now_ns, registry, token);
                }
                return;
            }
            Phase::OpenStream => self.open_stream(now_ns, registry, token),
            Phase::Ready => {
                if now_ns.saturating_sub(self.last_rx_ns) > IDLE_TIMEOUT_NS {
                    self.broken = true;
                }
                if self.usdm && now_ns.saturating_sub(self.last_keepalive_ns) > LISTEN_KEY_PING_NS {
                    self.last_keepalive_ns = now_ns;
                    self.encode_api_key_only("ping", "userDataStream.ping");
                    self.send_frame();
                }
            }
            Phase::AwaitTime | Phase::AwaitLogon | Phase::AwaitSubscribe => {
                if now_ns.saturating_sub(self.phase_since_ns) > LOGIN_TIMEOUT_NS {
                    self.broken = true;
                }
            }
        }
        for conn in [self.api.as_mut(), self.stream.as_mut()].into_iter().flatten() {
            if conn.flush().is_err() {
                self.broken = true;
            }
        }
        if self.broken {
            self.teardown(now_ns, registry);
        }
    }

    fn ready(&self) -> bool {
        self.phase == Phase::Ready && !self.broken
    }

    fn send(&mut self, cmd: &OrderCommand, _now_ns: u64) -> Result<(), GatewayError> {
        let ts = self.venue_ms();
        // Check the instrument first: NotServed wins over Disconnected.
        let idx = match cmd {
            OrderCommand::New { order, .. } if order.venue == self.cfg.venue => self.instrument_index(order.instrument),
            OrderCommand::Cancel { instrument, venue, .. } if *venue == self.cfg.venue => {
                self.instrument_index(*instrument)
            }
            _ => None,
        };
        let Some(idx) = idx else { return Err(GatewayError::NotServed) };
        if !self.ready() {
            self.stats.not_ready += 1;
            return Err(GatewayError::Disconnected);
        }
        self.encode(cmd, ts)?;
        if !self.send_frame() {
            return Err(GatewayError::Disconnected);
        }
        match cmd {
            OrderCommand::New { .. } => {
                self.stats.orders_sent += 1;
                self.open[idx] += 1;
            }
            _ => self.stats.cancels_sent += 1,
        }
        Ok(())
    }

    fn poll(&mut self, now_ns: u64, out: &mut dyn FnMut(OrderEvent)) {
        self.read_all(now_ns, out);
    }

    fn stats(&self) -> SessionStats {
        self.stats
    }

    fn venue_state(&mut self, timeout: Duration) -> Result<VenueState, OrderError> {
        state::venue_state(self, timeout)
    }
}
