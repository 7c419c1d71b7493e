//! The market model: one seeded stochastic process drives every simulated venue.
//!
//! Per underlying, a *true price* follows a geometric random walk whose volatility is itself
//! random (log-volatility mean-reverts with a half-life of about 40 simulated minutes) plus
//! Poisson jumps. Per instrument, a fair mid sits around it: spot at `true × (1 + noise)` with a
//! small venue noise, perpetuals at `true × (1 + basis)` with a mean-reverting basis
//! (Ornstein-Uhlenbeck in bps). Each step the book is requoted around the fair mid (spread of a
//! few ticks, random integer sizes), a few resting sizes change and random aggressor trades
//! take from the best levels. Perpetuals accrue Binance-style funding from their premium and
//! settle it every funding interval of simulated time.
//!
//! Price dynamics run in *simulated* time (`time_scale` × real time); trade and book-update
//! rates are per *real* second, so the message rate does not explode with the time scale.
//! The model never reads a clock: the server calls [`Market::step`] as real time passes, and the
//! same config, registry and seed give the same states step after step. `f64` is used for the
//! processes only; every quoted price is rounded to a tick explicitly.

use crossbar_engine::instrument::{InstrumentId, InstrumentKind, Registry};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::book::{BookSnapshot, DepthDiff, Level, Side, SimBook};
use super::{SimConfig, SimError};

/// Simulated time of step 0: 2026-01-01T00:00:00Z, in ms since the Unix epoch.
pub const SIM_EPOCH_MS: i64 = 1_767_225_600_000;

const YEAR_S: f64 = 365.0 * 86_400.0;
/// Mean reversion of log-volatility, per simulated second (about once an hour).
const LOG_VOL_REVERSION: f64 = 1.0 / 3_600.0;
/// Mean reversion of the spot venue noise, per simulated second (about once a minute).
const NOISE_REVERSION: f64 = 1.0 / 60.0;
/// Chance that a price behind the best is left without a level.
const GAP_PROBABILITY: f64 = 0.15;
/// How often an instrument's spread is redrawn, per real second.
const SPREAD_CHANGES_PER_S: f64 = 5.0;
/// Binance's interest-rate component per 8 h, and the clamp around it.
const FUNDING_INTEREST_8H: f64 = 0.0001;
const FUNDING_CLAMP: f64 = 0.0005;
/// First update id of every book.
const FIRST_UPDATE_ID: u64 = 1_000;

/// Something a venue publishes, produced by one model step. Prices and quantities are
/// mantissas at the instrument's scales; rates and index prices carry 8 decimals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimEvent {
    /// The best bid or ask (price or size) changed.
    BookTicker {
        /// The instrument.
        instrument: InstrumentId,
        /// Book update id after the change.
        update_id: u64,
        /// Simulated time, ms.
        time_ms: i64,
        /// Best bid.
        bid: Level,
        /// Best ask.
        ask: Level,
    },
    /// The book changes since the previous diff of this instrument.
    Depth {
        /// The instrument.
        instrument: InstrumentId,
        /// Simulated time, ms.
        time_ms: i64,
        /// The changed levels and the update ids they cover.
        diff: DepthDiff,
    },
    /// An aggressor order took liquidity at the best level.
    Trade {
        /// The instrument.
        instrument: InstrumentId,
        /// Simulated time, ms.
        time_ms: i64,
        /// Aggregate trade id.
        agg_id: u64,
        /// Price mantissa.
        px: i64,
        /// Quantity mantissa.
        qty: i64,
        /// First trade id in the aggregate.
        first_trade_id: u64,
        /// Last trade id in the aggregate.
        last_trade_id: u64,
        /// True when the buyer rested, i.e. the aggressor sold.
        buyer_maker: bool,
    },
    /// Mark price, index and estimated funding of a perpetual (about once a real second).
    Mark {
        /// The instrument.
        instrument: InstrumentId,
        /// Simulated time, ms.
        time_ms: i64,
        /// Mark price mantissa at the price scale (the fair mid on the tick grid).
        mark_px: i64,
        /// Index (the true price) with 8 decimals.
        index_e8: i64,
        /// Funding rate that would settle now, 8 decimals.
        funding_rate_e8: i64,
        /// Simulated time of the next settlement, ms.
        next_funding_ms: i64,
    },
    /// A perpetual's funding settled (not on any public stream; for accounts and tests).
    FundingSettled {
        /// The instrument.
        instrument: InstrumentId,
        /// Simulated time of the settlement, ms.
        time_ms: i64,
        /// The settled rate, 8 decimals.
        rate_e8: i64,
    },
}

