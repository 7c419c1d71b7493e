//! Support shared by the venue decoder tests and the decode tool's: the reference fixtures in
//! `shared/reference`, decoding into fresh buffers, event builders at scale 8, the decoder's
//! contract on malformed and arbitrary input, a per-thread counting allocator and the proptest
//! frame mutators. Each test crate includes it with `mod support;` and uses its own subset.
#![allow(dead_code)] // every test crate uses only part of it

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::Arc;

use crossbar_connectors::feed::{DecodeError, FeedDecoder, FrameKind};
use crossbar_connectors::venue::{GatewayKind, Protocol, VenueConfig};
use crossbar_engine::event::Side::{Buy, Sell};
use crossbar_engine::event::{
    BOOK_CHUNK_LEVELS, BookChunk, BookUpdateKind, FeedStatus, Level, MarketBody, MarketEvent, Quote, SeqIds, Side,
};
use crossbar_engine::fixed::{FixedError, Px, Qty, Scale};
use crossbar_engine::instrument::{InstrumentConfig, InstrumentId, InstrumentKind, Registry};
use proptest::prelude::*;

/// The receive time every test decodes with.
pub const RECV_NS: u64 = 987_654_321;

// ---- fixtures ------------------------------------------------------------------------------

/// The reference folder `dir` (`"bybit"`, `"binance/spot"`; `""` for the root of them all).
pub fn reference_dir(dir: &str) -> String {
    let root = format!("{}/../../shared/reference", env!("CARGO_MANIFEST_DIR"));
    if dir.is_empty() { root } else { format!("{root}/{dir}") }
}

/// The files below the reference folder `root`, in its subfolders `dirs`, as `<dir>/<name>`
/// (bare `<name>` for the subfolder `""`).
pub fn reference_files(root: &str, dirs: &[&str]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for dir in dirs {
        let path = if dir.is_empty() { reference_dir(root) } else { format!("{}/{dir}", reference_dir(root)) };
        for entry in std::fs::read_dir(path).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            found.insert(if dir.is_empty() { name } else { format!("{dir}/{name}") });
        }
    }
    found
}

/// The fixture `name` of the reference folder `dir`.
pub fn fixture(dir: &str, name: &str) -> Vec<u8> {
    let full = format!("{}/{name}", reference_dir(dir));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A fixture as text with `from` (which must occur) replaced by `to`.
pub fn edited(dir: &str, name: &str, from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture(dir, name)).unwrap();
    assert!(text.contains(from), "{name} lacks {from}");
    text.replace(from, to).into_bytes()
}

/// A fixture with the member at `path` (object keys, or array indices as digits) set to the
/// JSON text `raw`, or removed when `raw` is `None`.
pub fn with(dir: &str, name: &str, path: &[&str], raw: Option<&str>) -> Vec<u8> {
    let mut doc: serde_json::Value = serde_json::from_slice(&fixture(dir, name)).unwrap();
    let (last, parents) = path.split_last().unwrap();
    let mut node = &mut doc;
    for key in parents {
        node = match key.parse::<usize>() {
            Ok(i) => &mut node[i],
            Err(_) => &mut node[*key],
        };
    }
    let obj = node.as_object_mut().unwrap();
    assert!(obj.contains_key(*last), "{name} lacks {path:?}");
    match raw {
        Some(raw) => obj.insert((*last).to_owned(), serde_json::from_str(raw).unwrap()),
        None => obj.remove(*last),
    };
    serde_json::to_vec(&doc).unwrap()
}

/// Declares `fixture(name)`, `edited(name, from, to)` and `with(name, path, raw)` over the
/// reference folder `$dir`: [`fixture`], [`edited`] and [`with`] with the folder filled in.
#[macro_export]
macro_rules! reference_fixtures {
    ($dir:expr) => {
        /// The fixture `name` of this crate's reference folder.
        fn fixture(name: &str) -> Vec<u8> {
            $crate::support::fixture($dir, name)
        }

        /// A fixture as text with `from` (which must occur) replaced by `to`.
        fn edited(name: &str, from: &str, to: &str) -> Vec<u8> {
            $crate::support::edited($dir, name, from, to)
        }

        /// A fixture with the member at `path` (object keys, or array indices as digits) set to
        /// the JSON text `raw`, or removed when `raw` is `None`.
        #[allow(dead_code)] // not every venue's tests edit nested members
        fn with(name: &str, path: &[&str], raw: Option<&str>) -> Vec<u8> {
            $crate::support::with($dir, name, path, raw)
        }
    };
}

