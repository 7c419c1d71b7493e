//! The core's stages one at a time, on the fixture's BTCUSDT spot/perp books: applying a quote
//! to the top of book and a 5 + 5 level delta to a sequenced depth book, the basis strategy's
//! decision, the pre-trade risk check of one intent, the smart order router's plan
//! across three venues plus the risk check of each child, and the paper gateway taking an order
//! and filling it.
//!
//! `cargo bench -p crossbar-benches --bench core_stages`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use crossbar_benches::{SPOT, USDM, basis_strategy, registry, spot_book_ticker, usdm_book_ticker};
use crossbar_connectors::binance::{BinanceDecoder, BinanceMarket};
use crossbar_connectors::feed::{FeedDecoder, SymbolTable};
use crossbar_engine::book::Books;
use crossbar_engine::event::{
    ClientOrderId, MarketBody, MarketEvent, NewOrder, OrderCommand, OrderStamps, Side, TimeInForce,
};
use crossbar_engine::fixed::Qty;
use crossbar_engine::gateway::Gateway;
use crossbar_engine::instrument::Registry;
use crossbar_engine::paper::{PaperConfig, PaperGateway};
use crossbar_engine::portfolio::Portfolio;
use crossbar_engine::risk::{Risk, RiskConfig, RiskInputs};
use crossbar_engine::strategy::{Ctx, Intent, Intents, Strategy, StrategyId};

/// Decodes one spot and one perp quote (perp `perp_over` above spot) at `recv_ns`.
fn quotes(registry: &Registry, perp_over: u64, recv_ns: u64) -> [MarketEvent; 2] {
    let mut out = Vec::with_capacity(4);
    for (venue, market, mut frame) in [
        (SPOT, BinanceMarket::Spot, spot_book_ticker(10, "65000.00", "65000.01")),
        (
            USDM,
            BinanceMarket::UsdM,
            usdm_book_ticker(10, &format!("{}.0", 65_000 + perp_over), &format!("{}.1", 65_000 + perp_over)),
        ),
    ] {
        let id = registry.venue_id(venue).unwrap();
        let mut d = BinanceDecoder::new(market, SymbolTable::for_venue(registry, id));
        d.decode(&mut frame, recv_ns, &mut out).unwrap();
    }
    [out[0], out[1]]
}

/// Book apply: a decoded quote onto the top of book (what every `bookTicker` costs the core),
/// and a 5 bid + 5 ask delta through the venue sequencer into a 50-level depth book (continuity
/// check, level updates, top of book refreshed), with the update id advancing every iteration so
/// each one is applied, never ignored as stale.
fn book_apply(c: &mut Criterion) {
    use crossbar_engine::core::DepthBooks;
    use crossbar_engine::event::{BookUpdateKind, Level, SeqIds};
    use crossbar_engine::fixed::Px;
    use crossbar_engine::orderbook::{SyncRule, for_each_chunk};

    let registry = registry();
    let mut books = Books::new(registry.len());
    let evs = quotes(&registry, 80, 1_000);
    c.bench_function("book_apply_quote", |b| b.iter(|| black_box(books.apply(black_box(&evs[1])))));

    let perp = evs[1].instrument;
    let mut depth = DepthBooks::new(&[None, Some(SyncRule::Bybit)], 50);
    let chunks = |kind, seq: u64, levels: &[(Side, Level)], out: &mut Vec<MarketEvent>| {
        out.clear();
        for_each_chunk(kind, levels, |chunk| {
            out.push(MarketEvent {
                instrument: perp,
                exch_ts_ms: 0,
                recv_ns: 1_000,
                decoded_ns: 1_000,
                seq: SeqIds { first: seq, last: seq, prev: seq - 1 },
                body: MarketBody::Book(chunk),
            });
        });
    };
    let level = |side, px: i64, qty: i64| (side, Level { px: Px(px), qty: Qty(qty) });
    let snapshot: Vec<_> = (0..25)
        .flat_map(|i| [level(Side::Buy, 649_990 - i, 1_000 + i), level(Side::Sell, 650_000 + i, 1_000 + i)])
        .collect();
    let mut msg = Vec::with_capacity(8);
    chunks(BookUpdateKind::Snapshot, 1, &snapshot, &mut msg);
    for ev in &msg {
        depth.on_event(ev, &registry, &mut books, &mut |_| {});
    }
    // Quantities change at the five best levels of each side (never to zero, so the book keeps
    // its shape however many iterations run).
    let delta: Vec<_> = (0..5)
        .flat_map(|i| [level(Side::Buy, 649_990 - i, 2_000 + i), level(Side::Sell, 650_000 + i, 3_000 + i)])
        .collect();
    let mut seq = 1u64;
    let mut commands = 0u64;
    c.bench_function("book_apply_depth_delta_5x5", |b| {
        b.iter(|| {
            seq += 1;
            chunks(BookUpdateKind::Delta, seq, &delta, &mut msg);
            for ev in &msg {
                depth.on_event(black_box(ev), &registry, &mut books, &mut |_| commands += 1);
            }
        })
    });
    assert_eq!(commands, 0, "every delta must apply in sequence (no resync asked)");
    assert!(books.get(perp).whole, "the depth book must stay whole");
}

