//! A replay venue on loopback: a seeded stream of Binance spot and USD-M frames, served over
//! real websockets at a fixed rate or as fast as the reader takes them.
//!
//! The handshake is tungstenite's server side; after it, frames are written as pre-encoded
//! websocket text frames (unmasked, as a server sends them) with plain `write_all`, so the
//! replay thread allocates nothing and costs as little as possible while the engine is measured.
//!
//! The stream is built to exercise the whole tick-to-order path: book tickers on both markets
//! whose basis swings across the basis strategy's entry and exit thresholds every 20 ticks, plus
//! spot `aggTrade`s, USD-M `depthUpdate`s with 5 + 5 levels and `markPriceUpdate`s.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbar_engine::clock::now_ns;

/// Which of the two connections a frame goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conn {
    /// `binance-spot` (BTCUSDT spot).
    Spot,
    /// `binance-usdm` (BTCUSDT perpetual).
    Usdm,
}

impl Conn {
    /// Venue name and URL path prefix.
    pub const fn venue(self) -> &'static str {
        match self {
            Self::Spot => crate::SPOT,
            Self::Usdm => crate::USDM,
        }
    }
}

/// One frame of the stream, already encoded as a websocket text frame.
#[derive(Clone, Debug)]
pub struct ReplayFrame {
    /// Destination connection.
    pub conn: Conn,
    wire: Vec<u8>,
    header: usize,
}

impl ReplayFrame {
    /// Wraps a JSON payload in a server-to-client websocket text frame.
    pub fn new(conn: Conn, payload: &[u8]) -> Self {
        let mut wire = Vec::with_capacity(payload.len() + 10);
        wire.push(0x81); // FIN + text
        let len = payload.len();
        if len < 126 {
            wire.push(len as u8);
        } else if let Ok(len16) = u16::try_from(len) {
            wire.push(126);
            wire.extend_from_slice(&len16.to_be_bytes());
        } else {
            wire.push(127);
            wire.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let header = wire.len();
        wire.extend_from_slice(payload);
        Self { conn, wire, header }
    }

    /// The JSON payload.
    pub fn payload(&self) -> &[u8] {
        &self.wire[self.header..]
    }

    /// The bytes on the wire (header + payload).
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }
}

/// xorshift64*: deterministic, dependency-free, good enough for a price walk.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Formats cents as `65000.01000000` (spot pads to 8 decimals, as Binance spot does).
fn spot_px(cents: u64) -> String {
    format!("{}.{:02}000000", cents / 100, cents % 100)
}

