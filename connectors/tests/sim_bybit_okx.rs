//! Bybit v5 (spot, linear) and OKX v5 end to end over real loopback websockets: the real I/O
//! thread against the simulator. Books become whole from the snapshot the venue sends on
//! subscribe, follow its deltas, become whole again after a forced resubscribe, and end equal
//! to the simulator's books level for level; trades and funding decode to exactly what was on
//! the wire (a second, raw client tapping the same streams is the reference); application
//! pings are sent and answered.

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbar_connectors::io::{Heartbeat, IoReport, IoRings, IoThread};
use crossbar_connectors::sim::{SimConfig, Simulator};
use crossbar_connectors::venue::{Endpoints, GatewayKind, Protocol, VenueConfig, build_feeds};
use crossbar_engine::event::{BookUpdateKind, FeedStatus, Level, MarketBody, OrderCommand, Side};
use crossbar_engine::fixed::{Px, Qty, RATE_SCALE, REFERENCE_SCALE, Rate, Scale};
use crossbar_engine::instrument::{InstrumentKind, Registry, VenueId};
use crossbar_engine::orderbook::{BookSync, Resync};
use crossbar_engine::paper::{PaperConfig, PaperGateway};
use crossbar_engine::ring::{IdlePolicy, Ring};
use serde_json::Value;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

mod support;

/// One venue of `protocol` named after it, with one BTC instrument; its symbol and scales.
fn venue(protocol: Protocol) -> (Arc<Registry>, Vec<VenueConfig>, &'static str) {
    let (symbol, kind, tick) = match protocol {
        Protocol::BybitSpot => ("BTCUSDT", InstrumentKind::Spot, "0.01"),
        Protocol::BybitLinear => ("BTCUSDT", InstrumentKind::Perpetual, "0.1"),
        _ => ("BTC-USDT-SWAP", InstrumentKind::Perpetual, "0.1"),
    };
    let name = protocol.name();
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
        Registry::new(&[name.to_owned()], &[support::instrument(name, symbol, kind, "BTC", tick, "0.001")]).unwrap();
    (Arc::new(registry), venues, symbol)
}

/// What the raw tap saw: trades by id, funding by venue time, both as the wire spelled them.
#[derive(Default)]
struct Tap {
    trades: HashMap<String, (String, String, String)>,
    funding: HashMap<u64, Value>,
    frames: u64,
}

/// A raw client sending `subscribe` to `url` and recording every trade and funding frame
/// until `stop`.
fn tap(url: &str, subscribe: &[String], stop: Arc<AtomicBool>) -> JoinHandle<Tap> {
    let (mut ws, _) = tungstenite::connect(url).unwrap();
    for s in subscribe {
        ws.send(Message::text(s.clone())).unwrap();
    }
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    }
    std::thread::spawn(move || {
        let mut tap = Tap::default();
        while !stop.load(Ordering::Relaxed) {
            let Ok(Message::Text(text)) = ws.read() else { continue };
            tap.frames += 1;
            let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { continue };
            record(&mut tap, &v);
        }
        let _ = ws.close(None);
        tap
    })
}

fn record(tap: &mut Tap, v: &Value) {
    let s = |v: &Value| v.as_str().unwrap().to_owned();
    if v.get("event").is_some() {
        return; // OKX acks carry `arg` too
    }
    let topic = v["topic"].as_str().or(v["arg"]["channel"].as_str()).unwrap_or_default();
    if topic.starts_with("publicTrade.") {
        for t in v["data"].as_array().unwrap() {
            tap.trades.insert(s(&t["i"]), (s(&t["p"]), s(&t["v"]), s(&t["S"]).to_lowercase()));
        }
    } else if topic == "trades" {
        for t in v["data"].as_array().unwrap() {
            tap.trades.insert(s(&t["tradeId"]), (s(&t["px"]), s(&t["sz"]), s(&t["side"])));
        }
    } else if topic.starts_with("tickers.") {
        tap.funding.insert(v["ts"].as_u64().unwrap(), v["data"].clone());
    } else if topic == "funding-rate" {
        let d = &v["data"][0];
        tap.funding.insert(d["ts"].as_str().unwrap().parse().unwrap(), d.clone());
    }
}

