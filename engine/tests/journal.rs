//! The order journal: exact round trips of every record kind, torn tails cut at every byte,
//! corruption in the middle refused, and a core trading against the paper gateway whose orders
//! and positions are rebuilt from its journal exactly.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbar_engine::book::FundingSettled;
use crossbar_engine::core::Core;
use crossbar_engine::event::{
    ClientOrderId, Fill, Funding, MarketBody, MarketEvent, NewOrder, OrderEvent, OrderEventKind, OrderStamps, Quote,
    RejectReason, SeqIds, Side, TimeInForce,
};
use crossbar_engine::fixed::{Px, Qty, Rate};
use crossbar_engine::gateway::Gateway as _;
use crossbar_engine::instrument::{InstrumentConfig, InstrumentId, InstrumentKind, Registry, VenueId};
use crossbar_engine::journal::{
    self, Contents, Difference, FsyncPolicy, HEADER_LEN, JournalConfig, JournalError, JournalWriter, Record,
    Resolution, TornTail, VenueFill, VenueOrder, VenueState,
};
use crossbar_engine::oms::OrderState;
use crossbar_engine::paper::{PaperConfig, PaperGateway};
use crossbar_engine::ring::Ring;
use crossbar_engine::risk::RiskConfig;
use crossbar_engine::strategy::{Ctx, Intent, Strategy, StrategyId};
use rust_decimal::Decimal;

fn registry() -> Arc<Registry> {
    let cfg = |kind, symbol: &str, tick: &str, lot: &str| InstrumentConfig {
        venue: "v".into(),
        symbol: symbol.into(),
        kind,
        base: "BTC".into(),
        quote: "USDT".into(),
        tick: tick.parse().unwrap(),
        lot: lot.parse().unwrap(),
        contract_size: Decimal::ONE,
        taker_fee: "0.0004".parse().unwrap(),
        maker_fee: "0.0002".parse().unwrap(),
    };
    Arc::new(
        Registry::new(
            &["v".into()],
            &[
                cfg(InstrumentKind::Spot, "BTCUSDT", "0.01", "0.00001"),
                cfg(InstrumentKind::Perpetual, "BTCUSDT-P", "0.1", "0.001"),
            ],
        )
        .unwrap(),
    )
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crossbar-journal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

fn order(id: u64, inst: u32, side: Side, px: i64, qty: i64, tif: TimeInForce, reduce_only: bool) -> NewOrder {
    NewOrder {
        client_id: ClientOrderId(id),
        instrument: InstrumentId(inst),
        venue: VenueId(0),
        side,
        px: Px(px),
        qty: Qty(qty),
        tif,
        reduce_only,
    }
}

fn ev(id: u64, inst: u32, side: Side, kind: OrderEventKind) -> OrderEvent {
    OrderEvent {
        client_id: ClientOrderId(id),
        instrument: InstrumentId(inst),
        side,
        exch_ts_ms: 1_700_000_000_123,
        recv_ns: 987_654_321_012,
        kind,
    }
}

/// One record of every kind and variant, with edge values.
fn every_kind() -> Vec<Record> {
    let stamps = OrderStamps { tick_recv_ns: 1, decision_ns: u64::MAX, risk_passed_ns: 1_234_567_890 };
    let mut v = vec![
        Record::New {
            order: order(1, 0, Side::Buy, 6_500_012, 2_000, TimeInForce::Ioc, false),
            strategy: StrategyId(0),
            tag: 7,
            stamps,
        },
        Record::New {
            order: order(u64::MAX, 1, Side::Sell, i64::MAX, i64::MAX, TimeInForce::Gtc, true),
            strategy: StrategyId(u16::MAX),
            tag: u32::MAX,
            stamps,
        },
        Record::Cancel { client_id: ClientOrderId(42), instrument: InstrumentId(1), venue: VenueId(3) },
        Record::Event(ev(1, 0, Side::Buy, OrderEventKind::Accepted)),
        Record::Event(ev(
            1,
            0,
            Side::Buy,
            OrderEventKind::Filled(Fill {
                px: Px(6_500_012),
                qty: Qty(1_500),
                leaves_qty: Qty(500),
                fee: "0.039000072".parse().unwrap(),
                taker: true,
                trade_id: 99,
            }),
        )),
        Record::Event(ev(
            2,
            1,
            Side::Sell,
            OrderEventKind::Filled(Fill {
                px: Px(-5),
                qty: Qty(i64::MAX),
                leaves_qty: Qty(0),
                fee: "-79228162514264337593543950335".parse().unwrap(),
                taker: false,
                trade_id: u64::MAX,
            }),
        )),
        Record::Event(ev(3, 1, Side::Sell, OrderEventKind::Cancelled)),
        Record::Event(ev(4, 1, Side::Sell, OrderEventKind::Expired)),
        Record::Resolved(ev(5, 0, Side::Buy, OrderEventKind::Expired)),
    ];
    for r in [
        RejectReason::InsufficientBalance,
        RejectReason::InvalidOrder,
        RejectReason::RateLimited,
        RejectReason::MarketClosed,
        RejectReason::Transport,
        RejectReason::Other,
    ] {
        v.push(Record::Event(ev(6, 0, Side::Buy, OrderEventKind::Rejected(r))));
    }
    v.push(Record::Funding {
        instrument: InstrumentId(1),
        settled: FundingSettled {
            at_ms: 1_700_000_000_000,
            rate: Rate(-1_234_567_890_123),
            mark_px: Px(650_001_234_567_890),
        },
    });
    v
}

/// A journal file's bytes holding `records`, and where each record starts.
fn file_of(records: &[Record], registry: &Registry) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = journal::header().to_vec();
    let mut starts = Vec::new();
    for (i, r) in records.iter().enumerate() {
        starts.push(bytes.len());
        journal::encode(r, i as u64 + 1, registry, &mut bytes);
    }
    (bytes, starts)
}

