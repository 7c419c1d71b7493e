//! The simulator's network side: one listener serving every venue's websocket streams and REST
//! depth snapshots, the task that steps the market as real time passes, and the fan-out of
//! published events to subscribed clients. `/ethereum` (before any venue) is the Ethereum
//! JSON-RPC websocket, served by [`super::eth_ws`].
//!
//! Everything runs on the simulator's single current-thread runtime. The market and the
//! subscription hub sit behind `std` mutexes that are never held across an `.await` (outside
//! threads only read snapshots through them). Each client has a bounded queue: a client whose
//! queue overflows, or whose socket stalls writes, is disconnected and counted, so no client
//! ever silently misses a frame.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crossbar_engine::instrument::{InstrumentId, Registry};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, interval, interval_at, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Bytes, Message, Utf8Bytes};

use super::binance::{self, Control, ControlError, Protocol, StreamKind, WireSymbol};
use super::eth::{self, EthChain};
use super::eth_rpc::EthNode;
use super::eth_ws;
use super::faults::{ClientFaults, FaultConfig, FaultHub, FaultStats, FrameClass, SessionFault};
use super::model::{Market, SimEvent};
use super::topics::{self, TopicSymbol};
use super::{SimConfig, SimError, SimStats};
use crate::venue::Protocol as VenueProtocol;

/// Longest wait for a request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a write may stall before the client counts as too slow.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a close handshake or for clients to finish at shutdown.
pub(super) const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Largest websocket message accepted from a client (control requests are tiny).
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// Most model steps run in one wake-up; a longer lag is dropped rather than replayed.
const MAX_CATCH_UP_STEPS: u64 = 250;
/// Most frames written before one flush.
const WRITE_BATCH: u64 = 256;

/// A stream of one instrument.
type StreamKey = (InstrumentId, StreamKind);

/// The server's counters, shared with [`super::Simulator::stats`].
#[derive(Default)]
pub(crate) struct Stats {
    steps: AtomicU64,
    pub(super) frames_sent: AtomicU64,
    pub(super) clients: AtomicU64,
    pub(super) connections: AtomicU64,
    pub(super) disconnects: AtomicU64,
    pub(super) slow_disconnects: AtomicU64,
    pub(super) pong_timeouts: AtomicU64,
    rest_requests: AtomicU64,
}

impl Stats {
    /// A copy of every counter.
    pub(crate) fn read(&self) -> SimStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimStats {
            steps: get(&self.steps),
            frames_sent: get(&self.frames_sent),
            clients: get(&self.clients),
            connections: get(&self.connections),
            disconnects: get(&self.disconnects),
            slow_disconnects: get(&self.slow_disconnects),
            pong_timeouts: get(&self.pong_timeouts),
            rest_requests: get(&self.rest_requests),
            faults: FaultStats::default(),
        }
    }
}

pub(super) fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// One websocket client as the fan-out sees it.
struct Client {
    id: u64,
    combined: bool,
    streams: BTreeSet<StreamKey>,
    tx: mpsc::Sender<Utf8Bytes>,
    kick: Arc<Notify>,
    /// The session's fault injection (inert while faults are off).
    faults: ClientFaults,
}

/// The frame a session's queue carries to tell the session to end after the frames before it
/// (an injected disconnect): data frames are never empty.
const END_OF_SESSION: &str = "";

/// Queues every frame of `frames` to `c`; false (after kicking it) when its queue is full.
fn queue_all(c: &Client, frames: &mut Vec<Utf8Bytes>) -> bool {
    for frame in frames.drain(..) {
        match c.tx.try_send(frame) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                c.kick.notify_one();
                return false;
            }
            Err(TrySendError::Closed(_)) => return false,
        }
    }
    true
}

/// Who is subscribed to what.
struct Hub {
    next_id: u64,
    clients: Vec<Client>,
    /// Fault configuration and the snapshots served, for every session's fault decisions.
    faults: FaultHub,
    fault_stats: FaultStats,
    /// Frames decided for one client, reused.
    scratch: Vec<Utf8Bytes>,
}

impl Hub {
    fn new(faults: FaultConfig, instruments: usize) -> Self {
        Self {
            next_id: 0,
            clients: Vec::new(),
            faults: FaultHub::new(faults, instruments),
            fault_stats: FaultStats::default(),
            scratch: Vec::new(),
        }
    }

    /// Registers a client; `notice(time_ms)` builds the protocol's venue shutdown notice as this
    /// client gets it, which fault injection may send (`None`: the protocol has none).
    fn add(
        &mut self,
        combined: bool,
        streams: Vec<StreamKey>,
        tx: mpsc::Sender<Utf8Bytes>,
        kick: Arc<Notify>,
        notice: Option<fn(i64) -> String>,
    ) -> u64 {
        self.next_id += 1;
        let streams = streams.into_iter().collect();
        let faults = self.faults.session(Instant::now().into_std(), notice);
        self.clients.push(Client { id: self.next_id, combined, streams, tx, kick, faults });
        self.next_id
    }

