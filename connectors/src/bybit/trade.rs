//! Bybit v5 order entry: the trade websocket (`auth`, `order.create`, `order.cancel`) and the
//! private streams (`order`, `execution`).
//!
//! Two connections per session, both authenticated with `{"op":"auth","args":[key, expires,
//! hex HMAC of "GET/realtime"+expires]}` ([`crate::auth::bybit`]):
//!
//! ```text
//! {ws_url}/v5/trade    -> {"reqId":"xb7","header":{"X-BAPI-TIMESTAMP":"..","X-BAPI-RECV-WINDOW":".."},
//!                          "op":"order.create","args":[{"category":"linear","symbol":"BTCUSDT",
//!                          "side":"Buy","orderType":"Limit","qty":"0.01","price":"50000",
//!                          "timeInForce":"IOC","orderLinkId":"xb7"}]}
//!                      <- {"reqId":"xb7","retCode":0,"retMsg":"OK","op":"order.create",
//!                          "data":{"orderId":"..","orderLinkId":"xb7"},"header":{"X-Bapi-Limit":"10",
//!                          "X-Bapi-Limit-Status":"9","Timenow":".."},"connId":".."}
//! {ws_url}/v5/private  -> {"op":"subscribe","args":["order","execution"]}
//!                      <- {"topic":"order","data":[{orderLinkId, symbol, side, orderStatus, cancelType, ..}]}
//!                      <- {"topic":"execution","data":[{execId, orderLinkId, symbol, side, execPrice,
//!                          execQty, execFee, isMaker, leavesQty, execTime, execType, ..}]}
//! ```
//!
//! Events: `Accepted` once per order, from the `order.create` ack (retCode 0) or the first
//! `order` message that shows it live, whichever comes first; `Filled` from every `execution`
//! of type `Trade` (duplicates by execId dropped and counted); `Cancelled` when the `order`
//! topic ends it with `cancelType` `CancelByUser`, `Expired` when it ends `Cancelled` /
//! `PartiallyFilledCanceled` for any other reason (the unfilled rest of an IOC order);
//! `Rejected` from a non-zero `order.create` retCode or an `order` status `Rejected`.
//!
//! Bybit's `execId` is a UUID on derivatives and digits on spot, while the engine keys fills by
//! a `u64`: an all-digit execId that fits is used as is, any other is mapped with 64-bit
//! FNV-1a over its bytes ([`exec_id_hash`]) — stable across runs, so the journal and the
//! venue's `/v5/execution/list` agree on every fill's id.
//!
//! A refused `auth` or `subscribe` drops that connection (counted as a disconnect) and is
//! retried after the back-off. Reconnects back off (100 ms doubling to 5 s, with jitter).
//! When either connection was lost, the orders still open are cancelled once both are up
//! again (the private stream re-subscribed first, so the cancels' events arrive), with one
//! `order.cancel` each (Bybit's trade websocket has no cancel-all op), counted once as a
//! cancel-all.

use std::collections::{HashMap, HashSet, VecDeque};
use std::str::FromStr as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbar_engine::event::{
    ClientOrderId, Fill, NewOrder, OrderCommand, OrderEvent, OrderEventKind, RejectReason, Side, TimeInForce,
};
use crossbar_engine::fixed::{Px, Qty};
use crossbar_engine::gateway::GatewayError;
use crossbar_engine::instrument::{InstrumentId, VenueId};
use crossbar_engine::journal::{VenueFill, VenueOrder, VenueState};
use mio::unix::SourceFd;
use rust_decimal::Decimal;

use crate::auth::{HEX_SIG_LEN, HmacSigner, bybit as sign};
use crate::feed::DecodeError;
use crate::json::{Elements, Members, Value};
use crate::order::{
    OrderError, OrderSession, SecretKey, SessionConfig, SessionInstrument, SessionStats, parse_client_id,
    write_client_id, write_u64,
};
use crate::venue::{BYBIT_PING, Protocol};
use crate::ws::{Read, WsConn};

/// Path of the order-entry websocket under `SessionConfig::ws_url`.
pub const TRADE_PATH: &str = "/v5/trade";
/// Path of the private streams under `SessionConfig::ws_url`.
pub const PRIVATE_PATH: &str = "/v5/private";
/// The subscribe request of the private connection.
pub const SUBSCRIBE: &str = r#"{"op":"subscribe","args":["order","execution"]}"#;

const MS: u64 = 1_000_000;
const PING_EVERY_NS: u64 = 20_000 * MS;
const IDLE_TIMEOUT_NS: u64 = 45_000 * MS;
const LOGIN_TIMEOUT_NS: u64 = 10_000 * MS;
const BACKOFF_MIN_NS: u64 = 100 * MS;
const BACKOFF_MAX_NS: u64 = 5_000 * MS;
/// How far in the future the `auth` expiry is set, ms.
const AUTH_EXPIRY_MS: u64 = 10_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Exec ids remembered for de-duplication.
const SEEN_CAPACITY: usize = 1 << 16;
/// Open orders tracked without growing.
const OPEN_CAPACITY: usize = 4096;

/// Which of the session's two connections a frame came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// `/v5/trade`: auth, order acks, pongs.
    Trade,
    /// `/v5/private`: auth, subscribe, `order` and `execution` pushes.
    Private,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Down,
    Authing,
    Subscribing,
    Ready,
}

#[derive(Debug)]
struct Conn {
    ws: Option<WsConn>,
    /// A connection that broke in `poll`, deregistered and dropped by the next `maintain`.
    dead: Option<WsConn>,
    state: State,
    retry_at_ns: u64,
    backoff_ns: u64,
    since_ns: u64,
    last_ping_ns: u64,
    last_rx_ns: u64,
    /// True once it was ready: the next login is a reconnect.
    was_ready: bool,
}

