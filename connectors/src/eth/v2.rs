//! Uniswap V2 exact pricing: the pair formulas, pair addresses, and a pending-state pool map that
//! predicts each pending swap's amounts after the pending swaps seen before it.
//!
//! The arithmetic is the pair contract's and the Router02 library's, in `U256`, floor division:
//!
//! - exact in:  `out = in·997·rOut / (rIn·1000 + in·997)`
//! - exact out: `in  = rIn·out·1000 / ((rOut − out)·997) + 1`
//!
//! Like `UniswapV2Library.getAmountsOut/In`, every hop's amount is computed from the reserves
//! before the transaction, then the transaction's swaps are applied. When a block includes the
//! pending swaps in the order [`V2Pools::predict`] saw them, its amounts equal the pairs' `Swap`
//! logs exactly (tokens without transfer fees assumed). A swap that would revert leaves the
//! pending state as it was, as it leaves the chain.

use std::collections::HashMap;

use alloy_primitives::{Address, B256, U256, U512, b256, keccak256};

use super::router::{Exact, MAX_PATH_TOKENS, Protocol, SwapCall};

/// Keccak of the `UniswapV2Pair` creation code: part of every pair's CREATE2 address, the same
/// on mainnet and in the `@uniswap/v2-core` npm build.
pub const PAIR_INIT_CODE_HASH: B256 = b256!("96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f");

/// Why a V2 amount cannot be computed (the router would revert with the same reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum V2Error {
    /// A zero input (exact in) or output (exact out).
    #[error("insufficient amount")]
    InsufficientAmount,
    /// A zero reserve, or an exact output not below the output reserve.
    #[error("insufficient liquidity")]
    InsufficientLiquidity,
    /// An intermediate product overflows 256 bits (the pair's SafeMath would revert).
    #[error("arithmetic overflow")]
    Overflow,
}

/// `getAmountOut`: the output of selling `amount_in` into a pair with the given reserves.
///
/// # Errors
/// [`V2Error`] as the library's `require`s and SafeMath.
pub fn amount_out(amount_in: U256, reserve_in: U256, reserve_out: U256) -> Result<U256, V2Error> {
    if amount_in.is_zero() {
        return Err(V2Error::InsufficientAmount);
    }
    if reserve_in.is_zero() || reserve_out.is_zero() {
        return Err(V2Error::InsufficientLiquidity);
    }
    let in_with_fee = amount_in.checked_mul(U256::from(997)).ok_or(V2Error::Overflow)?;
    let num = in_with_fee.checked_mul(reserve_out).ok_or(V2Error::Overflow)?;
    let den =
        reserve_in.checked_mul(U256::from(1000)).and_then(|d| d.checked_add(in_with_fee)).ok_or(V2Error::Overflow)?;
    Ok(num / den)
}

/// `getAmountIn`: the input needed to buy exactly `amount_out` from a pair.
///
/// # Errors
/// [`V2Error`] as the library's `require`s and SafeMath (an output not below the reserve
/// is [`V2Error::InsufficientLiquidity`]).
pub fn amount_in(amount_out: U256, reserve_in: U256, reserve_out: U256) -> Result<U256, V2Error> {
    if amount_out.is_zero() {
        return Err(V2Error::InsufficientAmount);
    }
    if reserve_in.is_zero() || reserve_out.is_zero() || amount_out >= reserve_out {
        return Err(V2Error::InsufficientLiquidity);
    }
    let num =
        reserve_in.checked_mul(amount_out).and_then(|n| n.checked_mul(U256::from(1000))).ok_or(V2Error::Overflow)?;
    let den = (reserve_out - amount_out).checked_mul(U256::from(997)).ok_or(V2Error::Overflow)?;
    (num / den).checked_add(U256::from(1)).ok_or(V2Error::Overflow)
}

/// The two tokens of a pair in the pair's order (`token0 < token1`).
pub fn sort_tokens(a: Address, b: Address) -> (Address, Address) {
    if a < b { (a, b) } else { (b, a) }
}

/// The CREATE2 address of the pair of `a` and `b` made by `factory`.
pub fn pair_address(factory: Address, a: Address, b: Address, init_code_hash: B256) -> Address {
    let (t0, t1) = sort_tokens(a, b);
    let mut salt_in = [0u8; 40];
    salt_in[..20].copy_from_slice(t0.as_slice());
    salt_in[20..].copy_from_slice(t1.as_slice());
    factory.create2(keccak256(salt_in), init_code_hash)
}

/// One pair's tokens and reserves: confirmed (last block) and pending (after the pending swaps
/// applied so far).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolState {
    /// The pair's `token0`.
    pub token0: Address,
    /// The pair's `token1`.
    pub token1: Address,
    /// Reserves as of the last block (`getReserves` or the last `Sync`).
    pub confirmed: (U256, U256),
    /// Reserves after the pending swaps applied since.
    pub pending: (U256, U256),
}

/// Why a pending swap could not be priced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PredictError {
    /// Not a V2 swap (V3 legs are decoded and tagged, not priced).
    #[error("not a Uniswap V2 swap")]
    NotV2,
    /// A pool along the path has no known reserves yet: load them (`getReserves`) and retry.
    #[error("pool {0} is not tracked")]
    UnknownPool(Address),
}