    /// Session-level faults due now: stalls start and end, sessions are told to end.
    fn tick(&mut self, time_ms: i64) {
        let now = Instant::now().into_std();
        let Self { clients, faults, fault_stats, scratch, .. } = self;
        clients.retain_mut(|c| {
            scratch.clear();
            let fault = c.faults.tick(faults, fault_stats, now, time_ms, scratch);
            if fault == SessionFault::End {
                scratch.push(END_OF_SESSION.into());
            }
            queue_all(c, scratch) && fault == SessionFault::None
        });
    }

    fn remove(&mut self, id: u64) {
        self.clients.retain(|c| c.id != id);
    }

    fn client(&mut self, id: u64) -> Option<&mut Client> {
        self.clients.iter_mut().find(|c| c.id == id)
    }

    fn wants(&self, key: &StreamKey) -> bool {
        self.clients.iter().any(|c| c.streams.contains(key))
    }

    /// Queues `data` (the payload of stream `name`, a frame of `class`) to every subscriber,
    /// through its session's faults; a subscriber whose queue is full is told to go and dropped
    /// from the hub.
    fn publish(&mut self, key: &StreamKey, name: &str, data: &str, class: FrameClass) {
        let (mut raw, mut wrapped) = (None::<Utf8Bytes>, None::<Utf8Bytes>);
        let now = Instant::now().into_std();
        let Self { clients, faults, fault_stats, scratch, .. } = self;
        clients.retain_mut(|c| {
            if !c.streams.contains(key) {
                return true;
            }
            let frame = if c.combined {
                wrapped.get_or_insert_with(|| binance::combined(name, data).into())
            } else {
                raw.get_or_insert_with(|| data.into())
            };
            scratch.clear();
            c.faults.on_frame(faults, fault_stats, class, frame, now, scratch);
            queue_all(c, scratch)
        });
    }
}

/// A venue served by the simulator.
struct Venue {
    name: String,
    protocol: Protocol,
    /// The protocol it is configured with; Bybit and OKX venues are served by [`topics`].
    api: VenueProtocol,
}

/// Everything the simulator's tasks and its handle share.
pub(crate) struct Shared {
    /// The market model.
    pub(crate) market: Mutex<Market>,
    /// Server counters.
    pub(crate) stats: Stats,
    venues: Vec<Venue>,
    /// Per instrument: its venue index and wire description.
    instruments: Vec<(usize, WireSymbol)>,
    /// Per instrument of a Bybit or OKX venue: its wire description and book sequence.
    topics: Vec<Option<TopicSymbol>>,
    /// Set by [`super::Simulator::pause`]: the market stops after one last diff.
    pub(crate) paused: std::sync::atomic::AtomicBool,
    hub: Mutex<Hub>,
    step: Duration,
    pub(super) ping_interval: Duration,
    pub(super) pong_timeout: Duration,
    pub(super) client_queue: usize,
    /// The Ethereum JSON-RPC endpoint's node, when enabled.
    pub(super) eth: Option<Mutex<EthNode>>,
    /// The venues' back office: accounts, orders, fills (lock order: market, then exchange).
    pub(crate) exchange: Mutex<super::exchange::Exchange>,
    /// Private sessions watching accounts.
    pub(crate) private: Mutex<super::private::PrivateHub>,
    /// The simulator's instruments (tick, lot, fees, scales).
    pub(crate) registry: Registry,
    /// Binance order entry's listen keys and rate-limit counters.
    pub(crate) binance: Mutex<super::binance_trade::BinanceState>,
}

impl Shared {
    /// Checks every venue speaks a protocol the simulator knows and prepares the wire names.
    /// A venue's protocol is the one `apis` configures for its name, else inferred from a
    /// `binance-spot…` / `binance-usdm…` name.
    ///
    /// # Errors
    /// [`SimError::UnsupportedVenue`] for any other venue.
    pub(crate) fn new(
        market: Market,
        registry: &Registry,
        cfg: &SimConfig,
        apis: &[(String, VenueProtocol)],
    ) -> Result<Self, SimError> {
        let venues = registry
            .venues()
            .iter()
            .map(|name| {
                let api = apis.iter().find(|(n, _)| n == name).map(|&(_, p)| p).or_else(|| {
                    Protocol::of_venue(name).map(|p| {
                        if p == Protocol::Spot { VenueProtocol::BinanceSpot } else { VenueProtocol::BinanceUsdm }
                    })
                });
                let api = api.ok_or_else(|| SimError::UnsupportedVenue(name.clone()))?;
                let protocol = if api == VenueProtocol::BinanceSpot { Protocol::Spot } else { Protocol::Usdm };
                Ok(Venue { name: name.clone(), protocol, api })
            })
            .collect::<Result<Vec<_>, SimError>>()?;
        let topics = registry
            .instruments()
            .iter()
            .map(|i| {
                let api = venues[i.venue.index()].api;
                let published = market.book(i.id).map_or(0, super::book::SimBook::update_id);
                TopicSymbol::serves(api).then(|| TopicSymbol::new(i, api, published))
            })
            .collect();
        let instruments = registry
            .instruments()
            .iter()
            .map(|i| (i.venue.index(), WireSymbol::new(i, venues[i.venue.index()].protocol)))
            .collect();
        let eth = if cfg.ethereum.enabled {
            let underlyings: Vec<(String, f64)> =
                cfg.underlyings.iter().map(|u| (u.name.clone(), u.start_price())).collect();
            Some(Mutex::new(EthNode::new(EthChain::new(&cfg.ethereum, &underlyings, cfg.seed)?)))
        } else {
            None
        };
        Ok(Self {
            market: Mutex::new(market),
            stats: Stats::default(),
            venues,
            instruments,
            topics,
            paused: std::sync::atomic::AtomicBool::new(false),
            hub: Mutex::new(Hub::new(cfg.faults.clone(), registry.len())),
            step: Duration::from_millis(cfg.step_ms),
            ping_interval: Duration::from_secs(cfg.ping_interval_s),
            pong_timeout: Duration::from_secs(cfg.pong_timeout_s),
            client_queue: cfg.client_queue,
            eth,
            exchange: Mutex::new(super::exchange::Exchange::new(registry, super::exchange::AccountDefaults::default())),
            private: Mutex::new(super::private::PrivateHub::default()),
            registry: registry.clone(),
            binance: Mutex::new(super::binance_trade::BinanceState::new(cfg.binance_rate_limits)),
        })
    }