impl Conn {
    fn new() -> Self {
        Self {
            ws: None,
            dead: None,
            state: State::Down,
            retry_at_ns: 0,
            backoff_ns: BACKOFF_MIN_NS,
            since_ns: 0,
            last_ping_ns: 0,
            last_rx_ns: 0,
            was_ready: false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct OpenOrder {
    instrument: InstrumentId,
    side: Side,
    acked: bool,
}

/// One Bybit account's order-entry session (categories spot or linear).
pub struct BybitSession {
    cfg: SessionConfig,
    stats: SessionStats,
    category: &'static str,
    signer: HmacSigner,
    /// `InstrumentId` index → index into `cfg.instruments`.
    by_id: Vec<Option<usize>>,
    trade: Conn,
    private: Conn,
    /// The frame being encoded (reused).
    out: Vec<u8>,
    /// The frame being read (reused).
    rbuf: Vec<u8>,
    open: HashMap<u64, OpenOrder>,
    /// Client ids to cancel after a reconnect (reused).
    scratch: Vec<(u64, InstrumentId)>,
    seen: HashSet<u64>,
    seen_order: VecDeque<u64>,
    cancel_seq: u64,
    /// A connection came back: cancel what is open once both are ready.
    cancel_pending: bool,
    jitter: u64,
}

impl std::fmt::Debug for BybitSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BybitSession")
            .field("venue", &self.cfg.venue_name)
            .field("category", &self.category)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Local wall clock, ms since the Unix epoch.
fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The stable `u64` of a Bybit `execId`: the number itself when it is all digits and fits,
/// else 64-bit FNV-1a of its bytes.
pub fn exec_id_hash(exec_id: &[u8]) -> u64 {
    if !exec_id.is_empty() && exec_id.len() <= 19 && exec_id.iter().all(u8::is_ascii_digit) {
        return exec_id.iter().fold(0u64, |v, d| v * 10 + u64::from(d - b'0'));
    }
    exec_id.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The engine's reject reason for a Bybit `retCode`.
pub fn reject_reason(ret_code: i64) -> RejectReason {
    match ret_code {
        110_004 | 110_006 | 110_007 | 110_012 | 110_014 | 170_131 => RejectReason::InsufficientBalance,
        10_006 | 10_018 | 10_403 | 10_429 | 20_003 => RejectReason::RateLimited,
        10_001
        | 10_029
        | 110_003
        | 110_017
        | 110_072
        | 110_094
        | 170_121
        | 170_130
        | 170_132..=170_137
        | 170_140
        | 170_141
        | 170_193
        | 170_194 => RejectReason::InvalidOrder,
        _ => RejectReason::Other,
    }
}

/// The category a protocol trades on Bybit.
fn category_of(protocol: Protocol) -> &'static str {
    if protocol == Protocol::BybitSpot { "spot" } else { "linear" }
}

/// Writes the `order.create` frame of `order` (on `inst`, in `category`) with request
/// timestamp `timestamp_ms`: the per-order encode, no allocation beyond `out`'s capacity.
pub fn write_create(
    out: &mut Vec<u8>,
    category: &str,
    inst: &SessionInstrument,
    order: &NewOrder,
    timestamp_ms: u64,
    recv_window_ms: u64,
) {
    out.clear();
    out.extend_from_slice(b"{\"reqId\":\"");
    write_client_id(out, order.client_id);
    write_header(out, timestamp_ms, recv_window_ms);
    out.extend_from_slice(b",\"op\":\"order.create\",\"args\":[{\"category\":\"");
    out.extend_from_slice(category.as_bytes());
    out.extend_from_slice(b"\",\"symbol\":\"");
    out.extend_from_slice(inst.symbol.as_bytes());
    out.extend_from_slice(match order.side {
        Side::Buy => &b"\",\"side\":\"Buy\""[..],
        Side::Sell => &b"\",\"side\":\"Sell\""[..],
    });
    out.extend_from_slice(b",\"orderType\":\"Limit\",\"qty\":\"");
    crate::order::write_fixed(out, order.qty.0, inst.qty_scale);
    out.extend_from_slice(b"\",\"price\":\"");
    crate::order::write_fixed(out, order.px.0, inst.price_scale);
    out.extend_from_slice(match order.tif {
        TimeInForce::Gtc => b"\",\"timeInForce\":\"GTC\",\"orderLinkId\":\"",
        TimeInForce::Ioc => b"\",\"timeInForce\":\"IOC\",\"orderLinkId\":\"",
    });
    write_client_id(out, order.client_id);
    out.push(b'"');
    if order.reduce_only {
        out.extend_from_slice(b",\"reduceOnly\":true");
    }
    out.extend_from_slice(b"}]}");
}

/// Writes the `order.cancel` frame of the order `client_id` on `inst`; `seq` makes the reqId
/// unique (Bybit refuses a repeated reqId with 20006).
pub fn write_cancel(
    out: &mut Vec<u8>,
    category: &str,
    inst: &SessionInstrument,
    client_id: ClientOrderId,
    seq: u64,
    timestamp_ms: u64,
    recv_window_ms: u64,
) {
    out.clear();
    out.extend_from_slice(b"{\"reqId\":\"cancel-");
    write_u64(out, seq);
    out.push(b'-');
    write_client_id(out, client_id);
    write_header(out, timestamp_ms, recv_window_ms);
    out.extend_from_slice(b",\"op\":\"order.cancel\",\"args\":[{\"category\":\"");
    out.extend_from_slice(category.as_bytes());
    out.extend_from_slice(b"\",\"symbol\":\"");
    out.extend_from_slice(inst.symbol.as_bytes());
    out.extend_from_slice(b"\",\"orderLinkId\":\"");
    write_client_id(out, client_id);
    out.extend_from_slice(b"\"}]}");
}

fn write_header(out: &mut Vec<u8>, timestamp_ms: u64, recv_window_ms: u64) {
    out.extend_from_slice(b"\",\"header\":{\"X-BAPI-TIMESTAMP\":\"");
    write_u64(out, timestamp_ms);
    out.extend_from_slice(b"\",\"X-BAPI-RECV-WINDOW\":\"");
    write_u64(out, recv_window_ms);
    out.extend_from_slice(b"\"}");
}

/// A JSON integer (possibly negative).
fn parse_i64(v: Value<'_>, field: &'static str) -> Result<i64, DecodeError> {
    match v {
        Value::Num(n) => match n.strip_prefix(b"-") {
            Some(abs) => crate::json::parse_u64(abs, field).map(|a| -(a as i64)),
            None => crate::json::parse_u64(n, field).map(|a| a as i64),
        },
        _ => Err(DecodeError::WrongType(field)),
    }
}

/// A string of digits (Bybit writes times and limits as strings).
fn str_u64(v: Value<'_>, field: &'static str) -> Result<u64, DecodeError> {
    crate::json::parse_u64(v.str(field)?, field)
}

fn parse_side(s: &[u8]) -> Option<Side> {
    match s {
        b"Buy" => Some(Side::Buy),
        b"Sell" => Some(Side::Sell),
        _ => None,
    }
}

/// One `order` topic row, as read.
#[derive(Default)]
struct OrderRow<'a> {
    link: &'a [u8],
    symbol: &'a [u8],
    side: &'a [u8],
    status: &'a [u8],
    cancel_type: &'a [u8],
    updated: u64,
}

/// One `execution` topic row, as read.
#[derive(Default)]
struct ExecRow<'a> {
    exec_id: &'a [u8],
    link: &'a [u8],
    symbol: &'a [u8],
    side: &'a [u8],
    px: &'a [u8],
    qty: &'a [u8],
    fee: &'a [u8],
    leaves: &'a [u8],
    exec_type: &'a [u8],
    maker: bool,
    time: u64,
}

impl BybitSession {
    /// A session for `cfg`'s venue; it connects on its first `maintain`.
    ///
    /// # Errors
    /// An [`OrderError`] when the credentials do not suit the venue (Bybit signs with HMAC).
    pub fn new(cfg: SessionConfig) -> Result<Self, OrderError> {
        let SecretKey::Hmac(secret) = &cfg.credentials.key else {
            return Err(OrderError::Venue { request: "auth", code: 0, msg: "Bybit keys are HMAC keys".into() });
        };
        let signer = HmacSigner::new(secret);
        let max_id = cfg.instruments.iter().map(|i| i.id.index() + 1).max().unwrap_or(0);
        let mut by_id = vec![None; max_id];
        for (k, i) in cfg.instruments.iter().enumerate() {
            by_id[i.id.index()] = Some(k);
        }
        let category = category_of(cfg.protocol);
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1;
        Ok(Self {
            cfg,
            stats: SessionStats::default(),
            category,
            signer,
            by_id,
            trade: Conn::new(),
            private: Conn::new(),
            out: Vec::with_capacity(1024),
            rbuf: Vec::with_capacity(64 * 1024),
            open: HashMap::with_capacity(OPEN_CAPACITY),
            scratch: Vec::with_capacity(OPEN_CAPACITY),
            seen: HashSet::with_capacity(SEEN_CAPACITY),
            seen_order: VecDeque::with_capacity(SEEN_CAPACITY),
            cancel_seq: 0,
            cancel_pending: false,
            jitter: seed,
        })
    }

