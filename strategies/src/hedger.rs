//! The delta-neutral hedger: keeps a portfolio's net delta per underlying inside a band by
//! trading a perpetual.
//!
//! Net delta (units of the underlying) = the hedger's own spot and perpetual positions (times
//! contract size) + configured option positions (Black-Scholes delta from a configured or
//! implied volatility) + configured Uniswap V2 LP positions (the base the position holds, from
//! the pool's reserves: pending-adjusted when the DEX feed has pending swaps and `pending` is
//! on, so the hedge anticipates where the pool will be one block from now). Options and LP
//! positions are configured holdings, not traded here.
//!
//! When |net| leaves the band, one IOC order on the perpetual takes it back to zero (clipped to
//! `max_clip`, rounded to the lot); nothing else is sent until that order is done. The band is
//! fixed, or Whalley–Wilmott: `H = (3·c·S·Γ² / (2·λ))^(1/3)`, with `c` the perpetual's taker fee,
//! `S` the price, `Γ` the portfolio gamma and `λ` the risk aversion, floored at `band`.
//! Model math is `f64`; every figure that leaves the model (delta, band, quantities) is
//! converted explicitly to `Decimal`, rounded to 8 places.

use crossbar_engine::event::{MarketBody, MarketEvent, OrderEvent, OrderEventKind, Side, TimeInForce};
use crossbar_engine::fixed::{Px, Qty};
use crossbar_engine::instrument::{InstrumentId, InstrumentKind, Registry};
use crossbar_engine::pool::whole;
use crossbar_engine::risk::Refusal;
use crossbar_engine::strategy::{Ctx, Intent, Strategy};
use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use serde::Deserialize;

use crate::StrategyError;
use crate::basis::LegRef;
use crate::models::amm::LpPosition;
use crate::models::black_scholes::{OptionInputs, OptionKind, greeks, implied_vol};

/// How the band is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BandKind {
    /// `band` units of the underlying.
    #[default]
    Fixed,
    /// Whalley–Wilmott width from gamma and the taker fee, at least `band`.
    WhalleyWilmott,
}

/// `kind = "call"` or `"put"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptionSide {
    /// A call.
    Call,
    /// A put.
    Put,
}

/// A configured European option position on the underlying.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionConfig {
    /// Call or put.
    pub kind: OptionSide,
    /// Strike, quote per base.
    #[serde(with = "rust_decimal::serde::str")]
    pub strike: Decimal,
    /// Days to expiry at start (calendar days of 365 per year).
    pub expiry_days: f64,
    /// Units of underlying (negative: short).
    #[serde(with = "rust_decimal::serde::str")]
    pub qty: Decimal,
    /// Volatility; when absent, implied from `price` at the first valuation.
    #[serde(default)]
    pub vol: Option<f64>,
    /// Option price per unit, to imply the volatility from.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub price: Option<Decimal>,
}

/// A configured Uniswap V2 LP position.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LpConfig {
    /// The pool instrument (venue `ethereum`).
    pub pool: LegRef,
    /// Fraction of the pool's liquidity owned (LP tokens / total supply).
    pub share: f64,
    /// Use the pending-adjusted reserves (default) rather than the last block's.
    #[serde(default = "yes")]
    pub pending: bool,
}

fn yes() -> bool {
    true
}

/// `kind = "hedger"` config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HedgerConfig {
    /// Registered name.
    pub name: String,
    /// The underlying (`ETH`): instruments whose base it is count towards its delta.
    pub underlying: String,
    /// The perpetual that hedges.
    pub hedge: LegRef,
    /// Fixed band, or the Whalley–Wilmott width's floor, in units of the underlying.
    #[serde(with = "rust_decimal::serde::str")]
    pub band: Decimal,
    /// `fixed` or `whalley-wilmott`.
    #[serde(default)]
    pub band_kind: BandKind,
    /// Risk aversion λ of the Whalley–Wilmott band.
    #[serde(default = "one")]
    pub risk_aversion: f64,
    /// Risk-free rate for option valuation, continuously compounded.
    #[serde(default)]
    pub rate: f64,
    /// Largest hedge order, units of the underlying.
    #[serde(with = "rust_decimal::serde::str")]
    pub max_clip: Decimal,
    /// Limit price offset beyond the touch for the IOC hedge, bps.
    #[serde(default = "ten", with = "rust_decimal::serde::str")]
    pub slippage_bps: Decimal,
    /// Options held.
    #[serde(default)]
    pub options: Vec<OptionConfig>,
    /// LP positions held.
    #[serde(default)]
    pub lp: Vec<LpConfig>,
}

fn one() -> f64 {
    1.0
}

fn ten() -> Decimal {
    Decimal::TEN
}

