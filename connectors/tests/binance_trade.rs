//! Binance order entry, client side: the `order.place` / `order.cancel` frames byte for byte
//! with signatures recomputed independently, the user data stream's documented events mapped
//! to order events (duplicates and malformed frames counted), and whole sessions against a
//! scripted WebSocket API server on 127.0.0.1 (HMAC and Ed25519 spot, USD-M with its listen-key
//! stream).

use std::net::TcpListener;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbar_connectors::auth::SecretString;
use crossbar_connectors::binance::trade::{BinanceSession, reject_reason};
use crossbar_connectors::order::{Credentials, OrderSession, SecretKey, SessionConfig, SessionInstrument};
use crossbar_connectors::venue::Protocol;
use crossbar_engine::event::{
    ClientOrderId, Fill, NewOrder, OrderCommand, OrderEvent, OrderEventKind, OrderStamps, RejectReason, Side,
    TimeInForce,
};
use crossbar_engine::fixed::{Px, Qty, Scale};
use crossbar_engine::gateway::GatewayError;
use crossbar_engine::instrument::{InstrumentId, InstrumentKind, VenueId};
use crossbar_engine::journal::{VenueFill, VenueOrder, VenueState};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use hmac::{Hmac, Mac};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha2::Sha256;
use tungstenite::Message;

mod support;

#[global_allocator]
static ALLOC: support::Counting = support::Counting;

/// The API key and secret of Binance's documented signing examples.
const API_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
const RECV_NS: u64 = 555;

