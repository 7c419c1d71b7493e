//! The strategy core: the single owner of books, orders, positions and strategy state.
//!
//! [`Core`] is synchronous and deterministic: it processes one event at a time with the time
//! passed in, so the same code runs live, in the simulator and in replay. [`run_core`] is the
//! pinned thread around it: it busy-polls the rings (order events first, they carry fills),
//! stamps latencies, and hands order commands to the I/O thread's ring.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::book::Books;
use crate::clock::{Clock, now_ns};
use crate::event::{FeedStatus, MarketBody, MarketEvent, NewOrder, OrderCommand, OrderEvent, OrderStamps};
use crate::instrument::{InstrumentId, Registry};
use crate::journal::Record;
use crate::latency::{LatencyRecorder, Stage};
use crate::oms::{Applied, Oms};
use crate::orderbook::{BookSync, SyncOutcome, SyncRule};
use crate::pool::{PoolSpec, Pools};
use crate::portfolio::Portfolio;
use crate::ring::{IdlePolicy, Idler, PollPacer, Ring};
use crate::risk::{Risk, RiskConfig, RiskInputs};
use crate::router::{RouteRequests, Router};
use crate::strategy::{Ctx, Intent, Intents, Strategy, StrategyId};

/// Most intents one event may produce.
const INTENTS_PER_EVENT: usize = 64;

/// Rounds of refusal → resubmission routed per event before the rest is dropped.
const MAX_ROUTING_ROUNDS: usize = 4;

/// Counters of the core thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreCounters {
    /// Market events processed.
    pub market_events: u64,
    /// Order events processed.
    pub order_events: u64,
    /// Intents strategies submitted.
    pub intents: u64,
    /// Intents refused by risk.
    pub refused: u64,
    /// Order commands emitted.
    pub commands: u64,
    /// Funding settlements booked.
    pub funding_settlements: u64,
    /// Intents dropped because a strategy resubmitted refused intents too many times in a row.
    pub intents_dropped: u64,
}

/// The core's state and logic, without threads.
pub struct Core<S: Strategy> {
    registry: Arc<Registry>,
    books: Books,
    oms: Oms,
    portfolio: Portfolio,
    risk: Risk,
    strategies: Vec<S>,
    intents: Intents,
    routing: Intents,
    latency: LatencyRecorder,
    counters: CoreCounters,
    per_strategy: Vec<StrategyCounters>,
    depth: DepthBooks,
    halted: bool,
    pools: Pools,
    journal: Option<Arc<Ring<Record>>>,
    router: Router,
    route_requests: RouteRequests,
}

/// How long a requested resync may stay unanswered before it is requested again.
const RESYNC_RETRY_NS: u64 = 2_000_000_000;

/// Depth books kept in sequence by each venue's procedure, one per instrument that has one.
///
/// A book that is not whole marks its instrument not tradable (risk refuses orders on it) and
/// asks the I/O thread for a resync, once, re-asking only if nothing happened for a while.
#[derive(Debug, Default)]
pub struct DepthBooks {
    syncs: Vec<Option<BookSync>>,
    requested_at: Vec<u64>,
}

impl DepthBooks {
    /// Sequencers for the instruments whose rule is given (`rules[i]` for instrument `i`).
    pub fn new(rules: &[Option<SyncRule>], depth: usize) -> Self {
        Self {
            syncs: rules.iter().map(|r| r.map(|rule| BookSync::new(rule, depth, 4_096))).collect(),
            requested_at: vec![0; rules.len()],
        }
    }

    /// The sequencer of `id`, if it keeps a depth book.
    pub fn get(&self, id: InstrumentId) -> Option<&BookSync> {
        self.syncs.get(id.index()).and_then(Option::as_ref)
    }

