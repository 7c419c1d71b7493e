//! Spot/perpetual basis (cash and carry).
//!
//! When the perpetual's bid is above the spot ask by more than both taker fees plus a threshold,
//! sell the perpetual (IOC at the touch) and, the moment each perp fill arrives, buy the same
//! quantity of spot (IOC, with a slippage allowance so the hedge fills). When the basis converges
//! (perpetual ask minus spot bid at or below the exit threshold), buy the perpetual back and sell
//! the spot the same way. Legs still fill unequally at times (the hedge's touch moved beyond the
//! allowance): the residual is bounded by one clip, tracked, and flattened on the over-filled leg
//! before anything else. All arithmetic is on integer mantissas in hundredths of a basis point;
//! no `f64`.

use crossbar_engine::event::{MarketBody, MarketEvent, OrderEvent, OrderEventKind, Side, TimeInForce};
use crossbar_engine::fixed::{Px, Qty};
use crossbar_engine::instrument::{InstrumentId, InstrumentKind, Registry};
use crossbar_engine::risk::Refusal;
use crossbar_engine::strategy::{Ctx, Intent, Strategy};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;

use crate::StrategyError;

/// A venue and symbol naming one leg.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegRef {
    /// Venue name.
    pub venue: String,
    /// Venue symbol.
    pub symbol: String,
}

/// `kind = "basis"` config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasisConfig {
    /// Name in reports.
    pub name: String,
    /// The spot leg (bought on entry).
    pub spot: LegRef,
    /// The perpetual leg (sold on entry).
    pub perp: LegRef,
    /// Quantity per clip, in base units; must be a multiple of both legs' lots.
    #[serde(with = "rust_decimal::serde::str")]
    pub qty: Decimal,
    /// Net edge after both taker fees needed to enter, bps.
    #[serde(with = "rust_decimal::serde::str")]
    pub entry_bps: Decimal,
    /// Gross basis (perp ask − spot bid) at or below which positions unwind, bps.
    #[serde(with = "rust_decimal::serde::str")]
    pub exit_bps: Decimal,
    /// Most clips held at once.
    pub max_clips: u32,
    /// Pause after each entry or exit, ms.
    pub cooldown_ms: u64,
    /// How far past the touch the hedge leg may pay to be sure to fill, bps.
    #[serde(default = "default_hedge_slippage", with = "rust_decimal::serde::str")]
    pub hedge_slippage_bps: Decimal,
}

fn default_hedge_slippage() -> Decimal {
    Decimal::from(5)
}

/// Order tags: which leg, and whether its fills must be hedged on the other leg.
const TAG_SPOT: u32 = 1;
const TAG_PERP: u32 = 2;
const TAG_PERP_THEN_HEDGE: u32 = 3;

/// The basis strategy's state.
#[derive(Debug)]
pub struct BasisStrategy {
    name: String,
    spot: InstrumentId,
    perp: InstrumentId,
    spot_qty: Qty,
    perp_qty: Qty,
    /// Spot lot in perp quantity units ratio: base units are compared at a common scale.
    spot_unit: i64,
    perp_unit: i64,
    /// Price scaling to a common scale.
    spot_px_mul: i64,
    perp_px_mul: i64,
    fees_cbps: i64,
    hedge_slippage_cbps: i64,
    entry_cbps: i64,
    exit_cbps: i64,
    max_clips: u32,
    cooldown_ns: u64,
    /// Legs still working (orders not final).
    working: u32,
    /// Filled base quantity per leg, at the common quantity scale (positive = long).
    spot_pos: i64,
    perp_pos: i64,
    next_action_ns: u64,
    /// Opportunities seen and clips entered, for the report.
    pub entries: u64,
    /// Clips unwound.
    pub exits: u64,
    /// Residual-flattening orders sent.
    pub repairs: u64,
    /// Intents refused by risk.
    pub refused: u64,
}

/// An immediate-or-cancel intent at a limit price.
fn ioc(instrument: InstrumentId, side: Side, qty: Qty, limit_px: Px, reduce_only: bool, tag: u32) -> Intent {
    Intent { instrument, side, qty, limit_px, tif: TimeInForce::Ioc, reduce_only, tag }
}

fn cbps(d: Decimal) -> i64 {
    (d * Decimal::from(100)).round().to_i64().unwrap_or(i64::MAX)
}