impl SimEvent {
    /// The instrument the event is about.
    pub fn instrument(&self) -> InstrumentId {
        match self {
            Self::BookTicker { instrument, .. }
            | Self::Depth { instrument, .. }
            | Self::Trade { instrument, .. }
            | Self::Mark { instrument, .. }
            | Self::FundingSettled { instrument, .. } => *instrument,
        }
    }
}

/// Everything that makes up the model's state, comparable across runs.
#[derive(Clone, Debug, PartialEq)]
pub struct MarketState {
    /// Simulated time, ms.
    pub time_ms: i64,
    /// True price per underlying, in config order.
    pub true_prices: Vec<f64>,
    /// Every instrument's book, in registry order.
    pub books: Vec<SimBook>,
}

/// One underlying's true price process.
struct Underlying {
    name: String,
    log_price: f64,
    vol: f64,
    vol_of_vol: f64,
    log_vol_dev: f64,
    jumps_per_s: f64,
    jump_sigma: f64,
    rng: SmallRng,
}

/// A perpetual's funding accrual.
struct Funding {
    interval_ms: i64,
    next_ms: i64,
    interest: f64,
    cap: f64,
    premium_seconds: f64,
    seconds: f64,
}

impl Funding {
    /// Binance's formula: average premium + clamp(interest − premium, ±0.05 %), within the cap.
    fn rate(&self) -> f64 {
        let avg = if self.seconds > 0.0 { self.premium_seconds / self.seconds } else { 0.0 };
        let rate = avg + (self.interest - avg).clamp(-FUNDING_CLAMP, FUNDING_CLAMP);
        rate.clamp(-self.cap, self.cap)
    }
}

/// An OU process in bps: the spot venue noise or the perpetual basis.
#[derive(Clone, Copy)]
struct Offset {
    bps: f64,
    mean: f64,
    sd: f64,
    reversion: f64,
}

/// One instrument's quoting state.
struct Quoter {
    id: InstrumentId,
    underlying: usize,
    tick: i64,
    lot: i64,
    ticks_per_unit: f64,
    level_lots: f64,
    offset: Offset,
    fair: f64,
    spread_ticks: i64,
    book: SimBook,
    rng: SmallRng,
    last_ticker: Option<(Level, Level)>,
    agg_id: u64,
    trade_id: u64,
    funding: Option<Funding>,
}

/// The whole simulated market: underlyings, and one book per registry instrument.
pub struct Market {
    step_s: f64,
    step_sim_ms: f64,
    steps: u64,
    time_ms: i64,
    depth_every: u64,
    mark_every: u64,
    depth_levels: usize,
    trades_per_step: f64,
    updates_per_step: f64,
    spread_change_p: f64,
    max_spread_ticks: i64,
    underlyings: Vec<Underlying>,
    quoters: Vec<Quoter>,
}

