//! The I/O thread against the simulator over real loopback websockets: frames arrive, decode
//! and reach the ring; the thread answers the venue's pings so it is never dropped; a command
//! goes through the paper gateway and its fill comes back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbar_connectors::io::{IoRings, IoThread};
use crossbar_connectors::sim::{SimConfig, Simulator};
use crossbar_connectors::venue::{Endpoints, build_feeds};
use crossbar_engine::event::{MarketBody, NewOrder, OrderCommand, OrderEventKind, OrderStamps, Side, TimeInForce};
use crossbar_engine::fixed::{Px, Qty};
use crossbar_engine::paper::{PaperConfig, PaperGateway};
use crossbar_engine::ring::{IdlePolicy, Ring};

mod support;

#[test]
fn streams_decode_pings_are_answered_and_orders_fill() {
    let (registry, venues) = support::binance_btc_venues();
    let sim_cfg = SimConfig { ping_interval_s: 1, pong_timeout_s: 2, ..SimConfig::default() };
    let sim = Simulator::start(&sim_cfg, &registry, "127.0.0.1:0".parse().unwrap()).unwrap();
    let feeds =
        build_feeds(&venues, &registry, |v| Endpoints { ws: sim.base_url(&v.name), rest: sim.rest_url(&v.name) })
            .unwrap();
    assert!(
        feeds[0].url.ends_with("/binance-spot/stream?streams=btcusdt@bookTicker/btcusdt@depth@100ms/btcusdt@aggTrade"),
        "{}",
        feeds[0].url
    );
    let rings = IoRings { market: Ring::new(1 << 16), orders: Ring::new(256), commands: Ring::new(256) };
    let gateway = PaperGateway::new(Arc::clone(&registry), &PaperConfig { latency_us: 100, max_resting: 16 });
    let io = IoThread::new(feeds, gateway, rings.clone(), IdlePolicy::Park).unwrap();
    let waker = io.waker();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || io.run(&stop))
    };

    // Consume market events for > 3 ping intervals; remember the latest spot quote.
    let started = Instant::now();
    let (mut quotes, mut funding, mut books, mut last_ask) = (0u64, 0u64, 0u64, Px(0));
    while started.elapsed() < Duration::from_millis(3_500) {
        match rings.market.pop() {
            Some(ev) => match ev.body {
                MarketBody::Quote(q) => {
                    assert!(ev.recv_ns > 0 && ev.decoded_ns >= ev.recv_ns);
                    assert!(q.bid_px < q.ask_px, "{q:?}");
                    quotes += 1;
                    if ev.instrument.0 == 0 {
                        last_ask = q.ask_px;
                    }
                }
                MarketBody::Funding(f) => {
                    assert!(f.next_funding_ms > 0 && f.mark_px.0 > 0);
                    funding += 1;
                }
                MarketBody::Book(_) => books += 1,
                _ => {}
            },
            None => std::thread::sleep(Duration::from_micros(200)),
        }
    }
    // A marketable IOC buy through the command ring fills against the paper book.
    let order = NewOrder {
        client_id: crossbar_engine::event::ClientOrderId(1),
        instrument: crossbar_engine::instrument::InstrumentId(0),
        venue: crossbar_engine::instrument::VenueId(0),
        side: Side::Buy,
        px: Px(last_ask.0 + 100_000),
        qty: Qty(1),
        tif: TimeInForce::Ioc,
        reduce_only: false,
    };
    rings.commands.push_lossless(OrderCommand::New { order, stamps: OrderStamps::default() });
    waker.wake().unwrap();
    let mut fills = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    while fills == 0 && Instant::now() < deadline {
        match rings.orders.pop() {
            Some(ev) if matches!(ev.kind, OrderEventKind::Filled(_)) => fills += 1,
            _ => std::thread::sleep(Duration::from_micros(200)),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let report = handle.join().unwrap();
    let c = report.counters;
    assert!(quotes > 500, "quotes {quotes}");
    assert!(books > 10, "book chunks {books}");
    assert!(funding >= 2, "mark price updates {funding}");
    assert_eq!((c.connects, c.disconnects, c.decode_errors), (2, 0, 0), "{c:?}");
    assert_eq!(sim.stats().pong_timeouts, 0, "the I/O thread must answer pings");
    assert_eq!(fills, 1);
    assert_eq!(c.commands, 1);
    assert_eq!(report.latency.summary(crossbar_engine::latency::Stage::RecvToDecoded).count, c.events);
    sim.shutdown().unwrap();
}
