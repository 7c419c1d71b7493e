//! Pricing models the strategies share: Black-Scholes greeks for options and the exposure of an
//! AMM liquidity position.
//!
//! This is model math, so it is `f64` by design; values cross into money (`Decimal`) only
//! through explicit conversions at the caller, never silently.

pub mod amm;
pub mod black_scholes;