fn px(s: &str, scale: Scale) -> Px {
    Px::parse(s.as_bytes(), scale).unwrap()
}

fn run(protocol: Protocol) {
    let (registry, venues, symbol) = venue(protocol);
    let inst = registry.instruments()[0].clone();
    let cfg = SimConfig { seed: 11, time_scale: 3_600.0, ..SimConfig::default() };
    let sim = Simulator::start_venues(&cfg, &registry, &venues, "127.0.0.1:0".parse().unwrap()).unwrap();
    let mut feeds =
        build_feeds(&venues, &registry, |v| Endpoints { ws: sim.base_url(&v.name), rest: sim.rest_url(&v.name) })
            .unwrap();
    let path = if protocol == Protocol::Okx { "/ws/v5/public" } else { "/v5/public/" };
    assert!(feeds[0].url.contains(path), "{}", feeds[0].url);
    assert!(feeds[0].subscribe[0].starts_with(r#"{"op":"subscribe","args":["#), "{:?}", feeds[0].subscribe);
    assert!(feeds[0].subscribe[0].contains(symbol));
    // Ping every 150 ms (Bybit on a schedule, OKX when quiet: books keep it busy, so OKX may
    // ping less); a 3 s idle timeout that a live feed never reaches.
    feeds[0].heartbeat.every_ns = 150_000_000;
    feeds[0].heartbeat.idle_timeout_ns = 3_000_000_000;
    let when_quiet = feeds[0].heartbeat.when_quiet;

    let tap_stop = Arc::new(AtomicBool::new(false));
    let tap = tap(&feeds[0].url, &feeds[0].subscribe, Arc::clone(&tap_stop));

    let rings = IoRings { market: Ring::new(1 << 16), orders: Ring::new(256), commands: Ring::new(256) };
    let gateway = PaperGateway::new(Arc::clone(&registry), &PaperConfig { latency_us: 100, max_resting: 16 });
    let io = IoThread::new(feeds, gateway, rings.clone(), IdlePolicy::Park).unwrap();
    let waker = io.waker();
    let stop = Arc::new(AtomicBool::new(false));
    let handle: JoinHandle<IoReport> = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || io.run(&stop))
    };

    let mut sync = BookSync::new(protocol.sync_rule(), 1_000, 4_096);
    let (mut snapshots, mut whole_after_resync, mut resynced) = (0u32, false, false);
    let mut trades = Vec::new();
    let mut funding = Vec::new();
    let mut quotes = 0u64;
    let mut consume = |sync: &mut BookSync, snapshots: &mut u32| {
        while let Some(ev) = rings.market.pop() {
            assert_eq!(ev.instrument, inst.id);
            match ev.body {
                MarketBody::Book(c) => {
                    if c.kind == BookUpdateKind::Snapshot && c.first {
                        *snapshots += 1;
                    }
                    sync.on_event(&ev);
                }
                MarketBody::Trade(t) => trades.push(t),
                MarketBody::Funding(f) => funding.push((ev.exch_ts_ms, f)),
                MarketBody::Quote(q) => {
                    assert!(q.bid_px < q.ask_px, "{q:?}");
                    quotes += 1;
                }
                _ => {}
            }
        }
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(3_000) {
        consume(&mut sync, &mut snapshots);
        if !resynced && started.elapsed() > Duration::from_millis(1_200) {
            assert!(sync.whole(), "book not whole after 1.2 s: {:?}", sync.stats());
            assert_eq!(snapshots, 1);
            // What the core does on a gap: ask the I/O thread to resync this book.
            let how = protocol.sync_rule().resync();
            assert_eq!(how, Resync::Resubscribe);
            rings.commands.push_lossless(OrderCommand::Resync { instrument: inst.id, venue: VenueId(0), how });
            waker.wake().unwrap();
            resynced = true;
        }
        if resynced && snapshots == 2 && sync.whole() {
            whole_after_resync = true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Freeze the market; its last diff reaches the feed; then stop the feed and compare.
    sim.pause();
    std::thread::sleep(Duration::from_millis(400));
    consume(&mut sync, &mut snapshots);
    stop.store(true, Ordering::Relaxed);
    let report = handle.join().unwrap();
    consume(&mut sync, &mut snapshots);
    tap_stop.store(true, Ordering::Relaxed);
    let tap = tap.join().unwrap();

    let c = report.counters;
    assert_eq!((c.connects, c.disconnects, c.decode_errors, c.idle_timeouts), (1, 0, 0, 0), "{c:?}");
    assert_eq!((c.resync_requests, c.resubscribes), (1, 1), "{c:?}");
    assert!(c.pings >= if when_quiet { 0 } else { 15 }, "{c:?}");
    assert_eq!(c.pongs, c.pings, "every ping answered: {c:?}");
    assert!(c.subscribe_acks >= 2, "{c:?}");
    assert!(whole_after_resync && snapshots == 2, "snapshots {snapshots}, stats {:?}", sync.stats());
    let stats = sync.stats();
    assert_eq!((stats.gaps, stats.unsynced, stats.crossed), (0, 0, 0), "{stats:?}");
    assert!(stats.applied > 20, "{stats:?}");
    assert!(quotes > 50, "quotes {quotes}");

    // The book equals the simulator's, level for level.
    assert!(sync.whole());
    let snap = sim.book_snapshot(inst.id).unwrap();
    let levels = |v: &[(Px, Qty)]| v.iter().map(|&(px, qty)| Level { px, qty }).collect::<Vec<_>>();
    let (bids, asks) = (levels(&snap.bids), levels(&snap.asks));
    assert_eq!(bids.len(), cfg.depth_levels);
    assert_eq!(sync.book().mismatch_with(&bids, &asks), None);
    assert_eq!(sync.book().depth(Side::Buy), cfg.depth_levels);

    // Trades: every one the feed decoded is on the tap's wire with exactly these values.
    assert!(trades.len() > 50, "trades {}", trades.len());
    for t in &trades {
        let (p, q, side) = tap.trades.get(t.trade_id.as_str()).unwrap_or_else(|| panic!("{t:?} not on the wire"));
        assert_eq!(t.px, px(p, inst.price_scale), "{t:?}");
        assert_eq!(t.qty, Qty::parse(q.as_bytes(), inst.qty_scale).unwrap(), "{t:?}");
        assert_eq!(t.aggressor, if side == "buy" { Side::Buy } else { Side::Sell }, "{t:?}");
    }
    // Funding: linear tickers and OKX funding-rate only, exactly as printed.
    if inst.kind == InstrumentKind::Perpetual {
        assert!(funding.len() >= 2, "funding {}", funding.len());
        for (ts, f) in &funding {
            let d = tap.funding.get(ts).unwrap_or_else(|| panic!("funding at {ts} not on the wire"));
            assert_eq!(f.rate, Rate::parse(d["fundingRate"].as_str().unwrap().as_bytes(), RATE_SCALE).unwrap());
            assert!(f.rate.0.abs() <= 30_000_000_000_000, "{f:?}");
            let next = if protocol == Protocol::Okx { &d["fundingTime"] } else { &d["nextFundingTime"] };
            assert_eq!(f.next_funding_ms, next.as_str().unwrap().parse::<u64>().unwrap());
            assert!(f.next_funding_ms > *ts, "{f:?}");
            if protocol == Protocol::Okx {
                assert_eq!((f.mark_px, f.index_px), (Px(0), Px(0)));
            } else {
                assert_eq!(f.mark_px, px(d["markPrice"].as_str().unwrap(), REFERENCE_SCALE));
                assert_eq!(f.index_px, px(d["indexPrice"].as_str().unwrap(), REFERENCE_SCALE));
                assert!(f.mark_px.0 > 0 && f.index_px.0 > 0, "{f:?}");
            }
        }
    } else {
        assert!(funding.is_empty() && tap.funding.is_empty());
    }
    assert!(tap.frames > 100, "tap frames {}", tap.frames);
    drop(sim);
}

#[test]
fn bybit_spot_end_to_end() {
    run(Protocol::BybitSpot);
}

#[test]
fn bybit_linear_end_to_end() {
    run(Protocol::BybitLinear);
}

#[test]
fn okx_end_to_end() {
    run(Protocol::Okx);
}

/// Raw wire checks: the acks, the heartbeat replies and the snapshot-first rule, as a client
/// sees them.
#[test]
fn acks_pongs_and_snapshot_first() {
    for protocol in [Protocol::BybitLinear, Protocol::Okx] {
        let (registry, venues, symbol) = venue(protocol);
        let sim =
            Simulator::start_venues(&SimConfig::default(), &registry, &venues, "127.0.0.1:0".parse().unwrap()).unwrap();
        let feeds =
            build_feeds(&venues, &registry, |v| Endpoints { ws: sim.base_url(&v.name), rest: sim.rest_url(&v.name) })
                .unwrap();
        let (mut ws, _): (WebSocket<MaybeTlsStream<TcpStream>>, _) = tungstenite::connect(&feeds[0].url).unwrap();
        let next = |ws: &mut WebSocket<MaybeTlsStream<TcpStream>>| loop {
            if let Message::Text(t) = ws.read().unwrap() {
                break t.as_str().to_owned();
            }
        };
        let okx = protocol == Protocol::Okx;
        ws.send(Message::text(if okx { "ping" } else { r#"{"op":"ping"}"# })).unwrap();
        let pong = next(&mut ws);
        if okx {
            assert_eq!(pong, "pong");
        } else {
            assert!(
                pong.starts_with(r#"{"success":true,"ret_msg":"pong","#) && pong.ends_with(r#""op":"ping"}"#),
                "{pong}"
            );
        }
        ws.send(Message::text(feeds[0].resubscribe[0].1[1].clone())).unwrap();
        let ack = next(&mut ws);
        let snapshot = next(&mut ws);
        let delta = next(&mut ws);
        let (ack, snapshot, delta): (Value, Value, Value) = (
            serde_json::from_str(&ack).unwrap(),
            serde_json::from_str(&snapshot).unwrap(),
            serde_json::from_str(&delta).unwrap(),
        );
        if okx {
            assert_eq!(ack["event"], "subscribe");
            assert_eq!(ack["arg"]["instId"], symbol);
            assert_eq!((&snapshot["action"], &delta["action"]), (&Value::from("snapshot"), &Value::from("update")));
            assert_eq!(snapshot["data"][0]["prevSeqId"], -1);
            assert_eq!(delta["data"][0]["prevSeqId"], snapshot["data"][0]["seqId"]);
            assert_eq!(snapshot["data"][0]["checksum"], 0);
            assert_eq!(snapshot["data"][0]["bids"].as_array().unwrap().len(), 20);
        } else {
            assert_eq!((&ack["success"], &ack["op"]), (&Value::Bool(true), &Value::from("subscribe")));
            assert_eq!(snapshot["topic"], format!("orderbook.50.{symbol}"));
            assert_eq!((&snapshot["type"], &delta["type"]), (&Value::from("snapshot"), &Value::from("delta")));
            assert_eq!(delta["data"]["u"].as_u64().unwrap(), snapshot["data"]["u"].as_u64().unwrap() + 1);
            assert_eq!(snapshot["data"]["b"].as_array().unwrap().len(), 20);
        }
        // An unknown topic is refused, the venue's way.
        let bad = if okx {
            r#"{"op":"subscribe","args":[{"channel":"books","instId":"DOGE-USDT"}]}"#
        } else {
            r#"{"op":"subscribe","args":["orderbook.50.DOGEUSDT"]}"#
        };
        ws.send(Message::text(bad)).unwrap();
        let refused: Value = loop {
            let v: Value = serde_json::from_str(&next(&mut ws)).unwrap();
            if v.get("topic").is_none() && v.get("arg").is_none_or(|_| v.get("event").is_some()) {
                break v;
            }
        };
        if okx {
            assert_eq!((&refused["event"], &refused["code"]), (&Value::from("error"), &Value::from("60018")));
        } else {
            assert_eq!(refused["success"], false);
        }
        drop(ws);
        drop(sim);
    }
}

/// A connection on which nothing arrives for the idle timeout is presumed dead: the I/O thread
/// drops it and reconnects (and resubscribes), on every venue. A live feed never trips it.
#[test]
fn a_silent_feed_is_reconnected_after_the_idle_timeout() {
    for protocol in [Protocol::Okx, Protocol::BinanceSpot] {
        let (registry, venues) = if protocol == Protocol::Okx {
            let (r, v, _) = venue(protocol);
            (r, v)
        } else {
            let (r, mut v) = support::binance_btc_venues();
            v.truncate(1);
            (r, v)
        };
        let sim =
            Simulator::start_venues(&SimConfig::default(), &registry, &venues, "127.0.0.1:0".parse().unwrap()).unwrap();
        let mut feeds =
            build_feeds(&venues, &registry, |v| Endpoints { ws: sim.base_url(&v.name), rest: sim.rest_url(&v.name) })
                .unwrap();
        // No application ping, so only the venue's own frames keep the connection alive.
        feeds[0].heartbeat = Heartbeat { ping: None, every_ns: 0, when_quiet: false, idle_timeout_ns: 400_000_000 };
        let rings = IoRings { market: Ring::new(1 << 16), orders: Ring::new(256), commands: Ring::new(256) };
        let gateway = PaperGateway::new(Arc::clone(&registry), &PaperConfig { latency_us: 100, max_resting: 16 });
        let io = IoThread::new(feeds, gateway, rings.clone(), IdlePolicy::Park).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || io.run(&stop))
        };
        let (mut statuses, mut events) = (Vec::new(), 0u64);
        let mut drain_for = |d: Duration, paused: bool| {
            let t = Instant::now();
            while t.elapsed() < d {
                match rings.market.pop() {
                    Some(ev) => match ev.body {
                        MarketBody::Status(s) => statuses.push((s, paused)),
                        _ => events += 1,
                    },
                    None => std::thread::sleep(Duration::from_micros(200)),
                }
            }
        };
        drain_for(Duration::from_millis(1_200), false);
        sim.pause();
        drain_for(Duration::from_millis(1_500), true);
        stop.store(true, Ordering::Relaxed);
        let c = handle.join().unwrap().counters;
        let name = protocol.name();
        assert!(events > 100, "{name}: {events} events");
        assert!((2..=5).contains(&c.idle_timeouts), "{name}: {c:?}");
        assert_eq!(c.disconnects, c.idle_timeouts, "{name}: {c:?}");
        assert!(c.connects >= c.idle_timeouts && c.connects <= c.idle_timeouts + 1, "{name}: {c:?}");
        // The only status while live is the first connect; every drop came after the pause.
        assert_eq!(statuses.first(), Some(&(FeedStatus::Connected, false)), "{name}: {statuses:?}");
        let disconnected: Vec<bool> =
            statuses.iter().filter(|(s, _)| *s == FeedStatus::Disconnected).map(|&(_, paused)| paused).collect();
        assert_eq!(disconnected.len() as u64, c.idle_timeouts, "{name}: {statuses:?}");
        assert!(disconnected.iter().all(|&paused| paused), "{name}: {statuses:?}");
        drop(sim);
    }
}
