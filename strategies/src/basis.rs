//! Spot/perpetual basis (cash and carry), on one venue or across two.
//!
//! Entry: the net edge is the basis between the perpetual's bid and the spot ask *as walked
//! through the depth for the clip's size* (the volume-weighted prices a taker of one clip would
//! get, so slippage is included), minus both legs' taker fees, plus the funding a short perpetual
//! expects to receive up to the exit horizon (the current rate times the venue's funding times
//! falling inside the horizon). At or above the entry threshold, sell the perpetual (IOC at the
//! worst walked level) and, the moment each perp fill arrives, buy the same quantity of spot (IOC,
//! with a slippage allowance so the hedge fills). Exit: when the basis converges (perpetual ask
//! over spot bid at or below the exit threshold) or funding turns against the short perpetual
//! (negative rate), buy the perpetual back and sell the spot the same way.
//!
//! Leg risk: legs still fill unequally at times (the hedge was rejected, or its touch moved past
//! the allowance). The unhedged quantity is tracked and bounded in size (`max_unhedged_qty`) and
//! in time (`max_unhedged_ms`): past either bound it is flattened at once on the over-filled leg,
//! even while other orders are working; inside them it is flattened as soon as nothing is working.
//! All arithmetic is on integer mantissas in hundredths of a basis point; no `f64`.

use crossbar_engine::event::{MarketBody, MarketEvent, OrderEvent, OrderEventKind, Side, TimeInForce};
use crossbar_engine::fixed::{Px, Qty, RATE_SCALE};
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
    /// Exit horizon for the expected-funding term of the entry edge, ms (0: no funding term).
    #[serde(default)]
    pub horizon_ms: u64,
    /// The perpetual's funding interval, ms: settlements after the next one are this far apart.
    #[serde(default = "default_funding_interval_ms")]
    pub funding_interval_ms: u64,
    /// Longest time quantity may stay unhedged before it is flattened regardless, ms.
    #[serde(default = "default_max_unhedged_ms")]
    pub max_unhedged_ms: u64,
    /// Largest unhedged quantity, base units, before it is flattened at once (0: one clip).
    #[serde(default, with = "rust_decimal::serde::str")]
    pub max_unhedged_qty: Decimal,
    /// Unwind when the perpetual's funding rate turns negative (the short pays).
    #[serde(default = "default_true")]
    pub exit_on_negative_funding: bool,
}

fn default_hedge_slippage() -> Decimal {
    Decimal::from(5)
}

fn default_funding_interval_ms() -> u64 {
    8 * 3_600_000
}

fn default_max_unhedged_ms() -> u64 {
    500
}

fn default_true() -> bool {
    true
}

