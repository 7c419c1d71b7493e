//! The OKX decoder against every documented payload in `shared/reference/okx`, field by field,
//! plus malformed frames (each error exact, `out` untouched) and fuzzing (no panic, field order
//! irrelevant).

use std::collections::BTreeSet;

use crossbar_connectors::feed::{DecodeError, FrameKind, SymbolTable};
use crossbar_connectors::okx::OkxDecoder;
use crossbar_engine::event::BookUpdateKind::{Delta, Snapshot};
use crossbar_engine::event::Side::{Buy, Sell};
use crossbar_engine::event::{Funding, Level, MarketBody, MarketEvent, SeqIds, Trade, TradeId};
use crossbar_engine::fixed::{FixedError, Px, Qty, Rate};
use crossbar_engine::instrument::{InstrumentConfig, Registry, VenueId};
use proptest::prelude::*;

mod support;

use support::{assert_rejected, bad_number, book, decode, ev, nothing, px, qty, quote, scale};

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

const VENUE: &str = "okx";

crate::reference_fixtures!(VENUE);

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

fn events(frame: &[u8]) -> Vec<MarketEvent> {
    support::events(learning(), frame)
}

fn seq(last: u64, prev: u64) -> SeqIds {
    SeqIds { first: 0, last, prev }
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
    let found = support::reference_files(VENUE, &[""]);
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
    let funding =
        Funding { mark_px: Px(0), index_px: Px(0), rate: Rate(1_875_391_284_828), next_funding_ms: 1_700_726_400_000 };
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

// ---- allocation and properties -------------------------------------------------------------

/// What the fuzz tests mutate: every fixture and the plain-text `pong`.
fn fuzzed_frames() -> Vec<Vec<u8>> {
    let mut frames = all_frames();
    frames.push(b"pong".to_vec());
    frames
}

crate::decoder_contract_tests!(learning: learning, fuzzed: fuzzed_frames);