    /// Tracks an order placed before this session existed (rebuilt from the journal after a
    /// restart), so its acks, fills and end are attributed and a reconnect cancels it.
    /// `acked` says whether the engine already saw it accepted.
    pub fn track_open(&mut self, client_id: ClientOrderId, instrument: InstrumentId, side: Side, acked: bool) {
        self.open.insert(client_id.0, OpenOrder { instrument, side, acked });
    }

    /// The Bybit category its orders go to (`spot` or `linear`).
    pub fn category(&self) -> &'static str {
        self.category
    }

    fn instrument(&self, id: InstrumentId) -> Option<&SessionInstrument> {
        self.by_id.get(id.index()).copied().flatten().map(|k| &self.cfg.instruments[k])
    }

    fn by_symbol(&self, symbol: &[u8]) -> Option<&SessionInstrument> {
        self.cfg.instruments.iter().find(|i| i.symbol.as_bytes() == symbol)
    }

    /// Venue time now, ms: the local wall clock plus the latest offset estimate.
    fn venue_ms(&self) -> u64 {
        wall_ms().saturating_add_signed(self.stats.clock_offset_ms)
    }

    fn conn(&mut self, stream: Stream) -> &mut Conn {
        match stream {
            Stream::Trade => &mut self.trade,
            Stream::Private => &mut self.private,
        }
    }

    fn next_jitter(&mut self) -> u64 {
        self.jitter ^= self.jitter << 13;
        self.jitter ^= self.jitter >> 7;
        self.jitter ^= self.jitter << 17;
        self.jitter
    }

