//! Bybit v5 order entry, both sides: the client session's frames and decoding (exact JSON,
//! exact events from frames shaped as Bybit's documentation prints them), and the simulator's
//! trade websocket, private stream and signed REST over real loopback sockets, refusing bad
//! signatures, stale timestamps and unknown keys with Bybit's codes.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbar_connectors::auth::{HEX_SIG_LEN, HmacSigner, SecretString, bybit as sign};
use crossbar_connectors::bybit::trade::{BybitSession, Stream, exec_id_hash, write_cancel, write_create};
use crossbar_connectors::order::{Credentials, OrderSession, SecretKey, SessionConfig, SessionInstrument};
use crossbar_connectors::sim::{SimConfig, Simulator};
use crossbar_connectors::venue::{GatewayKind, Protocol, VenueConfig};
use crossbar_engine::event::{
    ClientOrderId, Fill, NewOrder, OrderCommand, OrderEvent, OrderEventKind, OrderStamps, RejectReason, Side,
    TimeInForce,
};
use crossbar_engine::fixed::{Px, Qty, Scale};
use crossbar_engine::instrument::{InstrumentId, InstrumentKind, Registry, VenueId};
use hmac::{Hmac, Mac};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha2::Sha256;
use tungstenite::Message;

mod support;

#[global_allocator]
static ALLOC: support::Counting = support::Counting;

const KEY: &str = "sim-bybit-key-1";
const SECRET: &str = "sim-bybit-secret-XYZ";
const RECV_NS: u64 = 42;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/bybit_trade/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.trim_end().as_bytes().to_vec()
}

fn btc(id: u32) -> SessionInstrument {
    SessionInstrument {
        id: InstrumentId(id),
        symbol: "BTCUSDT".into(),
        kind: InstrumentKind::Perpetual,
        base: "BTC".into(),
        quote: "USDT".into(),
        price_scale: Scale::new(1).unwrap(),
        qty_scale: Scale::new(3).unwrap(),
        contract_size: Decimal::ONE,
    }
}

fn credentials(key: &str, secret: &str) -> Credentials {
    Credentials {
        api_key: SecretString::new(key.into()),
        key: SecretKey::Hmac(SecretString::new(secret.into())),
        passphrase: None,
    }
}

fn config(ws_url: &str, rest_url: &str, instruments: Vec<SessionInstrument>) -> SessionConfig {
    SessionConfig {
        venue: VenueId(0),
        venue_name: "bybit-linear".into(),
        protocol: Protocol::BybitLinear,
        ws_url: ws_url.into(),
        rest_url: rest_url.into(),
        credentials: credentials(KEY, SECRET),
        instruments,
        recv_window_ms: 5_000,
    }
}

fn order(id: u64, side: Side, px: i64, qty: i64, tif: TimeInForce, reduce_only: bool) -> NewOrder {
    NewOrder {
        client_id: ClientOrderId(id),
        instrument: InstrumentId(0),
        venue: VenueId(0),
        side,
        px: Px(px),
        qty: Qty(qty),
        tif,
        reduce_only,
    }
}

fn hmac_hex(secret: &str, payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

// ---- client: encoding and signing ---------------------------------------------------------

#[test]
fn order_create_and_cancel_frames_are_exact() {
    let mut out = Vec::new();
    let o = order(7, Side::Buy, 950_005, 1_500, TimeInForce::Ioc, false);
    write_create(&mut out, "linear", &btc(0), &o, 1_711_001_595_207, 5_000);
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        r#"{"reqId":"xb7","header":{"X-BAPI-TIMESTAMP":"1711001595207","X-BAPI-RECV-WINDOW":"5000"},"op":"order.create","args":[{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"1.5","price":"95000.5","timeInForce":"IOC","orderLinkId":"xb7"}]}"#
    );
    let o = order(18_446_744_073_709_551_615, Side::Sell, 1_000_000, 1, TimeInForce::Gtc, true);
    write_create(&mut out, "linear", &btc(0), &o, 1, 8_000);
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        r#"{"reqId":"xb18446744073709551615","header":{"X-BAPI-TIMESTAMP":"1","X-BAPI-RECV-WINDOW":"8000"},"op":"order.create","args":[{"category":"linear","symbol":"BTCUSDT","side":"Sell","orderType":"Limit","qty":"0.001","price":"100000","timeInForce":"GTC","orderLinkId":"xb18446744073709551615","reduceOnly":true}]}"#
    );
    // Every frame is valid JSON.
    serde_json::from_slice::<Value>(&out).unwrap();
    write_cancel(&mut out, "spot", &btc(0), ClientOrderId(42), 3, 1_711_001_595_300, 5_000);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"reqId":"cancel-3-xb42","header":{"X-BAPI-TIMESTAMP":"1711001595300","X-BAPI-RECV-WINDOW":"5000"},"op":"order.cancel","args":[{"category":"spot","symbol":"BTCUSDT","orderLinkId":"xb42"}]}"#
    );
}