fn vectors() -> Vec<Value> {
    let path =
        format!("{}/../../shared/reference/signatures/binance_documented_vectors.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
}

fn vector(id: &str) -> Value {
    vectors().into_iter().find(|v| v["id"] == id).unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/binance_trade/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    while bytes.last().is_some_and(u8::is_ascii_whitespace) {
        bytes.pop();
    }
    bytes
}

/// HMAC-SHA256 hex, computed here with the `hmac` crate, independently of the session.
fn hmac_hex(secret: &str, payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// The WebSocket API signature payload of a request's params, as the docs define it: every
/// parameter but `signature`, sorted by name, `k=v` joined by `&`.
fn sorted_payload(params: &Value) -> String {
    let obj = params.as_object().unwrap();
    let mut keys: Vec<&String> = obj.keys().filter(|k| *k != "signature").collect();
    keys.sort();
    keys.iter()
        .map(|k| match &obj[*k] {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn btc(id: u32, price_places: u8, qty_places: u8, kind: InstrumentKind) -> SessionInstrument {
    SessionInstrument {
        id: InstrumentId(id),
        symbol: "BTCUSDT".into(),
        kind,
        base: "BTC".into(),
        quote: "USDT".into(),
        price_scale: Scale::new(price_places).unwrap(),
        qty_scale: Scale::new(qty_places).unwrap(),
        contract_size: Decimal::ONE,
    }
}

fn config(protocol: Protocol, ws_url: &str, key: SecretKey) -> SessionConfig {
    let usdm = protocol == Protocol::BinanceUsdm;
    let (instrument, rest) = if usdm {
        (btc(7, 1, 3, InstrumentKind::Perpetual), "http://127.0.0.1:9/binance-usdm")
    } else {
        (btc(3, 2, 5, InstrumentKind::Spot), "http://127.0.0.1:9/binance")
    };
    SessionConfig {
        venue: VenueId(1),
        venue_name: "binance".into(),
        protocol,
        ws_url: ws_url.into(),
        rest_url: rest.into(),
        credentials: Credentials { api_key: SecretString::new(API_KEY.into()), key, passphrase: None },
        instruments: vec![instrument],
        recv_window_ms: 5000,
    }
}

fn hmac_key() -> SecretKey {
    SecretKey::Hmac(SecretString::new(SECRET.into()))
}

fn spot_session() -> BinanceSession {
    BinanceSession::new(config(Protocol::BinanceSpot, "ws://127.0.0.1:9/binance", hmac_key())).unwrap()
}

fn new_order(
    id: u64,
    instrument: u32,
    side: Side,
    px: i64,
    qty: i64,
    tif: TimeInForce,
    reduce_only: bool,
) -> OrderCommand {
    OrderCommand::New {
        order: NewOrder {
            client_id: ClientOrderId(id),
            instrument: InstrumentId(instrument),
            venue: VenueId(1),
            side,
            px: Px(px),
            qty: Qty(qty),
            tif,
            reduce_only,
        },
        stamps: OrderStamps::default(),
    }
}

fn event(id: u64, instrument: u32, side: Side, exch_ts_ms: u64, kind: OrderEventKind) -> OrderEvent {
    OrderEvent {
        client_id: ClientOrderId(id),
        instrument: InstrumentId(instrument),
        side,
        exch_ts_ms,
        recv_ns: RECV_NS,
        kind,
    }
}

fn feed(s: &mut BinanceSession, frame: &[u8]) -> Vec<OrderEvent> {
    let mut out = Vec::new();
    s.on_frame(frame, RECV_NS, &mut |e| out.push(e));
    out
}

// ---- encoding --------------------------------------------------------------------------------

#[test]
fn the_test_hmac_reproduces_binances_documented_ws_api_vector() {
    let v = vector("binance_wsapi_hmac_ascii_sorted_params");
    assert_eq!(v["secretKey"], SECRET);
    assert_eq!(hmac_hex(SECRET, v["payload"].as_str().unwrap()), v["expected"].as_str().unwrap());
    assert_eq!(v["expected"], "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24");
}

#[test]
fn spot_order_place_frame_is_exact_and_signed_over_the_sorted_params() {
    let mut s = spot_session();
    let cmd = new_order(42, 3, Side::Buy, 6_500_010, 1_000, TimeInForce::Gtc, false);
    let frame = String::from_utf8(s.encode(&cmd, 1_700_000_000_123).unwrap().to_vec()).unwrap();
    let payload = format!(
        "apiKey={API_KEY}&newClientOrderId=xb42&newOrderRespType=ACK&price=65000.1&quantity=0.01&recvWindow=5000\
         &side=BUY&symbol=BTCUSDT&timeInForce=GTC&timestamp=1700000000123&type=LIMIT"
    );
    let sig = hmac_hex(SECRET, &payload);
    let expected = format!(
        "{{\"id\":\"xb42.b0\",\"method\":\"order.place\",\"params\":{{\"apiKey\":\"{API_KEY}\",\
         \"newClientOrderId\":\"xb42\",\"newOrderRespType\":\"ACK\",\"price\":\"65000.1\",\"quantity\":\"0.01\",\
         \"recvWindow\":5000,\"side\":\"BUY\",\"symbol\":\"BTCUSDT\",\"timeInForce\":\"GTC\",\
         \"timestamp\":1700000000123,\"type\":\"LIMIT\",\"signature\":\"{sig}\"}}}}"
    );
    assert_eq!(frame, expected);
    // The payload the docs define, built from the parsed request, gives the same signature.
    let parsed: Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(sorted_payload(&parsed["params"]), payload);
    assert_eq!(sig.len(), 64);
}

#[test]
fn spot_cancel_and_usdm_reduce_only_ioc_frames_are_exact() {
    let mut s = spot_session();
    let cancel = OrderCommand::Cancel { client_id: ClientOrderId(43), instrument: InstrumentId(3), venue: VenueId(1) };
    let frame = String::from_utf8(s.encode(&cancel, 1_700_000_000_500).unwrap().to_vec()).unwrap();
    let payload =
        format!("apiKey={API_KEY}&origClientOrderId=xb43&recvWindow=5000&symbol=BTCUSDT&timestamp=1700000000500");
    assert_eq!(
        frame,
        format!(
            "{{\"id\":\"xb43.c0\",\"method\":\"order.cancel\",\"params\":{{\"apiKey\":\"{API_KEY}\",\
             \"origClientOrderId\":\"xb43\",\"recvWindow\":5000,\"symbol\":\"BTCUSDT\",\"timestamp\":1700000000500,\
             \"signature\":\"{}\"}}}}",
            hmac_hex(SECRET, &payload)
        )
    );

    let mut u =
        BinanceSession::new(config(Protocol::BinanceUsdm, "ws://127.0.0.1:9/binance-usdm", hmac_key())).unwrap();
    let cmd = new_order(18_446_744_073_709_551_615, 7, Side::Sell, 640_005, 3, TimeInForce::Ioc, true);
    let frame = String::from_utf8(u.encode(&cmd, 1_700_000_000_999).unwrap().to_vec()).unwrap();
    let payload = format!(
        "apiKey={API_KEY}&newClientOrderId=xb18446744073709551615&price=64000.5&quantity=0.003&recvWindow=5000\
         &reduceOnly=true&side=SELL&symbol=BTCUSDT&timeInForce=IOC&timestamp=1700000000999&type=LIMIT"
    );
    let parsed: Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(parsed["id"], "xb18446744073709551615.s0");
    assert_eq!(parsed["method"], "order.place");
    assert_eq!(sorted_payload(&parsed["params"]), payload);
    assert_eq!(parsed["params"]["signature"], hmac_hex(SECRET, &payload).as_str());
    assert_eq!(parsed["params"].get("newOrderRespType"), None, "USD-M keeps its default response type (ACK)");

    // Commands for other venues or instruments are not served.
    let foreign = new_order(1, 99, Side::Buy, 1, 1, TimeInForce::Gtc, false);
    assert!(matches!(s.encode(&foreign, 1), Err(GatewayError::NotServed)));
    // Not connected: refused and counted.
    let cmd = new_order(44, 3, Side::Buy, 1, 1, TimeInForce::Gtc, false);
    assert!(matches!(s.send(&cmd, 0), Err(GatewayError::Disconnected)));
    assert!(matches!(s.send(&foreign, 0), Err(GatewayError::NotServed)));
    assert_eq!(s.stats().not_ready, 1);
    assert_eq!(s.gateway_name(), "binance-ws-api");
    // The frame buffer held the API key; the session's Debug shows neither it nor the secret.
    let shown = format!("{s:?}");
    assert!(!shown.contains(API_KEY) && !shown.contains(SECRET), "{shown}");
    assert!(shown.contains("Hmac(***)"), "{shown}");
}

// ---- decoding --------------------------------------------------------------------------------

#[test]
fn spot_execution_reports_become_exact_order_events() {
    let mut s = spot_session();
    assert_eq!(
        feed(&mut s, &fixture("spot_new.json")),
        [event(42, 3, Side::Buy, 1_499_405_658_657, OrderEventKind::Accepted)]
    );
    let partial = Fill {
        px: Px(6_500_010),
        qty: Qty(400),
        leaves_qty: Qty(600),
        fee: Decimal::new(26_000_040, 8),
        taker: false,
        trade_id: 1_650_422_481,
    };
    assert_eq!(
        feed(&mut s, &fixture("spot_trade_partial.json")),
        [event(42, 3, Side::Buy, 1_499_405_658_700, OrderEventKind::Filled(partial))]
    );
    let full = Fill {
        px: Px(6_500_000),
        qty: Qty(600),
        leaves_qty: Qty(0),
        fee: Decimal::new(1_234, 8),
        taker: true,
        trade_id: 1_650_422_482,
    };
    assert_eq!(
        feed(&mut s, &fixture("spot_trade_full.json")),
        [event(42, 3, Side::Buy, 1_499_405_658_800, OrderEventKind::Filled(full))]
    );
    assert_eq!(s.foreign_fee_fills(), 1, "the BNB commission is reported as is, and counted");
    // The same trade again: dropped, counted.
    assert_eq!(feed(&mut s, &fixture("spot_trade_partial.json")), []);
    assert_eq!(s.stats().duplicate_fills, 1);
    // A cancel names the order in `C` (its own id is in `c`).
    assert_eq!(
        feed(&mut s, &fixture("spot_canceled.json")),
        [event(43, 3, Side::Buy, 1_499_405_658_900, OrderEventKind::Cancelled)]
    );
    assert_eq!(
        feed(&mut s, &fixture("spot_expired.json")),
        [event(44, 3, Side::Buy, 1_499_405_659_000, OrderEventKind::Expired)]
    );
    assert_eq!(
        feed(&mut s, &fixture("spot_rejected.json")),
        [event(45, 3, Side::Buy, 1_499_405_659_100, OrderEventKind::Rejected(RejectReason::InsufficientBalance))]
    );
    // Orders placed by someone else on the account, and events the session does not use.
    assert_eq!(feed(&mut s, &fixture("spot_foreign.json")), []);
    assert_eq!(feed(&mut s, &fixture("spot_account_position.json")), []);
    let st = s.stats();
    assert_eq!(
        (st.acks, st.fills, st.rejects, st.unknown, st.account_updates, st.malformed),
        (1, 2, 1, 1, 1, 0),
        "the foreign order is unknown; the account position push is an account update"
    );
}

#[test]
fn usdm_order_trade_updates_become_exact_order_events() {
    let mut u =
        BinanceSession::new(config(Protocol::BinanceUsdm, "ws://127.0.0.1:9/binance-usdm", hmac_key())).unwrap();
    assert_eq!(
        feed(&mut u, &fixture("usdm_order_new.json")),
        [event(77, 7, Side::Sell, 1_568_879_465_599, OrderEventKind::Accepted)]
    );
    let fill = Fill {
        px: Px(640_005),
        qty: Qty(1),
        leaves_qty: Qty(2),
        fee: Decimal::new(256_002, 7),
        taker: true,
        trade_id: 123_456_789,
    };
    assert_eq!(
        feed(&mut u, &fixture("usdm_order_trade_update.json")),
        [event(77, 7, Side::Sell, 1_568_879_465_650, OrderEventKind::Filled(fill))]
    );
    assert_eq!(feed(&mut u, &fixture("usdm_order_trade_update.json")), []);
    assert_eq!(
        feed(&mut u, &fixture("usdm_order_canceled.json")),
        [event(77, 7, Side::Sell, 1_568_879_465_999, OrderEventKind::Cancelled)]
    );
    let st = u.stats();
    assert_eq!((st.acks, st.fills, st.duplicate_fills, st.malformed), (1, 1, 1, 0));
    assert_eq!(u.foreign_fee_fills(), 0);
}

#[test]
fn error_answers_reject_the_order_with_the_codes_reason_and_rate_limits_are_tracked() {
    let mut s = spot_session();
    let answer = |id: &str, status: u16, code: i64| {
        json!({"id": id, "status": status, "error": {"code": code, "msg": "Account has insufficient balance for requested action."},
               "rateLimits": [
                   {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50, "count": 13},
                   {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000, "count": 4044},
                   {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000, "count": 322}]})
        .to_string()
    };
    let ev = feed(&mut s, answer("xb50.b0", 400, -2010).as_bytes());
    assert_eq!(ev, [event(50, 3, Side::Buy, 0, OrderEventKind::Rejected(RejectReason::InsufficientBalance))]);
    assert_eq!((s.stats().rate_used, s.stats().rate_limit), (13, 50), "the busiest window: 13 of 50");
    let ev = feed(&mut s, answer("xb51.s0", 429, -1015).as_bytes());
    assert_eq!(ev, [event(51, 3, Side::Sell, 0, OrderEventKind::Rejected(RejectReason::RateLimited))]);
    let ev = feed(&mut s, answer("xb52.s0", 400, -1013).as_bytes());
    assert_eq!(ev, [event(52, 3, Side::Sell, 0, OrderEventKind::Rejected(RejectReason::InvalidOrder))]);
    let ev = feed(&mut s, answer("xb53.b0", 400, -1022).as_bytes());
    assert_eq!(ev, [event(53, 3, Side::Buy, 0, OrderEventKind::Rejected(RejectReason::Other))]);
    let ev = feed(&mut s, answer("xb56.b0", 503, -1006).as_bytes());
    assert_eq!(ev, [event(56, 3, Side::Buy, 0, OrderEventKind::Rejected(RejectReason::Transport))]);
    // A refused cancel is counted, but the order's fate comes from its own events.
    assert_eq!(feed(&mut s, answer("xb54.c0", 400, -2011).as_bytes()), []);
    // A successful ACK answer carries no event (the user data stream's NEW does).
    let ack = r#"{"id":"xb55.b0","status":200,"result":{"symbol":"BTCUSDT","orderId":28,"orderListId":-1,"clientOrderId":"xb55","transactTime":1507725176595},"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000,"count":1}]}"#;
    assert_eq!(feed(&mut s, ack.as_bytes()), []);
    let st = s.stats();
    assert_eq!((st.rejects, st.rate_limited, st.rate_used, st.rate_limit, st.malformed), (6, 1, 1, 6000, 0));
    assert_eq!(reject_reason(-2019), RejectReason::InsufficientBalance);
    assert_eq!(reject_reason(-4014), RejectReason::InvalidOrder);
    assert_eq!(reject_reason(-1021), RejectReason::Other);
}

#[test]
fn malformed_frames_are_counted_and_never_panic() {
    let mut s = spot_session();
    let good = String::from_utf8(fixture("spot_trade_partial.json")).unwrap();
    let bad: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"[1,2]".to_vec(),
        b"{\"event\":[]}".to_vec(),
        b"{\"id\":\"time\",\"status\":200,\"result\":{}}".to_vec(),
        b"{\"id\":\"x\",\"status\":-1}".to_vec(),
        good.replace("\"L\":\"65000.10000000\"", "\"L\":\"65000.1e0\"").into_bytes(),
        good.replace("\"L\":\"65000.10000000\"", "\"L\":\"65000.105\"").into_bytes(),
        good.replace("\"S\":\"BUY\"", "\"S\":\"HOLD\"").into_bytes(),
        good.replace("\"t\":1650422481", "\"t\":-1").into_bytes(),
        good.replace("\"n\":\"0.26000040\"", "\"n\":\"NaN\"").into_bytes(),
        good.replace("\"l\":\"0.00400000\"", "\"l\":4").into_bytes(),
        good.as_bytes()[..good.len() - 5].to_vec(),
        b"{\"id\":\"xb1.b0\",\"status\":400,\"error\":{\"code\":\"x\"}}".to_vec(),
        b"{\"id\":\"xb1.b0\",\"status\":200,\"rateLimits\":[{\"count\":1}]}".to_vec(),
    ];
    for (i, frame) in bad.iter().enumerate() {
        assert_eq!(feed(&mut s, frame), [], "frame {i}");
    }
    assert_eq!(s.stats().malformed, bad.len() as u64);
    assert_eq!(s.stats().fills, 0);
    // Every prefix of a real frame, too.
    let full = fixture("spot_trade_full.json");
    for n in 0..full.len() {
        assert_eq!(feed(&mut s, &full[..n]), []);
    }
    assert_eq!(s.stats().malformed, (bad.len() + full.len()) as u64);
}

// ---- loopback sessions ----------------------------------------------------------------------

/// What the scripted server saw.
struct Seen {
    paths: Vec<String>,
    requests: Vec<Value>,
}

type Ws = tungstenite::WebSocket<std::net::TcpStream>;

#[allow(clippy::result_large_err)] // the callback's error type is tungstenite's
fn accept(listener: &TcpListener, paths: &mut Vec<String>) -> Ws {
    let (stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut path = String::new();
    let ws = tungstenite::accept_hdr(stream, |req: &tungstenite::handshake::server::Request, resp| {
        path = req.uri().path().to_owned();
        Ok(resp)
    })
    .unwrap();
    paths.push(path);
    ws
}

fn next_request(ws: &mut Ws, seen: &mut Seen) -> Value {
    loop {
        match ws.read().unwrap() {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                seen.requests.push(v.clone());
                return v;
            }
            Message::Close(_) => panic!("client closed"),
            _ => {}
        }
    }
}

fn reply(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

fn ok(id: &Value, result: Value) -> Value {
    json!({"id": id, "status": 200, "result": result,
           "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000, "count": 7}]})
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Runs the session (maintain + poll, as the I/O thread does) until `done` says so or 15 s
/// pass (a hang guard, not a timing assertion).
fn drive(
    s: &mut BinanceSession,
    poll: &mio::Poll,
    events: &mut Vec<OrderEvent>,
    mut done: impl FnMut(&BinanceSession, &[OrderEvent]) -> bool,
) {
    let start = Instant::now();
    while !done(s, events) {
        assert!(start.elapsed() < Duration::from_secs(15), "session did not get there: {:?}", s.stats());
        let now = start.elapsed().as_nanos() as u64 + 1;
        s.maintain(now, poll.registry(), mio::Token(0));
        s.poll(now, &mut |e| events.push(e));
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The server's part of a spot session: time, logon or signed subscription, one order that is
/// acknowledged and filled, one refused for balance.
fn spot_server(listener: TcpListener, ed25519: Option<VerifyingKey>) -> JoinHandle<Seen> {
    std::thread::spawn(move || {
        let mut seen = Seen { paths: Vec::new(), requests: Vec::new() };
        let mut ws = accept(&listener, &mut seen.paths);
        let t = next_request(&mut ws, &mut seen);
        assert_eq!(t["method"], "time");
        reply(&mut ws, ok(&t["id"], json!({"serverTime": wall_ms() + 60_000})));
        if let Some(pk) = ed25519 {
            let logon = next_request(&mut ws, &mut seen);
            assert_eq!(logon["method"], "session.logon");
            let sig = base64_decode(logon["params"]["signature"].as_str().unwrap());
            let sig = Signature::from_slice(&sig).unwrap();
            pk.verify(sorted_payload(&logon["params"]).as_bytes(), &sig).expect("logon signature verifies");
            reply(&mut ws, ok(&logon["id"], json!({"apiKey": API_KEY, "authorizedSince": 1, "connectedSince": 1})));
            let sub = next_request(&mut ws, &mut seen);
            assert_eq!(sub["method"], "userDataStream.subscribe");
            reply(&mut ws, ok(&sub["id"], json!({"subscriptionId": 0})));
        } else {
            let sub = next_request(&mut ws, &mut seen);
            assert_eq!(sub["method"], "userDataStream.subscribe.signature");
            let p = &sub["params"];
            assert_eq!(p["signature"], hmac_hex(SECRET, &sorted_payload(p)).as_str());
            reply(&mut ws, ok(&sub["id"], json!({"subscriptionId": 0})));
        }
        let order = next_request(&mut ws, &mut seen);
        assert_eq!(order["method"], "order.place");
        let cid = order["params"]["newClientOrderId"].as_str().unwrap().to_owned();
        reply(
            &mut ws,
            ok(
                &order["id"],
                json!({"symbol": "BTCUSDT", "orderId": 28, "orderListId": -1, "clientOrderId": cid, "transactTime": 1}),
            ),
        );
        let report = |x: &str, l: &str, z: &str, t: i64| {
            json!({"subscriptionId": 0, "event": {"e": "executionReport", "E": 1_700_000_000_001_u64, "s": "BTCUSDT", "c": cid,
                "S": "BUY", "o": "LIMIT", "f": "GTC", "q": "0.01000000", "p": "65000.10000000", "C": "", "x": x, "X": x,
                "r": "NONE", "i": 28, "l": l, "z": z, "L": "65000.10000000", "n": "0.1", "N": "USDT",
                "T": 1_700_000_000_002_u64, "t": t, "m": false}})
        };
        reply(&mut ws, report("NEW", "0", "0", -1));
        reply(&mut ws, report("TRADE", "0.01000000", "0.01000000", 99));
        let second = next_request(&mut ws, &mut seen);
        reply(
            &mut ws,
            json!({"id": second["id"], "status": 400, "error": {"code": -2010, "msg": "Account has insufficient balance for requested action."}}),
        );
        // Stay until the client goes.
        while ws.read().is_ok() {}
        seen
    })
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn run_spot(
    key: SecretKey,
    ed25519: Option<VerifyingKey>,
) -> (Seen, Vec<OrderEvent>, crossbar_connectors::order::SessionStats) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = spot_server(listener, ed25519);
    let mut s =
        BinanceSession::new(config(Protocol::BinanceSpot, &format!("ws://127.0.0.1:{port}/binance"), key)).unwrap();
    let poll = mio::Poll::new().unwrap();
    let mut events = Vec::new();
    drive(&mut s, &poll, &mut events, |s, _| s.ready());
    let offset = s.stats().clock_offset_ms;
    assert!((59_000..=61_000).contains(&offset), "clock offset {offset} from a venue 60 s ahead");
    s.send(&new_order(9, 3, Side::Buy, 6_500_010, 1_000, TimeInForce::Gtc, false), 1).unwrap();
    drive(&mut s, &poll, &mut events, |_, ev| ev.len() >= 2);
    s.send(&new_order(10, 3, Side::Buy, 6_500_010, 1_000, TimeInForce::Gtc, false), 1).unwrap();
    drive(&mut s, &poll, &mut events, |_, ev| ev.len() >= 3);
    let stats = s.stats();
    drop(s);
    (server.join().unwrap(), events, stats)
}

fn check_spot_events(events: &[OrderEvent]) {
    let kinds: Vec<(u64, OrderEventKind)> = events.iter().map(|e| (e.client_id.0, e.kind)).collect();
    assert_eq!(
        kinds,
        [
            (9, OrderEventKind::Accepted),
            (
                9,
                OrderEventKind::Filled(Fill {
                    px: Px(6_500_010),
                    qty: Qty(1_000),
                    leaves_qty: Qty(0),
                    fee: Decimal::new(1, 1),
                    taker: true,
                    trade_id: 99
                })
            ),
            (10, OrderEventKind::Rejected(RejectReason::InsufficientBalance)),
        ]
    );
    assert!(events.iter().all(|e| e.instrument == InstrumentId(3) && e.side == Side::Buy));
}

#[test]
fn hmac_spot_session_subscribes_by_signature_places_and_maps_answers() {
    let (seen, events, stats) = run_spot(hmac_key(), None);
    assert_eq!(seen.paths, ["/binance/ws-api/v3"]);
    let order = &seen.requests[2];
    let p = &order["params"];
    assert_eq!(order["id"], "xb9.b0");
    assert_eq!(p["signature"], hmac_hex(SECRET, &sorted_payload(p)).as_str());
    assert_eq!(
        (p["symbol"].as_str(), p["side"].as_str(), p["type"].as_str(), p["timeInForce"].as_str()),
        (Some("BTCUSDT"), Some("BUY"), Some("LIMIT"), Some("GTC"))
    );
    assert_eq!(
        (p["price"].as_str(), p["quantity"].as_str(), p["apiKey"].as_str()),
        (Some("65000.1"), Some("0.01"), Some(API_KEY))
    );
    let ts = p["timestamp"].as_i64().unwrap();
    assert!((ts - wall_ms() - 60_000).abs() < 5_000, "timestamp carries the venue clock offset");
    check_spot_events(&events);
    assert_eq!((stats.connects, stats.orders_sent, stats.acks, stats.fills, stats.rejects), (1, 2, 1, 1, 1));
    assert_eq!((stats.rate_used, stats.rate_limit), (7, 6000));
}

#[test]
fn ed25519_spot_session_logs_on_and_sends_unsigned_orders() {
    let v = vector("rfc8032_7.1_test1");
    let pem = v["pkcs8_pem"].as_str().unwrap().to_owned();
    let pk_bytes: [u8; 32] = hex_bytes(v["public_key_hex"].as_str().unwrap()).try_into().unwrap();
    let pk = VerifyingKey::from_bytes(&pk_bytes).unwrap();
    let (seen, events, stats) = run_spot(SecretKey::Ed25519(SecretString::new(pem)), Some(pk));
    let logon = &seen.requests[1]["params"];
    assert_eq!(logon["apiKey"], API_KEY);
    assert_eq!(logon["recvWindow"], 5000);
    let order = &seen.requests[3]["params"];
    assert_eq!(order.get("apiKey"), None);
    assert_eq!(order.get("signature"), None);
    assert!(order["timestamp"].is_u64());
    assert_eq!(order["newClientOrderId"], "xb9");
    check_spot_events(&events);
    assert_eq!(stats.connects, 1);
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn usdm_session_starts_a_listen_key_stream_and_reads_fills_from_it() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let listen_key = "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1";
    let server = std::thread::spawn(move || {
        let mut seen = Seen { paths: Vec::new(), requests: Vec::new() };
        let mut api = accept(&listener, &mut seen.paths);
        let t = next_request(&mut api, &mut seen);
        reply(&mut api, ok(&t["id"], json!({"serverTime": wall_ms()})));
        let start = next_request(&mut api, &mut seen);
        assert_eq!(start["method"], "userDataStream.start");
        assert_eq!(start["params"]["apiKey"], API_KEY);
        reply(&mut api, ok(&start["id"], json!({"listenKey": listen_key})));
        let mut stream = accept(&listener, &mut seen.paths);
        let order = next_request(&mut api, &mut seen);
        reply(&mut api, ok(&order["id"], json!({"orderId": 1, "clientOrderId": order["params"]["newClientOrderId"]})));
        let update = |x: &str| {
            json!({"e": "ORDER_TRADE_UPDATE", "E": 1_568_879_465_651_u64, "T": 1_568_879_465_650_u64, "o": {
                "s": "BTCUSDT", "c": order["params"]["newClientOrderId"], "S": "SELL", "o": "LIMIT", "f": "IOC",
                "q": "0.003", "p": "64000.5", "ap": "0", "x": x, "X": x, "i": 1, "l": if x == "TRADE" { "0.001" } else { "0" },
                "z": if x == "NEW" { "0" } else { "0.001" }, "L": "64000.5", "N": "USDT", "n": "0.0256002",
                "T": 1_568_879_465_650_u64, "t": if x == "TRADE" { 5 } else { 0 }, "m": true, "R": true}})
        };
        for x in ["NEW", "TRADE", "EXPIRED"] {
            reply(&mut stream, update(x));
        }
        while api.read().is_ok() {}
        seen
    });
    let mut s =
        BinanceSession::new(config(Protocol::BinanceUsdm, &format!("ws://127.0.0.1:{port}/binance-usdm"), hmac_key()))
            .unwrap();
    let poll = mio::Poll::new().unwrap();
    let mut events = Vec::new();
    drive(&mut s, &poll, &mut events, |s, _| s.ready());
    s.send(&new_order(31, 7, Side::Sell, 640_005, 3, TimeInForce::Ioc, true), 1).unwrap();
    drive(&mut s, &poll, &mut events, |_, ev| ev.len() >= 3);
    drop(s);
    let seen = server.join().unwrap();
    assert_eq!(seen.paths, ["/binance-usdm/ws-fapi/v1".to_owned(), format!("/binance-usdm/ws/{listen_key}")]);
    let p = &seen.requests[2]["params"];
    assert_eq!(
        (p["reduceOnly"].as_str(), p["timeInForce"].as_str(), p["quantity"].as_str()),
        (Some("true"), Some("IOC"), Some("0.003"))
    );
    assert_eq!(p["signature"], hmac_hex(SECRET, &sorted_payload(p)).as_str());
    let kinds: Vec<OrderEventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            OrderEventKind::Accepted,
            OrderEventKind::Filled(Fill {
                px: Px(640_005),
                qty: Qty(1),
                leaves_qty: Qty(2),
                fee: Decimal::new(256_002, 7),
                taker: false,
                trade_id: 5
            }),
            OrderEventKind::Expired,
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.client_id == ClientOrderId(31) && e.instrument == InstrumentId(7) && e.side == Side::Sell)
    );
}

// ---- allocation ------------------------------------------------------------------------------

#[test]
fn per_order_frames_and_events_allocate_nothing_after_warm_up() {
    let mut s = spot_session();
    let names = [
        "spot_new.json",
        "spot_trade_partial.json",
        "spot_trade_full.json",
        "spot_canceled.json",
        "spot_expired.json",
        "spot_rejected.json",
        "spot_foreign.json",
        "spot_account_position.json",
    ];
    let error = br#"{"id":"xb50.b0","status":400,"error":{"code":-2010,"msg":"Account has insufficient balance for requested action."},"rateLimits":[{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50,"count":13}]}"#;
    // Eleven rounds of frames, each round's trades with fresh ids (so they are fills, not
    // duplicates), plus a malformed frame.
    let rounds: Vec<Vec<Vec<u8>>> = (0..11u64)
        .map(|round| {
            let mut frames: Vec<Vec<u8>> = names
                .iter()
                .map(|n| {
                    let text = String::from_utf8(fixture(n)).unwrap();
                    text.replace("\"t\":16504224", &format!("\"t\":{}", 100 + round)).into_bytes()
                })
                .collect();
            frames.push(error.to_vec());
            frames.push(fixture("spot_trade_full.json")[..40].to_vec());
            frames
        })
        .collect();
    let cmds = [
        new_order(42, 3, Side::Buy, 6_500_010, 1_000, TimeInForce::Gtc, false),
        new_order(u64::MAX, 3, Side::Sell, 1, 99_999_999, TimeInForce::Ioc, false),
        OrderCommand::Cancel { client_id: ClientOrderId(42), instrument: InstrumentId(3), venue: VenueId(1) },
    ];
    let mut events = 0u64;
    let mut run = |s: &mut BinanceSession, frames: &[Vec<u8>]| {
        for c in &cmds {
            std::hint::black_box(s.encode(c, 1_700_000_000_000).unwrap());
        }
        for f in frames {
            s.on_frame(f, RECV_NS, &mut |e| {
                std::hint::black_box(e);
                events += 1;
            });
        }
    };
    run(&mut s, &rounds[0]);
    let before = support::allocs();
    for frames in &rounds[1..] {
        run(&mut s, frames);
    }
    assert_eq!(support::allocs() - before, 0);
    assert_eq!(events, 11 * 7, "NEW, two fills, cancel, expiry, reject, error answer per round");
    assert_eq!((s.stats().fills, s.stats().duplicate_fills, s.stats().malformed), (22, 0, 11));
}

#[test]
fn usdm_per_order_frames_and_events_allocate_nothing_after_warm_up() {
    // What a USD-M order session reads per order in `crossbar bench`: the `order.place` answer
    // (with `rateLimits`), then on the listen-key stream NEW, a fill, an ACCOUNT_UPDATE, and a
    // cancel or an expiry; plus an error answer and a malformed frame.
    let mut u =
        BinanceSession::new(config(Protocol::BinanceUsdm, "ws://127.0.0.1:9/binance-usdm", hmac_key())).unwrap();
    let placed = br#"{"id":"xb77.s0","status":200,"result":{"orderId":8886774,"symbol":"BTCUSDT","status":"NEW","clientOrderId":"xb77","price":"64000.5","origQty":"0.003","executedQty":"0","cumQuote":"0","timeInForce":"IOC","type":"LIMIT","reduceOnly":false,"side":"SELL","positionSide":"BOTH","updateTime":1568879465651},"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400,"count":12},{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":300,"count":3}]}"#;
    let refused = br#"{"id":"xb78.b0","status":400,"error":{"code":-2019,"msg":"Margin is insufficient."},"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400,"count":13}]}"#;
    let account = br#"{"e":"ACCOUNT_UPDATE","E":1568879465652,"T":1568879465650,"a":{"m":"ORDER","B":[{"a":"USDT","wb":"9999980.12","cw":"9999980.12","bc":"0"}],"P":[{"s":"BTCUSDT","pa":"-0.001","ep":"64000.5","cr":"0","up":"0","mt":"cross","iw":"0","ps":"BOTH"}]}}"#;
    let text = |name: &str| String::from_utf8(fixture(name)).unwrap();
    let rounds: Vec<Vec<Vec<u8>>> = (0..11u64)
        .map(|round| {
            vec![
                placed.to_vec(),
                fixture("usdm_order_new.json"),
                text("usdm_order_trade_update.json")
                    .replace("\"t\":123456789", &format!("\"t\":{}", 1_000 + round))
                    .into_bytes(),
                account.to_vec(),
                fixture("usdm_order_canceled.json"),
                text("usdm_order_canceled.json").replace("CANCELED", "EXPIRED").into_bytes(),
                refused.to_vec(),
                placed[..50].to_vec(),
            ]
        })
        .collect();
    let mut events = 0u64;
    let mut run = |u: &mut BinanceSession, frames: &[Vec<u8>]| {
        std::hint::black_box(u.encode(&new_order(77, 7, Side::Sell, 640_005, 3, TimeInForce::Ioc, true), 1).unwrap());
        for f in frames {
            u.on_frame(f, RECV_NS, &mut |e| {
                std::hint::black_box(e);
                events += 1;
            });
        }
    };
    run(&mut u, &rounds[0]);
    let before = support::allocs();
    for frames in &rounds[1..] {
        run(&mut u, frames);
    }
    assert_eq!(support::allocs() - before, 0);
    assert_eq!(events, 11 * 5, "NEW, fill, cancel, expiry, reject per round");
    let st = u.stats();
    assert_eq!((st.acks, st.fills, st.rejects, st.account_updates, st.malformed), (11, 11, 11, 11, 11));
    assert_eq!((st.rate_used, st.rate_limit), (13, 2400), "the last answer's busiest window");
}

// ---- reconnect -------------------------------------------------------------------------------

#[test]
fn a_dropped_connection_reconnects_and_cancels_what_was_left_open() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut seen = Seen { paths: Vec::new(), requests: Vec::new() };
        let login = |ws: &mut Ws, seen: &mut Seen| {
            let t = next_request(ws, seen);
            reply(ws, ok(&t["id"], json!({"serverTime": wall_ms()})));
            let sub = next_request(ws, seen);
            assert_eq!(sub["method"], "userDataStream.subscribe.signature");
            reply(ws, ok(&sub["id"], json!({"subscriptionId": 0})));
        };
        let report = |x: &str| {
            json!({"subscriptionId": 0, "event": {"e": "executionReport", "E": 5, "s": "BTCUSDT", "c": if x == "NEW" { "xb60" } else { "x1" },
                "C": if x == "NEW" { "" } else { "xb60" }, "S": "SELL", "o": "LIMIT", "f": "GTC", "q": "0.01000000", "p": "70000.00000000",
                "x": x, "X": x, "r": "NONE", "i": 1, "l": "0", "z": "0", "L": "0", "n": "0", "N": null, "T": 6, "t": -1, "m": false}})
        };
        let mut first = accept(&listener, &mut seen.paths);
        login(&mut first, &mut seen);
        let order = next_request(&mut first, &mut seen);
        reply(&mut first, ok(&order["id"], json!({"orderId": 1})));
        reply(&mut first, report("NEW"));
        drop(first); // the connection breaks with the order open
        let mut second = accept(&listener, &mut seen.paths);
        login(&mut second, &mut seen);
        let cancel_all = next_request(&mut second, &mut seen);
        assert_eq!(cancel_all["method"], "openOrders.cancelAll");
        let p = &cancel_all["params"];
        assert_eq!(p["symbol"], "BTCUSDT");
        assert_eq!(p["signature"], hmac_hex(SECRET, &sorted_payload(p)).as_str());
        reply(&mut second, ok(&cancel_all["id"], json!([{"symbol": "BTCUSDT", "origClientOrderId": "xb60"}])));
        reply(&mut second, report("CANCELED"));
        while second.read().is_ok() {}
        seen
    });
    let mut s =
        BinanceSession::new(config(Protocol::BinanceSpot, &format!("ws://127.0.0.1:{port}/binance"), hmac_key()))
            .unwrap();
    let poll = mio::Poll::new().unwrap();
    let mut events = Vec::new();
    drive(&mut s, &poll, &mut events, |s, _| s.ready());
    let before = support::allocs();
    s.send(&new_order(60, 3, Side::Sell, 7_000_000, 1_000, TimeInForce::Gtc, false), 1).unwrap();
    assert_eq!(support::allocs() - before, 0, "sending an order allocates nothing");
    drive(&mut s, &poll, &mut events, |s, ev| !ev.is_empty() && !s.ready());
    drive(&mut s, &poll, &mut events, |_, ev| ev.len() >= 2);
    let st = s.stats();
    assert_eq!((st.connects, st.disconnects, st.cancel_alls, st.orders_sent, st.rejects), (2, 1, 1, 1, 0));
    let kinds: Vec<(u64, OrderEventKind)> = events.iter().map(|e| (e.client_id.0, e.kind)).collect();
    assert_eq!(kinds, [(60, OrderEventKind::Accepted), (60, OrderEventKind::Cancelled)]);
    drop(s);
    let seen = server.join().unwrap();
    assert_eq!(seen.paths, ["/binance/ws-api/v3", "/binance/ws-api/v3"]);
}

#[test]
fn a_usdm_session_cancels_by_rest_after_a_reconnect_and_starts_a_new_listen_key() {
    let ws_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ws_port = ws_listener.local_addr().unwrap().port();
    let http_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let http_port = http_listener.local_addr().unwrap().port();
    let http = http_server(
        http_listener,
        vec![(
            "/binance-usdm/fapi/v1/allOpenOrders",
            json!({"code": 200, "msg": "The operation of cancel all open order is done."}),
        )],
    );
    let server = std::thread::spawn(move || {
        let mut seen = Seen { paths: Vec::new(), requests: Vec::new() };
        let update = |x: &str| {
            json!({"e": "ORDER_TRADE_UPDATE", "E": 10, "T": 9, "o": {"s": "BTCUSDT", "c": "xb80", "S": "BUY", "o": "LIMIT",
                "f": "GTC", "q": "0.002", "p": "60000", "x": x, "X": x, "i": 3, "l": "0", "z": "0", "L": "0", "T": 9, "t": 0, "m": false}})
        };
        let login = |seen: &mut Seen, key: &str| {
            let mut api = accept(&ws_listener, &mut seen.paths);
            let t = next_request(&mut api, seen);
            reply(&mut api, ok(&t["id"], json!({"serverTime": wall_ms()})));
            let start = next_request(&mut api, seen);
            assert_eq!(start["method"], "userDataStream.start");
            reply(&mut api, ok(&start["id"], json!({"listenKey": key})));
            let stream = accept(&ws_listener, &mut seen.paths);
            (api, stream)
        };
        let (mut api, mut stream) = login(&mut seen, "firstKey");
        let order = next_request(&mut api, &mut seen);
        reply(&mut api, ok(&order["id"], json!({"orderId": 3})));
        reply(&mut stream, update("NEW"));
        drop((api, stream));
        let (mut api, mut stream) = login(&mut seen, "secondKey");
        reply(&mut stream, update("CANCELED"));
        while api.read().is_ok() {}
        seen.paths
    });
    let mut cfg = config(Protocol::BinanceUsdm, &format!("ws://127.0.0.1:{ws_port}/binance-usdm"), hmac_key());
    cfg.rest_url = format!("http://127.0.0.1:{http_port}/binance-usdm");
    let mut s = BinanceSession::new(cfg).unwrap();
    let poll = mio::Poll::new().unwrap();
    let mut events = Vec::new();
    drive(&mut s, &poll, &mut events, |s, _| s.ready());
    s.send(&new_order(80, 7, Side::Buy, 600_000, 2, TimeInForce::Gtc, false), 1).unwrap();
    drive(&mut s, &poll, &mut events, |s, ev| !ev.is_empty() && !s.ready());
    drive(&mut s, &poll, &mut events, |_, ev| ev.len() >= 2);
    let st = s.stats();
    assert_eq!((st.connects, st.disconnects, st.cancel_alls), (2, 1, 1));
    let kinds: Vec<(u64, OrderEventKind)> = events.iter().map(|e| (e.client_id.0, e.kind)).collect();
    assert_eq!(kinds, [(80, OrderEventKind::Accepted), (80, OrderEventKind::Cancelled)]);
    drop(s);
    assert_eq!(http.join().unwrap(), ["DELETE /binance-usdm/fapi/v1/allOpenOrders"]);
    assert_eq!(
        server.join().unwrap(),
        [
            "/binance-usdm/ws-fapi/v1",
            "/binance-usdm/ws/firstKey",
            "/binance-usdm/ws-fapi/v1",
            "/binance-usdm/ws/secondKey"
        ]
    );
}

// ---- venue state -----------------------------------------------------------------------------

fn trade(id: u64, order_id: u64, price: &str, qty: &str, maker: bool) -> Value {
    json!({"symbol": "BTCUSDT", "id": id, "orderId": order_id, "orderListId": -1, "price": price, "qty": qty,
           "quoteQty": "1", "commission": "0.01", "commissionAsset": "USDT", "time": 1, "isBuyer": true, "isMaker": maker,
           "isBestMatch": true})
}

fn order_status(order_id: u64, client_id: &str, side: &str, orig: &str, executed: &str) -> Value {
    json!({"symbol": "BTCUSDT", "orderId": order_id, "orderListId": -1, "clientOrderId": client_id, "price": "65000.00",
           "origQty": orig, "executedQty": executed, "status": "NEW", "timeInForce": "GTC", "type": "LIMIT", "side": side})
}

#[test]
fn spot_venue_state_maps_open_orders_and_recent_fills_to_our_ids() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut seen = Seen { paths: Vec::new(), requests: Vec::new() };
        let mut ws = accept(&listener, &mut seen.paths);
        let mut answer = |ws: &mut Ws, method: &str, result: Value| {
            let req = next_request(ws, &mut seen);
            assert_eq!(req["method"], method);
            if method != "time" {
                let p = &req["params"];
                assert_eq!(p["signature"], hmac_hex(SECRET, &sorted_payload(p)).as_str(), "{method}");
            }
            reply(ws, ok(&req["id"], result));
            req
        };
        answer(&mut ws, "time", json!({"serverTime": wall_ms()}));
        answer(
            &mut ws,
            "openOrders.status",
            json!([
                order_status(500, "xb5", "BUY", "0.01000000", "0.00400000"),
                order_status(501, "web_1", "BUY", "1", "0")
            ]),
        );
        let trades = answer(
            &mut ws,
            "myTrades",
            json!([
                trade(12, 600, "64999.00", "0.00200000", true),
                trade(11, 500, "65000.00", "0.00400000", false),
                trade(13, 700, "1.00", "1.00000000", false)
            ]),
        );
        assert_eq!(
            (trades["params"]["symbol"].as_str(), trades["params"]["limit"].as_str()),
            (Some("BTCUSDT"), Some("1000"))
        );
        // One `allOrders` from the oldest traded order names the orders of the fills...
        let all = answer(&mut ws, "allOrders", json!([order_status(600, "xb6", "SELL", "0.00200000", "0.00200000")]));
        assert_eq!((all["params"]["orderId"].as_str(), all["params"]["limit"].as_str()), (Some("500"), Some("1000")));
        // ...and one it did not reach is asked for alone.
        let st = answer(&mut ws, "order.status", order_status(700, "web_2", "SELL", "1", "1"));
        assert_eq!(st["params"]["orderId"], "700");
        while ws.read().is_ok() {}
    });
    let mut s =
        BinanceSession::new(config(Protocol::BinanceSpot, &format!("ws://127.0.0.1:{port}/binance"), hmac_key()))
            .unwrap();
    let state = s.venue_state(Duration::from_secs(10)).unwrap();
    server.join().unwrap();
    let fill = |px, qty, leaves, taker, trade_id| Fill {
        px: Px(px),
        qty: Qty(qty),
        leaves_qty: Qty(leaves),
        fee: Decimal::new(1, 2),
        taker,
        trade_id,
    };
    assert_eq!(
        state,
        VenueState {
            open_orders: vec![VenueOrder {
                client_id: ClientOrderId(5),
                instrument: InstrumentId(3),
                venue: VenueId(1),
                open_qty: Qty(600)
            }],
            fills: vec![
                VenueFill {
                    client_id: ClientOrderId(5),
                    instrument: InstrumentId(3),
                    side: Side::Buy,
                    fill: fill(6_500_000, 400, 600, true, 11)
                },
                VenueFill {
                    client_id: ClientOrderId(6),
                    instrument: InstrumentId(3),
                    side: Side::Sell,
                    fill: fill(6_499_900, 200, 0, false, 12)
                },
            ],
            positions: None,
        }
    );
}

/// A one-request-per-connection HTTP server answering `GET` paths from `routes` (path without
/// the query → JSON body); returns the request lines it saw.
fn http_server(listener: TcpListener, routes: Vec<(&'static str, Value)>) -> JoinHandle<Vec<String>> {
    use std::io::{BufRead, BufReader, Write};
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..routes.len() {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut api_key = None;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':')
                    && k.eq_ignore_ascii_case("x-mbx-apikey")
                {
                    api_key = Some(v.trim().to_owned());
                }
            }
            assert_eq!(api_key.as_deref(), Some(API_KEY));
            let target = line.split_whitespace().nth(1).unwrap().to_owned();
            let (path, query) = target.split_once('?').unwrap();
            let (unsigned, sig) = query.rsplit_once("&signature=").unwrap();
            assert_eq!(sig, hmac_hex(SECRET, unsigned), "REST signature over the query as sent");
            let body =
                routes.iter().find(|(p, _)| *p == path).unwrap_or_else(|| panic!("unexpected {path}")).1.to_string();
            let mut out = stream;
            write!(out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                .unwrap();
            seen.push(format!("{} {path}", line.split_whitespace().next().unwrap()));
        }
        seen
    })
}

