//! The Binance decoder against every documented payload in `shared/reference/binance`, field by
//! field, plus malformed frames (each error exact, `out` untouched) and fuzzing.

use std::collections::BTreeSet;

use crossbar_connectors::binance::BinanceMarket::{self, Spot, UsdM};
use crossbar_connectors::binance::{BinanceDecoder, DepthSnapshot, parse_depth_snapshot};
use crossbar_connectors::feed::{DecodeError, FrameKind, SymbolTable};
use crossbar_engine::event::BookUpdateKind::{Delta, Snapshot};
use crossbar_engine::event::Side::{Buy, Sell};
use crossbar_engine::event::{
    BookChunk, BookUpdateKind, Funding, Level, MarketBody, MarketEvent, Quote, SeqIds, Side, Trade, TradeId,
};
use crossbar_engine::fixed::{FixedError, Px, Qty, Rate};
use crossbar_engine::instrument::{InstrumentConfig, InstrumentId, Registry, VenueId};
use proptest::prelude::*;

mod support;

use support::{assert_rejected, bad_number as bad, decode, ev, nothing, scale};

/// Every file of the reference folders, as `<market>/<name>`.
const FIXTURES: [&str; 16] = [
    "spot/aggTrade.json",
    "spot/bookTicker.json",
    "spot/combined_stream_serverShutdown.json",
    "spot/depthUpdate_diff_depth.json",
    "spot/partial_depth_depthN.json",
    "spot/rest_depth_snapshot_GET_api_v3_depth.json",
    "spot/serverShutdown_event.json",
    "spot/subscribe_request.json",
    "spot/subscribe_response.json",
    "spot/trade.json",
    "usdm/aggTrade.json",
    "usdm/bookTicker.json",
    "usdm/depthUpdate_diff_depth.json",
    "usdm/markPriceUpdate.json",
    "usdm/partial_depth_depthN.json",
    "usdm/rest_depth_snapshot_GET_fapi_v1_depth.json",
];

const VENUE: &str = "binance";

crate::reference_fixtures!(VENUE);

/// A fixture object rebuilt with member `key` set to the raw JSON text `raw`, or removed when
/// `raw` is empty.
fn with_member(path: &str, key: &str, raw: &str) -> Vec<u8> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&fixture(path)).unwrap();
    assert!(map.contains_key(key), "{path} lacks {key}");
    let members: Vec<String> = map
        .iter()
        .filter(|(k, _)| *k != key || !raw.is_empty())
        .map(|(k, v)| if k == key { format!("\"{k}\":{raw}") } else { format!("\"{k}\":{v}") })
        .collect();
    format!("{{{}}}", members.join(",")).into_bytes()
}

/// A decoder that learns every symbol at scale 8 for prices and quantities.
fn learning(market: BinanceMarket) -> BinanceDecoder {
    BinanceDecoder::new(market, SymbolTable::learning(scale(8), scale(8)))
}

/// A decoder built from a registry: BTCUSDT (id 0, tick 0.01, lot 0.001) and ETHUSDT (id 1).
fn registered(market: BinanceMarket) -> BinanceDecoder {
    let cfg = |symbol: &str| -> InstrumentConfig {
        serde_json::from_value(serde_json::json!({
            "venue": "binance", "symbol": symbol, "kind": "perpetual", "base": "X", "quote": "USDT",
            "tick": "0.01", "lot": "0.001", "taker_fee": "0.0004", "maker_fee": "0.0002"
        }))
        .unwrap()
    };
    let venues = ["binance".to_string()];
    let registry = Registry::new(&venues, &[cfg("BTCUSDT"), cfg("ETHUSDT")]).unwrap();
    BinanceDecoder::new(market, SymbolTable::for_venue(&registry, VenueId(0)))
}

fn events(market: BinanceMarket, frame: &[u8]) -> Vec<MarketEvent> {
    support::events(learning(market), frame)
}

fn seq(first: u64, last: u64, prev: u64) -> SeqIds {
    SeqIds { first, last, prev }
}

fn lvl(px: i64, qty: i64) -> Level {
    Level { px: Px(px), qty: Qty(qty) }
}

