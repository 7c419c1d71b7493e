//! Criterion benches of the hot stages, each beside a baseline measured in the same run.
//!
//! Fixed-point parse; Binance decode per message kind (`bookTicker`, `depthUpdate` 5+5,
//! `aggTrade`, `markPriceUpdate`), each beside serde_json and simd-json into a plain struct plus
//! the same exact parse; the whole synchronous hot path with and without orders.
//!
//! `cargo bench -p crossbar-benches --bench stages`. Figures and the machine they came from are
//! in `BENCHMARKS.md`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use crossbar_benches::{HotPath, spot_book_ticker, usdm_book_ticker};
use crossbar_connectors::binance::{BinanceDecoder, BinanceMarket};
use crossbar_connectors::feed::{FeedDecoder, SymbolTable};
use crossbar_engine::event::MarketEvent;
use crossbar_engine::fixed::{Px, Qty, RATE_SCALE, REFERENCE_SCALE, Rate, Scale};
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

/// serde_json baseline of a USD-M `depthUpdate`: owned strings, then the same exact parse.
#[derive(Deserialize)]
#[allow(dead_code)]
struct SerdeDepthUpdate {
    e: String,
    #[serde(rename = "E")]
    event_time: u64,
    #[serde(rename = "T")]
    tx_time: u64,
    s: String,
    #[serde(rename = "U")]
    first: u64,
    u: u64,
    pu: u64,
    b: Vec<[String; 2]>,
    a: Vec<[String; 2]>,
}

/// serde_json baseline of an `aggTrade`.
#[derive(Deserialize)]
#[allow(dead_code)]
struct SerdeAggTrade {
    e: String,
    #[serde(rename = "E")]
    event_time: u64,
    s: String,
    a: u64,
    p: String,
    q: String,
    f: u64,
    l: u64,
    #[serde(rename = "T")]
    trade_time: u64,
    m: bool,
}

/// serde_json baseline of a `markPriceUpdate`.
#[derive(Deserialize)]
#[allow(dead_code)]
struct SerdeMarkPrice {
    e: String,
    #[serde(rename = "E")]
    event_time: u64,
    s: String,
    p: String,
    i: String,
    r: String,
    #[serde(rename = "T")]
    next_funding: u64,
}

const DEPTH_5_5: &[u8] = br#"{"e":"depthUpdate","E":1764000000123,"T":1764000000121,"s":"BTCUSDT","U":9001,"u":9004,"pu":9000,"b":[["65000.1","1.250"],["65000.0","0.004"],["64999.9","3.100"],["64999.8","0.020"],["64999.7","7.000"]],"a":[["65000.2","0.800"],["65000.3","2.000"],["65000.4","0.015"],["65000.5","4.400"],["65000.6","1.000"]]}"#;
const AGG_TRADE: &[u8] = br#"{"e":"aggTrade","E":1764000000123,"s":"BTCUSDT","a":26129,"p":"65000.01000000","q":"0.01500000","f":100,"l":105,"T":1764000000121,"m":true,"M":true}"#;
const MARK_PRICE: &[u8] = br#"{"e":"markPriceUpdate","E":1764000000123,"s":"BTCUSDT","p":"65000.12000000","i":"64998.40000000","P":"65010.00000000","r":"0.00010000","T":1764028800000}"#;

/// One decode group: crossbar's decoder beside serde_json (and simd-json) into a plain struct
/// followed by the same fixed-point parse of every price and quantity.
fn decode_kind<T: for<'de> Deserialize<'de>>(
    c: &mut Criterion,
    group: &str,
    raw: &[u8],
    market: BinanceMarket,
    (px, qty): (Scale, Scale),
    parse: impl Fn(&T) -> i64,
) {
    let mut g = c.benchmark_group(group);
    let mut dec = BinanceDecoder::new(market, SymbolTable::learning(px, qty));
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
            let t: T = serde_json::from_slice(black_box(raw)).unwrap();
            black_box(parse(&t));
        })
    });
    g.bench_function("simd_json_baseline", |b| {
        b.iter(|| {
            buf.copy_from_slice(raw);
            let t: T = simd_json::serde::from_slice(black_box(&mut buf)).unwrap();
            black_box(parse(&t));
        })
    });
    g.finish();
}

fn decode_kinds(c: &mut Criterion) {
    let s = |n| Scale::new(n).unwrap();
    let sum_levels = |levels: &[[String; 2]], (px, qty): (Scale, Scale)| -> i64 {
        levels
            .iter()
            .map(|[p, q]| Px::parse(p.as_bytes(), px).unwrap().0 ^ Qty::parse(q.as_bytes(), qty).unwrap().0)
            .fold(0, i64::wrapping_add)
    };
    decode_kind(c, "decode_depth_update_5x5", DEPTH_5_5, BinanceMarket::UsdM, (s(1), s(3)), |t: &SerdeDepthUpdate| {
        sum_levels(&t.b, (s(1), s(3))) ^ sum_levels(&t.a, (s(1), s(3)))
    });
    decode_kind(c, "decode_agg_trade", AGG_TRADE, BinanceMarket::Spot, (s(2), s(5)), |t: &SerdeAggTrade| {
        Px::parse(t.p.as_bytes(), s(2)).unwrap().0 ^ Qty::parse(t.q.as_bytes(), s(5)).unwrap().0
    });
    decode_kind(c, "decode_mark_price", MARK_PRICE, BinanceMarket::UsdM, (s(1), s(3)), |t: &SerdeMarkPrice| {
        let r = REFERENCE_SCALE;
        Px::parse(t.p.as_bytes(), r).unwrap().0
            ^ Px::parse(t.i.as_bytes(), r).unwrap().0
            ^ Rate::parse(t.r.as_bytes(), RATE_SCALE).unwrap().0
    });
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

/// The whole `HotPath` step on frames that make the basis strategy enter and exit: decode,
/// ring, books, strategy, risk, OMS, command ring, paper gateway, fills back to the core.
fn hot_path_orders(c: &mut Criterion) {
    let mut path = HotPath::new();
    let frames: Vec<_> = (0..400u64)
        .flat_map(|i| {
            let spot_bid = 65_000 + (i % 7);
            let perp = if i % 20 < 10 { spot_bid + 80 } else { spot_bid };
            [
                (spot_book_ticker(1_000 + i, &format!("{spot_bid}.00"), &format!("{spot_bid}.01")), false),
                (usdm_book_ticker(5_000 + i, &format!("{perp}.0"), &format!("{perp}.1")), true),
            ]
        })
        .collect();
    let mut i = 0usize;
    let mut t = 1_000u64;
    c.bench_function("frame_to_order_and_fill", |b| {
        b.iter(|| {
            let (f, usdm) = &frames[i % frames.len()];
            i += 1;
            t += 1_000;
            black_box(path.step(f, *usdm, t));
        })
    });
}

fn short() -> Criterion {
    Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = short();
    targets = decode, decode_kinds, fixed_parse, hot_path, hot_path_orders
}
criterion_main!(benches);
