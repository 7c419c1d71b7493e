//! crossbar's strategies: what to trade, decided from normalized events.
//!
//! Strategies see instruments, books, positions and order events through the engine's
//! [`Strategy`] trait only; they never import a connector, so each runs unchanged on any venue,
//! in the simulator and in replay. The core dispatches through [`AnyStrategy`], an enum, so the
//! hot path has no virtual calls.
#![forbid(unsafe_code)]

pub mod basis;
pub mod fade;
pub mod hedger;
pub mod models;

use crossbar_engine::event::{MarketEvent, OrderEvent};
use crossbar_engine::instrument::Registry;
use crossbar_engine::risk::Refusal;
use crossbar_engine::strategy::{Ctx, Intent, Strategy};
use serde::Deserialize;

pub use basis::{BasisConfig, BasisStrategy};
pub use hedger::{HedgerConfig, HedgerStrategy};

/// Why a strategy could not be built from config.
#[derive(Debug, thiserror::Error)]
pub enum StrategyError {
    /// A leg names an instrument that is not configured.
    #[error("strategy {strategy}: no instrument {symbol} on venue {venue}")]
    UnknownInstrument {
        /// Strategy name.
        strategy: String,
        /// Venue named.
        venue: String,
        /// Symbol named.
        symbol: String,
    },
    /// A parameter is out of range or does not fit an instrument.
    #[error("strategy {strategy}: {reason}")]
    Invalid {
        /// Strategy name.
        strategy: String,
        /// What is wrong.
        reason: String,
    },
}

/// One `[[strategies]]` entry: `kind` selects the strategy, the rest is its own config.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StrategyConfig {
    /// Spot/perpetual basis (cash and carry).
    Basis(BasisConfig),
    /// Delta-neutral hedger of options, LP positions and spot/perp positions.
    Hedger(HedgerConfig),
    /// The worked example of `docs/writing-a-strategy.md`: fades sharp moves from an average.
    Fade(fade::FadeConfig),
}

/// Every strategy crossbar ships, as one enum for static dispatch.
#[derive(Debug)]
pub enum AnyStrategy {
    /// See [`BasisStrategy`].
    Basis(BasisStrategy),
    /// See [`HedgerStrategy`].
    Hedger(HedgerStrategy),
    /// See [`fade::FadeStrategy`].
    Fade(fade::FadeStrategy),
}

/// Builds the configured strategies against this run's instruments.
///
/// # Errors
/// The first [`StrategyError`] found.
pub fn build(configs: &[StrategyConfig], registry: &Registry) -> Result<Vec<AnyStrategy>, StrategyError> {
    configs
        .iter()
        .map(|c| match c {
            StrategyConfig::Basis(b) => BasisStrategy::new(b, registry).map(AnyStrategy::Basis),
            StrategyConfig::Hedger(h) => HedgerStrategy::new(h, registry).map(AnyStrategy::Hedger),
            StrategyConfig::Fade(f) => fade::FadeStrategy::new(f, registry).map(AnyStrategy::Fade),
        })
        .collect()
}

impl Strategy for AnyStrategy {
    fn name(&self) -> &str {
        match self {
            Self::Basis(s) => s.name(),
            Self::Hedger(s) => s.name(),
            Self::Fade(s) => s.name(),
        }
    }

    #[inline]
    fn on_market(&mut self, ev: &MarketEvent, ctx: &mut Ctx<'_>) {
        match self {
            Self::Basis(s) => s.on_market(ev, ctx),
            Self::Hedger(s) => s.on_market(ev, ctx),
            Self::Fade(s) => s.on_market(ev, ctx),
        }
    }

    fn on_order(&mut self, ev: &OrderEvent, tag: u32, ctx: &mut Ctx<'_>) {
        match self {
            Self::Basis(s) => s.on_order(ev, tag, ctx),
            Self::Hedger(s) => s.on_order(ev, tag, ctx),
            Self::Fade(s) => s.on_order(ev, tag, ctx),
        }
    }

    fn on_refused(&mut self, intent: &Intent, reason: Refusal, ctx: &mut Ctx<'_>) {
        match self {
            Self::Basis(s) => s.on_refused(intent, reason, ctx),
            Self::Hedger(s) => s.on_refused(intent, reason, ctx),
            Self::Fade(s) => s.on_refused(intent, reason, ctx),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        match self {
            Self::Basis(s) => s.on_timer(ctx),
            Self::Hedger(s) => s.on_timer(ctx),
            Self::Fade(s) => s.on_timer(ctx),
        }
    }
}