#[test]
fn usdm_venue_state_reads_rest_orders_and_trades_and_ws_positions() {
    let ws_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ws_port = ws_listener.local_addr().unwrap().port();
    let http_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let http_port = http_listener.local_addr().unwrap().port();
    let usdm_order = |id: u64, cid: &str, side: &str, orig: &str, done: &str| {
        json!({"orderId": id, "symbol": "BTCUSDT", "status": "NEW", "clientOrderId": cid, "price": "64000.5", "origQty": orig,
               "executedQty": done, "side": side, "positionSide": "BOTH", "type": "LIMIT", "timeInForce": "GTC"})
    };
    let http = http_server(
        http_listener,
        vec![
            ("/binance-usdm/fapi/v1/openOrders", json!([usdm_order(1, "xb70", "SELL", "0.003", "0.001")])),
            (
                "/binance-usdm/fapi/v1/userTrades",
                json!([{"buyer": false, "commission": "-0.0128001", "commissionAsset": "USDT", "id": 900, "maker": true,
                        "orderId": 1, "price": "64000.5", "qty": "0.001", "quoteQty": "64.0005", "realizedPnl": "0",
                        "side": "SELL", "positionSide": "BOTH", "symbol": "BTCUSDT", "time": 1}]),
            ),
            ("/binance-usdm/fapi/v1/allOrders", json!([usdm_order(1, "xb70", "SELL", "0.003", "0.001")])),
        ],
    );
    let ws_server = std::thread::spawn(move || {
        let mut seen = Seen { paths: Vec::new(), requests: Vec::new() };
        let mut ws = accept(&ws_listener, &mut seen.paths);
        let t = next_request(&mut ws, &mut seen);
        reply(&mut ws, ok(&t["id"], json!({"serverTime": wall_ms()})));
        let pos = next_request(&mut ws, &mut seen);
        assert_eq!(pos["method"], "v2/account.position");
        assert_eq!(pos["params"]["signature"], hmac_hex(SECRET, &sorted_payload(&pos["params"])).as_str());
        reply(
            &mut ws,
            ok(
                &pos["id"],
                json!([{"symbol": "BTCUSDT", "positionSide": "BOTH", "positionAmt": "-0.001"},
                                              {"symbol": "ETHUSDT", "positionSide": "BOTH", "positionAmt": "5"}]),
            ),
        );
        while ws.read().is_ok() {}
        seen.paths
    });
    let mut cfg = config(Protocol::BinanceUsdm, &format!("ws://127.0.0.1:{ws_port}/binance-usdm"), hmac_key());
    cfg.rest_url = format!("http://127.0.0.1:{http_port}/binance-usdm");
    let mut s = BinanceSession::new(cfg).unwrap();
    let state = s.venue_state(Duration::from_secs(10)).unwrap();
    assert_eq!(
        http.join().unwrap(),
        [
            "GET /binance-usdm/fapi/v1/openOrders",
            "GET /binance-usdm/fapi/v1/userTrades",
            "GET /binance-usdm/fapi/v1/allOrders"
        ]
    );
    assert_eq!(ws_server.join().unwrap(), ["/binance-usdm/ws-fapi/v1"]);
    assert_eq!(
        state,
        VenueState {
            open_orders: vec![VenueOrder {
                client_id: ClientOrderId(70),
                instrument: InstrumentId(7),
                venue: VenueId(1),
                open_qty: Qty(2)
            }],
            fills: vec![VenueFill {
                client_id: ClientOrderId(70),
                instrument: InstrumentId(7),
                side: Side::Sell,
                fill: Fill {
                    px: Px(640_005),
                    qty: Qty(1),
                    leaves_qty: Qty(2),
                    fee: Decimal::new(-128_001, 7),
                    taker: false,
                    trade_id: 900
                },
            }],
            positions: Some(vec![(InstrumentId(7), Decimal::new(-1, 3))]),
        }
    );
}