#[test]
fn every_record_kind_round_trips_exactly() {
    let reg = registry();
    let records = every_kind();
    let (bytes, starts) = file_of(&records, &reg);
    let c = journal::parse(&bytes, &reg).unwrap();
    assert_eq!(c.records, records);
    assert_eq!((c.valid_len, c.torn, c.last_seq), (bytes.len() as u64, None, records.len() as u64));
    // The format is fixed: lengths per kind, and one record's bytes in full.
    let lens: Vec<usize> =
        starts.windows(2).map(|w| w[1] - w[0]).chain([bytes.len() - starts[starts.len() - 1]]).collect();
    assert_eq!(lens[lens.len() - 1], 8 + 40, "FUNDING");
    assert_eq!(&lens[..8], &[8 + 74, 8 + 74, 8 + 23, 8 + 40, 8 + 40 + 52, 8 + 40 + 52, 8 + 40, 8 + 40]);
    let cancel = &bytes[starts[2]..starts[3]];
    assert_eq!(&cancel[..4], &23u32.to_le_bytes());
    assert_eq!(
        &cancel[8..],
        &[1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3],
        "version 1, kind CANCEL, seq 3, client id 42, instrument 1, venue 3"
    );
    assert_eq!(&cancel[4..8], &0x91D5_D02Au32.to_le_bytes(), "CRC-32 (IEEE) of the payload");
}

#[test]
fn a_record_naming_an_unknown_instrument_or_another_scale_is_refused() {
    let reg = registry();
    let mut bytes = journal::header().to_vec();
    journal::encode(&Record::Event(ev(1, 9, Side::Buy, OrderEventKind::Accepted)), 1, &reg, &mut bytes);
    assert!(matches!(journal::parse(&bytes, &reg), Err(JournalError::Mismatch { offset: 16, .. })));
    // The same file read with a registry whose spot tick has more decimals.
    let (bytes, _) = file_of(&every_kind()[..1], &reg);
    let mut other = InstrumentConfig {
        venue: "v".into(),
        symbol: "BTCUSDT".into(),
        kind: InstrumentKind::Spot,
        base: "BTC".into(),
        quote: "USDT".into(),
        tick: "0.001".parse().unwrap(),
        lot: "0.00001".parse().unwrap(),
        contract_size: Decimal::ONE,
        taker_fee: Decimal::ZERO,
        maker_fee: Decimal::ZERO,
    };
    let reg2 = Registry::new(&["v".into()], std::slice::from_ref(&other)).unwrap();
    let e = journal::parse(&bytes, &reg2).unwrap_err();
    assert_eq!(
        e.to_string(),
        "journal record at byte 16: price scale differs from the instrument's; was the instrument config changed?"
    );
    other.tick = "0.01".parse().unwrap();
    let reg3 = Registry::new(&["v".into()], &[other]).unwrap();
    assert_eq!(journal::parse(&bytes, &reg3).unwrap().records.len(), 1);
}

