//! Ring hop between two pinned threads: one engine `Ring` each way, a `MarketEvent`-sized item
//! echoed back, timed as a round trip (one way is half). The same-run floor `crossbar bench`
//! reports as `floor_ns.ring_hop` measures the same thing with `u64`s.
//!
//! `cargo bench -p crossbar-benches --bench ring`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use crossbar_engine::event::{MarketBody, MarketEvent, Quote, SeqIds};
use crossbar_engine::instrument::InstrumentId;
use crossbar_engine::ring::Ring;
use crossbar_engine::runtime::spawn_pinned;

fn event(i: u64) -> MarketEvent {
    MarketEvent {
        instrument: InstrumentId(0),
        exch_ts_ms: i,
        recv_ns: i,
        decoded_ns: i,
        seq: SeqIds::default(),
        body: MarketBody::Quote(Quote::default()),
    }
}

fn ring_round_trip(c: &mut Criterion) {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let (echo_core, bench_core) = match cores.as_slice() {
        [a, b, ..] => (Some(a.id), Some(*b)),
        _ => (None, None),
    };
    if let Some(core) = bench_core {
        core_affinity::set_for_current(core);
    }
    let ping: Arc<Ring<MarketEvent>> = Ring::new(64);
    let pong: Arc<Ring<MarketEvent>> = Ring::new(64);
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let (ping, pong, stop) = (Arc::clone(&ping), Arc::clone(&pong), Arc::clone(&stop));
        spawn_pinned("bench-ring-echo", echo_core, move || {
            while !stop.load(Ordering::Relaxed) {
                match ping.pop() {
                    Some(ev) => pong.push_lossless(ev),
                    None => std::hint::spin_loop(),
                }
            }
        })
        .unwrap()
    };
    c.bench_function("ring_round_trip_pinned", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                ping.push_lossless(event(i));
                loop {
                    if let Some(ev) = pong.pop() {
                        black_box(ev);
                        break;
                    }
                    std::hint::spin_loop();
                }
            }
            start.elapsed()
        })
    });
    stop.store(true, Ordering::Relaxed);
    echo.join().unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = ring_round_trip
}
criterion_main!(benches);