    /// Feeds one market event to its instrument's sequencer and records whether the book is
    /// whole in `books`; resync requests go to `out`. The core calls it for every event; public
    /// so benches and tools can keep depth books without a core.
    #[inline]
    pub fn on_event(
        &mut self,
        ev: &MarketEvent,
        registry: &Registry,
        books: &mut Books,
        out: &mut impl FnMut(OrderCommand),
    ) {
        let i = ev.instrument.index();
        let Some(Some(sync)) = self.syncs.get_mut(i) else { return };
        let outcome = match ev.body {
            MarketBody::Book(_) => sync.on_event(ev),
            MarketBody::Status(FeedStatus::Disconnected) => {
                // The stream will restart: start over, and time the way back to whole.
                sync.reset(ev.recv_ns);
                self.requested_at[i] = 0;
                // Not tradable from now: quotes of the new connection may come before its book.
                books.set_depth_whole(ev.instrument, false);
                None
            }
            _ => None,
        };
        let Some(outcome) = outcome else { return };
        let how = match outcome.resync(sync.rule()) {
            Some(how) => Some(how),
            // A Binance book buffers until its first snapshot: ask for it once, and again if it
            // never came.
            None if matches!(outcome, SyncOutcome::Buffered)
                && (self.requested_at[i] == 0 || ev.recv_ns.saturating_sub(self.requested_at[i]) > RESYNC_RETRY_NS) =>
            {
                Some(sync.rule().resync())
            }
            None => None,
        };
        if matches!(outcome, SyncOutcome::Applied) && sync.whole() {
            self.requested_at[i] = 0;
        }
        books.set_depth_whole(ev.instrument, sync.whole());
        if let Some(how) = how {
            self.requested_at[i] = ev.recv_ns.max(1);
            out(OrderCommand::Resync { instrument: ev.instrument, venue: registry.get(ev.instrument).venue, how });
        }
    }
}

/// Orders and fills of one strategy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StrategyCounters {
    /// Orders sent for it.
    pub orders: u64,
    /// Fills of its orders.
    pub fills: u64,
}

impl<S: Strategy> Core<S> {
    /// A core for `registry` running `strategies` under `risk` limits.
    pub fn new(registry: Arc<Registry>, strategies: Vec<S>, risk: RiskConfig) -> Self {
        let n = registry.len();
        let mut risk = Risk::new(risk);
        risk.prepare(&registry);
        let router = Router::new(&registry);
        Self {
            registry,
            books: Books::new(n),
            oms: Oms::new(4_096, 0),
            portfolio: Portfolio::new(n, strategies.len()),
            per_strategy: vec![StrategyCounters::default(); strategies.len()],
            depth: DepthBooks::default(),
            risk,
            router,
            route_requests: RouteRequests::default(),
            strategies,
            intents: Intents::with_capacity(INTENTS_PER_EVENT),
            routing: Intents::with_capacity(INTENTS_PER_EVENT),
            latency: LatencyRecorder::new(),
            counters: CoreCounters::default(),
            halted: false,
            pools: Pools::new(n),
            journal: None,
        }
    }

    /// Journals every order command and order event into `ring` (drained by a
    /// [`crate::journal::JournalWriter`]) before acting on it; the push is lossless and
    /// allocation-free, the disk is the writer thread's business.
    pub fn with_journal(mut self, ring: Arc<Ring<Record>>) -> Self {
        self.journal = Some(ring);
        self
    }

    /// Starts from orders and positions rebuilt from a journal ([`crate::journal::rebuild`])
    /// instead of empty ones.
    pub fn with_state(mut self, oms: Oms, portfolio: Portfolio) -> Self {
        self.oms = oms;
        self.portfolio = portfolio;
        self
    }

    #[inline]
    fn journal(&self, rec: Record) {
        if let Some(j) = &self.journal {
            j.push_lossless(rec);
        }
    }

    /// Keeps depth books for the instruments whose `rules` entry is set, with up to `depth`
    /// levels per side; those instruments are tradable only while their book is in sequence.
    pub fn with_depth_books(mut self, rules: &[Option<SyncRule>], depth: usize) -> Self {
        self.depth = DepthBooks::new(rules, depth);
        for (i, rule) in rules.iter().enumerate() {
            if rule.is_some() {
                self.books.set_depth_whole(InstrumentId(i as u32), false);
            }
        }
        self
    }

    /// Declares AMM pool instruments and their token decimals; their pool states and pending
    /// swaps are then kept for strategies ([`Ctx::pool`]).
    pub fn with_pools(mut self, pools: &[(InstrumentId, PoolSpec)]) -> Self {
        for (id, spec) in pools {
            self.pools.configure(*id, *spec);
        }
        self
    }

