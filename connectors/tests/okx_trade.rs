//! OKX v5 order entry: the frames crossbar writes, the login signature against an independent
//! HMAC of the documented prehash, the decoding of recorded `orders` pushes and order answers
//! (the docs' examples with crossbar ids), and the simulator as the venue over real loopback
//! sockets: its login checks and error codes, and a whole session placing an IOC that fills.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use crossbar_connectors::auth::okx::{login_message, login_signature_into};
use crossbar_connectors::auth::{HMAC_BASE64_LEN, HmacSigner, SecretString};
use crossbar_connectors::okx::trade::OkxSession;
use crossbar_connectors::okx::trade::codec::{PrivateDecoder, encode_cancel, encode_order};
use crossbar_connectors::order::{
    Credentials, OrderSession, SecretKey, SessionConfig, SessionInstrument, SessionStats,
};
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
use serde_json::Value;

mod support;

#[global_allocator]
static GLOBAL: support::Counting = support::Counting;

const KEY: &str = "okx-test-key";
const SECRET: &str = "22582BD0CFF14C41EDBF1AB98506286D";
const PASSPHRASE: &str = "pass-Phrase1";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/okx_trade/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    while text.last().is_some_and(u8::is_ascii_whitespace) {
        text.pop();
    }
    text
}

fn spot() -> SessionInstrument {
    SessionInstrument {
        id: InstrumentId(0),
        symbol: "BTC-USDT".into(),
        kind: InstrumentKind::Spot,
        base: "BTC".into(),
        quote: "USDT".into(),
        price_scale: Scale::new(1).unwrap(),
        qty_scale: Scale::new(8).unwrap(),
        contract_size: Decimal::ONE,
    }
}

fn swap() -> SessionInstrument {
    SessionInstrument {
        id: InstrumentId(1),
        symbol: "BTC-USDT-SWAP".into(),
        kind: InstrumentKind::Perpetual,
        base: "BTC".into(),
        quote: "USDT".into(),
        price_scale: Scale::new(1).unwrap(),
        qty_scale: Scale::new(3).unwrap(),
        contract_size: Decimal::ONE,
    }
}

fn order(id: u64, inst: &SessionInstrument, side: Side, px: i64, qty: i64, tif: TimeInForce) -> NewOrder {
    NewOrder {
        client_id: ClientOrderId(id),
        instrument: inst.id,
        venue: VenueId(0),
        side,
        px: Px(px),
        qty: Qty(qty),
        tif,
        reduce_only: false,
    }
}

fn credentials(key: &str, secret: &str, passphrase: &str) -> Credentials {
    Credentials {
        api_key: SecretString::new(key.into()),
        key: SecretKey::Hmac(SecretString::new(secret.into())),
        passphrase: Some(SecretString::new(passphrase.into())),
    }
}

#[test]
fn order_and_cancel_frames_are_exact() {
    let mut out = Vec::new();
    let mut o = order(42, &swap(), Side::Buy, 315_271, 2_500, TimeInForce::Ioc);
    o.reduce_only = true;
    encode_order(&mut out, &swap(), &o);
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        r#"{"id":"o42","op":"order","args":[{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"ioc","px":"31527.1","sz":"2.5","clOrdId":"xb42","reduceOnly":true}]}"#
    );
    encode_order(&mut out, &spot(), &order(7, &spot(), Side::Sell, 315_270, 100_000, TimeInForce::Gtc));
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        r#"{"id":"o7","op":"order","args":[{"instId":"BTC-USDT","tdMode":"cash","side":"sell","ordType":"limit","px":"31527","sz":"0.001","clOrdId":"xb7"}]}"#
    );
    encode_cancel(&mut out, &spot(), ClientOrderId(7));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"id":"c7","op":"cancel-order","args":[{"instId":"BTC-USDT","clOrdId":"xb7"}]}"#
    );
}

#[test]
fn login_sign_is_the_base64_hmac_of_the_documented_prehash() {
    let ts = 1_538_054_050u64;
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(b"1538054050GET/users/self/verify");
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let signer = HmacSigner::new(&SecretString::new(SECRET.into()));
    let mut buf = [0u8; HMAC_BASE64_LEN];
    assert_eq!(login_signature_into(&signer, ts, &mut buf), expected);
    let frame = login_message(&SecretString::new(KEY.into()), &SecretString::new(PASSPHRASE.into()), &signer, ts);
    let v: Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(v["op"], "login");
    assert_eq!(v["args"][0]["apiKey"], KEY);
    assert_eq!(v["args"][0]["passphrase"], PASSPHRASE);
    assert_eq!(v["args"][0]["timestamp"], "1538054050");
    assert_eq!(v["args"][0]["sign"], expected.as_str());
}

