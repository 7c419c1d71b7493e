//! Rebuilding orders and positions from journal records, and comparing them with a venue's.

use rust_decimal::Decimal;

use std::collections::HashSet;

use super::Record;
use crate::event::{ClientOrderId, Fill, OrderEvent, OrderEventKind, Side};
use crate::fixed::Qty;
use crate::instrument::{InstrumentId, Registry, VenueId};
use crate::oms::{Applied, Oms};
use crate::portfolio::Portfolio;

/// OMS and positions rebuilt from a journal.
#[derive(Debug)]
pub struct Rebuilt {
    /// Every journaled order in the state the journal leaves it.
    pub oms: Oms,
    /// Positions from every journaled fill the OMS applied.
    pub portfolio: Portfolio,
    /// Highest client order id journaled: new ids start after it.
    pub last_client_id: u64,
    /// Records replayed.
    pub records: u64,
    /// Every journaled fill by (order, venue trade id), so reconciliation can tell which of the
    /// venue's fills the engine never saw.
    pub fills: HashSet<(ClientOrderId, u64)>,
}

/// Replays `records` through the same OMS and portfolio code the core runs, in order: the state
/// a core reaches from them. `strategies` and `oms_capacity` must match the core's.
pub fn rebuild(records: &[Record], registry: &Registry, strategies: usize, oms_capacity: usize) -> Rebuilt {
    let last_client_id = records
        .iter()
        .filter_map(|r| match r {
            Record::New { order, .. } => Some(order.client_id.0),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mut oms = Oms::new(oms_capacity, last_client_id);
    let mut portfolio = Portfolio::new(registry.len(), strategies);
    let mut fills = HashSet::new();
    for r in records {
        replay_one(&mut oms, &mut portfolio, registry, r);
        if let Record::Event(e) | Record::Resolved(e) = r
            && let OrderEventKind::Filled(f) = e.kind
        {
            fills.insert((e.client_id, f.trade_id));
        }
    }
    Rebuilt { oms, portfolio, last_client_id, records: records.len() as u64, fills }
}

/// Applies one record to an OMS and portfolio exactly as the core applies what it stands for.
pub fn replay_one(oms: &mut Oms, portfolio: &mut Portfolio, registry: &Registry, r: &Record) {
    match r {
        Record::New { order, strategy, tag, .. } => oms.on_sent(*order, *strategy, *tag),
        Record::Cancel { client_id, .. } => {
            oms.on_cancel_sent(*client_id);
        }
        Record::Funding { instrument, settled } => {
            portfolio.apply_funding(registry, *instrument, settled);
        }
        Record::Event(ev) | Record::Resolved(ev) => {
            if let Applied::Fill(fill) = oms.apply(ev.client_id, &ev.kind)
                && let Some(o) = oms.get(ev.client_id)
            {
                portfolio.apply_fill(registry, o.strategy, o.order.instrument, o.order.side, &fill);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reconciliation

/// One order as the venue reports it open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VenueOrder {
    /// The engine's id, echoed by the venue.
    pub client_id: ClientOrderId,
    /// Its instrument.
    pub instrument: InstrumentId,
    /// Its venue.
    pub venue: VenueId,
    /// Quantity still open.
    pub open_qty: Qty,
}

/// One of the account's recent fills as the venue reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VenueFill {
    /// The engine's order id, echoed by the venue.
    pub client_id: ClientOrderId,
    /// Its instrument.
    pub instrument: InstrumentId,
    /// The order's side.
    pub side: Side,
    /// The fill, with the venue's trade id.
    pub fill: Fill,
}

/// What a venue (or the paper gateway) says the account holds, for comparison with the
/// journal's state after a restart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VenueState {
    /// Orders open at the venue.
    pub open_orders: Vec<VenueOrder>,
    /// The account's recent fills (those since before the engine stopped, as far back as the
    /// venue lets one ask).
    pub fills: Vec<VenueFill>,
    /// Signed positions per instrument, when the venue reports them (`None`: not known, e.g. the
    /// paper gateway keeps none).
    pub positions: Option<Vec<(InstrumentId, Decimal)>>,
}

/// A difference between the journal's state and the venue's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Difference {
    /// A fill the venue reports that the journal lacks (it arrived while the engine was down,
    /// or was lost with the journal's last unwritten records). Resolved by applying it.
    MissingFill {
        /// The venue's fill.
        fill: VenueFill,
    },
    /// Open in the journal, unknown to the venue (it ended while the engine was down, or never
    /// arrived). Resolved by ending it locally.
    MissingAtVenue {
        /// The order.
        client_id: ClientOrderId,
    },
    /// Open at the venue, not open in the journal. Resolved by cancelling it at the venue.
    UnknownLocally {
        /// The venue's order.
        order: VenueOrder,
    },
    /// Open in both, with different open quantities: fills the engine has not seen.
    OpenQty {
        /// The order.
        client_id: ClientOrderId,
        /// Open quantity by the journal.
        local: Qty,
        /// Open quantity by the venue.
        venue: Qty,
    },
    /// The account's position differs: needs the venue's fills (or an operator).
    Position {
        /// The instrument.
        instrument: InstrumentId,
        /// Position by the journal.
        local: Decimal,
        /// Position by the venue.
        venue: Decimal,
    },
}

/// Compares the journal's orders and positions with the venue's, so every difference is
/// reported (and, where [`Difference::resolution`] says how, resolved), never ignored. The
/// result is sorted by kind and id, so reports are stable.
///
/// Missing fills come first: resolve them before ending orders, then reconcile again; what still
/// differs needs an operator.
pub fn reconcile(rebuilt: &Rebuilt, venue: &VenueState) -> Vec<Difference> {
    let (oms, portfolio) = (&rebuilt.oms, &rebuilt.portfolio);
    let mut out = Vec::new();
    let mut missing: Vec<_> =
        venue.fills.iter().filter(|f| !rebuilt.fills.contains(&(f.client_id, f.fill.trade_id))).copied().collect();
    missing.sort_by_key(|f| (f.client_id, f.fill.trade_id));
    out.extend(missing.into_iter().map(|fill| Difference::MissingFill { fill }));
    let mut local: Vec<_> = oms.open_orders().copied().collect();
    local.sort_by_key(|o| o.order.client_id);
    for o in &local {
        let local_open = Qty(o.order.qty.0 - o.filled.0);
        match venue.open_orders.iter().find(|v| v.client_id == o.order.client_id) {
            None => out.push(Difference::MissingAtVenue { client_id: o.order.client_id }),
            Some(v) if v.open_qty != local_open => {
                out.push(Difference::OpenQty { client_id: o.order.client_id, local: local_open, venue: v.open_qty });
            }
            Some(_) => {}
        }
    }
    let mut unknown: Vec<_> =
        venue.open_orders.iter().filter(|v| oms.get(v.client_id).is_none_or(|o| o.state.is_final())).copied().collect();
    unknown.sort_by_key(|v| v.client_id);
    out.extend(unknown.into_iter().map(|order| Difference::UnknownLocally { order }));
    if let Some(positions) = &venue.positions {
        for (id, p) in portfolio.positions().iter().enumerate() {
            let id = InstrumentId(id as u32);
            let v = positions.iter().find(|(i, _)| *i == id).map_or(Decimal::ZERO, |(_, q)| *q);
            if v != p.qty {
                out.push(Difference::Position { instrument: id, local: p.qty, venue: v });
            }
        }
    }
    out
}

/// How a difference is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Apply (and journal as [`Record::Resolved`]) this event locally.
    Local(OrderEvent),
    /// Cancel this order at the venue.
    CancelAtVenue(VenueOrder),
    /// A fill of an order the journal lost (its `New` record was still in memory when the
    /// process died): adopt the order for the strategy its id names (journal a `New` rebuilt
    /// from the fill, then the fill), so positions equal the venue's.
    Adopt(VenueFill),
    /// Nothing the engine can decide alone: report it and do not trade the instrument blind.
    Operator,
}

impl Difference {
    /// The resolution of this difference given the engine's OMS.
    pub fn resolution(&self, oms: &Oms) -> Resolution {
        match *self {
            Self::MissingAtVenue { client_id } => match oms.get(client_id) {
                Some(o) => Resolution::Local(OrderEvent {
                    client_id,
                    instrument: o.order.instrument,
                    side: o.order.side,
                    exch_ts_ms: 0,
                    recv_ns: 0,
                    kind: OrderEventKind::Expired,
                }),
                None => Resolution::Operator,
            },
            Self::MissingFill { fill } if oms.get(fill.client_id).is_some() => Resolution::Local(OrderEvent {
                client_id: fill.client_id,
                instrument: fill.instrument,
                side: fill.side,
                exch_ts_ms: 0,
                recv_ns: 0,
                kind: OrderEventKind::Filled(fill.fill),
            }),
            // A fill of an order the engine never journaled: its id says whose it was.
            Self::MissingFill { fill } => Resolution::Adopt(fill),
            Self::UnknownLocally { order } => Resolution::CancelAtVenue(order),
            Self::OpenQty { .. } | Self::Position { .. } => Resolution::Operator,
        }
    }
}

/// What [`resolve`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Every difference found on the first comparison.
    pub differences: Vec<Difference>,
    /// Differences resolved (events applied, orders adopted or cancelled at the venue).
    pub resolved: u64,
    /// Orders of the venue the journal had lost, adopted from their fills.
    pub adopted: u64,
    /// What still differs after resolution: for an operator (and the instrument's trading).
    pub unresolved: Vec<Difference>,
}