#[test]
fn a_torn_last_record_is_cut_at_every_byte_and_the_rest_recovered() {
    let reg = registry();
    let records = every_kind();
    let (bytes, starts) = file_of(&records, &reg);
    let last = *starts.last().unwrap();
    let path = temp("torn.jnl");
    for cut in last..bytes.len() {
        let torn = (cut > last).then_some(TornTail { offset: last as u64, bytes: (cut - last) as u64 });
        let c = journal::parse(&bytes[..cut], &reg).unwrap();
        assert_eq!(c.records, records[..records.len() - 1], "cut at {cut}");
        assert_eq!((c.valid_len, c.torn), (last as u64, torn), "cut at {cut}");
        // Opening the file truncates the tail and appends after the last whole record.
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let opened = JournalWriter::open(&JournalConfig::new(&path, FsyncPolicy::Off), Arc::clone(&reg)).unwrap();
        assert_eq!(opened.contents.torn, torn);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), last as u64);
        let mut w = opened.writer;
        w.append(&records[0]);
        w.flush().unwrap();
        let again = journal::read(&path, &reg).unwrap();
        assert_eq!(again.records.len(), records.len());
        assert_eq!(again.records.last(), Some(&records[0]));
        assert_eq!((again.torn, again.last_seq), (None, records.len() as u64));
    }
    // A bad checksum in the last record's payload (a torn write the disk reordered) is a tail too.
    for at in last + 8..bytes.len() {
        let mut b = bytes.clone();
        b[at] ^= 0x40;
        let c = journal::parse(&b, &reg).unwrap();
        assert_eq!(c.torn, Some(TornTail { offset: last as u64, bytes: (bytes.len() - last) as u64 }), "byte {at}");
        assert_eq!(c.records.len(), records.len() - 1);
    }
    // Zeros the file system allocated past the last write.
    let mut b = bytes.clone();
    b.extend_from_slice(&[0; 4096]);
    let c = journal::parse(&b, &reg).unwrap();
    assert_eq!((c.records.len(), c.torn), (records.len(), Some(TornTail { offset: bytes.len() as u64, bytes: 4096 })));
    // A header cut short at creation: an empty journal.
    for cut in 1..HEADER_LEN {
        let c = journal::parse(&bytes[..cut], &reg).unwrap();
        assert_eq!((c.records.len(), c.torn), (0, Some(TornTail { offset: 0, bytes: cut as u64 })));
    }
}

#[test]
fn each_fsync_policy_syncs_as_configured() {
    let reg = registry();
    let records = every_kind();
    assert_eq!(records.len(), 16);
    for (name, fsync, batch_records, want) in [
        ("every", FsyncPolicy::Every, 64, 16),
        ("batched", FsyncPolicy::Batched, 5, 4), // after 5, 10, 15, and the last one at stop
        ("off", FsyncPolicy::Off, 64, 0),
    ] {
        let path = temp(&format!("fsync-{name}.jnl"));
        let cfg = JournalConfig { batch_records, batch_ms: 60_000, ..JournalConfig::new(&path, fsync) };
        let opened = JournalWriter::open(&cfg, Arc::clone(&reg)).unwrap();
        let stats = opened.writer.stats();
        let ring = Ring::new(64);
        for r in &records {
            ring.push_lossless(*r);
        }
        opened.writer.run(&ring, &AtomicBool::new(true)).unwrap();
        assert_eq!(stats.fsyncs.load(Ordering::Relaxed), want, "{name}");
        assert_eq!(stats.records.load(Ordering::Relaxed), 16, "{name}");
        assert_eq!(journal::read(&path, &reg).unwrap().records, records, "{name}");
    }
}

