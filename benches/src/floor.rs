//! The floors a latency figure is judged against, measured in the same run on the same machine:
//! the kernel's loopback TCP round trip for a frame of a given size, and a bare ring hop between
//! two pinned threads. A stage's budget is then a multiple of what the machine can do at all
//! right now, which survives a noisy or slower box far better than a fixed number of ns.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbar_engine::clock::now_ns;
use crossbar_engine::latency::{MAX_TRACKED_NS, StageSummary};
use crossbar_engine::ring::Ring;
use crossbar_engine::runtime::spawn_pinned;
use hdrhistogram::Histogram;

/// Round trips done before any is recorded.
const WARM_UP: usize = 500;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).expect("static bounds are valid")
}

/// One-way ring hop: half the round trip of a `u64` sent through one engine [`Ring`] and echoed
/// back through another, between a thread on `cores.0` and one on `cores.1`, both spinning.
///
/// # Errors
/// When a thread cannot be spawned.
pub fn ring_hop(samples: usize, cores: (Option<usize>, Option<usize>)) -> std::io::Result<StageSummary> {
    let ping: Arc<Ring<u64>> = Ring::new(8);
    let pong: Arc<Ring<u64>> = Ring::new(8);
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let (ping, pong, stop) = (Arc::clone(&ping), Arc::clone(&pong), Arc::clone(&stop));
        spawn_pinned("floor-ring-echo", cores.0, move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(v) = ping.pop() {
                    pong.push_lossless(v);
                } else {
                    std::hint::spin_loop();
                }
            }
        })
        .map_err(std::io::Error::other)?
    };
    let timer = spawn_pinned("floor-ring", cores.1, move || {
        let mut h = histogram();
        for i in 0..(WARM_UP + samples) as u64 {
            let t0 = now_ns();
            ping.push_lossless(i);
            loop {
                if pong.pop().is_some() {
                    break;
                }
                std::hint::spin_loop();
            }
            let rtt = now_ns().saturating_sub(t0);
            if i >= WARM_UP as u64 {
                let _ = h.record((rtt / 2).clamp(1, MAX_TRACKED_NS));
            }
        }
        h
    })
    .map_err(std::io::Error::other)?;
    let h = timer.join().map_err(|_| std::io::Error::other("ring floor thread panicked"));
    stop.store(true, Ordering::Relaxed);
    let _ = echo.join();
    Ok(StageSummary::of(&h?))
}

/// Loopback TCP round trip of a `frame_bytes` message (`TCP_NODELAY`, blocking reads, so each
/// direction pays a wake-up as the engine's I/O thread does), between `cores.0` and `cores.1`.
///
/// # Errors
/// A socket error.
pub fn loopback_rtt(
    samples: usize,
    frame_bytes: usize,
    cores: (Option<usize>, Option<usize>),
) -> std::io::Result<StageSummary> {
    tcp_round_trips(samples, frame_bytes, cores, false)
}

/// Loopback TCP round trip of a `frame_bytes` message with both ends busy-polling non-blocking
/// sockets: the kernel's own cost of a frame there and back (TCP stack, copies, softirq), without
/// the scheduler wake-ups [`loopback_rtt`] includes. It is the floor of a path whose threads are
/// awake when the frame arrives, as the I/O thread is while it polls after work.
///
/// # Errors
/// A socket error.
pub fn loopback_rtt_polled(
    samples: usize,
    frame_bytes: usize,
    cores: (Option<usize>, Option<usize>),
) -> std::io::Result<StageSummary> {
    tcp_round_trips(samples, frame_bytes, cores, true)
}

/// An echo thread on `cores.0` and a timing thread on `cores.1` exchange `frame_bytes` messages
/// over loopback TCP; `polled` makes both sockets non-blocking and both reads spin.
fn tcp_round_trips(
    samples: usize,
    frame_bytes: usize,
    cores: (Option<usize>, Option<usize>),
    polled: bool,
) -> std::io::Result<StageSummary> {
    let frame_bytes = frame_bytes.max(1);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let total = WARM_UP + samples;
    let setup = move |s: &TcpStream| -> std::io::Result<()> {
        s.set_nodelay(true)?;
        s.set_nonblocking(polled)
    };
    let read = move |s: &mut TcpStream, buf: &mut [u8]| if polled { read_polled(s, buf) } else { s.read_exact(buf) };
    let echo = spawn_pinned("floor-tcp-echo", cores.0, move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        setup(&s)?;
        let mut buf = vec![0u8; frame_bytes];
        for _ in 0..total {
            read(&mut s, &mut buf)?;
            s.write_all(&buf)?;
        }
        Ok(())
    })
    .map_err(std::io::Error::other)?;
    let timer = spawn_pinned("floor-tcp", cores.1, move || -> std::io::Result<Histogram<u64>> {
        let mut s = TcpStream::connect(addr)?;
        setup(&s)?;
        let out = vec![b'x'; frame_bytes];
        let mut back = vec![0u8; frame_bytes];
        let mut h = histogram();
        for i in 0..total {
            let t0 = now_ns();
            s.write_all(&out)?;
            read(&mut s, &mut back)?;
            let rtt = now_ns().saturating_sub(t0);
            if i >= WARM_UP {
                let _ = h.record(rtt.clamp(1, MAX_TRACKED_NS));
            }
        }
        Ok(h)
    })
    .map_err(std::io::Error::other)?;
    let h = timer.join().map_err(|_| std::io::Error::other("tcp floor thread panicked"))??;
    echo.join().map_err(|_| std::io::Error::other("tcp echo thread panicked"))??;
    Ok(StageSummary::of(&h))
}

/// Fills `buf` from a non-blocking socket, spinning on `WouldBlock`.
fn read_polled(s: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_measure_something() {
        let r = ring_hop(200, (None, None)).unwrap();
        assert_eq!(r.count, 200);
        assert!(r.p50 > 0);
        let t = loopback_rtt(100, 200, (None, None)).unwrap();
        assert_eq!(t.count, 100);
        assert!(t.p50 >= r.p50);
        let p = loopback_rtt_polled(100, 200, (None, None)).unwrap();
        assert_eq!(p.count, 100);
        assert!(p.p50 >= r.p50);
    }
}
