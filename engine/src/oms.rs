//! The order state machine: every order the core sent, and what the venue said about it.
//!
//! Venues and networks reorder and repeat: a fill may arrive before its ack, an ack twice, a fill
//! twice. The OMS accepts any order of events, never double-counts a fill (de-duplicated by venue
//! trade id) and never moves an order out of a final state. A transport error does not fail an
//! order: it stays open until the venue says what happened.

use std::collections::HashMap;

use crate::event::{ClientOrderId, Fill, NewOrder, OrderEventKind, RejectReason};
use crate::fixed::Qty;
use crate::strategy::StrategyId;

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderState {
    /// Created by the core, not yet handed to a gateway.
    New,
    /// Handed to the gateway; no venue answer yet.
    Sent,
    /// The venue accepted it.
    Acked,
    /// Some quantity filled, some still open.
    PartiallyFilled,
    /// Fully filled (final).
    Filled,
    /// A cancel was sent; the venue has not confirmed.
    CancelPending,
    /// Cancelled (final).
    Cancelled,
    /// Refused by the venue (final).
    Rejected,
    /// IOC rest expired (final).
    Expired,
}

impl OrderState {
    /// Every state, in life order, for reports and transition counters.
    pub const ALL: [Self; 9] = [
        Self::New,
        Self::Sent,
        Self::Acked,
        Self::PartiallyFilled,
        Self::Filled,
        Self::CancelPending,
        Self::Cancelled,
        Self::Rejected,
        Self::Expired,
    ];

    /// The state's name in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Sent => "sent",
            Self::Acked => "acked",
            Self::PartiallyFilled => "partially_filled",
            Self::Filled => "filled",
            Self::CancelPending => "cancel_pending",
            Self::Cancelled => "cancelled",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }

    /// True for states no event can leave.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Filled | Self::Cancelled | Self::Rejected | Self::Expired)
    }
}

/// Trade ids remembered per order for de-duplication; more fills than this on one order fall
/// back to quantity accounting (a fill past the order's quantity is refused).
const REMEMBERED_FILLS: usize = 8;

/// One order and its history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    /// What was asked.
    pub order: NewOrder,
    /// Who asked.
    pub strategy: StrategyId,
    /// The intent's tag.
    pub tag: u32,
    /// Current state.
    pub state: OrderState,
    /// Quantity filled so far.
    pub filled: Qty,
    acked: bool,
    trade_ids: [u64; REMEMBERED_FILLS],
    n_trade_ids: usize,
}

/// What the OMS made of an order event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A new fill to book into positions.
    Fill(Fill),
    /// A state change with no fill.
    StateChange,
    /// A repeat of something already applied (duplicate ack, fill, or a late event on a final
    /// order): ignored and counted.
    Duplicate,
    /// A genuine event that arrived after a later one (an ack after its fill): recorded, no
    /// state change.
    Late,
    /// An event for an order this OMS never sent: reported, not applied.
    Unknown,
}

/// Counters of the OMS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OmsCounters {
    /// Orders created.
    pub sent: u64,
    /// Acks received.
    pub acked: u64,
    /// Fills applied.
    pub fills: u64,
    /// Orders fully filled.
    pub filled: u64,
    /// Orders rejected.
    pub rejected: u64,
    /// Orders cancelled or expired.
    pub cancelled: u64,
    /// Duplicate events ignored.
    pub duplicates: u64,
    /// Events for unknown orders.
    pub unknown: u64,
    /// Fills that arrived before their ack.
    pub fill_before_ack: u64,
    /// Fills that arrived after the order was already cancelled, expired or rejected.
    pub fill_after_final: u64,
    /// Cancels requested (orders moved to cancel pending).
    pub cancels_sent: u64,
    /// Times an order entered each state, indexed by [`OrderState::ALL`] order (a partial fill
    /// entered twice counts twice).
    pub entered: [u64; 9],
}

impl OmsCounters {
    /// Times orders entered `state`.
    pub fn entered(&self, state: OrderState) -> u64 {
        self.entered[state as usize]
    }
}

/// Every live order, by client order id.
#[derive(Debug)]
pub struct Oms {
    orders: HashMap<ClientOrderId, Order>,
    next_id: u64,
    open: usize,
    counters: OmsCounters,
    last_reject: Option<RejectReason>,
}

impl Oms {
    /// An OMS holding up to `capacity` live orders without allocating; ids start after
    /// `first_id` so a restarted engine never reuses one.
    pub fn new(capacity: usize, first_id: u64) -> Self {
        Self {
            orders: HashMap::with_capacity(capacity),
            next_id: first_id,
            open: 0,
            counters: OmsCounters::default(),
            last_reject: None,
        }
    }

