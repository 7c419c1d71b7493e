//! The strategy plug-in point.
//!
//! A strategy sees normalized events only — never a venue — so it runs unchanged on any venue, in
//! the simulator and in replay. It reads state through [`Ctx`] and expresses what it wants as
//! [`Intent`]s; risk, the OMS and the gateways do the rest. Results arrive later as order events:
//! nothing a strategy calls blocks or returns a venue's answer.

use crate::book::Books;
use crate::event::{MarketEvent, OrderEvent, Side, TimeInForce};
use crate::fixed::{Px, Qty};
use crate::instrument::{InstrumentId, Registry};
use crate::pool::{PoolView, Pools};
use crate::portfolio::Portfolio;
use crate::risk::Refusal;

/// Index of a strategy in the core, carried by its orders so their events come back to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StrategyId(pub u16);

/// An order a strategy wants, before risk and the OMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Intent {
    /// What to trade.
    pub instrument: InstrumentId,
    /// Buy or sell.
    pub side: Side,
    /// How much.
    pub qty: Qty,
    /// Worst acceptable price.
    pub limit_px: Px,
    /// Time in force.
    pub tif: TimeInForce,
    /// May only reduce the position.
    pub reduce_only: bool,
    /// The strategy's own label (a leg number, say), echoed back in [`OrderEvent`]s via the OMS.
    pub tag: u32,
}

/// Preallocated intent buffer: submitting never allocates; past capacity it refuses.
#[derive(Debug)]
pub struct Intents {
    items: Vec<(StrategyId, Intent)>,
    refused: u64,
}

impl Intents {
    /// A buffer of `capacity` intents per event.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { items: Vec::with_capacity(capacity), refused: 0 }
    }

    /// Takes the oldest buffered intent.
    pub fn pop_front(&mut self) -> Option<(StrategyId, Intent)> {
        if self.items.is_empty() { None } else { Some(self.items.remove(0)) }
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Intents buffered.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Drops every buffered intent.
    pub fn clear(&mut self) {
        self.items.clear();
    }

    /// Intents refused because the buffer was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    fn push(&mut self, who: StrategyId, intent: Intent) -> bool {
        if self.items.len() == self.items.capacity() {
            self.refused += 1;
            return false;
        }
        self.items.push((who, intent));
        true
    }
}

/// What a context without a DEX side reads.
static NO_POOLS: Pools = Pools::EMPTY;

/// What a strategy may read and do during one callback.
pub struct Ctx<'a> {
    /// Current time on the injected clock (ns).
    pub now_ns: u64,
    /// Instruments of this run.
    pub registry: &'a Registry,
    /// Latest market state per instrument.
    pub books: &'a Books,
    /// Positions and PnL.
    pub portfolio: &'a Portfolio,
    /// Whether the kill switch or a circuit breaker halted new risk.
    pub halted: bool,
    strategy: StrategyId,
    intents: &'a mut Intents,
    pools: &'a Pools,
    routes: Option<&'a mut crate::router::RouteRequests>,
    /// Depth books (level 2) of the instruments that keep one, when the core provides them.
    pub depth: Option<&'a crate::core::DepthBooks>,
}

impl<'a> Ctx<'a> {
    /// A context for `strategy`; built by the core for each callback.
    pub fn new(
        now_ns: u64,
        registry: &'a Registry,
        books: &'a Books,
        portfolio: &'a Portfolio,
        halted: bool,
        strategy: StrategyId,
        intents: &'a mut Intents,
    ) -> Self {
        Self {
            now_ns,
            registry,
            books,
            portfolio,
            halted,
            strategy,
            intents,
            pools: &NO_POOLS,
            routes: None,
            depth: None,
        }
    }

    /// The same context reading AMM pool state from `pools` (the core passes its own; without
    /// this call a context sees no pools).
    pub fn with_pools(mut self, pools: &'a Pools) -> Self {
        self.pools = pools;
        self
    }

    /// AMM pool `id`: confirmed and pending-adjusted reserves; `None` before its first state.
    pub fn pool(&self, id: InstrumentId) -> Option<&PoolView> {
        self.pools.get(id)
    }

    /// Quote per whole base of pool `id` at the last block.
    pub fn pool_price(&self, id: InstrumentId) -> Option<rust_decimal::Decimal> {
        self.pools.get(id)?.confirmed_price()
    }

    /// Quote per whole base of pool `id` after the pending swaps seen since the last block.
    pub fn pending_pool_price(&self, id: InstrumentId) -> Option<rust_decimal::Decimal> {
        self.pools.get(id)?.pending_price()
    }

    /// Lets this context hand intents to the smart order router ([`Ctx::route`]).
    pub fn with_routes(mut self, routes: &'a mut crate::router::RouteRequests) -> Self {
        self.routes = Some(routes);
        self
    }

    /// Lets this context read level-2 depth books.
    pub fn with_depth(mut self, depth: &'a crate::core::DepthBooks) -> Self {
        self.depth = Some(depth);
        self
    }

    /// Asks the smart order router to work `intent` across its instrument group's venues as IOC
    /// children. Returns false when no router is attached or its buffer is full. Child orders'
    /// events come back through [`Strategy::on_order`] with `intent.tag`.
    pub fn route(&mut self, intent: crate::router::RouteIntent) -> bool {
        let who = self.strategy;
        self.routes.as_deref_mut().is_some_and(|r| r.push(who, intent))
    }

    /// The id of the strategy being called.
    pub fn strategy(&self) -> StrategyId {
        self.strategy
    }

    /// Asks for an order. Returns false when the per-event intent buffer is full (counted); a
    /// true return means "queued for risk", not "sent": the outcome arrives as order events.
    pub fn submit(&mut self, intent: Intent) -> bool {
        self.intents.push(self.strategy, intent)
    }
}

/// A trading strategy, called on the core thread only.
///
/// Callbacks must not block, sleep, do I/O or allocate after warm-up: they run on the hot path
/// between a tick and its order. Errors are the strategy's to handle; it has no way to fail the
/// core.
pub trait Strategy {
    /// The name it is registered and reported under.
    fn name(&self) -> &str;

    /// A market event was applied to the books.
    fn on_market(&mut self, ev: &MarketEvent, ctx: &mut Ctx<'_>);

    /// One of this strategy's orders changed state; `tag` is the intent's tag.
    fn on_order(&mut self, ev: &OrderEvent, tag: u32, ctx: &mut Ctx<'_>);

    /// Pre-trade risk refused one of this strategy's intents: it never became an order.
    fn on_refused(&mut self, intent: &Intent, reason: Refusal, ctx: &mut Ctx<'_>) {
        let _ = (intent, reason, ctx);
    }

    /// Called periodically (see the core's timer interval) for time-based logic.
    fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        let _ = ctx;
    }
}
