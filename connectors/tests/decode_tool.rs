//! `crossbar decode`'s core against every Binance, Bybit and OKX reference fixture: each frame
//! goes through `run_decode` and the exact JSON lines are compared with values copied from
//! the fixture; then malformed lines, blank lines, line endings and the venue names.

use std::collections::BTreeSet;

use crossbar_connectors::decode_tool::{DecodeToolError, VENUES, run_decode};
use serde_json::{Value, json};

mod support;

/// A fixture as one line of input: pretty-printed JSON has newlines only between tokens.
fn fixture_line(path: &str) -> String {
    let text = String::from_utf8(support::fixture("", path)).unwrap();
    format!("{}\n", text.trim().replace(['\n', '\r'], " "))
}

/// Runs the tool; returns its result, the stdout lines as JSON, and stderr.
fn run(venue: &str, input: &str) -> (bool, Vec<Value>, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let malformed = run_decode(venue, input.as_bytes(), &mut out, &mut err).unwrap();
    let out = String::from_utf8(out).unwrap();
    let lines = out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect();
    (malformed, lines, String::from_utf8(err).unwrap())
}

/// One fixture, the venue it is decoded as, and the lines it must print.
struct Case {
    venue: &'static str,
    path: &'static str,
    expected: Vec<Value>,
}

fn case(venue: &'static str, path: &'static str, expected: Vec<Value>) -> Case {
    Case { venue, path, expected }
}

fn trade(venue: &str, symbol: &str, px: &str, qty: &str, aggressor: &str, id: &str, ts: u64) -> Value {
    json!({"type": "trade", "venue": venue, "symbol": symbol, "px": px, "qty": qty, "aggressor": aggressor,
           "trade_id": id, "exch_ts_ms": ts})
}

fn quote(venue: &str, symbol: &str, bid: [&str; 2], ask: [&str; 2], update_id: Value, ts: Value) -> Value {
    json!({"type": "quote", "venue": venue, "symbol": symbol, "bid_px": bid[0], "bid_qty": bid[1],
           "ask_px": ask[0], "ask_qty": ask[1], "update_id": update_id, "exch_ts_ms": ts})
}

/// A book line; `ids` are first, last, prev.
fn book(kind: &str, venue: &str, symbol: &str, bids: Value, asks: Value, ids: [Value; 3], ts: Value) -> Value {
    let [first, last, prev] = ids;
    json!({"type": kind, "venue": venue, "symbol": symbol, "bids": bids, "asks": asks, "first_id": first,
           "last_id": last, "prev_id": prev, "exch_ts_ms": ts})
}

/// The OKX fixture's funding rate, all sixteen decimals.
fn okx_rate() -> String {
    "0.0001875391284828".to_owned()
}

fn binance_cases() -> Vec<Case> {
    let (s, f) = ("binance-spot", "binance-usdm");
    let small = |kind, venue, symbol, ids, ts| {
        book(kind, venue, symbol, json!([["0.0024", "10"]]), json!([["0.0026", "100"]]), ids, ts)
    };
    let ticker = |venue, ts| quote(venue, "BNBUSDT", ["25.3519", "31.21"], ["25.3652", "40.66"], json!(400900217), ts);
    let partial_bids = json!([
        ["7403.89", "0.002"],
        ["7403.9", "3.906"],
        ["7404", "1.428"],
        ["7404.85", "5.239"],
        ["7405.43", "2.562"]
    ]);
    let partial_asks = json!([
        ["7405.96", "3.34"],
        ["7406.63", "4.525"],
        ["7407.08", "2.475"],
        ["7407.15", "4.8"],
        ["7407.2", "0.175"]
    ]);
    vec![
        case(s, "binance/spot/aggTrade.json", vec![trade(s, "BNBBTC", "0.001", "100", "sell", "12345", 1672515782136)]),
        case(s, "binance/spot/bookTicker.json", vec![ticker(s, Value::Null)]),
        case(s, "binance/spot/combined_stream_serverShutdown.json", vec![]),
        case(
            s,
            "binance/spot/depthUpdate_diff_depth.json",
            vec![small("book_delta", s, "BNBBTC", [json!(157), json!(160), Value::Null], json!(1672515782136_u64))],
        ),
        // A raw partial book does not say whose it is: nothing (see `partial_depth_on_a_combined_stream`).
        case(s, "binance/spot/partial_depth_depthN.json", vec![]),
        case(s, "binance/spot/rest_depth_snapshot_GET_api_v3_depth.json", vec![]),
        case(s, "binance/spot/serverShutdown_event.json", vec![]),
        case(s, "binance/spot/subscribe_request.json", vec![]),
        case(s, "binance/spot/subscribe_response.json", vec![]),
        case(s, "binance/spot/trade.json", vec![trade(s, "BNBBTC", "0.001", "100", "sell", "12345", 1672515782136)]),
        case(f, "binance/usdm/aggTrade.json", vec![trade(f, "BTCUSDT", "0.001", "100", "sell", "5933014", 123456785)]),
        case(f, "binance/usdm/bookTicker.json", vec![ticker(f, json!(1568014460891_u64))]),
        case(
            f,
            "binance/usdm/depthUpdate_diff_depth.json",
            vec![small("book_delta", f, "BTCUSDT", [json!(157), json!(160), json!(149)], json!(123456788))],
        ),
        case(
            f,
            "binance/usdm/markPriceUpdate.json",
            vec![json!({"type": "funding", "venue": f, "symbol": "BTCUSDT", "mark_px": "11794.15",
                        "index_px": "11784.62659091", "rate": "0.00038167", "next_funding_ms": 1562306400000_u64,
                        "exch_ts_ms": 1562305380000_u64})],
        ),
        case(
            f,
            "binance/usdm/partial_depth_depthN.json",
            vec![book(
                "book_delta",
                f,
                "BTCUSDT",
                partial_bids,
                partial_asks,
                [json!(390497796), json!(390497878), json!(390497794)],
                json!(1571889248276_u64),
            )],
        ),
        case(f, "binance/usdm/rest_depth_snapshot_GET_fapi_v1_depth.json", vec![]),
    ]
}

