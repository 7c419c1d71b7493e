//! crossbar's Binance decoder beside a peer's, barter-data 0.13, on the same frames in the same
//! run, with serde_json into a plain struct as the common baseline and allocations per message
//! counted for every path.
//!
//! What each side does per frame (see README.md):
//! - **crossbar**: copies the frame into its reusable read buffer, then
//!   `BinanceDecoder::decode` → normalized `MarketEvent`s (exact i64 fixed-point prices and
//!   quantities, symbol → instrument id) appended to a reused `Vec`.
//! - **barter-data**: barter's own per-frame path, `WebSocketSerdeParser::parse` (serde_json
//!   into barter's Binance type: `rust_decimal::Decimal` prices for books, `f64` for trades) then
//!   `StatelessTransformer::transform` (subscription id → instrument lookup, normalized
//!   `barter_data::event::MarketEvent`s in a fresh `Vec`).
//! - **barter-data deser**: only the serde step into barter's Binance type
//!   (`serde_json::from_str`, as its parser does on a text message).
//! - **serde_json**: serde_json into a struct of owned `String`s, then the same exact
//!   fixed-point parse crossbar does, as in crossbar's own `stages` bench.
//!
//! Frames are the raw single-stream form barter-data subscribes to (`/ws`); crossbar's own
//! connection uses the combined-stream envelope, measured as an extra crossbar-only row.
//! Before timing, the bench asserts that every path decoded the same prices and quantities.
//!
//! `cargo bench --manifest-path benches/peer/Cargo.toml`; a name filter as the first argument
//! runs only the matching messages.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use barter_data::exchange::binance::book::l1::BinanceOrderBookL1;
use barter_data::exchange::binance::futures::BinanceFuturesUsd;
use barter_data::exchange::binance::futures::l2::BinanceFuturesOrderBookL2Update;
use barter_data::exchange::binance::spot::BinanceSpot;
use barter_data::exchange::binance::spot::l2::BinanceSpotOrderBookL2Update;
use barter_data::exchange::binance::trade::BinanceTrade;
use barter_data::subscription::book::{OrderBookEvent, OrderBooksL1, OrderBooksL2};
use barter_data::subscription::trade::PublicTrades;
use barter_data::subscription::{Map, SubscriptionKind};
use barter_data::transformer::ExchangeTransformer;
use barter_data::transformer::stateless::StatelessTransformer;
use barter_data::{Identifier, exchange::Connector};
use barter_integration::Transformer;
use barter_integration::protocol::StreamParser;
use barter_integration::protocol::websocket::{WebSocketSerdeParser, WsMessage};
use criterion::Criterion;
use crossbar_connectors::binance::{BinanceDecoder, BinanceMarket};
use crossbar_connectors::feed::{FeedDecoder, FrameKind, SymbolTable};
use crossbar_engine::event::{MarketBody, MarketEvent};
use crossbar_engine::fixed::{Px, Qty, Scale};
use rust_decimal::Decimal;
use serde::Deserialize;

/// Counts allocations while `COUNTING` is on; forwards everything to the system allocator.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; we only count.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (alloc + realloc calls) per call of `f`, over 1000 calls after two warm-up calls.
fn allocs_per_call(mut f: impl FnMut()) -> f64 {
    const N: u64 = 1000;
    f();
    f();
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    for _ in 0..N {
        f();
    }
    COUNTING.store(false, Ordering::Relaxed);
    ALLOCS.load(Ordering::Relaxed) as f64 / N as f64
}

// ---- frames: Binance's documented shapes with realistic BTCUSDT values ----

/// Spot `bookTicker`, raw (the documented example, as crossbar's `stages` bench uses it).
const BOOK_TICKER: &[u8] =
    br#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#;