    /// The next client order id for an order of `strategy`: a sequence number in the high
    /// bits and the strategy in the low 8 ([`ClientOrderId::strategy`]), so a venue's record of
    /// an order the journal lost still says whose it was.
    pub fn next_client_id(&mut self, strategy: StrategyId) -> ClientOrderId {
        let seq = (self.next_id >> ClientOrderId::STRATEGY_BITS) + 1;
        self.next_id = (seq << ClientOrderId::STRATEGY_BITS) | u64::from(strategy.0 & 0xff);
        ClientOrderId(self.next_id)
    }

    /// Makes every later id greater than `id` (one the venue knows and the journal may not).
    pub fn skip_past(&mut self, id: ClientOrderId) {
        self.next_id = self.next_id.max(id.0);
    }

    /// Records an order handed to a gateway.
    pub fn on_sent(&mut self, order: NewOrder, strategy: StrategyId, tag: u32) {
        self.counters.sent += 1;
        // Created and handed over in the same step: both transitions are counted.
        self.counters.entered[OrderState::New as usize] += 1;
        self.counters.entered[OrderState::Sent as usize] += 1;
        let o = Order {
            order,
            strategy,
            tag,
            state: OrderState::Sent,
            filled: Qty(0),
            acked: false,
            trade_ids: [0; REMEMBERED_FILLS],
            n_trade_ids: 0,
        };
        if let Some(old) = self.orders.insert(order.client_id, o)
            && !old.state.is_final()
        {
            // An id is never reused while open; if a caller did, keep the count right anyway.
            self.open -= 1;
        }
        self.open += 1;
    }

    /// Marks a cancel as requested. Returns false when the order is unknown or final.
    pub fn on_cancel_sent(&mut self, id: ClientOrderId) -> bool {
        match self.orders.get_mut(&id) {
            Some(o) if !o.state.is_final() => {
                if o.state != OrderState::CancelPending {
                    o.state = OrderState::CancelPending;
                    self.counters.cancels_sent += 1;
                    self.counters.entered[OrderState::CancelPending as usize] += 1;
                }
                true
            }
            _ => false,
        }
    }

    /// Marks every open order's cancel as requested (the kill switch cancels them all); the
    /// same as [`Oms::on_cancel_sent`] on each, without collecting their ids.
    pub fn on_cancel_all_sent(&mut self) {
        for o in self.orders.values_mut().filter(|o| !o.state.is_final()) {
            o.state = OrderState::CancelPending;
        }
    }

    /// Applies a venue event. Final orders are kept until [`Oms::purge_final`].
    pub fn apply(&mut self, id: ClientOrderId, kind: &OrderEventKind) -> Applied {
        let before = self.orders.get(&id).map(|o| o.state);
        let was_open = before.is_some_and(|s| !s.is_final());
        let applied = self.apply_inner(id, kind);
        let after = self.orders.get(&id).map(|o| o.state);
        let is_open = after.is_some_and(|s| !s.is_final());
        if let Some(state) = after
            && (before != after || (state == OrderState::PartiallyFilled && matches!(applied, Applied::Fill(_))))
        {
            self.counters.entered[state as usize] += 1;
        }
        if was_open && !is_open {
            self.open -= 1;
        }
        applied
    }

    fn apply_inner(&mut self, id: ClientOrderId, kind: &OrderEventKind) -> Applied {
        let Some(o) = self.orders.get_mut(&id) else {
            self.counters.unknown += 1;
            return Applied::Unknown;
        };
        let c = &mut self.counters;
        match *kind {
            OrderEventKind::Accepted => {
                if o.acked {
                    c.duplicates += 1;
                    return Applied::Duplicate;
                }
                o.acked = true;
                c.acked += 1;
                if matches!(o.state, OrderState::New | OrderState::Sent) {
                    o.state = OrderState::Acked;
                    Applied::StateChange
                } else {
                    // The fill (or the end) overtook the ack: the order is already further along.
                    Applied::Late
                }
            }
            OrderEventKind::Filled(fill) => {
                let seen = o.trade_ids[..o.n_trade_ids].contains(&fill.trade_id);
                let over = o.filled.0.saturating_add(fill.qty.0) > o.order.qty.0;
                if seen || over {
                    c.duplicates += 1;
                    return Applied::Duplicate;
                }
                // A real fill is never dropped, even one that arrives after the order's end
                // (events from two venue channels can cross); it is applied and counted.
                if o.state.is_final() {
                    c.fill_after_final += 1;
                }
                if o.n_trade_ids < REMEMBERED_FILLS {
                    o.trade_ids[o.n_trade_ids] = fill.trade_id;
                    o.n_trade_ids += 1;
                }
                if !o.acked {
                    c.fill_before_ack += 1;
                }
                o.filled = Qty(o.filled.0 + fill.qty.0);
                c.fills += 1;
                if o.filled == o.order.qty {
                    o.state = OrderState::Filled;
                    c.filled += 1;
                } else if !o.state.is_final() {
                    o.state = OrderState::PartiallyFilled;
                }
                Applied::Fill(fill)
            }
            OrderEventKind::Cancelled | OrderEventKind::Expired | OrderEventKind::Rejected(_) => {
                if o.state.is_final() {
                    c.duplicates += 1;
                    return Applied::Duplicate;
                }
                o.state = match *kind {
                    OrderEventKind::Cancelled => OrderState::Cancelled,
                    OrderEventKind::Expired => OrderState::Expired,
                    _ => OrderState::Rejected,
                };
                if let OrderEventKind::Rejected(r) = *kind {
                    c.rejected += 1;
                    self.last_reject = Some(r);
                } else {
                    c.cancelled += 1;
                }
                Applied::StateChange
            }
        }
    }