fn bybit_cases() -> Vec<Case> {
    let l = "bybit-linear";
    let delta_bids = json!([
        ["30247.2", "30.028"],
        ["30245.4", "0.224"],
        ["30242.1", "1.593"],
        ["30240.3", "1.305"],
        ["30240", "0"]
    ]);
    let delta_asks = json!([
        ["30248.7", "0"],
        ["30249.3", "0.892"],
        ["30249.5", "1.778"],
        ["30249.6", "0"],
        ["30251.9", "2.947"],
        ["30252.2", "0.659"],
        ["30252.5", "4.591"]
    ]);
    let perp_ts = json!(1760325052630_u64);
    vec![
        case(
            l,
            "bybit/orderbook_50_delta.json",
            vec![book(
                "book_delta",
                l,
                "BTCUSDT",
                delta_bids,
                delta_asks,
                [Value::Null, json!(177400507), Value::Null],
                json!(1687940967466_u64),
            )],
        ),
        case(
            l,
            "bybit/orderbook_50_snapshot.json",
            vec![book(
                "book_snapshot",
                l,
                "BTCUSDT",
                json!([["16493.5", "0.006"], ["16493", "0.1"]]),
                json!([["16611", "0.029"], ["16612", "0.213"]]),
                [Value::Null, json!(18521288), Value::Null],
                json!(1672304484978_u64),
            )],
        ),
        case(
            l,
            "bybit/publicTrade.json",
            vec![trade(l, "BTCUSDT", "16578.5", "0.001", "buy", "20f43950-d8dd-5b31-9112-a178eb6023af", 1672304486865)],
        ),
        case(l, "bybit/rest_GET_v5_market_orderbook_response.json", vec![]),
        case(
            l,
            "bybit/tickers_linear_futures_snapshot.json",
            vec![quote(
                l,
                "BTC-26DEC25",
                ["111254.5", "0.176"],
                ["131001", "0.58"],
                Value::Null,
                json!(1760409119857_u64),
            )],
        ),
        case(
            l,
            "bybit/tickers_linear_perpetual_snapshot.json",
            vec![
                quote(l, "BTCUSDT", ["66666.6", "23789.165"], ["66666.7", "23775.469"], Value::Null, perp_ts.clone()),
                json!({"type": "funding", "venue": l, "symbol": "BTCUSDT", "mark_px": "66666.6",
                       "index_px": "115418.19", "rate": "-0.005", "next_funding_ms": 1760342400000_u64,
                       "exch_ts_ms": perp_ts}),
            ],
        ),
        case("bybit-spot", "bybit/tickers_spot_snapshot.json", vec![]),
        case(l, "bybit/ws_auth_request.json", vec![]),
        case(l, "bybit/ws_pong_linear.json", vec![]),
        case(l, "bybit/ws_subscribe_request_multi.json", vec![]),
        case(l, "bybit/ws_subscribe_response_linear.json", vec![]),
    ]
}

