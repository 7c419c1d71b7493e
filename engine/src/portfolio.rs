//! Positions and PnL, in exact decimals.
//!
//! Fills and funding settlements are rare next to ticks, so this is where fixed-point values
//! become [`Decimal`] money: average-cost positions, realized and unrealized PnL, fees and
//! funding, per instrument. Nothing here is `f64`.

use rust_decimal::Decimal;

use crate::book::{Books, FundingSettled};
use crate::event::{Fill, Side};
use crate::fixed::REFERENCE_SCALE;
use crate::instrument::{InstrumentId, InstrumentKind, Registry};

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

/// Every instrument's [`Position`].
#[derive(Clone, Debug, Default)]
pub struct Portfolio {
    positions: Vec<Position>,
}

impl Portfolio {
    /// Flat positions for `n` instruments.
    pub fn new(n: usize) -> Self {
        Self { positions: vec![Position::default(); n] }
    }

    /// The position in `id`.
    pub fn get(&self, id: InstrumentId) -> &Position {
        &self.positions[id.index()]
    }

    /// All positions, by instrument id.
    pub fn positions(&self) -> &[Position] {
        &self.positions
    }

    /// Applies a fill at average cost: quantity that closes realizes PnL against the average
    /// entry; quantity that opens or flips moves the average.
    pub fn apply_fill(&mut self, registry: &Registry, id: InstrumentId, side: Side, fill: &Fill) {
        let inst = registry.get(id);
        let px = inst.px(fill.px);
        let q = inst.qty(fill.qty);
        let signed = if side == Side::Buy { q } else { -q };
        let p = &mut self.positions[id.index()];
        p.fees += fill.fee;
        p.fills += 1;
        p.traded_notional += px * q * inst.contract_size;
        if p.qty.is_zero() || p.qty.is_sign_positive() == signed.is_sign_positive() {
            let new_qty = p.qty + signed;
            p.avg_px = (p.avg_px * p.qty.abs() + px * q) / new_qty.abs();
            p.qty = new_qty;
            return;
        }
        let closing = q.min(p.qty.abs());
        let direction = if p.qty.is_sign_positive() { Decimal::ONE } else { Decimal::NEGATIVE_ONE };
        p.realized += (px - p.avg_px) * closing * direction * inst.contract_size;
        p.qty += signed;
        if p.qty.is_zero() {
            p.avg_px = Decimal::ZERO;
        } else if p.qty.is_sign_positive() != direction.is_sign_positive() {
            p.avg_px = px;
        }
    }

    /// Books a funding settlement on a perpetual: a long pays `qty × contract × mark × rate`
    /// when the rate is positive, a short receives it.
    pub fn apply_funding(&mut self, registry: &Registry, id: InstrumentId, settled: &FundingSettled) -> Decimal {
        let inst = registry.get(id);
        if inst.kind != InstrumentKind::Perpetual {
            return Decimal::ZERO;
        }
        let p = &mut self.positions[id.index()];
        let rate = settled.rate.to_decimal(crate::fixed::RATE_SCALE);
        let payment = -(p.qty * inst.contract_size * settled.mark_px.to_decimal(REFERENCE_SCALE) * rate);
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

    /// PnL summed over every instrument, unrealized at current marks.
    pub fn totals(&self, registry: &Registry, books: &Books) -> PnlTotals {
        let mut t = PnlTotals::default();
        for inst in registry.instruments() {
            let p = &self.positions[inst.id.index()];
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
        let mut pf = Portfolio::new(2);
        let id = InstrumentId(0);
        pf.apply_fill(&r, id, Side::Buy, &fill(1_000_000, 1000, "0.4")); // 1 @ 100000.0
        pf.apply_fill(&r, id, Side::Buy, &fill(1_010_000, 1000, "0.404")); // 1 @ 101000.0
        assert_eq!(pf.get(id).avg_px, "100500".parse::<Decimal>().unwrap());
        pf.apply_fill(&r, id, Side::Sell, &fill(1_020_000, 3000, "1.224")); // sell 3 @ 102000.0
        let p = pf.get(id);
        assert_eq!(p.realized, "3000".parse::<Decimal>().unwrap()); // 2 × 1500
        assert_eq!(p.qty, "-1".parse::<Decimal>().unwrap());
        assert_eq!(p.avg_px, "102000".parse::<Decimal>().unwrap());
        assert_eq!(p.fees, "2.028".parse::<Decimal>().unwrap());
        assert_eq!(p.unrealized("101000".parse().unwrap(), Decimal::ONE), "1000".parse::<Decimal>().unwrap());
    }

    #[test]
    fn funding_long_pays_positive_rate_and_spot_never_pays() {
        let r = registry();
        let mut pf = Portfolio::new(2);
        pf.apply_fill(&r, InstrumentId(1), Side::Buy, &fill(1_000_000, 2000, "0"));
        pf.apply_fill(&r, InstrumentId(0), Side::Buy, &fill(1_000_000, 2000, "0"));
        let s = FundingSettled { at_ms: 1, rate: Rate(100_000_000), mark_px: Px(1_000_000_000_000_000) }; // rate 0.0001, mark 100000
        assert_eq!(pf.apply_funding(&r, InstrumentId(1), &s), "-20".parse::<Decimal>().unwrap());
        assert_eq!(pf.apply_funding(&r, InstrumentId(0), &s), Decimal::ZERO);
    }
}
