//! The order state machine through every transition, with the counters each one moves: the
//! normal path, a fill before its ack, a duplicate ack and fill, a cancel racing a fill, a
//! reject, an IOC expiry, and events for an order never sent.

use crossbar_engine::event::{ClientOrderId, Fill, NewOrder, OrderEventKind, RejectReason, Side, TimeInForce};
use crossbar_engine::fixed::{Px, Qty};
use crossbar_engine::instrument::{InstrumentId, VenueId};
use crossbar_engine::oms::{Applied, Oms, OrderState};
use crossbar_engine::strategy::StrategyId;
use rust_decimal::Decimal;

fn send(oms: &mut Oms, qty: i64) -> ClientOrderId {
    let id = oms.next_client_id(StrategyId(0));
    oms.on_sent(
        NewOrder {
            client_id: id,
            instrument: InstrumentId(0),
            venue: VenueId(0),
            side: Side::Sell,
            px: Px(500),
            qty: Qty(qty),
            tif: TimeInForce::Gtc,
            reduce_only: false,
        },
        StrategyId(0),
        1,
    );
    id
}

fn fill(qty: i64, leaves: i64, trade_id: u64) -> OrderEventKind {
    OrderEventKind::Filled(Fill {
        px: Px(500),
        qty: Qty(qty),
        leaves_qty: Qty(leaves),
        fee: Decimal::ZERO,
        taker: false,
        trade_id,
    })
}

fn state(oms: &Oms, id: ClientOrderId) -> OrderState {
    oms.get(id).unwrap().state
}

#[test]
fn every_transition_idempotent_and_counted() {
    let mut oms = Oms::new(16, 100 << ClientOrderId::STRATEGY_BITS);

    // 1: new → sent → acked → partially filled → partially filled → filled.
    let a = send(&mut oms, 10);
    assert_eq!(a, ClientOrderId(101 << ClientOrderId::STRATEGY_BITS), "ids continue after the configured first id");
    assert_eq!(oms.next_client_id(StrategyId(7)), ClientOrderId((102 << ClientOrderId::STRATEGY_BITS) | 7));
    assert_eq!(ClientOrderId((102 << ClientOrderId::STRATEGY_BITS) | 7).strategy(), StrategyId(7));
    assert_eq!(state(&oms, a), OrderState::Sent);
    assert_eq!(oms.apply(a, &OrderEventKind::Accepted), Applied::StateChange);
    assert_eq!(state(&oms, a), OrderState::Acked);
    assert_eq!(oms.apply(a, &OrderEventKind::Accepted), Applied::Duplicate, "duplicate ack");
    assert!(matches!(oms.apply(a, &fill(3, 7, 1)), Applied::Fill(_)));
    assert_eq!(state(&oms, a), OrderState::PartiallyFilled);
    assert_eq!(oms.apply(a, &fill(3, 7, 1)), Applied::Duplicate, "duplicate fill (same trade id)");
    assert!(matches!(oms.apply(a, &fill(3, 4, 2)), Applied::Fill(_)));
    assert!(matches!(oms.apply(a, &fill(4, 0, 3)), Applied::Fill(_)));
    assert_eq!((state(&oms, a), oms.get(a).unwrap().filled), (OrderState::Filled, Qty(10)));

    // 2: a fill overtakes its ack: filled first, the late ack changes nothing.
    let b = send(&mut oms, 5);
    assert!(matches!(oms.apply(b, &fill(5, 0, 10)), Applied::Fill(_)));
    assert_eq!(state(&oms, b), OrderState::Filled);
    assert_eq!(oms.apply(b, &OrderEventKind::Accepted), Applied::Late);
    assert_eq!(state(&oms, b), OrderState::Filled);
    assert_eq!(oms.apply(b, &fill(5, 0, 10)), Applied::Duplicate, "the same fill again");

    // 3: acked → cancel pending → a fill races the cancel → cancelled; a second cancel request
    // on a final order is refused.
    let c = send(&mut oms, 8);
    oms.apply(c, &OrderEventKind::Accepted);
    assert!(oms.on_cancel_sent(c));
    assert_eq!(state(&oms, c), OrderState::CancelPending);
    assert!(oms.on_cancel_sent(c), "asking again is harmless");
    assert!(matches!(oms.apply(c, &fill(2, 6, 20)), Applied::Fill(_)));
    assert_eq!(state(&oms, c), OrderState::PartiallyFilled);
    assert_eq!(oms.apply(c, &OrderEventKind::Cancelled), Applied::StateChange);
    assert_eq!(state(&oms, c), OrderState::Cancelled);
    assert_eq!(oms.apply(c, &OrderEventKind::Cancelled), Applied::Duplicate);
    assert!(!oms.on_cancel_sent(c));

    // 4: rejected; 5: IOC rest expired; 6: an unknown id.
    let d = send(&mut oms, 1);
    assert_eq!(oms.apply(d, &OrderEventKind::Rejected(RejectReason::RateLimited)), Applied::StateChange);
    assert_eq!(state(&oms, d), OrderState::Rejected);
    let e = send(&mut oms, 4);
    oms.apply(e, &OrderEventKind::Accepted);
    assert!(matches!(oms.apply(e, &fill(1, 3, 30)), Applied::Fill(_)));
    assert_eq!(oms.apply(e, &OrderEventKind::Expired), Applied::StateChange);
    assert_eq!(state(&oms, e), OrderState::Expired);
    assert_eq!(oms.apply(ClientOrderId(7), &OrderEventKind::Accepted), Applied::Unknown);

    assert_eq!(oms.open_count(), 0);
    let k = oms.counters();
    let entered: Vec<(&str, u64)> = OrderState::ALL.iter().map(|s| (s.name(), k.entered(*s))).collect();
    assert_eq!(
        entered,
        vec![
            ("new", 5),
            ("sent", 5),
            ("acked", 3),
            ("partially_filled", 4), // a twice, c once, e once
            ("filled", 2),
            ("cancel_pending", 1),
            ("cancelled", 1),
            ("rejected", 1),
            ("expired", 1),
        ]
    );
    assert_eq!(
        (k.sent, k.acked, k.fills, k.filled, k.rejected, k.cancelled, k.duplicates, k.unknown, k.fill_before_ack),
        (5, 4, 6, 2, 1, 2, 4, 1, 1)
    );
    assert_eq!(k.cancels_sent, 1);
}