    /// An order by id.
    pub fn get(&self, id: ClientOrderId) -> Option<&Order> {
        self.orders.get(&id)
    }

    /// Orders not in a final state.
    pub fn open_orders(&self) -> impl Iterator<Item = &Order> {
        self.orders.values().filter(|o| !o.state.is_final())
    }

    /// Number of orders not in a final state, kept as a count so risk checks read it in O(1).
    pub fn open_count(&self) -> usize {
        self.open
    }

    /// Forgets final orders so the table stays bounded; call off the per-event path (timer).
    pub fn purge_final(&mut self) {
        self.orders.retain(|_, o| !o.state.is_final());
    }

    /// Counters.
    pub fn counters(&self) -> &OmsCounters {
        &self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Side, TimeInForce};
    use crate::fixed::Px;
    use crate::instrument::{InstrumentId, VenueId};
    use rust_decimal::Decimal;

    fn new_order(oms: &mut Oms, qty: i64) -> ClientOrderId {
        let id = oms.next_client_id(StrategyId(0));
        let o = NewOrder {
            client_id: id,
            instrument: InstrumentId(0),
            venue: VenueId(0),
            side: Side::Buy,
            px: Px(100),
            qty: Qty(qty),
            tif: TimeInForce::Ioc,
            reduce_only: false,
        };
        oms.on_sent(o, StrategyId(0), 7);
        id
    }

    fn fill(qty: i64, trade_id: u64) -> OrderEventKind {
        OrderEventKind::Filled(Fill {
            px: Px(100),
            qty: Qty(qty),
            leaves_qty: Qty(0),
            fee: Decimal::ZERO,
            taker: true,
            trade_id,
        })
    }

    #[test]
    fn fill_before_ack_and_duplicate_fill() {
        let mut oms = Oms::new(16, 0);
        let id = new_order(&mut oms, 10);
        assert_eq!(oms.open_count(), 1);
        assert!(matches!(oms.apply(id, &fill(4, 1)), Applied::Fill(_)));
        assert_eq!(oms.get(id).unwrap().state, OrderState::PartiallyFilled);
        assert_eq!(oms.apply(id, &OrderEventKind::Accepted), Applied::Late);
        assert_eq!(oms.get(id).unwrap().state, OrderState::PartiallyFilled);
        assert_eq!(oms.apply(id, &OrderEventKind::Accepted), Applied::Duplicate);
        assert_eq!(oms.apply(id, &fill(4, 1)), Applied::Duplicate);
        assert!(matches!(oms.apply(id, &fill(6, 2)), Applied::Fill(_)));
        assert_eq!(oms.get(id).unwrap().state, OrderState::Filled);
        assert_eq!((oms.open_count(), oms.open_orders().count()), (0, 0));
        assert_eq!(oms.apply(id, &OrderEventKind::Expired), Applied::Duplicate);
        let c = oms.counters();
        assert_eq!((c.fills, c.filled, c.duplicates, c.fill_before_ack, c.acked), (2, 1, 3, 1, 1));
    }

    #[test]
    fn final_states_are_final_and_unknown_is_counted() {
        let mut oms = Oms::new(16, 0);
        let id = new_order(&mut oms, 10);
        assert_eq!(oms.apply(id, &OrderEventKind::Accepted), Applied::StateChange);
        assert_eq!(oms.apply(id, &OrderEventKind::Rejected(RejectReason::InsufficientBalance)), Applied::StateChange);
        // A fill after the end is real money: applied, counted, state stays final.
        assert!(matches!(oms.apply(id, &fill(1, 9)), Applied::Fill(_)));
        assert_eq!(oms.get(id).unwrap().state, OrderState::Rejected);
        assert_eq!(oms.counters().fill_after_final, 1);
        assert_eq!(oms.apply(ClientOrderId(999), &OrderEventKind::Accepted), Applied::Unknown);
        assert_eq!(oms.open_count(), 0);
        oms.purge_final();
        assert!(oms.get(id).is_none());
    }
}