    /// Drops a connection: it is retried after the back-off.
    fn drop_conn(&mut self, stream: Stream, now_ns: u64) {
        let jitter = self.next_jitter();
        let c = self.conn(stream);
        if let Some(ws) = c.ws.take() {
            c.dead = Some(ws);
        }
        let was_up = c.state != State::Down;
        c.state = State::Down;
        c.retry_at_ns = now_ns + c.backoff_ns + jitter % (c.backoff_ns / 2 + 1);
        c.backoff_ns = (c.backoff_ns * 2).min(BACKOFF_MAX_NS);
        if was_up {
            self.stats.disconnects += 1;
        }
    }

    fn open_conn(&mut self, stream: Stream, now_ns: u64, registry: &mio::Registry, token: mio::Token) {
        let path = if stream == Stream::Trade { TRADE_PATH } else { PRIVATE_PATH };
        let url = format!("{}{path}", self.cfg.ws_url);
        let mut ws = match WsConn::connect(&url, CONNECT_TIMEOUT) {
            Ok(ws) => ws,
            Err(_) => return self.drop_conn(stream, now_ns),
        };
        let fd = ws.raw_fd();
        if registry.register(&mut SourceFd(&fd), token, mio::Interest::READABLE).is_err() {
            return self.drop_conn(stream, now_ns);
        }
        let expires = self.venue_ms() + AUTH_EXPIRY_MS;
        let frame = sign::ws_auth_message(&self.cfg.credentials.api_key, &self.signer, expires, None);
        let sent = ws.send_text(&frame);
        let c = self.conn(stream);
        c.ws = Some(ws);
        c.state = State::Authing;
        c.since_ns = now_ns;
        c.last_rx_ns = now_ns;
        c.last_ping_ns = now_ns;
        if sent.is_err() {
            self.drop_conn(stream, now_ns);
        }
    }

    fn keep_alive(&mut self, stream: Stream, now_ns: u64) {
        let c = self.conn(stream);
        let Some(ws) = c.ws.as_mut() else { return };
        let stale = now_ns.saturating_sub(c.last_rx_ns) > IDLE_TIMEOUT_NS
            || (c.state != State::Ready && now_ns.saturating_sub(c.since_ns) > LOGIN_TIMEOUT_NS);
        let mut broken = stale;
        if !broken && now_ns.saturating_sub(c.last_ping_ns) >= PING_EVERY_NS {
            c.last_ping_ns = now_ns;
            broken = ws.send_static(BYBIT_PING).is_err();
        }
        if !broken {
            broken = ws.flush().is_err();
        }
        if broken {
            self.drop_conn(stream, now_ns);
        }
    }

    /// Once both connections are up again after either was lost: cancels every order still
    /// open from before (its events may have been missed; the private stream is subscribed
    /// again first, so the cancels' own events are not).
    fn after_login(&mut self) {
        if !self.cancel_pending || !self.ready() {
            return;
        }
        self.cancel_pending = false;
        if self.open.is_empty() {
            return;
        }
        self.scratch.clear();
        self.scratch.extend(self.open.iter().map(|(id, o)| (*id, o.instrument)));
        self.stats.cancel_alls += 1;
        for k in 0..self.scratch.len() {
            let (id, instrument) = self.scratch[k];
            let _ = self.write_cancel_frame(ClientOrderId(id), instrument);
        }
    }

    fn write_cancel_frame(&mut self, client_id: ClientOrderId, instrument: InstrumentId) -> Result<(), GatewayError> {
        let ts = self.venue_ms();
        let Some(k) = self.by_id.get(instrument.index()).copied().flatten() else {
            return Err(GatewayError::NotServed);
        };
        self.cancel_seq += 1;
        let inst = &self.cfg.instruments[k];
        write_cancel(&mut self.out, self.category, inst, client_id, self.cancel_seq, ts, self.cfg.recv_window_ms);
        let Some(ws) = self.trade.ws.as_mut() else { return Err(GatewayError::Disconnected) };
        ws.send_raw_text(&self.out).map_err(|_| GatewayError::Disconnected)?;
        self.stats.cancels_sent += 1;
        Ok(())
    }

    fn event(
        &self,
        client_id: u64,
        instrument: InstrumentId,
        side: Side,
        ts: u64,
        recv_ns: u64,
        kind: OrderEventKind,
    ) -> OrderEvent {
        OrderEvent { client_id: ClientOrderId(client_id), instrument, side, exch_ts_ms: ts, recv_ns, kind }
    }

    /// Handles one text frame of `stream`: the decode step of `poll`, public so tests and
    /// tools can feed recorded frames. Bad frames are counted (`malformed`), never fatal.
    pub fn on_frame(&mut self, stream: Stream, frame: &[u8], recv_ns: u64, out: &mut dyn FnMut(OrderEvent)) {
        self.conn(stream).last_rx_ns = recv_ns;
        let result = match stream {
            Stream::Trade => self.on_trade_frame(frame, recv_ns, out),
            Stream::Private => self.on_private_frame(frame, recv_ns, out),
        };
        if result.is_err() {
            self.stats.malformed += 1;
        }
    }

    fn on_header(&mut self, header: &[u8], recv_ns: u64) -> Result<(), DecodeError> {
        let _ = recv_ns;
        let mut m = Members::new(header);
        let (mut limit, mut left) = (None, None);
        while let Some(k) = m.next_key()? {
            let v = m.value()?;
            match k {
                b"Timenow" => {
                    let venue = str_u64(v, "Timenow")?;
                    self.stats.clock_offset_ms = venue as i64 - wall_ms() as i64;
                }
                b"X-Bapi-Limit" => limit = Some(str_u64(v, "X-Bapi-Limit")?),
                b"X-Bapi-Limit-Status" => left = Some(str_u64(v, "X-Bapi-Limit-Status")?),
                _ => {}
            }
        }
        if let (Some(limit), Some(left)) = (limit, left) {
            self.stats.rate_limit = limit;
            self.stats.rate_used = limit.saturating_sub(left);
        }
        Ok(())
    }

