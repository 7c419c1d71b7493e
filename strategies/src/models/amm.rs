//! Exposure of a Uniswap V2 liquidity position.
//!
//! A constant-product pool holds `x` base and `y` quote with `x·y = k`; at price `P = y/x` the
//! reserves are `x = √(k/P)`, `y = √(kP)`, so a position owning a share `s` of the pool is worth
//! `V = 2s√(kP)` and its delta is `dV/dP = s·√(k/P) = s·x`: exactly the base it holds. Its gamma
//! `−s·x/(2P)` is always negative: an LP is short volatility, which is why the hedger needs it.

/// A share of a constant-product pool.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LpPosition {
    /// Base reserve of the pool (units of base).
    pub base_reserve: f64,
    /// Quote reserve of the pool (units of quote).
    pub quote_reserve: f64,
    /// Fraction of the pool's liquidity owned (LP tokens held / total supply).
    pub share: f64,
}

impl LpPosition {
    /// Pool price, quote per base.
    pub fn price(&self) -> f64 {
        self.quote_reserve / self.base_reserve
    }

    /// The position's value in quote at pool price `p`, after arbitrage moved the pool there.
    pub fn value_at(&self, p: f64) -> f64 {
        let k = self.base_reserve * self.quote_reserve;
        2.0 * self.share * (k * p).sqrt()
    }

    /// Delta in units of base at pool price `p`.
    pub fn delta_at(&self, p: f64) -> f64 {
        let k = self.base_reserve * self.quote_reserve;
        self.share * (k / p).sqrt()
    }

    /// Gamma (per unit price) at pool price `p`.
    pub fn gamma_at(&self, p: f64) -> f64 {
        -self.delta_at(p) / (2.0 * p)
    }

    /// Delta at the pool's own price: the base the position holds.
    pub fn delta(&self) -> f64 {
        self.share * self.base_reserve
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_and_gamma_match_finite_differences_of_pool_value() {
        let lp = LpPosition { base_reserve: 1_000.0, quote_reserve: 3_200_000.0, share: 0.02 };
        let p = lp.price();
        assert_eq!(p, 3_200.0);
        assert!((lp.value_at(p) - 2.0 * 0.02 * 3_200_000.0).abs() < 1e-6);
        assert!((lp.delta() - 20.0).abs() < 1e-12);
        assert!((lp.delta_at(p) - lp.delta()).abs() < 1e-9);
        for price in [1_000.0, 3_200.0, 9_000.0] {
            let h = price * 1e-5;
            let fd = (lp.value_at(price + h) - lp.value_at(price - h)) / (2.0 * h);
            assert!((lp.delta_at(price) - fd).abs() < 1e-6 * fd.abs(), "{price}: {} vs {fd}", lp.delta_at(price));
            let fd2 = (lp.value_at(price + h) - 2.0 * lp.value_at(price) + lp.value_at(price - h)) / (h * h);
            assert!((lp.gamma_at(price) - fd2).abs() < 1e-4 * fd2.abs(), "{price}: {} vs {fd2}", lp.gamma_at(price));
        }
    }
}