/// Formats tenths as `65000.1` (USD-M BTCUSDT prints the tick's precision).
fn perp_px(tenths: u64) -> String {
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// A seeded stream of `frames` frames (same seed, same bytes).
///
/// Per tick: a spot and a USD-M `bookTicker`; every 4th tick a spot `aggTrade`, every 8th a
/// USD-M `depthUpdate` (5 bids + 5 asks), every 64th a USD-M `markPriceUpdate`. The perp trades
/// ~15 bps over spot for 10 ticks, then at spot for 10, so the basis strategy enters and exits.
pub fn seeded_stream(seed: u64, frames: usize) -> Vec<ReplayFrame> {
    let mut rng = Rng(seed | 1);
    let mut out = Vec::with_capacity(frames);
    let mut mid_cents: u64 = 6_500_000; // 65,000.00
    let mut tick = 0u64;
    let (mut spot_u, mut perp_u, mut agg_id, mut depth_u) = (1_000u64, 5_000u64, 1u64, 9_000u64);
    let t0_ms: u64 = 1_764_000_000_000;
    while out.len() < frames {
        tick += 1;
        let ms = t0_ms + tick;
        mid_cents = (mid_cents + rng.below(21)).saturating_sub(10).max(1_000_000);
        let bid = mid_cents;
        let ask = mid_cents + 1;
        spot_u += 1;
        let spot = format!(
            r#"{{"stream":"btcusdt@bookTicker","data":{{"u":{spot_u},"s":"BTCUSDT","b":"{}","B":"1.{:05}000","a":"{}","A":"2.{:05}000"}}}}"#,
            spot_px(bid),
            rng.below(100_000),
            spot_px(ask),
            rng.below(100_000)
        );
        out.push(ReplayFrame::new(Conn::Spot, spot.as_bytes()));
        let wide = tick % 20 < 10;
        let perp_bid = bid / 10 + if wide { 1_000 } else { 0 };
        perp_u += 1;
        let perp = format!(
            r#"{{"stream":"btcusdt@bookTicker","data":{{"e":"bookTicker","u":{perp_u},"E":{ms},"T":{ms},"s":"BTCUSDT","b":"{}","B":"{}.{:03}","a":"{}","A":"{}.{:03}"}}}}"#,
            perp_px(perp_bid),
            1 + rng.below(9),
            rng.below(1000),
            perp_px(perp_bid + 1),
            1 + rng.below(9),
            rng.below(1000)
        );
        out.push(ReplayFrame::new(Conn::Usdm, perp.as_bytes()));
        if tick.is_multiple_of(4) {
            agg_id += 1;
            let trade = format!(
                r#"{{"stream":"btcusdt@aggTrade","data":{{"e":"aggTrade","E":{ms},"s":"BTCUSDT","a":{agg_id},"p":"{}","q":"0.{:05}000","f":{},"l":{},"T":{ms},"m":{},"M":true}}}}"#,
                spot_px(if rng.below(2) == 0 { bid } else { ask }),
                1 + rng.below(99_999),
                agg_id * 3,
                agg_id * 3 + 2,
                rng.below(2) == 0
            );
            out.push(ReplayFrame::new(Conn::Spot, trade.as_bytes()));
        }
        if tick.is_multiple_of(8) {
            let first = depth_u + 1;
            let prev = depth_u;
            depth_u += 1 + rng.below(5);
            let mut levels = String::new();
            for side in 0..2u64 {
                levels.push_str(if side == 0 { r#","b":["# } else { r#"],"a":["# });
                for l in 0..5u64 {
                    let px = if side == 0 { perp_bid - l } else { perp_bid + 1 + l };
                    if l > 0 {
                        levels.push(',');
                    }
                    levels.push_str(&format!(r#"["{}","{}.{:03}"]"#, perp_px(px), rng.below(20), rng.below(1000)));
                }
            }
            let depth = format!(
                r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":{ms},"T":{ms},"s":"BTCUSDT","U":{first},"u":{depth_u},"pu":{prev}{levels}]}}}}"#
            );
            out.push(ReplayFrame::new(Conn::Usdm, depth.as_bytes()));
        }
        if tick.is_multiple_of(64) {
            let mark = format!(
                r#"{{"stream":"btcusdt@markPrice@1s","data":{{"e":"markPriceUpdate","E":{ms},"s":"BTCUSDT","p":"{}.{:02}000000","i":"{}.{:02}000000","P":"{}.00000000","r":"0.00010000","T":{}}}}}"#,
                bid / 100,
                bid % 100,
                bid / 100,
                (bid + 7) % 100,
                bid / 100,
                t0_ms + 8 * 3_600_000
            );
            out.push(ReplayFrame::new(Conn::Usdm, mark.as_bytes()));
        }
    }
    out.truncate(frames);
    out
}

/// How fast the replay server sends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// Frame `k` is due at start + k / rate (a late frame goes out at once; the schedule holds).
    Rate(f64),
    /// As fast as the reader takes them, frames written in batches.
    Max,
}

/// What the replay server did.
#[derive(Clone, Copy, Debug, Default)]
pub struct SendStats {
    /// Frames written.
    pub frames: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Monotonic ns just before the first write.
    pub started_ns: u64,
    /// Monotonic ns right after the last write.
    pub finished_ns: u64,
}

/// Why the replay server failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Socket error.
    #[error("replay server: {0}")]
    Io(#[from] std::io::Error),
    /// The engine did not connect both feeds in time, or the driver went away.
    #[error("replay server: {0}")]
    Timeout(&'static str),
    /// The websocket handshake failed.
    #[error("replay server handshake: {0}")]
    Handshake(String),
}

/// A running replay server: accepts the spot and USD-M connections, waits for [`go`], sends the
/// stream, then holds the connections open until [`finish`].
///
/// [`go`]: ReplayServer::go
/// [`finish`]: ReplayServer::finish
pub struct ReplayServer {
    addr: SocketAddr,
    go: Sender<()>,
    done: Sender<()>,
    handle: JoinHandle<Result<SendStats, ReplayError>>,
}

const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes per write at maximum rate, per connection (a few hundred frames).
const MAX_BATCH: usize = 64 * 1024;

impl ReplayServer {
    /// Binds `127.0.0.1:0` and starts the server thread (pinned to `core` when given).
    ///
    /// # Errors
    /// When the socket cannot be bound or the thread cannot start.
    pub fn start(frames: Arc<Vec<ReplayFrame>>, pace: Pace, core: Option<usize>) -> Result<Self, ReplayError> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let (go, go_rx) = channel();
        let (done, done_rx) = channel();
        let handle = crossbar_engine::runtime::spawn_pinned("crossbar-replay", core, move || {
            // At a fixed rate the replay server is the venue and the network: as a background
            // thread on the I/O core it writes its frames when the I/O thread waits for them,
            // and never preempts the I/O thread while that is writing an order (a venue's and a
            // network's work happens elsewhere). At maximum rate it must compete, or the I/O
            // thread's polling would starve the very stream it measures.
            if matches!(pace, Pace::Rate(_)) {
                let _ = crossbar_engine::runtime::set_current_thread_background();
            }
            serve(&listener, &frames, pace, &go_rx, &done_rx)
        })
        .map_err(|e| ReplayError::Io(std::io::Error::other(e.to_string())))?;
        Ok(Self { addr, go, done, handle })
    }

    /// The websocket URL of a connection.
    pub fn url(&self, conn: Conn) -> String {
        format!("ws://{}/{}/stream?streams=btcusdt@bookTicker", self.addr, conn.venue())
    }

    /// Starts sending (once both connections are up).
    pub fn go(&self) {
        let _ = self.go.send(());
    }

    /// Closes the connections and returns what was sent.
    ///
    /// # Errors
    /// The server thread's error, if it had one.
    pub fn finish(self) -> Result<SendStats, ReplayError> {
        let _ = self.done.send(());
        self.handle.join().map_err(|_| ReplayError::Timeout("replay thread panicked"))?
    }
}

// tungstenite's handshake callback type fixes its (large) error type.
#[allow(clippy::result_large_err)]
fn accept_one(
    listener: &TcpListener,
    deadline: Instant,
) -> Result<(Conn, TcpStream, tungstenite::WebSocket<TcpStream>), ReplayError> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                stream.set_nodelay(true)?;
                let mut conn = None;
                let ws = tungstenite::accept_hdr(
                    stream,
                    |req: &tungstenite::handshake::server::Request, resp: tungstenite::handshake::server::Response| {
                        let path = req.uri().path();
                        conn = if path.starts_with(&format!("/{}/", crate::USDM)) {
                            Some(Conn::Usdm)
                        } else if path.starts_with(&format!("/{}/", crate::SPOT)) {
                            Some(Conn::Spot)
                        } else {
                            None
                        };
                        Ok(resp)
                    },
                )
                .map_err(|e| ReplayError::Handshake(e.to_string()))?;
                let raw = ws.get_ref().try_clone()?;
                let Some(conn) = conn else { return Err(ReplayError::Handshake("unknown path".into())) };
                return Ok((conn, raw, ws));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err(ReplayError::Timeout("the engine did not connect"));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn serve(
    listener: &TcpListener,
    frames: &[ReplayFrame],
    pace: Pace,
    go: &Receiver<()>,
    done: &Receiver<()>,
) -> Result<SendStats, ReplayError> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + ACCEPT_TIMEOUT;
    let (c1, s1, ws1) = accept_one(listener, deadline)?;
    let (c2, s2, ws2) = accept_one(listener, deadline)?;
    if c1 == c2 {
        return Err(ReplayError::Handshake("both connections asked for the same venue".into()));
    }
    let (mut spot, mut usdm) = if c1 == Conn::Spot { (s1, s2) } else { (s2, s1) };
    go.recv_timeout(ACCEPT_TIMEOUT).map_err(|_| ReplayError::Timeout("no go signal"))?;
    let mut stats = SendStats { started_ns: now_ns(), ..SendStats::default() };
    match pace {
        Pace::Rate(rate) => {
            let period_ns = 1e9 / rate.max(1.0);
            for (k, f) in frames.iter().enumerate() {
                let due = stats.started_ns + (k as f64 * period_ns) as u64;
                let now = now_ns();
                if due > now {
                    std::thread::sleep(Duration::from_nanos(due - now));
                }
                let sock = if f.conn == Conn::Spot { &mut spot } else { &mut usdm };
                sock.write_all(f.wire())?;
                stats.frames += 1;
                stats.bytes += f.wire().len() as u64;
            }
        }
        Pace::Max => {
            // One batch per connection, each written when full: the frames of a connection keep
            // their order, and each write carries hundreds of frames whichever way the stream
            // alternates between the two (batching across the alternation instead gave a write
            // syscall, and a loopback delivery, per one or two frames).
            let mut batches = [Vec::with_capacity(MAX_BATCH), Vec::with_capacity(MAX_BATCH)];
            for f in frames {
                let (i, sock) = if f.conn == Conn::Spot { (0, &mut spot) } else { (1, &mut usdm) };
                let batch = &mut batches[i];
                if batch.len() + f.wire().len() > MAX_BATCH {
                    sock.write_all(batch)?;
                    batch.clear();
                }
                batch.extend_from_slice(f.wire());
                stats.frames += 1;
                stats.bytes += f.wire().len() as u64;
            }
            spot.write_all(&batches[0])?;
            usdm.write_all(&batches[1])?;
        }
    }
    stats.finished_ns = now_ns();
    // Hold the connections open (the engine would otherwise see a disconnect) until told.
    let _ = done.recv_timeout(Duration::from_secs(120));
    drop((ws1, ws2));
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_seeded_and_framed() {
        let a = seeded_stream(7, 500);
        let b = seeded_stream(7, 500);
        assert_eq!(a.len(), 500);
        assert!(a.iter().zip(&b).all(|(x, y)| x.wire() == y.wire()));
        for f in &a {
            assert_eq!(f.wire()[0], 0x81);
            serde_json::from_slice::<serde_json::Value>(f.payload()).unwrap();
        }
        let short = ReplayFrame::new(Conn::Spot, b"{}");
        assert_eq!(short.wire(), &[0x81, 2, b'{', b'}']);
        let long = ReplayFrame::new(Conn::Spot, &[b' '; 300]);
        assert_eq!(&long.wire()[..4], &[0x81, 126, 1, 44]);
        assert_eq!(long.payload().len(), 300);
    }
}
