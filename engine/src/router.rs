//! The smart order router: one intent on an instrument group becomes IOC child orders across
//! the group's venues.
//!
//! A group is every instrument with the same base, quote and kind (BTCUSDT perpetual on each
//! venue). For an intent the router walks each eligible venue's book best level first, prices
//! every level at its *effective* price (the level's price plus the venue's taker fee for a buy,
//! minus it for a sell) and takes levels across venues in order of that marginal effective price
//! until the quantity is allocated or the next level's effective price is past the limit. Each
//! venue taken from gets one IOC child at the worst level price it reached. Venues whose book is
//! not whole, is stale, or whose order-rate bucket is empty are skipped. When children end with
//! quantity unfilled (IOC expiry, venue reject), the remainder is routed again from the books of
//! that moment, a bounded number of times set by the intent's [`Urgency`]; a venue that rejected
//! is not used again for that intent.
//!
//! Quantities are compared in base units at the group's finest quantity scale, prices at its
//! finest price scale, fees as integer parts per million: exact integers, no `f64`. Every table
//! is sized at construction; routing allocates nothing.

use crate::book::Books;
use crate::core::DepthBooks;
use crate::event::{ClientOrderId, Side};
use crate::fixed::{Px, Qty};
use crate::instrument::{InstrumentId, InstrumentKind, Registry};
use crate::strategy::StrategyId;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// Most venues (instruments) one group routes across.
pub const MAX_GROUP_VENUES: usize = 8;

/// Parent intents tracked at once (each until its children end).
const MAX_PARENTS: usize = 64;

/// Child orders tracked at once.
const MAX_CHILDREN: usize = 256;

/// Route requests buffered per event.
const MAX_REQUESTS: usize = 32;

/// How hard to try: how many times the unfilled rest is routed again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    /// Take what the books show now; never re-route.
    Low,
    /// Re-route the unfilled rest up to twice.
    Normal,
    /// Re-route the unfilled rest up to four times.
    High,
}

impl Urgency {
    /// Re-routes allowed.
    pub const fn retries(self) -> u8 {
        match self {
            Self::Low => 0,
            Self::Normal => 2,
            Self::High => 4,
        }
    }
}

/// What a strategy asks the router for. `qty` and `limit_px` are in the scales of `instrument`,
/// which also names the group (any member will do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteIntent {
    /// A member of the group to route across.
    pub instrument: InstrumentId,
    /// Buy or sell.
    pub side: Side,
    /// Total quantity, in `instrument`'s quantity mantissa.
    pub qty: Qty,
    /// Worst acceptable *effective* price (fee included), in `instrument`'s price mantissa.
    pub limit_px: Px,
    /// How many times the unfilled rest may be routed again.
    pub urgency: Urgency,
    /// The strategy's label, carried by every child order.
    pub tag: u32,
}

/// One child order the router decided on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Child {
    /// The venue's instrument.
    pub instrument: InstrumentId,
    /// Quantity, in that instrument's mantissa.
    pub qty: Qty,
    /// IOC limit: the worst level price the allocation reached there.
    pub limit_px: Px,
}

/// A plan: up to one child per venue of the group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The children, `len` valid.
    pub children: [Child; MAX_GROUP_VENUES],
    /// Number of children.
    pub len: usize,
    /// Base units (group scale) asked but not allocated: books too thin or past the limit, or
    /// lot rounding.
    pub unallocated_units: i64,
}