    fn on_trade_frame(
        &mut self,
        frame: &[u8],
        recv_ns: u64,
        out: &mut dyn FnMut(OrderEvent),
    ) -> Result<(), DecodeError> {
        let mut m = Members::new(frame);
        let (mut op, mut req_id, mut ret_code, mut data, mut header) = (&b""[..], &b""[..], None, None, None);
        while let Some(k) = m.next_key()? {
            let v = m.value()?;
            match k {
                b"op" => op = v.str("op")?,
                b"reqId" => req_id = v.str("reqId")?,
                b"retCode" => ret_code = Some(parse_i64(v, "retCode")?),
                b"data" => data = Some(v),
                b"header" => header = Some(v),
                _ => {}
            }
        }
        if let Some(Value::Object(h)) = header {
            self.on_header(h, recv_ns)?;
        }
        let code = ret_code.ok_or(DecodeError::MissingField("retCode"))?;
        match op {
            b"auth" => {
                if code == 0 {
                    self.on_login(Stream::Trade, recv_ns);
                } else {
                    self.drop_conn(Stream::Trade, recv_ns);
                }
            }
            b"pong" => {
                if let Some(Value::Array(a)) = data {
                    let mut e = Elements::new(a);
                    if let Some(v) = e.next_value()? {
                        let venue = str_u64(v, "data")?;
                        self.stats.clock_offset_ms = venue as i64 - wall_ms() as i64;
                    }
                }
            }
            b"order.create" => {
                let id = parse_client_id(req_id).ok_or(DecodeError::WrongType("reqId"))?;
                self.on_create_ack(id.0, code, recv_ns, out);
            }
            b"order.cancel" => {
                if code != 0 {
                    // The venue does not hold it open: nothing left to cancel or to track (its
                    // end, if any, comes from the order stream or the next reconcile).
                    if matches!(code, 110_001 | 110_008 | 170_213)
                        && let Some(id) =
                            req_id.iter().rposition(|&b| b == b'-').and_then(|i| parse_client_id(&req_id[i + 1..]))
                    {
                        self.open.remove(&id.0);
                    }
                    self.stats.rejects += 1;
                    if reject_reason(code) == RejectReason::RateLimited {
                        self.stats.rate_limited += 1;
                    }
                }
            }
            _ => self.stats.unknown += 1,
        }
        Ok(())
    }

    fn on_create_ack(&mut self, id: u64, code: i64, recv_ns: u64, out: &mut dyn FnMut(OrderEvent)) {
        let Some(o) = self.open.get_mut(&id) else {
            // Already ended by the order stream (or not ours any more).
            return;
        };
        if code == 0 {
            if !o.acked {
                o.acked = true;
                let o = *o;
                self.stats.acks += 1;
                out(self.event(id, o.instrument, o.side, 0, recv_ns, OrderEventKind::Accepted));
            }
        } else {
            let o = *o;
            self.open.remove(&id);
            let reason = reject_reason(code);
            if reason == RejectReason::RateLimited {
                self.stats.rate_limited += 1;
            }
            self.stats.rejects += 1;
            out(self.event(id, o.instrument, o.side, 0, recv_ns, OrderEventKind::Rejected(reason)));
        }
    }

    fn on_login(&mut self, stream: Stream, now_ns: u64) {
        let c = self.conn(stream);
        c.backoff_ns = BACKOFF_MIN_NS;
        match stream {
            Stream::Trade => {
                c.state = State::Ready;
                let reconnect = c.was_ready;
                c.was_ready = true;
                self.stats.connects += 1;
                self.cancel_pending |= reconnect;
                self.after_login();
            }
            Stream::Private => {
                c.state = State::Subscribing;
                c.since_ns = now_ns;
                let sent = c.ws.as_mut().map(|ws| ws.send_static(SUBSCRIBE));
                if !matches!(sent, Some(Ok(()))) {
                    self.drop_conn(stream, now_ns);
                }
            }
        }
    }

    fn on_private_frame(
        &mut self,
        frame: &[u8],
        recv_ns: u64,
        out: &mut dyn FnMut(OrderEvent),
    ) -> Result<(), DecodeError> {
        let mut m = Members::new(frame);
        let (mut op, mut topic, mut success, mut data, mut created) = (&b""[..], &b""[..], None, None, 0);
        while let Some(k) = m.next_key()? {
            let v = m.value()?;
            match k {
                b"op" => op = v.str("op")?,
                b"topic" => topic = v.str("topic")?,
                b"success" => success = Some(v.bool("success")?),
                b"data" => data = Some(v),
                b"creationTime" => created = v.u64("creationTime")?,
                _ => {}
            }
        }
        match (op, topic) {
            (b"auth", _) => {
                if success == Some(true) {
                    self.on_login(Stream::Private, recv_ns);
                } else {
                    self.drop_conn(Stream::Private, recv_ns);
                }
            }
            (b"subscribe", _) => {
                if success == Some(true) {
                    self.private.state = State::Ready;
                    self.cancel_pending |= self.private.was_ready;
                    self.private.was_ready = true;
                    self.stats.connects += 1;
                    self.after_login();
                } else {
                    self.drop_conn(Stream::Private, recv_ns);
                }
            }
            (b"pong" | b"ping", _) => {}
            (_, b"order") => {
                let Some(Value::Array(rows)) = data else { return Err(DecodeError::MissingField("data")) };
                let mut e = Elements::new(rows);
                while let Some(v) = e.next_value()? {
                    let Value::Object(o) = v else { return Err(DecodeError::WrongType("data")) };
                    if self.on_order_row(o, created, recv_ns, out).is_err() {
                        self.stats.malformed += 1;
                    }
                }
            }
            (_, b"execution") => {
                let Some(Value::Array(rows)) = data else { return Err(DecodeError::MissingField("data")) };
                let mut e = Elements::new(rows);
                while let Some(v) = e.next_value()? {
                    let Value::Object(o) = v else { return Err(DecodeError::WrongType("data")) };
                    if self.on_exec_row(o, created, recv_ns, out).is_err() {
                        self.stats.malformed += 1;
                    }
                }
            }
            _ => self.stats.unknown += 1,
        }
        Ok(())
    }