impl Market {
    /// Builds the model at step 0 with every book filled around its start price.
    ///
    /// # Errors
    /// [`SimError::Config`] for an invalid config, [`SimError::Instrument`] for an instrument
    /// whose base has no underlying or whose kind the simulator does not quote.
    pub fn new(cfg: &SimConfig, registry: &Registry) -> Result<Self, SimError> {
        cfg.validate()?;
        let real_step_s = cfg.step_ms as f64 / 1_000.0;
        let underlyings = cfg
            .underlyings
            .iter()
            .enumerate()
            .map(|(i, u)| Underlying {
                name: u.name.clone(),
                log_price: u.start_price().ln(),
                vol: u.vol,
                vol_of_vol: u.vol_of_vol,
                log_vol_dev: 0.0,
                jumps_per_s: u.jump_intensity / 86_400.0,
                jump_sigma: u.jump_sigma,
                rng: SmallRng::seed_from_u64(mix(cfg.seed, 1, i as u64)),
            })
            .collect::<Vec<_>>();
        let mut quoters = Vec::with_capacity(registry.len());
        for inst in registry.instruments() {
            let bad = |reason: String| SimError::Instrument {
                venue: registry.venue_name(inst.venue).to_owned(),
                symbol: inst.symbol.clone(),
                reason,
            };
            let ui = cfg
                .underlyings
                .iter()
                .position(|u| u.name.eq_ignore_ascii_case(&inst.base))
                .ok_or_else(|| bad(format!("no underlying named {:?} in the simulator config", inst.base)))?;
            let u = &cfg.underlyings[ui];
            let price_unit = 10f64.powi(i32::from(inst.price_scale.places()));
            let qty_unit = 10f64.powi(i32::from(inst.qty_scale.places()));
            let (offset, funding) = match inst.kind {
                InstrumentKind::Spot => {
                    (Offset { bps: 0.0, mean: 0.0, sd: cfg.venue_noise_bps, reversion: NOISE_REVERSION }, None)
                }
                InstrumentKind::Perpetual => {
                    let interval_ms = i64::from(u.funding_interval_h) * 3_600_000;
                    let funding = Funding {
                        interval_ms,
                        next_ms: SIM_EPOCH_MS + interval_ms,
                        interest: FUNDING_INTEREST_8H * f64::from(u.funding_interval_h) / 8.0,
                        cap: u.funding_cap,
                        premium_seconds: 0.0,
                        seconds: 0.0,
                    };
                    let offset = Offset {
                        bps: u.basis_mean_bps,
                        mean: u.basis_mean_bps,
                        sd: u.basis_vol_bps,
                        reversion: u.basis_reversion / 3_600.0,
                    };
                    (offset, Some(funding))
                }
                InstrumentKind::Option => return Err(bad("options are not simulated".into())),
                InstrumentKind::Pool => return Err(bad("pools live on the Ethereum endpoint, not a venue".into())),
            };
            let lot_value = inst.lot.0 as f64 / qty_unit;
            let mut rng = SmallRng::seed_from_u64(mix(cfg.seed, 2, u64::from(inst.id.0)));
            let spread_ticks = rng.random_range(1..=i64::from(cfg.max_spread_ticks));
            quoters.push(Quoter {
                id: inst.id,
                underlying: ui,
                tick: inst.tick.0,
                lot: inst.lot.0,
                ticks_per_unit: price_unit / inst.tick.0 as f64,
                level_lots: (cfg.level_notional / u.start_price() / lot_value).max(1.0),
                offset,
                fair: 0.0,
                spread_ticks,
                book: SimBook::new(FIRST_UPDATE_ID),
                rng,
                last_ticker: None,
                agg_id: 0,
                trade_id: 0,
                funding,
            });
        }
        let mut market = Self {
            step_s: real_step_s * cfg.time_scale,
            step_sim_ms: cfg.step_ms as f64 * cfg.time_scale,
            steps: 0,
            time_ms: SIM_EPOCH_MS,
            depth_every: (cfg.depth_interval_ms / cfg.step_ms).max(1),
            mark_every: (1_000 / cfg.step_ms).max(1),
            depth_levels: cfg.depth_levels,
            trades_per_step: cfg.trades_per_s * real_step_s,
            updates_per_step: cfg.book_updates_per_s * real_step_s,
            spread_change_p: (SPREAD_CHANGES_PER_S * real_step_s).min(1.0),
            max_spread_ticks: i64::from(cfg.max_spread_ticks),
            underlyings,
            quoters,
        };
        for q in &mut market.quoters {
            let true_price = market.underlyings[q.underlying].log_price.exp();
            q.requote(true_price, market.depth_levels);
            q.book.take_diff();
        }
        Ok(market)
    }