    pub(crate) fn lock_market(&self) -> MutexGuard<'_, Market> {
        self.market.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_hub(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counters of injected faults.
    pub(crate) fn fault_stats(&self) -> FaultStats {
        self.lock_hub().fault_stats
    }

    /// Replaces the fault configuration; sessions keep their RNG and timers, but inject nothing
    /// while `cfg` enables nothing.
    pub(crate) fn set_faults(&self, cfg: FaultConfig) {
        self.lock_hub().faults.cfg = cfg;
    }

    fn wire(&self, id: InstrumentId) -> &WireSymbol {
        &self.instruments[id.index()].1
    }

    /// The protocol venue `venue` is served in.
    pub(crate) fn venue_api(&self, venue: usize) -> VenueProtocol {
        self.venues[venue].api
    }

    /// Venue `venue`'s configured name.
    pub(crate) fn venue_name(&self, venue: usize) -> &str {
        &self.venues[venue].name
    }

    /// The instrument of `venue` with this exact venue symbol.
    pub(crate) fn instrument(&self, venue: usize, symbol: &str) -> Option<InstrumentId> {
        let i = self.instruments.iter().position(|(v, w)| *v == venue && w.symbol == symbol)?;
        Some(InstrumentId(u32::try_from(i).ok()?))
    }

    /// The stream a name (`btcusdt@bookTicker`) denotes on `venue`.
    fn stream_key(&self, venue: usize, name: &str) -> Option<StreamKey> {
        let (symbol, suffix) = name.split_once('@')?;
        let kind = StreamKind::of_suffix(suffix, self.venues[venue].protocol)?;
        let i = self.instruments.iter().position(|(v, w)| *v == venue && w.lower == symbol)?;
        Some((InstrumentId(u32::try_from(i).ok()?), kind))
    }

    /// Runs session faults due at simulated `time_ms`, then formats and queues every event
    /// somebody is subscribed to.
    fn publish(&self, events: &[SimEvent], buf: &mut String, time_ms: i64) {
        let mut hub = self.lock_hub();
        hub.tick(time_ms);
        for ev in events {
            let Some(kind) = StreamKind::of_event(ev) else { continue };
            let key = (ev.instrument(), kind);
            if let Some(t) = &self.topics[key.0.index()] {
                if topics::write_event(buf, ev, t) && hub.wants(&key) {
                    let stream = (u64::from(key.0.0) << 8) | kind as u64;
                    let class = match ev {
                        SimEvent::Depth { instrument, .. } => {
                            FrameClass::Diff { stream, instrument: instrument.index(), last_id: t.book_seq() }
                        }
                        _ => FrameClass::Other { stream },
                    };
                    hub.publish(&key, "", buf, class);
                }
                continue;
            }
            if !hub.wants(&key) {
                continue;
            }
            let wire = self.wire(key.0);
            buf.clear();
            binance::write_event(buf, ev, wire);
            let stream = (u64::from(key.0.0) << 8) | kind as u64;
            let class = match ev {
                SimEvent::Depth { instrument, diff, .. } => {
                    FrameClass::Diff { stream, instrument: instrument.index(), last_id: diff.last_update_id }
                }
                _ => FrameClass::Other { stream },
            };
            hub.publish(&key, &wire.stream_name(kind), buf, class);
        }
    }

    /// Handles a Bybit or OKX request of client `id` on `venue` and returns the reply; a book
    /// subscription queues its snapshot (after the acks) before any later delta.
    fn topic_control(&self, id: u64, venue: usize, text: &str) -> String {
        let api = self.venues[venue].api;
        let (subscribe, names) = match topics::parse_request(api, id, text) {
            topics::Request::Reply(reply) => return reply,
            topics::Request::Subscribe(n) => (true, n),
            topics::Request::Unsubscribe(n) => (false, n),
        };
        let mut keys = Vec::with_capacity(names.len());
        for (kind, symbol, topic) in &names {
            match self.instrument(venue, symbol) {
                Some(i) => keys.push((i, *kind)),
                None => return topics::unknown_topic(api, id, topic),
            }
        }
        let mut acks = topics::acks(api, id, subscribe, &names).into_iter();
        let first = acks.next().unwrap_or_default();
        let mut hub = self.lock_hub();
        let Some(client) = hub.client(id) else { return first };
        let mut queued: Vec<String> = acks.collect();
        let mut served = Vec::new();
        for key in keys {
            if !subscribe {
                client.streams.remove(&key);
            } else if client.streams.insert(key) && key.1 == StreamKind::Depth {
                let mut market = self.lock_market();
                let (snap, time_ms) = (market.snapshot(key.0, usize::MAX), market.time_ms());
                if let (Some(snap), Some(t)) = (snap, &self.topics[key.0.index()]) {
                    queued.push(topics::book_snapshot(t, &snap, time_ms));
                    served.push((key.0.index(), t.book_seq()));
                }
            }
        }
        for frame in queued {
            // A full queue kicks the client (as in `Hub::publish`): it resubscribes on reconnect.
            if client.tx.try_send(frame.into()).is_err() {
                client.kick.notify_one();
            }
        }
        // The snapshot heals the stream for fault injection, in the book sequence its deltas carry.
        let now = Instant::now().into_std();
        for (instrument, seq) in served {
            hub.faults.snapshot_served(instrument, seq, now);
        }
        first
    }

    /// Handles a control request of client `id` on `venue` and returns the reply.
    fn control(&self, id: u64, venue: usize, text: &str) -> String {
        if TopicSymbol::serves(self.venues[venue].api) {
            return self.topic_control(id, venue, text);
        }
        let (req_id, request) = binance::parse_control(text);
        let request = match request {
            Ok(r) => r,
            Err(e) => return binance::control_error(&e, &req_id),
        };
        let names = match &request {
            Control::Subscribe(n) | Control::Unsubscribe(n) => n.as_slice(),
            Control::List => &[],
        };
        let mut keys = Vec::with_capacity(names.len());
        for name in names {
            let Some(key) = self.stream_key(venue, name) else {
                let e = ControlError { code: 2, msg: format!("Invalid request: unknown stream name '{name}'") };
                return binance::control_error(&e, &req_id);
            };
            keys.push(key);
        }
        let mut hub = self.lock_hub();
        let Some(client) = hub.client(id) else {
            return binance::control_error(&ControlError { code: 2, msg: "connection closing".into() }, &req_id);
        };
        let result = match request {
            Control::Subscribe(_) => {
                client.streams.extend(keys);
                Value::Null
            }
            Control::Unsubscribe(_) => {
                for k in &keys {
                    client.streams.remove(k);
                }
                Value::Null
            }
            Control::List => {
                let mut names: Vec<String> = client.streams.iter().map(|&(i, k)| self.wire(i).stream_name(k)).collect();
                names.sort_unstable();
                Value::Array(names.into_iter().map(Value::String).collect())
            }
        };
        binance::control_result(&result, &req_id)
    }
}

/// Serves until `stop` turns true (or its sender is gone), then closes every client.
pub(crate) async fn run(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    let market = drive_market(Arc::clone(&shared));
    tokio::pin!(market);
    let chain = eth_ws::drive(Arc::clone(&shared));
    tokio::pin!(chain);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            () = &mut market => break,
            () = &mut chain => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve_connection(stream, Arc::clone(&shared), stop.clone()));
                }
                // Out of file descriptors or a reset before accept: back off a little.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let _ = timeout(2 * CLOSE_TIMEOUT, async { while conns.join_next().await.is_some() {} }).await;
    conns.shutdown().await;
}