/// Order tags: which leg, whether its fills must be hedged on the other leg, and whether it is a
/// flattening order. (2 was the plain perp leg, now always a repair.)
const TAG_SPOT: u32 = 1;
const TAG_PERP_THEN_HEDGE: u32 = 3;
const TAG_SPOT_REPAIR: u32 = 4;
const TAG_PERP_REPAIR: u32 = 5;

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
    horizon_ms: u64,
    funding_interval_ms: u64,
    max_unhedged_ns: u64,
    max_unhedged_units: i64,
    exit_on_negative_funding: bool,
    /// When the legs last became unequal (0: hedged).
    unhedged_since_ns: u64,
    /// A flattening order is working.
    repairing: bool,
    /// Net edge of the last entry decision, hundredths of a bp (for tests and reports).
    pub last_edge_cbps: i64,
    /// Longest time quantity stayed unhedged, ns.
    pub max_unhedged_seen_ns: u64,
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
        let spot_qty = qty_in(spot)?;
        let spot_unit = contract_units(spot)?;
        let max_unhedged_units = if cfg.max_unhedged_qty.is_zero() {
            spot_qty.0 * spot_unit
        } else {
            (cfg.max_unhedged_qty * Decimal::from(pow(common_q))).floor().to_i64().unwrap_or(i64::MAX)
        };
        Ok(Self {
            horizon_ms: cfg.horizon_ms,
            funding_interval_ms: cfg.funding_interval_ms.max(1),
            max_unhedged_ns: cfg.max_unhedged_ms.saturating_mul(1_000_000),
            max_unhedged_units,
            exit_on_negative_funding: cfg.exit_on_negative_funding,
            unhedged_since_ns: 0,
            repairing: false,
            last_edge_cbps: 0,
            max_unhedged_seen_ns: 0,
            name: cfg.name.clone(),
            spot: spot.id,
            perp: perp.id,
            spot_qty,
            perp_qty: qty_in(perp)?,
            spot_unit,
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
        let tag = if inst == self.spot { TAG_SPOT_REPAIR } else { TAG_PERP_REPAIR };
        let before = self.working;
        self.submit(ctx, ioc(inst, side, qty, px, true, tag));
        self.repairing = self.working > before;
        true
    }

    /// Flattens unhedged quantity when nothing else is working, or at once when it is past its
    /// size or time bound. Returns true when a flattening order was sent.
    fn maybe_repair(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let net = self.spot_pos + self.perp_pos;
        if net == 0 || self.repairing {
            return false;
        }
        let age = ctx.now_ns.saturating_sub(self.unhedged_since_ns);
        let breached = net.abs() > self.max_unhedged_units || age >= self.max_unhedged_ns;
        if self.working > 0 && !breached {
            return false;
        }
        self.repair(ctx)
    }

    /// Starts or stops the unhedged clock after a fill.
    fn track_unhedged(&mut self, now_ns: u64) {
        if self.spot_pos + self.perp_pos == 0 {
            if self.unhedged_since_ns != 0 {
                self.max_unhedged_seen_ns = self.max_unhedged_seen_ns.max(now_ns - self.unhedged_since_ns.min(now_ns));
            }
            self.unhedged_since_ns = 0;
        } else if self.unhedged_since_ns == 0 {
            self.unhedged_since_ns = now_ns.max(1);
        }
    }

    /// What a taker of `qty` on `inst` would get: (Σ px × qty, qty, worst level price), from the
    /// depth book when one is kept and whole, else from the touch. `None` when the visible
    /// liquidity is short of `qty`.
    fn walk(ctx: &Ctx<'_>, inst: InstrumentId, taker: Side, qty: Qty) -> Option<(i128, i64, Px)> {
        let book_side = taker.opposite();
        if let Some(sync) = ctx.depth.and_then(|d| d.get(inst)).filter(|s| s.whole()) {
            let (mut left, mut cost, mut worst) = (qty.0, 0i128, Px(0));
            for l in sync.book().levels(book_side) {
                if left == 0 {
                    break;
                }
                let take = left.min(l.qty.0);
                cost += i128::from(l.px.0) * i128::from(take);
                left -= take;
                worst = l.px;
            }
            return (left == 0 && qty.0 > 0).then_some((cost, qty.0, worst));
        }
        let q = ctx.books.get(inst).quote;
        let (px, avail) = if book_side == Side::Sell { (q.ask_px, q.ask_qty) } else { (q.bid_px, q.bid_qty) };
        (px.0 > 0 && avail.0 >= qty.0 && qty.0 > 0).then_some((i128::from(px.0) * i128::from(qty.0), qty.0, px))
    }

    /// Basis of a walked perp sale over a walked spot purchase, hundredths of a bp, truncated
    /// toward zero: `(p̄ − s̄) / s̄` with p̄, s̄ the volume-weighted prices at the common scale.
    fn walked_basis_cbps(&self, perp: (i128, i64, Px), spot: (i128, i64, Px)) -> i64 {
        let p = perp.0 * i128::from(self.perp_px_mul) * i128::from(spot.1);
        let s = spot.0 * i128::from(self.spot_px_mul) * i128::from(perp.1);
        if s == 0 {
            return 0;
        }
        i64::try_from((p - s) * 1_000_000 / s).unwrap_or(0)
    }

    /// Funding a short perpetual expects to receive until the exit horizon, hundredths of a bp
    /// of notional: the current rate times the settlements inside the horizon (the next one at
    /// the venue's `next_funding_ms`, then every funding interval), on the venue's clock.
    pub fn expected_funding_cbps(&self, ctx: &Ctx<'_>) -> i64 {
        let b = ctx.books.get(self.perp);
        let (now, next) = (b.last_exch_ms, b.next_funding_ms);
        if self.horizon_ms == 0 || now == 0 || next == 0 {
            return 0;
        }
        let until = next.saturating_sub(now);
        if until > self.horizon_ms {
            return 0;
        }
        let n = 1 + (self.horizon_ms - until) / self.funding_interval_ms;
        let per = i128::from(b.funding_rate.0) / 10i128.pow(u32::from(RATE_SCALE.places()) - 6);
        i64::try_from(per * i128::from(n)).unwrap_or(0)
    }

    /// The entry edge now, hundredths of a bp, with the perp sale's limit price; `None` when a
    /// leg's visible depth cannot fill a clip.
    pub fn entry_edge_cbps(&self, ctx: &Ctx<'_>) -> Option<(i64, Px)> {
        let perp = Self::walk(ctx, self.perp, Side::Sell, self.perp_qty)?;
        let spot = Self::walk(ctx, self.spot, Side::Buy, self.spot_qty)?;
        let edge = self.walked_basis_cbps(perp, spot) - self.fees_cbps + self.expected_funding_cbps(ctx);
        Some((edge, perp.2))
    }
}

