//! The core keeps a depth book per instrument by the venue's procedure: it asks for a snapshot,
//! trades only once the book is whole, refuses orders after a gap, asks for a resync, and trades
//! again once whole.

use std::sync::Arc;

use crossbar_engine::core::Core;
use crossbar_engine::event::{
    BookUpdateKind, FeedStatus, Level, MarketBody, MarketEvent, OrderCommand, OrderEvent, Quote, SeqIds, Side,
    TimeInForce,
};
use crossbar_engine::fixed::{Px, Qty};
use crossbar_engine::instrument::{InstrumentConfig, InstrumentId, InstrumentKind, Registry};
use crossbar_engine::orderbook::{Resync, SyncRule, for_each_chunk};
use crossbar_engine::risk::{Refusal, RiskConfig};
use crossbar_engine::strategy::{Ctx, Intent, Strategy};
use rust_decimal::Decimal;

const ID: InstrumentId = InstrumentId(0);

/// Bids one lot at the best bid on every quote, whatever the book's state: risk must stop it.
struct AlwaysBid;

impl Strategy for AlwaysBid {
    fn name(&self) -> &str {
        "always-bid"
    }
    fn on_market(&mut self, ev: &MarketEvent, ctx: &mut Ctx<'_>) {
        if let MarketBody::Quote(q) = ev.body {
            ctx.submit(Intent {
                instrument: ID,
                side: Side::Buy,
                qty: Qty(1),
                limit_px: q.bid_px,
                tif: TimeInForce::Gtc,
                reduce_only: false,
                tag: 0,
            });
        }
    }
    fn on_order(&mut self, _: &OrderEvent, _: u32, _: &mut Ctx<'_>) {}
}

fn core() -> Core<AlwaysBid> {
    let cfg = InstrumentConfig {
        venue: "binance-usdm".into(),
        symbol: "BTCUSDT".into(),
        kind: InstrumentKind::Perpetual,
        base: "BTC".into(),
        quote: "USDT".into(),
        tick: "0.1".parse().unwrap(),
        lot: "0.001".parse().unwrap(),
        contract_size: Decimal::ONE,
        taker_fee: "0.0004".parse().unwrap(),
        maker_fee: "0.0002".parse().unwrap(),
    };
    let registry = Registry::new(&["binance-usdm".into()], &[cfg]).unwrap();
    Core::new(Arc::new(registry), vec![AlwaysBid], RiskConfig::default())
        .with_depth_books(&[Some(SyncRule::BinanceUsdm)], 100)
}

fn feed(
    core: &mut Core<AlwaysBid>,
    kind: BookUpdateKind,
    seq: SeqIds,
    levels: &[(Side, Level)],
    t: u64,
) -> Vec<OrderCommand> {
    let mut out = Vec::new();
    for_each_chunk(kind, levels, |chunk| {
        let ev = MarketEvent {
            instrument: ID,
            exch_ts_ms: 0,
            recv_ns: t,
            decoded_ns: t,
            seq,
            body: MarketBody::Book(chunk),
        };
        core.on_market(&ev, t, t, &mut |c| out.push(c));
    });
    out
}

fn quote(core: &mut Core<AlwaysBid>, t: u64) -> Vec<OrderCommand> {
    let q = Quote { bid_px: Px(1_000_000), bid_qty: Qty(5), ask_px: Px(1_000_001), ask_qty: Qty(5) };
    let ev = MarketEvent {
        instrument: ID,
        exch_ts_ms: 0,
        recv_ns: t,
        decoded_ns: t,
        seq: SeqIds::default(),
        body: MarketBody::Quote(q),
    };
    let mut out = Vec::new();
    core.on_market(&ev, t, t, &mut |c| out.push(c));
    out
}

fn lv(side: Side, px: i64, qty: i64) -> (Side, Level) {
    (side, Level { px: Px(px), qty: Qty(qty) })
}

fn diff(first: u64, last: u64, prev: u64) -> SeqIds {
    SeqIds { first, last, prev }
}

fn is_resync(cmds: &[OrderCommand]) -> bool {
    matches!(cmds, [OrderCommand::Resync { instrument: ID, how: Resync::FetchSnapshot, .. }])
}

fn refused(core: &Core<AlwaysBid>, reason: Refusal) -> u64 {
    core.risk().refusals().find(|(r, _)| *r == reason).map(|(_, n)| n).unwrap()
}

#[test]
fn trades_only_while_the_depth_book_is_whole() {
    let mut c = core();
    let (bid, ask) = (lv(Side::Buy, 1_000_000, 3), lv(Side::Sell, 1_000_001, 4));
    // Before any snapshot: the first diff is buffered and a snapshot is asked for, once.
    assert!(is_resync(&feed(&mut c, BookUpdateKind::Delta, diff(100, 105, 99), &[bid], 1_000)));
    assert!(feed(&mut c, BookUpdateKind::Delta, diff(106, 110, 105), &[ask], 2_000).is_empty());
    assert!(quote(&mut c, 3_000).is_empty(), "no order while the book is not whole");
    assert_eq!(refused(&c, Refusal::BookNotTradable), 1);
    // The snapshot (lastUpdateId 107) arrives; the buffered diff 106..110 bridges it: whole.
    assert!(
        feed(&mut c, BookUpdateKind::Snapshot, SeqIds { last: 107, ..SeqIds::default() }, &[bid, ask], 4_000)
            .is_empty()
    );
    let sync = c.depth_books().get(ID).unwrap();
    assert!(sync.whole(), "{:?}", sync.phase());
    assert_eq!(sync.book().best_bid(), Some(bid.1));
    assert!(feed(&mut c, BookUpdateKind::Delta, diff(111, 112, 110), &[lv(Side::Buy, 1_000_000, 7)], 5_000).is_empty());
    assert!(matches!(quote(&mut c, 6_000)[..], [OrderCommand::New { .. }]), "whole book: the order goes out");
    // A gap (pu 113 ≠ last u 112): not whole, a resync is asked for, orders are refused.
    assert!(is_resync(&feed(&mut c, BookUpdateKind::Delta, diff(114, 115, 113), &[ask], 7_000)));
    assert!(!c.books().get(ID).whole);
    assert!(quote(&mut c, 8_000).is_empty());
    assert_eq!(refused(&c, Refusal::BookNotTradable), 2);
    // Whole again after the resync: a new snapshot bridged by the stream.
    feed(&mut c, BookUpdateKind::Delta, diff(116, 118, 115), &[bid], 9_000);
    feed(&mut c, BookUpdateKind::Snapshot, SeqIds { last: 117, ..SeqIds::default() }, &[bid, ask], 10_000);
    feed(&mut c, BookUpdateKind::Delta, diff(119, 120, 118), &[ask], 11_000);
    assert!(c.books().get(ID).whole);
    assert!(matches!(quote(&mut c, 12_000)[..], [OrderCommand::New { .. }]));
    let stats = c.depth_books().get(ID).unwrap().stats();
    assert_eq!(stats.gaps, 1);
    // Whole at 10_000: the buffered diff 116..118 bridged the snapshot as it arrived.
    assert_eq!(stats.last_time_to_whole_ns, Some(10_000 - 7_000));
}

#[test]
fn after_a_disconnect_no_trading_until_the_new_connection_makes_the_book_whole() {
    let mut c = core();
    let (bid, ask) = (lv(Side::Buy, 1_000_000, 3), lv(Side::Sell, 1_000_001, 4));
    feed(&mut c, BookUpdateKind::Delta, diff(100, 105, 99), &[bid], 1_000);
    feed(&mut c, BookUpdateKind::Snapshot, SeqIds { last: 104, ..SeqIds::default() }, &[bid, ask], 2_000);
    assert!(matches!(quote(&mut c, 3_000)[..], [OrderCommand::New { .. }]));
    // The connection drops: a quote of the new connection can come before any depth message,
    // and must not trade on the book of the old one.
    for (t, status) in [(4_000, FeedStatus::Disconnected), (4_500, FeedStatus::Connected)] {
        let ev = MarketEvent {
            instrument: ID,
            exch_ts_ms: 0,
            recv_ns: t,
            decoded_ns: t,
            seq: SeqIds::default(),
            body: MarketBody::Status(status),
        };
        c.on_market(&ev, t, t, &mut |_| {});
    }
    assert!(!c.books().get(ID).whole, "connected again, but the book is not whole yet");
    assert!(quote(&mut c, 5_000).is_empty());
    assert_eq!(refused(&c, Refusal::BookNotTradable), 1);
}
