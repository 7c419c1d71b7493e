//! The Bybit decoder against every documented payload in `shared/reference/bybit`, field by
//! field, the REST book snapshot, malformed frames (each error exact, `out` untouched) and
//! fuzzing (no panic, field order irrelevant).

use std::collections::BTreeSet;

use crossbar_connectors::bybit::{
    BybitCategory, BybitDecoder, OrderbookSnapshot, SnapshotError, parse_orderbook_snapshot,
};
use crossbar_connectors::feed::{DecodeError, FrameKind, SymbolTable};
use crossbar_engine::event::BookUpdateKind::{Delta, Snapshot};
use crossbar_engine::event::Side::{Buy, Sell};
use crossbar_engine::event::{Funding, Level, MarketBody, MarketEvent, SeqIds, Trade, TradeId};
use crossbar_engine::fixed::{FixedError, Px, Qty, RATE_SCALE, REFERENCE_SCALE, Rate};
use crossbar_engine::instrument::{InstrumentConfig, Registry, VenueId};
use proptest::prelude::*;

mod support;

use support::{assert_rejected, bad_number, book, decode, ev, nothing, px, qty, quote, scale};

/// Every file of the reference folder.
const FIXTURES: [&str; 11] = [
    "orderbook_50_delta.json",
    "orderbook_50_snapshot.json",
    "publicTrade.json",
    "rest_GET_v5_market_orderbook_response.json",
    "tickers_linear_futures_snapshot.json",
    "tickers_linear_perpetual_snapshot.json",
    "tickers_spot_snapshot.json",
    "ws_auth_request.json",
    "ws_pong_linear.json",
    "ws_subscribe_request_multi.json",
    "ws_subscribe_response_linear.json",
];

const VENUE: &str = "bybit";

crate::reference_fixtures!(VENUE);

/// A linear decoder that learns every symbol at scale 8 for prices and quantities.
fn learning() -> BybitDecoder {
    BybitDecoder::new(BybitCategory::Linear, SymbolTable::learning(scale(8), scale(8)))
}

/// A spot decoder built from a registry: BTCUSDT (id 0, tick 0.01, lot 0.000001).
fn registered() -> BybitDecoder {
    let cfg: InstrumentConfig = serde_json::from_value(serde_json::json!({
        "venue": "bybit", "symbol": "BTCUSDT", "kind": "spot", "base": "BTC", "quote": "USDT",
        "tick": "0.01", "lot": "0.000001", "taker_fee": "0.001", "maker_fee": "0.001"
    }))
    .unwrap();
    let registry = Registry::new(&["bybit".to_string()], &[cfg]).unwrap();
    BybitDecoder::new(BybitCategory::Spot, SymbolTable::for_venue(&registry, VenueId(0)))
}

fn reference(s: &str) -> Px {
    Px::parse(s.as_bytes(), REFERENCE_SCALE).unwrap()
}

fn rate(s: &str) -> Rate {
    Rate::parse(s.as_bytes(), RATE_SCALE).unwrap()
}

fn events(frame: &[u8]) -> Vec<MarketEvent> {
    support::events(learning(), frame)
}

fn last_id(last: u64) -> SeqIds {
    SeqIds { first: 0, last, prev: 0 }
}

// ---- every fixture, field by field -------------------------------------------------------

#[test]
fn every_reference_file_is_tested_here() {
    let found = support::reference_files(VENUE, &[""]);
    let expected: BTreeSet<String> = FIXTURES.iter().map(|s| s.to_string()).collect();
    assert_eq!(found, expected);
}

#[test]
fn orderbook_snapshot() {
    let out = events(&fixture("orderbook_50_snapshot.json"));
    let bids = [("16493.50", "0.006"), ("16493.00", "0.100")];
    let asks = [("16611.00", "0.029"), ("16612.00", "0.213")];
    assert_eq!(out, book(Snapshot, 1_672_304_484_978, last_id(18_521_288), &bids, &asks));
    let MarketBody::Book(c) = out[0].body else { panic!("not a book") };
    assert_eq!((c.len, c.ask_mask, c.first, c.last), (4, 0b1100, true, true));
    // The mantissas at scale 8, written out once.
    assert_eq!(c.levels[0], Level { px: Px(1_649_350_000_000), qty: Qty(600_000) });
}