fn strategy_decision(c: &mut Criterion) {
    let registry = registry();
    let mut books = Books::new(registry.len());
    let portfolio = Portfolio::new(registry.len(), 1);
    // Narrow basis and no position: the strategy looks at both books and decides to do nothing,
    // the path of almost every tick.
    let evs = quotes(&registry, 0, 1_000);
    for ev in &evs {
        books.apply(ev);
    }
    let mut strategy = basis_strategy(&registry);
    let mut intents = Intents::with_capacity(64);
    c.bench_function("strategy_decision_basis_no_trade", |b| {
        b.iter(|| {
            let mut ctx = Ctx::new(2_000, &registry, &books, &portfolio, false, StrategyId(0), &mut intents);
            strategy.on_market(black_box(&evs[1]), &mut ctx);
        })
    });
    assert!(intents.is_empty());
}

fn risk_check(c: &mut Criterion) {
    let registry = registry();
    let mut books = Books::new(registry.len());
    let portfolio = Portfolio::new(registry.len(), 1);
    let evs = quotes(&registry, 80, 1_000);
    for ev in &evs {
        books.apply(ev);
    }
    let spot = registry.get(evs[0].instrument);
    let intent = Intent {
        instrument: spot.id,
        side: Side::Buy,
        qty: Qty::parse(b"0.01", spot.qty_scale).unwrap(),
        limit_px: books.get(spot.id).quote.ask_px,
        tif: TimeInForce::Ioc,
        reduce_only: false,
        tag: 0,
    };
    let mut risk = Risk::new(RiskConfig::default());
    let inputs = RiskInputs {
        registry: &registry,
        books: &books,
        portfolio: &portfolio,
        open_orders: 0,
        halted: false,
        now_ns: 2_000,
    };
    assert_eq!(risk.check(&intent, &inputs), Ok(()), "the benchmarked intent must pass");
    c.bench_function("risk_check_pass", |b| b.iter(|| black_box(risk.check(black_box(&intent), &inputs))));
}