// ---- decoding and events -------------------------------------------------------------------

/// A scale of `places` decimals.
pub fn scale(places: u8) -> Scale {
    Scale::new(places).unwrap()
}

/// A price at scale 8.
pub fn px(s: &str) -> Px {
    Px::parse(s.as_bytes(), scale(8)).unwrap()
}

/// A quantity at scale 8.
pub fn qty(s: &str) -> Qty {
    Qty::parse(s.as_bytes(), scale(8)).unwrap()
}

/// What decoding one frame gave: the result and the events written.
pub type Decoded = (Result<FrameKind, DecodeError>, Vec<MarketEvent>);

/// Decodes a copy of `frame` into an empty `out`.
pub fn decode(dec: &mut impl FeedDecoder, frame: &[u8]) -> Decoded {
    let mut out = Vec::with_capacity(16);
    let mut buf = frame.to_vec();
    let kind = dec.decode(&mut buf, RECV_NS, &mut out);
    (kind, out)
}

/// Decodes a market-data frame with `dec` (a fresh decoder); it must succeed.
pub fn events(mut dec: impl FeedDecoder, frame: &[u8]) -> Vec<MarketEvent> {
    let (kind, out) = decode(&mut dec, frame);
    assert_eq!(kind, Ok(FrameKind::Market), "{}", String::from_utf8_lossy(frame));
    out
}

/// A frame that decodes to `kind` without events.
pub fn nothing(kind: FrameKind) -> Decoded {
    (Ok(kind), vec![])
}

/// An event of instrument 0 received at [`RECV_NS`].
pub fn ev(exch_ts_ms: u64, seq: SeqIds, body: MarketBody) -> MarketEvent {
    MarketEvent { instrument: InstrumentId(0), exch_ts_ms, recv_ns: RECV_NS, decoded_ns: 0, seq, body }
}

/// The chunk events of one book message: `bids` then `asks`, [`BOOK_CHUNK_LEVELS`] a chunk,
/// one empty chunk when there are no levels; prices and quantities at scale 8.
pub fn book(
    kind: BookUpdateKind,
    ts: u64,
    seq: SeqIds,
    bids: &[(&str, &str)],
    asks: &[(&str, &str)],
) -> Vec<MarketEvent> {
    let levels: Vec<(Side, Level)> = bids
        .iter()
        .map(|l| (Buy, l))
        .chain(asks.iter().map(|l| (Sell, l)))
        .map(|(side, (p, q))| (side, Level { px: px(p), qty: qty(q) }))
        .collect();
    let parts: Vec<&[(Side, Level)]> =
        if levels.is_empty() { vec![&[]] } else { levels.chunks(BOOK_CHUNK_LEVELS).collect() };
    let n = parts.len();
    let mut out = Vec::new();
    for (i, part) in parts.into_iter().enumerate() {
        let mut c = BookChunk::new(kind);
        (c.first, c.last) = (i == 0, i + 1 == n);
        for &(side, level) in part {
            assert!(c.push(side, level));
        }
        out.push(ev(ts, seq, MarketBody::Book(c)));
    }
    out
}

/// A quote from `(price, size)` strings at scale 8.
pub fn quote(bid: (&str, &str), ask: (&str, &str)) -> MarketBody {
    MarketBody::Quote(Quote { bid_px: px(bid.0), bid_qty: qty(bid.1), ask_px: px(ask.0), ask_qty: qty(ask.1) })
}

// ---- malformed frames ----------------------------------------------------------------------

/// Decodes into an `out` that already holds an event and checks the frame fails with
/// `expected` and leaves `out` exactly as it was.
pub fn assert_rejected(dec: &mut impl FeedDecoder, frame: &[u8], expected: DecodeError) {
    let sentinel = ev(1, SeqIds { first: 1, last: 2, prev: 3 }, MarketBody::Status(FeedStatus::Connected));
    let mut out = Vec::with_capacity(16);
    out.push(sentinel);
    let mut buf = frame.to_vec();
    let got = dec.decode(&mut buf, RECV_NS, &mut out);
    let text = String::from_utf8_lossy(frame);
    assert_eq!(got, Err(expected), "{text}");
    assert_eq!(out, [sentinel], "{text}");
}