impl BasisStrategy {
    /// One of this strategy's orders is done: one fewer working, and any unhedged rest is
    /// flattened now if nothing else is working.
    fn leg_ended(&mut self, tag: u32, ctx: &mut Ctx<'_>) {
        self.working = self.working.saturating_sub(1);
        if tag == TAG_SPOT_REPAIR || tag == TAG_PERP_REPAIR {
            self.repairing = false;
        }
        self.maybe_repair(ctx);
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
        let (s, p) = (ctx.books.get(self.spot), ctx.books.get(self.perp));
        if !s.whole || !p.whole || !s.has_two_sides() || !p.has_two_sides() {
            return;
        }
        if self.maybe_repair(ctx) || self.spot_pos + self.perp_pos != 0 {
            return;
        }
        if self.working > 0 || ctx.now_ns < self.next_action_ns {
            return;
        }
        let clips = (self.spot_pos / self.clip_units().max(1)).max(0);
        // A short perpetual paying funding is not entered, and held ones unwind.
        let funding_against = self.exit_on_negative_funding && p.funding_rate.0 < 0;
        if clips < i64::from(self.max_clips)
            && !ctx.halted
            && !funding_against
            && let Some((edge, perp_px)) = self.entry_edge_cbps(ctx)
        {
            self.last_edge_cbps = edge;
            if edge >= self.entry_cbps {
                let pq = self.perp_qty;
                self.submit(ctx, ioc(self.perp, Side::Sell, pq, perp_px, false, TAG_PERP_THEN_HEDGE));
                self.entries += 1;
                self.next_action_ns = ctx.now_ns + self.cooldown_ns;
                return;
            }
        }
        let exit_basis = self.basis_cbps(p.quote.ask_px, s.quote.bid_px);
        if clips > 0 && (exit_basis <= self.exit_cbps || funding_against) {
            let (pq, pa) = (self.perp_qty, p.quote.ask_px);
            self.submit(ctx, ioc(self.perp, Side::Buy, pq, pa, true, TAG_PERP_THEN_HEDGE));
            self.exits += 1;
            self.next_action_ns = ctx.now_ns + self.cooldown_ns;
        }
    }

    fn on_order(&mut self, ev: &OrderEvent, tag: u32, ctx: &mut Ctx<'_>) {
        match ev.kind {
            OrderEventKind::Filled(f) => {
                let spot_leg = tag == TAG_SPOT || tag == TAG_SPOT_REPAIR;
                let unit = if spot_leg { self.spot_unit } else { self.perp_unit };
                let units = f.qty.0 * unit * ev.side.sign();
                if spot_leg {
                    self.spot_pos += units;
                } else {
                    self.perp_pos += units;
                }
                if tag == TAG_PERP_THEN_HEDGE {
                    self.hedge(ctx, units, ev.side == Side::Buy);
                }
                self.track_unhedged(ctx.now_ns);
                if f.leaves_qty.0 == 0 {
                    self.leg_ended(tag, ctx);
                }
            }
            OrderEventKind::Cancelled | OrderEventKind::Expired | OrderEventKind::Rejected(_) => {
                self.leg_ended(tag, ctx);
            }
            OrderEventKind::Accepted => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        self.maybe_repair(ctx);
    }

    fn on_refused(&mut self, intent: &Intent, _reason: Refusal, _ctx: &mut Ctx<'_>) {
        self.working = self.working.saturating_sub(1);
        if intent.tag == TAG_SPOT_REPAIR || intent.tag == TAG_PERP_REPAIR {
            self.repairing = false;
        }
        self.refused += 1;
    }
}