fn decode(dec: &mut PrivateDecoder, stats: &mut SessionStats, name: &str) -> Vec<OrderEvent> {
    let mut events = Vec::new();
    dec.decode(&fixture(name), 5, 1_695_190_491_000, stats, &mut |e| events.push(e));
    events
}

fn ev(id: u64, inst: u32, side: Side, ts: u64, kind: OrderEventKind) -> OrderEvent {
    OrderEvent { client_id: ClientOrderId(id), instrument: InstrumentId(inst), side, exch_ts_ms: ts, recv_ns: 5, kind }
}

#[test]
fn orders_pushes_decode_to_exact_events_and_repeats_are_dropped() {
    let mut dec = PrivateDecoder::new(vec![spot(), swap()]);
    let mut stats = SessionStats::default();
    dec.track(&order(7, &spot(), Side::Sell, 315_271, 200_000, TimeInForce::Gtc));
    assert_eq!(
        decode(&mut dec, &mut stats, "orders_live.json"),
        [ev(7, 0, Side::Sell, 1_654_084_334_977, OrderEventKind::Accepted)]
    );
    let fill = Fill {
        px: Px(315_271),
        qty: Qty(100_000),
        leaves_qty: Qty(100_000),
        fee: "0.02522168".parse().unwrap(),
        taker: false,
        trade_id: 242_589_207,
    };
    assert_eq!(
        decode(&mut dec, &mut stats, "orders_partial.json"),
        [ev(7, 0, Side::Sell, 1_654_084_353_263, OrderEventKind::Filled(fill))]
    );
    // The same trade again (a repeated push): dropped and counted.
    assert_eq!(decode(&mut dec, &mut stats, "orders_filled.json"), []);
    assert_eq!((stats.acks, stats.fills, stats.duplicate_fills, stats.malformed), (1, 1, 1, 0));
    // An order of another session, fully filled: its fill still reaches the engine.
    let mut fresh = PrivateDecoder::new(vec![spot(), swap()]);
    let mut s2 = SessionStats::default();
    let filled = Fill { leaves_qty: Qty(0), ..fill };
    assert_eq!(
        decode(&mut fresh, &mut s2, "orders_filled.json"),
        [ev(7, 0, Side::Sell, 1_654_084_353_263, OrderEventKind::Filled(filled))]
    );

    // IOC: accepted by the answer, its unfilled rest ends as Expired.
    dec.track(&order(9, &swap(), Side::Buy, 315_300, 3_000, TimeInForce::Ioc));
    assert_eq!(
        decode(&mut dec, &mut stats, "order_ack.json"),
        [ev(9, 1, Side::Buy, 1_695_190_491_421, OrderEventKind::Accepted)]
    );
    // inTime/outTime mid-point 1695190491422.2895 ms against the 1695190491000 ms wall clock.
    assert_eq!(stats.clock_offset_ms, 422);
    assert_eq!(
        decode(&mut dec, &mut stats, "orders_ioc_canceled.json"),
        [ev(9, 1, Side::Buy, 1_654_084_334_980, OrderEventKind::Expired)]
    );
    // Order 7 ended with the repeated push (state filled), order 9 with its expiry.
    assert_eq!(dec.open_orders().count(), 0);
}