/// Tag of an order adopted by reconciliation (its intent's own tag was lost with the journal).
pub const ADOPTED_TAG: u32 = u32::MAX;

/// Compares `rebuilt` with `venue` and resolves every difference that has a resolution, until
/// nothing more can be: missing fills are applied (an order the journal lost is adopted first,
/// for the strategy its id names), orders the venue no longer has are ended, orders only the
/// venue has are handed to `cancel`. Every record this decides goes to `journal` before it is
/// applied, so a later replay reaches the same state. Ids continue after every id the venue
/// knows.
pub fn resolve(
    rebuilt: &mut Rebuilt,
    registry: &Registry,
    venue: &VenueState,
    mut journal: impl FnMut(&Record),
    mut cancel: impl FnMut(VenueOrder),
) -> Resolved {
    let mut out = Resolved::default();
    let known = venue.fills.iter().map(|f| f.client_id).chain(venue.open_orders.iter().map(|o| o.client_id)).max();
    if let Some(id) = known {
        rebuilt.oms.skip_past(id);
    }
    let mut cancelled = HashSet::new();
    for pass in 0..4 {
        let diffs = reconcile(rebuilt, venue);
        if pass == 0 {
            out.differences.clone_from(&diffs);
        }
        let mut progressed = false;
        for d in &diffs {
            let apply = |rebuilt: &mut Rebuilt, rec: Record, journal: &mut dyn FnMut(&Record)| {
                journal(&rec);
                replay_one(&mut rebuilt.oms, &mut rebuilt.portfolio, registry, &rec);
                if let Record::Resolved(ev) = rec
                    && let OrderEventKind::Filled(f) = ev.kind
                {
                    rebuilt.fills.insert((ev.client_id, f.trade_id));
                }
            };
            match d.resolution(&rebuilt.oms) {
                Resolution::Local(ev) => {
                    apply(rebuilt, Record::Resolved(ev), &mut journal);
                    out.resolved += 1;
                    progressed = true;
                }
                Resolution::Adopt(f) => {
                    let order = crate::event::NewOrder {
                        client_id: f.client_id,
                        instrument: f.instrument,
                        venue: registry.get(f.instrument).venue,
                        side: f.side,
                        px: f.fill.px,
                        qty: Qty(f.fill.qty.0 + f.fill.leaves_qty.0),
                        tif: crate::event::TimeInForce::Ioc,
                        reduce_only: false,
                    };
                    let strategy = f.client_id.strategy();
                    let stamps = crate::event::OrderStamps::default();
                    apply(rebuilt, Record::New { order, strategy, tag: ADOPTED_TAG, stamps }, &mut journal);
                    let ev = OrderEvent {
                        client_id: f.client_id,
                        instrument: f.instrument,
                        side: f.side,
                        exch_ts_ms: 0,
                        recv_ns: 0,
                        kind: OrderEventKind::Filled(f.fill),
                    };
                    apply(rebuilt, Record::Resolved(ev), &mut journal);
                    out.adopted += 1;
                    out.resolved += 1;
                    progressed = true;
                }
                Resolution::CancelAtVenue(o) => {
                    if cancelled.insert(o.client_id) {
                        journal(&Record::Cancel { client_id: o.client_id, instrument: o.instrument, venue: o.venue });
                        cancel(o);
                        out.resolved += 1;
                    }
                }
                Resolution::Operator => {}
            }
        }
        if !progressed {
            break;
        }
    }
    out.unresolved = reconcile(rebuilt, venue)
        .into_iter()
        .filter(|d| !matches!(d, Difference::UnknownLocally { order } if cancelled.contains(&order.client_id)))
        .collect();
    out
}
