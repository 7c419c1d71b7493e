//! Positions and PnL, in exact decimals.
//!
//! Fills and funding settlements are rare next to ticks, so this is where fixed-point values
//! become [`Decimal`] money: average-cost positions, realized and unrealized PnL, fees and
//! funding, per instrument. Nothing here is `f64`.

use rust_decimal::Decimal;

use crate::book::{Books, FundingSettled};
use crate::event::{Fill, Side};
use crate::fixed::{RATE_SCALE, REFERENCE_SCALE};
use crate::instrument::{InstrumentId, InstrumentKind, Registry};
use crate::strategy::StrategyId;

/// One instrument's position and PnL. Quantities are in contracts (base units for spot).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Signed quantity: positive long, negative short.
    pub qty: Decimal,
    /// Average entry price of the open quantity.
    pub avg_px: Decimal,
    /// PnL realized by closing quantity, before fees and funding.
    pub realized: Decimal,
    /// Fees paid (positive) or rebated (negative).
    pub fees: Decimal,
    /// Funding received (positive) or paid (negative).
    pub funding: Decimal,
    /// Number of fills.
    pub fills: u64,
    /// Notional traded, for turnover statistics.
    pub traded_notional: Decimal,
}

impl Position {
    /// Applies a fill at average cost: quantity that closes realizes PnL against the average
    /// entry; quantity that opens or flips moves the average.
    fn apply_fill(&mut self, px: Decimal, q: Decimal, side: Side, fee: Decimal, contract_size: Decimal) {
        let signed = if side == Side::Buy { q } else { -q };
        self.fees += fee;
        self.fills += 1;
        self.traded_notional += px * q * contract_size;
        if self.qty.is_zero() || self.qty.is_sign_positive() == signed.is_sign_positive() {
            let new_qty = self.qty + signed;
            self.avg_px = (self.avg_px * self.qty.abs() + px * q) / new_qty.abs();
            self.qty = new_qty;
            return;
        }
        let closing = q.min(self.qty.abs());
        let long = self.qty.is_sign_positive();
        let direction = if long { Decimal::ONE } else { Decimal::NEGATIVE_ONE };
        self.realized += (px - self.avg_px) * closing * direction * contract_size;
        self.qty += signed;
        if self.qty.is_zero() {
            self.avg_px = Decimal::ZERO;
        } else if self.qty.is_sign_positive() != long {
            self.avg_px = px;
        }
    }

    /// Unrealized PnL at `mark`, per unit of contract size.
    pub fn unrealized(&self, mark: Decimal, contract_size: Decimal) -> Decimal {
        if self.qty.is_zero() { Decimal::ZERO } else { (mark - self.avg_px) * self.qty * contract_size }
    }
}

/// PnL summed over instruments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PnlTotals {
    /// Realized, before fees and funding.
    pub realized: Decimal,
    /// Unrealized at the current marks.
    pub unrealized: Decimal,
    /// Fees paid.
    pub fees: Decimal,
    /// Funding received (negative: paid).
    pub funding: Decimal,
}

impl PnlTotals {
    /// Realized + unrealized − fees + funding.
    pub fn net(&self) -> Decimal {
        self.realized + self.unrealized - self.fees + self.funding
    }
}

/// Positions per instrument, in total and per strategy.
///
/// The total nets every strategy's fills in one average-cost book, as the venue sees the
/// account; each strategy also has its own book so its PnL is its own. Net PnL (realized +
/// unrealized − fees + funding) sums exactly; the split between realized and unrealized can
/// differ when strategies trade against each other's positions.
#[derive(Clone, Debug, Default)]
pub struct Portfolio {
    instruments: usize,
    total: Vec<Position>,
    by_strategy: Vec<Position>,
}

impl Portfolio {
    /// Flat positions for `instruments` instruments and `strategies` strategies.
    pub fn new(instruments: usize, strategies: usize) -> Self {
        Self {
            instruments,
            total: vec![Position::default(); instruments],
            by_strategy: vec![Position::default(); instruments * strategies],
        }
    }

    /// The account's position in `id`, all strategies netted.
    pub fn get(&self, id: InstrumentId) -> &Position {
        &self.total[id.index()]
    }

    /// One strategy's own position in `id`.
    pub fn get_for(&self, strategy: StrategyId, id: InstrumentId) -> &Position {
        &self.by_strategy[usize::from(strategy.0) * self.instruments + id.index()]
    }

    /// All account positions, by instrument id.
    pub fn positions(&self) -> &[Position] {
        &self.total
    }

    /// Applies a fill of `strategy`'s order to its book and to the account's.
    pub fn apply_fill(&mut self, registry: &Registry, strategy: StrategyId, id: InstrumentId, side: Side, fill: &Fill) {
        let inst = registry.get(id);
        let (px, qty) = (inst.px(fill.px), inst.qty(fill.qty));
        self.total[id.index()].apply_fill(px, qty, side, fill.fee, inst.contract_size);
        let k = usize::from(strategy.0) * self.instruments + id.index();
        if let Some(p) = self.by_strategy.get_mut(k) {
            p.apply_fill(px, qty, side, fill.fee, inst.contract_size);
        }
    }

    /// Books a funding settlement on a perpetual, for the account and every strategy holding
    /// it: a long pays `qty × contract × mark × rate` when the rate is positive, a short
    /// receives it. Returns the account's payment.
    pub fn apply_funding(&mut self, registry: &Registry, id: InstrumentId, settled: &FundingSettled) -> Decimal {
        let inst = registry.get(id);
        if inst.kind != InstrumentKind::Perpetual {
            return Decimal::ZERO;
        }
        let per_unit =
            -(inst.contract_size * settled.mark_px.to_decimal(REFERENCE_SCALE) * settled.rate.to_decimal(RATE_SCALE));
        for p in self.by_strategy.iter_mut().skip(id.index()).step_by(self.instruments.max(1)) {
            p.funding += p.qty * per_unit;
        }
        let p = &mut self.total[id.index()];
        let payment = p.qty * per_unit;
        p.funding += payment;
        payment
    }