#[test]
fn encoding_and_decoding_allocate_nothing_once_warm() {
    let mut dec = PrivateDecoder::new(vec![spot(), swap()]);
    let mut stats = SessionStats::default();
    let names = [
        "orders_live.json",
        "orders_partial.json",
        "orders_filled.json",
        "order_ack.json",
        "orders_ioc_canceled.json",
        "order_rejected.json",
        "order_format_error.json",
        "login_ok.json",
        "login_failed.json",
    ];
    let frames: Vec<Vec<u8>> = names.iter().map(|n| fixture(n)).collect();
    let mut events = Vec::with_capacity(64);
    let mut out = Vec::with_capacity(512);
    let o7 = order(7, &spot(), Side::Sell, 315_271, 200_000, TimeInForce::Gtc);
    let o9 = order(9, &swap(), Side::Buy, 315_300, 3_000, TimeInForce::Ioc);
    let (spot, swap) = (spot(), swap());
    let mut round = |dec: &mut PrivateDecoder, stats: &mut SessionStats| {
        events.clear();
        encode_order(&mut out, &spot, &o7);
        encode_cancel(&mut out, &swap, ClientOrderId(9));
        dec.track(&o7);
        dec.track(&o9);
        for f in &frames {
            dec.decode(f, 5, 0, stats, &mut |e| events.push(e));
            dec.decode(&f[..f.len() / 2], 5, 0, stats, &mut |e| events.push(e));
        }
        events.len()
    };
    let warm = round(&mut dec, &mut stats);
    let before = support::allocs();
    for _ in 0..10 {
        round(&mut dec, &mut stats);
    }
    assert_eq!(support::allocs() - before, 0);
    // Every round after the first sees its fills as repeats.
    // Accepted, Filled, Accepted, Expired; the rejections find their orders ended.
    assert_eq!((warm, stats.duplicate_fills), (4, 20 + 1));
}

