//! Pre-trade risk: every intent is checked before it becomes an order.
//!
//! Each refusal has a typed reason and a counter, so a desk can see why the engine did not
//! trade. Checks are integer or decimal arithmetic on state the core already holds: no lookups
//! beyond an index, no allocation.

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::book::Books;
use crate::event::Side;
use crate::instrument::Registry;
use crate::portfolio::Portfolio;
use crate::strategy::Intent;

/// Limits from the `[risk]` config section.
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
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            max_order_notional: Decimal::from(50_000),
            max_position_notional: Decimal::from(250_000),
            price_collar_bps: 100,
            max_open_orders: 64,
            stale_after_ms: 5_000,
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
    /// The book is not whole, not two-sided, or stale.
    BookNotTradable,
    /// The kill switch or a breaker halted new risk.
    Halted,
    /// A reduce-only intent that would not reduce.
    NotReducing,
}

impl Refusal {
    /// Every reason, for reports.
    pub const ALL: [Self; 8] = [
        Self::InvalidOrder,
        Self::OrderNotional,
        Self::PositionLimit,
        Self::PriceCollar,
        Self::OpenOrders,
        Self::BookNotTradable,
        Self::Halted,
        Self::NotReducing,
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

/// The pre-trade checker and its refusal counters.
#[derive(Debug)]
pub struct Risk {
    cfg: RiskConfig,
    refusals: [u64; Refusal::ALL.len()],
}

impl Risk {
    /// A checker with `cfg` limits.
    pub fn new(cfg: RiskConfig) -> Self {
        Self { cfg, refusals: [0; Refusal::ALL.len()] }
    }

    /// Checks `intent` against the limits and the state the core holds. A refusal is counted.
    ///
    /// # Errors
    /// The first [`Refusal`] that applies.
    pub fn check(&mut self, intent: &Intent, state: &RiskInputs<'_>) -> Result<(), Refusal> {
        let r = self.evaluate(intent, state);
        if let Err(reason) = r {
            self.refusals[reason as usize] += 1;
        }
        r
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
        let book = books.get(intent.instrument);
        if !book.tradable(now_ns, self.cfg.stale_after_ms.saturating_mul(1_000_000)) {
            return Err(Refusal::BookNotTradable);
        }
        if open_orders >= self.cfg.max_open_orders {
            return Err(Refusal::OpenOrders);
        }
        let px = inst.px(intent.limit_px);
        let notional = px * inst.qty(intent.qty) * inst.contract_size;
        if notional > self.cfg.max_order_notional {
            return Err(Refusal::OrderNotional);
        }
        if !reduces && ((pos + signed).abs() * px * inst.contract_size) > self.cfg.max_position_notional {
            return Err(Refusal::PositionLimit);
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

    /// The configured limits.
    pub fn config(&self) -> &RiskConfig {
        &self.cfg
    }
}
