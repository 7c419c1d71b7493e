//! Pre-trade risk: every intent is checked before it becomes an order.
//!
//! Each refusal has a typed reason and a counter, so a desk can see why the engine did not
//! trade. Checks are integer or decimal arithmetic on state the core already holds: no lookups
//! beyond an index, no allocation after the first check (which sizes the per-venue and
//! per-underlying tables once).

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::book::Books;
use crate::event::Side;
use crate::instrument::{InstrumentKind, Registry};
use crate::portfolio::Portfolio;
use crate::strategy::Intent;

/// Limits from the `[risk]` config section. Every limit added after the first five has a
/// permissive default so older config files keep loading.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskConfig {
    /// Largest notional of one order, in quote currency.
    #[serde(with = "rust_decimal::serde::str")]
    pub max_order_notional: Decimal,
    /// Largest absolute position notional per instrument, in quote currency.
    #[serde(with = "rust_decimal::serde::str")]
    pub max_position_notional: Decimal,
    /// Largest distance of a limit price from the mid, in bps: stops fat-finger prices.
    pub price_collar_bps: u32,
    /// Most orders open at once.
    pub max_open_orders: usize,
    /// A book older than this is stale: no new risk on it (ms).
    pub stale_after_ms: u64,
    /// Largest quantity of one order, in base units (contracts × contract size).
    #[serde(default = "default_max_order_qty", with = "rust_decimal::serde::str")]
    pub max_order_qty: Decimal,
    /// Largest absolute net delta per underlying (spot and perpetual positions summed in base
    /// units) an order may leave; orders that shrink it always pass.
    #[serde(default = "default_max_net_delta", with = "rust_decimal::serde::str")]
    pub max_net_delta: Decimal,
    /// Orders per second each venue's token bucket refills.
    #[serde(default = "default_orders_per_s")]
    pub venue_orders_per_s: u32,
    /// Token bucket size per venue: the burst allowed after a quiet period.
    #[serde(default = "default_order_burst")]
    pub venue_order_burst: u32,
    /// Drawdown of total PnL (realized + unrealized − fees + funding) from its peak, in quote
    /// currency, at which the circuit breaker trips: only reducing orders pass afterwards.
    #[serde(default = "default_max_drawdown", with = "rust_decimal::serde::str")]
    pub max_drawdown: Decimal,
}

fn default_max_order_qty() -> Decimal {
    Decimal::from(1_000_000)
}
fn default_max_net_delta() -> Decimal {
    Decimal::from(1_000_000)
}
fn default_orders_per_s() -> u32 {
    1_000
}
fn default_order_burst() -> u32 {
    100
}
fn default_max_drawdown() -> Decimal {
    Decimal::from(1_000_000_000)
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            max_order_notional: Decimal::from(50_000),
            max_position_notional: Decimal::from(250_000),
            price_collar_bps: 100,
            max_open_orders: 64,
            stale_after_ms: 5_000,
            max_order_qty: default_max_order_qty(),
            max_net_delta: default_max_net_delta(),
            venue_orders_per_s: default_orders_per_s(),
            venue_order_burst: default_order_burst(),
            max_drawdown: default_max_drawdown(),
        }
    }
}

/// Why an intent was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Zero or negative quantity or price, or not a multiple of tick/lot.
    InvalidOrder,
    /// Order notional above `max_order_notional`.
    OrderNotional,
    /// Resulting position above `max_position_notional`.
    PositionLimit,
    /// Limit price too far from the mid.
    PriceCollar,
    /// Too many open orders.
    OpenOrders,
    /// The book is not whole (gap, disconnect) or not two-sided.
    BookNotTradable,
    /// The kill switch halted new risk.
    Halted,
    /// A reduce-only intent that would not reduce.
    NotReducing,
    /// Order quantity above `max_order_qty`.
    OrderQty,
    /// The underlying's net delta would exceed `max_net_delta`.
    NetDelta,
    /// The venue's order-rate token bucket is empty.
    RateLimit,
    /// The instrument's market data is older than `stale_after_ms`.
    StaleData,
    /// The drawdown circuit breaker has tripped.
    Drawdown,
}

impl Refusal {
    /// Every reason, for reports.
    pub const ALL: [Self; 13] = [
        Self::InvalidOrder,
        Self::OrderNotional,
        Self::PositionLimit,
        Self::PriceCollar,
        Self::OpenOrders,
        Self::BookNotTradable,
        Self::Halted,
        Self::NotReducing,
        Self::OrderQty,
        Self::NetDelta,
        Self::RateLimit,
        Self::StaleData,
        Self::Drawdown,
    ];

