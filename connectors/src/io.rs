//! The I/O thread: one pinned thread owns a venue group's sockets and its order gateway.
//!
//! Per frame: read (stamp `recv`), decode into a caller-owned buffer (stamp `decoded`), let the
//! gateway see the events, push them onto the core's ring. Per command from the core: hand it to
//! the gateway (stamp `order_written`). Gateway answers go back to the core on a ring that never
//! drops. Nothing here allocates per event after warm-up, locks, or blocks beyond socket I/O.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbar_engine::clock::now_ns;
use crossbar_engine::event::{FeedStatus, MarketBody, MarketEvent, OrderCommand, OrderEvent, SeqIds};
use crossbar_engine::gateway::{Gateway, VenueCounters};
use crossbar_engine::instrument::InstrumentId;
use crossbar_engine::latency::{LatencyRecorder, Stage};
use crossbar_engine::orderbook::Resync;
use crossbar_engine::ring::{IdlePolicy, Idler, Ring};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::feed::{FeedDecoder, FrameKind};
use crate::snapshot::{SnapshotFetcher, SnapshotRequest};
use crate::ws::{Read, WsConn, WsError};

/// One market-data connection to open: where, how to decode it, which instruments it carries.
#[derive(Debug)]
pub struct FeedSpec<D> {
    /// Venue name, for logs and reports.
    pub venue: String,
    /// Full websocket URL including the stream path.
    pub url: String,
    /// Text frames to send once connected, in order (subscribe requests), if the venue needs
    /// them.
    pub subscribe: Vec<String>,
    /// The connection's keep-alive: application pings and the idle timeout.
    pub heartbeat: Heartbeat,
    /// Per instrument, the frames that resubscribe its book on the open connection (the venue
    /// answers with a fresh snapshot); an instrument without them resyncs by reconnecting.
    pub resubscribe: Vec<(InstrumentId, Vec<String>)>,
    /// The decoder for this connection's frames.
    pub decoder: D,
    /// Instruments whose data arrives on it (status events go to these).
    pub instruments: Vec<InstrumentId>,
    /// REST snapshot URL per instrument, for venues whose depth books start from one.
    pub snapshot_urls: Vec<(InstrumentId, String)>,
}

/// How a connection proves it is alive. The ping text is a `'static` constant, so sending it
/// allocates nothing; all timer checks run on the I/O thread's 1 ms maintenance tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// Application-level ping text (`{"op":"ping"}`, `ping`), for venues that want one.
    pub ping: Option<&'static str>,
    /// Ping period in ns (0: never).
    pub every_ns: u64,
    /// Ping only after `every_ns` without any incoming frame (OKX), rather than every
    /// `every_ns` whatever arrives (Bybit).
    pub when_quiet: bool,
    /// No frame at all (data, pong or control) for this long: the connection is presumed dead
    /// and reconnected (0: never).
    pub idle_timeout_ns: u64,
}

impl Default for Heartbeat {
    /// No application ping; reconnect after 60 s of silence.
    fn default() -> Self {
        Self { ping: None, every_ns: 0, when_quiet: false, idle_timeout_ns: 60_000_000_000 }
    }
}

/// The rings an I/O thread shares with the core thread.
#[derive(Debug, Clone)]
pub struct IoRings {
    /// Market events to the core.
    pub market: Arc<Ring<MarketEvent>>,
    /// Order events to the core.
    pub orders: Arc<Ring<OrderEvent>>,
    /// Order commands from the core.
    pub commands: Arc<Ring<OrderCommand>>,
}