// ---- end to end, against the simulator -----------------------------------------------------------

mod e2e {
    use super::*;
    use crossbar_connectors::sim::{SimConfig, Simulator};
    use crossbar_engine::instrument::{Instrument, Registry};

    const SPOT: &str = "binance-spot";
    const USDM: &str = "binance-usdm";

    fn registry() -> Registry {
        Registry::new(
            &[SPOT.to_owned(), USDM.to_owned()],
            &[
                support::instrument(SPOT, "BTCUSDT", InstrumentKind::Spot, "BTC", "0.01", "0.00001"),
                support::instrument(USDM, "BTCUSDT", InstrumentKind::Perpetual, "BTC", "0.1", "0.001"),
            ],
        )
        .unwrap()
    }

    fn session_instrument(i: &Instrument) -> SessionInstrument {
        SessionInstrument {
            id: i.id,
            symbol: i.symbol.clone(),
            kind: i.kind,
            base: i.base.clone(),
            quote: i.quote.clone(),
            price_scale: i.price_scale,
            qty_scale: i.qty_scale,
            contract_size: i.contract_size,
        }
    }

    /// Best bid and ask from the simulator's REST depth, as mantissas.
    fn top(sim: &Simulator, venue: &str, inst: &Instrument) -> (i64, i64) {
        let path = if venue == SPOT { "/api/v3/depth" } else { "/fapi/v1/depth" };
        let url = format!("{}{path}?symbol=BTCUSDT&limit=5", sim.rest_url(venue));
        let body: Value =
            serde_json::from_str(&ureq::get(&url).call().unwrap().body_mut().read_to_string().unwrap()).unwrap();
        let px = |side: &str| Px::parse(body[side][0][0].as_str().unwrap().as_bytes(), inst.price_scale).unwrap().0;
        (px("bids"), px("asks"))
    }