    /// The mark used for unrealized PnL: the venue's mark price for perpetuals when known,
    /// else the mid; `None` without a market.
    pub fn mark(registry: &Registry, books: &Books, id: InstrumentId) -> Option<Decimal> {
        let inst = registry.get(id);
        let b = books.get(id);
        if inst.kind == InstrumentKind::Perpetual && b.mark_px.0 > 0 {
            return Some(b.mark_px.to_decimal(REFERENCE_SCALE));
        }
        let q = &b.quote;
        (q.bid_px.0 > 0 && q.ask_px.0 > 0).then(|| (inst.px(q.bid_px) + inst.px(q.ask_px)) / Decimal::TWO)
    }

    /// The account's PnL over every instrument, unrealized at current marks.
    pub fn totals(&self, registry: &Registry, books: &Books) -> PnlTotals {
        Self::sum(&self.total, registry, books)
    }

    /// One strategy's PnL, unrealized at current marks.
    pub fn strategy_totals(&self, strategy: StrategyId, registry: &Registry, books: &Books) -> PnlTotals {
        let start = usize::from(strategy.0) * self.instruments;
        self.by_strategy
            .get(start..start + self.instruments)
            .map_or_else(PnlTotals::default, |p| Self::sum(p, registry, books))
    }

    fn sum(positions: &[Position], registry: &Registry, books: &Books) -> PnlTotals {
        let mut t = PnlTotals::default();
        for (inst, p) in registry.instruments().iter().zip(positions) {
            t.realized += p.realized;
            t.fees += p.fees;
            t.funding += p.funding;
            if let Some(mark) = Self::mark(registry, books, inst.id) {
                t.unrealized += p.unrealized(mark, inst.contract_size);
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::{Px, Qty, Rate};
    use crate::instrument::InstrumentConfig;

    fn registry() -> Registry {
        let cfg = |kind, sym: &str| InstrumentConfig {
            venue: "v".into(),
            symbol: sym.into(),
            kind,
            base: "BTC".into(),
            quote: "USDT".into(),
            tick: "0.1".parse().unwrap(),
            lot: "0.001".parse().unwrap(),
            contract_size: Decimal::ONE,
            taker_fee: "0.0004".parse().unwrap(),
            maker_fee: "0.0002".parse().unwrap(),
        };
        Registry::new(&["v".into()], &[cfg(InstrumentKind::Spot, "S"), cfg(InstrumentKind::Perpetual, "P")]).unwrap()
    }

    fn fill(px: i64, qty: i64, fee: &str) -> Fill {
        Fill { px: Px(px), qty: Qty(qty), leaves_qty: Qty(0), fee: fee.parse().unwrap(), taker: true, trade_id: 1 }
    }

    #[test]
    fn average_cost_realizes_and_flips_exactly() {
        let r = registry();
        let mut pf = Portfolio::new(2, 2);
        let id = InstrumentId(0);
        pf.apply_fill(&r, StrategyId(0), id, Side::Buy, &fill(1_000_000, 1000, "0.4")); // 1 @ 100000.0
        pf.apply_fill(&r, StrategyId(0), id, Side::Buy, &fill(1_010_000, 1000, "0.404")); // 1 @ 101000.0
        assert_eq!(pf.get(id).avg_px, "100500".parse::<Decimal>().unwrap());
        pf.apply_fill(&r, StrategyId(0), id, Side::Sell, &fill(1_020_000, 3000, "1.224")); // sell 3 @ 102000.0
        let p = pf.get(id);
        assert_eq!(p.realized, "3000".parse::<Decimal>().unwrap()); // 2 × 1500
        assert_eq!(p.qty, "-1".parse::<Decimal>().unwrap());
        assert_eq!(p.avg_px, "102000".parse::<Decimal>().unwrap());
        assert_eq!(p.fees, "2.028".parse::<Decimal>().unwrap());
        assert_eq!(p.unrealized("101000".parse().unwrap(), Decimal::ONE), "1000".parse::<Decimal>().unwrap());
        assert_eq!(pf.get_for(StrategyId(0), id), p, "a single strategy's book equals the account's");
    }

    #[test]
    fn funding_long_pays_positive_rate_and_spot_never_pays() {
        let r = registry();
        let mut pf = Portfolio::new(2, 2);
        pf.apply_fill(&r, StrategyId(1), InstrumentId(1), Side::Buy, &fill(1_000_000, 2000, "0"));
        pf.apply_fill(&r, StrategyId(1), InstrumentId(0), Side::Buy, &fill(1_000_000, 2000, "0"));
        let s = FundingSettled { at_ms: 1, rate: Rate(1_000_000_000_000), mark_px: Px(1_000_000_000_000_000) }; // rate 0.0001, mark 100000
        assert_eq!(pf.apply_funding(&r, InstrumentId(1), &s), "-20".parse::<Decimal>().unwrap());
        assert_eq!(pf.apply_funding(&r, InstrumentId(0), &s), Decimal::ZERO);
        assert_eq!(pf.get_for(StrategyId(1), InstrumentId(1)).funding, "-20".parse::<Decimal>().unwrap());
        assert_eq!(pf.get_for(StrategyId(0), InstrumentId(1)).funding, Decimal::ZERO);
    }
}
