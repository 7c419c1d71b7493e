//! Ethereum notification frame → pending-swap event, against a plain `serde_json` baseline in
//! the same run.
//!
//! Input: the four full-transaction `eth_subscription` frames captured from anvil 1.7.1
//! (`shared/reference/ethereum/anvil/`: `swapExactTokensForTokens`, `swapExactETHForTokens`,
//! `swapTokensForExactTokens`, `swapExactTokensForETH`), cycled. Output of every path: the
//! transaction's [`TxMeta`] and its decoded [`SwapCall`] legs (the event minus the pool
//! prediction, which is the same code whichever JSON layer fed it).
//!
//! - `crossbar`: `parse_notification` (the crate's zero-copy scanner, calldata hex borrowed from
//!   the frame) → `decode_hex_into` a reused buffer → `decode_swaps` into a reused vector.
//! - `serde_owned`: the plain way: `serde_json::from_slice` into structs of the same fields as
//!   owned `String`s, the same hex conversions and the same ABI decode.
//! - `serde_borrowed`: the same with `&str` fields borrowed from the frame (serde's zero-copy).
//!
//! - `abi_tail` (reference): the common tail alone (hex → bytes → legs) from an already
//!   parsed transaction; a path's time minus this is its JSON layer.
//!
//! Before timing, each path's heap allocations per frame are counted by a global allocator and
//! printed (`allocs/frame`).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use crossbar_connectors::eth::output::TxMeta;
use crossbar_connectors::eth::tx::{
    PendingTx, address, b256, decode_hex_into, parse_notification, quantity_u64, quantity_u256,
};
use crossbar_connectors::eth::{Notification, SwapCall, decode_swaps};
use serde::Deserialize;

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

const FRAMES: [&str; 4] = [
    include_str!("../../../shared/reference/ethereum/anvil/06_notification_pendingTx_full.json"),
    include_str!("../../../shared/reference/ethereum/anvil/09_notification_pendingTx_full.json"),
    include_str!("../../../shared/reference/ethereum/anvil/10_notification_pendingTx_full.json"),
    include_str!("../../../shared/reference/ethereum/anvil/13_notification_pendingTx_full.json"),
];

/// Reused buffers: calldata bytes and decoded legs.
struct Scratch {
    input: Vec<u8>,
    legs: Vec<SwapCall>,
}

impl Scratch {
    fn new() -> Self {
        Self { input: Vec::with_capacity(4096), legs: Vec::with_capacity(8) }
    }

    /// The common tail: calldata hex → bytes → swap legs. Returns the first leg.
    fn decode(&mut self, tx: &PendingTx<'_>) -> Option<(TxMeta, SwapCall)> {
        decode_hex_into(tx.input_hex, &mut self.input, "input").ok()?;
        self.legs.clear();
        decode_swaps(&self.input, tx.value, &mut self.legs).ok()?;
        Some((TxMeta::of(tx, None), *self.legs.first()?))
    }
}

/// crossbar's path.
fn crossbar(frame: &[u8], s: &mut Scratch) -> Option<(TxMeta, SwapCall)> {
    match parse_notification(frame).ok()? {
        Notification::PendingTx(tx) => s.decode(&tx),
        _ => None,
    }
}

#[derive(Deserialize)]
struct OwnedFrame {
    params: OwnedParams,
}

#[derive(Deserialize)]
struct OwnedParams {
    #[allow(dead_code)]
    subscription: String,
    result: OwnedTx,
}

#[derive(Deserialize)]
struct OwnedTx {
    hash: String,
    from: String,
    to: Option<String>,
    nonce: String,
    value: String,
    input: String,
}