    /// Advances the model by one step and appends what the venues publish to `out`.
    pub fn step(&mut self, out: &mut Vec<SimEvent>) {
        self.steps += 1;
        self.time_ms = SIM_EPOCH_MS + (self.steps as f64 * self.step_sim_ms).round() as i64;
        let dt = self.step_s;
        for u in &mut self.underlyings {
            u.advance(dt);
        }
        let time_ms = self.time_ms;
        for q in &mut self.quoters {
            let true_price = self.underlyings[q.underlying].log_price.exp();
            q.offset.advance(dt, &mut q.rng);
            if q.rng.random_bool(self.spread_change_p) {
                q.spread_ticks = q.rng.random_range(1..=self.max_spread_ticks);
            }
            q.requote(true_price, self.depth_levels);
            q.change_sizes(self.updates_per_step);
            q.trade(self.trades_per_step, time_ms, out);
            q.publish_ticker(time_ms, out);
            q.accrue_funding(dt, time_ms, out);
        }
        if self.steps.is_multiple_of(self.depth_every) {
            for q in &mut self.quoters {
                if let Some(diff) = q.book.take_diff() {
                    out.push(SimEvent::Depth { instrument: q.id, time_ms, diff });
                }
            }
        }
        if self.steps.is_multiple_of(self.mark_every) {
            for q in &self.quoters {
                if let Some(f) = &q.funding {
                    let true_price = self.underlyings[q.underlying].log_price.exp();
                    out.push(SimEvent::Mark {
                        instrument: q.id,
                        time_ms,
                        mark_px: (q.fair * q.ticks_per_unit).round() as i64 * q.tick,
                        index_e8: (true_price * 1e8).round() as i64,
                        funding_rate_e8: (f.rate() * 1e8).round() as i64,
                        next_funding_ms: f.next_ms,
                    });
                }
            }
        }
    }

    /// Appends a diff of every book that changed since its last one, without stepping: what a
    /// paused simulator publishes so its clients catch up with its books exactly.
    pub fn flush_depth(&mut self, out: &mut Vec<SimEvent>) {
        let time_ms = self.time_ms;
        for q in &mut self.quoters {
            if let Some(diff) = q.book.take_diff() {
                out.push(SimEvent::Depth { instrument: q.id, time_ms, diff });
            }
        }
    }

    /// Number of steps taken since start.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Current simulated time, ms since the Unix epoch.
    pub fn time_ms(&self) -> i64 {
        self.time_ms
    }

    /// The true price of an underlying by name (its base asset).
    pub fn true_price(&self, underlying: &str) -> Option<f64> {
        self.underlyings.iter().find(|u| u.name.eq_ignore_ascii_case(underlying)).map(|u| u.log_price.exp())
    }

    /// An instrument's book.
    pub fn book(&self, id: InstrumentId) -> Option<&SimBook> {
        self.quoters.get(id.index()).map(|q| &q.book)
    }

    /// An instrument's book, mutable: the exchange takes liquidity from it when orders trade,
    /// so the public depth stream shows their impact.
    pub fn book_mut(&mut self, id: InstrumentId) -> Option<&mut SimBook> {
        self.quoters.get_mut(id.index()).map(|q| &mut q.book)
    }

    /// A snapshot of an instrument's book (best `limit` levels per side), as the REST depth
    /// endpoint serves it; see [`SimBook::snapshot`].
    pub fn snapshot(&mut self, id: InstrumentId, limit: usize) -> Option<BookSnapshot> {
        self.quoters.get_mut(id.index()).map(|q| q.book.snapshot(limit))
    }

    /// Simulated time of a perpetual's next funding settlement, ms.
    pub fn next_funding_ms(&self, id: InstrumentId) -> Option<i64> {
        self.quoters.get(id.index())?.funding.as_ref().map(|f| f.next_ms)
    }

    /// A copy of the whole state, to compare runs.
    pub fn state(&self) -> MarketState {
        MarketState {
            time_ms: self.time_ms,
            true_prices: self.underlyings.iter().map(|u| u.log_price.exp()).collect(),
            books: self.quoters.iter().map(|q| q.book.clone()).collect(),
        }
    }
}