fn okx_cases() -> Vec<Case> {
    let o = "okx";
    let books_bids = json!([
        ["8476.97", "256"],
        ["8475.55", "101"],
        ["8475.54", "100"],
        ["8475.3", "1"],
        ["8447.32", "6"],
        ["8447.02", "246"],
        ["8446.83", "24"],
        ["8446", "95"]
    ]);
    let books_asks = json!([
        ["8476.98", "415"],
        ["8477", "7"],
        ["8477.34", "85"],
        ["8477.56", "1"],
        ["8505.84", "8"],
        ["8506.37", "85"],
        ["8506.49", "2"],
        ["8506.96", "100"]
    ]);
    let books_ts = json!(1597026383085_u64);
    vec![
        case(
            o,
            "okx/bbo-tbt.json",
            vec![quote(
                o,
                "BCH-USDT-SWAP",
                ["111.05", "57745"],
                ["111.06", "55154"],
                json!(363996337),
                json!(1670324386802_u64),
            )],
        ),
        case(
            o,
            "okx/books5.json",
            vec![book(
                "book_snapshot",
                o,
                "BCH-USDT-SWAP",
                json!([
                    ["111.05", "57745"],
                    ["111.04", "57109"],
                    ["111.03", "69563"],
                    ["111.02", "71248"],
                    ["111.01", "65090"]
                ]),
                json!([
                    ["111.06", "55154"],
                    ["111.07", "53276"],
                    ["111.08", "72435"],
                    ["111.09", "70312"],
                    ["111.1", "67272"]
                ]),
                [Value::Null, json!(363996337), Value::Null],
                json!(1670324386802_u64),
            )],
        ),
        case(
            o,
            "okx/books_snapshot.json",
            vec![book(
                "book_snapshot",
                o,
                "BTC-USDT",
                books_bids.clone(),
                books_asks.clone(),
                [Value::Null, json!(123456), Value::Null],
                books_ts.clone(),
            )],
        ),
        case(
            o,
            "okx/books_update.json",
            vec![book(
                "book_delta",
                o,
                "BTC-USDT",
                books_bids,
                books_asks,
                [Value::Null, json!(123457), json!(123456)],
                books_ts,
            )],
        ),
        case(
            o,
            "okx/funding-rate.json",
            vec![json!({"type": "funding", "venue": o, "symbol": "BTC-USD-SWAP", "mark_px": null, "index_px": null,
                        "rate": okx_rate(), "next_funding_ms": 1700726400000_u64, "exch_ts_ms": 1700724675402_u64})],
        ),
        case(
            o,
            "okx/tickers.json",
            vec![quote(o, "BTC-USDT", ["8888.88", "5"], ["9999.99", "11"], Value::Null, json!(1597026383085_u64))],
        ),
        case(
            o,
            "okx/trades.json",
            vec![trade(o, "BTC-USDT", "42219.9", "0.12060306", "buy", "130639474", 1630048897897)],
        ),
        case(o, "okx/ws_login_request.json", vec![]),
        case(o, "okx/ws_subscribe_request_books.json", vec![]),
        case(o, "okx/ws_subscribe_response_books.json", vec![]),
    ]
}

fn all_cases() -> Vec<Case> {
    [binance_cases(), bybit_cases(), okx_cases()].into_iter().flatten().collect()
}

#[test]
fn every_reference_file_of_the_three_venues_has_a_case() {
    let found = support::reference_files("", &["binance/spot", "binance/usdm", "bybit", "okx"]);
    let cased: BTreeSet<String> = all_cases().iter().map(|c| c.path.to_owned()).collect();
    assert_eq!(found, cased);
}

#[test]
fn every_fixture_prints_its_expected_lines() {
    for c in all_cases() {
        let (malformed, lines, err) = run(c.venue, &fixture_line(c.path));
        assert_eq!((malformed, err.as_str()), (false, ""), "{}", c.path);
        assert_eq!(lines, c.expected, "{}", c.path);
    }
}

#[test]
fn a_whole_session_prints_in_frame_order() {
    let cases = okx_cases();
    let input: String = cases.iter().map(|c| fixture_line(c.path)).collect();
    let expected: Vec<Value> = cases.into_iter().flat_map(|c| c.expected).collect();
    let (malformed, lines, err) = run("okx", &input);
    assert_eq!((malformed, err.as_str()), (false, ""));
    assert_eq!(lines, expected);
}

#[test]
fn partial_depth_on_a_combined_stream() {
    let data = fixture_line("binance/spot/partial_depth_depthN.json");
    let frame = format!(r#"{{"stream":"bnbbtc@depth5@100ms","data":{}}}"#, data.trim());
    let (_, lines, _) = run("binance-spot", &frame);
    let ids = [Value::Null, json!(160), Value::Null];
    let expected = book(
        "book_snapshot",
        "binance-spot",
        "BNBBTC",
        json!([["0.0024", "10"]]),
        json!([["0.0026", "100"]]),
        ids,
        Value::Null,
    );
    assert_eq!(lines, [expected]);
}

#[test]
fn keys_come_in_schema_order() {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    run_decode("okx", fixture_line("okx/bbo-tbt.json").as_bytes(), &mut out, &mut err).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        concat!(
            r#"{"type":"quote","venue":"okx","symbol":"BCH-USDT-SWAP","bid_px":"111.05","bid_qty":"57745","#,
            r#""ask_px":"111.06","ask_qty":"55154","update_id":363996337,"exch_ts_ms":1670324386802}"#,
            "\n"
        )
    );
}

