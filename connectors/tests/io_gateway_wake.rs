//! A gateway with sockets of its own (a venue order session) wakes a parked I/O thread through
//! its readiness descriptor, as a market socket does: its answers do not wait for the next
//! maintenance tick. And the I/O thread runs the gateway's upkeep and reports its counters.

use std::io::{Read as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbar_connectors::io::{IoRings, IoThread};
use crossbar_connectors::venue::VenueDecoder;
use crossbar_engine::event::{ClientOrderId, OrderCommand, OrderEvent, OrderEventKind, Side};
use crossbar_engine::gateway::{Gateway, GatewayError, VenueCounters};
use crossbar_engine::instrument::{InstrumentId, VenueId};
use crossbar_engine::ring::{IdlePolicy, Ring};
use mio::net::UnixStream;
use mio::{Events, Interest, Poll, Token};

/// Calls the I/O thread made, shared with the test.
#[derive(Default)]
struct Calls {
    polls: AtomicU64,
    maintains: AtomicU64,
}

/// A gateway whose "venue" is one end of a socket pair, behind its own epoll instance (as
/// `VenueGateway` does): each byte the test writes becomes one order event.
struct SocketGateway {
    poll: Poll,
    events: Events,
    stream: UnixStream,
    calls: Arc<Calls>,
    read: u64,
}

impl Gateway for SocketGateway {
    fn name(&self) -> &'static str {
        "socket-test"
    }

    fn send(&mut self, _cmd: &OrderCommand, _now_ns: u64) -> Result<(), GatewayError> {
        Err(GatewayError::NotServed)
    }

    fn poll(&mut self, now_ns: u64, out: &mut dyn FnMut(OrderEvent)) {
        self.calls.polls.fetch_add(1, Ordering::Relaxed);
        let _ = self.poll.poll(&mut self.events, Some(Duration::ZERO));
        let mut buf = [0u8; 64];
        while let Ok(n @ 1..) = self.stream.read(&mut buf) {
            for &b in &buf[..n] {
                self.read += 1;
                out(OrderEvent {
                    client_id: ClientOrderId(u64::from(b)),
                    instrument: InstrumentId(0),
                    side: Side::Buy,
                    exch_ts_ms: 0,
                    recv_ns: now_ns,
                    kind: OrderEventKind::Accepted,
                });
            }
        }
    }

    fn readiness_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(self.poll.as_raw_fd())
    }

    fn maintain(&mut self, _now_ns: u64) {
        self.calls.maintains.fetch_add(1, Ordering::Relaxed);
    }

    fn venue_counters(&self, out: &mut Vec<VenueCounters>) {
        out.push(VenueCounters {
            venue: VenueId(3),
            gateway: "socket-test",
            acks: self.read,
            ..VenueCounters::default()
        });
    }
}

#[test]
fn a_gateway_socket_wakes_the_parked_io_thread() {
    let (ours, theirs) = StdUnixStream::pair().unwrap();
    theirs.set_nonblocking(true).unwrap();
    let mut stream = UnixStream::from_std(theirs);
    let poll = Poll::new().unwrap();
    poll.registry().register(&mut stream, Token(0), Interest::READABLE).unwrap();
    let calls = Arc::new(Calls::default());
    let gateway = SocketGateway { poll, events: Events::with_capacity(8), stream, calls: Arc::clone(&calls), read: 0 };
    let rings = IoRings { market: Ring::new(1 << 10), orders: Ring::new(1 << 10), commands: Ring::new(64) };
    let io = IoThread::<VenueDecoder, _>::new(Vec::new(), gateway, rings.clone(), IdlePolicy::Park).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || io.run(&stop))
    };
    let mut ours = ours;
    const SENDS: u64 = 40;
    for i in 0..SENDS {
        ours.write_all(&[i as u8]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let ev = loop {
            if let Some(ev) = rings.orders.pop() {
                break ev;
            }
            assert!(Instant::now() < deadline, "event {i} never reached the order ring");
            std::thread::yield_now();
        };
        assert_eq!(ev.client_id, ClientOrderId(i));
        // Let the thread settle back into its parked rhythm before the next byte.
        std::thread::sleep(Duration::from_millis(3));
    }
    stop.store(true, Ordering::Relaxed);
    let report = handle.join().unwrap();
    let (polls, maintains) = (calls.polls.load(Ordering::Relaxed), calls.maintains.load(Ordering::Relaxed));
    // Parked with nothing to do, every loop turn is a maintenance tick: one maintain, one poll.
    // A wake by the gateway's descriptor adds turns without a tick (the woken one's successor
    // runs with work done and none due), so polls outrun maintains by about one per byte.
    // Without the descriptor registered they stay within one of each other.
    assert!(maintains > 0, "the I/O thread runs the gateway's upkeep");
    assert!(
        polls >= maintains + SENDS / 2,
        "polls {polls}, maintains {maintains}: the descriptor did not wake the thread"
    );
    assert_eq!(report.counters.order_events, SENDS);
    assert_eq!(report.gateway, "socket-test");
    assert_eq!(
        report.venues,
        vec![VenueCounters { venue: VenueId(3), gateway: "socket-test", acks: SENDS, ..VenueCounters::default() }]
    );
}
