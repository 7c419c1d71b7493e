//! Counts heap allocations made by the I/O thread itself on Bybit v5 and OKX v5 feeds from the
//! simulator: reading, decoding, pushing events and the heartbeat timers (application pings
//! sent every 50 ms, pongs read back). After warm-up there must be none.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbar_connectors::io::{IoRings, IoThread};
use crossbar_connectors::sim::{SimConfig, Simulator};
use crossbar_connectors::venue::{Endpoints, GatewayKind, Protocol, VenueConfig, build_feeds};
use crossbar_engine::instrument::{InstrumentKind, Registry};
use crossbar_engine::paper::{PaperConfig, PaperGateway};
use crossbar_engine::ring::{IdlePolicy, Ring};

mod support;

mod counting_alloc;
use counting_alloc::{ALLOCS, COUNTED};

#[test]
fn bybit_and_okx_feeds_with_heartbeats_do_not_allocate_after_warm_up() {
    let venue = |protocol: Protocol| VenueConfig {
        name: protocol.name().into(),
        protocol,
        ws_url: "sim".into(),
        rest_url: "sim".into(),
        gateway: GatewayKind::Paper,
        order_ws_url: "sim".into(),
        recv_window_ms: 5_000,
        credentials: None,
    };
    let venues = vec![venue(Protocol::BybitLinear), venue(Protocol::Okx)];
    let names: Vec<String> = venues.iter().map(|v| v.name.clone()).collect();
    let perp = InstrumentKind::Perpetual;
    let registry = Arc::new(
        Registry::new(
            &names,
            &[
                support::instrument("bybit-linear", "BTCUSDT", perp, "BTC", "0.1", "0.001"),
                support::instrument("okx", "BTC-USDT-SWAP", perp, "BTC", "0.1", "0.001"),
            ],
        )
        .unwrap(),
    );
    let sim =
        Simulator::start_venues(&SimConfig::default(), &registry, &venues, "127.0.0.1:0".parse().unwrap()).unwrap();
    let mut feeds =
        build_feeds(&venues, &registry, |v| Endpoints { ws: sim.base_url(&v.name), rest: sim.rest_url(&v.name) })
            .unwrap();
    for f in &mut feeds {
        // Both ping on a schedule here, so the timer path runs many times while counted.
        (f.heartbeat.every_ns, f.heartbeat.when_quiet) = (50_000_000, false);
    }
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
    drain_for(Duration::from_millis(1_500)); // connect, subscribe, snapshots, buffers grow
    let before = ALLOCS.load(Ordering::Relaxed);
    assert!(before > 0, "the counter must see the I/O thread's connect-time allocations");
    let events = drain_for(Duration::from_secs(2));
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    let report = handle.join().unwrap();
    sim.shutdown().unwrap();
    let c = report.counters;
    assert!(events > 1_000, "only {events} events");
    assert_eq!((c.disconnects, c.decode_errors), (0, 0), "{c:?}");
    // Two feeds, 3.5 s, a ping every 50 ms each: well over 100, each answered.
    assert!(c.pings > 100, "{c:?}");
    assert!(c.pongs + 2 >= c.pings, "{c:?}");
    assert_eq!(allocs, 0, "{allocs} allocations on the I/O thread over {events} events and {} pings", c.pings);
}
