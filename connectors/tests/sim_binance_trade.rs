//! The simulator's Binance order entry over real sockets on 127.0.0.1: the WebSocket API
//! (`/ws-api/v3`, `/ws-fapi/v1`) verifying HMAC and Ed25519 signatures, timestamps and keys
//! with Binance's own error codes and messages, session logon, rate limits, user data streams
//! (`executionReport`, `ORDER_TRADE_UPDATE` on `/ws/<listenKey>`), and the signed REST paths.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbar_connectors::auth::binance::ws_signature_payload;
use crossbar_connectors::auth::ed25519::ED25519_BASE64_LEN;
use crossbar_connectors::auth::{Ed25519Signer, HmacSigner, SecretString};
use crossbar_connectors::order::{Credentials, SecretKey};
use crossbar_connectors::sim::{SimConfig, Simulator};
use crossbar_engine::instrument::{InstrumentKind, Registry};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use tungstenite::Message;

mod support;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const SPOT: &str = "binance-spot";
const USDM: &str = "binance-usdm";
/// Upper bound for any wait in these tests; they normally finish far sooner.
const PATIENCE: Duration = Duration::from_secs(8);

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

fn start() -> Simulator {
    let cfg = SimConfig { seed: 5, ..SimConfig::default() };
    Simulator::start(&cfg, &registry(), "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn secret(s: &str) -> SecretString {
    SecretString::new(s.to_owned())
}

fn hmac_account(sim: &Simulator, venue: &str, key: &str, secret_text: &str) {
    sim.add_account(
        venue,
        Credentials { api_key: secret(key), key: SecretKey::Hmac(secret(secret_text)), passphrase: None },
    );
}

/// A made-up Ed25519 key as PKCS#8 PEM.
fn ed25519_pem(seed: u8) -> String {
    SigningKey::from_bytes(&[seed; 32])
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap()
        .to_string()
}

fn now_ms() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// How a test request is signed.
enum Sign<'a> {
    /// Not signed, no `apiKey` (a logged-on session).
    None,
    /// HMAC-SHA256 with this secret, hex.
    Hmac(&'a str),
    /// Ed25519 with this PEM key, base64.
    Ed25519(&'a str),
    /// This exact signature.
    Given(&'a str),
}

/// A WebSocket API request: `params` (strings) plus `timestamp` (a number) and, unless
/// unsigned, `apiKey` and `signature` over the sorted payload.
fn request(id: u64, method: &str, params: &[(&str, &str)], api_key: &str, ts: Option<i64>, sign: Sign<'_>) -> String {
    let mut all: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    if let Some(ts) = ts {
        all.push(("timestamp".to_owned(), ts.to_string()));
    }
    if !matches!(sign, Sign::None) {
        all.push(("apiKey".to_owned(), api_key.to_owned()));
    }
    let mut pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut payload = String::new();
    ws_signature_payload(&mut pairs, &mut payload).unwrap();
    let signature = match sign {
        Sign::None => None,
        Sign::Hmac(s) => Some(HmacSigner::new(&secret(s)).sign_hex(payload.as_bytes()).as_str().to_owned()),
        Sign::Ed25519(pem) => {
            let signer = Ed25519Signer::from_pkcs8_pem(&secret(pem)).unwrap();
            let mut out = [0u8; ED25519_BASE64_LEN];
            Some(signer.sign_base64_into(payload.as_bytes(), &mut out).to_owned())
        }
        Sign::Given(s) => Some(s.to_owned()),
    };
    let mut obj = serde_json::Map::new();
    for (k, v) in &all {
        let value = if k == "timestamp" { json!(v.parse::<i64>().unwrap()) } else { json!(v) };
        obj.insert(k.clone(), value);
    }
    if let Some(s) = signature {
        obj.insert("signature".to_owned(), json!(s));
    }
    json!({"id": id, "method": method, "params": obj}).to_string()
}

async fn connect(url: &str) -> Ws {
    timeout(PATIENCE, connect_async(url)).await.expect("connect timed out").expect("connect").0
}

/// The next text frame as JSON.
async fn next_json(ws: &mut Ws) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.expect("no frame in time");
        match msg.expect("stream ended").expect("websocket error") {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("frame is JSON"),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// Sends a request and returns the response with its `id` (events in between are kept).
async fn call(ws: &mut Ws, text: &str, events: &mut Vec<Value>) -> Value {
    let id = serde_json::from_str::<Value>(text).unwrap()["id"].clone();
    ws.send(Message::text(text)).await.unwrap();
    loop {
        let v = next_json(ws).await;
        if v.get("id") == Some(&id) && v.get("status").is_some() {
            return v;
        }
        events.push(v);
    }
}

fn assert_error(resp: &Value, status: u64, code: i64, msg: &str) {
    assert_eq!(resp["status"], json!(status), "{resp}");
    assert_eq!(resp["error"], json!({"code": code, "msg": msg}), "{resp}");
    assert!(resp.get("result").is_none(), "{resp}");
}

/// A plain HTTP request; returns the status and the body.
async fn http(addr: std::net::SocketAddr, method: &str, target: &str, api_key: Option<&str>) -> (u16, Value) {
    http_form(addr, method, target, api_key, "").await
}

/// An HTTP request with a form body; returns the status and the body.
async fn http_form(
    addr: std::net::SocketAddr,
    method: &str,
    target: &str,
    api_key: Option<&str>,
    form: &str,
) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let key = api_key.map(|k| format!("X-MBX-APIKEY: {k}\r\n")).unwrap_or_default();
    let len = form.len();
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\n{key}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{form}"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    timeout(PATIENCE, s.read_to_end(&mut buf)).await.unwrap().unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.split(' ').nth(1).unwrap().parse().unwrap(), serde_json::from_str(body).unwrap())
}

fn ws_url(sim: &Simulator, venue: &str, path: &str) -> String {
    format!("ws://{}/{venue}{path}", sim.addr())
}

#[test]
fn wrong_signature_stale_timestamp_and_unknown_key_get_binance_errors_over_the_socket() {
    let sim = start();
    hmac_account(&sim, SPOT, "spot-key-1", "spot-secret-1");
    hmac_account(&sim, USDM, "usdm-key-1", "usdm-secret-1");
    runtime().block_on(async {
        let mut ev = Vec::new();
        for (venue, path, key, sec) in
            [(SPOT, "/ws-api/v3", "spot-key-1", "spot-secret-1"), (USDM, "/ws-fapi/v1", "usdm-key-1", "usdm-secret-1")]
        {
            let mut ws = connect(&ws_url(&sim, venue, path)).await;
            let order = [
                ("symbol", "BTCUSDT"),
                ("side", "BUY"),
                ("type", "LIMIT"),
                ("timeInForce", "GTC"),
                ("price", "100"),
                ("quantity", "0.01"),
            ];
            // Signed with another secret.
            let r = call(
                &mut ws,
                &request(1, "order.place", &order, key, Some(now_ms()), Sign::Hmac("not-the-secret")),
                &mut ev,
            )
            .await;
            assert_error(&r, 400, -1022, "Signature for this request is not valid.");
            // A signature of the right length that is not the request's.
            let r = call(
                &mut ws,
                &request(2, "order.place", &order, key, Some(now_ms()), Sign::Given(&"ab".repeat(32))),
                &mut ev,
            )
            .await;
            assert_error(&r, 400, -1022, "Signature for this request is not valid.");
            // Correctly signed, but 10 s old with the default 5 s recvWindow.
            let r = call(
                &mut ws,
                &request(3, "order.place", &order, key, Some(now_ms() - 10_000), Sign::Hmac(sec)),
                &mut ev,
            )
            .await;
            assert_error(&r, 400, -1021, "Timestamp for this request is outside of the recvWindow.");
            // The same age passes with a 60 s recvWindow... up to the signature check, which a
            // wrong secret then fails: the window was accepted.
            let mut wide = order.to_vec();
            wide.push(("recvWindow", "60000"));
            let r = call(
                &mut ws,
                &request(4, "order.place", &wide, key, Some(now_ms() - 10_000), Sign::Hmac("x")),
                &mut ev,
            )
            .await;
            assert_error(&r, 400, -1022, "Signature for this request is not valid.");
            // From the future.
            let r = call(
                &mut ws,
                &request(5, "order.place", &order, key, Some(now_ms() + 5_000), Sign::Hmac(sec)),
                &mut ev,
            )
            .await;
            assert_error(&r, 400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.");
            // An unknown key, and a key of the other venue.
            let r =
                call(&mut ws, &request(6, "order.place", &order, "nobody", Some(now_ms()), Sign::Hmac(sec)), &mut ev)
                    .await;
            assert_error(&r, 401, -2015, "Invalid API-key, IP, or permissions for action.");
            let other = if venue == SPOT { "usdm-key-1" } else { "spot-key-1" };
            let r = call(
                &mut ws,
                &request(
                    7,
                    "order.status",
                    &[("symbol", "BTCUSDT"), ("orderId", "1")],
                    other,
                    Some(now_ms()),
                    Sign::Hmac(sec),
                ),
                &mut ev,
            )
            .await;
            assert_error(&r, 401, -2015, "Invalid API-key, IP, or permissions for action.");
            // Missing pieces.
            let r = call(&mut ws, &request(8, "order.place", &order, key, None, Sign::Hmac(sec)), &mut ev).await;
            assert_error(&r, 400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.");
            let r = call(&mut ws, &request(9, "order.place", &order, key, Some(now_ms()), Sign::None), &mut ev).await;
            assert_error(&r, 400, -1102, "Mandatory parameter 'apiKey' was not sent, was empty/null, or malformed.");
            let mut wider = order.to_vec();
            wider.push(("recvWindow", "60001"));
            let r =
                call(&mut ws, &request(10, "order.place", &wider, key, Some(now_ms()), Sign::Hmac(sec)), &mut ev).await;
            assert_error(&r, 400, -1102, "'recvWindow' contains unexpected value. Cannot be greater than 60000.");
            // A well-signed request for a symbol the venue does not list: verified, then refused.
            let bad_symbol = [("symbol", "XRPUSDT"), ("orderId", "1")];
            let r =
                call(&mut ws, &request(11, "order.status", &bad_symbol, key, Some(now_ms()), Sign::Hmac(sec)), &mut ev)
                    .await;
            assert_error(&r, 400, -1121, "Invalid symbol.");
            // Weight is counted per key and reported.
            let limits = r["rateLimits"].as_array().unwrap();
            assert_eq!(limits.len(), 1, "{r}");
            assert_eq!(limits[0]["rateLimitType"], "REQUEST_WEIGHT");
            assert_eq!(limits[0]["interval"], "MINUTE");
            assert_eq!(limits[0]["intervalNum"], 1);
            assert_eq!(limits[0]["limit"], if venue == SPOT { 6000 } else { 2400 });
            assert!(limits[0]["count"].as_u64().unwrap() >= if venue == SPOT { 4 } else { 1 }, "{r}");
            // Public: the server time.
            let before = now_ms();
            let r = call(&mut ws, r#"{"id":"t","method":"time"}"#, &mut ev).await;
            assert_eq!(r["status"], 200);
            let t = r["result"]["serverTime"].as_i64().unwrap();
            assert!(t >= before && t <= now_ms(), "{r}");
            // Not JSON-RPC of this venue.
            let r = call(&mut ws, r#"{"id":12,"method":"order.teleport"}"#, &mut ev).await;
            assert_eq!(r["status"], 400);
            assert_eq!(r["error"]["code"], -1102);
        }
        assert!(ev.is_empty(), "no events without a subscription: {ev:?}");

        // REST: the query string as sent is what is signed.
        let addr = sim.addr();
        let ts = now_ms();
        let query = format!("symbol=BTCUSDT&timestamp={ts}");
        let good = HmacSigner::new(&secret("spot-secret-1")).sign_hex(query.as_bytes()).as_str().to_owned();
        let bad = HmacSigner::new(&secret("spot-secret-2")).sign_hex(query.as_bytes()).as_str().to_owned();
        let (status, body) =
            http(addr, "GET", &format!("/{SPOT}/api/v3/openOrders?{query}&signature={bad}"), Some("spot-key-1")).await;
        assert_eq!((status, body), (400, json!({"code": -1022, "msg": "Signature for this request is not valid."})));
        let (status, body) =
            http(addr, "GET", &format!("/{SPOT}/api/v3/openOrders?{query}&signature={good}"), Some("nobody")).await;
        assert_eq!(
            (status, body),
            (401, json!({"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}))
        );
        let old = format!("symbol=BTCUSDT&timestamp={}", ts - 7_000);
        let sig = HmacSigner::new(&secret("spot-secret-1")).sign_hex(old.as_bytes()).as_str().to_owned();
        let (status, body) =
            http(addr, "GET", &format!("/{SPOT}/api/v3/openOrders?{old}&signature={sig}"), Some("spot-key-1")).await;
        assert_eq!(
            (status, body),
            (400, json!({"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}))
        );
        let (status, body) =
            http(addr, "GET", &format!("/{SPOT}/api/v3/openOrders?{query}&signature={good}"), None).await;
        assert_eq!((status, body), (401, json!({"code": -2014, "msg": "API-key format invalid."})));
        let (status, _) = http(addr, "GET", &format!("/{SPOT}/api/v3/nothingHere?{query}"), Some("spot-key-1")).await;
        assert_eq!(status, 404);
    });
    sim.shutdown().unwrap();
}

/// Sends 101 `order.place` requests for an unlisted symbol (each passes verification, so each
/// counts against the ORDERS limit) over one WS API connection, all inside one 10 s window, and
/// returns the 101 answers.
async fn place_101_unlisted_orders(sim: &Simulator, key: &str, secret: &str) -> Vec<Value> {
    let mut ev = Vec::new();
    let mut ws = connect(&ws_url(sim, SPOT, "/ws-api/v3")).await;
    // Windows start at 00, 10, 20… seconds: start in the first half of one.
    while now_ms() % 10_000 > 5_000 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let order = [
        ("symbol", "XRPUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("price", "1"),
        ("quantity", "1"),
    ];
    let mut answers = Vec::with_capacity(101);
    for i in 0..101 {
        let req = request(i, "order.place", &order, key, Some(now_ms()), Sign::Hmac(secret));
        answers.push(call(&mut ws, &req, &mut ev).await);
    }
    answers
}

#[test]
fn new_orders_beyond_the_limit_get_429_and_minus_1015() {
    let sim = start();
    hmac_account(&sim, SPOT, "spot-rate-key", "spot-rate-secret");
    runtime().block_on(async {
        let answers = place_101_unlisted_orders(&sim, "spot-rate-key", "spot-rate-secret").await;
        for a in &answers[..100] {
            assert_error(a, 400, -1121, "Invalid symbol.");
        }
        let last = &answers[100];
        assert_error(last, 429, -1015, "Too many new orders; current limit is 100 orders per 10 SECOND.");
        let orders = &last["rateLimits"][0];
        assert_eq!(
            orders,
            &json!({"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100, "count": 100})
        );
    });
    sim.shutdown().unwrap();
}

#[test]
fn with_binance_rate_limits_off_the_101st_order_is_not_refused_but_still_counted() {
    let cfg = SimConfig { seed: 5, binance_rate_limits: false, ..SimConfig::default() };
    let sim = Simulator::start(&cfg, &registry(), "127.0.0.1:0".parse().unwrap()).unwrap();
    hmac_account(&sim, SPOT, "spot-bench-key", "spot-bench-secret");
    runtime().block_on(async {
        let answers = place_101_unlisted_orders(&sim, "spot-bench-key", "spot-bench-secret").await;
        for a in &answers {
            assert_error(a, 400, -1121, "Invalid symbol.");
        }
        let last = &answers[100];
        assert_eq!(
            &last["rateLimits"][0],
            &json!({"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100, "count": 101})
        );
    });
    sim.shutdown().unwrap();
}

#[test]
fn ed25519_session_logon_binds_the_key_and_a_bad_logon_signature_is_refused() {
    let sim = start();
    let pem = ed25519_pem(7);
    sim.add_account(
        SPOT,
        Credentials { api_key: secret("ed-key"), key: SecretKey::Ed25519(secret(&pem)), passphrase: None },
    );
    hmac_account(&sim, SPOT, "hmac-key", "hmac-secret");
    runtime().block_on(async {
        let mut ev = Vec::new();
        let mut ws = connect(&ws_url(&sim, SPOT, "/ws-api/v3")).await;
        let r = call(&mut ws, r#"{"id":1,"method":"session.status"}"#, &mut ev).await;
        assert_eq!(r["status"], 200);
        assert_eq!(r["result"]["apiKey"], Value::Null);
        assert_eq!(r["result"]["userDataStream"], false);
        // Signed by another Ed25519 key.
        let r = call(
            &mut ws,
            &request(2, "session.logon", &[], "ed-key", Some(now_ms()), Sign::Ed25519(&ed25519_pem(8))),
            &mut ev,
        )
        .await;
        assert_error(&r, 400, -1022, "Signature for this request is not valid.");
        // HMAC keys cannot log on.
        let r = call(
            &mut ws,
            &request(3, "session.logon", &[], "hmac-key", Some(now_ms()), Sign::Hmac("hmac-secret")),
            &mut ev,
        )
        .await;
        assert_error(&r, 401, -2015, "Invalid API-key, IP, or permissions for action.");
        // Subscribing needs a logged-on session.
        let r = call(&mut ws, r#"{"id":4,"method":"userDataStream.subscribe"}"#, &mut ev).await;
        assert_eq!(r["error"]["code"], -2015, "{r}");
        let before = now_ms();
        let r =
            call(&mut ws, &request(5, "session.logon", &[], "ed-key", Some(now_ms()), Sign::Ed25519(&pem)), &mut ev)
                .await;
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["result"]["apiKey"], "ed-key");
        assert!(r["result"]["authorizedSince"].as_i64().unwrap() >= before);
        // Unsigned requests now act for the key, but still need a fresh timestamp.
        let status = [("symbol", "BTCUSDT"), ("orderId", "1")];
        let r =
            call(&mut ws, &request(6, "order.status", &status, "", Some(now_ms() - 6_000), Sign::None), &mut ev).await;
        assert_error(&r, 400, -1021, "Timestamp for this request is outside of the recvWindow.");
        let r = call(
            &mut ws,
            &request(7, "openOrders.status", &[("symbol", "XRPUSDT")], "", Some(now_ms()), Sign::None),
            &mut ev,
        )
        .await;
        assert_error(&r, 400, -1121, "Invalid symbol.");
        let r = call(&mut ws, r#"{"id":8,"method":"userDataStream.subscribe"}"#, &mut ev).await;
        assert_eq!(r["result"], json!({"subscriptionId": 0}), "{r}");
        let r = call(&mut ws, r#"{"id":9,"method":"session.status"}"#, &mut ev).await;
        assert_eq!(
            (r["result"]["apiKey"].clone(), r["result"]["userDataStream"].clone()),
            (json!("ed-key"), json!(true))
        );
        let r = call(&mut ws, r#"{"id":10,"method":"session.logout"}"#, &mut ev).await;
        assert_eq!((r["result"]["apiKey"].clone(), r["result"]["userDataStream"].clone()), (Value::Null, json!(false)));
        let r = call(
            &mut ws,
            &request(11, "openOrders.status", &[("symbol", "BTCUSDT")], "", Some(now_ms()), Sign::None),
            &mut ev,
        )
        .await;
        assert_error(&r, 400, -1102, "Mandatory parameter 'apiKey' was not sent, was empty/null, or malformed.");
        assert!(ev.is_empty(), "{ev:?}");
    });
    sim.shutdown().unwrap();
}

#[test]
fn usdm_listen_keys_route_user_streams_and_others_fall_through_to_public_streams() {
    let sim = start();
    hmac_account(&sim, USDM, "usdm-lk-key", "usdm-lk-secret");
    runtime().block_on(async {
        let mut ev = Vec::new();
        let mut api = connect(&ws_url(&sim, USDM, "/ws-fapi/v1")).await;
        let r =
            call(&mut api, r#"{"id":1,"method":"userDataStream.start","params":{"apiKey":"usdm-lk-key"}}"#, &mut ev)
                .await;
        assert_eq!(r["status"], 200, "{r}");
        let key = r["result"]["listenKey"].as_str().unwrap().to_owned();
        assert_eq!(key.len(), 64);
        let r = call(&mut api, r#"{"id":2,"method":"userDataStream.ping","params":{"apiKey":"usdm-lk-key"}}"#, &mut ev)
            .await;
        assert_eq!(r["result"]["listenKey"], key.as_str());
        let r =
            call(&mut api, r#"{"id":3,"method":"userDataStream.start","params":{"apiKey":"nobody"}}"#, &mut ev).await;
        assert_error(&r, 401, -2015, "Invalid API-key, IP, or permissions for action.");
        // REST hands out the same key to the same account.
        let (status, body) = http(sim.addr(), "POST", &format!("/{USDM}/fapi/v1/listenKey"), Some("usdm-lk-key")).await;
        assert_eq!((status, body), (200, json!({"listenKey": key})));
        // The user stream connects; an unknown key is a public stream name, refused as such;
        // public raw streams are unaffected.
        let mut stream = connect(&ws_url(&sim, USDM, &format!("/ws/{key}"))).await;
        assert!(connect_async(ws_url(&sim, USDM, &format!("/ws/{}", "0".repeat(64)))).await.is_err());
        let mut public = connect(&ws_url(&sim, USDM, "/ws/btcusdt@bookTicker")).await;
        let tick = next_json(&mut public).await;
        assert_eq!(tick["e"], "bookTicker");
        // Closing the key ends the stream with listenKeyExpired.
        let r = call(&mut api, r#"{"id":4,"method":"userDataStream.stop","params":{"apiKey":"usdm-lk-key"}}"#, &mut ev)
            .await;
        assert_eq!(r["result"], json!({}));
        let expired = next_json(&mut stream).await;
        assert_eq!(expired["e"], "listenKeyExpired");
        assert_eq!(expired["listenKey"], key.as_str());
        let r = call(&mut api, r#"{"id":5,"method":"userDataStream.ping","params":{"apiKey":"usdm-lk-key"}}"#, &mut ev)
            .await;
        assert_error(&r, 400, -1125, "This listenKey does not exist.");
        assert!(connect_async(ws_url(&sim, USDM, &format!("/ws/{key}"))).await.is_err());
    });
    sim.shutdown().unwrap();
}

/// The best bid and ask of `venue`'s BTCUSDT (REST depth), as mantissas at `scale`.
async fn top(sim: &Simulator, venue: &str, scale: crossbar_engine::fixed::Scale) -> (i64, i64) {
    let path = if venue == SPOT { "/api/v3/depth" } else { "/fapi/v1/depth" };
    let (status, body) = http(sim.addr(), "GET", &format!("/{venue}{path}?symbol=BTCUSDT&limit=5"), None).await;
    assert_eq!(status, 200, "{body}");
    let px = |side: &str| {
        let s = body[side][0][0].as_str().unwrap();
        crossbar_engine::fixed::Px::parse(s.as_bytes(), scale).unwrap().0
    };
    (px("bids"), px("asks"))
}

fn text(m: i64, scale: crossbar_engine::fixed::Scale) -> String {
    crossbar_engine::fixed::display(m, scale).to_string()
}

/// The next event frame of a session: those that arrived while waiting for a response first.
async fn next_frame(ws: &mut Ws, events: &mut Vec<Value>) -> Value {
    if events.is_empty() { next_json(ws).await } else { events.remove(0) }
}

/// The next `executionReport` frame (skipping `outboundAccountPosition` frames).
async fn next_event(ws: &mut Ws, events: &mut Vec<Value>) -> Value {
    loop {
        let e = next_frame(ws, events).await;
        if e["event"]["e"] != "outboundAccountPosition" {
            return e;
        }
    }
}

#[test]
fn spot_orders_are_placed_queried_cancelled_and_reported_as_execution_reports() {
    let sim = start();
    hmac_account(&sim, SPOT, "spot-trade-key", "spot-trade-secret");
    let (key, sec) = ("spot-trade-key", "spot-trade-secret");
    let inst = registry().instruments()[0].clone();
    runtime().block_on(async {
        let (bid, ask) = top(&sim, SPOT, inst.price_scale).await;
        let tick = inst.tick.0;
        let low = text(bid / 2 / tick * tick, inst.price_scale);
        let high = text(ask * 2 / tick * tick, inst.price_scale);
        let mut ev = Vec::new();
        let mut ws = connect(&ws_url(&sim, SPOT, "/ws-api/v3")).await;
        let r = call(
            &mut ws,
            &request(1, "userDataStream.subscribe.signature", &[], key, Some(now_ms()), Sign::Hmac(sec)),
            &mut ev,
        )
        .await;
        assert_eq!(r["result"], json!({"subscriptionId": 0}), "{r}");

        // (1) A correctly HMAC-signed resting order: accepted, reported.
        let order = [
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("price", low.as_str()),
            ("quantity", "0.01"),
            ("newClientOrderId", "xb1001"),
        ];
        let r = call(&mut ws, &request(2, "order.place", &order, key, Some(now_ms()), Sign::Hmac(sec)), &mut ev).await;
        assert_eq!(r["status"], 200, "{r}");
        let res = &r["result"];
        assert_eq!(res["clientOrderId"], "xb1001");
        assert_eq!(res["symbol"], "BTCUSDT");
        assert_eq!(res["status"], "NEW");
        assert_eq!(res["price"], low.as_str());
        assert_eq!(res["origQty"], "0.01");
        assert_eq!(res["executedQty"], "0");
        assert_eq!(res["fills"], json!([]));
        assert_eq!(res["orderListId"], -1);
        let order_id = res["orderId"].as_u64().unwrap();
        let limits = r["rateLimits"].as_array().unwrap();
        assert_eq!(limits[0]["rateLimitType"], "ORDERS");
        assert_eq!(limits[0]["count"], 1);
        let e = next_event(&mut ws, &mut ev).await;
        assert_eq!(e["subscriptionId"], 0, "{e}");
        let x = &e["event"];
        assert_eq!(
            (x["e"].clone(), x["s"].clone(), x["c"].clone(), x["S"].clone(), x["o"].clone(), x["f"].clone()),
            (json!("executionReport"), json!("BTCUSDT"), json!("xb1001"), json!("BUY"), json!("LIMIT"), json!("GTC"))
        );
        assert_eq!((x["x"].clone(), x["X"].clone(), x["i"].clone()), (json!("NEW"), json!("NEW"), json!(order_id)));
        assert_eq!(
            (x["q"].clone(), x["p"].clone(), x["z"].clone(), x["t"].clone()),
            (json!("0.01"), json!(low), json!("0"), json!(-1))
        );
        assert_eq!(x["w"], true);
        // Then the balances it moved: the order's notional and its worst-case (taker) fee are
        // locked in USDT.
        let e = next_frame(&mut ws, &mut ev).await;
        assert_eq!(e["event"]["e"], "outboundAccountPosition", "{e}");
        let usdt = e["event"]["B"].as_array().unwrap().iter().find(|b| b["a"] == "USDT").unwrap().clone();
        let notional = low.parse::<rust_decimal::Decimal>().unwrap()
            * rust_decimal::Decimal::new(1, 2)
            * (rust_decimal::Decimal::ONE + inst.taker_fee);
        assert_eq!(usdt["l"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap(), notional, "{e}");
        assert_eq!(e["event"]["B"].as_array().unwrap().len(), 2);

        // Queried by id and by client id, listed as open.
        let q = [("symbol", "BTCUSDT"), ("orderId", &order_id.to_string())];
        let r = call(&mut ws, &request(3, "order.status", &q, key, Some(now_ms()), Sign::Hmac(sec)), &mut ev).await;
        assert_eq!(
            (r["result"]["status"].clone(), r["result"]["clientOrderId"].clone()),
            (json!("NEW"), json!("xb1001")),
            "{r}"
        );
        let r = call(
            &mut ws,
            &request(4, "openOrders.status", &[("symbol", "BTCUSDT")], key, Some(now_ms()), Sign::Hmac(sec)),
            &mut ev,
        )
        .await;
        let open = r["result"].as_array().unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0]["orderId"], order_id);
        // Duplicate client id while it is open.
        let r = call(&mut ws, &request(5, "order.place", &order, key, Some(now_ms()), Sign::Hmac(sec)), &mut ev).await;
        assert_error(&r, 400, -2010, "Duplicate order sent.");

        // Cancelled by client id, then unknown.
        let c = [("symbol", "BTCUSDT"), ("origClientOrderId", "xb1001")];
        let r = call(&mut ws, &request(6, "order.cancel", &c, key, Some(now_ms()), Sign::Hmac(sec)), &mut ev).await;
        assert_eq!(r["result"]["status"], "CANCELED", "{r}");
        assert_eq!(r["result"]["origClientOrderId"], "xb1001");
        let e = next_event(&mut ws, &mut ev).await;
        assert_eq!(
            (e["event"]["x"].clone(), e["event"]["X"].clone(), e["event"]["C"].clone()),
            (json!("CANCELED"), json!("CANCELED"), json!("xb1001"))
        );
        let r = call(&mut ws, &request(7, "order.cancel", &c, key, Some(now_ms()), Sign::Hmac(sec)), &mut ev).await;
        assert_error(&r, 400, -2011, "Unknown order sent.");
        let r = call(
            &mut ws,
            &request(
                8,
                "order.status",
                &[("symbol", "BTCUSDT"), ("orderId", "987654321")],
                key,
                Some(now_ms()),
                Sign::Hmac(sec),
            ),
            &mut ev,
        )
        .await;
        assert_error(&r, 400, -2013, "Order does not exist.");

        // Refusals: more BTC than the account holds (100), off-tick price, off-lot quantity.
        let big = [
            ("symbol", "BTCUSDT"),
            ("side", "SELL"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("price", high.as_str()),
            ("quantity", "1000"),
        ];
        let r = call(&mut ws, &request(9, "order.place", &big, key, Some(now_ms()), Sign::Hmac(sec)), &mut ev).await;
        assert_error(&r, 400, -2010, "Account has insufficient balance for requested action.");
        let off = [
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("price", "100.005"),
            ("quantity", "0.01"),
        ];
        let r = call(&mut ws, &request(10, "order.place", &off, key, Some(now_ms()), Sign::Hmac(sec)), &mut ev).await;
        assert_error(&r, 400, -1013, "Filter failure: PRICE_FILTER");
        let lot = [
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("price", low.as_str()),
            ("quantity", "0.000001"),
        ];
        let r = call(&mut ws, &request(11, "order.place", &lot, key, Some(now_ms()), Sign::Hmac(sec)), &mut ev).await;
        assert_error(&r, 400, -1013, "Filter failure: LOT_SIZE");
        let r = call(&mut ws, &request(12, "order.place", &order[..5], key, Some(now_ms()), Sign::Hmac(sec)), &mut ev)
            .await;
        assert_error(&r, 400, -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.");

        // A market buy takes liquidity: FULL answer with its fills, TRADE reports, myTrades.
        let mkt = [
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "MARKET"),
            ("quantity", "0.002"),
            ("newClientOrderId", "xb1002"),
        ];
        let r = call(&mut ws, &request(13, "order.place", &mkt, key, Some(now_ms()), Sign::Hmac(sec)), &mut ev).await;
        assert_eq!(r["result"]["status"], "FILLED", "{r}");
        assert_eq!(r["result"]["executedQty"], "0.002");
        let fills = r["result"]["fills"].as_array().unwrap();
        assert!(!fills.is_empty());
        let filled: i64 = fills
            .iter()
            .map(|f| {
                crossbar_engine::fixed::Qty::parse(f["qty"].as_str().unwrap().as_bytes(), inst.qty_scale).unwrap().0
            })
            .sum();
        assert_eq!(filled, 200);
        let mut trades = 0;
        loop {
            let e = next_event(&mut ws, &mut ev).await;
            assert_eq!(e["event"]["c"], "xb1002", "{e}");
            if e["event"]["x"] == "TRADE" {
                trades += 1;
                assert_eq!(e["event"]["m"], false);
                assert!(e["event"]["t"].as_i64().unwrap() > 0);
            }
            if e["event"]["X"] == "FILLED" {
                break;
            }
        }
        assert_eq!(trades, fills.len());
        let r = call(
            &mut ws,
            &request(14, "myTrades", &[("symbol", "BTCUSDT")], key, Some(now_ms()), Sign::Hmac(sec)),
            &mut ev,
        )
        .await;
        let mine = r["result"].as_array().unwrap();
        assert_eq!(mine.len(), fills.len(), "{r}");
        assert!(mine.iter().all(|t| t["isBuyer"] == true && t["isMaker"] == false));
        let r = call(&mut ws, &request(15, "account.status", &[], key, Some(now_ms()), Sign::Hmac(sec)), &mut ev).await;
        let btc = r["result"]["balances"].as_array().unwrap().iter().find(|b| b["asset"] == "BTC").unwrap().clone();
        assert_eq!(btc["free"], "100.002", "{r}");

        // REST: the same order through the signed query.
        let query = format!("symbol=BTCUSDT&origClientOrderId=xb1002&timestamp={}", now_ms());
        let sig = HmacSigner::new(&secret(sec)).sign_hex(query.as_bytes()).as_str().to_owned();
        let (status, body) =
            http(sim.addr(), "GET", &format!("/{SPOT}/api/v3/order?{query}&signature={sig}"), Some(key)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (body["clientOrderId"].clone(), body["status"].clone(), body["executedQty"].clone()),
            (json!("xb1002"), json!("FILLED"), json!("0.002"))
        );
    });
    sim.shutdown().unwrap();
}

#[test]
fn after_ed25519_logon_unsigned_orders_are_accepted() {
    let sim = start();
    let pem = ed25519_pem(9);
    sim.add_account(
        SPOT,
        Credentials { api_key: secret("ed-trader"), key: SecretKey::Ed25519(secret(&pem)), passphrase: None },
    );
    let inst = registry().instruments()[0].clone();
    runtime().block_on(async {
        let (bid, _) = top(&sim, SPOT, inst.price_scale).await;
        let low = text(bid / 2 / inst.tick.0 * inst.tick.0, inst.price_scale);
        let mut ev = Vec::new();
        let mut ws = connect(&ws_url(&sim, SPOT, "/ws-api/v3")).await;
        let r =
            call(&mut ws, &request(1, "session.logon", &[], "ed-trader", Some(now_ms()), Sign::Ed25519(&pem)), &mut ev)
                .await;
        assert_eq!(r["status"], 200, "{r}");
        let r = call(&mut ws, r#"{"id":2,"method":"userDataStream.subscribe"}"#, &mut ev).await;
        assert_eq!(r["result"]["subscriptionId"], 0);
        let order = [
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("price", low.as_str()),
            ("quantity", "0.01"),
            ("newClientOrderId", "xb7"),
        ];
        let r = call(&mut ws, &request(3, "order.place", &order, "", Some(now_ms()), Sign::None), &mut ev).await;
        assert_eq!((r["status"].clone(), r["result"]["clientOrderId"].clone()), (json!(200), json!("xb7")), "{r}");
        let e = next_event(&mut ws, &mut ev).await;
        assert_eq!((e["event"]["c"].clone(), e["event"]["x"].clone()), (json!("xb7"), json!("NEW")));
        // Ed25519 signatures also authorize ad hoc requests.
        let c = [("symbol", "BTCUSDT"), ("origClientOrderId", "xb7")];
        let r =
            call(&mut ws, &request(4, "order.cancel", &c, "ed-trader", Some(now_ms()), Sign::Ed25519(&pem)), &mut ev)
                .await;
        assert_eq!(r["result"]["status"], "CANCELED", "{r}");
        let r = call(
            &mut ws,
            &request(5, "order.cancel", &c, "ed-trader", Some(now_ms()), Sign::Ed25519(&ed25519_pem(10))),
            &mut ev,
        )
        .await;
        assert_error(&r, 400, -1022, "Signature for this request is not valid.");
    });
    sim.shutdown().unwrap();
}

#[test]
fn usdm_orders_flow_to_the_listen_key_stream_as_order_trade_updates() {
    let sim = start();
    hmac_account(&sim, USDM, "fut-key", "fut-secret");
    let (key, sec) = ("fut-key", "fut-secret");
    let inst = registry().instruments()[1].clone();
    runtime().block_on(async {
        let (bid, _) = top(&sim, USDM, inst.price_scale).await;
        let low = text(bid / 2 / inst.tick.0 * inst.tick.0, inst.price_scale);
        let mut ev = Vec::new();
        let mut api = connect(&ws_url(&sim, USDM, "/ws-fapi/v1")).await;
        let r = call(
            &mut api,
            &format!(r#"{{"id":1,"method":"userDataStream.start","params":{{"apiKey":"{key}"}}}}"#),
            &mut ev,
        )
        .await;
        let lk = r["result"]["listenKey"].as_str().unwrap().to_owned();
        let mut stream = connect(&ws_url(&sim, USDM, &format!("/ws/{lk}"))).await;
        let order = [
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("price", low.as_str()),
            ("quantity", "0.01"),
            ("newClientOrderId", "xb42"),
        ];
        let r = call(&mut api, &request(2, "order.place", &order, key, Some(now_ms()), Sign::Hmac(sec)), &mut ev).await;
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(
            (r["result"]["clientOrderId"].clone(), r["result"]["status"].clone(), r["result"]["positionSide"].clone()),
            (json!("xb42"), json!("NEW"), json!("BOTH"))
        );
        let order_id = r["result"]["orderId"].as_u64().unwrap();
        let u = next_json(&mut stream).await;
        assert_eq!(u["e"], "ORDER_TRADE_UPDATE", "{u}");
        let o = &u["o"];
        assert_eq!(
            (o["s"].clone(), o["c"].clone(), o["S"].clone(), o["o"].clone(), o["f"].clone()),
            (json!("BTCUSDT"), json!("xb42"), json!("BUY"), json!("LIMIT"), json!("GTC"))
        );
        assert_eq!(
            (o["x"].clone(), o["X"].clone(), o["i"].clone(), o["q"].clone(), o["p"].clone()),
            (json!("NEW"), json!("NEW"), json!(order_id), json!("0.01"), json!(low))
        );
        let c = [("symbol", "BTCUSDT"), ("orderId", &order_id.to_string())];
        let r = call(&mut api, &request(3, "order.cancel", &c, key, Some(now_ms()), Sign::Hmac(sec)), &mut ev).await;
        assert_eq!(r["result"]["status"], "CANCELED", "{r}");
        let u = next_json(&mut stream).await;
        assert_eq!((u["o"]["x"].clone(), u["o"]["X"].clone()), (json!("CANCELED"), json!("CANCELED")));
        let r = call(&mut api, &request(4, "order.cancel", &c, key, Some(now_ms()), Sign::Hmac(sec)), &mut ev).await;
        assert_error(&r, 400, -2011, "Unknown order sent.");
        let r = call(
            &mut api,
            &request(
                5,
                "order.status",
                &[("symbol", "BTCUSDT"), ("orderId", "55555")],
                key,
                Some(now_ms()),
                Sign::Hmac(sec),
            ),
            &mut ev,
        )
        .await;
        assert_error(&r, 400, -2013, "Order does not exist.");
        // Margin: 10 000 000 USDT at leverage 10 does not cover 100 000 000 BTC of notional.
        let huge = [
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("price", low.as_str()),
            ("quantity", "100000"),
        ];
        let r = call(&mut api, &request(6, "order.place", &huge, key, Some(now_ms()), Sign::Hmac(sec)), &mut ev).await;
        assert_error(&r, 400, -2019, "Margin is insufficient.");
        let off = [
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("price", low.as_str()),
            ("quantity", "0.0101"),
        ];
        let r = call(&mut api, &request(7, "order.place", &off, key, Some(now_ms()), Sign::Hmac(sec)), &mut ev).await;
        assert_error(&r, 400, -1111, "Precision is over the maximum defined for this asset.");
        // A market buy fills and opens a position.
        let mkt = [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.003")];
        let r = call(&mut api, &request(8, "order.place", &mkt, key, Some(now_ms()), Sign::Hmac(sec)), &mut ev).await;
        assert_eq!(
            (r["result"]["status"].clone(), r["result"]["executedQty"].clone()),
            (json!("FILLED"), json!("0.003")),
            "{r}"
        );
        loop {
            let u = next_json(&mut stream).await;
            if u["o"]["x"] == "TRADE" {
                assert_eq!(u["o"]["N"], "USDT");
                assert!(u["o"]["t"].as_u64().unwrap() > 0);
            }
            if u["o"]["X"] == "FILLED" {
                assert_ne!(u["o"]["ap"], "0");
                break;
            }
        }
        let a = next_json(&mut stream).await;
        assert_eq!(a["e"], "ACCOUNT_UPDATE", "{a}");
        assert_eq!(a["a"]["P"][0]["s"], "BTCUSDT");
        assert_eq!(a["a"]["P"][0]["pa"], "0.003");
        assert_eq!(a["a"]["B"][0]["a"], "USDT");
        let r = call(&mut api, &request(10, "v2/account.balance", &[], key, Some(now_ms()), Sign::Hmac(sec)), &mut ev)
            .await;
        let usdt = r["result"].as_array().unwrap().iter().find(|b| b["asset"] == "USDT").unwrap().clone();
        assert_eq!(usdt["balance"], a["a"]["B"][0]["wb"], "{r}");
        let r = call(
            &mut api,
            &request(9, "v2/account.position", &[("symbol", "BTCUSDT")], key, Some(now_ms()), Sign::Hmac(sec)),
            &mut ev,
        )
        .await;
        let pos = r["result"].as_array().unwrap();
        assert_eq!(pos.len(), 1, "{r}");
        assert_eq!((pos[0]["symbol"].clone(), pos[0]["positionAmt"].clone()), (json!("BTCUSDT"), json!("0.003")));
        // REST positionRisk and cancel-all.
        let query = format!("symbol=BTCUSDT&timestamp={}", now_ms());
        let sig = HmacSigner::new(&secret(sec)).sign_hex(query.as_bytes()).as_str().to_owned();
        let (status, body) =
            http(sim.addr(), "GET", &format!("/{USDM}/fapi/v2/positionRisk?{query}&signature={sig}"), Some(key)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body[0]["positionAmt"], "0.003");
        assert_eq!(body[0]["leverage"], "10");
        let (status, body) =
            http(sim.addr(), "DELETE", &format!("/{USDM}/fapi/v1/allOpenOrders?{query}&signature={sig}"), Some(key))
                .await;
        assert_eq!(
            (status, body),
            (200, json!({"code": 200, "msg": "The operation of cancel all open order is done."}))
        );
    });
    sim.shutdown().unwrap();
}

#[test]
fn rest_fallback_signs_query_then_body_with_hmac_and_ed25519() {
    let sim = start();
    hmac_account(&sim, SPOT, "rest-hmac", "rest-secret");
    let pem = ed25519_pem(11);
    sim.add_account(
        SPOT,
        Credentials { api_key: secret("rest-ed"), key: SecretKey::Ed25519(secret(&pem)), passphrase: None },
    );
    let inst = registry().instruments()[0].clone();
    runtime().block_on(async {
        let (bid, _) = top(&sim, SPOT, inst.price_scale).await;
        let low = text(bid / 2 / inst.tick.0 * inst.tick.0, inst.price_scale);
        // HMAC over the query string followed by the body, as sent.
        let query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC";
        let body = format!("quantity=0.01&price={low}&newClientOrderId=xb900&timestamp={}", now_ms());
        let sig =
            HmacSigner::new(&secret("rest-secret")).sign_hex(format!("{query}{body}").as_bytes()).as_str().to_owned();
        let form = format!("{body}&signature={sig}");
        let (status, placed) =
            http_form(sim.addr(), "POST", &format!("/{SPOT}/api/v3/order?{query}"), Some("rest-hmac"), &form).await;
        assert_eq!(status, 200, "{placed}");
        assert_eq!((placed["clientOrderId"].clone(), placed["status"].clone()), (json!("xb900"), json!("NEW")));
        // The same parameters signed as if joined with '&' are not what was sent.
        let wrong =
            HmacSigner::new(&secret("rest-secret")).sign_hex(format!("{query}&{body}").as_bytes()).as_str().to_owned();
        let (status, err) = http_form(
            sim.addr(),
            "POST",
            &format!("/{SPOT}/api/v3/order?{query}"),
            Some("rest-hmac"),
            &format!("{body}&signature={wrong}"),
        )
        .await;
        assert_eq!((status, err), (400, json!({"code": -1022, "msg": "Signature for this request is not valid."})));
        // Ed25519: base64, percent-encoded in the query; verified, then another account's
        // order is not found.
        let q = format!("symbol=BTCUSDT&origClientOrderId=xb900&timestamp={}", now_ms());
        let signer = Ed25519Signer::from_pkcs8_pem(&secret(&pem)).unwrap();
        let mut out = [0u8; ED25519_BASE64_LEN];
        let sig =
            signer.sign_base64_into(q.as_bytes(), &mut out).replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
        let (status, body) =
            http(sim.addr(), "GET", &format!("/{SPOT}/api/v3/order?{q}&signature={sig}"), Some("rest-ed")).await;
        assert_eq!((status, body), (400, json!({"code": -2013, "msg": "Order does not exist."})));
        let bad = signer
            .sign_base64_into(b"something else", &mut out)
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let (status, body) =
            http(sim.addr(), "GET", &format!("/{SPOT}/api/v3/order?{q}&signature={bad}"), Some("rest-ed")).await;
        assert_eq!((status, body), (400, json!({"code": -1022, "msg": "Signature for this request is not valid."})));
        let q = format!("symbol=BTCUSDT&origClientOrderId=xb900&timestamp={}", now_ms());
        let sig = HmacSigner::new(&secret("rest-secret")).sign_hex(q.as_bytes()).as_str().to_owned();
        let (status, body) =
            http(sim.addr(), "DELETE", &format!("/{SPOT}/api/v3/order?{q}&signature={sig}"), Some("rest-hmac")).await;
        assert_eq!(
            (status, body["status"].clone(), body["origClientOrderId"].clone()),
            (200, json!("CANCELED"), json!("xb900"))
        );
        let (status, body) =
            http(sim.addr(), "DELETE", &format!("/{SPOT}/api/v3/order?{q}&signature={sig}"), Some("rest-hmac")).await;
        assert_eq!((status, body), (400, json!({"code": -2011, "msg": "Unknown order sent."})));
    });
    sim.shutdown().unwrap();
}
