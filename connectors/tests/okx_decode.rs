//! The OKX decoder against every documented payload in `shared/reference/okx`, field by field,
//! plus malformed frames (each error exact, `out` untouched) and fuzzing (no panic, field order
//! irrelevant).
#![allow(unsafe_code)] // the counting allocator below, as in benches/tests/hot_path_allocs.rs

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeSet;

use crossbar_connectors::feed::{DecodeError, FeedDecoder, FrameKind, SymbolTable};
use crossbar_connectors::okx::OkxDecoder;
use crossbar_engine::event::BookUpdateKind::{Delta, Snapshot};
use crossbar_engine::event::Side::{Buy, Sell};
use crossbar_engine::event::{
    BOOK_CHUNK_LEVELS, BookChunk, BookUpdateKind, FeedStatus, Funding, Level, MarketBody, MarketEvent, Quote, SeqIds,
    Side, Trade, TradeId,
};
use crossbar_engine::fixed::{FixedError, Px, Qty, Rate, Scale};
use crossbar_engine::instrument::{InstrumentConfig, InstrumentId, Registry, VenueId};
use proptest::prelude::*;

const RECV_NS: u64 = 987_654_321;

/// Every file of the reference folder.
const FIXTURES: [&str; 10] = [
    "bbo-tbt.json",
    "books5.json",
    "books_snapshot.json",
    "books_update.json",
    "funding-rate.json",
    "tickers.json",
    "trades.json",
    "ws_login_request.json",
    "ws_subscribe_request_books.json",
    "ws_subscribe_response_books.json",
];