/// Portfolio greeks of one underlying (options and LP; delta includes the positions).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PortfolioGreeks {
    /// Net delta, units of underlying.
    pub delta: Decimal,
    /// Gamma, units of underlying per unit price.
    pub gamma: f64,
    /// Theta, quote per year.
    pub theta: f64,
    /// Vega, quote per 1.00 of volatility.
    pub vega: f64,
}

#[derive(Clone, Copy, Debug)]
struct OptionPos {
    kind: OptionKind,
    strike: f64,
    t_years: f64,
    qty: f64,
    vol: Option<f64>,
    price: Option<f64>,
}

#[derive(Clone, Copy, Debug)]
struct LpPos {
    pool: InstrumentId,
    share: f64,
    pending: bool,
}

/// The hedger; see the [module documentation](self).
#[derive(Debug)]
pub struct HedgerStrategy {
    name: String,
    /// The underlying it hedges.
    pub underlying: String,
    perp: InstrumentId,
    lot: Decimal,
    qty_scale: crossbar_engine::fixed::Scale,
    price_scale: crossbar_engine::fixed::Scale,
    tick: i64,
    contract_size: Decimal,
    taker_fee: f64,
    exposures: Vec<(InstrumentId, Decimal)>,
    options: Vec<OptionPos>,
    lps: Vec<LpPos>,
    band_floor: Decimal,
    band_kind: BandKind,
    risk_aversion: f64,
    rate: f64,
    max_clip: Decimal,
    slippage: Decimal,
    start_ns: Option<u64>,
    in_flight: bool,
    hedging: bool,
    retry_at_ns: u64,
    /// Latest greeks.
    pub greeks: PortfolioGreeks,
    /// Latest band, units of underlying.
    pub band: Decimal,
    /// Largest |net delta| measured when a hedge completed. A hedge is the IOC orders sent from
    /// the moment |net| leaves the band until it is back inside: a partial fill (the touch was
    /// thinner than the clip) or an unfilled IOC is followed at once by the next order.
    pub max_abs_after_hedge: Decimal,
    /// Hedges completed.
    pub hedges: u64,
    /// Hedge orders sent.
    pub hedge_orders: u64,
    /// Hedge intents refused by risk.
    pub refused: u64,
    /// Valuations skipped for want of a price or pool state.
    pub skipped: u64,
}

/// How long the hedger waits after risk refused a hedge before trying again.
const REFUSED_BACKOFF_NS: u64 = 50_000_000;

fn dec(x: f64) -> Decimal {
    Decimal::from_f64(x).map_or(Decimal::ZERO, |d| d.round_dp(8))
}