#[test]
fn refusals_and_bad_frames_are_counted() {
    let mut dec = PrivateDecoder::new(vec![spot(), swap()]);
    let mut stats = SessionStats::default();
    dec.track(&order(9, &swap(), Side::Buy, 315_300, 3_000, TimeInForce::Ioc));
    assert_eq!(
        decode(&mut dec, &mut stats, "order_rejected.json"),
        [ev(9, 1, Side::Buy, 1_695_190_491_421, OrderEventKind::Rejected(RejectReason::InsufficientBalance))]
    );
    dec.track(&order(9, &swap(), Side::Buy, 315_300, 3_000, TimeInForce::Ioc));
    assert_eq!(
        decode(&mut dec, &mut stats, "order_format_error.json"),
        [ev(9, 1, Side::Buy, 0, OrderEventKind::Rejected(RejectReason::InvalidOrder))]
    );
    assert_eq!(stats.rejects, 2);
    let mut events = Vec::new();
    let bad: [&[u8]; 5] = [
        b"{\"arg\":{\"channel\":\"orders\"},\"data\":[{\"clOrdId\":\"xb1\",\"instId\":\"BTC-USDT\",\"side\":\"up\",\"state\":\"live\"}]}",
        b"{\"arg\":{\"channel\":\"orders\"},\"data\":[{\"clOrdId\":\"xb1\",\"instId\":\"BTC-USDT\",\"side\":\"buy\",\"state\":\"live\",\"tradeId\":\"5\",\"fillSz\":\"1e3\",\"fillPx\":\"1\"}]}",
        b"{\"arg\":{\"channel\":\"orders\"},\"data\":{}}",
        b"{\"id\":\"o1\",\"op\":\"order\",\"code\":\"0\"",
        b"not json",
    ];
    for frame in bad {
        dec.decode(frame, 5, 0, &mut stats, &mut |e| events.push(e));
    }
    assert_eq!((events.len(), stats.malformed), (0, 5));
    // Someone else's order on the account, and a channel the session does not read.
    let foreign = String::from_utf8(fixture("orders_live.json")).unwrap().replace("xb7", "web123");
    dec.decode(foreign.as_bytes(), 5, 0, &mut stats, &mut |e| events.push(e));
    dec.decode(br#"{"arg":{"channel":"account"},"data":[]}"#, 5, 0, &mut stats, &mut |e| events.push(e));
    assert_eq!((events.len(), stats.unknown), (0, 2));
    assert_eq!(
        dec.decode(&fixture("login_failed.json"), 5, 0, &mut stats, &mut |e| events.push(e)),
        crossbar_connectors::okx::trade::codec::Control::Error(60009)
    );
    assert_eq!(
        dec.decode(&fixture("login_ok.json"), 5, 0, &mut stats, &mut |e| events.push(e)),
        crossbar_connectors::okx::trade::codec::Control::LoggedIn
    );
}

// ---- the simulator as the venue ------------------------------------------------------------

fn start_sim() -> (Simulator, Registry) {
    let venues = vec![VenueConfig {
        name: "okx".into(),
        protocol: Protocol::Okx,
        ws_url: "sim".into(),
        rest_url: "sim".into(),
        gateway: GatewayKind::Paper,
        order_ws_url: "sim".into(),
        recv_window_ms: 5_000,
        credentials: None,
    }];
    let registry = Registry::new(
        &["okx".to_owned()],
        &[support::instrument("okx", "BTC-USDT-SWAP", InstrumentKind::Perpetual, "BTC", "0.1", "0.001")],
    )
    .unwrap();
    let cfg = SimConfig { seed: 5, ..SimConfig::default() };
    let sim = Simulator::start_venues(&cfg, &registry, &venues, "127.0.0.1:0".parse().unwrap()).unwrap();
    sim.add_account("okx", credentials(KEY, SECRET, PASSPHRASE));
    (sim, registry)
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Logs in over a raw socket with the given parts; the venue's answer.
fn raw_login(sim: &Simulator, key: &str, secret: &str, passphrase: &str, ts: u64) -> Value {
    let (mut ws, _) = tungstenite::connect(format!("{}/ws/v5/private", sim.base_url("okx"))).unwrap();
    let signer = HmacSigner::new(&SecretString::new(secret.into()));
    let frame = login_message(&SecretString::new(key.into()), &SecretString::new(passphrase.into()), &signer, ts);
    ws.send(tungstenite::Message::text(frame.as_str())).unwrap();
    let reply = ws.read().unwrap();
    let _ = ws.close(None);
    serde_json::from_str(reply.to_text().unwrap()).unwrap()
}

#[test]
fn the_simulator_checks_logins_as_okx_documents() {
    let (sim, _) = start_sim();
    let answer = |v: Value| {
        (
            v["event"].as_str().unwrap().to_owned(),
            v["code"].as_str().unwrap().to_owned(),
            v["msg"].as_str().unwrap().to_owned(),
        )
    };
    let ok = raw_login(&sim, KEY, SECRET, PASSPHRASE, now_s());
    assert_eq!(answer(ok.clone()), ("login".into(), "0".into(), String::new()));
    assert_eq!(ok["connId"].as_str().unwrap().len(), 8);
    let err = |code: &str, msg: &str| ("error".to_owned(), code.to_owned(), msg.to_owned());
    assert_eq!(answer(raw_login(&sim, KEY, "0000", PASSPHRASE, now_s())), err("60007", "Invalid sign"));
    assert_eq!(
        answer(raw_login(&sim, KEY, SECRET, PASSPHRASE, now_s() - 31)),
        err("60006", "Timestamp request expired")
    );
    assert_eq!(answer(raw_login(&sim, "nobody", SECRET, PASSPHRASE, now_s())), err("60005", "Invalid apiKey"));
    assert_eq!(answer(raw_login(&sim, KEY, SECRET, "wrong", now_s())), err("60024", "Wrong passphrase"));

    // Orders before a login, and a login whose timestamp is not a number.
    let (mut ws, _) = tungstenite::connect(format!("{}/ws/v5/private", sim.base_url("okx"))).unwrap();
    ws.send(tungstenite::Message::text(
        r#"{"id":"o1","op":"order","args":[{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"ioc","px":"1","sz":"1","clOrdId":"xb1"}]}"#,
    ))
    .unwrap();
    let v: Value = serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(
        (v["id"].as_str(), v["code"].as_str(), v["msg"].as_str()),
        (Some("o1"), Some("60011"), Some("Please log in"))
    );
    assert_eq!(v["data"], Value::Array(vec![]));
    ws.send(tungstenite::Message::text(
        r#"{"op":"login","args":[{"apiKey":"okx-test-key","passphrase":"pass-Phrase1","timestamp":"soon","sign":"x"}]}"#,
    ))
    .unwrap();
    let v: Value = serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!((v["code"].as_str(), v["msg"].as_str()), (Some("60004"), Some("Invalid timestamp")));
    ws.send(tungstenite::Message::text("ping")).unwrap();
    assert_eq!(ws.read().unwrap().to_text().unwrap(), "pong");
    let _ = ws.close(None);

    // REST: signed as documented it answers; each broken part gets its own code, HTTP 401.
    let rest = |key: &str, secret: &str, ms: i64| {
        let ts = crossbar_connectors::okx::trade::codec::iso8601_ms(ms);
        let signer = HmacSigner::new(&SecretString::new(secret.into()));
        let mut buf = [0u8; HMAC_BASE64_LEN];
        let path = "/api/v5/account/positions?instType=SWAP";
        let sign = crossbar_connectors::auth::okx::rest_signature_into(
            &signer,
            &ts,
            crossbar_connectors::auth::okx::HttpMethod::Get,
            path,
            "",
            &mut buf,
        )
        .to_owned();
        let resp = ureq::get(format!("{}{path}", sim.rest_url("okx")))
            .header("OK-ACCESS-KEY", key)
            .header("OK-ACCESS-SIGN", &sign)
            .header("OK-ACCESS-TIMESTAMP", &ts)
            .header("OK-ACCESS-PASSPHRASE", PASSPHRASE)
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = serde_json::from_reader(resp.into_body().into_reader()).unwrap();
        (status, body["code"].as_str().unwrap().to_owned(), body["msg"].as_str().unwrap().to_owned())
    };
    let now_ms = now_s() as i64 * 1000;
    assert_eq!(rest(KEY, SECRET, now_ms), (200, "0".into(), String::new()));
    assert_eq!(rest(KEY, "0000", now_ms), (401, "50113".into(), "Invalid signature.".into()));
    assert_eq!(rest(KEY, SECRET, now_ms - 31_000), (401, "50102".into(), "Timestamp request expired.".into()));
    assert_eq!(rest("nobody", SECRET, now_ms), (401, "50111".into(), "Invalid OK-ACCESS-KEY.".into()));
    sim.shutdown().unwrap();
}

#[test]
fn a_session_with_the_wrong_secret_never_becomes_ready() {
    let (sim, registry) = start_sim();
    let mut session = crossbar_connectors::okx::trade::OkxSession::new(session_config(&sim, &registry, "bad")).unwrap();
    let poll = mio::Poll::new().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while session.last_error_code() == 0 && std::time::Instant::now() < deadline {
        let now = crossbar_engine::clock::now_ns();
        session.maintain(now, poll.registry(), mio::Token(0));
        session.poll(now, &mut |_| {});
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(session.last_error_code(), 60007);
    assert!(!session.ready());
    let cmd = OrderCommand::Cancel { client_id: ClientOrderId(1), instrument: InstrumentId(0), venue: VenueId(0) };
    assert!(matches!(session.send(&cmd, 0), Err(crossbar_engine::gateway::GatewayError::Disconnected)));
    assert_eq!(session.stats().not_ready, 1);
    sim.shutdown().unwrap();
}

fn session_config(sim: &Simulator, registry: &Registry, secret: &str) -> SessionConfig {
    let i = &registry.instruments()[0];
    SessionConfig {
        venue: VenueId(0),
        venue_name: "okx".into(),
        protocol: Protocol::Okx,
        ws_url: sim.base_url("okx"),
        rest_url: sim.rest_url("okx"),
        credentials: credentials(KEY, secret, PASSPHRASE),
        instruments: vec![SessionInstrument {
            id: i.id,
            symbol: i.symbol.clone(),
            kind: i.kind,
            base: i.base.clone(),
            quote: i.quote.clone(),
            price_scale: i.price_scale,
            qty_scale: i.qty_scale,
            contract_size: i.contract_size,
        }],
        recv_window_ms: 5_000,
    }
}

/// Drives `session` (maintain + poll every millisecond) until `done` says so or 5 s pass;
/// every event it handed out.
fn drive(
    session: &mut OkxSession,
    poll: &mio::Poll,
    events: &mut Vec<OrderEvent>,
    done: impl Fn(&OkxSession, &[OrderEvent]) -> bool,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !done(session, events) {
        assert!(std::time::Instant::now() < deadline, "timed out: {events:?} {:?}", session.stats());
        let now = crossbar_engine::clock::now_ns();
        session.maintain(now, poll.registry(), mio::Token(0));
        session.poll(now, &mut |e| events.push(e));
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn new_order(order: NewOrder) -> OrderCommand {
    OrderCommand::New { order, stamps: OrderStamps::default() }
}

#[test]
fn a_session_trades_against_the_simulator_end_to_end() {
    let (sim, registry) = start_sim();
    sim.set_paused(true);
    let cfg = session_config(&sim, &registry, SECRET);
    let inst = cfg.instruments[0].clone();
    let mut session = OkxSession::new(cfg).unwrap();
    assert_eq!(session.gateway_name(), "okx-v5-ws");
    let poll = mio::Poll::new().unwrap();
    let mut events = Vec::new();
    drive(&mut session, &poll, &mut events, |s, _| s.ready());
    assert_eq!(session.stats().connects, 1);

    // An IOC buy at the best ask for part of its size: accepted, then filled there exactly.
    let book = sim.book_snapshot(InstrumentId(0)).unwrap();
    let (ask_px, ask_qty) = book.asks[0];
    let qty = Qty((ask_qty.0 / 2).max(1));
    let ioc = order(1, &inst, Side::Buy, ask_px.0, qty.0, TimeInForce::Ioc);
    session.send(&new_order(ioc), 0).unwrap();
    drive(&mut session, &poll, &mut events, |_, e| e.len() >= 2);
    let fee = crossbar_engine::fixed::to_decimal(ask_px.0, inst.price_scale)
        * crossbar_engine::fixed::to_decimal(qty.0, inst.qty_scale)
        * Decimal::new(4, 4);
    let kinds: Vec<_> = events.iter().map(|e| (e.client_id, e.side, e.kind)).collect();
    let OrderEventKind::Filled(fill) = kinds[1].2 else { panic!("{kinds:?}") };
    assert_eq!(kinds[0], (ClientOrderId(1), Side::Buy, OrderEventKind::Accepted));
    assert_eq!(
        (kinds[1].0, fill.px, fill.qty, fill.leaves_qty, fill.fee.normalize(), fill.taker),
        (ClientOrderId(1), ask_px, qty, Qty(0), fee.normalize(), true)
    );
    assert!(events.iter().all(|e| e.instrument == InstrumentId(0)));

    // A resting buy far below the market, then its cancel.
    let bid = book.bids[0].0;
    let gtc = order(2, &inst, Side::Buy, bid.0 / 2, qty.0, TimeInForce::Gtc);
    // The per-order path (encode, follow, write) allocates nothing once warm.
    let before = support::allocs();
    session.send(&new_order(gtc), 0).unwrap();
    assert_eq!(support::allocs() - before, 0);
    drive(&mut session, &poll, &mut events, |_, e| e.len() >= 3);
    assert_eq!((events[2].client_id, events[2].kind), (ClientOrderId(2), OrderEventKind::Accepted));
    let cancel = OrderCommand::Cancel { client_id: ClientOrderId(2), instrument: InstrumentId(0), venue: VenueId(0) };
    let before = support::allocs();
    session.send(&cancel, 0).unwrap();
    assert_eq!(support::allocs() - before, 0);
    drive(&mut session, &poll, &mut events, |_, e| e.len() >= 4);
    assert_eq!((events[3].client_id, events[3].kind), (ClientOrderId(2), OrderEventKind::Cancelled));

    // An order the account cannot pay for, and a cancel of an order that is gone.
    let huge = order(3, &inst, Side::Buy, ask_px.0, 1_000_000_000_000, TimeInForce::Ioc);
    session.send(&new_order(huge), 0).unwrap();
    drive(&mut session, &poll, &mut events, |_, e| e.len() >= 5);
    assert_eq!(
        (events[4].client_id, events[4].kind),
        (ClientOrderId(3), OrderEventKind::Rejected(RejectReason::InsufficientBalance))
    );
    session.send(&cancel, 0).unwrap();
    drive(&mut session, &poll, &mut events, |s, _| s.stats().rejects >= 2);
    let s = session.stats();
    assert_eq!(
        (s.orders_sent, s.cancels_sent, s.acks, s.fills, s.rejects, s.duplicate_fills, s.malformed, s.not_ready),
        (3, 2, 2, 1, 2, 0, 0, 0)
    );
    assert_eq!(events.len(), 5);

    // What the venue says the account holds.
    let state = session.venue_state(Duration::from_secs(5)).unwrap();
    assert_eq!(state.open_orders, []);
    assert_eq!(
        state.positions,
        Some(vec![(InstrumentId(0), crossbar_engine::fixed::to_decimal(qty.0, inst.qty_scale))])
    );
    assert_eq!(state.fills.len(), 1);
    assert_eq!(
        (state.fills[0].client_id, state.fills[0].side, state.fills[0].fill.px, state.fills[0].fill.qty),
        (ClientOrderId(1), Side::Buy, ask_px, qty)
    );
    assert_eq!(state.fills[0].fill.trade_id, fill.trade_id);
    assert_eq!(state.fills[0].fill.fee.normalize(), fee.normalize());
    sim.shutdown().unwrap();
}

/// A raw, logged-in private connection with the `orders` channel subscribed.
fn raw_session(sim: &Simulator) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>> {
    let (mut ws, _) = tungstenite::connect(format!("{}/ws/v5/private", sim.base_url("okx"))).unwrap();
    let signer = HmacSigner::new(&SecretString::new(SECRET.into()));
    let login = login_message(&SecretString::new(KEY.into()), &SecretString::new(PASSPHRASE.into()), &signer, now_s());
    ws.send(tungstenite::Message::text(login.as_str())).unwrap();
    assert_eq!(read_json(&mut ws)["code"], "0");
    ws.send(tungstenite::Message::text(
        r#"{"id":"s1","op":"subscribe","args":[{"channel":"orders","instType":"SWAP"}]}"#,
    ))
    .unwrap();
    let ack = read_json(&mut ws);
    assert_eq!((ack["event"].as_str(), ack["id"].as_str()), (Some("subscribe"), Some("s1")));
    assert_eq!(ack["arg"], serde_json::json!({"channel": "orders", "instType": "SWAP"}));
    ws
}

fn read_json(ws: &mut tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>) -> Value {
    loop {
        if let tungstenite::Message::Text(t) = ws.read().unwrap() {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

#[test]
fn the_simulator_answers_orders_with_okx_codes_and_pushes() {
    let (sim, _) = start_sim();
    sim.set_paused(true);
    let bid = sim.book_snapshot(InstrumentId(0)).unwrap().bids[0].0;
    let mut px = Vec::new();
    crossbar_connectors::order::write_fixed(&mut px, bid.0 / 2, Scale::new(1).unwrap());
    let px = String::from_utf8(px).unwrap();
    let mut ws = raw_session(&sim);
    let started = std::time::Instant::now();
    let place = |id: u64, sz: &str| {
        format!(
            r#"{{"id":"o{id}","op":"order","args":[{{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"limit","px":"{px}","sz":"{sz}","clOrdId":"xb{id}"}}]}}"#
        )
    };
    ws.send(tungstenite::Message::text(place(1, "0.01"))).unwrap();
    let ack = read_json(&mut ws);
    assert_eq!(
        (ack["id"].as_str(), ack["op"].as_str(), ack["code"].as_str(), ack["msg"].as_str()),
        (Some("o1"), Some("order"), Some("0"), Some(""))
    );
    let row = &ack["data"][0];
    assert_eq!(
        (row["clOrdId"].as_str(), row["sCode"].as_str(), row["sMsg"].as_str()),
        (Some("xb1"), Some("0"), Some("Order placed"))
    );
    let (t_in, t_out) = (
        ack["inTime"].as_str().unwrap().parse::<u64>().unwrap(),
        ack["outTime"].as_str().unwrap().parse::<u64>().unwrap(),
    );
    assert!(t_in <= t_out && t_in > now_s() * 1_000_000 - 60_000_000, "{t_in} {t_out}");
    let push = read_json(&mut ws);
    assert_eq!(push["arg"]["channel"], "orders");
    let o = &push["data"][0];
    assert_eq!(
        (
            o["clOrdId"].as_str(),
            o["ordId"].as_str(),
            o["state"].as_str(),
            o["px"].as_str(),
            o["sz"].as_str(),
            o["ordType"].as_str(),
            o["tdMode"].as_str(),
            o["tradeId"].as_str()
        ),
        (
            Some("xb1"),
            row["ordId"].as_str(),
            Some("live"),
            Some(px.as_str()),
            Some("0.01"),
            Some("limit"),
            Some("cross"),
            Some("")
        )
    );

    // More than the account's margin: the order's own code, the request's code "1".
    ws.send(tungstenite::Message::text(place(2, "1000000000"))).unwrap();
    let ack = read_json(&mut ws);
    assert_eq!(ack["code"], "1");
    assert_eq!(
        (ack["data"][0]["sCode"].as_str(), ack["data"][0]["sMsg"].as_str(), ack["data"][0]["ordId"].as_str()),
        (Some("51008"), Some("Order failed. Insufficient USDT margin in account"), Some(""))
    );
    // A cancel of an unknown order.
    ws.send(tungstenite::Message::text(
        r#"{"id":"c9","op":"cancel-order","args":[{"instId":"BTC-USDT-SWAP","clOrdId":"xb9"}]}"#,
    ))
    .unwrap();
    let ack = read_json(&mut ws);
    assert_eq!((ack["op"].as_str(), ack["code"].as_str()), (Some("cancel-order"), Some("1")));
    assert_eq!(
        (ack["data"][0]["sCode"].as_str(), ack["data"][0]["sMsg"].as_str()),
        (Some("51400"), Some("Order cancellation failed as the order has been filled, canceled or does not exist."))
    );
    // Malformed arguments.
    ws.send(tungstenite::Message::text(r#"{"id":"o3","op":"order","args":[]}"#)).unwrap();
    let ack = read_json(&mut ws);
    assert_eq!(
        (ack["code"].as_str(), ack["msg"].as_str(), ack["data"].as_array().map(Vec::len)),
        (Some("60013"), Some("Invalid args"), Some(0))
    );
    // 60 orders per 2 s per instrument: the 61st within the window is refused.
    let mut codes = Vec::new();
    for id in 10..70 {
        ws.send(tungstenite::Message::text(place(id, "0.01"))).unwrap();
        loop {
            let v = read_json(&mut ws);
            if v["op"] == "order" {
                codes.push(v["data"][0]["sCode"].as_str().unwrap().to_owned());
                break;
            }
        }
    }
    // The window counted o1 and o2 as well: 58 more pass, when all of it took under 2 s (a
    // slower machine lets the window move on, and more pass).
    if started.elapsed() < Duration::from_millis(1_900) {
        assert_eq!(codes.iter().filter(|c| *c == "0").count(), 58);
        assert_eq!(codes[58..], ["50011", "50011"]);
    } else {
        assert!(codes[..58].iter().all(|c| c == "0"), "{codes:?}");
    }
    sim.shutdown().unwrap();
}

/// A loopback TCP proxy to `target` whose connections the test can cut.
struct Proxy {
    addr: std::net::SocketAddr,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    fn start(target: std::net::SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let held = std::sync::Arc::clone(&conns);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(upstream) = std::net::TcpStream::connect(target) else { return };
                let pipe = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                };
                pipe(client.try_clone().unwrap(), upstream.try_clone().unwrap());
                pipe(upstream.try_clone().unwrap(), client.try_clone().unwrap());
                held.lock().unwrap().extend([client, upstream]);
            }
        });
        Self { addr, conns }
    }

    /// Cuts every connection made so far.
    fn cut(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
fn after_a_lost_connection_the_session_reconnects_and_cancels_what_was_open() {
    let (sim, registry) = start_sim();
    sim.set_paused(true);
    let proxy = Proxy::start(sim.addr());
    let mut cfg = session_config(&sim, &registry, SECRET);
    cfg.ws_url = format!("ws://{}/okx", proxy.addr);
    let inst = cfg.instruments[0].clone();
    let mut session = OkxSession::new(cfg).unwrap();
    let poll = mio::Poll::new().unwrap();
    let mut events = Vec::new();
    drive(&mut session, &poll, &mut events, |s, _| s.ready());
    let bid = sim.book_snapshot(InstrumentId(0)).unwrap().bids[0].0;
    session.send(&new_order(order(5, &inst, Side::Buy, bid.0 / 2, 10, TimeInForce::Gtc)), 0).unwrap();
    drive(&mut session, &poll, &mut events, |_, e| !e.is_empty());
    assert_eq!((events[0].client_id, events[0].kind), (ClientOrderId(5), OrderEventKind::Accepted));
    assert_eq!(sim.with_exchange(|ex| ex.open_orders(crossbar_connectors::sim::exchange::AccountId(0), None).len()), 1);

    proxy.cut();
    drive(&mut session, &poll, &mut events, |s, _| !s.ready());
    let cmd = new_order(order(6, &inst, Side::Buy, bid.0 / 2, 10, TimeInForce::Gtc));
    assert!(session.send(&cmd, 0).is_err());
    drive(&mut session, &poll, &mut events, |_, e| e.len() >= 2);
    assert_eq!((events[1].client_id, events[1].kind), (ClientOrderId(5), OrderEventKind::Cancelled));
    let s = session.stats();
    assert_eq!((s.connects, s.disconnects, s.cancel_alls, s.not_ready, s.orders_sent), (2, 1, 1, 1, 1));
    assert!(session.ready());
    assert_eq!(sim.with_exchange(|ex| ex.open_orders(crossbar_connectors::sim::exchange::AccountId(0), None).len()), 0);
    sim.shutdown().unwrap();
}