#[test]
fn malformed_lines_are_reported_and_skipped() {
    let good = r#"{"e":"trade","E":1,"s":"BNBBTC","t":7,"p":"1.5","q":"2","T":3,"m":false}"#;
    let input = [
        good,
        r#"{"e":"trade","E":1,"s":"BNBBTC","t":8,"p":"1e5","q":"2","T":3,"m":false}"#,
        "",
        "not json",
        r#"{"e":"trade","E":1,"s":"BNBBTC","t":9,"p":"0.00000000001","q":"2","T":3,"m":false}"#,
        r#"{"e":"trade","E":1,"s":"BNBBTC","t":9,"p":"1","q":"0.000000001","T":3,"m":false}"#,
        r#"{"e":"trade","E":1,"s":"BNBBTC","t":9,"p":"1000000000","q":"1","T":3,"m":false}"#,
        r#"{"e":"trade","E":1,"s":"BNBBTC","p":"1","q":"1","T":3,"m":false}"#,
        good,
    ]
    .join("\r\n");
    let (malformed, lines, err) = run("binance-spot", &input);
    assert!(malformed);
    let expected = trade("binance-spot", "BNBBTC", "1.5", "2", "buy", "7", 3);
    assert_eq!(lines, [expected.clone(), expected]);
    assert_eq!(
        err,
        concat!(
            "line 2: field \"p\": exponent notation is not accepted\n",
            "line 4: malformed JSON at byte 0: expected '{'\n",
            "line 5: field \"p\": more decimals than scale 10 holds\n",
            "line 6: field \"q\": more decimals than scale 8 holds\n",
            "line 7: field \"p\": value overflows the fixed-point range\n",
            "line 8: missing field \"t\"\n",
        )
    );
}

#[test]
fn clean_input_reports_no_malformed_line() {
    let (malformed, lines, err) = run("okx", "pong\n\n   \npong");
    assert_eq!((malformed, lines.len(), err.as_str()), (false, 0, ""));
    let (malformed, lines, _) = run("bybit-spot", "");
    assert_eq!((malformed, lines.len()), (false, 0));
}

#[test]
fn every_venue_name_is_accepted_and_others_are_refused() {
    for venue in VENUES {
        // A valid message that carries no data: any JSON object on a CEX stream, a JSON-RPC
        // reply on Ethereum (a bare `{}` is not JSON-RPC there).
        let neutral = if venue == "ethereum" { "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x1\"}\n" } else { "{}\n" };
        let (malformed, lines, _) = run(venue, neutral);
        assert_eq!((malformed, lines.len()), (false, 0), "{venue}");
    }
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let got = run_decode("binance", &b"{}\n"[..], &mut out, &mut err);
    assert!(matches!(&got, Err(DecodeToolError::UnknownVenue(v)) if v == "binance"));
    let message = got.unwrap_err().to_string();
    for venue in VENUES {
        assert!(message.contains(venue), "{message}");
    }
}

#[test]
fn ethereum_notifications_print_pending_swaps_and_requests_print_nothing() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/ethereum/anvil");
    let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    let mut input = String::new();
    for p in &names {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        input.push_str(&v.to_string());
        input.push('\n');
    }
    input.push_str("{\"jsonrpc\":\"2.0\",\"method\":\"eth_subscription\",\"params\":[1]}\n");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let malformed = run_decode("ethereum", input.as_bytes(), &mut out, &mut err).unwrap();
    assert!(malformed);
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // Requests, replies, heads and hash-only notifications carry no swap; the four full
    // pending transactions are Router02 swaps.
    assert_eq!(lines.len(), 4, "{lines:?}");
    let exact_out = lines.iter().find(|l| l["method"] == "swapTokensForExactTokens").unwrap();
    assert_eq!(exact_out["exact"], "out");
    assert_eq!(exact_out["amount_out"], "500000000000000000");
    assert_eq!(exact_out["amount_in_max"], "1000000000000000000");
    assert_eq!(exact_out["amount_in"], serde_json::Value::Null);
    assert_eq!(exact_out["pools"], serde_json::Value::Null);
    assert_eq!(
        String::from_utf8(err).unwrap(),
        format!("line {}: field \"params\" has the wrong type\n", names.len() + 1)
    );
}