/// The error for a bad decimal in `field`.
pub fn bad_number(field: &'static str, source: FixedError) -> DecodeError {
    DecodeError::BadNumber { field, source }
}

// ---- simulator setup -----------------------------------------------------------------------

/// A USDT-quoted instrument with the fees the simulator tests use.
pub fn instrument(
    venue: &str,
    symbol: &str,
    kind: InstrumentKind,
    base: &str,
    tick: &str,
    lot: &str,
) -> InstrumentConfig {
    InstrumentConfig {
        venue: venue.into(),
        symbol: symbol.into(),
        kind,
        base: base.into(),
        quote: "USDT".into(),
        tick: tick.parse().unwrap(),
        lot: lot.parse().unwrap(),
        contract_size: "1".parse().unwrap(),
        taker_fee: "0.0004".parse().unwrap(),
        maker_fee: "0.0002".parse().unwrap(),
    }
}

/// Binance spot and USD-M served by the simulator with paper gateways, and a registry with
/// BTCUSDT on each.
pub fn binance_btc_venues() -> (Arc<Registry>, Vec<VenueConfig>) {
    let venue = |name: &str, protocol| VenueConfig {
        name: name.into(),
        protocol,
        ws_url: "sim".into(),
        rest_url: "sim".into(),
        gateway: GatewayKind::Paper,
        order_ws_url: "sim".into(),
        recv_window_ms: 5_000,
        credentials: None,
    };
    let venues = vec![venue("binance-spot", Protocol::BinanceSpot), venue("binance-usdm", Protocol::BinanceUsdm)];
    let names: Vec<String> = venues.iter().map(|v| v.name.clone()).collect();
    let registry = Registry::new(
        &names,
        &[
            instrument("binance-spot", "BTCUSDT", InstrumentKind::Spot, "BTC", "0.01", "0.001"),
            instrument("binance-usdm", "BTCUSDT", InstrumentKind::Perpetual, "BTC", "0.1", "0.001"),
        ],
    )
    .unwrap();
    (Arc::new(registry), venues)
}

// ---- allocation ----------------------------------------------------------------------------

/// Counts this thread's heap allocations, so tests running in parallel do not disturb it.
/// A test crate installs it with `#[global_allocator]`.
pub struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

/// This thread's allocations so far.
pub fn allocs() -> u64 {
    ALLOCS.try_with(Cell::get).unwrap_or(0)
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
#[allow(unsafe_code)] // as in benches/tests/hot_path_allocs.rs
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Decodes `frames`, and each cut in half (an error path must not allocate either), once to
/// warm `dec` up and ten times more counting: the ten must not allocate. Needs [`Counting`]
/// as the global allocator.
pub fn assert_decoding_allocates_nothing_after_warm_up(mut dec: impl FeedDecoder, mut frames: Vec<Vec<u8>>) {
    // Malformed frames too: an error path must not allocate either.
    frames.extend(frames.clone().into_iter().map(|mut f| {
        f.truncate(f.len() / 2);
        f
    }));
    let mut out = Vec::with_capacity(64);
    let mut decode_all = |frames: &mut [Vec<u8>]| {
        for frame in frames.iter_mut() {
            out.clear();
            let _ = dec.decode(frame, RECV_NS, &mut out);
        }
    };
    // Warm-up: the symbol table learns its symbols.
    decode_all(&mut frames);
    let before = allocs();
    for _ in 0..10 {
        decode_all(&mut frames);
    }
    assert_eq!(allocs() - before, 0);
    // The counter does count.
    let boxed = std::hint::black_box(Box::new(1u64));
    assert!(allocs() > before, "{boxed}");
}

// ---- properties ----------------------------------------------------------------------------

/// Rewrites `value` with the members of every object in the order `perm` (a permutation of
/// member indices), so the decoder sees the same message with a different field order.
pub fn reorder(value: &serde_json::Value, perm: &[usize]) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let members: Vec<String> =
                map.iter().map(|(k, v)| format!("{}:{}", serde_json::json!(k), reorder(v, perm))).collect();
            let ordered: Vec<&str> = perm.iter().filter_map(|&i| members.get(i).map(String::as_str)).collect();
            format!("{{{}}}", ordered.join(","))
        }
        serde_json::Value::Array(items) => {
            format!("[{}]", items.iter().map(|v| reorder(v, perm)).collect::<Vec<_>>().join(","))
        }
        other => other.to_string(),
    }
}