/// Steps the market as real time passes and publishes what each step produced.
async fn drive_market(shared: Arc<Shared>) {
    let step_ms = u64::try_from(shared.step.as_millis()).unwrap_or(u64::MAX).max(1);
    let start = Instant::now();
    let mut done = 0u64;
    let mut tick = interval(shared.step);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut events, mut buf) = (Vec::new(), String::new());
    loop {
        tick.tick().await;
        if shared.paused.load(Ordering::Relaxed) {
            // Paused: publish what changed since the last diff, and stand still.
            let time_ms = {
                let mut market = shared.lock_market();
                market.flush_depth(&mut events);
                market.time_ms()
            };
            shared.publish(&events, &mut buf, time_ms);
            events.clear();
            continue;
        }
        let due = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX) / step_ms;
        done = done.max(due.saturating_sub(MAX_CATCH_UP_STEPS));
        if due <= done {
            continue;
        }
        let time_ms = {
            let mut market = shared.lock_market();
            for _ in done..due {
                market.step(&mut events);
            }
            let time_ms = market.time_ms();
            shared.lock_exchange().on_market(&mut market, time_ms);
            time_ms
        };
        shared.publish_reports();
        bump(&shared.stats.steps, due - done);
        done = due;
        shared.publish(&events, &mut buf, time_ms);
        events.clear();
    }
}

