//! OKX v5 order entry: the private websocket (`login`, `order`, `cancel-order`, the `orders`
//! channel), and signed REST queries for start-up reconciliation.
//!
//! One connection to `{ws_url}/ws/v5/private` carries everything: the session logs in
//! (base64 HMAC of `timestamp + "GET/users/self/verify"`, the timestamp in Unix seconds on the
//! venue's clock as far as it is known, valid 30 s), subscribes the `orders` channel of every
//! instrument type, and is ready once both are acknowledged. Orders and cancels are encoded
//! into a buffer the session owns ([`codec::encode_order`]) and written as raw frames; answers
//! and pushes become [`OrderEvent`]s through [`codec::PrivateDecoder`].
//!
//! A quiet connection is pinged with the text `ping` after 25 s and dropped when no `pong`
//! follows; a lost connection is reopened with jittered exponential back-off, and after a
//! reconnect every order still open from before is cancelled (`cancel-order` each: OKX's own
//! dead man's switch, `cancel-all-after`, is REST-only), counted in `cancel_alls`.

pub mod codec;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbar_engine::event::{ClientOrderId, Fill, OrderCommand, OrderEvent, Side};
use crossbar_engine::fixed::{Px, Qty, parse_mantissa};
use crossbar_engine::gateway::GatewayError;
use crossbar_engine::instrument::VenueId;
use crossbar_engine::journal::{VenueFill, VenueOrder, VenueState};
use mio::Interest;
use mio::unix::SourceFd;
use rust_decimal::Decimal;

use self::codec::{Control, ORDERS_SUBSCRIBE, PrivateDecoder, encode_cancel, encode_order, iso8601_ms};
use crate::auth::okx::{HEADER_API_KEY, HEADER_PASSPHRASE, HEADER_SIGN, HEADER_TIMESTAMP, HttpMethod};
use crate::auth::{HMAC_BASE64_LEN, HmacSigner, SecretString};
use crate::order::{OrderError, OrderSession, SecretKey, SessionConfig, SessionStats, parse_client_id};
use crate::venue::OKX_PING;
use crate::ws::{Read, WsConn};

/// The private websocket's path under the configured base URL.
pub const PRIVATE_WS_PATH: &str = "/ws/v5/private";

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;
/// Quiet time after which the session pings.
const PING_AFTER_NS: u64 = 25 * S;
/// How long a `pong` (or any frame) may take after a ping.
const PONG_TIMEOUT_NS: u64 = 10 * S;
/// How long login plus subscribe may take.
const LOGIN_TIMEOUT_NS: u64 = 10 * S;
/// First and largest reconnect delays.
const BACKOFF_MIN_NS: u64 = 250 * MS;
const BACKOFF_MAX_NS: u64 = 30 * S;
/// Connect and handshake timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where the connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No connection; the next attempt is due at `next_attempt_ns`.
    Down,
    /// `login` sent at the given time.
    LoggingIn(u64),
    /// `subscribe` sent at the given time.
    Subscribing(u64),
    /// Orders can be written.
    Ready,
}

/// One OKX account's order-entry session.
pub struct OkxSession {
    cfg: SessionConfig,
    signer: HmacSigner,
    passphrase: SecretString,
    stats: SessionStats,
    decoder: PrivateDecoder,
    conn: Option<WsConn>,
    phase: Phase,
    next_attempt_ns: u64,
    backoff_ns: u64,
    jitter: u64,
    last_rx_ns: u64,
    ping_sent_ns: Option<u64>,
    /// Cancel what is open once ready again (set when a connection is lost).
    cancel_on_ready: bool,
    /// The last `error` code the venue sent (a refused login), 0 when none.
    last_error: u64,
    /// A write failed outside `maintain`: the next `maintain` drops the connection.
    broken: bool,
    out: Vec<u8>,
    rx: Vec<u8>,
    cancels: Vec<(ClientOrderId, crossbar_engine::instrument::InstrumentId)>,
}

impl std::fmt::Debug for OkxSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OkxSession")
            .field("venue", &self.cfg.venue_name)
            .field("phase", &self.phase)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Local wall clock, Unix ms.
fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl OkxSession {
    /// A session for `cfg`'s venue; it connects on its first `maintain`.
    ///
    /// # Errors
    /// [`OrderError::Malformed`] naming `credentials` when the key is not an HMAC secret or the
    /// passphrase is missing (OKX needs both).
    pub fn new(cfg: SessionConfig) -> Result<Self, OrderError> {
        let SecretKey::Hmac(secret) = &cfg.credentials.key else {
            return Err(OrderError::Malformed { request: "credentials", detail: "OKX keys are HMAC secrets".into() });
        };
        let signer = HmacSigner::new(secret);
        let Some(passphrase) = &cfg.credentials.passphrase else {
            return Err(OrderError::Malformed {
                request: "credentials",
                detail: "OKX needs the key's passphrase".into(),
            });
        };
        let passphrase = passphrase.clone();
        let decoder = PrivateDecoder::new(cfg.instruments.clone());
        let jitter = (wall_ms() as u64) | 1;
        Ok(Self {
            cfg,
            signer,
            passphrase,
            stats: SessionStats::default(),
            decoder,
            conn: None,
            phase: Phase::Down,
            next_attempt_ns: 0,
            backoff_ns: BACKOFF_MIN_NS,
            jitter,
            last_rx_ns: 0,
            ping_sent_ns: None,
            cancel_on_ready: false,
            last_error: 0,
            broken: false,
            out: Vec::with_capacity(1024),
            rx: Vec::with_capacity(64 * 1024),
            cancels: Vec::with_capacity(64),
        })
    }

    /// The last `error` code the venue answered (`60007` for a bad signature, …), 0 when none:
    /// why a session does not become ready.
    pub fn last_error_code(&self) -> u64 {
        self.last_error
    }

    fn open(&mut self, now_ns: u64, registry: &mio::Registry, token: mio::Token) {
        let url = format!("{}{PRIVATE_WS_PATH}", self.cfg.ws_url.trim_end_matches('/'));
        let Ok(mut conn) = WsConn::connect(&url, CONNECT_TIMEOUT) else {
            self.schedule_retry(now_ns);
            return;
        };
        let fd = conn.raw_fd();
        if registry.register(&mut SourceFd(&fd), token, Interest::READABLE).is_err() {
            self.schedule_retry(now_ns);
            return;
        }
        let ts_s = ((wall_ms() + self.stats.clock_offset_ms) / 1000).max(0) as u64;
        let login =
            crate::auth::okx::login_message(&self.cfg.credentials.api_key, &self.passphrase, &self.signer, ts_s);
        if conn.send_text(&login).is_err() {
            let _ = registry.deregister(&mut SourceFd(&fd));
            self.schedule_retry(now_ns);
            return;
        }
        self.conn = Some(conn);
        self.phase = Phase::LoggingIn(now_ns);
        self.last_rx_ns = now_ns;
        self.ping_sent_ns = None;
    }

    fn schedule_retry(&mut self, now_ns: u64) {
        // xorshift: ±25 % jitter so sessions of many processes do not reconnect in step.
        self.jitter ^= self.jitter << 13;
        self.jitter ^= self.jitter >> 7;
        self.jitter ^= self.jitter << 17;
        let quarter = self.backoff_ns / 4;
        let delay = self.backoff_ns - quarter + self.jitter % (2 * quarter + 1);
        self.next_attempt_ns = now_ns + delay;
        self.backoff_ns = (self.backoff_ns * 2).min(BACKOFF_MAX_NS);
        self.phase = Phase::Down;
    }

    /// Drops the connection (counted as a disconnect when one was open).
    fn drop_conn(&mut self, now_ns: u64, registry: Option<&mio::Registry>) {
        if let Some(mut conn) = self.conn.take() {
            if let Some(r) = registry {
                let fd = conn.raw_fd();
                let _ = r.deregister(&mut SourceFd(&fd));
            }
            conn.close();
            self.stats.disconnects += 1;
            self.cancel_on_ready = true;
        }
        self.schedule_retry(now_ns);
    }

    fn on_ready(&mut self) {
        self.phase = Phase::Ready;
        self.backoff_ns = BACKOFF_MIN_NS;
        self.stats.connects += 1;
        if !std::mem::take(&mut self.cancel_on_ready) {
            return;
        }
        self.cancels.clear();
        self.cancels.extend(self.decoder.open_orders());
        if self.cancels.is_empty() {
            return;
        }
        self.stats.cancel_alls += 1;
        for i in 0..self.cancels.len() {
            let (client_id, instrument) = self.cancels[i];
            let Some(inst) = self.decoder.instrument(instrument) else { continue };
            encode_cancel(&mut self.out, inst, client_id);
            if let Some(conn) = self.conn.as_mut()
                && conn.send_raw_text(&self.out).is_err()
            {
                return;
            }
        }
    }

    /// Signed REST GET of `path_and_query`; the parsed `data` array.
    fn rest_get(
        &self,
        agent: &ureq::Agent,
        path_and_query: &str,
        request: &'static str,
    ) -> Result<Vec<serde_json::Value>, OrderError> {
        let ts = iso8601_ms(wall_ms() + self.stats.clock_offset_ms);
        let mut sig = [0u8; HMAC_BASE64_LEN];
        let sign =
            crate::auth::okx::rest_signature_into(&self.signer, &ts, HttpMethod::Get, path_and_query, "", &mut sig);
        let url = format!("{}{path_and_query}", self.cfg.rest_url.trim_end_matches('/'));
        let resp = agent
            .get(&url)
            .header(HEADER_API_KEY, self.cfg.credentials.api_key.expose())
            .header(HEADER_SIGN, sign)
            .header(HEADER_TIMESTAMP, &ts)
            .header(HEADER_PASSPHRASE, self.passphrase.expose())
            .call();
        let mut resp = match resp {
            Ok(r) => r,
            Err(ureq::Error::StatusCode(code)) => {
                return Err(OrderError::Http(format!("GET {request}: status {code}")));
            }
            Err(e) => return Err(OrderError::Http(format!("GET {request}: {e}"))),
        };
        let body = resp.body_mut().read_to_vec().map_err(|e| OrderError::Http(format!("GET {request}: {e}")))?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| OrderError::Malformed { request, detail: format!("not JSON: {e}") })?;
        let code = v["code"].as_str().unwrap_or("");
        if code != "0" {
            return Err(OrderError::Venue {
                request,
                code: code.parse().unwrap_or(-1),
                msg: v["msg"].as_str().unwrap_or("").to_owned(),
            });
        }
        match v.get("data") {
            Some(serde_json::Value::Array(rows)) => Ok(rows.clone()),
            _ => Err(OrderError::Malformed { request, detail: "no data array".into() }),
        }
    }
}