#[test]
fn corruption_in_the_middle_is_an_error_and_the_file_is_left_alone() {
    let reg = registry();
    let records = every_kind();
    let (bytes, starts) = file_of(&records, &reg);
    let path = temp("corrupt.jnl");
    let check = |b: &[u8], offset: usize, what: &str| {
        match journal::parse(b, &reg) {
            Err(JournalError::Corrupt { offset: o, what: w }) => assert_eq!((o, w), (offset as u64, what)),
            other => panic!("expected corruption at {offset}: {other:?}"),
        }
        std::fs::write(&path, b).unwrap();
        let e = JournalWriter::open(&JournalConfig::new(&path, FsyncPolicy::Off), Arc::clone(&reg)).unwrap_err();
        assert_eq!(e.to_string(), format!("journal corrupt at byte {offset}: {what}"));
        assert_eq!(std::fs::read(&path).unwrap(), b, "a corrupt journal is never rewritten");
    };
    // Every payload byte of every record but the last.
    for i in 0..records.len() - 1 {
        for at in starts[i] + 8..starts[i + 1] {
            let mut b = bytes.clone();
            b[at] ^= 0x01;
            check(&b, starts[i], "checksum mismatch");
        }
    }
    // A record missing from the middle: the sequence number gives it away.
    let mut b = bytes[..starts[3]].to_vec();
    b.extend_from_slice(&bytes[starts[4]..]);
    check(&b, starts[3], "record sequence number out of order");
    // A length no record has.
    let mut b = bytes.clone();
    b[starts[2]..starts[2] + 4].copy_from_slice(&1_000u32.to_le_bytes());
    check(&b, starts[2], "impossible record length");
    // Not a journal at all.
    let mut b = bytes.clone();
    b[0] = b'Y';
    assert!(matches!(journal::parse(&b, &reg), Err(JournalError::BadHeader)));
    b[0] = b'X';
    b[8] = 2;
    assert!(matches!(journal::parse(&b, &reg), Err(JournalError::Version(2))));
}

/// Trades both instruments on every quote in a fixed rotation: IOC takes that partly fill and
/// expire, GTC orders that rest and fill later as maker, nothing at all.
struct Churn {
    n: u64,
}

impl Strategy for Churn {
    fn name(&self) -> &str {
        "churn"
    }
    fn on_market(&mut self, ev: &MarketEvent, ctx: &mut Ctx<'_>) {
        let MarketBody::Quote(q) = ev.body else { return };
        self.n += 1;
        let (qty, tick) = if ev.instrument.0 == 0 { (Qty(2_000), 1) } else { (Qty(20), 1) };
        let (side, px, tif) = match self.n % 5 {
            0 => (Side::Buy, q.ask_px, TimeInForce::Ioc),
            1 => (Side::Sell, q.bid_px, TimeInForce::Ioc),
            2 => (Side::Buy, Px(q.bid_px.0 - tick), TimeInForce::Gtc),
            3 => (Side::Sell, Px(q.ask_px.0 + tick), TimeInForce::Gtc),
            _ => return,
        };
        ctx.submit(Intent {
            instrument: ev.instrument,
            side,
            qty,
            limit_px: px,
            tif,
            reduce_only: false,
            tag: self.n as u32,
        });
    }
    fn on_order(&mut self, _: &OrderEvent, _: u32, _: &mut Ctx<'_>) {}
}

fn quote(inst: u32, step: u64, t: u64) -> MarketEvent {
    // A deterministic walk of ±3 ticks around 65000, touch sizes that make takes partial.
    let wiggle = ((step * 2_654_435_761) >> 7) % 7;
    let (mid, lot) = if inst == 0 { (6_500_000 + wiggle as i64 * 3, 1_500) } else { (650_000 + wiggle as i64, 15) };
    MarketEvent {
        instrument: InstrumentId(inst),
        exch_ts_ms: 1_000 + step,
        recv_ns: t,
        decoded_ns: 0,
        seq: SeqIds::default(),
        body: MarketBody::Quote(Quote {
            bid_px: Px(mid - 1),
            bid_qty: Qty(lot),
            ask_px: Px(mid + 1),
            ask_qty: Qty(lot),
        }),
    }
}

/// A funding update of the perpetual whose next funding time moves on every time: each one
/// after the first settles the previous period.
fn funding(step: u64, t: u64) -> MarketEvent {
    MarketEvent {
        instrument: InstrumentId(1),
        exch_ts_ms: 1_000 + step,
        recv_ns: t,
        decoded_ns: 0,
        seq: SeqIds::default(),
        body: MarketBody::Funding(Funding {
            mark_px: Px(650_000_000_000_000 + step as i64 * 1_000_000),
            index_px: Px(649_990_000_000_000),
            rate: Rate(1_000_000_000_000 - step as i64 * 1_000_000_000),
            next_funding_ms: 1_000 + step,
        }),
    }
}

#[test]
fn orders_and_positions_rebuilt_from_the_journal_equal_the_live_core() {
    let reg = registry();
    let path = temp("recovery.jnl");
    let cfg = JournalConfig::new(&path, FsyncPolicy::Batched);
    let opened = JournalWriter::open(&cfg, Arc::clone(&reg)).unwrap();
    assert_eq!(opened.contents, Contents { valid_len: HEADER_LEN as u64, ..Contents::default() });
    let stats = opened.writer.stats();
    let ring = Ring::new(1 << 12);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (ring, stop) = (Arc::clone(&ring), Arc::clone(&stop));
        std::thread::spawn(move || opened.writer.run(&ring, &stop))
    };
    // Simulated time runs a µs per step: lift the venue order-rate bucket out of the way.
    let risk = RiskConfig { venue_orders_per_s: 100_000_000, venue_order_burst: 100_000, ..RiskConfig::default() };
    let mut core = Core::new(Arc::clone(&reg), vec![Churn { n: 0 }], risk).with_journal(ring);
    let mut paper = PaperGateway::new(Arc::clone(&reg), &PaperConfig { latency_us: 3, max_resting: 64 });
    let mut t = 1_000_000u64;
    let mut cmds = Vec::new();
    let mut events = Vec::new();
    for step in 0..3_000u64 {
        t += 1_000;
        let q = if step % 100 == 1 { funding(step, t) } else { quote((step % 2) as u32, step, t) };
        paper.on_market(&q);
        core.on_market(&q, t, t, &mut |c| cmds.push(c));
        if step == 2_500 {
            core.kill(&mut |c| cmds.push(c));
        }
        for c in cmds.drain(..) {
            paper.send(&c, t).unwrap();
        }
        paper.poll(t, &mut |e| events.push(e));
        for (i, e) in events.drain(..).enumerate() {
            core.on_order(&e, t, &mut |c| cmds.push(c));
            // Venues repeat themselves: every third event arrives twice.
            if (step + i as u64).is_multiple_of(3) {
                core.on_order(&e, t, &mut |c| cmds.push(c));
            }
        }
    }
    stop.store(true, Ordering::Release);
    writer.join().unwrap().unwrap();