/// The same spot `bookTicker` inside the combined-stream envelope crossbar's connection reads.
const BOOK_TICKER_COMBINED: &[u8] = br#"{"stream":"bnbusdt@bookTicker","data":{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}"#;
/// Spot `trade`, raw (barter-data has no `aggTrade` type; crossbar decodes both).
const TRADE: &[u8] = br#"{"e":"trade","E":1764000000123,"s":"BTCUSDT","t":4861234567,"p":"65000.01000000","q":"0.01500000","T":1764000000121,"m":true,"M":true}"#;
/// Spot `depthUpdate`, 5 bids + 5 asks, raw.
const DEPTH_SPOT_5_5: &[u8] = br#"{"e":"depthUpdate","E":1764000000123,"s":"BTCUSDT","U":70001,"u":70010,"b":[["65000.10000000","1.25000000"],["65000.00000000","0.00400000"],["64999.90000000","3.10000000"],["64999.80000000","0.02000000"],["64999.70000000","7.00000000"]],"a":[["65000.20000000","0.80000000"],["65000.30000000","2.00000000"],["65000.40000000","0.01500000"],["65000.50000000","4.40000000"],["65000.60000000","1.00000000"]]}"#;
/// USD-M `depthUpdate`, 5 bids + 5 asks, raw (the frame of crossbar's `stages` bench).
const DEPTH_USDM_5_5: &[u8] = br#"{"e":"depthUpdate","E":1764000000123,"T":1764000000121,"s":"BTCUSDT","U":9001,"u":9004,"pu":9000,"b":[["65000.1","1.250"],["65000.0","0.004"],["64999.9","3.100"],["64999.8","0.020"],["64999.7","7.000"]],"a":[["65000.2","0.800"],["65000.3","2.000"],["65000.4","0.015"],["65000.5","4.400"],["65000.6","1.000"]]}"#;

fn s(places: u8) -> Scale {
    Scale::new(places).expect("scale")
}

// ---- the serde_json baseline: owned strings, then crossbar's exact parse ----

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

