//! Order encode + sign, per venue protocol: the last stage of tick-to-order before the bytes go
//! to the socket. Each is measured beside a plain baseline in the same run: the request built
//! with `format!`, signed with the `hmac` crate, and serialized with serde_json, the way a
//! straightforward client would.
//!
//! `cargo bench -p crossbar-benches --bench order_encode`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use crossbar_connectors::auth::SecretString;
use crossbar_connectors::binance::trade::BinanceSession;
use crossbar_connectors::bybit::trade::write_create;
use crossbar_connectors::okx::trade::codec::encode_order;
use crossbar_connectors::order::{Credentials, SecretKey, SessionConfig, SessionInstrument};
use crossbar_connectors::venue::Protocol;
use crossbar_engine::event::{ClientOrderId, NewOrder, OrderCommand, OrderStamps, Side, TimeInForce};
use crossbar_engine::fixed::{Px, Qty, Scale};
use crossbar_engine::instrument::{InstrumentId, InstrumentKind, VenueId};
use hmac::{Hmac, Mac};
use rust_decimal::Decimal;
use sha2::Sha256;

/// A made-up HMAC secret (64 characters, as Binance issues them).
const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
/// A made-up API key.
const API_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
/// A fixed request time, ms.
const TS: u64 = 1_764_201_600_123;

fn btc(kind: InstrumentKind, symbol: &str) -> SessionInstrument {
    SessionInstrument {
        id: InstrumentId(0),
        symbol: symbol.into(),
        kind,
        base: "BTC".into(),
        quote: "USDT".into(),
        price_scale: Scale::new(2).unwrap(),
        qty_scale: Scale::new(5).unwrap(),
        contract_size: Decimal::ONE,
    }
}

fn binance(key: SecretKey) -> BinanceSession {
    BinanceSession::new(SessionConfig {
        venue: VenueId(0),
        venue_name: "binance-spot".into(),
        protocol: Protocol::BinanceSpot,
        ws_url: "ws://127.0.0.1:9".into(),
        rest_url: "http://127.0.0.1:9".into(),
        credentials: Credentials { api_key: SecretString::new(API_KEY.into()), key, passphrase: None },
        instruments: vec![btc(InstrumentKind::Spot, "BTCUSDT")],
        recv_window_ms: 5_000,
    })
    .unwrap()
}

fn order() -> NewOrder {
    NewOrder {
        client_id: ClientOrderId(123_456 << ClientOrderId::STRATEGY_BITS),
        instrument: InstrumentId(0),
        venue: VenueId(0),
        side: Side::Buy,
        px: Px(6_500_012),
        qty: Qty(1_234),
        tif: TimeInForce::Ioc,
        reduce_only: false,
    }
}

/// The straightforward Binance `order.place`: params formatted, sorted, HMAC'd, serialized.
fn baseline_binance_hmac(mac: &Hmac<Sha256>, o: &NewOrder) -> String {
    let price = Decimal::new(o.px.0, 2).normalize().to_string();
    let qty = Decimal::new(o.qty.0, 5).normalize().to_string();
    let id = format!("xb{}", o.client_id.0);
    let ts = TS.to_string();
    let mut params = vec![
        ("apiKey", API_KEY.to_owned()),
        ("newClientOrderId", id.clone()),
        ("newOrderRespType", "ACK".to_owned()),
        ("price", price),
        ("quantity", qty),
        ("recvWindow", "5000".to_owned()),
        ("side", "BUY".to_owned()),
        ("symbol", "BTCUSDT".to_owned()),
        ("timeInForce", "IOC".to_owned()),
        ("timestamp", ts),
        ("type", "LIMIT".to_owned()),
    ];
    params.sort_by(|a, b| a.0.cmp(b.0));
    let payload = params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let mut mac = mac.clone();
    mac.update(payload.as_bytes());
    let sig: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let mut map = serde_json::Map::new();
    for (k, v) in params {
        map.insert(k.to_owned(), serde_json::Value::String(v));
    }
    map.insert("signature".into(), serde_json::Value::String(sig));
    serde_json::json!({ "id": id, "method": "order.place", "params": map }).to_string()
}

fn encode_and_sign(c: &mut Criterion) {
    let o = order();
    let cmd = OrderCommand::New { order: o, stamps: OrderStamps::default() };
    let mut g = c.benchmark_group("order_encode");

    let mut hmac_session = binance(SecretKey::Hmac(SecretString::new(SECRET.into())));
    g.bench_function("binance_order_place_hmac_signed", |b| {
        b.iter(|| black_box(hmac_session.encode(black_box(&cmd), TS).unwrap().len()))
    });
    let mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    g.bench_function("baseline_binance_order_place_hmac_format_serde", |b| {
        b.iter(|| black_box(baseline_binance_hmac(&mac, black_box(&o)).len()))
    });

    // After `session.logon` an Ed25519 session's orders carry no signature: encode only.
    let seed = [7u8; 32];
    let pem = ed25519_pem(&seed);
    let mut ed_session = binance(SecretKey::Ed25519(SecretString::new(pem)));
    g.bench_function("binance_order_place_ed25519_session", |b| {
        b.iter(|| black_box(ed_session.encode(black_box(&cmd), TS).unwrap().len()))
    });

    let linear = btc(InstrumentKind::Perpetual, "BTCUSDT");
    let mut out = Vec::with_capacity(1_024);
    g.bench_function("bybit_order_create_authed_connection", |b| {
        b.iter(|| {
            write_create(&mut out, "linear", &linear, black_box(&o), TS, 5_000);
            black_box(out.len())
        })
    });
    let swap = btc(InstrumentKind::Perpetual, "BTC-USDT-SWAP");
    g.bench_function("okx_order_logged_in_connection", |b| {
        b.iter(|| {
            encode_order(&mut out, &swap, black_box(&o));
            black_box(out.len())
        })
    });
    g.finish();
}

/// A PKCS#8 PEM of the Ed25519 key with this seed (RFC 8410 layout: a fixed 16-byte prefix).
fn ed25519_pem(seed: &[u8; 32]) -> String {
    use base64::Engine as _;
    let mut der = vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    der.extend_from_slice(seed);
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = encode_and_sign
}
criterion_main!(benches);