    fn on_order_row(
        &mut self,
        row: &[u8],
        created: u64,
        recv_ns: u64,
        out: &mut dyn FnMut(OrderEvent),
    ) -> Result<(), DecodeError> {
        let mut r = OrderRow::default();
        let mut m = Members::new(row);
        while let Some(k) = m.next_key()? {
            let v = m.value()?;
            match k {
                b"orderLinkId" => r.link = v.str("orderLinkId")?,
                b"symbol" => r.symbol = v.str("symbol")?,
                b"side" => r.side = v.str("side")?,
                b"orderStatus" => r.status = v.str("orderStatus")?,
                b"cancelType" => r.cancel_type = v.str("cancelType")?,
                b"updatedTime" => r.updated = str_u64(v, "updatedTime")?,
                _ => {}
            }
        }
        let Some(id) = parse_client_id(r.link) else {
            self.stats.unknown += 1;
            return Ok(());
        };
        let inst = self.by_symbol(r.symbol).ok_or(DecodeError::WrongType("symbol"))?.id;
        let side = parse_side(r.side).ok_or(DecodeError::WrongType("side"))?;
        let ts = if r.updated != 0 { r.updated } else { created };
        let ev = |kind| OrderEvent { client_id: id, instrument: inst, side, exch_ts_ms: ts, recv_ns, kind };
        let end = match r.status {
            b"New" | b"PartiallyFilled" | b"Filled" | b"Untriggered" | b"Triggered" => None,
            b"Cancelled" | b"PartiallyFilledCanceled" | b"Deactivated" => {
                Some(if r.cancel_type == b"CancelByUser" { OrderEventKind::Cancelled } else { OrderEventKind::Expired })
            }
            b"Rejected" => Some(OrderEventKind::Rejected(RejectReason::Other)),
            _ => return Err(DecodeError::WrongType("orderStatus")),
        };
        let known = self.open.get_mut(&id.0);
        let acked = match known {
            Some(o) => std::mem::replace(&mut o.acked, true),
            // An order this session no longer tracks (filled, or placed before a restart): only
            // its end is reported; the OMS ignores ids it does not hold.
            None => true,
        };
        if !acked && !matches!(end, Some(OrderEventKind::Rejected(_))) {
            self.stats.acks += 1;
            out(ev(OrderEventKind::Accepted));
        }
        if r.status == b"Filled" {
            self.open.remove(&id.0);
        }
        if let Some(kind) = end {
            self.open.remove(&id.0);
            if matches!(kind, OrderEventKind::Rejected(_)) {
                self.stats.rejects += 1;
            }
            out(ev(kind));
        }
        Ok(())
    }

    fn on_exec_row(
        &mut self,
        row: &[u8],
        created: u64,
        recv_ns: u64,
        out: &mut dyn FnMut(OrderEvent),
    ) -> Result<(), DecodeError> {
        let mut r = ExecRow::default();
        let mut m = Members::new(row);
        while let Some(k) = m.next_key()? {
            let v = m.value()?;
            match k {
                b"execId" => r.exec_id = v.str("execId")?,
                b"orderLinkId" => r.link = v.str("orderLinkId")?,
                b"symbol" => r.symbol = v.str("symbol")?,
                b"side" => r.side = v.str("side")?,
                b"execPrice" => r.px = v.str("execPrice")?,
                b"execQty" => r.qty = v.str("execQty")?,
                b"execFee" => r.fee = v.str("execFee")?,
                b"leavesQty" => r.leaves = v.str("leavesQty")?,
                b"execType" => r.exec_type = v.str("execType")?,
                b"isMaker" => r.maker = v.bool("isMaker")?,
                b"execTime" => r.time = str_u64(v, "execTime")?,
                _ => {}
            }
        }
        if r.exec_type != b"Trade" {
            self.stats.unknown += 1;
            return Ok(());
        }
        let Some(id) = parse_client_id(r.link) else {
            self.stats.unknown += 1;
            return Ok(());
        };
        let fill = self.parse_fill(&r)?;
        let (inst, side) = fill.1;
        if r.exec_id.is_empty() {
            return Err(DecodeError::MissingField("execId"));
        }
        let trade_id = exec_id_hash(r.exec_id);
        if !self.remember(trade_id) {
            self.stats.duplicate_fills += 1;
            return Ok(());
        }
        self.stats.fills += 1;
        let ts = if r.time != 0 { r.time } else { created };
        if let Some(o) = self.open.get_mut(&id.0)
            && !o.acked
        {
            o.acked = true;
            self.stats.acks += 1;
            out(OrderEvent {
                client_id: id,
                instrument: inst,
                side,
                exch_ts_ms: ts,
                recv_ns,
                kind: OrderEventKind::Accepted,
            });
        }
        let fill = Fill { trade_id, ..fill.0 };
        out(OrderEvent {
            client_id: id,
            instrument: inst,
            side,
            exch_ts_ms: ts,
            recv_ns,
            kind: OrderEventKind::Filled(fill),
        });
        Ok(())
    }