/// The predicted outcome of one pending V2 swap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prediction {
    /// Number of hops.
    pub hops: usize,
    /// The pair of each hop.
    pub pools: [Address; MAX_PATH_TOKENS - 1],
    /// `amounts[0]` in, `amounts[i + 1]` out of hop `i` (the router's `amounts` array).
    pub amounts: [U256; MAX_PATH_TOKENS],
    /// Price impact against the pre-trade mid prices with the 0.3% fee taken out, in basis
    /// points (a tiny trade is 0; fully drained is 10 000).
    pub price_impact_bps: u32,
    /// Whether the router would revert, and why.
    pub revert: Option<RevertReason>,
}

impl Prediction {
    /// The pools along the path.
    pub fn pools(&self) -> &[Address] {
        &self.pools[..self.hops]
    }

    /// The router's `amounts` array: input, then each hop's output.
    pub fn amounts(&self) -> &[U256] {
        &self.amounts[..=self.hops]
    }

    /// Total input.
    pub fn amount_in(&self) -> U256 {
        self.amounts[0]
    }

    /// Final output.
    pub fn amount_out(&self) -> U256 {
        self.amounts[self.hops]
    }

    /// Whether the transaction is predicted to revert.
    pub fn would_revert(&self) -> bool {
        self.revert.is_some()
    }
}

/// Why the router would revert a swap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevertReason {
    /// `deadline` is before the next block's earliest timestamp (`UniswapV2Router: EXPIRED`).
    Expired,
    /// Output below `amountOutMin`.
    InsufficientOutput,
    /// Input above `amountInMax` (or above the value sent for `swapETHForExactTokens`).
    ExcessiveInput,
    /// An ETH variant whose path does not start (or end) at WETH.
    InvalidPath,
    /// A pair formula failure (zero amount, not enough liquidity, overflow).
    Pair(V2Error),
}

/// The pending-state pool map: confirmed reserves per pair, and the pending reserves after the
/// pending swaps predicted so far, in arrival order.
#[derive(Clone, Debug)]
pub struct V2Pools {
    factory: Address,
    init_code_hash: B256,
    weth: Option<Address>,
    pools: HashMap<Address, PoolState>,
}

impl V2Pools {
    /// An empty map for pairs of `factory` (with the standard init code hash). `weth`, when known,
    /// lets ETH variants with a non-WETH path be flagged as reverting.
    pub fn new(factory: Address, weth: Option<Address>) -> Self {
        Self { factory, init_code_hash: PAIR_INIT_CODE_HASH, weth, pools: HashMap::new() }
    }

    /// The factory.
    pub fn factory(&self) -> Address {
        self.factory
    }

    /// The pair address of two tokens.
    pub fn pair_for(&self, a: Address, b: Address) -> Address {
        pair_address(self.factory, a, b, self.init_code_hash)
    }

    /// Sets a pair's confirmed reserves (from `getReserves` or a mined `Sync`) and resets its
    /// pending reserves to them.
    pub fn set_reserves(&mut self, pair: Address, token0: Address, token1: Address, r0: U256, r1: U256) {
        self.pools.insert(pair, PoolState { token0, token1, confirmed: (r0, r1), pending: (r0, r1) });
    }

    /// Every tracked pair and its state.
    pub fn iter(&self) -> impl Iterator<Item = (&Address, &PoolState)> {
        self.pools.iter()
    }

    /// A pair's state.
    pub fn get(&self, pair: &Address) -> Option<&PoolState> {
        self.pools.get(pair)
    }

    /// Forgets every pending swap: pending reserves go back to the confirmed ones (on a new block,
    /// once its `Sync`s are applied).
    pub fn reset_pending(&mut self) {
        for p in self.pools.values_mut() {
            p.pending = p.confirmed;
        }
    }

    /// The first pool along `swap`'s path that is not tracked, if any.
    pub fn missing_pool(&self, swap: &SwapCall) -> Option<(Address, Address, Address)> {
        swap.path.tokens().windows(2).find_map(|w| {
            let pair = self.pair_for(w[0], w[1]);
            (!self.pools.contains_key(&pair)).then_some((pair, w[0], w[1]))
        })
    }