/// Counters of one I/O thread; every defined bad-input behaviour has one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoCounters {
    /// Data frames read.
    pub frames: u64,
    /// Payload bytes read.
    pub bytes: u64,
    /// Market events produced.
    pub events: u64,
    /// Frames refused by the decoder (malformed): dropped, counted.
    pub decode_errors: u64,
    /// Valid frames of unknown kind.
    pub unknown_frames: u64,
    /// Frames for symbols this connection does not track.
    pub unknown_symbol: u64,
    /// Subscribe acknowledgements.
    pub subscribe_acks: u64,
    /// Venue shutdown notices (each triggers a reconnect).
    pub server_shutdowns: u64,
    /// Connections lost.
    pub disconnects: u64,
    /// Successful (re)connects.
    pub connects: u64,
    /// Failed connect attempts.
    pub connect_failures: u64,
    /// Quotes dropped because the core's ring was full (conflation).
    pub quotes_conflated: u64,
    /// Commands handed to the gateway.
    pub commands: u64,
    /// Commands the gateway refused.
    pub gateway_errors: u64,
    /// Order events passed to the core.
    pub order_events: u64,
    /// Book resyncs the core asked for.
    pub resync_requests: u64,
    /// REST snapshots injected.
    pub snapshots: u64,
    /// Snapshot fetches that failed (network, HTTP status, malformed body); the core asks again.
    pub snapshot_failures: u64,
    /// Book resyncs done by resubscribing on the open connection (Bybit, OKX).
    pub resubscribes: u64,
    /// Application pings sent.
    pub pings: u64,
    /// Heartbeat replies received (`pong`).
    pub pongs: u64,
    /// Connections dropped because nothing arrived for the idle timeout.
    pub idle_timeouts: u64,
    /// ns from the latest lost connection to its feed being connected again, `None` before the
    /// first reconnect (the books' own time to whole adds the resync; see the core's books).
    pub last_reconnect_ns: Option<u64>,
    /// Longest time from a lost connection to connected again, ns.
    pub max_reconnect_ns: u64,
}

/// Counters of one feed (connection) of an I/O thread: what a desk reads per venue to see how
/// healthy its connection was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedCounters {
    /// The feed's venue.
    pub venue: String,
    /// Successful connects (the first included).
    pub connects: u64,
    /// Connections lost (errors, closes, shutdown notices, resubscribes).
    pub disconnects: u64,
    /// Venue shutdown notices received.
    pub server_shutdowns: u64,
    /// Frames the decoder refused as malformed.
    pub malformed: u64,
    /// ns from the latest lost connection to connected again, `None` before the first.
    pub last_reconnect_ns: Option<u64>,
    /// Longest time from a lost connection to connected again, ns.
    pub max_reconnect_ns: u64,
}

/// Decodes frames and moves their events to the core: the per-frame hot path, separate from the
/// socket loop so it is tested and benchmarked on its own.
#[derive(Debug)]
pub struct FramePipeline {
    scratch: Vec<MarketEvent>,
    latency: LatencyRecorder,
    counters: IoCounters,
}

impl Default for FramePipeline {
    fn default() -> Self {
        Self::new()
    }
}

impl FramePipeline {
    /// A pipeline with its buffers allocated.
    pub fn new() -> Self {
        Self { scratch: Vec::with_capacity(4_096), latency: LatencyRecorder::new(), counters: IoCounters::default() }
    }

    /// Decodes `frame` (received at `recv_ns`), shows its events to `gateway`, pushes them onto
    /// `ring`. Quotes are conflated when the ring is full; every other event waits for space.
    #[inline]
    pub fn on_frame<D: FeedDecoder, G: Gateway + ?Sized>(
        &mut self,
        decoder: &mut D,
        frame: &mut [u8],
        recv_ns: u64,
        gateway: &mut G,
        ring: &Ring<MarketEvent>,
    ) -> FrameKind {
        self.counters.frames += 1;
        self.counters.bytes += frame.len() as u64;
        self.scratch.clear();
        let kind = match decoder.decode(frame, recv_ns, &mut self.scratch) {
            Ok(kind) => kind,
            Err(_) => {
                self.counters.decode_errors += 1;
                return FrameKind::Unknown;
            }
        };
        match kind {
            FrameKind::Market => {}
            FrameKind::UnknownSymbol => self.counters.unknown_symbol += 1,
            FrameKind::SubscribeAck => self.counters.subscribe_acks += 1,
            FrameKind::ServerShutdown => self.counters.server_shutdowns += 1,
            FrameKind::Unknown => self.counters.unknown_frames += 1,
            FrameKind::Pong => self.counters.pongs += 1,
        }
        let decoded_ns = now_ns();
        for ev in &mut self.scratch {
            ev.decoded_ns = decoded_ns;
            self.latency.record(Stage::RecvToDecoded, ev.recv_ns, decoded_ns);
            gateway.on_market(ev);
            self.counters.events += 1;
            if matches!(ev.body, MarketBody::Quote(_)) {
                if !ring.push_or_drop(*ev) {
                    self.counters.quotes_conflated += 1;
                }
            } else {
                ring.push_lossless(*ev);
            }
        }
        kind
    }