    /// The reason's name in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::InvalidOrder => "invalid_order",
            Self::OrderNotional => "order_notional",
            Self::PositionLimit => "position_limit",
            Self::PriceCollar => "price_collar",
            Self::OpenOrders => "open_orders",
            Self::BookNotTradable => "book_not_tradable",
            Self::Halted => "halted",
            Self::NotReducing => "not_reducing",
            Self::OrderQty => "order_qty",
            Self::NetDelta => "net_delta",
            Self::RateLimit => "rate_limit",
            Self::StaleData => "stale_data",
            Self::Drawdown => "drawdown",
        }
    }
}

/// The core state a risk check reads.
#[derive(Clone, Copy)]
pub struct RiskInputs<'a> {
    /// Instruments.
    pub registry: &'a Registry,
    /// Latest market state.
    pub books: &'a Books,
    /// Positions.
    pub portfolio: &'a Portfolio,
    /// Orders open now.
    pub open_orders: usize,
    /// Kill switch or breaker engaged.
    pub halted: bool,
    /// Injected clock, ns.
    pub now_ns: u64,
}

/// One token, in the bucket's fixed-point units (a token is 10⁹ units so refill by elapsed ns
/// times orders-per-second is exact integer arithmetic).
const TOKEN: u64 = 1_000_000_000;

/// One venue's order-rate token bucket.
#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    units: u64,
    at_ns: u64,
    started: bool,
}

/// The pre-trade checker and its refusal counters.
#[derive(Debug)]
pub struct Risk {
    cfg: RiskConfig,
    refusals: [u64; Refusal::ALL.len()],
    /// Underlying index per instrument (instruments with the same base share one).
    underlying: Vec<u16>,
    buckets: Vec<Bucket>,
    peak_pnl: Decimal,
    last_pnl: Decimal,
    tripped: bool,
}

impl Risk {
    /// A checker with `cfg` limits.
    pub fn new(cfg: RiskConfig) -> Self {
        Self {
            cfg,
            refusals: [0; Refusal::ALL.len()],
            underlying: Vec::new(),
            buckets: Vec::new(),
            peak_pnl: Decimal::ZERO,
            last_pnl: Decimal::ZERO,
            tripped: false,
        }
    }

    /// Sizes the per-venue and per-underlying tables for `registry` (done on the first check if
    /// not called; the core calls it at construction so the hot path never allocates).
    pub fn prepare(&mut self, registry: &Registry) {
        let insts = registry.instruments();
        self.underlying =
            insts.iter().map(|i| insts.iter().position(|j| j.base == i.base).map_or(0, |p| p as u16)).collect();
        self.buckets = vec![Bucket::default(); registry.venues().len()];
    }

    /// Checks `intent` against the limits and the state the core holds. A refusal is counted;
    /// a pass takes one token from the venue's order-rate bucket.
    ///
    /// # Errors
    /// The first [`Refusal`] that applies.
    pub fn check(&mut self, intent: &Intent, state: &RiskInputs<'_>) -> Result<(), Refusal> {
        if self.underlying.len() != state.registry.len() {
            self.prepare(state.registry);
        }
        let r = self.evaluate(intent, state).and_then(|()| self.take_token(intent, state));
        if let Err(reason) = r {
            self.refusals[reason as usize] += 1;
        }
        r
    }

    /// True when the venue of `instrument` has a token for one more order now (the router
    /// skips venues that would be refused for rate). Takes nothing.
    pub fn venue_has_token(
        &self,
        registry: &Registry,
        instrument: crate::instrument::InstrumentId,
        now_ns: u64,
    ) -> bool {
        let v = registry.get(instrument).venue.index();
        self.buckets.get(v).is_none_or(|b| self.refilled(b, now_ns) >= TOKEN)
    }

    fn capacity(&self) -> u64 {
        u64::from(self.cfg.venue_order_burst).saturating_mul(TOKEN)
    }

    fn refilled(&self, b: &Bucket, now_ns: u64) -> u64 {
        if !b.started {
            return self.capacity();
        }
        let add = now_ns.saturating_sub(b.at_ns).saturating_mul(u64::from(self.cfg.venue_orders_per_s));
        b.units.saturating_add(add).min(self.capacity())
    }

    fn take_token(&mut self, intent: &Intent, state: &RiskInputs<'_>) -> Result<(), Refusal> {
        let v = state.registry.get(intent.instrument).venue.index();
        let Some(b) = self.buckets.get(v).copied() else { return Ok(()) };
        let units = self.refilled(&b, state.now_ns);
        if units < TOKEN {
            return Err(Refusal::RateLimit);
        }
        self.buckets[v] = Bucket { units: units - TOKEN, at_ns: state.now_ns.max(b.at_ns), started: true };
        Ok(())
    }

