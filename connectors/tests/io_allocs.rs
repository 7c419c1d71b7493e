//! Counts heap allocations made by the I/O thread itself while it reads real websocket frames
//! from the simulator, decodes them and pushes events: after warm-up there must be none.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbar_connectors::io::{IoRings, IoThread};
use crossbar_connectors::sim::{SimConfig, Simulator};
use crossbar_connectors::venue::{Endpoints, build_feeds};
use crossbar_engine::paper::{PaperConfig, PaperGateway};
use crossbar_engine::ring::{IdlePolicy, Ring};

mod support;

thread_local! {
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}
static IO_ALLOCS: AtomicU64 = AtomicU64::new(0);

struct Counting;

fn count() {
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        IO_ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator unchanged; only counts calls made on the thread
// that set `COUNTED`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
    let before = IO_ALLOCS.load(Ordering::Relaxed);
    assert!(before > 0, "the counter must see the I/O thread's connect-time allocations");
    let events = drain_for(Duration::from_secs(2));
    let allocs = IO_ALLOCS.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    let report = handle.join().unwrap();
    sim.shutdown().unwrap();
    assert!(events > 1_000, "only {events} events");
    assert_eq!(report.counters.disconnects, 0);
    assert_eq!(allocs, 0, "{allocs} allocations on the I/O thread over {events} events");
}