    /// Predicts `swap` against the pending state and, unless it would revert, applies it.
    /// `min_timestamp` is the earliest timestamp the including block can have (the last head's).
    ///
    /// # Errors
    /// [`PredictError::NotV2`] for V3 legs; [`PredictError::UnknownPool`] when a pair's reserves
    /// are not loaded (nothing is applied).
    pub fn predict(&mut self, swap: &SwapCall, min_timestamp: u64) -> Result<Prediction, PredictError> {
        if swap.protocol != Protocol::UniswapV2 {
            return Err(PredictError::NotV2);
        }
        let tokens = swap.path.tokens();
        let hops = swap.path.hops();
        let mut p = Prediction {
            hops,
            pools: [Address::ZERO; MAX_PATH_TOKENS - 1],
            amounts: [U256::ZERO; MAX_PATH_TOKENS],
            price_impact_bps: 0,
            revert: None,
        };
        // Reserves (in, out) of each hop before this transaction.
        let mut reserves = [(U256::ZERO, U256::ZERO); MAX_PATH_TOKENS - 1];
        for i in 0..hops {
            let pair = self.pair_for(tokens[i], tokens[i + 1]);
            let st = self.pools.get(&pair).ok_or(PredictError::UnknownPool(pair))?;
            p.pools[i] = pair;
            reserves[i] = if tokens[i] == st.token0 { st.pending } else { (st.pending.1, st.pending.0) };
        }
        p.revert = self.route(swap, &reserves[..hops], &mut p.amounts).err();
        if p.revert.is_none() {
            p.price_impact_bps = impact_bps(p.amounts[0], p.amounts[hops], &reserves[..hops]);
            if U256::from(min_timestamp) > swap.deadline.unwrap_or(U256::MAX) {
                p.revert = Some(RevertReason::Expired);
            }
        }
        if p.revert.is_none() {
            for (i, pool) in p.pools[..hops].iter().enumerate() {
                if let Some(st) = self.pools.get_mut(pool) {
                    // Cannot wrap: outputs are below the reserves and inputs were range-checked.
                    let (a_in, a_out) = (p.amounts[i], p.amounts[i + 1]);
                    if tokens[i] == st.token0 {
                        st.pending = (st.pending.0.saturating_add(a_in), st.pending.1.saturating_sub(a_out));
                    } else {
                        st.pending = (st.pending.0.saturating_sub(a_out), st.pending.1.saturating_add(a_in));
                    }
                }
            }
        }
        Ok(p)
    }

    /// Fills `amounts` as the router would and checks its limits.
    fn route(&self, swap: &SwapCall, reserves: &[(U256, U256)], amounts: &mut [U256]) -> Result<(), RevertReason> {
        let tokens = swap.path.tokens();
        if let Some(weth) = self.weth {
            let bad =
                (swap.method.eth_in() && tokens[0] != weth) || (swap.method.eth_out() && swap.path.token_out() != weth);
            if bad {
                return Err(RevertReason::InvalidPath);
            }
        }
        let hops = reserves.len();
        match swap.exact {
            Exact::In => {
                amounts[0] = swap.amount;
                for (i, &(r_in, r_out)) in reserves.iter().enumerate() {
                    amounts[i + 1] = amount_out(amounts[i], r_in, r_out).map_err(RevertReason::Pair)?;
                }
                if amounts[hops] < swap.limit {
                    return Err(RevertReason::InsufficientOutput);
                }
            }
            Exact::Out => {
                amounts[hops] = swap.amount;
                for i in (0..hops).rev() {
                    let (r_in, r_out) = reserves[i];
                    amounts[i] = amount_in(amounts[i + 1], r_in, r_out).map_err(RevertReason::Pair)?;
                }
                if amounts[0] > swap.limit {
                    return Err(RevertReason::ExcessiveInput);
                }
            }
        }
        // The pair stores reserves as uint112 and reverts (`UniswapV2: OVERFLOW`) beyond.
        let max112 = (U256::from(1) << 112) - U256::from(1);
        for (i, &(r_in, _)) in reserves.iter().enumerate() {
            if r_in.checked_add(amounts[i]).is_none_or(|r| r > max112) {
                return Err(RevertReason::Pair(V2Error::Overflow));
            }
        }
        // The router applies every hop to a different pair; a path through one pair twice gets
        // amounts from stale reserves and fails the pair's K check.
        for i in 0..hops {
            for j in i + 1..hops {
                if tokens_pair_eq(tokens[i], tokens[i + 1], tokens[j], tokens[j + 1]) {
                    return Err(RevertReason::Pair(V2Error::InsufficientLiquidity));
                }
            }
        }
        Ok(())
    }
}

fn tokens_pair_eq(a0: Address, a1: Address, b0: Address, b1: Address) -> bool {
    sort_tokens(a0, a1) == sort_tokens(b0, b1)
}

/// Price impact in bps of trading `amount_in` for `amount_out` through pairs with the given
/// (in, out) reserves: `1 − out / ideal`, where `ideal` is `amount_in` carried through every
/// hop at its mid price less the 0.3% fee.
pub fn impact_bps(amount_in: U256, amount_out: U256, reserves: &[(U256, U256)]) -> u32 {
    let mut ideal = U512::from(amount_in);
    for &(r_in, r_out) in reserves {
        if r_in.is_zero() {
            return 10_000;
        }
        // Keep the running value in range: reserves are < 2^112, amounts < 2^256.
        ideal = ideal.saturating_mul(U512::from(r_out)).saturating_mul(U512::from(997))
            / (U512::from(r_in) * U512::from(1000));
    }
    let out = U512::from(amount_out);
    if ideal.is_zero() || out >= ideal {
        return 0;
    }
    let bps = (ideal - out) * U512::from(10_000) / ideal;
    u32::try_from(bps).unwrap_or(10_000)
}