    fn new(id: u64, inst: &Instrument, side: Side, px: i64, qty: i64, tif: TimeInForce) -> OrderCommand {
        OrderCommand::New {
            order: NewOrder {
                client_id: ClientOrderId(id),
                instrument: inst.id,
                venue: inst.venue,
                side,
                px: Px(px),
                qty: Qty(qty),
                tif,
                reduce_only: false,
            },
            stamps: OrderStamps::default(),
        }
    }

    fn kinds_of(events: &[OrderEvent], id: u64) -> Vec<OrderEventKind> {
        events.iter().filter(|e| e.client_id == ClientOrderId(id)).map(|e| e.kind).collect()
    }

    /// Rests an order, takes liquidity with an IOC, cancels the resting one, then asks the
    /// venue what the account holds: the same fill, no open order.
    fn round_trip(venue: &str, idx: usize, key: SecretKey) -> (BinanceSession, Vec<OrderEvent>, VenueState) {
        let reg = registry();
        let sim =
            Simulator::start(&SimConfig { seed: 11, ..SimConfig::default() }, &reg, "127.0.0.1:0".parse().unwrap())
                .unwrap();
        let account_key = match &key {
            SecretKey::Hmac(s) => SecretKey::Hmac(SecretString::new(s.expose().to_owned())),
            SecretKey::Ed25519(s) => SecretKey::Ed25519(SecretString::new(s.expose().to_owned())),
        };
        sim.add_account(
            venue,
            Credentials { api_key: SecretString::new(API_KEY.into()), key: account_key, passphrase: None },
        );
        let inst = reg.instruments()[idx].clone();
        let protocol = if venue == SPOT { Protocol::BinanceSpot } else { Protocol::BinanceUsdm };
        let cfg = SessionConfig {
            venue: inst.venue,
            venue_name: venue.into(),
            protocol,
            ws_url: sim.base_url(venue),
            rest_url: sim.rest_url(venue),
            credentials: Credentials { api_key: SecretString::new(API_KEY.into()), key, passphrase: None },
            instruments: vec![session_instrument(&inst)],
            recv_window_ms: 5000,
        };
        let mut s = BinanceSession::new(cfg).unwrap();
        let poll = mio::Poll::new().unwrap();
        let mut events = Vec::new();
        drive(&mut s, &poll, &mut events, |s, _| s.ready());
        let (bid, ask) = top(&sim, venue, &inst);
        let tick = inst.tick.0;
        let lot = inst.lot.0;
        s.send(&new(1, &inst, Side::Buy, bid / 2 / tick * tick, 10 * lot, TimeInForce::Gtc), 1).unwrap();
        drive(&mut s, &poll, &mut events, |_, ev| !kinds_of(ev, 1).is_empty());
        s.send(&new(2, &inst, Side::Buy, ask * 2 / tick * tick, lot, TimeInForce::Ioc), 1).unwrap();
        drive(&mut s, &poll, &mut events, |_, ev| {
            kinds_of(ev, 2).iter().any(|k| matches!(k, OrderEventKind::Filled(f) if f.leaves_qty == Qty(0)))
        });
        s.send(&OrderCommand::Cancel { client_id: ClientOrderId(1), instrument: inst.id, venue: inst.venue }, 1)
            .unwrap();
        drive(&mut s, &poll, &mut events, |_, ev| kinds_of(ev, 1).len() >= 2);
        let state = s.venue_state(Duration::from_secs(10)).unwrap();
        (s, events, state)
    }