    /// Hands one command to the gateway and records its latency stages.
    ///
    /// `tick_to_order` (and `risk_passed_to_order_written`) end right after `send` returns
    /// `Ok`: a venue session encodes, signs and writes the order's bytes to its socket inside
    /// `send` (`WsConn::send_raw_text`), so the stage ends when the signed bytes are written.
    #[inline]
    pub fn on_command<G: Gateway + ?Sized>(&mut self, cmd: &OrderCommand, gateway: &mut G) {
        let now = now_ns();
        if gateway.send(cmd, now).is_err() {
            self.counters.gateway_errors += 1;
            return;
        }
        self.counters.commands += 1;
        if let OrderCommand::New { stamps, .. } = cmd {
            let written = now_ns();
            self.latency.record(Stage::RiskPassedToOrderWritten, stamps.risk_passed_ns, written);
            self.latency.record(Stage::CommandToOrderWritten, now, written);
            self.latency.record(Stage::TickToOrder, stamps.tick_recv_ns, written);
        }
    }

    /// Counters so far.
    pub fn counters(&self) -> &IoCounters {
        &self.counters
    }

    /// This thread's histograms.
    pub fn latency(&self) -> &LatencyRecorder {
        &self.latency
    }
}

struct Feed<D> {
    spec: FeedSpec<D>,
    conn: Option<WsConn>,
    next_attempt_ns: u64,
    backoff_ns: u64,
    /// When the last frame of any kind arrived (or the connection opened).
    last_recv_ns: u64,
    /// When the last application ping went out (or the connection opened).
    last_ping_ns: u64,
    counters: FeedCounters,
    /// When the connection was lost, while it is down after having been up.
    down_since_ns: Option<u64>,
}

const MIN_BACKOFF_NS: u64 = 100_000_000;
const MAX_BACKOFF_NS: u64 = 5_000_000_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const MAINTENANCE_INTERVAL_NS: u64 = 1_000_000;
/// While spinning before it parks, how long the I/O thread watches only the command ring between
/// two rounds of socket polls.
const IDLE_WATCH_NS: u64 = 2_000;
/// How long a parking I/O thread keeps polling after its last piece of work, unless set with
/// [`IoThread::spin_before_park`].
pub const DEFAULT_SPIN_BEFORE_PARK: Duration = Duration::from_micros(50);
/// Token of the waker; feeds use their index.
const WAKE_TOKEN: Token = Token(usize::MAX);
/// Token of the gateway's readiness descriptor (its own epoll instance).
const GATEWAY_TOKEN: Token = Token(usize::MAX - 1);

/// What an I/O thread hands back when it stops.
#[derive(Debug)]
pub struct IoReport {
    /// Its counters.
    pub counters: IoCounters,
    /// Its histograms.
    pub latency: LatencyRecorder,
    /// Its gateway's protocol name.
    pub gateway: &'static str,
    /// Per feed counters, in feed order.
    pub feeds: Vec<FeedCounters>,
    /// Per venue order-entry counters, as the gateway reported them at the end.
    pub venues: Vec<VenueCounters>,
}

/// The I/O thread's state: feeds, gateway, rings.
pub struct IoThread<D, G> {
    poll: Poll,
    feeds: Vec<Feed<D>>,
    gateway: G,
    rings: IoRings,
    pipeline: FramePipeline,
    read_buf: Vec<u8>,
    idle: IdlePolicy,
    spin_before_park_ns: u64,
    waker: Arc<Waker>,
    jitter: u64,
    fetcher: Option<SnapshotFetcher>,
    snapshot_events: Vec<MarketEvent>,
}