    fn parse_fill(&self, r: &ExecRow<'_>) -> Result<(Fill, (InstrumentId, Side)), DecodeError> {
        let inst = self.by_symbol(r.symbol).ok_or(DecodeError::WrongType("symbol"))?;
        let side = parse_side(r.side).ok_or(DecodeError::WrongType("side"))?;
        let px = Px::parse(r.px, inst.price_scale).map_err(|_| DecodeError::WrongType("execPrice"))?;
        let qty = Qty::parse(r.qty, inst.qty_scale).map_err(|_| DecodeError::WrongType("execQty"))?;
        let leaves = if r.leaves.is_empty() {
            Qty(0)
        } else {
            Qty::parse(r.leaves, inst.qty_scale).map_err(|_| DecodeError::WrongType("leavesQty"))?
        };
        let fee = if r.fee.is_empty() {
            Decimal::ZERO
        } else {
            let text = std::str::from_utf8(r.fee).map_err(|_| DecodeError::WrongType("execFee"))?;
            Decimal::from_str(text).map_err(|_| DecodeError::WrongType("execFee"))?
        };
        let fill = Fill { px, qty, leaves_qty: leaves, fee, taker: !r.maker, trade_id: 0 };
        Ok((fill, (inst.id, side)))
    }

    /// Records a trade id; false when it was seen already.
    fn remember(&mut self, trade_id: u64) -> bool {
        if !self.seen.insert(trade_id) {
            return false;
        }
        if self.seen_order.len() == SEEN_CAPACITY
            && let Some(old) = self.seen_order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen_order.push_back(trade_id);
        true
    }

    fn read_conn(&mut self, stream: Stream, now_ns: u64, out: &mut dyn FnMut(OrderEvent)) {
        let mut buf = std::mem::take(&mut self.rbuf);
        while let Some(ws) = self.conn(stream).ws.as_mut() {
            match ws.read(&mut buf) {
                Ok(Read::Data(_)) => {
                    let frame = std::mem::take(&mut buf);
                    self.on_frame(stream, &frame, now_ns, out);
                    buf = frame;
                }
                Ok(Read::Control) => self.conn(stream).last_rx_ns = now_ns,
                Ok(Read::WouldBlock) => break,
                Err(_) => {
                    self.drop_conn(stream, now_ns);
                    break;
                }
            }
        }
        self.rbuf = buf;
    }

    fn signed_get(
        &self,
        agent: &ureq::Agent,
        request: &'static str,
        path: &str,
        query: &str,
    ) -> Result<serde_json::Value, OrderError> {
        let ts = self.venue_ms();
        let mut sig = [0u8; HEX_SIG_LEN];
        let window = u32::try_from(self.cfg.recv_window_ms).unwrap_or(u32::MAX);
        let signature =
            sign::rest_signature_into(&self.signer, ts, &self.cfg.credentials.api_key, window, query, &mut sig);
        let url = format!("{}{path}?{query}", self.cfg.rest_url);
        let mut resp = agent
            .get(&url)
            .header(sign::HEADER_API_KEY, self.cfg.credentials.api_key.expose())
            .header(sign::HEADER_TIMESTAMP, ts.to_string())
            .header(sign::HEADER_RECV_WINDOW, window.to_string())
            .header(sign::HEADER_SIGN, signature)
            .call()
            .map_err(|e| OrderError::Http(format!("GET {path}: {e}")))?;
        let body = resp.body_mut().read_to_vec().map_err(|e| OrderError::Http(format!("GET {path}: {e}")))?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| OrderError::Malformed { request, detail: e.to_string() })?;
        let code =
            v["retCode"].as_i64().ok_or_else(|| OrderError::Malformed { request, detail: "no retCode".into() })?;
        if code != 0 {
            return Err(OrderError::Venue { request, code, msg: v["retMsg"].as_str().unwrap_or_default().to_owned() });
        }
        Ok(v)
    }
}

/// A string member of a REST row.
fn field<'a>(row: &'a serde_json::Value, name: &str, request: &'static str) -> Result<&'a str, OrderError> {
    row[name].as_str().ok_or_else(|| OrderError::Malformed { request, detail: format!("row without {name}") })
}

fn fixed_err(request: &'static str, what: &str) -> OrderError {
    OrderError::Malformed { request, detail: format!("bad {what}") }
}