    fn check(s: &BinanceSession, events: &[OrderEvent], state: &VenueState) {
        assert_eq!(kinds_of(events, 1), [OrderEventKind::Accepted, OrderEventKind::Cancelled]);
        let fills: Vec<Fill> = kinds_of(events, 2)
            .into_iter()
            .filter_map(|k| match k {
                OrderEventKind::Filled(f) => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(fills.len(), 1, "{events:?}");
        let f = fills[0];
        assert!(f.taker && f.leaves_qty == Qty(0) && f.fee > Decimal::ZERO, "{f:?}");
        assert!(state.open_orders.is_empty(), "{state:?}");
        assert_eq!(state.fills.len(), 1, "{state:?}");
        assert_eq!(state.fills[0].client_id, ClientOrderId(2));
        assert_eq!(state.fills[0].side, Side::Buy);
        assert_eq!(state.fills[0].fill, f, "the venue's record of the fill equals the streamed one");
        let st = s.stats();
        assert_eq!((st.orders_sent, st.cancels_sent, st.rejects, st.malformed, st.duplicate_fills), (2, 1, 0, 0, 0));
        assert_eq!(st.fills, 1);
        assert!(st.clock_offset_ms.abs() < 1_000, "sim and session share a wall clock: {}", st.clock_offset_ms);
        assert!(st.rate_limit > 0 && st.rate_used > 0, "{st:?}");
    }

    #[test]
    fn spot_hmac_session_trades_with_the_simulator_and_reconciles() {
        let (s, events, state) = round_trip(SPOT, 0, hmac_key());
        check(&s, &events, &state);
        assert_eq!(state.positions, None);
    }

    #[test]
    fn spot_ed25519_session_trades_with_the_simulator() {
        let pem = vector("rfc8032_7.1_test1")["pkcs8_pem"].as_str().unwrap().to_owned();
        let (s, events, state) = round_trip(SPOT, 0, SecretKey::Ed25519(SecretString::new(pem)));
        check(&s, &events, &state);
    }

    #[test]
    fn usdm_ed25519_session_logs_on_and_trades_with_the_simulator() {
        let pem = vector("rfc8032_7.1_test1")["pkcs8_pem"].as_str().unwrap().to_owned();
        let (s, events, state) = round_trip(USDM, 1, SecretKey::Ed25519(SecretString::new(pem)));
        check(&s, &events, &state);
    }

    #[test]
    fn usdm_session_trades_with_the_simulator_and_reads_its_position() {
        let (s, events, state) = round_trip(USDM, 1, hmac_key());
        check(&s, &events, &state);
        assert_eq!(state.positions, Some(vec![(registry().instruments()[1].id, Decimal::new(1, 3))]));
    }
}