impl Underlying {
    fn advance(&mut self, dt: f64) {
        let z = normal(&mut self.rng);
        self.log_vol_dev = ou(self.log_vol_dev, 0.0, self.vol_of_vol, LOG_VOL_REVERSION, dt, z);
        let sigma = self.vol * (self.log_vol_dev - self.vol_of_vol * self.vol_of_vol / 2.0).exp();
        let dt_years = dt / YEAR_S;
        let z = normal(&mut self.rng);
        self.log_price += -sigma * sigma / 2.0 * dt_years + sigma * dt_years.sqrt() * z;
        for _ in 0..poisson(&mut self.rng, self.jumps_per_s * dt) {
            let z = normal(&mut self.rng);
            self.log_price += self.jump_sigma * z - self.jump_sigma * self.jump_sigma / 2.0;
        }
    }
}

impl Offset {
    fn advance(&mut self, dt: f64, rng: &mut SmallRng) {
        let z = normal(rng);
        self.bps = ou(self.bps, self.mean, self.sd, self.reversion, dt, z);
    }
}

impl Quoter {
    /// Requotes the book around the fair mid for `true_price`.
    fn requote(&mut self, true_price: f64, depth: usize) {
        self.fair = true_price * (1.0 + self.offset.bps / 10_000.0);
        let fair_ticks = self.fair * self.ticks_per_unit;
        let bid_ticks = ((fair_ticks - self.spread_ticks as f64 / 2.0).floor() as i64).max(1);
        let ask_ticks = bid_ticks + self.spread_ticks;
        let (lot, level_lots) = (self.lot, self.level_lots);
        let rng = &mut self.rng;
        let mut size = |must_fill: bool| {
            if !must_fill && rng.random_bool(GAP_PROBABILITY) { 0 } else { lots(rng, level_lots) * lot }
        };
        self.book.requote(bid_ticks * self.tick, ask_ticks * self.tick, self.tick, depth, &mut size);
    }

    /// Changes the size of a few random resting levels.
    fn change_sizes(&mut self, rate: f64) {
        for _ in 0..poisson(&mut self.rng, rate) {
            let side = if self.rng.random_bool(0.5) { Side::Bid } else { Side::Ask };
            let n = self.book.levels(side).len();
            if n == 0 {
                continue;
            }
            let px = self.book.levels(side)[self.rng.random_range(0..n)].px;
            let qty = lots(&mut self.rng, self.level_lots) * self.lot;
            self.book.set(side, px, qty);
        }
    }

    /// Random aggressor trades against the best levels.
    fn trade(&mut self, rate: f64, time_ms: i64, out: &mut Vec<SimEvent>) {
        for _ in 0..poisson(&mut self.rng, rate) {
            let buy = self.rng.random_bool(0.5);
            let want = lots(&mut self.rng, self.level_lots * 0.3) * self.lot;
            let Some((px, qty)) = self.book.take(if buy { Side::Ask } else { Side::Bid }, want) else {
                continue;
            };
            let fills = self.rng.random_range(1..=3u64);
            self.agg_id += 1;
            out.push(SimEvent::Trade {
                instrument: self.id,
                time_ms,
                agg_id: self.agg_id,
                px,
                qty,
                first_trade_id: self.trade_id + 1,
                last_trade_id: self.trade_id + fills,
                buyer_maker: !buy,
            });
            self.trade_id += fills;
        }
    }

    /// Publishes the best bid and ask when they changed.
    fn publish_ticker(&mut self, time_ms: i64, out: &mut Vec<SimEvent>) {
        let (Some(bid), Some(ask)) = (self.book.best(Side::Bid), self.book.best(Side::Ask)) else {
            return;
        };
        if self.last_ticker != Some((bid, ask)) {
            self.last_ticker = Some((bid, ask));
            out.push(SimEvent::BookTicker { instrument: self.id, update_id: self.book.update_id(), time_ms, bid, ask });
        }
    }