    /// Feeds the account's current total PnL to the drawdown circuit breaker; returns true when
    /// this call tripped it. Called off the per-event path (the core's timer and fills).
    pub fn on_pnl(&mut self, total_pnl: Decimal) -> bool {
        self.last_pnl = total_pnl;
        if total_pnl > self.peak_pnl {
            self.peak_pnl = total_pnl;
        }
        if !self.tripped && self.peak_pnl - total_pnl >= self.cfg.max_drawdown {
            self.tripped = true;
            return true;
        }
        false
    }

    /// True once the drawdown circuit breaker has tripped (it stays tripped for the run).
    pub fn breaker_tripped(&self) -> bool {
        self.tripped
    }

    /// Current drawdown from the PnL peak, in quote currency.
    pub fn drawdown(&self) -> Decimal {
        self.peak_pnl - self.last_pnl
    }

    /// Net delta of `instrument`'s underlying in base units: spot and perpetual positions times
    /// contract size (options are the hedger's business: their delta needs a model).
    pub fn net_delta(
        &self,
        registry: &Registry,
        portfolio: &Portfolio,
        instrument: crate::instrument::InstrumentId,
    ) -> Decimal {
        let Some(&u) = self.underlying.get(instrument.index()) else { return Decimal::ZERO };
        let mut d = Decimal::ZERO;
        for (inst, &ui) in registry.instruments().iter().zip(&self.underlying) {
            if ui == u && inst.kind != InstrumentKind::Option {
                d += portfolio.get(inst.id).qty * inst.contract_size;
            }
        }
        d
    }

    fn evaluate(&self, intent: &Intent, state: &RiskInputs<'_>) -> Result<(), Refusal> {
        let RiskInputs { registry, books, portfolio, open_orders, halted, now_ns } = *state;
        let inst = registry.get(intent.instrument);
        if intent.qty.0 <= 0
            || intent.limit_px.0 <= 0
            || intent.qty.0 % inst.lot.0 != 0
            || intent.limit_px.0 % inst.tick.0 != 0
        {
            return Err(Refusal::InvalidOrder);
        }
        let pos = portfolio.get(intent.instrument).qty;
        let signed = inst.qty(intent.qty) * Decimal::from(intent.side.sign());
        let reduces =
            !pos.is_zero() && pos.is_sign_positive() != signed.is_sign_positive() && signed.abs() <= pos.abs();
        if intent.reduce_only && !reduces {
            return Err(Refusal::NotReducing);
        }
        if halted && !reduces {
            return Err(Refusal::Halted);
        }
        if self.tripped && !reduces {
            return Err(Refusal::Drawdown);
        }
        let book = books.get(intent.instrument);
        if !book.whole || !book.has_two_sides() {
            return Err(Refusal::BookNotTradable);
        }
        if now_ns.saturating_sub(book.last_recv_ns) > self.cfg.stale_after_ms.saturating_mul(1_000_000) {
            return Err(Refusal::StaleData);
        }
        if open_orders >= self.cfg.max_open_orders {
            return Err(Refusal::OpenOrders);
        }
        if signed.abs() * inst.contract_size > self.cfg.max_order_qty {
            return Err(Refusal::OrderQty);
        }
        let px = inst.px(intent.limit_px);
        let notional = px * inst.qty(intent.qty) * inst.contract_size;
        if notional > self.cfg.max_order_notional {
            return Err(Refusal::OrderNotional);
        }
        if !reduces && ((pos + signed).abs() * px * inst.contract_size) > self.cfg.max_position_notional {
            return Err(Refusal::PositionLimit);
        }
        if inst.kind != InstrumentKind::Option {
            let delta = self.net_delta(registry, portfolio, intent.instrument);
            let after = delta + signed * inst.contract_size;
            if after.abs() > self.cfg.max_net_delta && after.abs() > delta.abs() {
                return Err(Refusal::NetDelta);
            }
        }
        let mid = book.mid().map_or(0, |m| m.0);
        let distance = match intent.side {
            Side::Buy => intent.limit_px.0 - mid,
            Side::Sell => mid - intent.limit_px.0,
        };
        // Only a price worse than the mid by more than the collar is refused; a passive price is fine.
        if i128::from(distance) * 10_000 > i128::from(mid) * i128::from(self.cfg.price_collar_bps) {
            return Err(Refusal::PriceCollar);
        }
        Ok(())
    }

    /// Refusals so far, per reason.
    pub fn refusals(&self) -> impl Iterator<Item = (Refusal, u64)> + '_ {
        Refusal::ALL.iter().map(|r| (*r, self.refusals[*r as usize]))
    }

    /// Refusals so far for one reason.
    pub fn refused(&self, reason: Refusal) -> u64 {
        self.refusals[reason as usize]
    }

    /// The configured limits.
    pub fn config(&self) -> &RiskConfig {
        &self.cfg
    }
}