impl OrderSession for BybitSession {
    fn gateway_name(&self) -> &'static str {
        "bybit-v5-ws"
    }

    fn venue(&self) -> VenueId {
        self.cfg.venue
    }

    fn maintain(&mut self, now_ns: u64, registry: &mio::Registry, token: mio::Token) {
        for stream in [Stream::Trade, Stream::Private] {
            let c = self.conn(stream);
            if let Some(dead) = c.dead.take() {
                let _ = registry.deregister(&mut SourceFd(&dead.raw_fd()));
            }
            if c.state == State::Down {
                if now_ns >= c.retry_at_ns {
                    self.open_conn(stream, now_ns, registry, token);
                }
            } else {
                self.keep_alive(stream, now_ns);
            }
            let c = self.conn(stream);
            if let Some(dead) = c.dead.take() {
                let _ = registry.deregister(&mut SourceFd(&dead.raw_fd()));
            }
        }
    }

    fn ready(&self) -> bool {
        self.trade.state == State::Ready && self.private.state == State::Ready
    }

    fn send(&mut self, cmd: &OrderCommand, now_ns: u64) -> Result<(), GatewayError> {
        match cmd {
            OrderCommand::New { order, .. } => {
                let k = self.by_id.get(order.instrument.index()).copied().flatten().ok_or(GatewayError::NotServed)?;
                if order.venue != self.cfg.venue {
                    return Err(GatewayError::NotServed);
                }
                if !self.ready() {
                    self.stats.not_ready += 1;
                    return Err(GatewayError::Disconnected);
                }
                let ts = self.venue_ms();
                write_create(
                    &mut self.out,
                    self.category,
                    &self.cfg.instruments[k],
                    order,
                    ts,
                    self.cfg.recv_window_ms,
                );
                let Some(ws) = self.trade.ws.as_mut() else { return Err(GatewayError::Disconnected) };
                if ws.send_raw_text(&self.out).is_err() {
                    self.drop_conn(Stream::Trade, now_ns);
                    return Err(GatewayError::Disconnected);
                }
                self.open.insert(
                    order.client_id.0,
                    OpenOrder { instrument: order.instrument, side: order.side, acked: false },
                );
                self.stats.orders_sent += 1;
                Ok(())
            }
            OrderCommand::Cancel { client_id, instrument, venue } => {
                if *venue != self.cfg.venue || self.instrument(*instrument).is_none() {
                    return Err(GatewayError::NotServed);
                }
                if !self.ready() {
                    self.stats.not_ready += 1;
                    return Err(GatewayError::Disconnected);
                }
                let r = self.write_cancel_frame(*client_id, *instrument);
                if r.is_err() {
                    self.drop_conn(Stream::Trade, now_ns);
                }
                r
            }
            OrderCommand::Resync { .. } => Err(GatewayError::NotServed),
        }
    }

    fn poll(&mut self, now_ns: u64, out: &mut dyn FnMut(OrderEvent)) {
        self.read_conn(Stream::Trade, now_ns, out);
        self.read_conn(Stream::Private, now_ns, out);
    }

    fn stats(&self) -> SessionStats {
        self.stats
    }

    fn venue_state(&mut self, timeout: Duration) -> Result<VenueState, OrderError> {
        let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(timeout)).build().into();
        let mut state = VenueState::default();
        let linear = self.category == "linear";
        let mut positions = Vec::new();
        for inst in &self.cfg.instruments {
            let query = format!("category={}&symbol={}", self.category, inst.symbol);
            let orders = self.signed_get(&agent, "/v5/order/realtime", "/v5/order/realtime", &query)?;
            for row in orders["result"]["list"].as_array().into_iter().flatten() {
                let Some(client_id) = parse_client_id(field(row, "orderLinkId", "/v5/order/realtime")?.as_bytes())
                else {
                    continue;
                };
                let leaves = field(row, "leavesQty", "/v5/order/realtime")?;
                let open_qty = Qty::parse(leaves.as_bytes(), inst.qty_scale)
                    .map_err(|_| fixed_err("/v5/order/realtime", "leavesQty"))?;
                state.open_orders.push(VenueOrder { client_id, instrument: inst.id, venue: self.cfg.venue, open_qty });
            }
            let query = format!("category={}&symbol={}&limit=100", self.category, inst.symbol);
            let fills = self.signed_get(&agent, "/v5/execution/list", "/v5/execution/list", &query)?;
            let req = "/v5/execution/list";
            for row in fills["result"]["list"].as_array().into_iter().flatten() {
                if row["execType"].as_str().is_some_and(|t| t != "Trade") {
                    continue;
                }
                let Some(client_id) = parse_client_id(field(row, "orderLinkId", req)?.as_bytes()) else { continue };
                let side = parse_side(field(row, "side", req)?.as_bytes()).ok_or_else(|| fixed_err(req, "side"))?;
                let px = Px::parse(field(row, "execPrice", req)?.as_bytes(), inst.price_scale)
                    .map_err(|_| fixed_err(req, "execPrice"))?;
                let qty = Qty::parse(field(row, "execQty", req)?.as_bytes(), inst.qty_scale)
                    .map_err(|_| fixed_err(req, "execQty"))?;
                let leaves_qty = Qty::parse(field(row, "leavesQty", req)?.as_bytes(), inst.qty_scale)
                    .map_err(|_| fixed_err(req, "leavesQty"))?;
                let fee = Decimal::from_str(field(row, "execFee", req)?).map_err(|_| fixed_err(req, "execFee"))?;
                let taker = !row["isMaker"].as_bool().ok_or_else(|| fixed_err(req, "isMaker"))?;
                let trade_id = exec_id_hash(field(row, "execId", req)?.as_bytes());
                state.fills.push(VenueFill {
                    client_id,
                    instrument: inst.id,
                    side,
                    fill: Fill { px, qty, leaves_qty, fee, taker, trade_id },
                });
            }
            if linear {
                let query = format!("category=linear&symbol={}", inst.symbol);
                let req = "/v5/position/list";
                let pos = self.signed_get(&agent, req, req, &query)?;
                let mut net = Decimal::ZERO;
                for row in pos["result"]["list"].as_array().into_iter().flatten() {
                    let size = Decimal::from_str(field(row, "size", req)?).map_err(|_| fixed_err(req, "size"))?;
                    match field(row, "side", req)? {
                        "Buy" => net += size,
                        "Sell" => net -= size,
                        _ => {}
                    }
                }
                positions.push((inst.id, net));
            }
        }
        if linear {
            state.positions = Some(positions);
        }
        Ok(state)
    }
}