impl BasisStrategy {
    /// Resolves the legs and converts parameters to integers.
    ///
    /// # Errors
    /// [`StrategyError`] for an unknown leg, a leg of the wrong kind, or a quantity that is not
    /// a multiple of a leg's lot.
    pub fn new(cfg: &BasisConfig, registry: &Registry) -> Result<Self, StrategyError> {
        let find = |leg: &LegRef| {
            registry.venue_id(&leg.venue).and_then(|v| registry.find(v, &leg.symbol)).ok_or_else(|| {
                StrategyError::UnknownInstrument {
                    strategy: cfg.name.clone(),
                    venue: leg.venue.clone(),
                    symbol: leg.symbol.clone(),
                }
            })
        };
        let invalid = |reason: String| StrategyError::Invalid { strategy: cfg.name.clone(), reason };
        let spot = find(&cfg.spot)?;
        let perp = find(&cfg.perp)?;
        if spot.kind != InstrumentKind::Spot || perp.kind != InstrumentKind::Perpetual {
            return Err(invalid("spot leg must be spot and perp leg a perpetual".into()));
        }
        let qty_in = |inst: &crossbar_engine::instrument::Instrument| {
            let contracts = cfg.qty / inst.contract_size;
            Qty::from_decimal(contracts, inst.qty_scale)
                .ok()
                .filter(|q| q.0 > 0 && q.0 % inst.lot.0 == 0)
                .ok_or_else(|| invalid(format!("qty {} is not a positive multiple of {}'s lot", cfg.qty, inst.symbol)))
        };
        let common_q = spot.qty_scale.places().max(perp.qty_scale.places());
        let common_p = spot.price_scale.places().max(perp.price_scale.places());
        let pow = |n: u8| 10i64.pow(u32::from(n));
        let contract_units = |inst: &crossbar_engine::instrument::Instrument| -> Result<i64, StrategyError> {
            let per_contract = inst.contract_size * Decimal::from(pow(common_q - inst.qty_scale.places()));
            per_contract
                .to_i64()
                .filter(|_| per_contract.fract().is_zero())
                .ok_or_else(|| invalid("contract size must be whole at the common scale".into()))
        };
        Ok(Self {
            name: cfg.name.clone(),
            spot: spot.id,
            perp: perp.id,
            spot_qty: qty_in(spot)?,
            perp_qty: qty_in(perp)?,
            spot_unit: contract_units(spot)?,
            perp_unit: contract_units(perp)?,
            spot_px_mul: pow(common_p - spot.price_scale.places()),
            perp_px_mul: pow(common_p - perp.price_scale.places()),
            fees_cbps: cbps((spot.taker_fee + perp.taker_fee) * Decimal::from(10_000)),
            hedge_slippage_cbps: cbps(cfg.hedge_slippage_bps),
            entry_cbps: cbps(cfg.entry_bps),
            exit_cbps: cbps(cfg.exit_bps),
            max_clips: cfg.max_clips,
            cooldown_ns: cfg.cooldown_ms * 1_000_000,
            working: 0,
            spot_pos: 0,
            perp_pos: 0,
            next_action_ns: 0,
            entries: 0,
            exits: 0,
            repairs: 0,
            refused: 0,
        })
    }

    /// Basis from `a` (a perp price) over `b` (a spot price) in hundredths of a bp.
    fn basis_cbps(&self, perp_px: Px, spot_px: Px) -> i64 {
        let p = i128::from(perp_px.0) * i128::from(self.perp_px_mul);
        let s = i128::from(spot_px.0) * i128::from(self.spot_px_mul);
        if s == 0 {
            return 0;
        }
        i64::try_from((p - s) * 1_000_000 / s).unwrap_or(0)
    }

    fn clip_units(&self) -> i64 {
        self.spot_qty.0 * self.spot_unit
    }

    fn submit(&mut self, ctx: &mut Ctx<'_>, intent: Intent) {
        if ctx.submit(intent) {
            self.working += 1;
        }
    }

    /// Sends the spot leg for a perp fill of `perp_units` (signed, common quantity scale): the
    /// opposite direction, same quantity, IOC with the slippage allowance. `reduce` on exits.
    fn hedge(&mut self, ctx: &mut Ctx<'_>, perp_units: i64, reduce: bool) {
        let book = ctx.books.get(self.spot);
        let qty = Qty(perp_units.abs() / self.spot_unit);
        if qty.0 == 0 || !book.has_two_sides() {
            return; // the residual is repaired on the next tick
        }
        let allowance = |px: Px| i128::from(px.0) * i128::from(self.hedge_slippage_cbps) / 1_000_000;
        let tick = ctx.registry.get(self.spot).tick.0;
        let (side, px) = if perp_units < 0 {
            let a = book.quote.ask_px;
            let raw = i128::from(a.0) + allowance(a);
            (Side::Buy, Px(i64::try_from(raw).unwrap_or(a.0) / tick * tick))
        } else {
            let b = book.quote.bid_px;
            let raw = i128::from(b.0) - allowance(b);
            (Side::Sell, Px((i64::try_from(raw).unwrap_or(b.0) + tick - 1) / tick * tick))
        };
        self.submit(ctx, ioc(self.spot, side, qty, px, reduce, TAG_SPOT));
    }