impl Plan {
    /// The valid children.
    pub fn children(&self) -> &[Child] {
        &self.children[..self.len]
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Member {
    id: InstrumentId,
    /// Base units (group qty scale) per quantity mantissa unit.
    units: i64,
    /// Multiplier from the instrument's price mantissa to the group's price scale.
    px_mul: i64,
    /// Taker fee in parts per million.
    fee_ppm: i64,
    lot: i64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Group {
    members: [Member; MAX_GROUP_VENUES],
    len: usize,
}

/// A route request waiting for the core: a new intent, or the unfilled rest of a parent.
#[derive(Clone, Copy, Debug)]
pub struct RouteRequest {
    /// Who asked.
    pub strategy: StrategyId,
    /// The intent (for a re-route: the original one).
    pub intent: RouteIntent,
    /// Parent slot for a re-route; `None` for a new intent.
    parent: Option<u16>,
    /// Base units still to route (group scale); for a new intent computed by the router.
    units: i64,
}

/// Preallocated buffer of route requests strategies made during one callback.
#[derive(Debug)]
pub struct RouteRequests {
    items: Vec<RouteRequest>,
    refused: u64,
}

impl RouteRequests {
    /// A buffer for `capacity` requests per event.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { items: Vec::with_capacity(capacity), refused: 0 }
    }

    /// Queues a new intent from `strategy`; false when the buffer is full (counted).
    pub fn push(&mut self, strategy: StrategyId, intent: RouteIntent) -> bool {
        self.push_request(RouteRequest { strategy, intent, parent: None, units: 0 })
    }

    fn push_request(&mut self, r: RouteRequest) -> bool {
        if self.items.len() == self.items.capacity() {
            self.refused += 1;
            return false;
        }
        self.items.push(r);
        true
    }

    /// Takes the oldest request.
    pub fn pop_front(&mut self) -> Option<RouteRequest> {
        if self.items.is_empty() { None } else { Some(self.items.remove(0)) }
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Requests refused because the buffer was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

impl Default for RouteRequests {
    fn default() -> Self {
        Self::with_capacity(MAX_REQUESTS)
    }
}

#[derive(Clone, Copy, Debug)]
struct Parent {
    strategy: StrategyId,
    intent: RouteIntent,
    in_flight: u8,
    unfilled_units: i64,
    retries_left: u8,
    excluded: u32,
    active: bool,
}

#[derive(Clone, Copy, Debug)]
struct ChildRef {
    client_id: ClientOrderId,
    parent: u16,
    member: u8,
    units_per_qty: i64,
}

/// Router counters, for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouterCounters {
    /// Intents routed.
    pub intents: u64,
    /// Child orders sent.
    pub children: u64,
    /// Re-routes of an unfilled rest.
    pub reroutes: u64,
    /// Venues skipped when planning (not whole, stale, or rate-limited).
    pub venues_skipped: u64,
    /// Intents (or rests) that ended with quantity never filled.
    pub unfilled: u64,
    /// Intents dropped because every parent slot was busy, or naming a non-member instrument.
    pub dropped: u64,
}

/// The router: groups, live parents and children. Owned by the core.
#[derive(Debug)]
pub struct Router {
    group_of: Vec<u16>,
    groups: Vec<Group>,
    parents: Vec<Parent>,
    children: Vec<ChildRef>,
    counters: RouterCounters,
}

fn pow10(n: u8) -> i64 {
    10i64.pow(u32::from(n))
}

impl Router {
    /// Groups `registry`'s instruments by base, quote and kind. An instrument whose contract
    /// size is not whole at the group's quantity scale, or past [`MAX_GROUP_VENUES`], routes
    /// alone.
    pub fn new(registry: &Registry) -> Self {
        let insts = registry.instruments();
        let mut group_of = vec![u16::MAX; insts.len()];
        let mut groups: Vec<Group> = Vec::new();
        for (i, inst) in insts.iter().enumerate() {
            if group_of[i] != u16::MAX {
                continue;
            }
            let same = |j: &crate::instrument::Instrument| {
                j.base == inst.base && j.quote == inst.quote && j.kind == inst.kind && j.kind != InstrumentKind::Option
            };
            let members: Vec<usize> = (i..insts.len())
                .filter(|&j| group_of[j] == u16::MAX && (j == i || same(&insts[j])))
                .take(MAX_GROUP_VENUES)
                .collect();
            let cq = members.iter().map(|&j| insts[j].qty_scale.places()).max().unwrap_or(0);
            let cp = members.iter().map(|&j| insts[j].price_scale.places()).max().unwrap_or(0);
            let mut g = Group::default();
            let gi = groups.len() as u16;
            for &j in &members {
                let m = &insts[j];
                let units = m.contract_size * Decimal::from(pow10(cq - m.qty_scale.places()));
                let Some(units) = units.to_i64().filter(|_| units.fract().is_zero() && units > Decimal::ZERO) else {
                    continue;
                };
                let fee_ppm = (m.taker_fee * Decimal::from(1_000_000)).round().to_i64().unwrap_or(0);
                g.members[g.len] = Member {
                    id: m.id,
                    units,
                    px_mul: pow10(cp - m.price_scale.places()),
                    fee_ppm,
                    lot: m.lot.0.max(1),
                };
                g.len += 1;
                group_of[j] = gi;
            }
            if g.len > 0 {
                groups.push(g);
            }
        }
        Self {
            group_of,
            groups,
            parents: Vec::with_capacity(MAX_PARENTS),
            children: Vec::with_capacity(MAX_CHILDREN),
            counters: RouterCounters::default(),
        }
    }

    /// The instruments routed together with `id` (itself included), in registry order.
    pub fn group(&self, id: InstrumentId) -> impl Iterator<Item = InstrumentId> + '_ {
        let g = self.group_of.get(id.index()).and_then(|&g| self.groups.get(usize::from(g)));
        g.into_iter().flat_map(|g| g.members[..g.len].iter().map(|m| m.id))
    }

    fn member_of(&self, id: InstrumentId) -> Option<(&Group, usize)> {
        let g = self.groups.get(usize::from(*self.group_of.get(id.index())?))?;
        let k = g.members[..g.len].iter().position(|m| m.id == id)?;
        Some((g, k))
    }

    /// Allocates `units` base units (group scale) of `intent` across the group's venues for which
    /// `eligible` holds and whose bit in `excluded` is clear. Pure: reads the books only.
    pub fn plan_units(
        &self,
        intent: &RouteIntent,
        units: i64,
        books: &Books,
        depth: &DepthBooks,
        excluded: u32,
        mut eligible: impl FnMut(InstrumentId) -> bool,
    ) -> Plan {
        let mut plan = Plan { unallocated_units: units.max(0), ..Plan::default() };
        let Some((g, r)) = self.member_of(intent.instrument) else { return plan };
        let reference = g.members[r];
        let limit = i128::from(intent.limit_px.0) * i128::from(reference.px_mul) * 1_000_000;
        // The book side a taker walks: a buyer the asks, a seller the bids.
        let book_side = intent.side.opposite();
        let mut ok = [false; MAX_GROUP_VENUES];
        let mut cursor = [0usize; MAX_GROUP_VENUES];
        let mut level_left = [-1i64; MAX_GROUP_VENUES];
        let mut taken = [0i64; MAX_GROUP_VENUES];
        let mut worst = [Px(0); MAX_GROUP_VENUES];
        for (k, m) in g.members[..g.len].iter().enumerate() {
            ok[k] = excluded & (1 << k) == 0 && eligible(m.id);
        }
        // The k-th venue's level `i`, best first: from its depth book when it keeps one, else
        // the top of book as a single level.
        let level = |k: usize, i: usize| -> Option<(Px, i64)> {
            let m = &g.members[k];
            let l = match depth.get(m.id) {
                Some(sync) => sync.book().level(book_side, i)?,
                None if i == 0 => {
                    let q = books.get(m.id).quote;
                    let (px, qty) = if book_side == Side::Sell { (q.ask_px, q.ask_qty) } else { (q.bid_px, q.bid_qty) };
                    crate::event::Level { px, qty }
                }
                None => return None,
            };
            (l.px.0 > 0 && l.qty.0 > 0).then_some((l.px, l.qty.0.saturating_mul(m.units)))
        };
        let effective = |k: usize, px: Px| -> i128 {
            let m = &g.members[k];
            let fee = if intent.side == Side::Buy { 1_000_000 + m.fee_ppm } else { 1_000_000 - m.fee_ppm };
            i128::from(px.0) * i128::from(m.px_mul) * i128::from(fee)
        };
        let mut remaining = units.max(0);
        while remaining > 0 {
            let mut best: Option<(usize, Px, i128)> = None;
            for k in 0..g.len {
                if !ok[k] {
                    continue;
                }
                let Some((px, qty_units)) = level(k, cursor[k]) else {
                    ok[k] = false;
                    continue;
                };
                if level_left[k] < 0 {
                    level_left[k] = qty_units;
                }
                let e = effective(k, px);
                let within = if intent.side == Side::Buy { e <= limit } else { e >= limit };
                if !within {
                    continue;
                }
                let better = match best {
                    None => true,
                    Some((_, _, b)) => {
                        if intent.side == Side::Buy {
                            e < b
                        } else {
                            e > b
                        }
                    }
                };
                if better {
                    best = Some((k, px, e));
                }
            }
            let Some((k, px, _)) = best else { break };
            let take = remaining.min(level_left[k]);
            taken[k] += take;
            worst[k] = px;
            remaining -= take;
            level_left[k] -= take;
            if level_left[k] == 0 {
                cursor[k] += 1;
                level_left[k] = -1;
            }
        }
        let mut allocated = 0;
        for k in 0..g.len {
            let m = &g.members[k];
            let qty = taken[k] / m.units / m.lot * m.lot;
            if qty > 0 {
                plan.children[plan.len] = Child { instrument: m.id, qty: Qty(qty), limit_px: worst[k] };
                plan.len += 1;
                allocated += qty * m.units;
            }
        }
        plan.unallocated_units = units.max(0) - allocated;
        plan
    }

    /// Base units (group scale) of `intent`'s quantity; 0 when its instrument routes nowhere.
    pub fn intent_units(&self, intent: &RouteIntent) -> i64 {
        self.member_of(intent.instrument).map_or(0, |(g, k)| intent.qty.0.saturating_mul(g.members[k].units))
    }

    /// Plans a request: a new intent gets a parent slot (`None` when none is free, counted as
    /// dropped), a re-route reuses its own. The caller sends the children and reports each one
    /// it sent with [`Router::child_sent`], then calls [`Router::plan_done`].
    pub fn begin(
        &mut self,
        req: &RouteRequest,
        books: &Books,
        depth: &DepthBooks,
        mut eligible: impl FnMut(InstrumentId) -> bool,
    ) -> Option<(u16, Plan)> {
        let (slot, units, excluded) = match req.parent {
            Some(p) => {
                let parent = self.parents.get(usize::from(p))?;
                (p, req.units, parent.excluded)
            }
            None => {
                let units = self.intent_units(&req.intent);
                if units == 0 {
                    self.counters.dropped += 1;
                    return None;
                }
                let parent = Parent {
                    strategy: req.strategy,
                    intent: req.intent,
                    in_flight: 0,
                    unfilled_units: 0,
                    retries_left: req.intent.urgency.retries(),
                    excluded: 0,
                    active: true,
                };
                let slot = match self.parents.iter().position(|p| !p.active) {
                    Some(i) => {
                        self.parents[i] = parent;
                        i
                    }
                    None if self.parents.len() < MAX_PARENTS => {
                        self.parents.push(parent);
                        self.parents.len() - 1
                    }
                    None => {
                        self.counters.dropped += 1;
                        return None;
                    }
                };
                self.counters.intents += 1;
                (slot as u16, units, 0)
            }
        };
        if req.parent.is_some() {
            self.counters.reroutes += 1;
        }
        let mut skipped = 0;
        let plan = self.plan_units(&req.intent, units, books, depth, excluded, |id| {
            let ok = eligible(id);
            skipped += u64::from(!ok);
            ok
        });
        self.counters.venues_skipped += skipped;
        Some((slot, plan))
    }

    /// Records a child order sent for parent `slot`.
    pub fn child_sent(&mut self, slot: u16, child: &Child, client_id: ClientOrderId) {
        let Some((g, k)) = self.member_of(child.instrument) else { return };
        let units_per_qty = g.members[k].units;
        if self.children.len() == self.children.capacity() {
            // Untracked: its rest is not re-routed, but it trades normally.
            self.counters.dropped += 1;
            return;
        }
        self.children.push(ChildRef { client_id, parent: slot, member: k as u8, units_per_qty });
        if let Some(p) = self.parents.get_mut(usize::from(slot)) {
            p.in_flight = p.in_flight.saturating_add(1);
        }
        self.counters.children += 1;
    }

    /// Ends planning of `slot`: what was not allocated counts as unfilled, and a parent with
    /// no child in flight is finished (re-routed or closed) now.
    pub fn plan_done(&mut self, slot: u16, unallocated_units: i64, out: &mut RouteRequests) {
        let Some(p) = self.parents.get_mut(usize::from(slot)) else { return };
        p.unfilled_units += unallocated_units;
        if p.in_flight == 0 {
            // Nothing went out: the books cannot do better this instant, so do not spin on them.
            p.retries_left = 0;
        }
        self.settle(slot, out);
    }

    /// Base units (group scale) of a child's quantity.
    pub fn child_units(&self, child: &Child) -> i64 {
        self.member_of(child.instrument).map_or(0, |(g, k)| child.qty.0.saturating_mul(g.members[k].units))
    }

    /// A child order ended (filled, expired, cancelled or rejected) with `unfilled` quantity in
    /// its own mantissa. Returns true when `client_id` was a router child.
    pub fn child_ended(
        &mut self,
        client_id: ClientOrderId,
        unfilled: Qty,
        rejected: bool,
        out: &mut RouteRequests,
    ) -> bool {
        let Some(i) = self.children.iter().position(|c| c.client_id == client_id) else { return false };
        let c = self.children.swap_remove(i);
        if let Some(p) = self.parents.get_mut(usize::from(c.parent)) {
            p.in_flight = p.in_flight.saturating_sub(1);
            p.unfilled_units += unfilled.0.max(0) * c.units_per_qty;
            if rejected {
                p.excluded |= 1 << c.member;
            }
        }
        self.settle(c.parent, out);
        true
    }

    fn settle(&mut self, slot: u16, out: &mut RouteRequests) {
        let Some(p) = self.parents.get_mut(usize::from(slot)) else { return };
        if !p.active || p.in_flight > 0 {
            return;
        }
        if p.unfilled_units > 0 && p.retries_left > 0 {
            p.retries_left -= 1;
            let units = std::mem::take(&mut p.unfilled_units);
            let req = RouteRequest { strategy: p.strategy, intent: p.intent, parent: Some(slot), units };
            if out.push_request(req) {
                return;
            }
        }
        if p.unfilled_units > 0 {
            self.counters.unfilled += 1;
        }
        p.active = false;
    }

    /// Parents still working.
    pub fn active(&self) -> usize {
        self.parents.iter().filter(|p| p.active).count()
    }

    /// Counters.
    pub fn counters(&self) -> &RouterCounters {
        &self.counters
    }
}
