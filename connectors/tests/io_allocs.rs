//! Counts heap allocations made by the I/O thread itself while it reads real websocket frames
//! from the simulator, decodes them and pushes events: after warm-up there must be none.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbar_connectors::io::{IoRings, IoThread};
use crossbar_connectors::sim::{SimConfig, Simulator};
use crossbar_connectors::venue::{Endpoints, build_feeds};
use crossbar_engine::paper::{PaperConfig, PaperGateway};
use crossbar_engine::ring::{IdlePolicy, Ring};

mod support;

mod counting_alloc;
use counting_alloc::{ALLOCS, COUNTED};

#[test]
fn io_thread_reads_and_decodes_without_allocating_after_warm_up() {
    let (registry, venues) = support::binance_btc_venues();
    let sim = Simulator::start(&SimConfig::default(), &registry, "127.0.0.1:0".parse().unwrap()).unwrap();
    let feeds =
        build_feeds(&venues, &registry, |v| Endpoints { ws: sim.base_url(&v.name), rest: sim.rest_url(&v.name) })
            .unwrap();
    let rings = IoRings { market: Ring::new(1 << 16), orders: Ring::new(256), commands: Ring::new(256) };
    let gateway = PaperGateway::new(Arc::clone(&registry), &PaperConfig::default());
    let io = IoThread::new(feeds, gateway, rings.clone(), IdlePolicy::Yield).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            COUNTED.with(|c| c.set(true));
            io.run(&stop)
        })
    };
    let drain_for = |d: Duration| {
        let (t, mut n) = (Instant::now(), 0u64);
        while t.elapsed() < d {
            match rings.market.pop() {
                Some(_) => n += 1,
                None => std::thread::sleep(Duration::from_micros(100)),
            }
        }
        n
    };
    drain_for(Duration::from_millis(1_500)); // connect, handshake, buffers grow to size
    let before = ALLOCS.load(Ordering::Relaxed);
    assert!(before > 0, "the counter must see the I/O thread's connect-time allocations");
    let events = drain_for(Duration::from_secs(2));
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    let report = handle.join().unwrap();
    sim.shutdown().unwrap();
    assert!(events > 1_000, "only {events} events");
    assert_eq!(report.counters.disconnects, 0);
    assert_eq!(allocs, 0, "{allocs} allocations on the I/O thread over {events} events");
}