impl HedgerStrategy {
    /// Resolves the instruments and checks the parameters.
    ///
    /// # Errors
    /// [`StrategyError`] for an unknown instrument, a hedge that is not a perpetual, a pool
    /// that is not a pool, or a parameter out of range.
    pub fn new(cfg: &HedgerConfig, registry: &Registry) -> Result<Self, StrategyError> {
        let invalid = |reason: String| StrategyError::Invalid { strategy: cfg.name.clone(), reason };
        let find = |leg: &LegRef| {
            registry.venue_id(&leg.venue).and_then(|v| registry.find(v, &leg.symbol)).ok_or_else(|| {
                StrategyError::UnknownInstrument {
                    strategy: cfg.name.clone(),
                    venue: leg.venue.clone(),
                    symbol: leg.symbol.clone(),
                }
            })
        };
        let perp = find(&cfg.hedge)?;
        if perp.kind != InstrumentKind::Perpetual || !perp.base.eq_ignore_ascii_case(&cfg.underlying) {
            return Err(invalid(format!("hedge must be a perpetual on {}", cfg.underlying)));
        }
        if cfg.band <= Decimal::ZERO || cfg.max_clip <= Decimal::ZERO || cfg.slippage_bps < Decimal::ZERO {
            return Err(invalid("band and max_clip must be positive, slippage_bps not negative".into()));
        }
        if !(cfg.risk_aversion.is_finite() && cfg.risk_aversion > 0.0 && cfg.rate.is_finite()) {
            return Err(invalid("risk_aversion must be positive and rate finite".into()));
        }
        let exposures = registry
            .instruments()
            .iter()
            .filter(|i| {
                i.base.eq_ignore_ascii_case(&cfg.underlying)
                    && matches!(i.kind, InstrumentKind::Spot | InstrumentKind::Perpetual)
            })
            .map(|i| (i.id, i.contract_size))
            .collect();
        let mut options = Vec::with_capacity(cfg.options.len());
        for o in &cfg.options {
            let strike = o.strike.to_f64().filter(|s| *s > 0.0);
            let ok_vol = o.vol.is_none_or(|v| v.is_finite() && v > 0.0);
            let (Some(strike), true, true) = (strike, o.expiry_days.is_finite() && o.expiry_days >= 0.0, ok_vol) else {
                return Err(invalid("options need a positive strike and vol, and expiry_days >= 0".into()));
            };
            if o.vol.is_none() && o.price.is_none() {
                return Err(invalid("an option needs a vol or a price to imply it from".into()));
            }
            options.push(OptionPos {
                kind: if o.kind == OptionSide::Call { OptionKind::Call } else { OptionKind::Put },
                strike,
                t_years: o.expiry_days / 365.0,
                qty: o.qty.to_f64().unwrap_or(0.0),
                vol: o.vol,
                price: o.price.and_then(|p| p.to_f64()),
            });
        }
        let mut lps = Vec::with_capacity(cfg.lp.len());
        for l in &cfg.lp {
            let pool = find(&l.pool)?;
            if pool.kind != InstrumentKind::Pool || !pool.base.eq_ignore_ascii_case(&cfg.underlying) {
                return Err(invalid(format!("lp pool {} must be a pool on {}", l.pool.symbol, cfg.underlying)));
            }
            if !(l.share.is_finite() && l.share > 0.0 && l.share <= 1.0) {
                return Err(invalid("lp share must be in (0, 1]".into()));
            }
            lps.push(LpPos { pool: pool.id, share: l.share, pending: l.pending });
        }
        Ok(Self {
            name: cfg.name.clone(),
            underlying: cfg.underlying.clone(),
            perp: perp.id,
            lot: perp.qty(perp.lot) * perp.contract_size,
            qty_scale: perp.qty_scale,
            price_scale: perp.price_scale,
            tick: perp.tick.0,
            contract_size: perp.contract_size,
            taker_fee: perp.taker_fee.to_f64().unwrap_or(0.0),
            exposures,
            options,
            lps,
            band_floor: cfg.band,
            band_kind: cfg.band_kind,
            risk_aversion: cfg.risk_aversion,
            rate: cfg.rate,
            max_clip: cfg.max_clip,
            slippage: cfg.slippage_bps / Decimal::from(10_000),
            start_ns: None,
            in_flight: false,
            hedging: false,
            retry_at_ns: 0,
            greeks: PortfolioGreeks::default(),
            band: cfg.band,
            max_abs_after_hedge: Decimal::ZERO,
            hedges: 0,
            hedge_orders: 0,
            refused: 0,
            skipped: 0,
        })
    }

    /// The underlying's price: the hedge perpetual's mid.
    fn spot(&self, ctx: &Ctx<'_>) -> Option<Decimal> {
        let mid = ctx.books.get(self.perp).mid()?;
        Some(ctx.registry.get(self.perp).px(mid))
    }

    /// Values the portfolio at the current price: net delta (positions + options + LP),
    /// gamma, theta and vega; updates the band. `None` without a price or a pool state.
    pub fn value(&mut self, ctx: &Ctx<'_>) -> Option<PortfolioGreeks> {
        let s = self.spot(ctx)?;
        let s_f = s.to_f64()?;
        let start = *self.start_ns.get_or_insert(ctx.now_ns);
        let elapsed_years = ctx.now_ns.saturating_sub(start) as f64 / (365.0 * 86_400.0 * 1e9);
        let mut g = PortfolioGreeks::default();
        for (id, size) in &self.exposures {
            g.delta += ctx.portfolio.get_for(ctx.strategy(), *id).qty * *size;
        }
        let (mut model_delta, mut gamma, mut theta, mut vega) = (0.0, 0.0, 0.0, 0.0);
        for o in &mut self.options {
            let mut inputs = OptionInputs {
                kind: o.kind,
                spot: s_f,
                strike: o.strike,
                rate: self.rate,
                vol: o.vol.unwrap_or(0.0),
                t: (o.t_years - elapsed_years).max(0.0),
            };
            if o.vol.is_none() {
                // Implied once, at the first valuation, from the configured price.
                o.vol = Some(o.price.and_then(|p| implied_vol(&inputs, p)).unwrap_or(0.0));
                inputs.vol = o.vol.unwrap_or(0.0);
            }
            let og = greeks(&inputs);
            model_delta += o.qty * og.delta;
            gamma += o.qty * og.gamma;
            theta += o.qty * og.theta;
            vega += o.qty * og.vega;
        }
        for l in &self.lps {
            let view = ctx.pool(l.pool)?;
            let r = if l.pending { view.pending? } else { view.confirmed? };
            let base = whole(r.base, view.spec.base_decimals)?.to_f64()?;
            let quote = whole(r.quote, view.spec.quote_decimals)?.to_f64()?;
            let lp = LpPosition { base_reserve: base, quote_reserve: quote, share: l.share };
            model_delta += lp.delta();
            gamma += lp.gamma_at(lp.price());
        }
        g.delta += dec(model_delta);
        g.gamma = gamma;
        g.theta = theta;
        g.vega = vega;
        self.band = match self.band_kind {
            BandKind::Fixed => self.band_floor,
            BandKind::WhalleyWilmott => {
                let h = (3.0 * self.taker_fee * s_f * gamma * gamma / (2.0 * self.risk_aversion)).cbrt();
                self.band_floor.max(dec(h))
            }
        };
        self.greeks = g;
        Some(g)
    }