fn reference_dir() -> String {
    format!("{}/../../shared/reference/okx", env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> Vec<u8> {
    let full = format!("{}/{name}", reference_dir());
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A fixture as text with `from` (which must occur) replaced by `to`.
fn edited(name: &str, from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture(name)).unwrap();
    assert!(text.contains(from), "{name} lacks {from}");
    text.replace(from, to).into_bytes()
}

/// A fixture with the member at `path` (object keys, or array indices as digits) set to the
/// JSON text `raw`, or removed when `raw` is `None`.
fn with(name: &str, path: &[&str], raw: Option<&str>) -> Vec<u8> {
    let mut doc: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
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

fn scale(places: u8) -> Scale {
    Scale::new(places).unwrap()
}

/// A decoder that learns every instrument at scale 8 for prices and quantities.
fn learning() -> OkxDecoder {
    OkxDecoder::new(SymbolTable::learning(scale(8), scale(8)))
}

/// A decoder built from a registry: BTC-USDT (id 0, tick 0.1, lot 0.00000001).
fn registered() -> OkxDecoder {
    let cfg: InstrumentConfig = serde_json::from_value(serde_json::json!({
        "venue": "okx", "symbol": "BTC-USDT", "kind": "spot", "base": "BTC", "quote": "USDT",
        "tick": "0.1", "lot": "0.00000001", "taker_fee": "0.001", "maker_fee": "0.0008"
    }))
    .unwrap();
    let registry = Registry::new(&["okx".to_string()], &[cfg]).unwrap();
    OkxDecoder::new(SymbolTable::for_venue(&registry, VenueId(0)))
}

fn px(s: &str) -> Px {
    Px::parse(s.as_bytes(), scale(8)).unwrap()
}

fn qty(s: &str) -> Qty {
    Qty::parse(s.as_bytes(), scale(8)).unwrap()
}

type Decoded = (Result<FrameKind, DecodeError>, Vec<MarketEvent>);

fn decode(dec: &mut OkxDecoder, frame: &[u8]) -> Decoded {
    let mut out = Vec::with_capacity(16);
    let mut buf = frame.to_vec();
    let kind = dec.decode(&mut buf, RECV_NS, &mut out);
    (kind, out)
}

/// Decodes a market-data frame with a fresh learning decoder; it must succeed.
fn events(frame: &[u8]) -> Vec<MarketEvent> {
    let (kind, out) = decode(&mut learning(), frame);
    assert_eq!(kind, Ok(FrameKind::Market), "{}", String::from_utf8_lossy(frame));
    out
}

fn nothing(kind: FrameKind) -> Decoded {
    (Ok(kind), vec![])
}

fn ev(exch_ts_ms: u64, seq: SeqIds, body: MarketBody) -> MarketEvent {
    MarketEvent { instrument: InstrumentId(0), exch_ts_ms, recv_ns: RECV_NS, decoded_ns: 0, seq, body }
}

fn seq(last: u64, prev: u64) -> SeqIds {
    SeqIds { first: 0, last, prev }
}

/// The chunk events of one book message: `bids` then `asks`, [`BOOK_CHUNK_LEVELS`] a chunk.
fn book(kind: BookUpdateKind, ts: u64, seq: SeqIds, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> Vec<MarketEvent> {
    let levels: Vec<(Side, Level)> = bids
        .iter()
        .map(|l| (Buy, l))
        .chain(asks.iter().map(|l| (Sell, l)))
        .map(|(side, (p, q))| (side, Level { px: px(p), qty: qty(q) }))
        .collect();
    let parts: Vec<&[(Side, Level)]> = levels.chunks(BOOK_CHUNK_LEVELS).collect();
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

fn quote(bid: (&str, &str), ask: (&str, &str)) -> MarketBody {
    MarketBody::Quote(Quote { bid_px: px(bid.0), bid_qty: qty(bid.1), ask_px: px(ask.0), ask_qty: qty(ask.1) })
}

/// The eight bids and eight asks of both `books` fixtures.
const BOOKS_BIDS: [(&str, &str); 8] = [
    ("8476.97", "256"),
    ("8475.55", "101"),
    ("8475.54", "100"),
    ("8475.3", "1"),
    ("8447.32", "6"),
    ("8447.02", "246"),
    ("8446.83", "24"),
    ("8446", "95"),
];
const BOOKS_ASKS: [(&str, &str); 8] = [
    ("8476.98", "415"),
    ("8477", "7"),
    ("8477.34", "85"),
    ("8477.56", "1"),
    ("8505.84", "8"),
    ("8506.37", "85"),
    ("8506.49", "2"),
    ("8506.96", "100"),
];

// ---- every fixture, field by field -------------------------------------------------------

#[test]
fn every_reference_file_is_tested_here() {
    let found: BTreeSet<String> = std::fs::read_dir(reference_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = FIXTURES.iter().map(|s| s.to_string()).collect();
    assert_eq!(found, expected);
}

#[test]
fn books_snapshot_has_no_predecessor() {
    let out = events(&fixture("books_snapshot.json"));
    // prevSeqId -1: the snapshot has no predecessor, so 0.
    assert_eq!(out, book(Snapshot, 1_597_026_383_085, seq(123_456, 0), &BOOKS_BIDS, &BOOKS_ASKS));
    assert_eq!(out.len(), 4);
    let MarketBody::Book(c) = out[0].body else { panic!("not a book") };
    assert_eq!(c.levels[0], Level { px: Px(847_697_000_000), qty: Qty(25_600_000_000) });
}

#[test]
fn books_update_carries_both_sequence_ids() {
    let out = events(&fixture("books_update.json"));
    assert_eq!(out, book(Delta, 1_597_026_383_085, seq(123_457, 123_456), &BOOKS_BIDS, &BOOKS_ASKS));
    let masks: Vec<u8> = out.iter().map(|e| if let MarketBody::Book(c) = e.body { c.ask_mask } else { 0xff }).collect();
    assert_eq!(masks, [0b0000, 0b0000, 0b1111, 0b1111]);
    // The tick-by-tick channels share the format.
    let tbt = edited("books_update.json", r#""channel": "books""#, r#""channel": "books-l2-tbt""#);
    assert_eq!(events(&tbt), out);
}

#[test]
fn books5_is_a_snapshot() {
    let out = events(&fixture("books5.json"));
    let bids =
        [("111.05", "57745"), ("111.04", "57109"), ("111.03", "69563"), ("111.02", "71248"), ("111.01", "65090")];
    let asks = [("111.06", "55154"), ("111.07", "53276"), ("111.08", "72435"), ("111.09", "70312"), ("111.1", "67272")];
    assert_eq!(out, book(Snapshot, 1_670_324_386_802, seq(363_996_337, 0), &bids, &asks));
}

#[test]
fn bbo_tbt_is_a_quote() {
    let out = events(&fixture("bbo-tbt.json"));
    let q = quote(("111.05", "57745"), ("111.06", "55154"));
    assert_eq!(out, [ev(1_670_324_386_802, seq(363_996_337, 0), q)]);
    let empty_ask = with("bbo-tbt.json", &["data", "0", "asks"], Some("[]"));
    assert_eq!(
        events(&empty_ask),
        [ev(1_670_324_386_802, seq(363_996_337, 0), quote(("111.05", "57745"), ("0", "0")))]
    );
}

#[test]
fn trades() {
    let trade = |p: &str, s: &str, aggressor, id: &str| {
        let trade_id = TradeId::from_bytes(id.as_bytes()).unwrap();
        MarketBody::Trade(Trade { px: px(p), qty: qty(s), aggressor, trade_id })
    };
    let out = events(&fixture("trades.json"));
    assert_eq!(out, [ev(1_630_048_897_897, SeqIds::default(), trade("42219.9", "0.12060306", Buy, "130639474"))]);
    let frame = br#"{"data":[{"tradeId":"1","px":"2","sz":"3","side":"sell","ts":"4"},
        {"ts":"5","side":"buy","sz":"0.5","px":"1.5","tradeId":"6"}],"arg":{"instId":"BTC-USDT","channel":"trades"}}"#;
    let expected =
        [ev(4, SeqIds::default(), trade("2", "3", Sell, "1")), ev(5, SeqIds::default(), trade("1.5", "0.5", Buy, "6"))];
    assert_eq!(events(frame), expected);
}

#[test]
fn funding_rate_is_exact_at_sixteen_places() {
    let out = events(&fixture("funding-rate.json"));
    // "0.0001875391284828": all sixteen decimals are kept.
    let funding = Funding { mark_px: Px(0), index_px: Px(0), rate: Rate(1_875_391_284_828), next_funding_ms: 1_700_726_400_000 };
    assert_eq!(out, [ev(1_700_724_675_402, SeqIds::default(), MarketBody::Funding(funding))]);
}

#[test]
fn tickers_give_a_quote() {
    let out = events(&fixture("tickers.json"));
    assert_eq!(out, [ev(1_597_026_383_085, SeqIds::default(), quote(("8888.88", "5"), ("9999.99", "11")))]);
    // An empty side is sent as empty strings: a zero side.
    let no_bid = edited("tickers.json", r#""bidPx": "8888.88", "bidSz": "5""#, r#""bidPx": "", "bidSz": """#);
    assert_eq!(events(&no_bid), [ev(1_597_026_383_085, SeqIds::default(), quote(("0", "0"), ("9999.99", "11")))]);
}

#[test]
fn control_frames() {
    let mut dec = learning();
    for (name, kind) in [
        ("ws_subscribe_response_books.json", FrameKind::SubscribeAck),
        ("ws_subscribe_request_books.json", FrameKind::Unknown),
        ("ws_login_request.json", FrameKind::Unknown),
    ] {
        assert_eq!(decode(&mut dec, &fixture(name)), nothing(kind), "{name}");
    }
    for (frame, kind) in [
        ("pong", FrameKind::Pong),
        (" pong\r\n", FrameKind::Pong),
        (r#"{"event":"error","code":"60012","msg":"Invalid request","connId":"a4d3ae55"}"#, FrameKind::Unknown),
        (
            r#"{"event":"notice","code":"64008","msg":"The connection will soon be closed","connId":"a"}"#,
            FrameKind::ServerShutdown,
        ),
        (r#"{"event":"notice","code":"1","msg":"x"}"#, FrameKind::Unknown),
        (r#"{"event":"unsubscribe","arg":{"channel":"books","instId":"BTC-USDT"}}"#, FrameKind::Unknown),
        (r#"{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[]}"#, FrameKind::Unknown),
        ("{}", FrameKind::Unknown),
    ] {
        assert_eq!(decode(&mut dec, frame.as_bytes()), nothing(kind), "{frame}");
    }
    assert!(dec.symbols().entries().is_empty());
}

#[test]
fn unknown_instruments_write_nothing() {
    let mut dec = registered();
    assert_eq!(decode(&mut dec, &fixture("bbo-tbt.json")), nothing(FrameKind::UnknownSymbol));
    // At the registry's scales (price 1, quantity 8) the mantissas are the digits as written.
    let (kind, out) = decode(&mut dec, &fixture("trades.json"));
    assert_eq!(kind, Ok(FrameKind::Market));
    assert!(matches!(out[0].body, MarketBody::Trade(Trade { px: Px(422_199), qty: Qty(12_060_306), .. })));
    let two_decimals = with("trades.json", &["data", "0", "px"], Some(r#""42219.95""#));
    assert_rejected(&mut dec, &two_decimals, bad_number("px", FixedError::TooManyDecimals { scale: 1 }));
}

// ---- malformed frames: exact error, `out` untouched ----------------------------------------

/// Decodes into an `out` that already holds an event and checks the frame fails with
/// `expected` and leaves `out` exactly as it was.
fn assert_rejected(dec: &mut OkxDecoder, frame: &[u8], expected: DecodeError) {
    let sentinel = ev(1, SeqIds { first: 1, last: 2, prev: 3 }, MarketBody::Status(FeedStatus::Connected));
    let mut out = Vec::with_capacity(16);
    out.push(sentinel);
    let mut buf = frame.to_vec();
    let got = dec.decode(&mut buf, RECV_NS, &mut out);
    let text = String::from_utf8_lossy(frame);
    assert_eq!(got, Err(expected), "{text}");
    assert_eq!(out, [sentinel], "{text}");
}

fn bad_number(field: &'static str, source: FixedError) -> DecodeError {
    DecodeError::BadNumber { field, source }
}

#[test]
fn malformed_books() {
    use DecodeError::{BadInteger, MissingField, WrongType};
    use FixedError::{Exponent, Negative, NotANumber};
    let cases: [(&[&str], Option<&str>, DecodeError); 19] = [
        (&["data", "0", "bids"], Some(r#"[["1e5","1","0","1"]]"#), bad_number("bids", Exponent)),
        (&["data", "0", "asks"], Some(r#"[["NaN","1","0","1"]]"#), bad_number("asks", NotANumber)),
        (&["data", "0", "bids"], Some(r#"[["1","-1","0","1"]]"#), bad_number("bids", Negative)),
        (&["data", "0", "bids"], Some(r#"[["1","1"]]"#), WrongType("bids")),
        (&["data", "0", "asks"], Some(r#"[["1","1","0",1]]"#), WrongType("asks")),
        (&["data", "0", "asks"], None, MissingField("asks")),
        (&["data", "0", "seqId"], None, MissingField("seqId")),
        (&["data", "0", "seqId"], Some(r#""123457""#), WrongType("seqId")),
        (&["data", "0", "prevSeqId"], Some("-2"), BadInteger("prevSeqId")),
        (&["data", "0", "ts"], Some("1597026383085"), WrongType("ts")),
        (&["data", "0", "ts"], Some(r#""15x""#), BadInteger("ts")),
        (&["action"], Some(r#""partial""#), WrongType("action")),
        (&["action"], None, MissingField("action")),
        (&["arg", "instId"], None, MissingField("instId")),
        (&["arg", "channel"], None, MissingField("channel")),
        (&["arg"], Some(r#""books""#), WrongType("arg")),
        (&["data"], Some("{}"), WrongType("data")),
        (&["data"], Some(r#"["x"]"#), WrongType("data")),
        (&["data"], None, MissingField("data")),
    ];
    let mut dec = learning();
    for (path, raw, expected) in cases {
        assert_rejected(&mut dec, &with("books_update.json", path, raw), expected);
    }
    // A defect in the last ask, after three chunks were written: all of them removed.
    let last_ask = edited("books_update.json", r#"["8506.96", "100""#, r#"["8506.96", "1.0.0""#);
    assert_rejected(&mut dec, &last_ask, bad_number("asks", FixedError::MisplacedPoint));
}

#[test]
fn malformed_trades_funding_and_tickers() {
    use DecodeError::{BadInteger, MissingField, WrongType};
    use FixedError::{Exponent, InvalidChar, Negative, NotANumber};
    let long_id = format!("\"{}\"", "9".repeat(47));
    let cases: [(&str, &[&str], Option<&str>, DecodeError); 11] = [
        ("trades.json", &["data", "0", "px"], Some(r#""4.2e4""#), bad_number("px", Exponent)),
        ("trades.json", &["data", "0", "sz"], Some(r#""-0.1""#), bad_number("sz", Negative)),
        ("trades.json", &["data", "0", "side"], Some(r#""Buy""#), WrongType("side")),
        ("trades.json", &["data", "0", "tradeId"], Some("130639474"), WrongType("tradeId")),
        ("trades.json", &["data", "0", "tradeId"], Some(&long_id), WrongType("tradeId")),
        (
            "funding-rate.json",
            &["data", "0", "fundingRate"],
            Some(r#""abc""#),
            bad_number("fundingRate", InvalidChar { byte: 'a', pos: 0 }),
        ),
        ("funding-rate.json", &["data", "0", "fundingTime"], None, MissingField("fundingTime")),
        ("funding-rate.json", &["data", "0", "fundingTime"], Some(r#""-1""#), BadInteger("fundingTime")),
        ("tickers.json", &["data", "0", "bidPx"], Some(r#""NaN""#), bad_number("bidPx", NotANumber)),
        ("tickers.json", &["data", "0", "askSz"], None, MissingField("askSz")),
        ("bbo-tbt.json", &["data", "0", "seqId"], None, MissingField("seqId")),
    ];
    let mut dec = learning();
    for (name, path, raw, expected) in cases {
        assert_rejected(&mut dec, &with(name, path, raw), expected);
    }
}

#[test]
fn broken_json() {
    let json = |at, what| DecodeError::Json { at, what };
    let trades = fixture("trades.json");
    let cases: [(&[u8], DecodeError); 6] = [
        (b"", json(0, "expected '{'")),
        (b"pon", json(0, "expected '{'")),
        (b"pong pong", json(0, "expected '{'")),
        (&trades[..12], json(9, "unterminated string")),
        (br#"{"arg":{"channel":"books","instId":"X"},"data":[{]}"#, json(49, "expected a string key")),
        (br#"{"event":"subscribe"}}"#, json(21, "trailing characters after the document")),
    ];
    let mut dec = learning();
    for (frame, expected) in cases {
        assert_rejected(&mut dec, frame, expected);
    }
    assert!(dec.symbols().entries().is_empty());
}

// ---- allocation ----------------------------------------------------------------------------

/// Counts this thread's heap allocations, so tests running in parallel do not disturb it.
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn allocs() -> u64 {
    ALLOCS.try_with(Cell::get).unwrap_or(0)
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
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

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn decoding_allocates_nothing_after_warm_up() {
    let mut frames = all_frames();
    // Malformed frames too: an error path must not allocate either.
    frames.extend(frames.clone().into_iter().map(|mut f| {
        f.truncate(f.len() / 2);
        f
    }));
    let mut dec = learning();
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

/// Every fixture (all JSON): market data, control frames and requests alike.
fn all_frames() -> Vec<Vec<u8>> {
    FIXTURES.iter().map(|name| fixture(name)).collect()
}

/// Rewrites `value` with the members of every object in the order `perm` (a permutation of
/// member indices), so the decoder sees the same message with a different field order.
fn reorder(value: &serde_json::Value, perm: &[usize]) -> String {
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

/// The decoder's contract on any input: no panic; events only with `Market`, each stamped
/// with the receive time; otherwise `out` untouched.
fn check_contract(frame: &[u8]) -> Result<(), TestCaseError> {
    let sentinel = ev(1, SeqIds { first: 1, last: 2, prev: 3 }, MarketBody::Status(FeedStatus::Gap));
    let mut out = vec![sentinel];
    let mut buf = frame.to_vec();
    let got = learning().decode(&mut buf, RECV_NS, &mut out);
    prop_assert_eq!(out[0], sentinel);
    if got == Ok(FrameKind::Market) {
        prop_assert!(out[1..].iter().all(|e| e.recv_ns == RECV_NS && e.decoded_ns == 0));
    } else {
        prop_assert_eq!(out.len(), 1);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn field_order_never_matters(which in any::<prop::sample::Index>(), perm in Just((0..32).collect::<Vec<usize>>()).prop_shuffle()) {
        let frames = all_frames();
        let frame = which.get(&frames);
        let expected = decode(&mut learning(), frame);
        prop_assert!(expected.0.is_ok());
        let doc: serde_json::Value = serde_json::from_slice(frame).unwrap();
        prop_assert_eq!(decode(&mut learning(), reorder(&doc, &perm).as_bytes()), expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic(frame in prop::collection::vec(any::<u8>(), 0..200)) {
        check_contract(&frame)?;
    }

    #[test]
    fn mutated_frames_never_panic(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec((0usize..3, any::<prop::sample::Index>(), any::<u8>()), 1..5),
    ) {
        let mut frames = all_frames();
        frames.push(b"pong".to_vec());
        let mut frame = which.get(&frames).clone();
        for (op, at, byte) in edits {
            let i = at.index(frame.len() + 1);
            match op {
                0 => frame.insert(i, byte),
                1 if i < frame.len() => { frame.remove(i); }
                _ if i < frame.len() => frame[i] = byte,
                _ => {}
            }
        }
        check_contract(&frame)?;
    }
}
