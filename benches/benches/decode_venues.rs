//! Decode per venue and message kind, each beside a plain serde_json baseline in the same run,
//! with allocations per message counted.
//!
//! Every input is a documented frame from `../shared/reference` (Binance spot and USD-M,
//! Bybit v5, OKX v5), decoded by crossbar's decoder into normalized events, and by serde_json
//! into an equivalent struct with owned `String`s (the fields the decoder reads) followed by the
//! same exact fixed-point parse of every price, quantity and rate: what a straightforward
//! connector does. After criterion has measured both, the bench prints a markdown table of the
//! medians, their ratio and the allocations per message of each path (a counting global
//! allocator, switched on only while counting so it costs the timed loops nothing).
//!
//! `cargo bench -p crossbar-benches --bench decode_venues`; figures in `BENCHMARKS.md`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use criterion::Criterion;
use crossbar_connectors::binance::{BinanceDecoder, BinanceMarket};
use crossbar_connectors::bybit::{BybitCategory, BybitDecoder};
use crossbar_connectors::feed::{FeedDecoder, FrameKind, SymbolTable};
use crossbar_connectors::okx::OkxDecoder;
use crossbar_engine::event::MarketEvent;
use crossbar_engine::fixed::{Px, Qty, RATE_SCALE, REFERENCE_SCALE, Rate, Scale};
use serde::Deserialize;

/// Counts allocations while `COUNTING` is on; forwards everything to the system allocator.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations per call of `f`, over `n` calls after one warm-up call.
fn allocs_per_call(n: u64, mut f: impl FnMut()) -> f64 {
    f();
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    for _ in 0..n {
        f();
    }
    COUNTING.store(false, Ordering::Relaxed);
    ALLOCS.load(Ordering::Relaxed) as f64 / n as f64
}

fn s(places: u8) -> Scale {
    Scale::new(places).expect("scale")
}

fn px(v: &str) -> i64 {
    Px::parse(v.as_bytes(), s(8)).expect("price").0
}

fn qty(v: &str) -> i64 {
    Qty::parse(v.as_bytes(), s(8)).expect("quantity").0
}

fn levels<const N: usize>(side: &[[String; N]]) -> i64 {
    side.iter().map(|l| px(&l[0]) ^ qty(&l[1])).fold(0, i64::wrapping_add)
}