#[test]
fn orderbook_delta_spans_three_chunks_and_keeps_zero_sizes() {
    let out = events(&fixture("orderbook_50_delta.json"));
    let bids = [
        ("30247.20", "30.028"),
        ("30245.40", "0.224"),
        ("30242.10", "1.593"),
        ("30240.30", "1.305"),
        ("30240.00", "0"),
    ];
    let asks = [
        ("30248.70", "0"),
        ("30249.30", "0.892"),
        ("30249.50", "1.778"),
        ("30249.60", "0"),
        ("30251.90", "2.947"),
        ("30252.20", "0.659"),
        ("30252.50", "4.591"),
    ];
    assert_eq!(out, book(Delta, 1_687_940_967_466, last_id(177_400_507), &bids, &asks));
    let masks: Vec<u8> = out.iter().map(|e| if let MarketBody::Book(c) = e.body { c.ask_mask } else { 0xff }).collect();
    assert_eq!(masks, [0b0000, 0b1110, 0b1111]);
}

#[test]
fn level1_snapshot_is_a_quote_and_level1_delta_a_book() {
    let level1 = |ty: &str, b: &str, a: &str| {
        format!(
            r#"{{"topic":"orderbook.1.BTCUSDT","type":"{ty}","ts":1672304484978,"data":{{"s":"BTCUSDT","b":{b},"a":{a},"u":18521288,"seq":7961638724}},"cts":1672304484976}}"#
        )
    };
    let (b, a) = (r#"[["16493.50","0.006"]]"#, r#"[["16611.00","0.029"]]"#);
    let expected = ev(1_672_304_484_978, last_id(18_521_288), quote(("16493.50", "0.006"), ("16611.00", "0.029")));
    assert_eq!(events(level1("snapshot", b, a).as_bytes()), [expected]);
    // An empty side is a zero side, so a vanished ask does not linger.
    let one_sided = events(level1("snapshot", b, "[]").as_bytes());
    assert_eq!(one_sided, [ev(1_672_304_484_978, last_id(18_521_288), quote(("16493.50", "0.006"), ("0", "0")))]);
    let delta = events(level1("delta", b, "[]").as_bytes());
    assert_eq!(delta, book(Delta, 1_672_304_484_978, last_id(18_521_288), &[("16493.50", "0.006")], &[]));
}

#[test]
fn public_trades() {
    let uuid = "20f43950-d8dd-5b31-9112-a178eb6023af";
    let trade = |p: &str, v: &str, aggressor, id: &str| {
        let trade_id = TradeId::from_bytes(id.as_bytes()).unwrap();
        MarketBody::Trade(Trade { px: px(p), qty: qty(v), aggressor, trade_id })
    };
    let out = events(&fixture("publicTrade.json"));
    assert_eq!(out, [ev(1_672_304_486_865, SeqIds::default(), trade("16578.50", "0.001", Buy, uuid))]);
    assert_eq!(out[0].body, trade("16578.50", "0.001", Buy, uuid));
    // Several trades per message, a seller aggressor, a numeric spot id, an empty batch.
    let frame = r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":9,"data":[
        {"T":1,"s":"BTCUSDT","S":"Sell","v":"2","p":"1.5","i":"2290000000061666327","BT":false},
        {"i":"x","p":"1.25","v":"0.5","S":"Buy","T":2}]}"#;
    let expected = [
        ev(1, SeqIds::default(), trade("1.5", "2", Sell, "2290000000061666327")),
        ev(2, SeqIds::default(), trade("1.25", "0.5", Buy, "x")),
    ];
    assert_eq!(events(frame.as_bytes()), expected);
    assert_eq!(events(br#"{"topic":"publicTrade.BTCUSDT","data":[]}"#), []);
}

#[test]
fn linear_perpetual_ticker_gives_quote_and_funding() {
    let out = events(&fixture("tickers_linear_perpetual_snapshot.json"));
    let funding = Funding {
        mark_px: reference("66666.60"),
        index_px: reference("115418.19"),
        rate: rate("-0.005"),
        next_funding_ms: 1_760_342_400_000,
    };
    let ts = 1_760_325_052_630;
    let expected = [
        ev(ts, SeqIds::default(), quote(("66666.60", "23789.165"), ("66666.70", "23775.469"))),
        ev(ts, SeqIds::default(), MarketBody::Funding(funding)),
    ];
    assert_eq!(out, expected);
    assert_eq!((funding.mark_px, funding.rate), (Px(666_666_000_000_000), Rate(-50_000_000_000_000)));
}

#[test]
fn dated_future_ticker_has_no_funding_and_spot_ticker_no_quote() {
    let out = events(&fixture("tickers_linear_futures_snapshot.json"));
    let q = quote(("111254.50", "0.176"), ("131001.00", "0.580"));
    assert_eq!(out, [ev(1_760_409_119_857, SeqIds::default(), q)]);
    // Spot tickers carry neither a best bid/ask nor funding: valid, nothing to say.
    assert_eq!(decode(&mut learning(), &fixture("tickers_spot_snapshot.json")), nothing(FrameKind::Market));
}

#[test]
fn ticker_deltas_yield_what_is_complete() {
    let delta = |data: &str| format!(r#"{{"topic":"tickers.BTCUSDT","type":"delta","data":{data},"cs":1,"ts":5}}"#);
    let out =
        events(delta(r#"{"symbol":"BTCUSDT","fundingRate":"0.0001","nextFundingTime":"1760342400000"}"#).as_bytes());
    let funding =
        Funding { mark_px: Px(0), index_px: Px(0), rate: Rate(1_000_000_000_000), next_funding_ms: 1_760_342_400_000 };
    assert_eq!(out, [ev(5, SeqIds::default(), MarketBody::Funding(funding))]);
    assert_eq!(events(delta(r#"{"symbol":"BTCUSDT","markPrice":"66666.70","bid1Price":"1"}"#).as_bytes()), []);
}

#[test]
fn control_frames() {
    let mut dec = learning();
    for (name, kind) in [
        ("ws_pong_linear.json", FrameKind::Pong),
        ("ws_subscribe_response_linear.json", FrameKind::SubscribeAck),
        ("ws_auth_request.json", FrameKind::Unknown),
        ("ws_subscribe_request_multi.json", FrameKind::Unknown),
        ("rest_GET_v5_market_orderbook_response.json", FrameKind::Unknown),
    ] {
        assert_eq!(decode(&mut dec, &fixture(name)), nothing(kind), "{name}");
    }
    let refused = edited("ws_subscribe_response_linear.json", r#""success": true"#, r#""success": false"#);
    assert_eq!(decode(&mut dec, &refused), nothing(FrameKind::Unknown));
    let linear_pong = br#"{"req_id":"1","op":"pong","args":["1675418560633"],"conn_id":"cfcb4ocsvfriu23r3er0-1b"}"#;
    assert_eq!(decode(&mut dec, linear_pong), nothing(FrameKind::Pong));
    let bare_pong = br#"{"success":true,"ret_msg":"pong","conn_id":"0970e817-426e-429a-a679-ff7f55e0b16a"}"#;
    assert_eq!(decode(&mut dec, bare_pong), nothing(FrameKind::Pong));
    assert!(dec.symbols().entries().is_empty());
}

#[test]
fn unknown_symbols_and_topics_write_nothing() {
    let mut dec = registered();
    let eth = edited("publicTrade.json", "publicTrade.BTCUSDT", "publicTrade.ETHUSDT");
    assert_eq!(decode(&mut dec, &eth), nothing(FrameKind::UnknownSymbol));
    for frame in ["{}", r#"{"topic":"kline.5.BTCUSDT","data":[]}"#, r#"{"topic":"orderbook.x.BTCUSDT","data":{}}"#] {
        assert_eq!(decode(&mut dec, frame.as_bytes()), nothing(FrameKind::Unknown), "{frame}");
    }
    // At the registry's scales (price 2, quantity 6) the mantissas are the digits as written.
    let (kind, out) = decode(&mut dec, &fixture("orderbook_50_snapshot.json"));
    assert_eq!(kind, Ok(FrameKind::Market));
    let MarketBody::Book(c) = out[0].body else { panic!("not a book") };
    assert_eq!(c.levels[1], Level { px: Px(1_649_300), qty: Qty(100_000) });
    let bad = with("orderbook_50_snapshot.json", &["data", "b"], Some(r#"[["16493.505","1"]]"#));
    assert_rejected(&mut dec, &bad, bad_number("b", FixedError::TooManyDecimals { scale: 2 }));
}

// ---- REST snapshot -------------------------------------------------------------------------

#[test]
fn rest_orderbook_snapshot() {
    let (mut bids, mut asks) = (vec![Level::default(); 3], Vec::new());
    let got = parse_orderbook_snapshot(
        &fixture("rest_GET_v5_market_orderbook_response.json"),
        scale(8),
        scale(8),
        &mut bids,
        &mut asks,
    );
    let header = OrderbookSnapshot { update_id: 230_704, cross_seq: 1_432_604_333, exch_ts_ms: 1_716_863_719_031 };
    assert_eq!(got, Ok(header));
    assert_eq!(bids, [Level { px: px("65485.47"), qty: qty("47.081829") }]);
    assert_eq!(asks, [Level { px: px("65557.7"), qty: qty("16.606555") }]);
}

#[test]
fn malformed_rest_snapshots() {
    let name = "rest_GET_v5_market_orderbook_response.json";
    let cases = [
        (with(name, &["retCode"], Some("10001")), SnapshotError::Refused(10_001)),
        (with(name, &["retCode"], None), DecodeError::MissingField("retCode").into()),
        (with(name, &["result"], Some("[]")), DecodeError::WrongType("result").into()),
        (with(name, &["result", "u"], None), DecodeError::MissingField("u").into()),
        (with(name, &["result", "seq"], Some(r#""1""#)), DecodeError::WrongType("seq").into()),
        (
            with(name, &["result", "a"], Some(r#"[["x","1"]]"#)),
            bad_number("a", FixedError::InvalidChar { byte: 'x', pos: 0 }).into(),
        ),
        (b"{".to_vec(), DecodeError::Json { at: 1, what: "expected a string key" }.into()),
    ];
    for (body, expected) in cases {
        let (mut bids, mut asks) = (vec![Level::default()], vec![Level::default()]);
        let got = parse_orderbook_snapshot(&body, scale(8), scale(8), &mut bids, &mut asks);
        assert_eq!(got, Err(expected), "{}", String::from_utf8_lossy(&body));
        assert!(bids.is_empty() && asks.is_empty());
    }
}

// ---- malformed frames: exact error, `out` untouched ----------------------------------------

#[test]
fn malformed_books() {
    use DecodeError::{BadInteger, MissingField, WrongType};
    use FixedError::{Exponent, Negative, NotANumber, TooManyDecimals};
    let snap = "orderbook_50_snapshot.json";
    let cases: [(&[&str], Option<&str>, DecodeError); 16] = [
        (&["data", "b"], Some(r#"[["1e5","1"]]"#), bad_number("b", Exponent)),
        (&["data", "a"], Some(r#"[["NaN","1"]]"#), bad_number("a", NotANumber)),
        (&["data", "b"], Some(r#"[["1","-0.5"]]"#), bad_number("b", Negative)),
        (&["data", "b"], Some(r#"[["1","0.000000001"]]"#), bad_number("b", TooManyDecimals { scale: 8 })),
        (&["data", "b"], Some(r#"[["1","1","0"]]"#), WrongType("b")),
        (&["data", "b"], Some(r#"[[1,"1"]]"#), WrongType("b")),
        (&["data", "a"], Some("{}"), WrongType("a")),
        (&["data", "a"], None, MissingField("a")),
        (&["data", "u"], None, MissingField("u")),
        (&["data", "u"], Some("-1"), BadInteger("u")),
        (&["data", "u"], Some(r#""18521288""#), WrongType("u")),
        (&["ts"], None, MissingField("ts")),
        (&["type"], Some(r#""partial""#), WrongType("type")),
        (&["type"], None, MissingField("type")),
        (&["data"], Some("[]"), WrongType("data")),
        (&["topic"], Some("5"), WrongType("topic")),
    ];
    let mut dec = learning();
    for (path, raw, expected) in cases {
        assert_rejected(&mut dec, &with(snap, path, raw), expected);
    }
    // A defect in the last level, after two chunks were written: all of them removed.
    let delta = edited("orderbook_50_delta.json", r#""4.591""#, r#""4.5.91""#);
    assert_rejected(&mut dec, &delta, bad_number("a", FixedError::MisplacedPoint));
}

#[test]
fn malformed_trades_and_tickers() {
    use DecodeError::{BadInteger, MissingField, WrongType};
    use FixedError::{Exponent, Negative, NotANumber, TooManyDecimals};
    let (trade, perp) = ("publicTrade.json", "tickers_linear_perpetual_snapshot.json");
    let long_id = format!("\"{}\"", "a".repeat(47));
    let cases: [(&str, &[&str], Option<&str>, DecodeError); 17] = [
        (trade, &["data", "0", "p"], Some(r#""1e5""#), bad_number("p", Exponent)),
        (trade, &["data", "0", "v"], Some(r#""-0.001""#), bad_number("v", Negative)),
        (trade, &["data", "0", "v"], Some("0.001"), WrongType("v")),
        (trade, &["data", "0", "S"], Some(r#""buy""#), WrongType("S")),
        (trade, &["data", "0", "i"], Some(&long_id), WrongType("i")),
        (trade, &["data", "0", "i"], None, MissingField("i")),
        (trade, &["data", "0", "T"], Some(r#""1672304486865""#), WrongType("T")),
        (trade, &["data", "0", "T"], Some("1.5"), BadInteger("T")),
        (trade, &["data"], Some("{}"), WrongType("data")),
        (trade, &["data"], Some("[1]"), WrongType("data")),
        (perp, &["data", "fundingRate"], Some(r#""NaN""#), bad_number("fundingRate", NotANumber)),
        (perp, &["data", "nextFundingTime"], Some(r#""17x""#), BadInteger("nextFundingTime")),
        (perp, &["data", "markPrice"], Some(r#""1e3""#), bad_number("markPrice", Exponent)),
        (perp, &["data", "bid1Price"], Some("5"), WrongType("bid1Price")),
        (perp, &["data", "ask1Size"], Some(r#""0.0000000001""#), bad_number("ask1Size", TooManyDecimals { scale: 8 })),
        (perp, &["ts"], None, MissingField("ts")),
        (perp, &["data"], None, MissingField("data")),
    ];
    let mut dec = learning();
    for (name, path, raw, expected) in cases {
        assert_rejected(&mut dec, &with(name, path, raw), expected);
    }
}

#[test]
fn broken_json() {
    let json = |at, what| DecodeError::Json { at, what };
    let snap = fixture("orderbook_50_snapshot.json");
    let cases: [(&[u8], DecodeError); 7] = [
        (b"", json(0, "expected '{'")),
        (b"pong", json(0, "expected '{'")),
        (&snap[..12], json(10, "unterminated string")),
        (br#"{"topic":"tickers.X","ts":1,"data":{"bid1Price":"1"}"#, json(52, "expected ',' or '}'")),
        (br#"{"topic":"orderbook.1.X","data":{"b":[["1","1"],]}}"#, json(48, "expected a value")),
        (br#"{"op":"pong"}x"#, json(13, "trailing characters after the document")),
        (br#"{"op":"pong",}"#, json(13, "expected a string key")),
    ];
    let mut dec = learning();
    for (frame, expected) in cases {
        assert_rejected(&mut dec, frame, expected);
    }
    assert!(dec.symbols().entries().is_empty());
}

// ---- allocation and properties -------------------------------------------------------------

crate::decoder_contract_tests!(learning: learning, fuzzed: all_frames);