fn chunk(kind: BookUpdateKind, first: bool, last: bool, levels: &[(Side, i64, i64)]) -> BookChunk {
    let mut c = BookChunk::new(kind);
    (c.first, c.last) = (first, last);
    for &(side, px, qty) in levels {
        assert!(c.push(side, lvl(px, qty)));
    }
    c
}

/// The one-bid, one-ask book of the documented diff and spot partial examples.
fn small_book(kind: BookUpdateKind) -> MarketBody {
    let levels = [(Buy, 240_000, 1_000_000_000), (Sell, 260_000, 10_000_000_000)];
    MarketBody::Book(chunk(kind, true, true, &levels))
}

fn trade(px: i64, qty: i64, aggressor: Side, trade_id: u64) -> MarketBody {
    MarketBody::Trade(Trade { px: Px(px), qty: Qty(qty), aggressor, trade_id: TradeId::from_u64(trade_id) })
}

/// The documented book ticker's quote, at scale 8.
fn ticker_quote() -> MarketBody {
    let (bid_px, bid_qty) = (Px(2_535_190_000), Qty(3_121_000_000));
    let (ask_px, ask_qty) = (Px(2_536_520_000), Qty(4_066_000_000));
    MarketBody::Quote(Quote { bid_px, bid_qty, ask_px, ask_qty })
}