    let live = core.oms();
    let c = live.counters();
    assert!(c.sent > 900 && c.fills > 500 && c.duplicates > 100 && c.cancelled > 100, "{c:?}");
    assert!(live.open_count() > 0, "orders still open when the engine stops");
    assert_eq!(core.counters().funding_settlements, 29);
    assert_ne!(core.portfolio().get(InstrumentId(1)).funding, Decimal::ZERO);
    let contents = journal::read(&path, &reg).unwrap();
    assert_eq!(contents.torn, None);
    assert_eq!(contents.records.len() as u64, stats.records.load(Ordering::Relaxed));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), HEADER_LEN as u64 + stats.bytes.load(Ordering::Relaxed));
    assert!(stats.fsyncs.load(Ordering::Relaxed) >= 1);

    let rebuilt = journal::rebuild(&contents.records, &reg, 1, 4_096);
    // Strategy 0's ids: the sequence number above the strategy bits.
    assert_eq!(rebuilt.last_client_id, c.sent << ClientOrderId::STRATEGY_BITS);
    assert_eq!(rebuilt.oms.counters(), c);
    assert_eq!(rebuilt.oms.open_count(), live.open_count());
    for id in (1..=c.sent).map(|n| n << ClientOrderId::STRATEGY_BITS) {
        assert_eq!(rebuilt.oms.get(ClientOrderId(id)), live.get(ClientOrderId(id)), "order {id}");
    }
    for i in 0..2 {
        let id = InstrumentId(i);
        assert_eq!(rebuilt.portfolio.get(id), core.portfolio().get(id), "instrument {i}");
        assert_eq!(rebuilt.portfolio.get_for(StrategyId(0), id), core.portfolio().get_for(StrategyId(0), id));
    }
    // The positions are exactly the sum of the distinct journaled fills.
    let mut seen = std::collections::HashSet::new();
    let mut qty = [0i64; 2];
    for r in &contents.records {
        if let Record::Event(e) = r
            && let OrderEventKind::Filled(f) = e.kind
            && seen.insert((e.client_id, f.trade_id))
        {
            qty[e.instrument.index()] += e.side.sign() * f.qty.0;
        }
    }
    assert_eq!(seen.len() as u64, c.fills);
    assert_eq!(rebuilt.portfolio.get(InstrumentId(0)).qty, Decimal::new(qty[0], 5));
    assert_eq!(rebuilt.portfolio.get(InstrumentId(1)).qty, Decimal::new(qty[1], 3));

    // Reconciled with the paper venue as it stands, nothing differs; with a fresh venue (the
    // process died with it), every open order is missing there and is ended locally.
    assert_eq!(journal::reconcile(&rebuilt, &paper.venue_state()), vec![]);
    let fresh = PaperGateway::new(Arc::clone(&reg), &PaperConfig::default()).venue_state();
    let diffs = journal::reconcile(&rebuilt, &fresh);
    assert_eq!(diffs.len(), live.open_count());
    let mut oms = rebuilt.oms;
    for d in &diffs {
        let Difference::MissingAtVenue { client_id } = *d else { panic!("{d:?}") };
        let Resolution::Local(e) = d.resolution(&oms) else { panic!("{d:?}") };
        assert_eq!((e.client_id, e.kind), (client_id, OrderEventKind::Expired));
        oms.apply(e.client_id, &e.kind);
        assert_eq!(oms.get(client_id).unwrap().state, OrderState::Expired);
    }
    assert_eq!(oms.open_count(), 0);
}

