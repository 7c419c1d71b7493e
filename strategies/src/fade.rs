//! `kind = "fade"`: the worked example of `docs/writing-a-strategy.md`.
//!
//! It fades sharp moves of one instrument's mid away from a slow moving average: when the mid
//! runs `trigger_bps` above the average it sells one clip (IOC at the bid), when it runs that far
//! below it buys one (IOC at the ask), never holding more than `max_clips` clips either way and
//! never with more than one order working. Small on purpose: it shows every part of the plug-in
//! API (config, construction against the registry, market and order callbacks, refusals) with
//! integer arithmetic only, and no allocation after construction.

use crossbar_engine::event::{MarketBody, MarketEvent, OrderEvent, OrderEventKind, Side, TimeInForce};
use crossbar_engine::fixed::{Px, Qty};
use crossbar_engine::instrument::{InstrumentId, Registry};
use crossbar_engine::risk::Refusal;
use crossbar_engine::strategy::{Ctx, Intent, Strategy};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::StrategyError;
use crate::basis::LegRef;

/// `kind = "fade"` config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FadeConfig {
    /// Name in reports.
    pub name: String,
    /// The instrument it trades.
    pub instrument: LegRef,
    /// Quantity per clip, in the instrument's quantity units; a positive multiple of its lot.
    #[serde(with = "rust_decimal::serde::str")]
    pub qty: Decimal,
    /// Distance of the mid from its average that triggers a clip, bps (integer).
    pub trigger_bps: i64,
    /// Most clips held in one direction.
    pub max_clips: i64,
    /// Smoothing of the average: each mid moves it by 1/2^`ema_shift` of the difference.
    #[serde(default = "default_ema_shift")]
    pub ema_shift: u32,
}

fn default_ema_shift() -> u32 {
    6
}

/// The fade strategy's state: all integers, sized at construction.
#[derive(Debug)]
pub struct FadeStrategy {
    name: String,
    instrument: InstrumentId,
    clip: Qty,
    trigger_bps: i64,
    max_clips: i64,
    ema_shift: u32,
    /// Moving average of the mid in price mantissa units; 0 before the first two-sided quote.
    ema: i64,
    /// Net filled position in quantity mantissa units (+ long).
    pub position: i64,
    /// True while an order is out: the next one waits for its end.
    working: bool,
    /// Clips sent.
    pub clips: u64,
    /// Intents risk refused.
    pub refused: u64,
}

impl FadeStrategy {
    /// Resolves the instrument and converts the clip to its quantity mantissa.
    ///
    /// # Errors
    /// [`StrategyError`] for an unknown instrument or a clip that is not a positive multiple of
    /// its lot, a trigger that is not positive, or a negative clip limit.
    pub fn new(cfg: &FadeConfig, registry: &Registry) -> Result<Self, StrategyError> {
        let leg = &cfg.instrument;
        let inst = registry.venue_id(&leg.venue).and_then(|v| registry.find(v, &leg.symbol)).ok_or_else(|| {
            StrategyError::UnknownInstrument {
                strategy: cfg.name.clone(),
                venue: leg.venue.clone(),
                symbol: leg.symbol.clone(),
            }
        })?;
        let invalid = |reason: String| StrategyError::Invalid { strategy: cfg.name.clone(), reason };
        let clip = Qty::from_decimal(cfg.qty, inst.qty_scale)
            .ok()
            .filter(|q| q.0 > 0 && q.0 % inst.lot.0 == 0)
            .ok_or_else(|| invalid(format!("qty {} is not a positive multiple of the lot", cfg.qty)))?;
        if cfg.trigger_bps <= 0 || cfg.max_clips < 0 || cfg.ema_shift > 20 {
            return Err(invalid("trigger_bps must be > 0, max_clips ≥ 0, ema_shift ≤ 20".into()));
        }
        Ok(Self {
            name: cfg.name.clone(),
            instrument: inst.id,
            clip,
            trigger_bps: cfg.trigger_bps,
            max_clips: cfg.max_clips,
            ema_shift: cfg.ema_shift,
            ema: 0,
            position: 0,
            working: false,
            clips: 0,
            refused: 0,
        })
    }

    /// The current moving average of the mid, price mantissa units (0 before the first quote).
    pub fn average(&self) -> Px {
        Px(self.ema)
    }
}

impl Strategy for FadeStrategy {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_market(&mut self, ev: &MarketEvent, ctx: &mut Ctx<'_>) {
        if ev.instrument != self.instrument || !matches!(ev.body, MarketBody::Quote(_)) {
            return;
        }
        let book = ctx.books.get(self.instrument);
        let Some(mid) = book.mid() else { return };
        if self.ema == 0 {
            self.ema = mid.0;
            return;
        }
        // Deviation from the average *before* this mid moves it, in whole bps (truncated).
        let dev_bps = (i128::from(mid.0 - self.ema) * 10_000 / i128::from(self.ema)) as i64;
        self.ema += (mid.0 - self.ema) >> self.ema_shift;
        if self.working || ctx.halted {
            return;
        }
        let limit = self.max_clips * self.clip.0;
        let (side, px) = if dev_bps >= self.trigger_bps && self.position - self.clip.0 >= -limit {
            (Side::Sell, book.quote.bid_px)
        } else if dev_bps <= -self.trigger_bps && self.position + self.clip.0 <= limit {
            (Side::Buy, book.quote.ask_px)
        } else {
            return;
        };
        let intent = Intent {
            instrument: self.instrument,
            side,
            qty: self.clip,
            limit_px: px,
            tif: TimeInForce::Ioc,
            reduce_only: false,
            tag: 0,
        };
        if ctx.submit(intent) {
            self.working = true;
            self.clips += 1;
        }
    }

    fn on_order(&mut self, ev: &OrderEvent, _tag: u32, _ctx: &mut Ctx<'_>) {
        match ev.kind {
            OrderEventKind::Filled(fill) => {
                self.position += if ev.side == Side::Buy { fill.qty.0 } else { -fill.qty.0 };
                if fill.leaves_qty.is_zero() {
                    self.working = false;
                }
            }
            OrderEventKind::Cancelled | OrderEventKind::Expired | OrderEventKind::Rejected(_) => self.working = false,
            OrderEventKind::Accepted => {}
        }
    }

    fn on_refused(&mut self, _intent: &Intent, _reason: Refusal, _ctx: &mut Ctx<'_>) {
        // The intent never became an order: nothing is working.
        self.working = false;
        self.refused += 1;
    }
}