fn text<'a>(row: &'a serde_json::Value, key: &str) -> &'a str {
    row.get(key).and_then(serde_json::Value::as_str).unwrap_or("")
}

impl OrderSession for OkxSession {
    fn gateway_name(&self) -> &'static str {
        "okx-v5-ws"
    }

    fn venue(&self) -> VenueId {
        self.cfg.venue
    }

    fn maintain(&mut self, now_ns: u64, registry: &mio::Registry, token: mio::Token) {
        if std::mem::take(&mut self.broken) {
            self.drop_conn(now_ns, Some(registry));
            return;
        }
        match self.phase {
            Phase::Down => {
                if now_ns >= self.next_attempt_ns {
                    self.open(now_ns, registry, token);
                }
                return;
            }
            Phase::LoggingIn(t) | Phase::Subscribing(t) if now_ns.saturating_sub(t) > LOGIN_TIMEOUT_NS => {
                self.drop_conn(now_ns, Some(registry));
                return;
            }
            _ => {}
        }
        let quiet = now_ns.saturating_sub(self.last_rx_ns);
        match self.ping_sent_ns {
            Some(sent) if now_ns.saturating_sub(sent) > PONG_TIMEOUT_NS => {
                self.drop_conn(now_ns, Some(registry));
                return;
            }
            None if quiet > PING_AFTER_NS => {
                let sent = self.conn.as_mut().is_some_and(|c| c.send_static(OKX_PING).is_ok());
                if !sent {
                    self.drop_conn(now_ns, Some(registry));
                    return;
                }
                self.ping_sent_ns = Some(now_ns);
            }
            _ => {}
        }
        if let Some(conn) = self.conn.as_mut()
            && conn.flush().is_err()
        {
            self.drop_conn(now_ns, Some(registry));
        }
    }

    fn ready(&self) -> bool {
        self.phase == Phase::Ready && !self.broken
    }

    fn send(&mut self, cmd: &OrderCommand, now_ns: u64) -> Result<(), GatewayError> {
        let _ = now_ns;
        let instrument = match cmd {
            OrderCommand::New { order, .. } => order.instrument,
            OrderCommand::Cancel { instrument, .. } => *instrument,
            OrderCommand::Resync { .. } => return Err(GatewayError::NotServed),
        };
        let Some(inst) = self.decoder.instrument(instrument) else { return Err(GatewayError::NotServed) };
        if self.phase != Phase::Ready || self.broken {
            self.stats.not_ready += 1;
            return Err(GatewayError::Disconnected);
        }
        match cmd {
            OrderCommand::New { order, .. } => encode_order(&mut self.out, inst, order),
            OrderCommand::Cancel { client_id, .. } => encode_cancel(&mut self.out, inst, *client_id),
            OrderCommand::Resync { .. } => return Err(GatewayError::NotServed),
        }
        let Some(conn) = self.conn.as_mut() else { return Err(GatewayError::Disconnected) };
        if conn.send_raw_text(&self.out).is_err() {
            // The next maintain reconnects (and cancels what was open); this order's fate is
            // unknown, so it is followed like the others.
            if let OrderCommand::New { order, .. } = cmd {
                self.decoder.track(order);
            }
            self.stats.not_ready += 1;
            self.broken = true;
            return Err(GatewayError::Disconnected);
        }
        match cmd {
            OrderCommand::New { order, .. } => {
                self.decoder.track(order);
                self.stats.orders_sent += 1;
            }
            _ => self.stats.cancels_sent += 1,
        }
        Ok(())
    }

    fn poll(&mut self, now_ns: u64, out: &mut dyn FnMut(OrderEvent)) {
        loop {
            let Some(conn) = self.conn.as_mut() else { return };
            let frame = match conn.read(&mut self.rx) {
                Ok(Read::Data(_)) => true,
                Ok(Read::Control) => false,
                Ok(Read::WouldBlock) => return,
                Err(_) => {
                    // Deregistration needs the registry; a closed descriptor leaves epoll by itself.
                    self.drop_conn(now_ns, None);
                    return;
                }
            };
            self.last_rx_ns = now_ns;
            self.ping_sent_ns = None;
            if !frame {
                continue;
            }
            let control = self.decoder.decode(&self.rx, now_ns, wall_ms(), &mut self.stats, out);
            match (control, self.phase) {
                (Control::LoggedIn, Phase::LoggingIn(_)) => {
                    let sent = self.conn.as_mut().is_some_and(|c| c.send_static(ORDERS_SUBSCRIBE).is_ok());
                    if sent {
                        self.phase = Phase::Subscribing(now_ns);
                    } else {
                        self.drop_conn(now_ns, None);
                    }
                }
                (Control::Subscribed, Phase::Subscribing(_)) => self.on_ready(),
                (Control::Error(code), phase) => {
                    self.last_error = code;
                    if code == 50011 || code == 60014 {
                        self.stats.rate_limited += 1;
                    }
                    if phase != Phase::Ready {
                        self.drop_conn(now_ns, None);
                    }
                }
                _ => {}
            }
        }
    }

    fn stats(&self) -> SessionStats {
        self.stats
    }

    fn venue_state(&mut self, timeout: Duration) -> Result<VenueState, OrderError> {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into();
        let mut state = VenueState::default();
        let find = |inst_id: &str| self.cfg.instruments.iter().find(|i| i.symbol == inst_id);
        for row in self.rest_get(&agent, "/api/v5/trade/orders-pending", "orders-pending")? {
            let (Some(client_id), Some(inst)) =
                (parse_client_id(text(&row, "clOrdId").as_bytes()), find(text(&row, "instId")))
            else {
                continue;
            };
            let sz = parse_mantissa(text(&row, "sz").as_bytes(), inst.qty_scale, false);
            let acc = parse_mantissa(text(&row, "accFillSz").as_bytes(), inst.qty_scale, false).unwrap_or(0);
            let sz = sz.map_err(|e| OrderError::Malformed { request: "orders-pending", detail: format!("sz: {e}") })?;
            state.open_orders.push(VenueOrder {
                client_id,
                instrument: inst.id,
                venue: self.cfg.venue,
                open_qty: Qty(sz - acc),
            });
        }
        for row in self.rest_get(&agent, "/api/v5/trade/fills", "fills")? {
            let (Some(client_id), Some(inst)) =
                (parse_client_id(text(&row, "clOrdId").as_bytes()), find(text(&row, "instId")))
            else {
                continue;
            };
            let bad = |field: &str| OrderError::Malformed { request: "fills", detail: format!("bad {field}") };
            let px =
                parse_mantissa(text(&row, "fillPx").as_bytes(), inst.price_scale, false).map_err(|_| bad("fillPx"))?;
            let qty =
                parse_mantissa(text(&row, "fillSz").as_bytes(), inst.qty_scale, false).map_err(|_| bad("fillSz"))?;
            let fee = text(&row, "fee");
            let fee = if fee.is_empty() { Decimal::ZERO } else { -fee.parse::<Decimal>().map_err(|_| bad("fee"))? };
            let side = match text(&row, "side") {
                "buy" => Side::Buy,
                "sell" => Side::Sell,
                _ => return Err(bad("side")),
            };
            let trade_id = text(&row, "tradeId").parse::<u64>().map_err(|_| bad("tradeId"))?;
            let leaves = state.open_orders.iter().find(|o| o.client_id == client_id).map_or(Qty(0), |o| o.open_qty);
            state.fills.push(VenueFill {
                client_id,
                instrument: inst.id,
                side,
                fill: Fill {
                    px: Px(px),
                    qty: Qty(qty),
                    leaves_qty: leaves,
                    fee,
                    taker: text(&row, "execType") != "M",
                    trade_id,
                },
            });
        }
        // OKX lists newest first; the journal's order is oldest first.
        state.fills.reverse();
        let mut positions = Vec::new();
        for row in self.rest_get(&agent, "/api/v5/account/positions", "positions")? {
            let Some(inst) = find(text(&row, "instId")) else { continue };
            let pos = text(&row, "pos")
                .parse::<Decimal>()
                .map_err(|_| OrderError::Malformed { request: "positions", detail: "bad pos".into() })?;
            positions.push((inst.id, pos));
        }
        state.positions = Some(positions);
        Ok(state)
    }
}