/// A parsed HTTP request head.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn parse(head: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(head).ok()?;
        let mut lines = text.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let (method, target, version) = (first.next()?, first.next()?, first.next()?);
        if !version.starts_with("HTTP/1.") {
            return None;
        }
        let headers = lines
            .filter(|l| !l.is_empty())
            .map(|l| l.split_once(':').map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned())))
            .collect::<Option<Vec<_>>>()?;
        Some(Self { method: method.to_owned(), target: target.to_owned(), headers })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// What a request asks for.
enum Route {
    /// A websocket on `venue`, raw or combined, with its initial streams.
    WebSocket { venue: usize, combined: bool, streams: Vec<StreamKey>, key: String },
    /// A REST depth snapshot.
    Depth { instrument: InstrumentId, limit: usize },
    /// The Ethereum JSON-RPC websocket.
    Eth { key: String },
    /// A private websocket (order entry, account streams) on `venue`.
    Private { venue: usize, path: super::private::PrivatePath, key: String },
    /// A private REST request on `venue`: answered once the body is read.
    PrivateRest { venue: usize },
    /// A plain reply (errors).
    Reply(u16, String),
}

fn reply_error(status: u16, code: i32, msg: &str) -> Route {
    Route::Reply(status, format!(r#"{{"code":{code},"msg":{}}}"#, Value::String(msg.to_owned())))
}

/// Decodes `%XX` escapes of a query value.
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
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(shared: &Shared, req: &Request) -> Route {
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let param = |name: &str| {
        query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| percent_decode(v))
    };
    let path = path.strip_prefix('/').unwrap_or(path);
    let (venue_name, rest) = path.split_once('/').unwrap_or((path, ""));
    if venue_name == super::private::ADMIN_PATH && rest == "accounts" && req.method == "GET" {
        return Route::Reply(200, shared.accounts_json());
    }
    if venue_name == eth::PATH && rest.is_empty() && shared.eth.is_some() {
        let upgrade = req.header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        return match req.header("sec-websocket-key") {
            Some(key) if upgrade => Route::Eth { key: key.to_owned() },
            _ => reply_error(400, -32600, "the Ethereum endpoint speaks JSON-RPC over websocket only"),
        };
    }
    let Some(venue) = shared.venues.iter().position(|v| v.name == venue_name) else {
        return reply_error(404, -1, "unknown venue");
    };
    let upgrade = req.header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade {
        let Some(key) = req.header("sec-websocket-key") else {
            return reply_error(400, -1, "missing Sec-WebSocket-Key");
        };
        let api = shared.venues[venue].api;
        if let Some(path) = super::private::ws_route(shared, api, &format!("/{rest}")) {
            return Route::Private { venue, path, key: key.to_owned() };
        }
        if TopicSymbol::serves(api) {
            if rest != TopicSymbol::ws_path(api) {
                return reply_error(404, -1, "unknown path");
            }
            return Route::WebSocket { venue, combined: false, streams: Vec::new(), key: key.to_owned() };
        }
        let (combined, names) = match rest {
            "stream" => (true, param("streams").unwrap_or_default()),
            "ws" => (false, String::new()),
            _ => match rest.strip_prefix("ws/") {
                Some(names) => (false, percent_decode(names)),
                None => return reply_error(404, -1, "unknown path"),
            },
        };
        let mut streams = Vec::new();
        for name in names.split('/').filter(|n| !n.is_empty()) {
            match shared.stream_key(venue, name) {
                Some(k) => streams.push(k),
                None => return reply_error(400, -1, &format!("unknown stream name '{name}'")),
            }
        }
        return Route::WebSocket { venue, combined, streams, key: key.to_owned() };
    }
    let protocol = shared.venues[venue].protocol;
    if format!("/{rest}") != protocol.depth_path() {
        // Not public market data: the venue's private REST API (404 when not one of its paths).
        return Route::PrivateRest { venue };
    }
    if req.method != "GET" {
        return reply_error(405, -1, "only GET is served");
    }
    let Some(symbol) = param("symbol").filter(|s| !s.is_empty()) else {
        return reply_error(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.");
    };
    let Some(instrument) = shared.instrument(venue, &symbol) else {
        return reply_error(400, -1121, "Invalid symbol.");
    };
    let limit = match param("limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(l)) => l.clamp(1, protocol.max_depth_limit()),
        Some(Err(_)) => return reply_error(400, -1100, "Illegal characters found in parameter 'limit'."),
    };
    Route::Depth { instrument, limit }
}

/// Reads up to the end of the request head; returns the head and any bytes read past it.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        let searched_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf[searched_from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let split = searched_from + end + 4;
            let rest = buf.split_off(split);
            return Ok(Some((buf, rest)));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

async fn respond(stream: &mut TcpStream, status: u16, body: &str) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // A client that went away or stalls gets nothing more; there is nobody to tell.
    let _ = timeout(WRITE_TIMEOUT, async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// Serves one accepted connection: a REST request or a websocket session.
async fn serve_connection(mut stream: TcpStream, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    // Latency matters more than packet count on loopback; failure only costs latency.
    let _ = stream.set_nodelay(true);
    let Ok(Ok(Some((head, rest)))) = timeout(HEAD_TIMEOUT, read_head(&mut stream)).await else { return };
    let Some(req) = Request::parse(&head) else {
        return respond(&mut stream, 400, r#"{"code":-1,"msg":"malformed request"}"#).await;
    };
    match route(&shared, &req) {
        Route::Reply(status, body) => {
            bump(&shared.stats.rest_requests, 1);
            respond(&mut stream, status, &body).await;
        }
        Route::Depth { instrument, limit } => {
            let (snap, time_ms) = {
                let mut market = shared.lock_market();
                (market.snapshot(instrument, limit), market.time_ms())
            };
            if let Some(snap) = &snap {
                let now = Instant::now().into_std();
                shared.lock_hub().faults.snapshot_served(instrument.index(), snap.last_update_id, now);
            }
            bump(&shared.stats.rest_requests, 1);
            match snap {
                Some(snap) => {
                    respond(&mut stream, 200, &binance::depth_snapshot_body(shared.wire(instrument), &snap, time_ms))
                        .await
                }
                None => respond(&mut stream, 400, r#"{"code":-1121,"msg":"Invalid symbol."}"#).await,
            }
        }
        Route::WebSocket { venue, combined, streams, key } => {
            let Some(ws) = upgrade(stream, rest, &key).await else { return };
            run_client(ws, &shared, venue, combined, streams, stop).await;
        }
        Route::Private { venue, path, key } => {
            let Some(ws) = upgrade(stream, rest, &key).await else { return };
            super::private::run_session(ws, &shared, venue, path, stop).await;
        }
        Route::PrivateRest { venue } => {
            bump(&shared.stats.rest_requests, 1);
            let Some(body) = read_body(&mut stream, &req, rest).await else {
                return respond(&mut stream, 400, r#"{"code":-1,"msg":"malformed request body"}"#).await;
            };
            let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
            let path = path.strip_prefix('/').unwrap_or(path);
            let path = path.find('/').map_or("/", |i| &path[i..]);
            let private =
                super::private::RestRequest { method: &req.method, path, query, headers: &req.headers, body: &body };
            match super::private::rest(&shared, venue, &private) {
                Some((status, body)) => respond(&mut stream, status, &body).await,
                None => respond(&mut stream, 404, r#"{"code":-1,"msg":"unknown path"}"#).await,
            }
        }
        Route::Eth { key } => {
            let Some(node) = shared.eth.as_ref() else { return };
            let Some(ws) = upgrade(stream, rest, &key).await else { return };
            eth_ws::run_client(ws, &shared, node, stop).await;
        }
    }
}

/// Reads a request body of `content-length` bytes (the head's leftover `rest` first); `None`
/// when it is too large, not UTF-8 or does not arrive in time.
async fn read_body(stream: &mut TcpStream, req: &Request, mut rest: Vec<u8>) -> Option<String> {
    let len = match req.header("content-length") {
        None => 0,
        Some(v) => v.trim().parse::<usize>().ok()?,
    };
    if len > MAX_CLIENT_MESSAGE {
        return None;
    }
    let mut chunk = [0u8; 1024];
    while rest.len() < len {
        let n = timeout(HEAD_TIMEOUT, stream.read(&mut chunk)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        rest.extend_from_slice(&chunk[..n]);
    }
    rest.truncate(len);
    String::from_utf8(rest).ok()
}

/// Completes the websocket handshake; `None` when the client went away.
async fn upgrade(mut stream: TcpStream, rest: Vec<u8>, key: &str) -> Option<WebSocketStream<TcpStream>> {
    let accept = derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if !matches!(timeout(WRITE_TIMEOUT, stream.write_all(response.as_bytes())).await, Ok(Ok(()))) {
        return None;
    }
    let config =
        WebSocketConfig::default().max_message_size(Some(MAX_CLIENT_MESSAGE)).max_frame_size(Some(MAX_CLIENT_MESSAGE));
    Some(WebSocketStream::from_partially_read(stream, rest, Role::Server, Some(config)).await)
}

/// Why a websocket session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum End {
    /// The simulator is stopping.
    Shutdown,
    /// The client's queue overflowed or a write stalled.
    Slow,
    /// A ping went unanswered for the pong timeout.
    PongTimeout,
    /// The client sent a close frame.
    ClientClosed,
    /// The socket failed or reached its end.
    Gone,
    /// Fault injection ended it (a disconnect, or after a shutdown notice).
    Fault,
}

pub(super) async fn send(ws: &mut WebSocketStream<TcpStream>, msg: Message) -> bool {
    matches!(timeout(WRITE_TIMEOUT, ws.send(msg)).await, Ok(Ok(())))
}

/// Writes `first` and whatever else is queued (up to a batch), then flushes once; returns the
/// frames written and whether the batch stopped at [`END_OF_SESSION`].
pub(super) async fn write_batch(
    ws: &mut WebSocketStream<TcpStream>,
    first: Utf8Bytes,
    rx: &mut mpsc::Receiver<Utf8Bytes>,
) -> Result<(u64, bool), tungstenite::Error> {
    ws.feed(Message::Text(first)).await?;
    let (mut n, mut end) = (1, false);
    while n < WRITE_BATCH {
        let Ok(frame) = rx.try_recv() else { break };
        if frame.as_str() == END_OF_SESSION {
            end = true;
            break;
        }
        ws.feed(Message::Text(frame)).await?;
        n += 1;
    }
    ws.flush().await?;
    Ok((n, end))
}

/// Runs one websocket session: queued frames out, control requests in, pings, and the
/// goodbye that fits the reason it ends.
async fn run_client(
    mut ws: WebSocketStream<TcpStream>,
    shared: &Shared,
    venue: usize,
    combined: bool,
    streams: Vec<StreamKey>,
    mut stop: watch::Receiver<bool>,
) {
    let (tx, mut rx) = mpsc::channel(shared.client_queue);
    let kick = Arc::new(Notify::new());
    let notice: fn(i64) -> String = if combined { binance_notice_combined } else { binance::server_shutdown };
    let id = shared.lock_hub().add(combined, streams, tx, Arc::clone(&kick), Some(notice));
    let end = session_loop(&mut ws, shared, &mut stop, &kick, &mut rx, |text| shared.control(id, venue, text)).await;
    shared.lock_hub().remove(id);
    close_session(ws, shared, end, || {
        (end == End::Shutdown && shared.venues[venue].protocol == Protocol::Spot).then(|| {
            let time_ms = shared.lock_market().time_ms();
            let data = binance::server_shutdown(time_ms);
            if combined { binance::combined("!serverShutdown", &data) } else { data }
        })
    })
    .await;
}

/// Binance's shutdown notice as a combined stream carries it.
fn binance_notice_combined(time_ms: i64) -> String {
    binance::combined("!serverShutdown", &binance::server_shutdown(time_ms))
}

/// The loop of one websocket session, shared by the venue and Ethereum endpoints: pings and
/// the pong deadline, text requests answered with `on_text`, queued frames written in batches
/// (a stalled write counts as a slow client), until the client, a kick or `stop` ends it. The
/// caller has registered the client (`kick`, `rx`); this counts it as connected.
pub(super) async fn session_loop(
    ws: &mut WebSocketStream<TcpStream>,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
    kick: &Notify,
    rx: &mut mpsc::Receiver<Utf8Bytes>,
    mut on_text: impl FnMut(&str) -> String,
) -> End {
    bump(&shared.stats.clients, 1);
    bump(&shared.stats.connections, 1);
    let mut ping = interval_at(Instant::now() + shared.ping_interval, shared.ping_interval);
    let mut unanswered: Option<Instant> = None;
    loop {
        let pong_deadline = unanswered.map(|t| t + shared.pong_timeout);
        tokio::select! {
            biased;
            _ = stop.changed() => break End::Shutdown,
            () = kick.notified() => break End::Slow,
            () = sleep_until(pong_deadline.unwrap_or_else(Instant::now)), if pong_deadline.is_some() => {
                break End::PongTimeout;
            }
            _ = ping.tick() => {
                if !send(ws, Message::Ping(Bytes::new())).await {
                    break End::Gone;
                }
                unanswered.get_or_insert_with(Instant::now);
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let reply = on_text(text.as_str());
                    if !send(ws, Message::text(reply)).await {
                        break End::Gone;
                    }
                }
                Some(Ok(Message::Pong(_))) => unanswered = None,
                // Tungstenite queued the pong answering a ping; push it out now.
                Some(Ok(Message::Ping(_))) => {
                    if !matches!(timeout(WRITE_TIMEOUT, ws.flush()).await, Ok(Ok(()))) {
                        break End::Gone;
                    }
                }
                Some(Ok(Message::Binary(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) => break End::ClientClosed,
                Some(Err(_)) | None => break End::Gone,
            },
            frame = rx.recv() => {
                let Some(frame) = frame else { break End::Slow };
                if frame.as_str() == END_OF_SESSION {
                    break End::Fault;
                }
                // A stalled write must not hide a kick or a shutdown.
                tokio::select! {
                    biased;
                    _ = stop.changed() => break End::Shutdown,
                    () = kick.notified() => break End::Slow,
                    written = timeout(WRITE_TIMEOUT, write_batch(ws, frame, rx)) => match written {
                        Ok(Ok((n, false))) => bump(&shared.stats.frames_sent, n),
                        Ok(Ok((n, true))) => {
                            bump(&shared.stats.frames_sent, n);
                            break End::Fault;
                        }
                        Ok(Err(_)) => break End::Gone,
                        Err(_) => break End::Slow,
                    },
                }
            }
        }
    }
}

/// Ends a session the caller has unregistered: counts the disconnect and says the goodbye that
/// fits `end`, first sending the text frame `farewell` returns, if any, before the close frame.
pub(super) async fn close_session(
    mut ws: WebSocketStream<TcpStream>,
    shared: &Shared,
    end: End,
    farewell: impl FnOnce() -> Option<String>,
) {
    shared.stats.clients.fetch_sub(1, Ordering::Relaxed);
    bump(&shared.stats.disconnects, 1);
    let (code, reason) = match end {
        End::Gone => return,
        End::ClientClosed => {
            // Tungstenite queued the close reply; send it so the client sees a clean close.
            let _ = timeout(CLOSE_TIMEOUT, ws.flush()).await;
            return;
        }
        End::Shutdown => (CloseCode::Away, "server shutdown"),
        End::Slow => {
            bump(&shared.stats.slow_disconnects, 1);
            (CloseCode::Policy, "client too slow")
        }
        End::PongTimeout => {
            bump(&shared.stats.pong_timeouts, 1);
            (CloseCode::Policy, "pong timeout")
        }
        End::Fault => (CloseCode::Again, "injected fault"),
    };
    let _ = timeout(CLOSE_TIMEOUT, async {
        if let Some(frame) = farewell() {
            ws.send(Message::text(frame)).await?;
        }
        ws.close(Some(CloseFrame { code, reason: reason.into() })).await?;
        // Wait for the client's close reply so it sees a clean close.
        while let Some(Ok(_)) = ws.next().await {}
        Ok::<(), tungstenite::Error>(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_kicks_the_client_and_drops_it() {
        let mut hub = Hub::new(FaultConfig::default(), 1);
        let (tx, mut rx) = mpsc::channel(2);
        let kick = Arc::new(Notify::new());
        let key = (InstrumentId(0), StreamKind::BookTicker);
        let id = hub.add(true, vec![key], tx, Arc::clone(&kick), None);
        let (tx2, mut rx2) = mpsc::channel(100);
        hub.add(false, vec![key], tx2, Arc::new(Notify::new()), None);
        for _ in 0..3 {
            hub.publish(&key, "btcusdt@bookTicker", r#"{"u":1}"#, FrameClass::Other { stream: 0 });
        }
        assert!(hub.client(id).is_none());
        assert_eq!(hub.clients.len(), 1);
        assert_eq!(rx.try_recv().unwrap().as_str(), r#"{"stream":"btcusdt@bookTicker","data":{"u":1}}"#);
        let mut raw = 0;
        while let Ok(f) = rx2.try_recv() {
            assert_eq!(f.as_str(), r#"{"u":1}"#);
            raw += 1;
        }
        assert_eq!(raw, 3);
        // The kick is stored until the client task looks.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async { timeout(Duration::from_secs(1), kick.notified()).await.unwrap() });
    }

    #[test]
    fn request_heads_parse_and_route() {
        let head = b"GET /binance-spot/stream?streams=btcusdt%40bookTicker/ethusdt@aggTrade HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        let req = Request::parse(head).unwrap();
        assert_eq!(req.header("upgrade"), Some("WebSocket"));
        let cfg = crate::sim::tests::config();
        let reg = crate::sim::tests::registry();
        let shared = Shared::new(Market::new(&cfg, &reg).unwrap(), &reg, &cfg, &[]).unwrap();
        match route(&shared, &req) {
            Route::WebSocket { venue: 0, combined: true, streams, .. } => {
                assert_eq!(
                    streams,
                    [(InstrumentId(0), StreamKind::BookTicker), (InstrumentId(2), StreamKind::AggTrade)]
                );
            }
            _ => panic!("not a websocket route"),
        }
        let get = |target: &str| Request { method: "GET".into(), target: target.into(), headers: vec![] };
        assert!(matches!(
            route(&shared, &get("/binance-usdm/fapi/v1/depth?symbol=ETHUSDT&limit=5")),
            Route::Depth { instrument: InstrumentId(3), limit: 5 }
        ));
        assert!(matches!(
            route(&shared, &get("/binance-spot/fapi/v1/depth?symbol=BTCUSDT")),
            Route::PrivateRest { .. }
        ));
        assert!(matches!(route(&shared, &get("/binance-spot/api/v3/depth?symbol=XRPUSDT")), Route::Reply(400, _)));
        assert!(matches!(route(&shared, &get("/nowhere/api/v3/depth")), Route::Reply(404, _)));
        assert!(matches!(route(&shared, &get("/ethereum")), Route::Reply(400, _)));
        let eth = Request { headers: req.headers.clone(), ..get("/ethereum") };
        assert!(matches!(route(&shared, &eth), Route::Eth { .. }));
        let reply = shared.control(99, 0, r#"{"method":"SUBSCRIBE","params":["btcusdt@markPrice@1s"],"id":4}"#);
        assert!(reply.contains(r#""code":2"#) && reply.ends_with(r#""id":4}"#), "{reply}");
    }
}
