//! Black-Scholes prices and greeks of European options, and implied volatility.
//!
//! Inputs are annualised: `rate` continuously compounded, `vol` per √year, `t` in years. Theta is
//! per year (divide by 365 for per day); vega is per unit of volatility (divide by 100 for one
//! vol point).

/// Call or put.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    /// The right to buy at the strike.
    Call,
    /// The right to sell at the strike.
    Put,
}

/// The inputs of one valuation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptionInputs {
    /// Call or put.
    pub kind: OptionKind,
    /// Underlying price.
    pub spot: f64,
    /// Strike.
    pub strike: f64,
    /// Risk-free rate, continuously compounded.
    pub rate: f64,
    /// Volatility, annualised.
    pub vol: f64,
    /// Time to expiry in years.
    pub t: f64,
}

/// Price and sensitivities of one option (per unit of underlying).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Greeks {
    /// Model value.
    pub price: f64,
    /// ∂price/∂spot.
    pub delta: f64,
    /// ∂²price/∂spot².
    pub gamma: f64,
    /// ∂price/∂t with calendar time passing (per year, usually negative).
    pub theta: f64,
    /// ∂price/∂vol (per 1.00 of vol).
    pub vega: f64,
}

/// Standard normal density.
fn pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal distribution function, from `erfc` (accurate in both tails).
fn cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Values an option. At or past expiry (or with zero volatility) it is worth its intrinsic
/// value, with a delta of 0 or ±1 and no gamma or vega.
pub fn greeks(o: &OptionInputs) -> Greeks {
    let sign = match o.kind {
        OptionKind::Call => 1.0,
        OptionKind::Put => -1.0,
    };
    let discount = (-o.rate * o.t.max(0.0)).exp();
    if o.t <= 0.0 || o.vol <= 0.0 {
        let forward_intrinsic = sign * (o.spot - o.strike * discount);
        let itm = forward_intrinsic > 0.0;
        return Greeks {
            price: forward_intrinsic.max(0.0),
            delta: if itm { sign } else { 0.0 },
            gamma: 0.0,
            theta: if itm { -sign * o.rate * o.strike * discount } else { 0.0 },
            vega: 0.0,
        };
    }
    let sqrt_t = o.t.sqrt();
    let d1 = ((o.spot / o.strike).ln() + (o.rate + 0.5 * o.vol * o.vol) * o.t) / (o.vol * sqrt_t);
    let d2 = d1 - o.vol * sqrt_t;
    let price = sign * (o.spot * cdf(sign * d1) - o.strike * discount * cdf(sign * d2));
    let decay = -o.spot * pdf(d1) * o.vol / (2.0 * sqrt_t);
    Greeks {
        price,
        delta: match o.kind {
            OptionKind::Call => cdf(d1),
            OptionKind::Put => cdf(d1) - 1.0,
        },
        gamma: pdf(d1) / (o.spot * o.vol * sqrt_t),
        theta: decay - sign * o.rate * o.strike * discount * cdf(sign * d2),
        vega: o.spot * pdf(d1) * sqrt_t,
    }
}

/// The volatility at which the model price equals `price`, by safeguarded Newton steps inside a
/// bisection bracket; `None` when the price is outside the no-arbitrage bounds.
pub fn implied_vol(o: &OptionInputs, price: f64) -> Option<f64> {
    let (mut lo, mut hi) = (1e-6, 10.0);
    let at = |vol: f64| greeks(&OptionInputs { vol, ..*o }).price;
    if !(at(lo)..=at(hi)).contains(&price) {
        return None;
    }
    let mut vol = 0.5;
    for _ in 0..100 {
        let g = greeks(&OptionInputs { vol, ..*o });
        let diff = g.price - price;
        if diff.abs() < 1e-12 {
            return Some(vol);
        }
        if diff > 0.0 {
            hi = vol
        } else {
            lo = vol
        }
        let newton = vol - diff / g.vega;
        vol = if g.vega > 1e-12 && newton > lo && newton < hi { newton } else { 0.5 * (lo + hi) };
    }
    Some(vol)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hull(kind: OptionKind) -> OptionInputs {
        // Hull, Options, Futures and Other Derivatives, example 15.6: S=42, K=40, r=10%, σ=20%, T=0.5.
        OptionInputs { kind, spot: 42.0, strike: 40.0, rate: 0.10, vol: 0.20, t: 0.5 }
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() < tol
    }

    #[test]
    fn textbook_values_to_four_decimals() {
        let c = greeks(&hull(OptionKind::Call));
        let p = greeks(&hull(OptionKind::Put));
        assert!(close(c.price, 4.7594, 5e-5), "{c:?}");
        assert!(close(p.price, 0.8086, 5e-5), "{p:?}");
        assert!(close(c.delta, 0.7791, 5e-5), "{c:?}");
        assert!(close(p.delta, -0.2209, 5e-5), "{p:?}");
        assert!(close(c.gamma, 0.0500, 5e-5), "{c:?}");
        assert!(close(c.vega, 8.8134, 5e-4), "{c:?}");
        assert!(close(c.theta, -4.5589, 5e-4), "{c:?}");
        // Put-call parity: C − P = S − K e^{−rT}.
        assert!(close(c.price - p.price, 42.0 - 40.0 * (-0.05f64).exp(), 1e-12));
    }

    #[test]
    fn greeks_match_finite_differences() {
        for kind in [OptionKind::Call, OptionKind::Put] {
            let o = hull(kind);
            let g = greeks(&o);
            let h = 1e-4;
            let at = |f: &dyn Fn(&mut OptionInputs)| {
                let mut x = o;
                f(&mut x);
                greeks(&x).price
            };
            let up = at(&|x| x.spot += h);
            let down = at(&|x| x.spot -= h);
            assert!(close(g.delta, (up - down) / (2.0 * h), 1e-6));
            assert!(close(g.gamma, (up - 2.0 * g.price + down) / (h * h), 1e-4));
            assert!(close(g.vega, (at(&|x| x.vol += h) - at(&|x| x.vol -= h)) / (2.0 * h), 1e-5));
            assert!(close(g.theta, -(at(&|x| x.t += h) - at(&|x| x.t -= h)) / (2.0 * h), 1e-4));
        }
    }

    #[test]
    fn implied_vol_inverts_the_price_and_refuses_impossible_prices() {
        let o = hull(OptionKind::Call);
        let iv = implied_vol(&o, 4.7594).unwrap();
        assert!(close(iv, 0.20, 1e-4), "{iv}");
        assert_eq!(implied_vol(&o, 0.5), None, "below intrinsic");
        assert_eq!(implied_vol(&o, 50.0), None, "above the spot");
    }

    #[test]
    fn expired_options_are_intrinsic() {
        let o = OptionInputs { t: 0.0, ..hull(OptionKind::Call) };
        let g = greeks(&o);
        assert_eq!((g.price, g.delta, g.gamma), (2.0, 1.0, 0.0));
        let p = greeks(&OptionInputs { kind: OptionKind::Put, ..o });
        assert_eq!((p.price, p.delta), (0.0, 0.0));
    }
}
