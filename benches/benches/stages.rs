//! Criterion benches of the hot stages, each beside a baseline measured in the same run.
//!
//! `cargo bench -p crossbar-benches --bench stages`. Figures and the machine they came from are
//! in `BENCHMARKS.md`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use crossbar_benches::{HotPath, spot_book_ticker, usdm_book_ticker};
use crossbar_connectors::binance::{BinanceDecoder, BinanceMarket};
use crossbar_connectors::feed::{FeedDecoder, SymbolTable};
use crossbar_engine::event::MarketEvent;
use crossbar_engine::fixed::{Px, Scale};
use serde::Deserialize;

/// The plain baseline: serde_json into an equivalent struct with owned strings, then the same
/// exact fixed-point parse.
#[derive(Deserialize)]
#[allow(dead_code)]
struct SerdeBookTicker {
    u: u64,
    s: String,
    b: String,
    #[serde(rename = "B")]
    bid_qty: String,
    a: String,
    #[serde(rename = "A")]
    ask_qty: String,
}

fn decode(c: &mut Criterion) {
    let raw =
        br#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#;
    let scale = Scale::new(8).unwrap();
    let mut g = c.benchmark_group("decode_book_ticker");
    let mut dec = BinanceDecoder::new(BinanceMarket::Spot, SymbolTable::learning(scale, scale));
    let mut out: Vec<MarketEvent> = Vec::with_capacity(64);
    let mut buf = raw.to_vec();
    g.bench_function("crossbar", |b| {
        b.iter(|| {
            buf.copy_from_slice(raw);
            out.clear();
            black_box(dec.decode(black_box(&mut buf), 1, &mut out).unwrap());
        })
    });
    g.bench_function("serde_json_baseline", |b| {
        b.iter(|| {
            let t: SerdeBookTicker = serde_json::from_slice(black_box(raw)).unwrap();
            black_box((Px::parse(t.b.as_bytes(), scale).unwrap(), Px::parse(t.a.as_bytes(), scale).unwrap()));
        })
    });
    g.bench_function("simd_json_baseline", |b| {
        b.iter(|| {
            buf.copy_from_slice(raw);
            let t: SerdeBookTicker = simd_json::serde::from_slice(black_box(&mut buf)).unwrap();
            black_box((Px::parse(t.b.as_bytes(), scale).unwrap(), Px::parse(t.a.as_bytes(), scale).unwrap()));
        })
    });
    g.finish();
}

fn fixed_parse(c: &mut Criterion) {
    let scale = Scale::new(8).unwrap();
    c.bench_function("px_parse", |b| b.iter(|| black_box(Px::parse(black_box(b"25.35190000"), scale))));
}

fn hot_path(c: &mut Criterion) {
    let mut path = HotPath::new();
    let frames: Vec<_> = (0..1000u64)
        .map(|i| {
            let bid = 65_000 + (i % 7);
            (
                spot_book_ticker(i + 1, &format!("{bid}.00"), &format!("{bid}.01")),
                usdm_book_ticker(i + 1, &format!("{bid}.0"), &format!("{bid}.1")),
            )
        })
        .collect();
    let mut i = 0usize;
    let mut t = 0u64;
    c.bench_function("frame_to_decision_no_order", |b| {
        b.iter(|| {
            let (s, _) = &frames[i % frames.len()];
            i += 1;
            t += 1_000;
            black_box(path.step(s, false, t));
        })
    });
}

criterion_group!(benches, decode, fixed_parse, hot_path);
criterion_main!(benches);