    /// Processes one market event dequeued at `dequeued_ns`; `now_ns` is the injected clock.
    /// Order commands go to `out` in decision order.
    #[inline]
    pub fn on_market(&mut self, ev: &MarketEvent, now_ns: u64, dequeued_ns: u64, out: &mut impl FnMut(OrderCommand)) {
        self.counters.market_events += 1;
        if ev.decoded_ns != 0 {
            self.latency.record(Stage::DecodedToDequeued, ev.decoded_ns, dequeued_ns);
        }
        if let Some(settled) = self.books.apply(ev) {
            self.journal(Record::Funding { instrument: ev.instrument, settled });
            self.portfolio.apply_funding(&self.registry, ev.instrument, &settled);
            self.counters.funding_settlements += 1;
        }
        self.depth.on_event(ev, &self.registry, &mut self.books, out);
        self.pools.apply(ev);
        self.each_strategy(now_ns, |s, ctx| s.on_market(ev, ctx));
        let decision_ns = crate::clock::now_ns();
        self.latency.record(Stage::DequeuedToDecision, dequeued_ns, decision_ns);
        self.latency.record(Stage::TickToDecision, ev.recv_ns, decision_ns);
        self.route_intents(now_ns, OrderStamps { tick_recv_ns: ev.recv_ns, decision_ns, risk_passed_ns: 0 }, out);
    }

    /// Processes one order event.
    pub fn on_order(&mut self, ev: &OrderEvent, now_ns: u64, out: &mut impl FnMut(OrderCommand)) {
        self.counters.order_events += 1;
        self.journal(Record::Event(*ev));
        let was_open = self.oms.get(ev.client_id).is_some_and(|o| !o.state.is_final());
        let applied = self.oms.apply(ev.client_id, &ev.kind);
        let Some(order) = self.oms.get(ev.client_id).copied() else { return };
        if was_open && order.state.is_final() {
            let unfilled = crate::fixed::Qty(order.order.qty.0 - order.filled.0);
            let rejected = order.state == crate::oms::OrderState::Rejected;
            self.router.child_ended(ev.client_id, unfilled, rejected, &mut self.route_requests);
        }
        if let Applied::Fill(fill) = applied {
            if let Some(c) = self.per_strategy.get_mut(usize::from(order.strategy.0)) {
                c.fills += 1;
            }
            self.portfolio.apply_fill(&self.registry, order.strategy, order.order.instrument, order.order.side, &fill);
        }
        if matches!(applied, Applied::Duplicate | Applied::Unknown) {
            return;
        }
        self.one_strategy(now_ns, order.strategy, |s, ctx| s.on_order(ev, order.tag, ctx));
        let decision_ns = crate::clock::now_ns();
        self.route_intents(now_ns, OrderStamps { tick_recv_ns: ev.recv_ns, decision_ns, risk_passed_ns: 0 }, out);
    }

    /// Periodic work: strategy timers and OMS housekeeping.
    pub fn on_timer(&mut self, now_ns: u64, out: &mut impl FnMut(OrderCommand)) {
        let pnl = self.portfolio.totals(&self.registry, &self.books).net();
        self.risk.on_pnl(pnl);
        self.each_strategy(now_ns, |s, ctx| s.on_timer(ctx));
        let t = crate::clock::now_ns();
        self.route_intents(now_ns, OrderStamps { tick_recv_ns: t, decision_ns: t, risk_passed_ns: 0 }, out);
        self.oms.purge_final();
    }