#[test]
fn reconciliation_reports_every_kind_of_difference() {
    let reg = registry();
    let records = [
        Record::New {
            order: order(1, 0, Side::Buy, 6_500_000, 2_000, TimeInForce::Gtc, false),
            strategy: StrategyId(0),
            tag: 0,
            stamps: OrderStamps::default(),
        },
        Record::New {
            order: order(2, 0, Side::Buy, 6_500_000, 2_000, TimeInForce::Gtc, false),
            strategy: StrategyId(0),
            tag: 0,
            stamps: OrderStamps::default(),
        },
        Record::Event(ev(
            2,
            0,
            Side::Buy,
            OrderEventKind::Filled(Fill {
                px: Px(6_500_000),
                qty: Qty(500),
                leaves_qty: Qty(1_500),
                fee: Decimal::ZERO,
                taker: false,
                trade_id: 1,
            }),
        )),
    ];
    let mut r = journal::rebuild(&records, &reg, 1, 16);
    let fill = |trade_id, qty| Fill {
        px: Px(6_500_000),
        qty: Qty(qty),
        leaves_qty: Qty(0),
        fee: "0.13".parse().unwrap(),
        taker: true,
        trade_id,
    };
    let venue_fill = |client_id, trade_id, qty| VenueFill {
        client_id: ClientOrderId(client_id),
        instrument: InstrumentId(0),
        side: Side::Buy,
        fill: fill(trade_id, qty),
    };
    let venue = VenueState {
        open_orders: vec![
            VenueOrder {
                client_id: ClientOrderId(2),
                instrument: InstrumentId(0),
                venue: VenueId(0),
                open_qty: Qty(1_000),
            },
            VenueOrder {
                client_id: ClientOrderId(7),
                instrument: InstrumentId(1),
                venue: VenueId(0),
                open_qty: Qty(5),
            },
        ],
        // Trade 1 the journal has; trade 2 it lost; order 9 it never knew.
        fills: vec![venue_fill(2, 2, 500), venue_fill(9, 1, 100), venue_fill(2, 1, 500)],
        positions: Some(vec![(InstrumentId(0), "0.01".parse().unwrap()), (InstrumentId(1), Decimal::ZERO)]),
    };
    let d = journal::reconcile(&r, &venue);
    assert_eq!(
        d,
        vec![
            Difference::MissingFill { fill: venue.fills[0] },
            Difference::MissingFill { fill: venue.fills[1] },
            Difference::MissingAtVenue { client_id: ClientOrderId(1) },
            Difference::OpenQty { client_id: ClientOrderId(2), local: Qty(1_500), venue: Qty(1_000) },
            Difference::UnknownLocally { order: venue.open_orders[1] },
            Difference::Position {
                instrument: InstrumentId(0),
                local: "0.00500".parse().unwrap(),
                venue: "0.01".parse().unwrap()
            },
        ]
    );
    assert_eq!(
        d[0].resolution(&r.oms),
        Resolution::Local(OrderEvent {
            client_id: ClientOrderId(2),
            instrument: InstrumentId(0),
            side: Side::Buy,
            exch_ts_ms: 0,
            recv_ns: 0,
            kind: OrderEventKind::Filled(fill(2, 500)),
        })
    );
    assert_eq!(d[1].resolution(&r.oms), Resolution::Adopt(venue.fills[1]), "a fill of an order never journaled");
    assert_eq!(d[4].resolution(&r.oms), Resolution::CancelAtVenue(venue.open_orders[1]));
    assert_eq!(d[3].resolution(&r.oms), Resolution::Operator);
    assert_eq!(d[5].resolution(&r.oms), Resolution::Operator);
    // Resolving the local ones (the lost fill first) settles quantity and position too.
    for x in &d {
        if let Resolution::Local(e) = x.resolution(&r.oms) {
            journal::replay_one(&mut r.oms, &mut r.portfolio, &reg, &Record::Resolved(e));
            if let OrderEventKind::Filled(f) = e.kind {
                r.fills.insert((e.client_id, f.trade_id));
            }
        }
    }
    assert_eq!(r.portfolio.get(InstrumentId(0)).qty, "0.01".parse::<Decimal>().unwrap());
    assert_eq!(r.portfolio.get(InstrumentId(0)).fees, "0.13".parse::<Decimal>().unwrap());
    assert_eq!(r.oms.get(ClientOrderId(1)).unwrap().state, OrderState::Expired);
    assert_eq!(
        journal::reconcile(&r, &venue),
        vec![
            Difference::MissingFill { fill: venue.fills[1] },
            Difference::UnknownLocally { order: venue.open_orders[1] }
        ]
    );
}