#[derive(Deserialize)]
#[allow(dead_code)]
struct SerdeTrade {
    e: String,
    #[serde(rename = "E")]
    event_time: u64,
    s: String,
    t: u64,
    p: String,
    q: String,
    #[serde(rename = "T")]
    trade_time: u64,
    m: bool,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct SerdeDepth {
    e: String,
    #[serde(rename = "E")]
    event_time: u64,
    #[serde(rename = "T", default)]
    tx_time: u64,
    s: String,
    #[serde(rename = "U")]
    first: u64,
    u: u64,
    #[serde(default)]
    pu: u64,
    b: Vec<[String; 2]>,
    a: Vec<[String; 2]>,
}

/// Sum of price and quantity mantissas of a level list, at the message's scales.
fn level_sum(levels: &[[String; 2]], (px, qty): (Scale, Scale)) -> i64 {
    levels.iter().map(|[p, q]| mant_px(p, px) + Qty::parse(q.as_bytes(), qty).expect("qty").0).sum()
}

fn mant_px(v: &str, scale: Scale) -> i64 {
    Px::parse(v.as_bytes(), scale).expect("price").0
}

fn serde_book_ticker(raw: &[u8], (px, qty): (Scale, Scale)) -> i64 {
    let t: SerdeBookTicker = serde_json::from_slice(raw).expect("bookTicker");
    mant_px(&t.b, px)
        + Qty::parse(t.bid_qty.as_bytes(), qty).expect("qty").0
        + mant_px(&t.a, px)
        + Qty::parse(t.ask_qty.as_bytes(), qty).expect("qty").0
}

fn serde_trade(raw: &[u8], (px, qty): (Scale, Scale)) -> i64 {
    let t: SerdeTrade = serde_json::from_slice(raw).expect("trade");
    mant_px(&t.p, px) + Qty::parse(t.q.as_bytes(), qty).expect("qty").0
}

fn serde_depth(raw: &[u8], scales: (Scale, Scale)) -> i64 {
    let t: SerdeDepth = serde_json::from_slice(raw).expect("depthUpdate");
    level_sum(&t.b, scales) + level_sum(&t.a, scales)
}

// ---- checksums: the same "sum of price and quantity mantissas" from every side ----

fn crossbar_sum(out: &[MarketEvent]) -> i64 {
    out.iter()
        .map(|ev| match &ev.body {
            MarketBody::Quote(q) => q.bid_px.0 + q.bid_qty.0 + q.ask_px.0 + q.ask_qty.0,
            MarketBody::Trade(t) => t.px.0 + t.qty.0,
            MarketBody::Book(c) => c.levels[..usize::from(c.len)].iter().map(|l| l.px.0 + l.qty.0).sum(),
            other => panic!("unexpected event {other:?}"),
        })
        .sum()
}

fn dec_mant(d: Decimal, scale: Scale) -> i64 {
    let mut d = d;
    d.rescale(u32::from(scale.places()));
    i64::try_from(d.mantissa()).expect("fits")
}

fn f64_mant(v: f64, scale: Scale) -> i64 {
    (v * 10f64.powi(i32::from(scale.places()))).round() as i64
}

/// A serde_json baseline: frame and scales in, checksum of the parsed mantissas out.
type Baseline = fn(&[u8], (Scale, Scale)) -> i64;

/// Checksum of one barter-data normalized event of kind `E`, at the instrument's scales.
type PeerSum<E> = fn(&barter_data::event::MarketEvent<u32, E>, (Scale, Scale)) -> i64;

/// One message kind on every path.
struct Case {
    /// Row name.
    name: &'static str,
    /// The frame.
    raw: &'static [u8],
    /// crossbar's market.
    market: BinanceMarket,
    /// Price and quantity scales of the instrument.
    scales: (Scale, Scale),
    /// serde_json baseline (None: no row).
    baseline: Option<Baseline>,
    /// Whether the peer has a path for it.
    peer: bool,
}

/// barter-data's full per-frame path for one Binance type: parser, then transformer.
trait PeerPath {
    /// Runs parser + transformer, drops the events (as a consumer would after handling them)
    /// and returns how many there were: the timed path.
    fn run(&mut self, msg: &WsMessage) -> usize;
    /// Runs parser + transformer; returns the number of normalized events and their checksum.
    fn check(&mut self, msg: &WsMessage, scales: (Scale, Scale)) -> (usize, i64);
    /// Runs the serde step only (`serde_json::from_str`, as barter's parser does on a text
    /// message), dropping the result.
    fn deser(&self, text: &str);
}

/// A barter `StatelessTransformer` for `Input`, keyed by the subscription id the frame carries.
struct Peer<Ex, Kind: SubscriptionKind, Input> {
    transformer: StatelessTransformer<Ex, u32, Kind, Input>,
    sum: PeerSum<Kind::Event>,
}

impl<Ex, Kind, Input> Peer<Ex, Kind, Input>
where
    Ex: Connector + Send,
    Kind: SubscriptionKind + Send,
    Input: Identifier<Option<barter_integration::subscription::SubscriptionId>> + for<'de> Deserialize<'de>,
    barter_data::event::MarketIter<u32, Kind::Event>: From<(barter_instrument::exchange::ExchangeId, u32, Input)>,
{
    fn new(raw: &[u8], sum: PeerSum<Kind::Event>) -> Self {
        let first: Input = serde_json::from_slice(raw).expect("peer decodes the frame");
        let id = first.id().expect("subscription id");
        let map: Map<u32> = std::iter::once((id, 7u32)).collect();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let transformer =
            futures::executor::block_on(<StatelessTransformer<Ex, u32, Kind, Input> as ExchangeTransformer<
                Ex,
                u32,
                Kind,
            >>::init(map, &[], tx))
            .expect("transformer");
        Self { transformer, sum }
    }
}

impl<Ex, Kind, Input> Peer<Ex, Kind, Input>
where
    Ex: Connector,
    Kind: SubscriptionKind,
    Input: Identifier<Option<barter_integration::subscription::SubscriptionId>> + for<'de> Deserialize<'de>,
    barter_data::event::MarketIter<u32, Kind::Event>: From<(barter_instrument::exchange::ExchangeId, u32, Input)>,
{
    /// barter's per-frame path: what its `ExchangeWsStream` does with each websocket message.
    fn events(
        &mut self,
        msg: &WsMessage,
    ) -> Vec<Result<barter_data::event::MarketEvent<u32, Kind::Event>, barter_data::error::DataError>> {
        let input = match <WebSocketSerdeParser as StreamParser<Input>>::parse(Ok(msg.clone())) {
            Some(Ok(input)) => input,
            _ => panic!("peer parse failed"),
        };
        self.transformer.transform(input)
    }
}

impl<Ex, Kind, Input> PeerPath for Peer<Ex, Kind, Input>
where
    Ex: Connector,
    Kind: SubscriptionKind,
    Input: Identifier<Option<barter_integration::subscription::SubscriptionId>> + for<'de> Deserialize<'de>,
    barter_data::event::MarketIter<u32, Kind::Event>: From<(barter_instrument::exchange::ExchangeId, u32, Input)>,
{
    fn run(&mut self, msg: &WsMessage) -> usize {
        black_box(self.events(msg)).len()
    }

    fn check(&mut self, msg: &WsMessage, scales: (Scale, Scale)) -> (usize, i64) {
        let events = self.events(msg);
        let n = events.len();
        let sum = events.iter().map(|e| (self.sum)(e.as_ref().expect("peer event"), scales)).sum();
        (n, sum)
    }

    fn deser(&self, text: &str) {
        black_box(serde_json::from_str::<Input>(text).expect("peer decodes the frame"));
    }
}

fn l1_sum(
    ev: &barter_data::event::MarketEvent<u32, barter_data::subscription::book::OrderBookL1>,
    (px, qty): (Scale, Scale),
) -> i64 {
    let side = |l: Option<barter_data::books::Level>| l.map_or(0, |l| dec_mant(l.price, px) + dec_mant(l.amount, qty));
    side(ev.kind.best_bid) + side(ev.kind.best_ask)
}

fn trade_sum(
    ev: &barter_data::event::MarketEvent<u32, barter_data::subscription::trade::PublicTrade>,
    (px, qty): (Scale, Scale),
) -> i64 {
    f64_mant(ev.kind.price, px) + f64_mant(ev.kind.amount, qty)
}

fn l2_sum(ev: &barter_data::event::MarketEvent<u32, OrderBookEvent>, (px, qty): (Scale, Scale)) -> i64 {
    let book = match &ev.kind {
        OrderBookEvent::Update(b) | OrderBookEvent::Snapshot(b) => b,
    };
    let side = |levels: &[barter_data::books::Level]| -> i64 {
        levels.iter().map(|l| dec_mant(l.price, px) + dec_mant(l.amount, qty)).sum()
    };
    side(book.bids().levels()) + side(book.asks().levels())
}

fn peer_for(name: &str, raw: &[u8]) -> Box<dyn PeerPath> {
    match name {
        "bookTicker" => Box::new(Peer::<BinanceSpot, OrderBooksL1, BinanceOrderBookL1>::new(raw, l1_sum)),
        "trade" => Box::new(Peer::<BinanceSpot, PublicTrades, BinanceTrade>::new(raw, trade_sum)),
        "depthUpdate 5+5 spot" => {
            Box::new(Peer::<BinanceSpot, OrderBooksL2, BinanceSpotOrderBookL2Update>::new(raw, l2_sum))
        }
        "depthUpdate 5+5 usdm" => {
            Box::new(Peer::<BinanceFuturesUsd, OrderBooksL2, BinanceFuturesOrderBookL2Update>::new(raw, l2_sum))
        }
        other => panic!("no peer path for {other}"),
    }
}

fn cases() -> [Case; 5] {
    let spot = (s(8), s(8));
    let btc_spot = (s(2), s(5));
    [
        Case {
            name: "bookTicker",
            raw: BOOK_TICKER,
            market: BinanceMarket::Spot,
            scales: spot,
            baseline: Some(serde_book_ticker),
            peer: true,
        },
        Case {
            name: "bookTicker combined",
            raw: BOOK_TICKER_COMBINED,
            market: BinanceMarket::Spot,
            scales: spot,
            baseline: None,
            peer: false,
        },
        Case {
            name: "trade",
            raw: TRADE,
            market: BinanceMarket::Spot,
            scales: btc_spot,
            baseline: Some(serde_trade),
            peer: true,
        },
        Case {
            name: "depthUpdate 5+5 spot",
            raw: DEPTH_SPOT_5_5,
            market: BinanceMarket::Spot,
            scales: btc_spot,
            baseline: Some(serde_depth),
            peer: true,
        },
        Case {
            name: "depthUpdate 5+5 usdm",
            raw: DEPTH_USDM_5_5,
            market: BinanceMarket::UsdM,
            scales: (s(1), s(3)),
            baseline: Some(serde_depth),
            peer: true,
        },
    ]
}

/// Where criterion writes, chosen here so the table can read the medians back.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"), PathBuf::from)
        .join("criterion")
}

