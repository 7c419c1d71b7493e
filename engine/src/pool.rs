//! AMM pool state as the core sees it: confirmed reserves (last block) and pending-adjusted
//! reserves (after the pending swaps seen since), per pool instrument.
//!
//! The DEX feed thread does the exact V2 arithmetic (in `uint256`, as the pair contract does)
//! and sends the resulting reserves; the core only stores them, so applying a pool event is a
//! few word copies with no allocation. Prices are read as exact decimals from the integer
//! reserves and the tokens' decimals, never through `f64`.

use rust_decimal::Decimal;

use crate::event::{Amount128, MarketBody, MarketEvent, PoolReserves};
use crate::instrument::InstrumentId;

/// Token decimals of a pool instrument: what turns base units into whole tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolSpec {
    /// Decimals of the base token (18 for WETH, 8 for WBTC).
    pub base_decimals: u8,
    /// Decimals of the quote token (6 for USDC).
    pub quote_decimals: u8,
}

/// One pool's latest state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolView {
    /// Its token decimals.
    pub spec: PoolSpec,
    /// Reserves as of the last block, `None` until the first pool state.
    pub confirmed: Option<PoolReserves>,
    /// Reserves after the pending swaps seen since that block (equal to `confirmed` when none).
    pub pending: Option<PoolReserves>,
    /// The block of `confirmed`.
    pub block: u64,
    /// Pending swaps seen since that block (reverting ones included).
    pub pending_swaps: u32,
    /// `recv_ns` of the last event applied.
    pub updated_ns: u64,
    /// `(amount in, amount out)` of the last pending swap that did not revert, in base units
    /// (the out amount is the fall of the other reserve).
    pub last_swap: Option<(u128, u128)>,
}

impl PoolView {
    /// Quote per whole base token at the last block.
    pub fn confirmed_price(&self) -> Option<Decimal> {
        self.confirmed.and_then(|r| price(&r, self.spec))
    }

    /// Quote per whole base token after the pending swaps: where the pool will be one block
    /// from now if they are all included in the order seen.
    pub fn pending_price(&self) -> Option<Decimal> {
        self.pending.and_then(|r| price(&r, self.spec))
    }
}

/// An exact amount in whole tokens: `units / 10^decimals`. Amounts beyond Decimal's 96-bit
/// mantissa lose their lowest digits (28 significant digits stay), `None` if nothing fits.
pub fn whole(units: Amount128, decimals: u8) -> Option<Decimal> {
    let mut v = units.get();
    let mut scale = u32::from(decimals);
    const MAX: u128 = (1u128 << 96) - 1;
    while v > MAX || scale > 28 {
        if scale == 0 {
            return None;
        }
        v /= 10;
        scale -= 1;
    }
    Some(Decimal::from_i128_with_scale(v as i128, scale))
}

/// Quote per whole base of `r`; `None` for an empty pool.
pub fn price(r: &PoolReserves, spec: PoolSpec) -> Option<Decimal> {
    let base = whole(r.base, spec.base_decimals)?;
    let quote = whole(r.quote, spec.quote_decimals)?;
    if base.is_zero() {
        return None;
    }
    quote.checked_div(base)
}

/// Every pool instrument's state, indexed by instrument id (non-pool ids stay empty).
#[derive(Debug, Default)]
pub struct Pools {
    pools: Vec<PoolView>,
    ignored: u64,
}

impl Pools {
    /// No pools: what a context without a DEX side reads.
    pub const EMPTY: Self = Self { pools: Vec::new(), ignored: 0 };

    /// Slots for `instruments` ids, none configured.
    pub fn new(instruments: usize) -> Self {
        Self { pools: vec![PoolView::default(); instruments], ignored: 0 }
    }

    /// Declares `id` a pool with these token decimals.
    pub fn configure(&mut self, id: InstrumentId, spec: PoolSpec) {
        if let Some(p) = self.pools.get_mut(id.index()) {
            p.spec = spec;
        }
    }

    /// Applies a pool event; other events are ignored. Returns whether the pool changed.
    /// Events for ids outside the table are counted in [`Pools::ignored`] and dropped.
    #[inline]
    pub fn apply(&mut self, ev: &MarketEvent) -> bool {
        let (MarketBody::PoolState(_) | MarketBody::PendingSwap(_)) = ev.body else { return false };
        let Some(p) = self.pools.get_mut(ev.instrument.index()) else {
            self.ignored += 1;
            return false;
        };
        match ev.body {
            MarketBody::PoolState(s) => {
                p.confirmed = Some(s.reserves);
                p.pending = Some(s.reserves);
                p.block = s.block;
                p.pending_swaps = 0;
                p.last_swap = None;
            }
            MarketBody::PendingSwap(s) => {
                if !s.would_revert
                    && let Some(before) = p.pending
                {
                    let (b, a) =
                        if s.sells_base { (before.quote, s.reserves.quote) } else { (before.base, s.reserves.base) };
                    p.last_swap = Some((s.amount_in.get(), b.get().saturating_sub(a.get())));
                }
                p.pending = Some(s.reserves);
                p.pending_swaps = p.pending_swaps.saturating_add(1);
            }
            _ => return false,
        }
        p.updated_ns = ev.recv_ns;
        true
    }