    /// Accrues the premium of a perpetual and settles funding when its time has come.
    fn accrue_funding(&mut self, dt: f64, time_ms: i64, out: &mut Vec<SimEvent>) {
        let Some(f) = &mut self.funding else { return };
        f.premium_seconds += self.offset.bps / 10_000.0 * dt;
        f.seconds += dt;
        while time_ms >= f.next_ms {
            let rate_e8 = (f.rate() * 1e8).round() as i64;
            out.push(SimEvent::FundingSettled { instrument: self.id, time_ms, rate_e8 });
            f.premium_seconds = 0.0;
            f.seconds = 0.0;
            f.next_ms += f.interval_ms;
        }
    }
}

/// One exact step of an Ornstein-Uhlenbeck process with stationary standard deviation `sd`.
fn ou(x: f64, mean: f64, sd: f64, reversion: f64, dt: f64, z: f64) -> f64 {
    let decay = (-reversion * dt).exp();
    mean + (x - mean) * decay + sd * (1.0 - decay * decay).sqrt() * z
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut SmallRng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A Poisson draw with mean `lambda` (Knuth's product method; normal approximation above 30).
fn poisson(rng: &mut SmallRng, lambda: f64) -> u64 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda > 30.0 {
        return (lambda + lambda.sqrt() * normal(rng)).round().max(0.0) as u64;
    }
    let limit = (-lambda).exp();
    let mut k = 0;
    let mut p = rng.random::<f64>();
    while p > limit {
        k += 1;
        p *= rng.random::<f64>();
    }
    k
}

/// A random level size around `typical` lots: at least one lot.
fn lots(rng: &mut SmallRng, typical: f64) -> i64 {
    ((typical * rng.random_range(0.2..1.8)).round() as i64).max(1)
}

/// Seed of one entity's generator, so adding an instrument leaves the others' paths unchanged.
fn mix(seed: u64, kind: u64, index: u64) -> u64 {
    let mut z = seed ^ (kind << 56) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::tests::{config, registry};

    #[test]
    fn same_seed_same_states_and_events() {
        let (cfg, reg) = (config(), registry());
        let mut a = Market::new(&cfg, &reg).unwrap();
        let mut b = Market::new(&cfg, &reg).unwrap();
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        assert_eq!(a.state(), b.state());
        for _ in 0..500 {
            a.step(&mut ea);
            b.step(&mut eb);
            assert_eq!(a.state(), b.state());
        }
        assert_eq!(ea, eb);
        let mut other = cfg.clone();
        other.seed += 1;
        let mut c = Market::new(&other, &reg).unwrap();
        for _ in 0..500 {
            c.step(&mut Vec::new());
        }
        assert_ne!(a.state().true_prices, c.state().true_prices);
    }

    #[test]
    fn quotes_sit_on_the_tick_grid_and_never_cross() {
        let reg = registry();
        let mut m = Market::new(&config(), &reg).unwrap();
        let mut out = Vec::new();
        for _ in 0..2_000 {
            m.step(&mut out);
        }
        let mut tickers = 0;
        for ev in &out {
            if let SimEvent::BookTicker { instrument, bid, ask, .. } = ev {
                let inst = reg.get(*instrument);
                assert!(bid.px < ask.px);
                assert_eq!(bid.px % inst.tick.0, 0);
                assert_eq!(ask.px % inst.tick.0, 0);
                assert_eq!(bid.qty % inst.lot.0, 0);
                assert!(bid.qty > 0 && ask.qty > 0);
                tickers += 1;
            }
        }
        assert!(tickers > 100);
        for inst in reg.instruments() {
            let book = m.book(inst.id).unwrap();
            assert_eq!(book.levels(Side::Bid).len(), config().depth_levels);
            assert!(book.levels(Side::Ask).iter().all(|l| l.px % inst.tick.0 == 0 && l.qty % inst.lot.0 == 0));
        }
    }

    #[test]
    fn trades_and_diffs_are_produced_with_contiguous_ids() {
        let reg = registry();
        let mut m = Market::new(&config(), &reg).unwrap();
        let mut out = Vec::new();
        for _ in 0..3_000 {
            m.step(&mut out);
        }
        let mut last_u = vec![None::<u64>; reg.len()];
        let (mut trades, mut diffs) = (0, 0);
        for ev in &out {
            match ev {
                SimEvent::Depth { instrument, diff, .. } => {
                    if let Some(prev) = last_u[instrument.index()] {
                        assert_eq!(diff.first_update_id, prev + 1);
                        assert_eq!(diff.prev_last_update_id, prev);
                    }
                    last_u[instrument.index()] = Some(diff.last_update_id);
                    diffs += 1;
                }
                SimEvent::Trade { qty, first_trade_id, last_trade_id, .. } => {
                    assert!(*qty > 0 && first_trade_id <= last_trade_id);
                    trades += 1;
                }
                _ => {}
            }
        }
        assert!(trades > 50, "{trades} trades");
        assert!(diffs >= 2 * 30, "{diffs} diffs");
    }

    #[test]
    fn funding_settles_every_interval_and_moves_the_next_time() {
        let reg = registry();
        let mut cfg = config();
        cfg.time_scale = 8.0 * 3_600.0; // one 8 h interval per real second = 1000 steps
        let perp = reg.instruments().iter().find(|i| i.kind == InstrumentKind::Perpetual).unwrap().id;
        let mut m = Market::new(&cfg, &reg).unwrap();
        let interval = 8 * 3_600_000;
        assert_eq!(m.next_funding_ms(perp), Some(SIM_EPOCH_MS + interval));
        let mut out = Vec::new();
        for _ in 0..3_500 {
            m.step(&mut out);
        }
        let settled: Vec<i64> = out
            .iter()
            .filter_map(|e| match e {
                SimEvent::FundingSettled { instrument, time_ms, rate_e8 } if *instrument == perp => {
                    assert!(rate_e8.abs() <= (0.003 * 1e8) as i64);
                    Some(*time_ms)
                }
                _ => None,
            })
            .collect();
        assert_eq!(settled.len(), 3);
        for (k, t) in settled.iter().enumerate() {
            let due = SIM_EPOCH_MS + (k as i64 + 1) * interval;
            assert!(*t >= due && *t < due + cfg.time_scale as i64 * cfg.step_ms as i64);
        }
        assert_eq!(m.next_funding_ms(perp), Some(SIM_EPOCH_MS + 4 * interval));
        let marks: Vec<i64> = out
            .iter()
            .filter_map(|e| match e {
                SimEvent::Mark { instrument, next_funding_ms, .. } if *instrument == perp => Some(*next_funding_ms),
                _ => None,
            })
            .collect();
        assert_eq!(marks.len(), 3);
        assert!(marks.windows(2).all(|w| w[1] == w[0] + interval));
    }

    #[test]
    fn basis_wanders_around_its_mean() {
        let reg = registry();
        // 200 simulated hours: about 100 reversion times of the default 0.5 per hour.
        let cfg = SimConfig { time_scale: 36_000.0, ..config() };
        let mut m = Market::new(&cfg, &reg).unwrap();
        let mut out = Vec::new();
        let (mut sum, mut sum2, mut n) = (0.0, 0.0, 0.0);
        for _ in 0..20_000 {
            m.step(&mut out);
            out.clear();
            let q = m.quoters.iter().find(|q| q.funding.is_some()).unwrap();
            sum += q.offset.bps;
            sum2 += q.offset.bps * q.offset.bps;
            n += 1.0;
        }
        let mean = sum / n;
        let sd = (sum2 / n - mean * mean).sqrt();
        assert!((mean - 3.0).abs() < 5.0, "mean {mean}");
        assert!(sd > 6.0 && sd < 15.0, "sd {sd}");
    }

    #[test]
    fn poisson_mean_is_lambda() {
        let mut rng = SmallRng::seed_from_u64(7);
        for lambda in [0.05, 2.0, 50.0] {
            let n = 20_000;
            let total: u64 = (0..n).map(|_| poisson(&mut rng, lambda)).sum();
            let mean = total as f64 / f64::from(n);
            assert!((mean - lambda).abs() < 0.05 * lambda + 0.01, "{lambda}: {mean}");
        }
    }
}
