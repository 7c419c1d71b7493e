//! Journaling costs the core no heap allocation: after warm-up, a core trading against the paper
//! gateway with its journal ring attached allocates nothing per event, and encoding the records
//! into a reused buffer (the writer's side) allocates nothing either. Counted by a global
//! allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbar_engine::core::Core;
use crossbar_engine::event::{MarketBody, MarketEvent, OrderCommand, OrderEvent, Quote, SeqIds, Side, TimeInForce};
use crossbar_engine::fixed::{Px, Qty};
use crossbar_engine::gateway::Gateway as _;
use crossbar_engine::instrument::{InstrumentConfig, InstrumentId, InstrumentKind, Registry};
use crossbar_engine::journal::{self, Record};
use crossbar_engine::paper::{PaperConfig, PaperGateway};
use crossbar_engine::ring::Ring;
use crossbar_engine::risk::RiskConfig;
use crossbar_engine::strategy::{Ctx, Intent, Strategy};
use rust_decimal::Decimal;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Takes the touch on every quote, alternating sides; every third order a GTC that rests.
struct Taker(u64);

impl Strategy for Taker {
    fn name(&self) -> &str {
        "taker"
    }
    fn on_market(&mut self, ev: &MarketEvent, ctx: &mut Ctx<'_>) {
        let MarketBody::Quote(q) = ev.body else { return };
        self.0 += 1;
        let (side, px) = if self.0.is_multiple_of(2) { (Side::Buy, q.ask_px) } else { (Side::Sell, q.bid_px) };
        let tif = if self.0.is_multiple_of(3) { TimeInForce::Gtc } else { TimeInForce::Ioc };
        let px = if tif == TimeInForce::Gtc { Px(px.0 - side.sign() * 3) } else { px };
        ctx.submit(Intent {
            instrument: ev.instrument,
            side,
            qty: Qty(2_000),
            limit_px: px,
            tif,
            reduce_only: false,
            tag: 0,
        });
    }
    fn on_order(&mut self, _: &OrderEvent, _: u32, _: &mut Ctx<'_>) {}
}

#[test]
fn journaling_allocates_nothing_per_event_after_warm_up() {
    let cfg = InstrumentConfig {
        venue: "v".into(),
        symbol: "BTCUSDT".into(),
        kind: InstrumentKind::Spot,
        base: "BTC".into(),
        quote: "USDT".into(),
        tick: "0.01".parse().unwrap(),
        lot: "0.00001".parse().unwrap(),
        contract_size: Decimal::ONE,
        taker_fee: "0.0004".parse().unwrap(),
        maker_fee: "0.0002".parse().unwrap(),
    };
    let reg = Arc::new(Registry::new(&["v".into()], &[cfg]).unwrap());
    let ring: Arc<Ring<Record>> = Ring::new(1 << 12);
    // Simulated time runs a µs per step: lift the venue order-rate bucket out of the way.
    let risk = RiskConfig { venue_orders_per_s: 100_000_000, venue_order_burst: 100_000, ..RiskConfig::default() };
    let mut core = Core::new(Arc::clone(&reg), vec![Taker(0)], risk).with_journal(Arc::clone(&ring));
    let mut paper = PaperGateway::new(Arc::clone(&reg), &PaperConfig { latency_us: 2, max_resting: 64 });
    let mut cmds: Vec<OrderCommand> = Vec::with_capacity(1_024);
    let mut events: Vec<OrderEvent> = Vec::with_capacity(1_024);
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut seq = 0u64;
    let mut t = 1_000_000u64;
    let mut step = |round: u64, core: &mut Core<Taker>, buf: &mut Vec<u8>| {
        t += 1_000;
        let mid = 6_500_000 + (round % 5) as i64;
        let q = MarketEvent {
            instrument: InstrumentId(0),
            exch_ts_ms: round,
            recv_ns: t,
            decoded_ns: 0,
            seq: SeqIds::default(),
            body: MarketBody::Quote(Quote {
                bid_px: Px(mid - 1),
                bid_qty: Qty(1_500),
                ask_px: Px(mid + 1),
                ask_qty: Qty(1_500),
            }),
        };
        paper.on_market(&q);
        core.on_market(&q, t, t, &mut |c| cmds.push(c));
        for c in cmds.drain(..) {
            paper.send(&c, t).unwrap();
        }
        paper.poll(t, &mut |e| events.push(e));
        for e in events.drain(..) {
            core.on_order(&e, t, &mut |c| cmds.push(c));
        }
        if round.is_multiple_of(50) {
            core.on_timer(t, &mut |c| cmds.push(c));
        }
        // The writer's side: encode every record into a reused buffer.
        buf.clear();
        let mut n = 0;
        while let Some(r) = ring.pop() {
            seq += 1;
            n += 1;
            journal::encode(&r, seq, &reg, buf);
        }
        n
    };
    let mut warm = 0u64;
    for round in 0..2_000 {
        warm += step(round, &mut core, &mut buf);
    }
    assert!(warm > 1_000, "warm-up journaled {warm} records");
    let before = ALLOCS.load(Ordering::Relaxed);
    let mut measured = 0u64;
    for round in 2_000..6_000 {
        measured += step(round, &mut core, &mut buf);
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    let probe = std::hint::black_box(vec![0u8; 16]);
    assert!(ALLOCS.load(Ordering::Relaxed) > before + allocs, "allocator probe not counted");
    drop(probe);
    assert!(measured > 4_000 && core.oms().counters().fills > 1_000, "{measured} records, {:?}", core.oms().counters());
    assert_eq!(allocs, 0, "{allocs} heap allocations while journaling {measured} records");
}