    /// The state of pool `id`, `None` when it is not a pool or has had no state yet.
    pub fn get(&self, id: InstrumentId) -> Option<&PoolView> {
        self.pools.get(id.index()).filter(|p| p.confirmed.is_some())
    }

    /// Pool events dropped because their id is unknown.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{PendingSwap, PoolState, SeqIds};

    fn ev(id: u32, body: MarketBody) -> MarketEvent {
        MarketEvent {
            instrument: InstrumentId(id),
            exch_ts_ms: 0,
            recv_ns: 7,
            decoded_ns: 0,
            seq: SeqIds::default(),
            body,
        }
    }

    #[test]
    fn amount_words_round_trip() {
        for v in [0u128, 1, u128::from(u64::MAX), u128::from(u64::MAX) + 1, (1u128 << 112) - 1, u128::MAX] {
            assert_eq!(Amount128::new(v).get(), v);
        }
        assert_eq!(Amount128::new((1u128 << 64) + 5).0, [5, 1]);
    }

    #[test]
    fn prices_are_exact_decimals_of_the_reserves() {
        // 1000 WETH (18 decimals) against 3,200,000 USDC (6 decimals): 3200 USDC per WETH.
        let spec = PoolSpec { base_decimals: 18, quote_decimals: 6 };
        let confirmed = PoolReserves {
            base: Amount128::new(1_000 * 10u128.pow(18)),
            quote: Amount128::new(3_200_000 * 10u128.pow(6)),
        };
        let mut pools = Pools::new(2);
        pools.configure(InstrumentId(1), spec);
        assert!(pools.get(InstrumentId(1)).is_none());
        assert!(pools.apply(&ev(1, MarketBody::PoolState(PoolState { reserves: confirmed, block: 9 }))));
        let p = pools.get(InstrumentId(1)).unwrap();
        assert_eq!(p.confirmed_price(), Some(Decimal::from(3_200)));
        assert_eq!(p.pending_price(), Some(Decimal::from(3_200)));
        let after = PoolReserves {
            base: Amount128::new(1_250 * 10u128.pow(18)),
            quote: Amount128::new(2_560_000 * 10u128.pow(6)),
        };
        let amount_in = Amount128::new(250 * 10u128.pow(18));
        let swap = PendingSwap { reserves: after, amount_in, sells_base: true, would_revert: false };
        assert!(pools.apply(&ev(1, MarketBody::PendingSwap(swap))));
        let p = pools.get(InstrumentId(1)).unwrap();
        assert_eq!(p.last_swap, Some((250 * 10u128.pow(18), 640_000 * 10u128.pow(6))));
        assert_eq!(p.pending_price(), Some(Decimal::from(2_048)));
        assert_eq!(p.confirmed_price(), Some(Decimal::from(3_200)));
        assert_eq!((p.pending_swaps, p.block, p.updated_ns), (1, 9, 7));
        // A new block restarts the pending state.
        assert!(pools.apply(&ev(1, MarketBody::PoolState(PoolState { reserves: after, block: 10 }))));
        assert_eq!(pools.get(InstrumentId(1)).unwrap().pending_swaps, 0);
        // Unknown ids are counted, not a crash; an empty pool has no price.
        assert!(!pools.apply(&ev(5, MarketBody::PoolState(PoolState::default()))));
        assert_eq!(pools.ignored(), 1);
        assert_eq!(price(&PoolReserves::default(), spec), None);
    }

    #[test]
    fn huge_amounts_keep_28_significant_digits() {
        // Whole units beyond 2^96 cannot be a Decimal: refused, not wrapped.
        assert_eq!(whole(Amount128::new(u128::MAX), 0), None);
        assert_eq!(
            whole(Amount128::new(u128::MAX), 18),
            Some(Decimal::from_i128_with_scale(34_028_236_692_093_846_346_337_460_743, 8))
        );
        assert_eq!(
            whole(Amount128::new(u128::MAX), 18).unwrap().trunc(),
            Decimal::from(340_282_366_920_938_463_463u128)
        );
        assert_eq!(whole(Amount128::new(5), 30), Some(Decimal::ZERO));
    }
}