/// Three BTCUSDT perpetual venues (taker 5, 2 and 10 bps), ten ask levels each, kept as depth
/// books: plan a 1.5 BTC buy across them by effective price, then risk-check every child. The
/// stage a routed strategy intent adds before the OMS.
fn route_and_risk(c: &mut Criterion) {
    use crossbar_engine::core::DepthBooks;
    use crossbar_engine::event::{BookUpdateKind, Level, Quote, SeqIds};
    use crossbar_engine::fixed::Px;
    use crossbar_engine::instrument::{InstrumentConfig, InstrumentKind};
    use crossbar_engine::orderbook::{SyncRule, for_each_chunk};
    use crossbar_engine::router::{RouteIntent, Router, Urgency};

    let perp = |venue: &str, fee: &str| InstrumentConfig {
        venue: venue.into(),
        symbol: "BTCUSDT".into(),
        kind: InstrumentKind::Perpetual,
        base: "BTC".into(),
        quote: "USDT".into(),
        tick: "0.1".parse().unwrap(),
        lot: "0.001".parse().unwrap(),
        contract_size: "1".parse().unwrap(),
        taker_fee: fee.parse().unwrap(),
        maker_fee: "0".parse().unwrap(),
    };
    let registry = Registry::new(
        &["a".into(), "b".into(), "c".into()],
        &[perp("a", "0.0005"), perp("b", "0.0002"), perp("c", "0.0010")],
    )
    .unwrap();
    let mut books = Books::new(3);
    let mut depth = DepthBooks::new(&[Some(SyncRule::Bybit); 3], 50);
    for inst in registry.instruments() {
        // Asks offset so the fee-inclusive prices interleave (≈ 65013.0 at each venue's best).
        let off = [-190, 0, -520][inst.id.index()];
        let mut levels = vec![(Side::Buy, Level { px: Px(649_000), qty: Qty(1_000) })];
        levels.extend((0..10).map(|i| (Side::Sell, Level { px: Px(650_000 + off + i * 2), qty: Qty(200) })));
        for_each_chunk(BookUpdateKind::Snapshot, &levels, |chunk| {
            let ev = MarketEvent {
                instrument: inst.id,
                exch_ts_ms: 0,
                recv_ns: 1_000,
                decoded_ns: 1_000,
                seq: SeqIds { last: 1, ..SeqIds::default() },
                body: MarketBody::Book(chunk),
            };
            depth.on_event(&ev, &registry, &mut books, &mut |_| {});
        });
        books.apply(&MarketEvent {
            instrument: inst.id,
            exch_ts_ms: 0,
            recv_ns: 1_000,
            decoded_ns: 1_000,
            seq: SeqIds { last: 1, ..SeqIds::default() },
            body: MarketBody::Quote(Quote {
                bid_px: Px(649_000),
                bid_qty: Qty(1_000),
                ask_px: Px(650_000 + off),
                ask_qty: Qty(200),
            }),
        });
    }
    let router = Router::new(&registry);
    let portfolio = Portfolio::new(3, 1);
    let mut risk = Risk::new(RiskConfig {
        venue_orders_per_s: 1_000_000_000,
        venue_order_burst: u32::MAX,
        ..RiskConfig::default()
    });
    let intent = RouteIntent {
        instrument: registry.instruments()[0].id,
        side: Side::Buy,
        qty: Qty(1_500),
        limit_px: Px(651_000),
        urgency: Urgency::Normal,
        tag: 0,
    };
    let inputs = RiskInputs {
        registry: &registry,
        books: &books,
        portfolio: &portfolio,
        open_orders: 0,
        halted: false,
        now_ns: 2_000,
    };
    let units = router.intent_units(&intent);
    let plan = router.plan_units(&intent, units, &books, &depth, 0, |_| true);
    assert_eq!(plan.len, 3, "the bench must split across all three venues: {plan:?}");
    c.bench_function("route_3_venues_plus_risk", |b| {
        b.iter(|| {
            let plan = router.plan_units(black_box(&intent), units, &books, &depth, 0, |_| true);
            for child in plan.children() {
                let i = Intent {
                    instrument: child.instrument,
                    side: intent.side,
                    qty: child.qty,
                    limit_px: child.limit_px,
                    tif: TimeInForce::Ioc,
                    reduce_only: false,
                    tag: 0,
                };
                black_box(risk.check(&i, &inputs)).unwrap();
            }
        })
    });
}

fn paper_gateway(c: &mut Criterion) {
    let registry = registry();
    let mut gw = PaperGateway::new(Arc::clone(&registry), &PaperConfig { latency_us: 0, max_resting: 64 });
    let evs = quotes(&registry, 80, 1_000);
    for ev in &evs {
        gw.on_market(ev);
    }
    let spot = registry.get(evs[0].instrument);
    let MarketBody::Quote(q) = evs[0].body else { unreachable!("a book ticker decodes to a quote") };
    let ask = q.ask_px;
    let mut order = NewOrder {
        client_id: ClientOrderId(1),
        instrument: spot.id,
        venue: spot.venue,
        side: Side::Buy,
        px: ask,
        qty: Qty::parse(b"0.01", spot.qty_scale).unwrap(),
        tif: TimeInForce::Ioc,
        reduce_only: false,
    };
    // One order before timing: it must fill (a bench filtered out by name never runs its loop).
    gw.send(&OrderCommand::New { order, stamps: OrderStamps::default() }, 2_000).unwrap();
    let mut n = 0u64;
    gw.poll(u64::MAX, &mut |_| n += 1);
    assert!(n > 0, "the benchmarked order must be answered");
    c.bench_function("paper_gateway_send_and_fill", |b| {
        b.iter(|| {
            order.client_id = ClientOrderId(order.client_id.0 + 1);
            gw.send(&OrderCommand::New { order, stamps: OrderStamps::default() }, 2_000).unwrap();
            gw.poll(u64::MAX, &mut |ev| {
                n += 1;
                black_box(ev);
            });
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = book_apply, strategy_decision, risk_check, route_and_risk, paper_gateway
}
criterion_main!(benches);