    /// Values the portfolio and, when |net delta| is outside the band and no hedge is in
    /// flight, submits one IOC perpetual order back towards zero.
    fn rebalance(&mut self, ctx: &mut Ctx<'_>) {
        if self.in_flight || ctx.now_ns < self.retry_at_ns {
            return;
        }
        let Some(g) = self.value(ctx) else {
            self.skipped += 1;
            return;
        };
        if g.delta.abs() <= self.band {
            if self.hedging {
                self.hedging = false;
                self.hedges += 1;
                self.max_abs_after_hedge = self.max_abs_after_hedge.max(g.delta.abs());
            }
            return;
        }
        if ctx.halted {
            return;
        }
        self.hedging = true;
        let side = if g.delta > Decimal::ZERO { Side::Sell } else { Side::Buy };
        let q = ctx.books.get(self.perp).quote;
        let (touch, touch_qty) = if side == Side::Buy { (q.ask_px, q.ask_qty) } else { (q.bid_px, q.bid_qty) };
        if touch.0 <= 0 || touch_qty.0 <= 0 {
            return;
        }
        let inst = ctx.registry.get(self.perp);
        // No more than the touch shows (in underlying units), the clip, or the delta itself;
        // rounded to the nearest lot (the residual is at most half a lot).
        let shown = inst.qty(touch_qty) * self.contract_size;
        let want = g.delta.abs().min(self.max_clip).min(shown);
        let lots = (want / self.lot).round();
        let contracts = lots * self.lot / self.contract_size;
        let Ok(qty) = Qty::from_decimal(contracts, self.qty_scale) else { return };
        if qty.0 <= 0 {
            return;
        }
        let touch = inst.px(touch);
        let limit = if side == Side::Buy {
            touch * (Decimal::ONE + self.slippage)
        } else {
            touch * (Decimal::ONE - self.slippage)
        };
        let Ok(mut px) = Px::from_decimal(limit.round_dp(u32::from(self.price_scale.places())), self.price_scale)
        else {
            return;
        };
        // Onto the tick grid, on the passive side of the limit.
        let rem = px.0.rem_euclid(self.tick);
        px.0 = if side == Side::Buy {
            px.0 - rem
        } else if rem == 0 {
            px.0
        } else {
            px.0 + self.tick - rem
        };
        let intent = Intent {
            instrument: self.perp,
            side,
            qty,
            limit_px: px,
            tif: TimeInForce::Ioc,
            reduce_only: false,
            tag: 0,
        };
        if ctx.submit(intent) {
            self.in_flight = true;
            self.hedge_orders += 1;
        }
    }
}

impl Strategy for HedgerStrategy {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_market(&mut self, ev: &MarketEvent, ctx: &mut Ctx<'_>) {
        let relevant = ev.instrument == self.perp && matches!(ev.body, MarketBody::Quote(_))
            || matches!(ev.body, MarketBody::PoolState(_) | MarketBody::PendingSwap(_))
                && self.lps.iter().any(|l| l.pool == ev.instrument);
        if relevant {
            self.rebalance(ctx);
        }
    }

    fn on_order(&mut self, ev: &OrderEvent, _tag: u32, ctx: &mut Ctx<'_>) {
        let done = match ev.kind {
            OrderEventKind::Filled(f) => f.leaves_qty.0 == 0,
            OrderEventKind::Accepted => false,
            OrderEventKind::Cancelled | OrderEventKind::Expired | OrderEventKind::Rejected(_) => true,
        };
        if done && self.in_flight {
            self.in_flight = false;
            // The fill is in the positions already: finish the hedge, or continue it.
            self.rebalance(ctx);
        }
    }

    fn on_refused(&mut self, _intent: &Intent, _reason: Refusal, ctx: &mut Ctx<'_>) {
        self.refused += 1;
        self.in_flight = false;
        self.hedge_orders -= 1;
        self.retry_at_ns = ctx.now_ns.saturating_add(REFUSED_BACKOFF_NS);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        self.rebalance(ctx);
    }
}