/// `frame` must decode (with a fresh decoder from `new`) and decode the same with the members
/// of every object reordered by `perm`.
pub fn check_field_order<D: FeedDecoder>(
    new: impl Fn() -> D,
    frame: &[u8],
    perm: &[usize],
) -> Result<(), TestCaseError> {
    let expected = decode(&mut new(), frame);
    prop_assert!(expected.0.is_ok());
    let doc: serde_json::Value = serde_json::from_slice(frame).unwrap();
    prop_assert_eq!(decode(&mut new(), reorder(&doc, perm).as_bytes()), expected);
    Ok(())
}

/// The decoder's contract on any input: no panic; events only with `Market`, each stamped
/// with the receive time (and at least one when `market_has_events`); otherwise `out`
/// untouched.
pub fn check_contract(mut dec: impl FeedDecoder, frame: &[u8], market_has_events: bool) -> Result<(), TestCaseError> {
    let sentinel = ev(1, SeqIds { first: 1, last: 2, prev: 3 }, MarketBody::Status(FeedStatus::Gap));
    let mut out = vec![sentinel];
    let mut buf = frame.to_vec();
    let got = dec.decode(&mut buf, RECV_NS, &mut out);
    prop_assert_eq!(out[0], sentinel);
    if got == Ok(FrameKind::Market) {
        if market_has_events {
            prop_assert!(out.len() > 1);
        }
        prop_assert!(out[1..].iter().all(|e| e.recv_ns == RECV_NS && e.decoded_ns == 0));
    } else {
        prop_assert_eq!(out.len(), 1);
    }
    Ok(())
}

/// One byte edit of a frame: `(op, at, byte)`, op 0 inserts, 1 removes, 2 overwrites.
pub type Edit = (usize, prop::sample::Index, u8);

/// One to four byte edits for [`mutate`].
pub fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec((0usize..3, any::<prop::sample::Index>(), any::<u8>()), 1..5)
}

/// Applies `edits` to `frame` in order.
pub fn mutate(frame: &mut Vec<u8>, edits: Vec<Edit>) {
    for (op, at, byte) in edits {
        let i = at.index(frame.len() + 1);
        match op {
            0 => frame.insert(i, byte),
            1 if i < frame.len() => {
                frame.remove(i);
            }
            _ if i < frame.len() => frame[i] = byte,
            _ => {}
        }
    }
}

/// Declares, in the test crate that invokes it, `all_frames()` (every fixture of its
/// `FIXTURES`, read by its `fixture`) and the tests a venue decoder of one market passes on
/// them: no allocation after warm-up (installing [`Counting`] as the global allocator), field
/// order never matters, and neither arbitrary bytes nor mutated `fuzzed` frames break
/// [`check_contract`]. `learning` makes a fresh decoder. The invoking crate imports
/// `proptest::prelude::*`.
#[macro_export]
macro_rules! decoder_contract_tests {
    (learning: $learning:path, fuzzed: $fuzzed:path $(,)?) => {
        /// Every fixture of the reference folder, control frames and requests included.
        fn all_frames() -> Vec<Vec<u8>> {
            FIXTURES.iter().map(|name| fixture(name)).collect()
        }

        #[global_allocator]
        static GLOBAL: $crate::support::Counting = $crate::support::Counting;

        #[test]
        fn decoding_allocates_nothing_after_warm_up() {
            $crate::support::assert_decoding_allocates_nothing_after_warm_up($learning(), all_frames());
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn field_order_never_matters(which in any::<prop::sample::Index>(), perm in Just((0..32).collect::<Vec<usize>>()).prop_shuffle()) {
                let frames = all_frames();
                $crate::support::check_field_order($learning, which.get::<Vec<u8>>(&frames), &perm)?;
            }

            #[test]
            fn arbitrary_bytes_never_panic(frame in prop::collection::vec(any::<u8>(), 0..200)) {
                $crate::support::check_contract($learning(), &frame, false)?;
            }

            #[test]
            fn mutated_frames_never_panic(which in any::<prop::sample::Index>(), edits in $crate::support::edits()) {
                let mut frame = which.get(&$fuzzed()).clone();
                $crate::support::mutate(&mut frame, edits);
                $crate::support::check_contract($learning(), &frame, false)?;
            }
        }
    };
}