/// Plain `serde_json` with owned strings, then the same conversions and ABI decode.
fn serde_owned(frame: &[u8], s: &mut Scratch) -> Option<(TxMeta, SwapCall)> {
    let f: OwnedFrame = serde_json::from_slice(frame).ok()?;
    let t = &f.params.result;
    let tx = PendingTx {
        hash: b256(t.hash.as_bytes(), "hash").ok()?,
        from: address(t.from.as_bytes(), "from").ok()?,
        to: match &t.to {
            Some(to) => Some(address(to.as_bytes(), "to").ok()?),
            None => None,
        },
        nonce: quantity_u64(t.nonce.as_bytes(), "nonce").ok()?,
        value: quantity_u256(t.value.as_bytes(), "value").ok()?,
        input_hex: t.input.as_bytes().strip_prefix(b"0x")?,
    };
    s.decode(&tx)
}

#[derive(Deserialize)]
struct BorrowedFrame<'a> {
    #[serde(borrow)]
    params: BorrowedParams<'a>,
}

#[derive(Deserialize)]
struct BorrowedParams<'a> {
    #[allow(dead_code)]
    subscription: &'a str,
    #[serde(borrow)]
    result: BorrowedTx<'a>,
}

#[derive(Deserialize)]
struct BorrowedTx<'a> {
    hash: &'a str,
    from: &'a str,
    to: Option<&'a str>,
    nonce: &'a str,
    value: &'a str,
    input: &'a str,
}

/// `serde_json` borrowing the strings from the frame, then the same conversions and decode.
fn serde_borrowed(frame: &[u8], s: &mut Scratch) -> Option<(TxMeta, SwapCall)> {
    let f: BorrowedFrame<'_> = serde_json::from_slice(frame).ok()?;
    let t = &f.params.result;
    let tx = PendingTx {
        hash: b256(t.hash.as_bytes(), "hash").ok()?,
        from: address(t.from.as_bytes(), "from").ok()?,
        to: match t.to {
            Some(to) => Some(address(to.as_bytes(), "to").ok()?),
            None => None,
        },
        nonce: quantity_u64(t.nonce.as_bytes(), "nonce").ok()?,
        value: quantity_u256(t.value.as_bytes(), "value").ok()?,
        input_hex: t.input.as_bytes().strip_prefix(b"0x")?,
    };
    s.decode(&tx)
}

type Path = fn(&[u8], &mut Scratch) -> Option<(TxMeta, SwapCall)>;

const PATHS: [(&str, Path); 3] =
    [("crossbar", crossbar), ("serde_owned", serde_owned), ("serde_borrowed", serde_borrowed)];

fn bench(c: &mut Criterion) {
    // Every path yields the same events.
    let mut s = Scratch::new();
    for f in FRAMES {
        let want = crossbar(f.as_bytes(), &mut s);
        assert!(want.is_some(), "capture does not decode");
        for (name, path) in PATHS {
            assert_eq!(path(f.as_bytes(), &mut s), want, "{name}");
        }
    }
    // Allocations per frame after warm-up.
    const N: u64 = 10_000;
    for (name, path) in PATHS {
        let mut s = Scratch::new();
        for f in FRAMES {
            black_box(path(f.as_bytes(), &mut s));
        }
        let before = ALLOCS.load(Ordering::Relaxed);
        for i in 0..N {
            let f = FRAMES[usize::try_from(i % 4).unwrap_or(0)];
            black_box(path(black_box(f.as_bytes()), &mut s));
        }
        let allocs = ALLOCS.load(Ordering::Relaxed) - before;
        // Exact to two decimals: integer arithmetic on the count.
        println!("eth_decode/{name}: allocs/frame {}.{:02}", allocs / N, allocs % N * 100 / N);
    }
    let mut g = c.benchmark_group("eth_decode");
    for (name, path) in PATHS {
        let mut s = Scratch::new();
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) & 3;
                black_box(path(black_box(FRAMES[i].as_bytes()), &mut s))
            })
        });
    }
    let parsed: Vec<PendingTx<'_>> = FRAMES
        .iter()
        .filter_map(|f| match parse_notification(f.as_bytes()) {
            Ok(Notification::PendingTx(tx)) => Some(tx),
            _ => None,
        })
        .collect();
    let mut s = Scratch::new();
    let mut i = 0usize;
    g.bench_function("abi_tail", |b| {
        b.iter(|| {
            i = (i + 1) % parsed.len();
            black_box(s.decode(black_box(&parsed[i])))
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