// ---- serde_json baselines: the fields each decoder reads, as owned strings -----------------

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct BnBookTicker {
    e: Option<String>,
    E: Option<u64>,
    T: Option<u64>,
    u: u64,
    s: String,
    b: String,
    B: String,
    a: String,
    A: String,
}

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct BnDepth {
    e: String,
    E: u64,
    T: Option<u64>,
    s: String,
    U: u64,
    u: u64,
    pu: Option<u64>,
    b: Vec<[String; 2]>,
    a: Vec<[String; 2]>,
}

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct BnTrade {
    e: String,
    E: u64,
    s: String,
    a: Option<u64>,
    t: Option<u64>,
    p: String,
    q: String,
    T: u64,
    m: bool,
}

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct BnMarkPrice {
    e: String,
    E: u64,
    s: String,
    p: String,
    i: String,
    r: String,
    T: u64,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct BybitMsg<D> {
    topic: String,
    #[serde(rename = "type")]
    kind: String,
    ts: u64,
    data: D,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct BybitBook {
    s: String,
    b: Vec<[String; 2]>,
    a: Vec<[String; 2]>,
    u: u64,
    seq: u64,
}

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct BybitTrade {
    T: u64,
    s: String,
    S: String,
    v: String,
    p: String,
    i: String,
}

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct BybitTicker {
    symbol: String,
    bid1Price: Option<String>,
    bid1Size: Option<String>,
    ask1Price: Option<String>,
    ask1Size: Option<String>,
    markPrice: Option<String>,
    indexPrice: Option<String>,
    fundingRate: Option<String>,
    nextFundingTime: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct OkxArg {
    channel: String,
    instId: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct OkxMsg<D> {
    arg: OkxArg,
    action: Option<String>,
    data: Vec<D>,
}

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct OkxBook {
    asks: Vec<[String; 4]>,
    bids: Vec<[String; 4]>,
    ts: String,
    seqId: Option<i64>,
    prevSeqId: Option<i64>,
}

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct OkxTrade {
    instId: String,
    tradeId: String,
    px: String,
    sz: String,
    side: String,
    ts: String,
}

#[derive(Deserialize)]
#[allow(dead_code, non_snake_case)]
struct OkxFunding {
    instId: String,
    fundingRate: String,
    fundingTime: String,
    ts: String,
}

fn bn_book_ticker(raw: &[u8]) -> i64 {
    let t: BnBookTicker = serde_json::from_slice(raw).expect("baseline");
    px(&t.b) ^ qty(&t.B) ^ px(&t.a) ^ qty(&t.A) ^ t.u as i64
}

fn bn_depth(raw: &[u8]) -> i64 {
    let t: BnDepth = serde_json::from_slice(raw).expect("baseline");
    levels(&t.b) ^ levels(&t.a) ^ t.u as i64
}

fn bn_trade(raw: &[u8]) -> i64 {
    let t: BnTrade = serde_json::from_slice(raw).expect("baseline");
    px(&t.p) ^ qty(&t.q) ^ t.a.or(t.t).unwrap_or(0) as i64 ^ i64::from(t.m)
}

fn bn_mark_price(raw: &[u8]) -> i64 {
    let t: BnMarkPrice = serde_json::from_slice(raw).expect("baseline");
    Px::parse(t.p.as_bytes(), REFERENCE_SCALE).expect("p").0
        ^ Px::parse(t.i.as_bytes(), REFERENCE_SCALE).expect("i").0
        ^ Rate::parse(t.r.as_bytes(), RATE_SCALE).expect("r").0
}

fn bybit_book(raw: &[u8]) -> i64 {
    let t: BybitMsg<BybitBook> = serde_json::from_slice(raw).expect("baseline");
    levels(&t.data.b) ^ levels(&t.data.a) ^ t.data.u as i64
}

fn bybit_trade(raw: &[u8]) -> i64 {
    let t: BybitMsg<Vec<BybitTrade>> = serde_json::from_slice(raw).expect("baseline");
    t.data.iter().map(|d| px(&d.p) ^ qty(&d.v)).fold(0, i64::wrapping_add)
}

fn bybit_ticker(raw: &[u8]) -> i64 {
    let t: BybitMsg<BybitTicker> = serde_json::from_slice(raw).expect("baseline");
    let d = &t.data;
    let opt = |v: &Option<String>, f: fn(&str) -> i64| v.as_deref().filter(|v| !v.is_empty()).map_or(0, f);
    let reference = |v: &str| Px::parse(v.as_bytes(), REFERENCE_SCALE).expect("reference").0;
    let rate = |v: &str| Rate::parse(v.as_bytes(), RATE_SCALE).expect("rate").0;
    opt(&d.bid1Price, px)
        ^ opt(&d.bid1Size, qty)
        ^ opt(&d.ask1Price, px)
        ^ opt(&d.ask1Size, qty)
        ^ opt(&d.markPrice, reference)
        ^ opt(&d.indexPrice, reference)
        ^ opt(&d.fundingRate, rate)
}

fn okx_book(raw: &[u8]) -> i64 {
    let t: OkxMsg<OkxBook> = serde_json::from_slice(raw).expect("baseline");
    t.data.iter().map(|d| levels(&d.bids) ^ levels(&d.asks) ^ d.seqId.unwrap_or(0)).fold(0, i64::wrapping_add)
}

fn okx_trade(raw: &[u8]) -> i64 {
    let t: OkxMsg<OkxTrade> = serde_json::from_slice(raw).expect("baseline");
    t.data.iter().map(|d| px(&d.px) ^ qty(&d.sz)).fold(0, i64::wrapping_add)
}

fn okx_funding(raw: &[u8]) -> i64 {
    let t: OkxMsg<OkxFunding> = serde_json::from_slice(raw).expect("baseline");
    t.data.iter().map(|d| Rate::parse(d.fundingRate.as_bytes(), RATE_SCALE).expect("rate").0).fold(0, i64::wrapping_add)
}

/// One venue message kind: its fixture, crossbar's decoder for it and the baseline.
struct Case {
    venue: &'static str,
    kind: &'static str,
    fixture: &'static str,
    decoder: fn() -> Box<dyn FeedDecoder>,
    baseline: fn(&[u8]) -> i64,
}

fn table() -> SymbolTable {
    SymbolTable::learning(s(8), s(8))
}

fn bn(market: BinanceMarket) -> Box<dyn FeedDecoder> {
    Box::new(BinanceDecoder::new(market, table()))
}

const CASES: &[Case] = &[
    Case {
        venue: "binance-spot",
        kind: "bookTicker",
        fixture: "binance/spot/bookTicker.json",
        decoder: || bn(BinanceMarket::Spot),
        baseline: bn_book_ticker,
    },
    Case {
        venue: "binance-spot",
        kind: "depthUpdate",
        fixture: "binance/spot/depthUpdate_diff_depth.json",
        decoder: || bn(BinanceMarket::Spot),
        baseline: bn_depth,
    },
    Case {
        venue: "binance-spot",
        kind: "aggTrade",
        fixture: "binance/spot/aggTrade.json",
        decoder: || bn(BinanceMarket::Spot),
        baseline: bn_trade,
    },
    Case {
        venue: "binance-spot",
        kind: "trade",
        fixture: "binance/spot/trade.json",
        decoder: || bn(BinanceMarket::Spot),
        baseline: bn_trade,
    },
    Case {
        venue: "binance-usdm",
        kind: "bookTicker",
        fixture: "binance/usdm/bookTicker.json",
        decoder: || bn(BinanceMarket::UsdM),
        baseline: bn_book_ticker,
    },
    Case {
        venue: "binance-usdm",
        kind: "depthUpdate",
        fixture: "binance/usdm/depthUpdate_diff_depth.json",
        decoder: || bn(BinanceMarket::UsdM),
        baseline: bn_depth,
    },
    Case {
        venue: "binance-usdm",
        kind: "aggTrade",
        fixture: "binance/usdm/aggTrade.json",
        decoder: || bn(BinanceMarket::UsdM),
        baseline: bn_trade,
    },
    Case {
        venue: "binance-usdm",
        kind: "markPriceUpdate",
        fixture: "binance/usdm/markPriceUpdate.json",
        decoder: || bn(BinanceMarket::UsdM),
        baseline: bn_mark_price,
    },
    Case {
        venue: "bybit-linear",
        kind: "orderbook.50 snapshot",
        fixture: "bybit/orderbook_50_snapshot.json",
        decoder: || Box::new(BybitDecoder::new(BybitCategory::Linear, table())),
        baseline: bybit_book,
    },
    Case {
        venue: "bybit-linear",
        kind: "orderbook.50 delta",
        fixture: "bybit/orderbook_50_delta.json",
        decoder: || Box::new(BybitDecoder::new(BybitCategory::Linear, table())),
        baseline: bybit_book,
    },
    Case {
        venue: "bybit-linear",
        kind: "publicTrade",
        fixture: "bybit/publicTrade.json",
        decoder: || Box::new(BybitDecoder::new(BybitCategory::Linear, table())),
        baseline: bybit_trade,
    },
    Case {
        venue: "bybit-linear",
        kind: "tickers",
        fixture: "bybit/tickers_linear_perpetual_snapshot.json",
        decoder: || Box::new(BybitDecoder::new(BybitCategory::Linear, table())),
        baseline: bybit_ticker,
    },
    Case {
        venue: "okx",
        kind: "books snapshot",
        fixture: "okx/books_snapshot.json",
        decoder: || Box::new(OkxDecoder::new(table())),
        baseline: okx_book,
    },
    Case {
        venue: "okx",
        kind: "books update",
        fixture: "okx/books_update.json",
        decoder: || Box::new(OkxDecoder::new(table())),
        baseline: okx_book,
    },
    Case {
        venue: "okx",
        kind: "books5",
        fixture: "okx/books5.json",
        decoder: || Box::new(OkxDecoder::new(table())),
        baseline: okx_book,
    },
    Case {
        venue: "okx",
        kind: "bbo-tbt",
        fixture: "okx/bbo-tbt.json",
        decoder: || Box::new(OkxDecoder::new(table())),
        baseline: okx_book,
    },
    Case {
        venue: "okx",
        kind: "trades",
        fixture: "okx/trades.json",
        decoder: || Box::new(OkxDecoder::new(table())),
        baseline: okx_trade,
    },
    Case {
        venue: "okx",
        kind: "funding-rate",
        fixture: "okx/funding-rate.json",
        decoder: || Box::new(OkxDecoder::new(table())),
        baseline: okx_funding,
    },
];

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference")
}

/// A criterion group name made of `[a-z0-9_]` only, so its directory is predictable.
fn group_name(case: &Case) -> String {
    let raw = format!("venue_{}_{}", case.venue, case.kind);
    raw.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// Criterion's median estimate (ns) of `group/function` from this run's files.
fn median_ns(group: &str, function: &str) -> Option<f64> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"), PathBuf::from);
    let path = target.join("criterion").join(group).join(function).join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30)
        .configure_from_args();
    let mut rows = Vec::new();
    for case in CASES {
        let group = group_name(case);
        if filter.as_ref().is_some_and(|f| !group.contains(f.as_str())) {
            continue;
        }
        let raw = std::fs::read(reference_dir().join(case.fixture)).expect("fixture");
        let raw = raw.trim_ascii_end().to_vec();
        let mut dec = (case.decoder)();
        let mut out: Vec<MarketEvent> = Vec::with_capacity(256);
        let mut buf = raw.clone();
        // Sanity: both paths decode the frame.
        assert_eq!(dec.decode(&mut buf, 1, &mut out), Ok(FrameKind::Market), "{}", case.fixture);
        let events = out.len();
        black_box((case.baseline)(&raw));

        let crossbar_allocs = allocs_per_call(1000, || {
            buf.copy_from_slice(&raw);
            out.clear();
            black_box(dec.decode(&mut buf, 1, &mut out).ok());
        });
        let serde_allocs = allocs_per_call(1000, || {
            black_box((case.baseline)(black_box(&raw)));
        });

        let mut g = c.benchmark_group(&group);
        g.bench_function("crossbar", |b| {
            b.iter(|| {
                buf.copy_from_slice(&raw);
                out.clear();
                black_box(dec.decode(black_box(&mut buf), 1, &mut out).ok());
            })
        });
        g.bench_function("serde_json_baseline", |b| b.iter(|| black_box((case.baseline)(black_box(&raw)))));
        g.finish();
        rows.push((case, group, raw.len(), events, crossbar_allocs, serde_allocs));
    }
    c.final_summary();

    println!(
        "\n| venue | message | bytes | events | crossbar median | serde_json median | ratio | allocs/msg crossbar | allocs/msg serde_json |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (case, group, bytes, events, ca, sa) in rows {
        let (ours, theirs) = (median_ns(&group, "crossbar"), median_ns(&group, "serde_json_baseline"));
        let fmt = |v: Option<f64>| v.map_or_else(|| "?".to_string(), |v| format!("{v:.0} ns"));
        let ratio = match (ours, theirs) {
            (Some(o), Some(t)) if o > 0.0 => format!("{:.2}x", t / o),
            _ => "?".to_string(),
        };
        println!(
            "| {} | `{}` | {bytes} | {events} | {} | {} | {ratio} | {ca:.0} | {sa:.0} |",
            case.venue,
            case.kind,
            fmt(ours),
            fmt(theirs)
        );
    }
}