impl<D: FeedDecoder, G: Gateway> IoThread<D, G> {
    /// Prepares the thread; connections open in [`IoThread::run`].
    ///
    /// # Errors
    /// When the OS refuses an epoll instance.
    pub fn new(feeds: Vec<FeedSpec<D>>, gateway: G, rings: IoRings, idle: IdlePolicy) -> std::io::Result<Self> {
        let feeds = feeds
            .into_iter()
            .map(|spec| {
                let counters = FeedCounters { venue: spec.venue.clone(), ..FeedCounters::default() };
                Feed {
                    spec,
                    conn: None,
                    next_attempt_ns: 0,
                    backoff_ns: MIN_BACKOFF_NS,
                    last_recv_ns: 0,
                    last_ping_ns: 0,
                    counters,
                    down_since_ns: None,
                }
            })
            .collect();
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE_TOKEN)?);
        // A private frame on a venue session wakes a parked thread like a market frame does.
        if let Some(fd) = gateway.readiness_fd() {
            poll.registry().register(&mut SourceFd(&fd), GATEWAY_TOKEN, Interest::READABLE)?;
        }
        Ok(Self {
            poll,
            waker,
            feeds,
            gateway,
            rings,
            pipeline: FramePipeline::new(),
            read_buf: Vec::with_capacity(1 << 20),
            idle,
            spin_before_park_ns: DEFAULT_SPIN_BEFORE_PARK.as_nanos() as u64,
            jitter: 0x9E37_79B9_7F4A_7C15,
            fetcher: None,
            snapshot_events: Vec::with_capacity(4_096),
        })
    }

    /// With [`IdlePolicy::Park`]: keep polling for `window` after the last piece of work before
    /// sleeping in epoll. The order a tick causes comes back from the core a few microseconds
    /// after the tick was pushed; a thread still polling sends it at once, where a parked one
    /// must first be woken, which costs tens of microseconds on a virtual CPU and is the whole
    /// of `risk_passed_to_order_written` otherwise. Zero parks at once.
    #[must_use]
    pub fn spin_before_park(mut self, window: Duration) -> Self {
        self.spin_before_park_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        self
    }

    /// A handle that wakes this thread from its epoll sleep: the core calls it after pushing
    /// commands when the I/O thread parks.
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// Runs until `stop` is set; returns counters and histograms.
    ///
    /// With `park`, the thread sleeps in epoll until a socket is readable (a feed's, or one of
    /// the gateway's through its readiness descriptor), the core wakes it for commands, the
    /// gateway has an answer due, or maintenance (reconnects, the gateway's logins and pings) is
    /// due (1 ms); but for [`IoThread::spin_before_park`] after its last work it keeps polling.
    /// With `spin` or `yield` it polls without blocking.
    pub fn run(mut self, stop: &AtomicBool) -> IoReport {
        let mut events = Events::with_capacity(64);
        let mut idler = Idler::new(self.idle);
        let mut next_maintenance = 0u64;
        let mut worked = true;
        let mut last_work_ns = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let now = now_ns();
            if now >= next_maintenance {
                self.maintain(now);
                next_maintenance = now + MAINTENANCE_INTERVAL_NS;
            }
            if worked {
                last_work_ns = now;
            }
            let spinning = now.saturating_sub(last_work_ns) < self.spin_before_park_ns;
            let timeout = if worked || spinning || self.idle != IdlePolicy::Park {
                Duration::ZERO
            } else {
                let due = self.gateway.next_due_ns().unwrap_or(u64::MAX).min(next_maintenance);
                Duration::from_nanos(due.saturating_sub(now_ns()))
            };
            worked = false;
            if self.poll.poll(&mut events, Some(timeout)).is_ok() {
                for ev in &events {
                    // The waker and the gateway's descriptor only wake the loop: the gateway is
                    // polled below on every iteration.
                    if ev.token() != WAKE_TOKEN && ev.token() != GATEWAY_TOKEN {
                        self.drain_feed(ev.token().0);
                    }
                    worked = true;
                }
            }
            while let Some(cmd) = self.rings.commands.pop() {
                match cmd {
                    OrderCommand::Resync { instrument, how, .. } => self.resync(instrument, how),
                    _ => self.pipeline.on_command(&cmd, &mut self.gateway),
                }
                worked = true;
            }
            worked |= self.inject_snapshots();
            let orders = &self.rings.orders;
            let counters = &mut self.pipeline.counters;
            self.gateway.poll(now_ns(), &mut |ev| {
                counters.order_events += 1;
                orders.push_lossless(ev);
            });
            if worked {
                idler.busy();
            } else if self.idle != IdlePolicy::Park {
                idler.idle();
            } else if spinning {
                // Nothing came in: watch only the command ring for a moment, without a system
                // call, so an order the core is about to send is written within nanoseconds
                // rather than after the next round of epoll calls (about a microsecond each on
                // a virtual machine). Sockets are polled again after at most IDLE_WATCH_NS.
                let until = now_ns() + IDLE_WATCH_NS;
                while self.rings.commands.is_empty() && now_ns() < until {
                    std::hint::spin_loop();
                }
            }
        }
        for f in &mut self.feeds {
            if let Some(c) = f.conn.as_mut() {
                c.close();
            }
        }
        let feeds = self.feeds.iter().map(|f| f.counters.clone()).collect();
        let mut venues = Vec::new();
        self.gateway.venue_counters(&mut venues);
        IoReport {
            counters: self.pipeline.counters,
            latency: self.pipeline.latency,
            gateway: self.gateway.name(),
            feeds,
            venues,
        }
    }

    /// Starts healing an instrument's depth book: a REST snapshot fetched off-thread, or a
    /// reconnect (which resubscribes, and the venue answers with a snapshot).
    fn resync(&mut self, instrument: InstrumentId, how: Resync) {
        self.pipeline.counters.resync_requests += 1;
        let Some(idx) = self.feeds.iter().position(|f| f.spec.instruments.contains(&instrument)) else { return };
        match how {
            Resync::Resubscribe => {
                let feed = &mut self.feeds[idx];
                let frames = feed.spec.resubscribe.iter().find(|(i, _)| *i == instrument).map(|(_, f)| f);
                let (Some(conn), Some(frames)) = (feed.conn.as_mut(), frames) else {
                    return self.disconnect(idx);
                };
                let sent = frames.iter().try_for_each(|f| conn.send_text(f)).and_then(|()| conn.flush());
                if sent.is_ok() {
                    self.pipeline.counters.resubscribes += 1;
                } else {
                    self.disconnect(idx);
                }
            }
            Resync::FetchSnapshot => {
                let Some((_, url)) = self.feeds[idx].spec.snapshot_urls.iter().find(|(i, _)| *i == instrument) else {
                    return;
                };
                let req = SnapshotRequest { feed: idx, instrument, url: url.clone() };
                if self.fetcher.is_none() {
                    self.fetcher = SnapshotFetcher::spawn().ok();
                }
                // A refused request is asked again by the core after its retry interval.
                if !self.fetcher.as_ref().is_some_and(|f| f.request(req)) {
                    self.pipeline.counters.snapshot_failures += 1;
                }
            }
        }
    }

    /// Pushes every fetched snapshot onto the market ring as one contiguous message.
    fn inject_snapshots(&mut self) -> bool {
        let Some(fetcher) = &self.fetcher else { return false };
        let mut any = false;
        while let Some(resp) = fetcher.try_recv() {
            any = true;
            let Some(feed) = self.feeds.get_mut(resp.feed) else { continue };
            let Ok(body) = resp.body else {
                self.pipeline.counters.snapshot_failures += 1;
                continue;
            };
            self.snapshot_events.clear();
            let now = now_ns();
            match feed.spec.decoder.snapshot(&body, resp.instrument, now, &mut self.snapshot_events) {
                Ok(true) => {
                    self.pipeline.counters.snapshots += 1;
                    let decoded = now_ns();
                    for ev in &mut self.snapshot_events {
                        ev.decoded_ns = decoded;
                        self.rings.market.push_lossless(*ev);
                    }
                }
                Ok(false) | Err(_) => self.pipeline.counters.snapshot_failures += 1,
            }
        }
        any
    }

    /// Reads every message a feed has ready and pushes its events.
    fn drain_feed(&mut self, idx: usize) {
        let Some(feed) = self.feeds.get_mut(idx) else { return };
        let Some(conn) = feed.conn.as_mut() else { return };
        loop {
            match conn.read(&mut self.read_buf) {
                Ok(Read::Data(_)) => {
                    let recv = now_ns();
                    feed.last_recv_ns = recv;
                    let errors_before = self.pipeline.counters.decode_errors;
                    let kind = self.pipeline.on_frame(
                        &mut feed.spec.decoder,
                        &mut self.read_buf,
                        recv,
                        &mut self.gateway,
                        &self.rings.market,
                    );
                    feed.counters.malformed += self.pipeline.counters.decode_errors - errors_before;
                    if kind == FrameKind::ServerShutdown {
                        feed.counters.server_shutdowns += 1;
                        // The venue will close this socket soon: reconnect now, on our terms.
                        self.disconnect(idx);
                        return;
                    }
                }
                Ok(Read::Control) => feed.last_recv_ns = now_ns(),
                Ok(Read::WouldBlock) => break,
                Err(_) => {
                    self.disconnect(idx);
                    return;
                }
            }
        }
        if conn.flush().is_err() {
            self.disconnect(idx);
        }
    }

    fn disconnect(&mut self, idx: usize) {
        let feed = &mut self.feeds[idx];
        if let Some(mut conn) = feed.conn.take() {
            let fd = conn.raw_fd();
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            conn.close();
            self.pipeline.counters.disconnects += 1;
            feed.counters.disconnects += 1;
            feed.down_since_ns = Some(now_ns());
            publish_status(&self.rings.market, &feed.spec.instruments, FeedStatus::Disconnected);
        }
        feed.next_attempt_ns = now_ns();
    }

    /// Keeps open connections alive (pings, idle timeout) and reconnects feeds that are down
    /// and due, with jittered exponential back-off; lets the gateway do its own upkeep
    /// (connects, logins, pings of its order sessions).
    fn maintain(&mut self, now: u64) {
        self.gateway.maintain(now);
        for idx in 0..self.feeds.len() {
            let feed = &mut self.feeds[idx];
            if let Some(conn) = feed.conn.as_mut() {
                let hb = feed.spec.heartbeat;
                if hb.idle_timeout_ns > 0 && now.saturating_sub(feed.last_recv_ns) >= hb.idle_timeout_ns {
                    self.pipeline.counters.idle_timeouts += 1;
                    self.disconnect(idx);
                    continue;
                }
                let since = if hb.when_quiet { feed.last_recv_ns.max(feed.last_ping_ns) } else { feed.last_ping_ns };
                if let Some(ping) = hb.ping
                    && hb.every_ns > 0
                    && now.saturating_sub(since) >= hb.every_ns
                {
                    feed.last_ping_ns = now;
                    if conn.send_static(ping).and_then(|()| conn.flush()).is_err() {
                        self.disconnect(idx);
                    } else {
                        self.pipeline.counters.pings += 1;
                    }
                }
                continue;
            }
            if now < feed.next_attempt_ns {
                continue;
            }
            match open(&feed.spec) {
                Ok(conn) => {
                    let fd = conn.raw_fd();
                    if self.poll.registry().register(&mut SourceFd(&fd), Token(idx), Interest::READABLE).is_err() {
                        self.pipeline.counters.connect_failures += 1;
                        continue;
                    }
                    feed.conn = Some(conn);
                    feed.backoff_ns = MIN_BACKOFF_NS;
                    (feed.last_recv_ns, feed.last_ping_ns) = (now, now);
                    self.pipeline.counters.connects += 1;
                    feed.counters.connects += 1;
                    if let Some(t) = feed.down_since_ns.take() {
                        let dt = now_ns().saturating_sub(t);
                        let (io, fc) = (&mut self.pipeline.counters, &mut feed.counters);
                        io.last_reconnect_ns = Some(dt);
                        io.max_reconnect_ns = io.max_reconnect_ns.max(dt);
                        fc.last_reconnect_ns = Some(dt);
                        fc.max_reconnect_ns = fc.max_reconnect_ns.max(dt);
                    }
                    publish_status(&self.rings.market, &feed.spec.instruments, FeedStatus::Connected);
                    // Bytes that arrived with the handshake do not raise a new edge: read them now.
                    self.drain_feed(idx);
                }
                Err(_) => {
                    self.pipeline.counters.connect_failures += 1;
                    self.jitter ^= self.jitter << 13;
                    self.jitter ^= self.jitter >> 7;
                    self.jitter ^= self.jitter << 17;
                    let jitter = self.jitter % (feed.backoff_ns / 2 + 1);
                    feed.next_attempt_ns = now + feed.backoff_ns / 2 + jitter;
                    feed.backoff_ns = (feed.backoff_ns * 2).min(MAX_BACKOFF_NS);
                }
            }
        }
    }
}

fn open<D>(spec: &FeedSpec<D>) -> Result<WsConn, WsError> {
    let mut conn = WsConn::connect(&spec.url, CONNECT_TIMEOUT)?;
    for frame in &spec.subscribe {
        conn.send_text(frame)?;
    }
    conn.flush()?;
    Ok(conn)
}

fn publish_status(ring: &Ring<MarketEvent>, instruments: &[InstrumentId], status: FeedStatus) {
    let now = now_ns();
    for &instrument in instruments {
        ring.push_lossless(MarketEvent {
            instrument,
            exch_ts_ms: 0,
            recv_ns: now,
            decoded_ns: now,
            seq: SeqIds::default(),
            body: MarketBody::Status(status),
        });
    }
}
