//! Proves the hot path allocates nothing per event after warm-up: frame → decode → ring → core
//! → decision → risk → OMS → gateway → fills → positions, counted by a global allocator.

use crossbar_benches::{HotPath, spot_book_ticker, usdm_book_ticker};

mod support;

use support::allocs_on_this_thread;

/// Frames that make the basis open and close repeatedly: the perp bid swings above and below
/// the spot ask by more than fees plus the thresholds.
fn frames(round: u64) -> Vec<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    for i in 0..200u64 {
        let wide = i % 20 < 10;
        let spot_bid = 65_000 + (i % 7);
        out.push((
            spot_book_ticker(1000 + round * 1000 + i, &format!("{spot_bid}.00"), &format!("{spot_bid}.01")),
            false,
        ));
        let perp = if wide { spot_bid + 80 } else { spot_bid };
        out.push((usdm_book_ticker(5000 + round * 1000 + i, &format!("{perp}.0"), &format!("{}.1", perp)), true));
    }
    out
}

#[test]
fn zero_heap_allocations_per_event_after_warm_up() {
    let rounds: Vec<_> = (0..6).map(frames).collect();
    let mut path = HotPath::new();
    let mut t = 1_000u64;
    let mut warm_commands = 0;
    for (f, usdm) in &rounds[0] {
        t += 1_000;
        warm_commands += path.step(f, *usdm, t);
    }
    assert!(warm_commands > 0, "warm-up must exercise the order path");

    let before = allocs_on_this_thread();
    let mut commands = 0;
    for frames in &rounds[1..] {
        for (f, usdm) in frames {
            t += 1_000;
            commands += path.step(f, *usdm, t);
        }
    }
    let allocs = allocs_on_this_thread() - before;
    // The counter itself must work, or this test could not fail.
    let probe = std::hint::black_box(vec![0u8; 16]);
    assert!(allocs_on_this_thread() > before + allocs, "allocator probe not counted");
    drop(probe);
    let events = path.core.counters().market_events;
    assert!(commands > 10, "the measured window must send orders too (sent {commands})");
    assert!(path.core.oms().counters().fills > 0, "and fill them");
    assert_eq!(
        allocs,
        0,
        "{allocs} heap allocations over {} frames ({events} market events, {commands} orders)",
        rounds[0].len() * 5
    );
}