    /// Calls `f` on every strategy with its context. The strategy list is moved out for the
    /// call (no allocation) so the context can borrow the rest of the core.
    #[inline]
    fn each_strategy(&mut self, now_ns: u64, mut f: impl FnMut(&mut S, &mut Ctx<'_>)) {
        let mut strategies = std::mem::take(&mut self.strategies);
        for (i, s) in strategies.iter_mut().enumerate() {
            f(s, &mut self.ctx(now_ns, StrategyId(i as u16)));
        }
        self.strategies = strategies;
    }

    /// Calls `f` on strategy `id`, if it exists.
    fn one_strategy(&mut self, now_ns: u64, id: StrategyId, f: impl FnOnce(&mut S, &mut Ctx<'_>)) {
        let mut strategies = std::mem::take(&mut self.strategies);
        if let Some(s) = strategies.get_mut(usize::from(id.0)) {
            f(s, &mut self.ctx(now_ns, id));
        }
        self.strategies = strategies;
    }

    fn ctx(&mut self, now_ns: u64, id: StrategyId) -> Ctx<'_> {
        Ctx::new(now_ns, &self.registry, &self.books, &self.portfolio, self.halted, id, &mut self.intents)
            .with_pools(&self.pools)
            .with_routes(&mut self.route_requests)
            .with_depth(&self.depth)
    }

    /// Engages the kill switch: cancels every open order and halts new risk; from now on only
    /// orders that reduce a position pass risk.
    pub fn kill(&mut self, out: &mut impl FnMut(OrderCommand)) {
        self.halted = true;
        let journal = self.journal.as_deref();
        let mut cancel = |oms: &mut Oms| {
            let next = oms
                .open_orders()
                .find(|o| o.state != crate::oms::OrderState::CancelPending)
                .map(|o| (o.order.client_id, o.order.instrument, o.order.venue));
            if let Some((client_id, instrument, venue)) = next {
                oms.on_cancel_sent(client_id);
                if let Some(j) = journal {
                    j.push_lossless(Record::Cancel { client_id, instrument, venue });
                }
                out(OrderCommand::Cancel { client_id, instrument, venue });
                true
            } else {
                false
            }
        };
        while cancel(&mut self.oms) {}
    }

    /// Turns buffered intents and route requests into orders through risk and the OMS. A
    /// refused intent is told to its strategy (which may submit again: those are routed too, a
    /// bounded number of rounds).
    fn route_intents(&mut self, now_ns: u64, stamps: OrderStamps, out: &mut impl FnMut(OrderCommand)) {
        for _round in 0..MAX_ROUTING_ROUNDS {
            if self.intents.is_empty() && self.route_requests.is_empty() {
                return;
            }
            while let Some(req) = self.route_requests.pop_front() {
                self.route_one(&req, now_ns, stamps, out);
            }
            std::mem::swap(&mut self.intents, &mut self.routing);
            while let Some((strategy, intent)) = self.routing.pop_front() {
                self.send_intent(strategy, intent, now_ns, stamps, out);
            }
        }
        // A strategy that keeps resubmitting refused intents is cut off here; drop the rest.
        self.counters.intents_dropped += self.intents.len() as u64;
        self.intents.clear();
        while self.route_requests.pop_front().is_some() {
            self.counters.intents_dropped += 1;
        }
    }

    /// Plans one route request and sends its children (each through risk).
    fn route_one(
        &mut self,
        req: &crate::router::RouteRequest,
        now_ns: u64,
        stamps: OrderStamps,
        out: &mut impl FnMut(OrderCommand),
    ) {
        let stale_ns = self.risk.config().stale_after_ms.saturating_mul(1_000_000);
        let (books, risk, registry) = (&self.books, &self.risk, &self.registry);
        let eligible = |id: InstrumentId| {
            let b = books.get(id);
            b.tradable(now_ns, stale_ns) && risk.venue_has_token(registry, id, now_ns)
        };
        let Some((slot, plan)) = self.router.begin(req, books, &self.depth, eligible) else { return };
        let mut unsent = plan.unallocated_units;
        for child in plan.children() {
            let intent = Intent {
                instrument: child.instrument,
                side: req.intent.side,
                qty: child.qty,
                limit_px: child.limit_px,
                tif: crate::event::TimeInForce::Ioc,
                reduce_only: false,
                tag: req.intent.tag,
            };
            match self.send_intent(req.strategy, intent, now_ns, stamps, out) {
                Some(id) => self.router.child_sent(slot, child, id),
                None => unsent += self.router.child_units(child),
            }
        }
        self.router.plan_done(slot, unsent, &mut self.route_requests);
    }

    /// Checks one intent with risk and, when it passes, records it in the OMS and emits it.
    /// Returns the order's client id, or `None` when refused (the strategy is told).
    fn send_intent(
        &mut self,
        strategy: StrategyId,
        intent: Intent,
        now_ns: u64,
        stamps: OrderStamps,
        out: &mut impl FnMut(OrderCommand),
    ) -> Option<crate::event::ClientOrderId> {
        self.counters.intents += 1;
        let inputs = RiskInputs {
            registry: &self.registry,
            books: &self.books,
            portfolio: &self.portfolio,
            open_orders: self.oms.open_count(),
            halted: self.halted,
            now_ns,
        };
        if let Err(reason) = self.risk.check(&intent, &inputs) {
            self.counters.refused += 1;
            self.one_strategy(now_ns, strategy, |s, ctx| s.on_refused(&intent, reason, ctx));
            return None;
        }
        let risk_passed_ns = crate::clock::now_ns();
        self.latency.record(Stage::DecisionToRiskPassed, stamps.decision_ns, risk_passed_ns);
        let order = NewOrder {
            client_id: self.oms.next_client_id(strategy),
            instrument: intent.instrument,
            venue: self.registry.get(intent.instrument).venue,
            side: intent.side,
            px: intent.limit_px,
            qty: intent.qty,
            tif: intent.tif,
            reduce_only: intent.reduce_only,
        };
        self.oms.on_sent(order, strategy, intent.tag);
        if let Some(c) = self.per_strategy.get_mut(usize::from(strategy.0)) {
            c.orders += 1;
        }
        self.counters.commands += 1;
        let stamps = OrderStamps { risk_passed_ns, ..stamps };
        self.journal(Record::New { order, strategy, tag: intent.tag, stamps });
        out(OrderCommand::New { order, stamps });
        Some(order.client_id)
    }

    /// The smart order router and its counters.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The instruments.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Latest market state.
    pub fn books(&self) -> &Books {
        &self.books
    }

    /// Positions and PnL.
    pub fn portfolio(&self) -> &Portfolio {
        &self.portfolio
    }

    /// Orders.
    pub fn oms(&self) -> &Oms {
        &self.oms
    }

    /// Risk checker and its refusal counts.
    pub fn risk(&self) -> &Risk {
        &self.risk
    }

    /// The strategies.
    pub fn strategies(&self) -> &[S] {
        &self.strategies
    }

    /// This thread's latency histograms.
    pub fn latency(&self) -> &LatencyRecorder {
        &self.latency
    }

    /// Counters.
    pub fn counters(&self) -> &CoreCounters {
        &self.counters
    }

    /// The depth books and their sequencers.
    pub fn depth_books(&self) -> &DepthBooks {
        &self.depth
    }

    /// Orders and fills per strategy, by strategy id.
    pub fn strategy_counters(&self) -> &[StrategyCounters] {
        &self.per_strategy
    }

    /// AMM pool states (confirmed and pending-adjusted reserves).
    pub fn pools(&self) -> &Pools {
        &self.pools
    }

    /// True once halted.
    pub fn halted(&self) -> bool {
        self.halted
    }
}

/// The rings a core thread reads and writes.
pub struct CoreRings {
    /// Market events from the I/O thread.
    pub market: Arc<Ring<MarketEvent>>,
    /// Order events from the I/O thread.
    pub orders: Arc<Ring<OrderEvent>>,
    /// Order commands to the I/O thread.
    pub commands: Arc<Ring<OrderCommand>>,
}

/// How the core thread is steered from outside: idle policy, stop and kill flags, progress.
#[derive(Debug, Default)]
pub struct CoreControl {
    /// What the thread does when idle.
    pub idle: IdlePolicy,
    /// Set to stop the thread.
    pub stop: AtomicBool,
    /// Set to engage the kill switch (halt new risk).
    pub kill: AtomicBool,
    /// Published counters.
    pub progress: CoreProgress,
}

/// How often the core calls strategy timers.
const TIMER_INTERVAL_NS: u64 = 1_000_000;

/// Longest the core waits at stop for its open and in-flight orders to end (acks, fills,
/// cancels, IOC expiries), so a clean stop leaves the journal and positions equal to the venue.
pub const STOP_DRAIN_NS: u64 = 3_000_000_000;

/// Runs `core` until `stop` is set, then returns it for the report.
///
/// Order events are drained before market events: a fill changes what the next tick should do.
/// Commands are pushed losslessly: an order is never dropped for want of ring space.
///
/// `notify` is called after an event that produced commands, so an I/O thread sleeping in
/// epoll wakes for them (pass a no-op when it polls).
pub fn run_core<S: Strategy, C: Clock>(
    mut core: Core<S>,
    rings: &CoreRings,
    clock: &C,
    control: &CoreControl,
    notify: &dyn Fn(),
) -> Core<S> {
    let CoreControl { idle, stop, kill, progress } = control;
    let idle = *idle;
    let mut idler = Idler::new(idle);
    let mut pacer = PollPacer::new();
    let mut next_timer = clock.now_ns() + TIMER_INTERVAL_NS;
    let commands = &rings.commands;
    let sent = std::cell::Cell::new(false);
    let mut send = |cmd: OrderCommand| {
        commands.push_lossless(cmd);
        sent.set(true);
    };
    while !stop.load(Ordering::Relaxed) {
        let mut worked = false;
        // `is_empty` first: an empty `pop` pays a full fence, on every round.
        if !rings.orders.is_empty() {
            while let Some(ev) = rings.orders.pop() {
                core.on_order(&ev, clock.now_ns(), &mut send);
                worked = true;
            }
        }
        let mut market_now = None;
        if !pacer.pacing() || pacer.may_poll(now_ns()) {
            if let Some(ev) = rings.market.pop() {
                let dequeued = now_ns();
                pacer.popped(dequeued);
                let now = clock.now_ns();
                core.on_market(&ev, now, dequeued, &mut send);
                market_now = Some(now);
                worked = true;
            } else if pacer.streaming() {
                pacer.empty(now_ns());
            }
        }
        // After a market event, its decision time serves the 1 ms timer check (a clock read in
        // a VM is a large share of the per-event cost at maximum rate).
        let now = market_now.unwrap_or_else(|| clock.now_ns());
        if now >= next_timer {
            if kill.load(Ordering::Relaxed) && !core.halted() {
                core.kill(&mut send);
            }
            core.on_timer(now, &mut send);
            progress.publish(&core);
            next_timer = now + TIMER_INTERVAL_NS;
        }
        if sent.replace(false) {
            notify();
        }
        if worked { idler.busy() } else { idler.idle() }
    }
    drain(&mut core, rings, clock, &mut send);
    if sent.get() {
        notify();
    }
    core
}

/// The stop procedure: cancel what rests, take no new risk, and apply order events until no
/// order is open or in flight (or [`STOP_DRAIN_NS`] passed): an answer the venue sends after
/// the stop would otherwise be known to the venue and not to the journal.
fn drain<S: Strategy, C: Clock>(core: &mut Core<S>, rings: &CoreRings, clock: &C, send: &mut impl FnMut(OrderCommand)) {
    if core.oms.open_count() == 0 {
        return;
    }
    if !core.halted() {
        core.kill(send);
    }
    // Operational, not a decision: the machine's clock bounds the wait, whatever `clock` is.
    let deadline = now_ns() + STOP_DRAIN_NS;
    while core.oms.open_count() > 0 && now_ns() < deadline {
        match rings.orders.pop() {
            Some(ev) => core.on_order(&ev, clock.now_ns(), send),
            // Market data is no longer acted on; keep the I/O thread's ring moving.
            None => {
                while rings.market.pop().is_some() {}
                std::thread::yield_now();
            }
        }
    }
}

/// Counters the core thread publishes for a live progress line, updated on its timer.
#[derive(Debug, Default)]
pub struct CoreProgress {
    /// Market events processed.
    pub market_events: std::sync::atomic::AtomicU64,
    /// Orders sent.
    pub orders_sent: std::sync::atomic::AtomicU64,
    /// Fills applied.
    pub fills: std::sync::atomic::AtomicU64,
}

impl CoreProgress {
    fn publish<S: Strategy>(&self, core: &Core<S>) {
        self.market_events.store(core.counters.market_events, Ordering::Relaxed);
        self.orders_sent.store(core.oms.counters().sent, Ordering::Relaxed);
        self.fills.store(core.oms.counters().fills, Ordering::Relaxed);
    }
}