    /// Flattens the difference between the legs on the leg that has too much.
    fn repair(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let net = self.spot_pos + self.perp_pos;
        if net == 0 {
            return false;
        }
        let (inst, unit) = if self.spot_pos.abs() > self.perp_pos.abs() {
            (self.spot, self.spot_unit)
        } else {
            (self.perp, self.perp_unit)
        };
        let book = ctx.books.get(inst);
        let qty = Qty(net.abs() / unit);
        if qty.0 == 0 || !book.has_two_sides() {
            return false;
        }
        let (side, px) = if net > 0 { (Side::Sell, book.quote.bid_px) } else { (Side::Buy, book.quote.ask_px) };
        self.repairs += 1;
        let tag = if inst == self.spot { TAG_SPOT } else { TAG_PERP };
        self.submit(ctx, ioc(inst, side, qty, px, true, tag));
        true
    }
}

impl Strategy for BasisStrategy {
    fn name(&self) -> &str {
        &self.name
    }

    #[inline]
    fn on_market(&mut self, ev: &MarketEvent, ctx: &mut Ctx<'_>) {
        if !matches!(ev.body, MarketBody::Quote(_)) || (ev.instrument != self.spot && ev.instrument != self.perp) {
            return;
        }
        if self.working > 0 || ctx.now_ns < self.next_action_ns {
            return;
        }
        let (s, p) = (ctx.books.get(self.spot), ctx.books.get(self.perp));
        if !s.whole || !p.whole || !s.has_two_sides() || !p.has_two_sides() {
            return;
        }
        if self.repair(ctx) {
            return;
        }
        let clips = (self.spot_pos / self.clip_units().max(1)).max(0);
        let entry_edge = self.basis_cbps(p.quote.bid_px, s.quote.ask_px) - self.fees_cbps;
        if entry_edge >= self.entry_cbps && clips < i64::from(self.max_clips) && !ctx.halted {
            let (pq, pb) = (self.perp_qty, p.quote.bid_px);
            self.submit(ctx, ioc(self.perp, Side::Sell, pq, pb, false, TAG_PERP_THEN_HEDGE));
            self.entries += 1;
            self.next_action_ns = ctx.now_ns + self.cooldown_ns;
            return;
        }
        let exit_basis = self.basis_cbps(p.quote.ask_px, s.quote.bid_px);
        if clips > 0 && exit_basis <= self.exit_cbps {
            let (pq, pa) = (self.perp_qty, p.quote.ask_px);
            self.submit(ctx, ioc(self.perp, Side::Buy, pq, pa, true, TAG_PERP_THEN_HEDGE));
            self.exits += 1;
            self.next_action_ns = ctx.now_ns + self.cooldown_ns;
        }
    }

    fn on_order(&mut self, ev: &OrderEvent, tag: u32, ctx: &mut Ctx<'_>) {
        match ev.kind {
            OrderEventKind::Filled(f) => {
                let unit = if tag == TAG_SPOT { self.spot_unit } else { self.perp_unit };
                let units = f.qty.0 * unit * ev.side.sign();
                if tag == TAG_SPOT {
                    self.spot_pos += units;
                } else {
                    self.perp_pos += units;
                }
                if tag == TAG_PERP_THEN_HEDGE {
                    self.hedge(ctx, units, ev.side == Side::Buy);
                }
                if f.leaves_qty.0 == 0 {
                    self.working = self.working.saturating_sub(1);
                }
            }
            OrderEventKind::Cancelled | OrderEventKind::Expired | OrderEventKind::Rejected(_) => {
                self.working = self.working.saturating_sub(1);
            }
            OrderEventKind::Accepted => {}
        }
    }

    fn on_refused(&mut self, _intent: &Intent, _reason: Refusal, _ctx: &mut Ctx<'_>) {
        self.working = self.working.saturating_sub(1);
        self.refused += 1;
    }
}