fn wrap(stream: &str, data: &[u8]) -> Vec<u8> {
    let data = std::str::from_utf8(data).unwrap().trim();
    format!(r#"{{"stream":"{stream}","data":{data}}}"#).into_bytes()
}

// ---- every fixture, field by field -------------------------------------------------------

#[test]
fn every_reference_file_is_tested_here() {
    let found = support::reference_files(VENUE, &["spot", "usdm"]);
    let expected: BTreeSet<String> = FIXTURES.iter().map(|s| s.to_string()).collect();
    assert_eq!(found, expected);
}

#[test]
fn spot_book_ticker() {
    let out = events(Spot, &fixture("spot/bookTicker.json"));
    assert_eq!(out, [ev(0, seq(0, 400_900_217, 0), ticker_quote())]);
}

#[test]
fn spot_diff_depth() {
    let out = events(Spot, &fixture("spot/depthUpdate_diff_depth.json"));
    let body = small_book(Delta);
    assert_eq!(out, [ev(1_672_515_782_136, seq(157, 160, 0), body)]);
    let MarketBody::Book(c) = body else { unreachable!() };
    assert_eq!((c.len, c.ask_mask), (2, 0b10));
}

#[test]
fn spot_partial_depth_takes_its_symbol_from_the_stream_name() {
    let raw = fixture("spot/partial_depth_depthN.json");
    let mut dec = learning(Spot);
    // A raw stream does not say whose book it is.
    assert_eq!(decode(&mut dec, &raw), nothing(FrameKind::UnknownSymbol));
    let (kind, out) = decode(&mut dec, &wrap("bnbbtc@depth5@100ms", &raw));
    assert_eq!(kind, Ok(FrameKind::Market));
    assert_eq!(out, [ev(0, seq(0, 160, 0), small_book(Snapshot))]);
    assert_eq!(&*dec.symbols().entries()[0].symbol, b"BNBBTC");
}

#[test]
fn spot_agg_trade_and_trade() {
    let expected = [ev(1_672_515_782_136, SeqIds::default(), trade(100_000, 10_000_000_000, Sell, 12345))];
    assert_eq!(events(Spot, &fixture("spot/aggTrade.json")), expected);
    assert_eq!(events(Spot, &fixture("spot/trade.json")), expected);
    // `m: false`: the buyer took liquidity.
    let out = events(Spot, &edited("spot/trade.json", r#""m": true"#, r#""m": false"#));
    assert!(matches!(out[0].body, MarketBody::Trade(Trade { aggressor: Buy, .. })));
}

#[test]
fn spot_control_frames() {
    let mut dec = learning(Spot);
    let mut check = |path, kind| assert_eq!(decode(&mut dec, &fixture(path)), nothing(kind), "{path}");
    check("spot/subscribe_response.json", FrameKind::SubscribeAck);
    check("spot/serverShutdown_event.json", FrameKind::ServerShutdown);
    check("spot/combined_stream_serverShutdown.json", FrameKind::ServerShutdown);
    // Our own request echoed back is valid JSON of no known kind.
    check("spot/subscribe_request.json", FrameKind::Unknown);
    assert!(dec.symbols().entries().is_empty());
}

#[test]
fn rest_snapshots() {
    let cases = [
        ("spot/rest_depth_snapshot_GET_api_v3_depth.json", 0),
        ("usdm/rest_depth_snapshot_GET_fapi_v1_depth.json", 1_589_436_922_959),
    ];
    for (path, exch_ts_ms) in cases {
        let (mut bids, mut asks) = (vec![Level::default()], vec![Level::default()]);
        let snap = parse_depth_snapshot(&fixture(path), scale(8), scale(8), &mut bids, &mut asks);
        let last_update_id = 1_027_024;
        assert_eq!(snap, Ok(DepthSnapshot { last_update_id, exch_ts_ms }), "{path}");
        assert_eq!(bids, [lvl(400_000_000, 43_100_000_000)]);
        assert_eq!(asks, [lvl(400_000_200, 1_200_000_000)]);
    }
}

#[test]
fn usdm_book_ticker_uses_transaction_time() {
    let out = events(UsdM, &fixture("usdm/bookTicker.json"));
    assert_eq!(out, [ev(1_568_014_460_891, seq(0, 400_900_217, 0), ticker_quote())]);
}

#[test]
fn usdm_diff_depth_carries_pu() {
    let out = events(UsdM, &fixture("usdm/depthUpdate_diff_depth.json"));
    assert_eq!(out, [ev(123_456_788, seq(157, 160, 149), small_book(Delta))]);
}

#[test]
fn usdm_agg_trade() {
    let out = events(UsdM, &fixture("usdm/aggTrade.json"));
    let body = trade(100_000, 10_000_000_000, Sell, 5_933_014);
    assert_eq!(out, [ev(123_456_785, SeqIds::default(), body)]);
}

#[test]
fn usdm_mark_price_uses_event_time_and_next_funding_from_t() {
    let out = events(UsdM, &fixture("usdm/markPriceUpdate.json"));
    let funding = Funding {
        mark_px: Px(117_941_500_000_000),
        index_px: Px(117_846_265_909_100),
        rate: Rate(3_816_700_000_000),
        next_funding_ms: 1_562_306_400_000,
    };
    assert_eq!(out, [ev(1_562_305_380_000, SeqIds::default(), MarketBody::Funding(funding))]);
    let negative = edited("usdm/markPriceUpdate.json", "0.00038167", "-0.00010000");
    let out = events(UsdM, &negative);
    assert!(matches!(out[0].body, MarketBody::Funding(Funding { rate: Rate(-1_000_000_000_000), .. })));
}

/// The five-plus-five level partial book as the three chunks it spans (4 + 4 + 2 levels),
/// prices and quantities multiplied by `px_mul` and `qty_mul` to reach the decoder's scale.
fn usdm_partial_chunks(kind: BookUpdateKind, px_mul: i64, qty_mul: i64) -> Vec<MarketBody> {
    let levels = [
        (Buy, 740_389, 2),
        (Buy, 740_390, 3906),
        (Buy, 740_400, 1428),
        (Buy, 740_485, 5239),
        (Buy, 740_543, 2562),
        (Sell, 740_596, 3340),
        (Sell, 740_663, 4525),
        (Sell, 740_708, 2475),
        (Sell, 740_715, 4800),
        (Sell, 740_720, 175),
    ]
    .map(|(side, px, qty)| (side, px * px_mul, qty * qty_mul));
    let parts = [&levels[0..4], &levels[4..8], &levels[8..10]];
    let n = parts.len();
    parts.iter().enumerate().map(|(i, part)| MarketBody::Book(chunk(kind, i == 0, i + 1 == n, part))).collect()
}

#[test]
fn usdm_partial_depth_spans_three_chunks() {
    let raw = fixture("usdm/partial_depth_depthN.json");
    let (ts, seq_ids) = (1_571_889_248_276, seq(390_497_796, 390_497_878, 390_497_794));
    let bodies = usdm_partial_chunks(Delta, 1_000_000, 100_000);
    let masks: Vec<u8> = bodies.iter().map(|b| if let MarketBody::Book(c) = b { c.ask_mask } else { 0 }).collect();
    assert_eq!(masks, [0b0000, 0b1110, 0b0011]);
    let expected: Vec<_> = bodies.into_iter().map(|b| ev(ts, seq_ids, b)).collect();
    assert_eq!(events(UsdM, &raw), expected);

    // On a `@depth<N>` combined stream the same payload is a snapshot; at the registry's real
    // scales (price 2, quantity 3) the mantissas are the digits as written.
    let (kind, out) = decode(&mut registered(UsdM), &wrap("btcusdt@depth5@100ms", &raw));
    assert_eq!(kind, Ok(FrameKind::Market));
    let expected: Vec<_> = usdm_partial_chunks(Snapshot, 1, 1).into_iter().map(|b| ev(ts, seq_ids, b)).collect();
    assert_eq!(out, expected);
}

// ---- shapes: wrappers, field order, chunk boundaries ---------------------------------------

#[test]
fn combined_wrapper_in_either_order() {
    let raw = fixture("usdm/bookTicker.json");
    let direct = events(UsdM, &raw);
    let data = std::str::from_utf8(&raw).unwrap().trim();
    let stream_first = format!(r#"{{"stream":"bnbusdt@bookTicker","data":{data}}}"#);
    let data_first = format!(r#"{{ "data" : {data} , "stream" : "bnbusdt@bookTicker" }}"#);
    assert_eq!(events(UsdM, stream_first.as_bytes()), direct);
    assert_eq!(events(UsdM, data_first.as_bytes()), direct);
}

#[test]
fn wrapper_members_outside_data_are_not_payload() {
    let data = r#"{"e":"trade","s":"BNBBTC","t":1,"p":"1","q":"1","T":1,"m":true}"#;
    let frame = format!(r#"{{"s":"EVIL","stream":"x@trade","data":{data},"u":5}}"#);
    let mut dec = learning(Spot);
    assert_eq!(decode(&mut dec, frame.as_bytes()).0, Ok(FrameKind::Market));
    let symbols: Vec<&[u8]> = dec.symbols().entries().iter().map(|e| &*e.symbol).collect();
    assert_eq!(symbols, [b"BNBBTC"]);
}

#[test]
fn chunk_boundaries() {
    for (bids, asks, chunks) in [(0, 0, 1), (4, 0, 1), (2, 2, 1), (4, 1, 2), (0, 8, 2), (5, 4, 3)] {
        let side = |n: usize| vec![r#"["1","1"]"#; n].join(",");
        let frame =
            format!(r#"{{"e":"depthUpdate","s":"BNBBTC","U":1,"u":2,"b":[{}],"a":[{}]}}"#, side(bids), side(asks));
        let out = events(Spot, frame.as_bytes());
        assert_eq!(out.len(), chunks, "{bids}+{asks}");
        let mut sides = Vec::new();
        for (i, event) in out.iter().enumerate() {
            let MarketBody::Book(c) = event.body else { panic!("not a book chunk") };
            assert_eq!((c.first, c.last), (i == 0, i + 1 == chunks));
            assert_eq!((event.seq, event.exch_ts_ms), (seq(1, 2, 0), 0));
            sides.extend(c.iter().map(|(s, _)| s));
        }
        assert_eq!(sides, [vec![Buy; bids], vec![Sell; asks]].concat());
    }
}

#[test]
fn unknown_symbols_and_kinds_write_nothing() {
    let mut dec = registered(Spot);
    let partial = wrap("bnbbtc@depth5", &fixture("spot/partial_depth_depthN.json"));
    assert_eq!(decode(&mut dec, &fixture("spot/bookTicker.json")), nothing(FrameKind::UnknownSymbol));
    assert_eq!(decode(&mut dec, &partial), nothing(FrameKind::UnknownSymbol));
    for frame in ["{}", r#"{"e":"kline","s":"BTCUSDT"}"#, r#"{"result":[],"id":3}"#, r#"{"result":null}"#] {
        assert_eq!(decode(&mut dec, frame.as_bytes()), nothing(FrameKind::Unknown), "{frame}");
    }
    let frame = br#"{"e":"trade","s":"ETHUSDT","t":1,"p":"1.5","q":"0.25","T":1,"m":false}"#;
    let (kind, out) = decode(&mut dec, frame);
    assert_eq!(kind, Ok(FrameKind::Market));
    assert_eq!(out[0].instrument, InstrumentId(1));
    assert!(matches!(out[0].body, MarketBody::Trade(Trade { px: Px(150), qty: Qty(250), .. })));
}

// ---- malformed frames: exact error, `out` untouched ----------------------------------------

#[test]
fn malformed_trades() {
    use DecodeError::{BadInteger, MissingField, WrongType};
    use FixedError::*;
    let cases = [
        ("p", r#""1e5""#, bad("p", Exponent)),
        ("p", r#""NaN""#, bad("p", NotANumber)),
        ("q", r#""-1""#, bad("q", Negative)),
        ("q", r#""""#, bad("q", Empty)),
        ("p", r#""1.000000001""#, bad("p", TooManyDecimals { scale: 8 })),
        ("p", r#"".5""#, bad("p", MisplacedPoint)),
        ("p", r#""99999999999""#, bad("p", Overflow)),
        ("p", r#"" 1""#, bad("p", InvalidChar { byte: ' ', pos: 0 })),
        ("p", "0.001", WrongType("p")),
        ("a", "-5", BadInteger("a")),
        ("a", "1.5", BadInteger("a")),
        ("a", "18446744073709551616", BadInteger("a")),
        ("a", r#""12345""#, WrongType("a")),
        ("T", "1e12", BadInteger("T")),
        ("m", r#""true""#, WrongType("m")),
        ("m", "", MissingField("m")),
        ("s", "", MissingField("s")),
        ("s", r#""BNB\u0042TC""#, WrongType("s")),
        ("e", "1", WrongType("e")),
    ];
    let mut dec = learning(Spot);
    for (key, raw, expected) in cases {
        assert_rejected(&mut dec, &with_member("spot/aggTrade.json", key, raw), expected);
    }
    // The registry's BTCUSDT has price scale 2: a third decimal would round.
    let frame = br#"{"e":"aggTrade","s":"BTCUSDT","a":1,"p":"7403.891","q":"1","T":1,"m":true}"#;
    assert_rejected(&mut registered(UsdM), frame, bad("p", TooManyDecimals { scale: 2 }));
}

#[test]
fn broken_json() {
    let json = |at, what| DecodeError::Json { at, what };
    let ticker = fixture("spot/bookTicker.json");
    let deep = format!(r#"{{"x":{}{}}}"#, "[".repeat(40), "]".repeat(40));
    let cases: [(&[u8], DecodeError); 9] = [
        (&ticker[..40], json(38, "unterminated string")),
        (&ticker[..31], json(31, "expected ',' or '}'")),
        (b"", json(0, "expected '{'")),
        (b"[1]", json(0, "expected '{'")),
        (br#"{"u":1}{"#, json(7, "trailing characters after the document")),
        (br#"{"s":"BNB"#, json(5, "unterminated string")),
        (br#"{"stream":"a","data":{"u":1]}"#, json(27, "expected ',' or '}'")),
        (br#"{"u":1,"b":[["1","2"]}"#, json(21, "expected ',' or ']'")),
        (deep.as_bytes(), json(36, "nesting too deep")),
    ];
    let mut dec = learning(Spot);
    for (frame, expected) in cases {
        assert_rejected(&mut dec, frame, expected);
    }
    assert!(dec.symbols().entries().is_empty());
}

#[test]
fn malformed_wrappers() {
    use DecodeError::{MissingField, WrongType};
    let mut dec = learning(UsdM);
    assert_rejected(&mut dec, br#"{"stream":"a@trade"}"#, MissingField("data"));
    assert_rejected(&mut dec, br#"{"data":{"u":1}}"#, MissingField("stream"));
    assert_rejected(&mut dec, br#"{"stream":"a@trade","data":[]}"#, WrongType("data"));
    assert_rejected(&mut dec, br#"{"stream":1,"data":{}}"#, WrongType("stream"));
}

#[test]
fn malformed_books_and_funding() {
    use DecodeError::{MissingField, WrongType};
    let (diff, mark) = ("usdm/depthUpdate_diff_depth.json", "usdm/markPriceUpdate.json");
    let cases = [
        (diff, "pu", "", MissingField("pu")),
        (diff, "U", "", MissingField("U")),
        (diff, "a", "{}", WrongType("a")),
        (diff, "b", r#"[["0.0024","10","x"]]"#, WrongType("b")),
        (diff, "b", r#"[["0.0024"]]"#, WrongType("b")),
        (diff, "b", r#"["0.0024","10"]"#, WrongType("b")),
        (diff, "b", r#"[[0.0024,"10"]]"#, WrongType("b")),
        (diff, "a", r#"[["0.0026","-100"]]"#, bad("a", FixedError::Negative)),
        (mark, "E", "", MissingField("E")),
        (mark, "i", "", MissingField("i")),
        (mark, "r", r#""1e-4""#, bad("r", FixedError::Exponent)),
    ];
    let mut dec = learning(UsdM);
    for (path, key, raw, expected) in cases {
        assert_rejected(&mut dec, &with_member(path, key, raw), expected);
    }
    // A defect in the last level, after two chunks were written: all of them removed.
    let partial = edited("usdm/partial_depth_depthN.json", "0.175", "0.1.75");
    assert_rejected(&mut dec, &partial, bad("a", FixedError::MisplacedPoint));
    // Spot diffs have no `pu`; it is not required there.
    events(Spot, &with_member(diff, "pu", ""));
}

#[test]
fn malformed_rest_snapshots() {
    let (mut bids, mut asks) = (vec![Level::default()], vec![Level::default()]);
    let bad_ask = br#"{"lastUpdateId":1,"bids":[["1","1"]],"asks":[["x","1"]]}"#;
    let got = parse_depth_snapshot(bad_ask, scale(8), scale(8), &mut bids, &mut asks);
    assert_eq!(got, Err(bad("asks", FixedError::InvalidChar { byte: 'x', pos: 0 })));
    assert!(bids.is_empty() && asks.is_empty());
    let no_id = br#"{"bids":[],"asks":[]}"#;
    let got = parse_depth_snapshot(no_id, scale(8), scale(8), &mut bids, &mut asks);
    assert_eq!(got, Err(DecodeError::MissingField("lastUpdateId")));
}

// ---- properties ----------------------------------------------------------------------------

/// Every websocket fixture that decodes to market data or a control frame, with its market.
fn stream_frames() -> Vec<(BinanceMarket, Vec<u8>)> {
    let mut frames: Vec<_> = FIXTURES
        .iter()
        .filter(|p| !p.contains("rest_") && !p.contains("subscribe_request") && !p.starts_with("spot/partial"))
        .map(|p| (if p.starts_with("usdm") { UsdM } else { Spot }, fixture(p)))
        .collect();
    frames.push((Spot, wrap("bnbbtc@depth5@100ms", &fixture("spot/partial_depth_depthN.json"))));
    frames
}

/// Rewrites the JSON object `frame` with its members in the order `perm` (a permutation of
/// member indices), so the decoder sees the same message with a different field order.
fn reorder(frame: &[u8], perm: &[usize]) -> Vec<u8> {
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(frame).unwrap();
    let members: Vec<String> = v.iter().map(|(k, v)| format!("{}:{v}", serde_json::json!(k))).collect();
    let ordered: Vec<&str> = perm.iter().filter_map(|&i| members.get(i).map(String::as_str)).collect();
    format!("{{{}}}", ordered.join(",")).into_bytes()
}

/// The decoder's contract on any input (see [`support::check_contract`]); every Binance
/// market frame writes at least one event.
fn check_contract(frame: &[u8], market: BinanceMarket) -> Result<(), TestCaseError> {
    support::check_contract(learning(market), frame, true)
}

fn any_market() -> impl Strategy<Value = BinanceMarket> {
    prop_oneof![Just(Spot), Just(UsdM)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn field_order_never_matters(which in any::<prop::sample::Index>(), perm in Just((0..16).collect::<Vec<usize>>()).prop_shuffle()) {
        let frames = stream_frames();
        let (market, frame) = which.get(&frames);
        let expected = decode(&mut learning(*market), frame);
        prop_assert!(expected.0.is_ok());
        prop_assert_eq!(decode(&mut learning(*market), &reorder(frame, &perm)), expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic(frame in prop::collection::vec(any::<u8>(), 0..200), market in any_market()) {
        check_contract(&frame, market)?;
    }

    #[test]
    fn mutated_frames_never_panic(
        which in any::<prop::sample::Index>(),
        edits in support::edits(),
        market in any_market(),
    ) {
        let mut frame = which.get(&stream_frames()).1.clone();
        support::mutate(&mut frame, edits);
        check_contract(&frame, market)?;
    }
}