fn median_ns(group: &str, function: &str) -> Option<f64> {
    let path = criterion_dir().join(group).join(function).join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// The only code callgrind counts in instruction-count mode (`--toggle-collect`): `n` calls of
/// one path, behind a `dyn` call so every path shares this one symbol.
#[inline(never)]
fn instr_loop(n: u64, f: &mut dyn FnMut()) {
    for _ in 0..n {
        f();
    }
}

/// criterion's name filter: the first argument that is neither an option nor an option's value.
fn name_filter(args: impl Iterator<Item = String>) -> Option<String> {
    const TAKES_VALUE: &[&str] = &[
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--profile-time",
        "--output-format",
        "--color",
        "--format",
        "--plotting-backend",
    ];
    let mut prev = String::new();
    for a in args {
        if !a.starts_with('-') && !TAKES_VALUE.contains(&prev.as_str()) {
            return Some(a);
        }
        prev = a;
    }
    None
}

/// One row's measurements besides the medians.
struct Row {
    name: &'static str,
    group: String,
    bytes: usize,
    events: (usize, Option<usize>),
    allocs: (f64, Option<f64>, Option<f64>, Option<f64>),
}

fn main() {
    let filter = name_filter(std::env::args().skip(1));
    let instr = std::env::var("PEER_BENCH_INSTR").ok().zip(std::env::var("PEER_BENCH_CASE").ok());
    let mut c = Criterion::default()
        .output_directory(&criterion_dir())
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(40)
        .configure_from_args();
    let mut rows = Vec::new();
    for case in cases() {
        let group = format!("peer_{}", case.name.replace([' ', '+'], "_"));
        let other_case = instr.as_ref().is_some_and(|(_, only)| only != case.name);
        if other_case || filter.as_ref().is_some_and(|f| !group.contains(f.as_str())) {
            continue;
        }
        let raw = case.raw;
        let mut dec = BinanceDecoder::new(case.market, SymbolTable::learning(case.scales.0, case.scales.1));
        let mut out: Vec<MarketEvent> = Vec::with_capacity(64);
        let mut buf = raw.to_vec();
        assert_eq!(dec.decode(&mut buf, 1, &mut out), Ok(FrameKind::Market), "{}", case.name);
        let events = out.len();
        let want = crossbar_sum(&out);

        // Every path must decode the same prices and quantities before any is timed.
        if let Some(baseline) = case.baseline {
            assert_eq!(baseline(raw, case.scales), want, "serde_json baseline of {}", case.name);
        }
        let mut peer = case.peer.then(|| peer_for(case.name, raw));
        let text = std::str::from_utf8(raw).expect("utf-8");
        let msg = WsMessage::text(text.to_owned());
        let peer_events = peer.as_mut().map(|p| {
            let (n, sum) = p.check(&msg, case.scales);
            assert_eq!(sum, want, "barter-data's decode of {}", case.name);
            n
        });

        let crossbar_allocs = allocs_per_call(|| {
            buf.copy_from_slice(raw);
            out.clear();
            black_box(dec.decode(&mut buf, 1, &mut out).ok());
        });
        let peer_allocs = peer.as_mut().map(|p| {
            allocs_per_call(|| {
                black_box(p.run(&msg));
            })
        });
        let deser_allocs = peer.as_ref().map(|p| allocs_per_call(|| p.deser(black_box(text))));
        let serde_allocs = case.baseline.map(|f| {
            allocs_per_call(|| {
                black_box(f(black_box(raw), case.scales));
            })
        });

        // Instruction-count mode (`instr.sh` runs it under callgrind): one path of one case,
        // `PEER_BENCH_ITERS` times inside `instr_loop`, and no criterion.
        if let Some((path, _)) = &instr {
            let n: u64 = std::env::var("PEER_BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
            match (path.as_str(), peer.as_mut(), case.baseline) {
                ("crossbar", _, _) => instr_loop(n, &mut || {
                    buf.copy_from_slice(raw);
                    out.clear();
                    black_box(dec.decode(black_box(&mut buf), 1, &mut out).ok());
                }),
                ("barter_data", Some(p), _) => instr_loop(n, &mut || {
                    black_box(p.run(black_box(&msg)));
                }),
                ("barter_data_deser", Some(p), _) => instr_loop(n, &mut || p.deser(black_box(text))),
                ("serde_json_baseline", _, Some(f)) => instr_loop(n, &mut || {
                    black_box(f(black_box(raw), case.scales));
                }),
                _ => panic!("no path {path} for {}", case.name),
            }
            return;
        }

        let mut g = c.benchmark_group(&group);
        g.bench_function("crossbar", |b| {
            b.iter(|| {
                buf.copy_from_slice(raw);
                out.clear();
                black_box(dec.decode(black_box(&mut buf), 1, &mut out).ok());
            })
        });
        if let Some(p) = peer.as_mut() {
            g.bench_function("barter_data", |b| b.iter(|| black_box(p.run(black_box(&msg)))));
            g.bench_function("barter_data_deser", |b| b.iter(|| p.deser(black_box(text))));
        }
        if let Some(f) = case.baseline {
            g.bench_function("serde_json_baseline", |b| b.iter(|| black_box(f(black_box(raw), case.scales))));
        }
        g.finish();
        rows.push(Row {
            name: case.name,
            group,
            bytes: raw.len(),
            events: (events, peer_events),
            allocs: (crossbar_allocs, peer_allocs, deser_allocs, serde_allocs),
        });
    }
    c.final_summary();

    let ns = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{v:.0} ns"));
    let allocs = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{v:.2}"));
    let ratio = |theirs: Option<f64>, ours: Option<f64>| match (theirs, ours) {
        (Some(t), Some(o)) if o > 0.0 => format!("{:.1}×", t / o),
        _ => "—".to_string(),
    };
    println!(
        "\n| message | bytes | events crossbar / barter | crossbar median | barter-data median | barter-data deser only | serde_json median | barter / crossbar | serde_json / crossbar | allocs/msg crossbar | allocs/msg barter | allocs/msg barter deser | allocs/msg serde_json |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let ours = median_ns(&r.group, "crossbar");
        let peer = median_ns(&r.group, "barter_data");
        let deser = median_ns(&r.group, "barter_data_deser");
        let serde = median_ns(&r.group, "serde_json_baseline");
        println!(
            "| `{}` | {} | {} / {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.bytes,
            r.events.0,
            r.events.1.map_or_else(|| "—".to_string(), |n| n.to_string()),
            ns(ours),
            ns(peer),
            ns(deser),
            ns(serde),
            ratio(peer, ours),
            ratio(serde, ours),
            allocs(Some(r.allocs.0)),
            allocs(r.allocs.1),
            allocs(r.allocs.2),
            allocs(r.allocs.3),
        );
    }
}