#[test]
fn auth_and_rest_signatures_follow_the_documented_prehash() {
    let signer = HmacSigner::new(&SecretString::new(SECRET.into()));
    let mut buf = [0u8; HEX_SIG_LEN];
    let expires = 1_662_350_400_000;
    let sig = sign::ws_auth_signature_into(&signer, expires, &mut buf).to_owned();
    assert_eq!(sig, hmac_hex(SECRET, "GET/realtime1662350400000"));
    let frame = sign::ws_auth_message(&SecretString::new(KEY.into()), &signer, expires, None);
    assert_eq!(frame.as_str(), format!(r#"{{"op":"auth","args":["{KEY}",1662350400000,"{sig}"]}}"#));
    let query = "category=linear&symbol=BTCUSDT";
    let rest =
        sign::rest_signature_into(&signer, 1_658_384_314_791, &SecretString::new(KEY.into()), 5_000, query, &mut buf);
    assert_eq!(rest, hmac_hex(SECRET, &format!("1658384314791{KEY}5000{query}")));
}

#[test]
fn exec_ids_map_to_stable_u64s() {
    assert_eq!(exec_id_hash(b"2100000000007764263"), 2_100_000_000_007_764_263);
    // FNV-1a 64 of the UUID text, computed independently.
    let uuid = b"0ab1bdf7-4219-438b-b30a-32ec863018f7";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in uuid {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    assert_eq!(exec_id_hash(uuid), h);
    assert_ne!(exec_id_hash(b"0ab1bdf7-4219-438b-b30a-32ec863018f8"), h);
}

// ---- client: decoding ---------------------------------------------------------------------

fn feed(s: &mut BybitSession, stream: Stream, frame: &[u8]) -> Vec<OrderEvent> {
    let mut events = Vec::new();
    s.on_frame(stream, frame, RECV_NS, &mut |e| events.push(e));
    events
}

fn ev(id: u64, side: Side, ts: u64, kind: OrderEventKind) -> OrderEvent {
    OrderEvent {
        client_id: ClientOrderId(id),
        instrument: InstrumentId(0),
        side,
        exch_ts_ms: ts,
        recv_ns: RECV_NS,
        kind,
    }
}

#[test]
fn recorded_private_and_ack_frames_decode_to_exact_events() {
    let mut s = BybitSession::new(config("ws://unused", "http://unused", vec![btc(0)])).unwrap();
    s.track_open(ClientOrderId(1001), InstrumentId(0), Side::Buy, false);
    s.track_open(ClientOrderId(1002), InstrumentId(0), Side::Sell, true);
    s.track_open(ClientOrderId(1003), InstrumentId(0), Side::Buy, false);
    s.track_open(ClientOrderId(1004), InstrumentId(0), Side::Buy, false);

    assert_eq!(
        feed(&mut s, Stream::Private, &fixture("order_new.json")),
        vec![ev(1001, Side::Buy, 1_672_364_262_457, OrderEventKind::Accepted)]
    );
    // A second New for the same order is not a second ack.
    assert_eq!(feed(&mut s, Stream::Private, &fixture("order_new.json")), vec![]);

    let fill = Fill {
        px: Px(959_001),
        qty: Qty(500),
        leaves_qty: Qty(0),
        fee: Decimal::new(263_725_275, 7),
        taker: true,
        trade_id: exec_id_hash(b"0ab1bdf7-4219-438b-b30a-32ec863018f7"),
    };
    assert_eq!(
        feed(&mut s, Stream::Private, &fixture("execution.json")),
        vec![ev(1001, Side::Buy, 1_746_270_400_353, OrderEventKind::Filled(fill))]
    );
    assert_eq!(feed(&mut s, Stream::Private, &fixture("execution.json")), vec![]);
    assert_eq!(s.stats().duplicate_fills, 1);
    assert_eq!(s.stats().fills, 1);

    // The rest of an IOC order ends Cancelled without CancelByUser: it expired.
    assert_eq!(
        feed(&mut s, Stream::Private, &fixture("order_ioc_cancelled.json")),
        vec![ev(1002, Side::Sell, 1_672_364_262_478, OrderEventKind::Expired)]
    );
    let by_user = String::from_utf8(fixture("order_ioc_cancelled.json"))
        .unwrap()
        .replace("\"cancelType\":\"UNKNOWN\"", "\"cancelType\":\"CancelByUser\"")
        .replace("xb1002", "xb1004")
        .replace("\"side\":\"Sell\"", "\"side\":\"Buy\"");
    assert_eq!(
        feed(&mut s, Stream::Private, by_user.as_bytes()),
        vec![
            ev(1004, Side::Buy, 1_672_364_262_478, OrderEventKind::Accepted),
            ev(1004, Side::Buy, 1_672_364_262_478, OrderEventKind::Cancelled)
        ]
    );

    // Trade acks: retCode 0 acknowledges, a business error rejects; both carry the limits.
    assert_eq!(
        feed(&mut s, Stream::Trade, &fixture("order_create_ack.json")),
        vec![ev(1003, Side::Buy, 0, OrderEventKind::Accepted)]
    );
    assert_eq!((s.stats().rate_limit, s.stats().rate_used), (10, 1));
    s.track_open(ClientOrderId(1004), InstrumentId(0), Side::Buy, false);
    assert_eq!(
        feed(&mut s, Stream::Trade, &fixture("order_create_reject.json")),
        vec![ev(1004, Side::Buy, 0, OrderEventKind::Rejected(RejectReason::InsufficientBalance))]
    );
    assert_eq!((s.stats().rate_limit, s.stats().rate_used), (10, 2));
    let rate = String::from_utf8(fixture("order_create_reject.json"))
        .unwrap()
        .replace("110007", "10006")
        .replace("Available balance is insufficient", "Too many visits!");
    s.track_open(ClientOrderId(1004), InstrumentId(0), Side::Buy, false);
    assert_eq!(
        feed(&mut s, Stream::Trade, rate.as_bytes()),
        vec![ev(1004, Side::Buy, 0, OrderEventKind::Rejected(RejectReason::RateLimited))]
    );
    let st = s.stats();
    assert_eq!((st.acks, st.rejects, st.rate_limited, st.malformed, st.unknown), (3, 2, 1, 0, 0));
}

#[test]
fn bad_and_foreign_private_frames_are_counted_not_fatal() {
    let mut s = BybitSession::new(config("ws://unused", "http://unused", vec![btc(0)])).unwrap();
    let exec = String::from_utf8(fixture("execution.json")).unwrap();
    let cases: [(&str, String); 5] = [
        ("truncated", exec[..exec.len() - 3].to_owned()),
        ("not json", "pong".to_owned()),
        ("bad price", exec.replace("\"95900.1\"", "\"95900.1x\"")),
        ("unknown symbol", exec.replace("\"BTCUSDT\"", "\"DOGEUSDT\"")),
        ("order without data", r#"{"topic":"order","creationTime":1}"#.to_owned()),
    ];
    for (i, (what, frame)) in cases.iter().enumerate() {
        assert_eq!(feed(&mut s, Stream::Private, frame.as_bytes()), vec![], "{what}");
        assert_eq!(s.stats().malformed, i as u64 + 1, "{what}");
    }
    // Not ours (placed by hand) and topics the session does not use: unknown, no event.
    let foreign = exec.replace("\"xb1001\"", "\"web-123\"");
    assert_eq!(feed(&mut s, Stream::Private, foreign.as_bytes()), vec![]);
    assert_eq!(feed(&mut s, Stream::Private, br#"{"topic":"wallet","creationTime":1,"data":[]}"#), vec![]);
    assert_eq!((s.stats().unknown, s.stats().malformed, s.stats().fills), (2, 5, 0));
}

// ---- simulator over real sockets ----------------------------------------------------------

fn start_sim() -> (Simulator, Registry, &'static str) {
    start_sim_on(Protocol::BybitLinear)
}

fn start_sim_on(protocol: Protocol) -> (Simulator, Registry, &'static str) {
    let name = protocol.name();
    let (kind, tick) = if protocol == Protocol::BybitSpot {
        (InstrumentKind::Spot, "0.01")
    } else {
        (InstrumentKind::Perpetual, "0.1")
    };
    let venues = vec![VenueConfig {
        name: name.into(),
        protocol,
        ws_url: "sim".into(),
        rest_url: "sim".into(),
        gateway: GatewayKind::Paper,
        order_ws_url: "sim".into(),
        recv_window_ms: 5_000,
        credentials: None,
    }];
    let registry =
        Registry::new(&[name.to_owned()], &[support::instrument(name, "BTCUSDT", kind, "BTC", tick, "0.001")]).unwrap();
    let sim =
        Simulator::start_venues(&SimConfig::default(), &registry, &venues, "127.0.0.1:0".parse().unwrap()).unwrap();
    sim.add_account(name, credentials(KEY, SECRET));
    (sim, registry, name)
}

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

fn ask(ws: &mut Ws, req: &Value) -> Value {
    ws.send(Message::text(req.to_string())).unwrap();
    loop {
        if let Message::Text(t) = ws.read().unwrap() {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

fn auth_args(key: &str, secret: &str, expires: u64) -> Value {
    json!({"op": "auth", "args": [key, expires, hmac_hex(secret, &format!("GET/realtime{expires}"))]})
}

#[test]
fn sim_trade_socket_refuses_bad_signature_unknown_key_expired_auth_and_stale_timestamps() {
    let (sim, _registry, name) = start_sim();
    let (mut ws, _) = tungstenite::connect(format!("{}/v5/trade", sim.base_url(name))).unwrap();
    let future = now_ms() + 10_000;

    let r = ask(&mut ws, &auth_args(KEY, "wrong-secret", future));
    assert_eq!(
        (r["retCode"].as_i64(), r["retMsg"].as_str(), r["op"].as_str()),
        (Some(10_004), Some("Invalid sign"), Some("auth"))
    );
    let r = ask(&mut ws, &auth_args("no-such-key", SECRET, future));
    assert_eq!((r["retCode"].as_i64(), r["retMsg"].as_str()), (Some(10_003), Some("Invalid apikey")));
    let r = ask(&mut ws, &auth_args(KEY, SECRET, now_ms() - 1_000));
    assert_eq!((r["retCode"].as_i64(), r["retMsg"].as_str()), (Some(10_001), Some("Params Error")));

    // Orders before a successful auth are refused.
    let create = |ts: u64| {
        json!({"reqId": "xb1", "header": {"X-BAPI-TIMESTAMP": ts.to_string(), "X-BAPI-RECV-WINDOW": "5000"},
               "op": "order.create", "args": [{"category": "linear", "symbol": "BTCUSDT", "side": "Buy",
               "orderType": "Limit", "qty": "0.001", "price": "1", "timeInForce": "GTC", "orderLinkId": "xb1"}]})
    };
    let r = ask(&mut ws, &create(now_ms()));
    assert_eq!((r["retCode"].as_i64(), r["reqId"].as_str()), (Some(10_007), Some("xb1")));

    let r = ask(&mut ws, &auth_args(KEY, SECRET, future));
    assert_eq!((r["retCode"].as_i64(), r["retMsg"].as_str(), r["op"].as_str()), (Some(0), Some("OK"), Some("auth")));
    assert!(r["connId"].is_string());
    let r = ask(&mut ws, &auth_args(KEY, SECRET, future));
    assert_eq!(r["retCode"].as_i64(), Some(20_001));

    // Stale (older than the window) and ahead (1 s or more) timestamps: 10002, with headers.
    for ts in [now_ms() - 6_000, now_ms() + 2_000] {
        let r = ask(&mut ws, &create(ts));
        assert_eq!((r["retCode"].as_i64(), r["op"].as_str()), (Some(10_002), Some("order.create")), "{r}");
        assert!(r["retMsg"].as_str().unwrap().starts_with("invalid request, please check your server timestamp"));
        assert_eq!(r["header"]["X-Bapi-Limit"].as_str(), Some("10"));
        assert!(r["header"]["Timenow"].as_str().unwrap().parse::<u64>().is_ok());
    }
    // Wrong category: 10404.
    let mut wrong = create(now_ms());
    wrong["args"][0]["category"] = json!("spot");
    assert_eq!(ask(&mut ws, &wrong)["retCode"].as_i64(), Some(10_404));

    let r = ask(&mut ws, &json!({"op": "ping"}));
    assert_eq!((r["op"].as_str(), r["retCode"].as_i64()), (Some("pong"), Some(0)));
    assert!(r["data"][0].as_str().unwrap().parse::<u64>().unwrap() >= now_ms() - 60_000);
    let _ = ws.close(None);
    sim.shutdown().unwrap();
}

#[test]
fn sim_private_stream_and_rest_refuse_bad_credentials() {
    let (sim, _registry, name) = start_sim();
    let (mut ws, _) = tungstenite::connect(format!("{}/v5/private", sim.base_url(name))).unwrap();
    let r = ask(&mut ws, &json!({"op": "subscribe", "args": ["order"]}));
    assert_eq!((r["success"].as_bool(), r["ret_msg"].as_str()), (Some(false), Some("Request not authorized")));
    let r = ask(&mut ws, &auth_args(KEY, "wrong", now_ms() + 10_000));
    assert_eq!((r["success"].as_bool(), r["op"].as_str()), (Some(false), Some("auth")));
    let r = ask(&mut ws, &auth_args(KEY, SECRET, now_ms() + 10_000));
    assert_eq!((r["success"].as_bool(), r["ret_msg"].as_str(), r["op"].as_str()), (Some(true), Some(""), Some("auth")));
    let r = ask(&mut ws, &json!({"op": "subscribe", "args": ["order", "execution"]}));
    assert_eq!((r["success"].as_bool(), r["op"].as_str()), (Some(true), Some("subscribe")));
    let r = ask(&mut ws, &json!({"req_id": "p1", "op": "ping"}));
    assert_eq!((r["op"].as_str(), r["req_id"].as_str()), (Some("pong"), Some("p1")));
    let _ = ws.close(None);

    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))).build().into();
    let query = "category=linear&symbol=BTCUSDT";
    let get = |key: &str, secret: &str, ts: u64| -> Value {
        let sig = hmac_hex(secret, &format!("{ts}{key}5000{query}"));
        let mut resp = agent
            .get(format!("{}/v5/order/realtime?{query}", sim.rest_url(name)))
            .header("X-BAPI-API-KEY", key)
            .header("X-BAPI-TIMESTAMP", ts.to_string())
            .header("X-BAPI-RECV-WINDOW", "5000")
            .header("X-BAPI-SIGN", sig)
            .call()
            .unwrap();
        serde_json::from_slice(&resp.body_mut().read_to_vec().unwrap()).unwrap()
    };
    assert_eq!(get(KEY, "wrong", now_ms())["retCode"].as_i64(), Some(10_004));
    assert_eq!(get("no-such-key", SECRET, now_ms())["retCode"].as_i64(), Some(10_003));
    assert_eq!(get(KEY, SECRET, now_ms() - 60_000)["retCode"].as_i64(), Some(10_002));
    sim.shutdown().unwrap();
}

/// Drives a session until `done` or the deadline, collecting its events.
fn drive(
    s: &mut BybitSession,
    poll: &mio::Poll,
    events: &mut Vec<OrderEvent>,
    secs: u64,
    done: impl Fn(&BybitSession, &[OrderEvent]) -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        let now = crossbar_engine::clock::now_ns();
        s.maintain(now, poll.registry(), mio::Token(0));
        s.poll(now, &mut |e| events.push(e));
        if done(s, events) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

#[test]
fn session_places_an_ioc_order_that_fills_at_the_exchanges_price_and_reports_the_position() {
    let (sim, registry, name) = start_sim();
    let inst = registry.get(InstrumentId(0));
    let si = SessionInstrument {
        id: inst.id,
        symbol: inst.symbol.clone(),
        kind: inst.kind,
        base: inst.base.clone(),
        quote: inst.quote.clone(),
        price_scale: inst.price_scale,
        qty_scale: inst.qty_scale,
        contract_size: inst.contract_size,
    };
    let mut s = BybitSession::new(config(&sim.base_url(name), &sim.rest_url(name), vec![si])).unwrap();
    let poll = mio::Poll::new().unwrap();
    let mut events = Vec::new();
    assert!(drive(&mut s, &poll, &mut events, 10, |s, _| s.ready()), "session never ready: {:?}", s.stats());
    assert_eq!(s.stats().connects, 2);

    let book = sim.book_snapshot(InstrumentId(0)).unwrap();
    let best_ask = book.asks[0].0;
    let limit = Px(best_ask.0 + 1_000 * inst.tick.0);
    let qty = Qty(inst.lot.0 * 2);
    let o = order(77, Side::Buy, limit.0, qty.0, TimeInForce::Ioc, false);
    s.send(&OrderCommand::New { order: o, stamps: OrderStamps::default() }, crossbar_engine::clock::now_ns()).unwrap();
    let filled = |evs: &[OrderEvent]| {
        evs.iter()
            .filter_map(|e| if let OrderEventKind::Filled(f) = e.kind { Some(f.qty.0) } else { None })
            .sum::<i64>()
    };
    assert!(drive(&mut s, &poll, &mut events, 10, |_, evs| filled(evs) == qty.0), "no fill: {events:?}");

    let fills = sim.with_exchange(|ex| ex.fills(crossbar_connectors::sim::exchange::AccountId(0), None, 0));
    assert!(!fills.is_empty());
    assert_eq!(events[0].kind, OrderEventKind::Accepted);
    assert_eq!(events[0].client_id, ClientOrderId(77));
    let got: Vec<(i64, i64, Decimal, bool)> = events
        .iter()
        .filter_map(
            |e| if let OrderEventKind::Filled(f) = e.kind { Some((f.px.0, f.qty.0, f.fee, f.taker)) } else { None },
        )
        .collect();
    let want: Vec<(i64, i64, Decimal, bool)> = fills.iter().map(|f| (f.px, f.qty, f.fee, !f.maker)).collect();
    assert_eq!(got, want);
    assert!(events.iter().filter(|e| e.kind == OrderEventKind::Accepted).count() == 1);
    let st = s.stats();
    assert_eq!((st.orders_sent, st.acks, st.fills, st.rejects, st.malformed), (1, 1, fills.len() as u64, 0, 0));

    let state = s.venue_state(Duration::from_secs(5)).unwrap();
    assert!(state.open_orders.is_empty());
    assert_eq!(state.fills.len(), fills.len());
    assert_eq!(state.positions, Some(vec![(InstrumentId(0), Decimal::new(qty.0, 3))]));

    // A resting order, then its cancel: both written without allocating, then acknowledged and
    // cancelled by the venue.
    let rest_px = Px(best_ask.0 + 100_000 * inst.tick.0);
    let o = order(78, Side::Sell, rest_px.0, inst.lot.0, TimeInForce::Gtc, true);
    let before = support::allocs();
    s.send(&OrderCommand::New { order: o, stamps: OrderStamps::default() }, crossbar_engine::clock::now_ns()).unwrap();
    assert_eq!(support::allocs() - before, 0, "order.create allocated");
    let n = events.len();
    assert!(drive(&mut s, &poll, &mut events, 10, |_, evs| evs.len() > n), "no ack");
    assert_eq!(events[n].kind, OrderEventKind::Accepted);
    assert_eq!(events[n].client_id, ClientOrderId(78));
    let state = s.venue_state(Duration::from_secs(5)).unwrap();
    assert_eq!(state.open_orders.len(), 1);
    assert_eq!((state.open_orders[0].client_id, state.open_orders[0].open_qty), (ClientOrderId(78), inst.lot));
    let cancel = OrderCommand::Cancel { client_id: ClientOrderId(78), instrument: InstrumentId(0), venue: VenueId(0) };
    let before = support::allocs();
    s.send(&cancel, crossbar_engine::clock::now_ns()).unwrap();
    assert_eq!(support::allocs() - before, 0, "order.cancel allocated");
    assert!(drive(&mut s, &poll, &mut events, 10, |_, evs| evs.len() > n + 1), "no cancel");
    assert_eq!(events[n + 1].kind, OrderEventKind::Cancelled);
    assert_eq!(events.len(), n + 2);
    assert!(s.venue_state(Duration::from_secs(5)).unwrap().open_orders.is_empty());
    let st = s.stats();
    assert_eq!((st.orders_sent, st.cancels_sent, st.acks, st.rejects, st.malformed, st.unknown), (2, 1, 2, 0, 0, 0));
    sim.shutdown().unwrap();
}

#[test]
fn decoding_and_encoding_do_not_allocate_after_warm_up() {
    let mut s = BybitSession::new(config("ws://unused", "http://unused", vec![btc(0)])).unwrap();
    let exec = String::from_utf8(fixture("execution.json")).unwrap();
    let new = String::from_utf8(fixture("order_new.json")).unwrap();
    let end = String::from_utf8(fixture("order_ioc_cancelled.json")).unwrap();
    let frames: Vec<[Vec<u8>; 3]> = (0..20u64)
        .map(|i| {
            let id = format!("\"xb{}\"", 2_000 + i);
            [
                new.replace("\"xb1001\"", &id).into_bytes(),
                exec.replace("\"xb1001\"", &id).replace("32ec863018f7", &format!("{i:012x}")).into_bytes(),
                end.replace("\"xb1002\"", &id).into_bytes(),
            ]
        })
        .collect();
    let mut out = Vec::with_capacity(1024);
    let mut events = 0u64;
    let instrument = btc(0);
    let mut run = |s: &mut BybitSession, range: std::ops::Range<usize>| {
        for (i, f) in frames[range.clone()].iter().enumerate() {
            let id = 2_000 + (range.start + i) as u64;
            s.track_open(ClientOrderId(id), InstrumentId(0), Side::Buy, false);
            let o = order(id, Side::Buy, 950_005, 500, TimeInForce::Ioc, false);
            write_create(&mut out, "linear", &instrument, &o, 1, 5_000);
            for frame in f {
                s.on_frame(Stream::Private, frame, RECV_NS, &mut |_| events += 1);
            }
        }
    };
    run(&mut s, 0..5);
    let before = support::allocs();
    run(&mut s, 5..20);
    assert_eq!(support::allocs() - before, 0);
    // Accepted, Filled and Expired for each of the 20 orders.
    assert_eq!(events, 60);
    assert_eq!((s.stats().fills, s.stats().malformed), (20, 0));
}

#[test]
fn sim_maps_exchange_refusals_and_rate_limits_to_bybit_codes_and_pushes_documented_topics() {
    let (sim, registry, name) = start_sim();
    let inst = registry.get(InstrumentId(0));
    let (mut trade, _) = tungstenite::connect(format!("{}/v5/trade", sim.base_url(name))).unwrap();
    let (mut private, _) = tungstenite::connect(format!("{}/v5/private", sim.base_url(name))).unwrap();
    assert_eq!(ask(&mut trade, &auth_args(KEY, SECRET, now_ms() + 10_000))["retCode"].as_i64(), Some(0));
    assert_eq!(ask(&mut private, &auth_args(KEY, SECRET, now_ms() + 10_000))["success"].as_bool(), Some(true));
    let r = ask(&mut private, &json!({"op": "subscribe", "args": ["order", "execution"]}));
    assert_eq!(r["success"].as_bool(), Some(true));

    let ask_px = sim.book_snapshot(InstrumentId(0)).unwrap().asks[0].0;
    let px_text = |m: i64| Decimal::new(m, inst.price_scale.places().into()).normalize().to_string();
    let create = |link: &str, qty: &str, px: String, tif: &str| {
        json!({"reqId": link, "header": {"X-BAPI-TIMESTAMP": now_ms().to_string()}, "op": "order.create",
               "args": [{"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
               "qty": qty, "price": px, "timeInForce": tif, "orderLinkId": link}]})
    };
    // Far more than the account's margin: 110007.
    let r = ask(&mut trade, &create("xb1", "900000", px_text(ask_px.0), "GTC"));
    assert_eq!(
        (r["retCode"].as_i64(), r["retMsg"].as_str()),
        (Some(110_007), Some("Available balance is insufficient"))
    );
    // Unknown order: 110001.
    let cancel = json!({"reqId": "c1", "header": {"X-BAPI-TIMESTAMP": now_ms().to_string()}, "op": "order.cancel",
                        "args": [{"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "xb404"}]});
    let r = ask(&mut trade, &cancel);
    assert_eq!((r["retCode"].as_i64(), r["retMsg"].as_str()), (Some(110_001), Some("Order does not exist")));

    // An IOC buy through the ask: an execution push, then the order push, matching the exchange.
    let r = ask(&mut trade, &create("xb2", "0.002", px_text(ask_px.0 + 1_000 * inst.tick.0), "IOC"));
    assert_eq!((r["retCode"].as_i64(), r["data"]["orderLinkId"].as_str()), (Some(0), Some("xb2")));
    let order_id = r["data"]["orderId"].as_str().unwrap().to_owned();
    let fills = sim.with_exchange(|ex| ex.fills(crossbar_connectors::sim::exchange::AccountId(0), None, 0));
    // Each report is pushed as `execution` (when it fills) then `order`: New on acceptance,
    // then per fill PartiallyFilled or, last, Filled.
    let mut pushes = Vec::new();
    while pushes.last().is_none_or(|p: &Value| p["data"][0]["orderStatus"].as_str() != Some("Filled")) {
        if let Message::Text(t) = private.read().unwrap() {
            pushes.push(serde_json::from_str::<Value>(t.as_str()).unwrap());
        }
    }
    let topics: Vec<&str> = pushes.iter().map(|p| p["topic"].as_str().unwrap()).collect();
    let mut want = vec!["order"];
    for _ in &fills {
        want.extend(["execution", "order"]);
    }
    assert_eq!(topics, want);
    assert_eq!(pushes[0]["data"][0]["orderStatus"].as_str(), Some("New"));
    let executions: Vec<&Value> = pushes.iter().filter(|p| p["topic"] == "execution").collect();
    for (push, fill) in executions.iter().zip(&fills) {
        assert_eq!(push["topic"].as_str(), Some("execution"));
        let e = &push["data"][0];
        assert_eq!(e["orderLinkId"].as_str(), Some("xb2"));
        assert_eq!(e["orderId"].as_str(), Some(order_id.as_str()));
        assert_eq!(e["execPrice"].as_str(), Some(px_text(fill.px).as_str()));
        assert_eq!(e["execQty"].as_str().unwrap().parse::<Decimal>().unwrap(), Decimal::new(fill.qty, 3));
        assert_eq!(e["execFee"].as_str().unwrap().parse::<Decimal>().unwrap(), fill.fee);
        assert_eq!(
            (e["execType"].as_str(), e["isMaker"].as_bool(), e["side"].as_str()),
            (Some("Trade"), Some(false), Some("Buy"))
        );
        assert_eq!(e["execTime"].as_str(), Some(fill.time_ms.to_string().as_str()));
    }
    let last = pushes.last().unwrap();
    assert_eq!(last["topic"].as_str(), Some("order"));
    let o = &last["data"][0];
    assert_eq!(
        (o["orderLinkId"].as_str(), o["orderStatus"].as_str(), o["cumExecQty"].as_str()),
        (Some("xb2"), Some("Filled"), Some("0.002"))
    );
    assert_eq!(
        (o["leavesQty"].as_str(), o["timeInForce"].as_str(), o["category"].as_str()),
        (Some("0"), Some("IOC"), Some("linear"))
    );

    // Rate limit: 10 order.create a second on linear; the rest of the second is 10006.
    let far = px_text(ask_px.0 / 2);
    let mut codes = Vec::new();
    for i in 0..25 {
        let r = ask(&mut trade, &create(&format!("xb{}", 100 + i), "0.001", far.clone(), "GTC"));
        let left = r["header"]["X-Bapi-Limit-Status"].as_str().unwrap().parse::<u64>().unwrap();
        codes.push((r["retCode"].as_i64().unwrap(), left));
    }
    let refused = codes.iter().filter(|(c, _)| *c == 10_006).count();
    assert!(refused >= 5, "{codes:?}");
    assert!(codes.iter().all(|(c, left)| (*c == 0 && *left < 10) || (*c == 10_006 && *left == 0)), "{codes:?}");
    sim.shutdown().unwrap();
}

/// A TCP relay between the session and the simulator that a test can cut: every connection
/// through it is shut down at once, as a network failure would.
struct Relay {
    addr: std::net::SocketAddr,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let held = std::sync::Arc::clone(&conns);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = std::net::TcpStream::connect(upstream) else { continue };
                let mut held = held.lock().unwrap();
                held.push(client.try_clone().unwrap());
                held.push(server.try_clone().unwrap());
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Self { addr, conns }
    }

    fn cut(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
fn after_a_lost_connection_the_session_reconnects_and_cancels_the_orders_left_open() {
    let (sim, registry, name) = start_sim();
    let inst = registry.get(InstrumentId(0));
    let relay = Relay::start(sim.addr());
    let mut s =
        BybitSession::new(config(&format!("ws://{}/{name}", relay.addr), &sim.rest_url(name), vec![btc(0)])).unwrap();
    let poll = mio::Poll::new().unwrap();
    let mut events = Vec::new();
    assert!(drive(&mut s, &poll, &mut events, 10, |s, _| s.ready()));
    let ask_px = sim.book_snapshot(InstrumentId(0)).unwrap().asks[0].0;
    let o = order(90, Side::Buy, ask_px.0 / 2, inst.lot.0, TimeInForce::Gtc, false);
    s.send(&OrderCommand::New { order: o, stamps: OrderStamps::default() }, crossbar_engine::clock::now_ns()).unwrap();
    assert!(drive(&mut s, &poll, &mut events, 10, |_, evs| !evs.is_empty()));
    assert_eq!(events[0].kind, OrderEventKind::Accepted);
    let open = |s: &mut BybitSession| s.venue_state(Duration::from_secs(5)).unwrap().open_orders.len();
    assert_eq!(open(&mut s), 1);

    relay.cut();
    assert!(drive(&mut s, &poll, &mut events, 10, |s, _| !s.ready()), "the cut went unnoticed");
    let cmd = OrderCommand::New {
        order: order(91, Side::Buy, 1, 1, TimeInForce::Gtc, false),
        stamps: OrderStamps::default(),
    };
    let refused = s.send(&cmd, crossbar_engine::clock::now_ns());
    assert!(matches!(refused, Err(crossbar_engine::gateway::GatewayError::Disconnected)), "{refused:?}");
    // Back: logged in and subscribed again, the order left open is cancelled.
    assert!(drive(&mut s, &poll, &mut events, 15, |s, evs| s.ready() && evs.len() == 2), "{events:?} {:?}", s.stats());
    assert_eq!(events[1].kind, OrderEventKind::Cancelled);
    assert_eq!(events[1].client_id, ClientOrderId(90));
    assert_eq!(open(&mut s), 0);
    let st = s.stats();
    assert_eq!((st.connects, st.disconnects, st.cancel_alls, st.cancels_sent, st.not_ready), (4, 2, 1, 1, 1));
    sim.shutdown().unwrap();
}

#[test]
fn spot_ioc_order_fills_the_best_level_and_its_rest_expires() {
    let (sim, registry, name) = start_sim_on(Protocol::BybitSpot);
    let inst = registry.get(InstrumentId(0));
    let si = SessionInstrument {
        id: inst.id,
        symbol: inst.symbol.clone(),
        kind: inst.kind,
        base: inst.base.clone(),
        quote: inst.quote.clone(),
        price_scale: inst.price_scale,
        qty_scale: inst.qty_scale,
        contract_size: inst.contract_size,
    };
    let mut cfg = config(&sim.base_url(name), &sim.rest_url(name), vec![si]);
    cfg.protocol = Protocol::BybitSpot;
    cfg.venue_name = name.into();
    let mut s = BybitSession::new(cfg).unwrap();
    assert_eq!(s.category(), "spot");
    let poll = mio::Poll::new().unwrap();
    let mut events = Vec::new();
    assert!(drive(&mut s, &poll, &mut events, 10, |s, _| s.ready()));
    // A still market: the best ask level is all the order can take.
    sim.set_paused(true);
    std::thread::sleep(Duration::from_millis(50));
    let (ask_px, ask_qty) = sim.book_snapshot(InstrumentId(0)).unwrap().asks[0];
    let qty = ask_qty.0 + inst.lot.0;
    let o = order(5, Side::Buy, ask_px.0, qty, TimeInForce::Ioc, false);
    s.send(&OrderCommand::New { order: o, stamps: OrderStamps::default() }, crossbar_engine::clock::now_ns()).unwrap();
    assert!(
        drive(&mut s, &poll, &mut events, 10, |_, evs| evs.last().is_some_and(|e| e.kind == OrderEventKind::Expired)),
        "{events:?}"
    );
    let fills = sim.with_exchange(|ex| ex.fills(crossbar_connectors::sim::exchange::AccountId(0), None, 0));
    let got: Vec<Fill> =
        events.iter().filter_map(|e| if let OrderEventKind::Filled(f) = e.kind { Some(f) } else { None }).collect();
    // Spot execIds are digits: the trade id is that number.
    let want: Vec<Fill> = fills
        .iter()
        .map(|f| Fill {
            px: Px(f.px),
            qty: Qty(f.qty),
            leaves_qty: Qty(0),
            fee: f.fee,
            taker: !f.maker,
            trade_id: 2_100_000_000_000_000_000 + f.trade_id,
        })
        .collect();
    assert_eq!(
        got.iter().map(|f| (f.px, f.qty, f.fee, f.taker, f.trade_id)).collect::<Vec<_>>(),
        want.iter().map(|f| (f.px, f.qty, f.fee, f.taker, f.trade_id)).collect::<Vec<_>>()
    );
    assert_eq!(got.iter().map(|f| f.qty.0).sum::<i64>(), ask_qty.0);
    assert_eq!(got.iter().map(|f| f.px).collect::<Vec<_>>(), vec![ask_px; got.len()]);
    let kinds: Vec<_> = events.iter().map(|e| std::mem::discriminant(&e.kind)).collect();
    assert_eq!(kinds.len(), got.len() + 2);
    assert_eq!(events[0].kind, OrderEventKind::Accepted);
    let state = s.venue_state(Duration::from_secs(5)).unwrap();
    assert_eq!(state.positions, None);
    assert!(state.open_orders.is_empty());
    assert_eq!(
        state.fills.iter().map(|f| f.fill.trade_id).collect::<Vec<_>>(),
        want.iter().rev().map(|f| f.trade_id).collect::<Vec<_>>()
    );
    sim.shutdown().unwrap();
}