#[test]
fn resolve_adopts_an_order_the_journal_lost_for_the_strategy_its_id_names() {
    let reg = registry();
    // Strategy 1's fifth order reached the venue, but its `New` died with the process.
    let lost = ClientOrderId((5 << ClientOrderId::STRATEGY_BITS) | 1);
    assert_eq!(lost.strategy(), StrategyId(1));
    let mut r = journal::rebuild(&[], &reg, 2, 16);
    let fill = |trade_id, qty, leaves| VenueFill {
        client_id: lost,
        instrument: InstrumentId(0),
        side: Side::Buy,
        fill: Fill {
            px: Px(6_500_000),
            qty: Qty(qty),
            leaves_qty: Qty(leaves),
            fee: "0.01".parse().unwrap(),
            taker: true,
            trade_id,
        },
    };
    // An IOC for 0.01: two fills, the rest expired; nothing of it is open at the venue.
    let venue =
        VenueState { open_orders: vec![], fills: vec![fill(10, 300, 700), fill(11, 200, 500)], positions: None };
    let mut journaled = Vec::new();
    let out = journal::resolve(&mut r, &reg, &venue, |rec| journaled.push(*rec), |o| panic!("cancel {o:?}"));
    assert_eq!(out.adopted, 1);
    assert_eq!(out.resolved, 3, "adopt (with its first fill), the second fill, the end");
    assert_eq!(out.unresolved, vec![]);
    let o = r.oms.get(lost).unwrap();
    assert_eq!(
        (o.strategy, o.tag, o.order.qty, o.filled, o.state),
        (StrategyId(1), journal::ADOPTED_TAG, Qty(1_000), Qty(500), OrderState::Expired)
    );
    assert_eq!(r.portfolio.get(InstrumentId(0)).qty, "0.00500".parse::<Decimal>().unwrap());
    assert_eq!(r.portfolio.get(InstrumentId(0)).fees, "0.02".parse::<Decimal>().unwrap());
    let kinds: Vec<&str> = journaled
        .iter()
        .map(|rec| match rec {
            Record::New { .. } => "new",
            Record::Resolved(OrderEvent { kind: OrderEventKind::Filled(_), .. }) => "fill",
            Record::Resolved(OrderEvent { kind: OrderEventKind::Expired, .. }) => "expired",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["new", "fill", "fill", "expired"]);
    // Replaying what was journaled reaches the same state; new ids come after the venue's.
    let again = journal::rebuild(&journaled, &reg, 2, 16);
    assert_eq!(again.portfolio.get(InstrumentId(0)).qty, r.portfolio.get(InstrumentId(0)).qty);
    assert_eq!(r.oms.next_client_id(StrategyId(0)), ClientOrderId(6 << ClientOrderId::STRATEGY_BITS));
    assert_eq!(journal::reconcile(&r, &venue), vec![]);
}
