//! The simulator's Ethereum side: a toy chain of Uniswap V2 pools whose prices lag the CEX.
//!
//! Per configured underlying, one Uniswap V2 pair against a USD stablecoin (USDC, 6 decimals)
//! at its real CREATE2 address under the mainnet factory ([`crate::eth::MAINNET_V2_FACTORY`],
//! the real init code hash), so `crossbar mempool` with its mainnet defaults prices them
//! unchanged. `ETH` trades as WETH (mainnet address), `BTC` as WBTC (8 decimals), any other
//! underlying as an 18-decimal token at an address derived from its name.
//!
//! [`EthChain::advance`] is driven with the real time since start and the CEX true prices:
//!
//! - **Arbitrage**: per pool and tick, with probability `arb_probability`, an arbitrageur
//!   compares the pool's pending price (after the swaps already pending) with the CEX price as it
//!   was `arb_delay_ms` ago and, beyond `arb_threshold_bps`, sends a swap closing 50–100 % of the
//!   gap. The pool price therefore lags the CEX price by the delay plus a block or so.
//! - **Noise**: with probability `noise_probability`, a random-direction swap of
//!   `noise_min_usd..=noise_max_usd`.
//!
//! Every swap is a Router02 transaction (`swapExactTokensForTokens`, `swapExactETHForTokens` on
//! the WETH pool, `swapTokensForExactTokens`) with real selectors and ABI encoding, from one of
//! `senders` random senders with increasing nonces; its `amountOutMin`/`amountInMax` is quoted
//! with a random slippage, by noise traders from the last block's reserves (so one behind other
//! pending swaps may revert, as on chain), by arbitrageurs from the pending state. Every `block_ms` a block is mined: the pending swaps are applied in arrival order
//! with the exact pair formulas of [`crate::eth::v2`] (a swap past its limit reverts and leaves
//! the reserves alone), and a header follows. No clock, no I/O: same seed and inputs, same chain.
//!
//! Transaction hashes are unique digests, not signatures over an RLP encoding; `r`/`s` are
//! filler of the right shape.

use std::collections::{HashMap, VecDeque};

use alloy_primitives::{Address, B256, U256, U512, address, keccak256};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

use super::SimError;
use crate::eth::router::{Exact, selector};
use crate::eth::v2::{self, V2Error};
use crate::eth::{MAINNET_V2_FACTORY, MAINNET_V2_ROUTER02, MAINNET_WETH};

/// Path prefix of the JSON-RPC endpoint: `ws://ADDR/ethereum`.
pub const PATH: &str = "ethereum";
/// Mainnet USDC: the stablecoin every simulated pool quotes in.
pub const USDC: Address = address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
/// Mainnet WBTC: the token of the `BTC` underlying.
pub const WBTC: Address = address!("2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599");
/// Decimals of [`USDC`].
const USD_DECIMALS: u8 = 6;
/// Headers and transactions kept for `eth_getBlockByNumber` / `eth_getTransactionByHash`.
const KEPT_BLOCKS: usize = 256;
/// Chain timestamp of block 0 (2026-01-01, the market model's epoch).
const GENESIS_TIMESTAMP: u64 = 1_767_225_600;
/// Deadline the senders give their swaps, in chain seconds after the last block.
const DEADLINE_S: u64 = 1_200;
/// Fixed-point scale of prices handed between the CEX process and the pools.
const PRICE_SCALE: u128 = 1_000_000_000;

/// The `[simulator.ethereum]` section: the Ethereum JSON-RPC endpoint and its pools.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EthSimConfig {
    /// Serve `ws://ADDR/ethereum` (on by default, so the demo has a DEX side without a node).
    pub enabled: bool,
    /// `eth_chainId` (31337, anvil's).
    pub chain_id: u64,
    /// Real milliseconds between mined blocks.
    pub block_ms: u64,
    /// Chain seconds between block timestamps.
    pub block_time_s: u64,
    /// Real milliseconds between ticks of the swap process.
    pub tx_interval_ms: u64,
    /// Stablecoin side of each pool at start, whole USD.
    pub liquidity_usd: u64,
    /// How stale the arbitrageurs' view of the CEX price is, real milliseconds.
    pub arb_delay_ms: u64,
    /// Chance per pool and tick that an arbitrageur looks.
    pub arb_probability: f64,
    /// Smallest gap between pool and (delayed) CEX price worth an arbitrage, bps.
    pub arb_threshold_bps: u32,
    /// Chance per pool and tick of a noise swap.
    pub noise_probability: f64,
    /// Smallest noise swap, whole USD.
    pub noise_min_usd: u64,
    /// Largest noise swap, whole USD.
    pub noise_max_usd: u64,
    /// Largest slippage a sender allows on its quote, bps.
    pub slippage_bps: u32,
    /// Distinct senders.
    pub senders: u32,
}

impl Default for EthSimConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            chain_id: 31_337,
            block_ms: 1_000,
            block_time_s: 12,
            tx_interval_ms: 50,
            liquidity_usd: 10_000_000,
            arb_delay_ms: 2_000,
            arb_probability: 0.2,
            arb_threshold_bps: 40,
            noise_probability: 0.1,
            noise_min_usd: 100,
            noise_max_usd: 50_000,
            slippage_bps: 50,
            senders: 64,
        }
    }
}

impl EthSimConfig {
    /// Checks every value is in range.
    ///
    /// # Errors
    /// [`SimError::Config`] naming the first offending field.
    pub fn validate(&self) -> Result<(), SimError> {
        let fail = |what: &str| Err(SimError::Config(format!("ethereum.{what}")));
        let prob = |p: f64| p.is_finite() && (0.0..=1.0).contains(&p);
        if self.block_ms == 0 || self.tx_interval_ms == 0 || self.block_time_s == 0 {
            return fail("block_ms, tx_interval_ms and block_time_s must be at least 1");
        }
        if !prob(self.arb_probability) || !prob(self.noise_probability) {
            return fail("arb_probability and noise_probability must be in 0..=1");
        }
        if self.liquidity_usd == 0 || self.liquidity_usd > 1_000_000_000_000 {
            return fail("liquidity_usd must be in 1..=10^12");
        }
        if self.noise_min_usd == 0 || self.noise_min_usd > self.noise_max_usd || self.noise_max_usd > self.liquidity_usd
        {
            return fail("noise_min_usd..=noise_max_usd must be a non-empty range within liquidity_usd");
        }
        if self.slippage_bps >= 10_000 || self.arb_threshold_bps >= 10_000 {
            return fail("slippage_bps and arb_threshold_bps must be below 10000");
        }
        if self.senders == 0 {
            return fail("senders must be at least 1");
        }
        Ok(())
    }
}

/// An ERC-20 token of the simulated chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Its address.
    pub address: Address,
    /// Its decimals.
    pub decimals: u8,
}

impl Token {
    /// The token the simulator trades for an underlying (see the module documentation).
    pub fn of_underlying(name: &str) -> Self {
        match name.to_ascii_uppercase().as_str() {
            "ETH" | "WETH" => Self { address: MAINNET_WETH, decimals: 18 },
            "BTC" | "WBTC" => Self { address: WBTC, decimals: 8 },
            upper => {
                let digest = keccak256(format!("crossbar-sim token {upper}"));
                Self { address: Address::from_slice(&digest[12..]), decimals: 18 }
            }
        }
    }
}

/// One simulated Uniswap V2 pair: an underlying's token against [`USDC`].
#[derive(Clone, Debug)]
pub struct Pool {
    /// The underlying whose CEX price it lags.
    pub underlying: String,
    /// The underlying's token.
    pub token: Token,
    /// The pair's CREATE2 address under the mainnet factory.
    pub pair: Address,
    /// The pair's `token0` (the lower address).
    pub token0: Address,
    /// The pair's `token1`.
    pub token1: Address,
    /// `(reserve0, reserve1)` as of the last block.
    pub reserves: (U256, U256),
    /// `(reserve0, reserve1)` after the swaps pending now (what arbitrageurs see).
    pending: (U256, U256),
    /// CEX prices seen, `(real ms, USD per whole token × PRICE_SCALE)`, oldest first.
    history: VecDeque<(u64, u128)>,
}

impl Pool {
    /// `(token reserve, USD reserve)` of a `(reserve0, reserve1)` pair.
    fn split(&self, r: (U256, U256)) -> (U256, U256) {
        if self.token0 == self.token.address { r } else { (r.1, r.0) }
    }

    /// USD per whole token at the last block (a display price; the reserves are exact).
    pub fn price(&self) -> f64 {
        let (tok, usd) = self.split(self.reserves);
        let scale = |v: U256, dec: u8| f64::from(v) / 10f64.powi(i32::from(dec));
        scale(usd, USD_DECIMALS) / scale(tok, self.token.decimals)
    }
}

/// A simulated swap as the chain applies it (its calldata says the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Swap {
    /// Index of its pool.
    pub pool: usize,
    /// Whether it sells the underlying's token (else it sells USD).
    pub sells_token: bool,
    /// Which side is fixed.
    pub exact: Exact,
    /// The fixed amount (input for exact in, output for exact out).
    pub amount: U256,
    /// `amountOutMin` (exact in) or `amountInMax` (exact out).
    pub limit: U256,
    /// The deadline, chain seconds.
    pub deadline: u64,
    /// Whether the input is native ETH (`swapExactETHForTokens`).
    pub eth_in: bool,
}

/// What mining did with a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The block.
    pub block: u64,
    /// Its index in the block.
    pub index: u32,
    /// `Some((amount in, amount out))` when it succeeded, `None` when it reverted.
    pub amounts: Option<(U256, U256)>,
}

/// A simulated transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimTx {
    /// Its hash.
    pub hash: B256,
    /// Sender.
    pub from: Address,
    /// Sender nonce.
    pub nonce: u64,
    /// Recipient (the router).
    pub to: Address,
    /// Native value, wei.
    pub value: U256,
    /// Calldata.
    pub input: Vec<u8>,
    /// The swap it performs.
    pub swap: Swap,
    /// Set once mined.
    pub outcome: Option<Outcome>,
}

/// A block header of the simulated chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Block number.
    pub number: u64,
    /// Its hash.
    pub hash: B256,
    /// The previous block's hash.
    pub parent_hash: B256,
    /// Chain timestamp, unix seconds.
    pub timestamp: u64,
    /// A digest of the pools' reserves after the block.
    pub state_root: B256,
    /// The hashes of its transactions, in order.
    pub transactions: Vec<B256>,
}

/// Which reserves a sender quotes its `amountOutMin`/`amountInMax` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quote {
    /// The last block's (a wallet): swaps pending before it may push it past its limit.
    LastBlock,
    /// The pending state (an arbitrageur watching the mempool).
    Pending,
}

/// What [`EthChain::advance`] produced, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainEvent {
    /// A new pending transaction.
    Pending(B256),
    /// A new block (its number).
    Block(u64),
}

/// The simulated chain; see the [module documentation](self).
#[derive(Debug)]
pub struct EthChain {
    cfg: EthSimConfig,
    rng: SmallRng,
    pools: Vec<Pool>,
    senders: Vec<(Address, u64)>,
    pending: Vec<B256>,
    txs: HashMap<B256, SimTx>,
    heads: VecDeque<Header>,
    next_block_ms: u64,
}

impl EthChain {
    /// A chain with one pool per `(underlying, start price)`, each holding `liquidity_usd` of
    /// USD and the matching amount of token, and a genesis block.
    ///
    /// # Errors
    /// [`SimError::Config`] for a bad config, a non-positive price or two underlyings with one
    /// token.
    pub fn new(cfg: &EthSimConfig, underlyings: &[(String, f64)], seed: u64) -> Result<Self, SimError> {
        cfg.validate()?;
        let usd_reserve = U256::from(cfg.liquidity_usd) * pow10(USD_DECIMALS);
        let mut pools: Vec<Pool> = Vec::with_capacity(underlyings.len());
        for (name, price) in underlyings {
            let price_fp = price_fixed(*price)
                .ok_or_else(|| SimError::Config(format!("ethereum: underlying {name} has no positive price")))?;
            let token = Token::of_underlying(name);
            if token.address == USDC || pools.iter().any(|p| p.token.address == token.address) {
                return Err(SimError::Config(format!("ethereum: underlying {name} maps to a token already used")));
            }
            // token = usd / price, in base units.
            let tok_reserve = usd_reserve * pow10(token.decimals) * U256::from(PRICE_SCALE)
                / (U256::from(price_fp) * pow10(USD_DECIMALS));
            let (token0, token1) = v2::sort_tokens(token.address, USDC);
            let reserves =
                if token0 == token.address { (tok_reserve, usd_reserve) } else { (usd_reserve, tok_reserve) };
            let pair = v2::pair_address(MAINNET_V2_FACTORY, token0, token1, v2::PAIR_INIT_CODE_HASH);
            let history = VecDeque::from([(0, price_fp)]);
            pools.push(Pool {
                underlying: name.clone(),
                token,
                pair,
                token0,
                token1,
                reserves,
                pending: reserves,
                history,
            });
        }
        let senders = (0..cfg.senders)
            .map(|i| (Address::from_slice(&keccak256(format!("crossbar-sim sender {i}"))[12..]), 0))
            .collect();
        let genesis = Header {
            number: 0,
            hash: keccak256(format!("crossbar-sim genesis {seed}")),
            parent_hash: B256::ZERO,
            timestamp: GENESIS_TIMESTAMP,
            state_root: B256::ZERO,
            transactions: Vec::new(),
        };
        Ok(Self {
            cfg: cfg.clone(),
            rng: SmallRng::seed_from_u64(seed ^ 0x6574_6865_7265_756d),
            pools,
            senders,
            pending: Vec::new(),
            txs: HashMap::new(),
            heads: VecDeque::from([genesis]),
            next_block_ms: cfg.block_ms,
        })
    }

    /// The config.
    pub fn config(&self) -> &EthSimConfig {
        &self.cfg
    }

    /// The pools, in underlying order.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// The last block.
    pub fn head(&self) -> &Header {
        // Never empty: genesis is there from the start and eviction keeps the newest.
        &self.heads[self.heads.len() - 1]
    }

    /// A recent block by number (the last [`KEPT_BLOCKS`]).
    pub fn header(&self, number: u64) -> Option<&Header> {
        let first = self.heads.front()?.number;
        self.heads.get(usize::try_from(number.checked_sub(first)?).ok()?)
    }

    /// A pending or recently mined transaction.
    pub fn tx(&self, hash: &B256) -> Option<&SimTx> {
        self.txs.get(hash)
    }

    /// The transactions pending now, in arrival order.
    pub fn pending(&self) -> &[B256] {
        &self.pending
    }

    /// Advances to `now_ms` real milliseconds since start with the CEX true prices of the pools'
    /// underlyings (in pool order; a non-finite or non-positive price skips its pool): one tick
    /// of the swap process, then a block when one is due. Appends what happened to `out`.
    pub fn advance(&mut self, now_ms: u64, prices: &[f64], out: &mut Vec<ChainEvent>) {
        for (i, &price) in prices.iter().enumerate().take(self.pools.len()) {
            let Some(fp) = price_fixed(price) else { continue };
            let history = &mut self.pools[i].history;
            history.push_back((now_ms, fp));
            // Keep the newest entry at or before the arbitrageurs' horizon, and everything after.
            let horizon = now_ms.saturating_sub(self.cfg.arb_delay_ms);
            while history.len() > 1 && history[1].0 <= horizon {
                history.pop_front();
            }
            if self.rng.random_bool(self.cfg.arb_probability)
                && let Some(swap) = self.arbitrage(i, horizon)
            {
                out.push(ChainEvent::Pending(self.send(swap)));
            }
            if self.rng.random_bool(self.cfg.noise_probability)
                && let Some(swap) = self.noise(i)
            {
                out.push(ChainEvent::Pending(self.send(swap)));
            }
        }
        if now_ms >= self.next_block_ms {
            self.next_block_ms = now_ms + self.cfg.block_ms;
            out.push(ChainEvent::Block(self.mine()));
        }
    }

    /// The arbitrage swap of pool `i` toward the CEX price as of `horizon`, if worth it.
    fn arbitrage(&mut self, i: usize, horizon: u64) -> Option<Swap> {
        let pool = &self.pools[i];
        let &(t, target) = pool.history.front()?;
        if t > horizon {
            return None;
        }
        let (tok, usd) = pool.split(pool.pending);
        // Pool price and target as USD base units per token base unit, cross-multiplied:
        // pool = usd / tok; target = target_fp · 10^usd_dec / (PRICE_SCALE · 10^tok_dec).
        let lhs = U512::from(usd) * U512::from(PRICE_SCALE) * U512::from(pow10(pool.token.decimals));
        let rhs = U512::from(tok) * U512::from(target) * U512::from(pow10(USD_DECIMALS));
        let gap = if lhs > rhs { lhs - rhs } else { rhs - lhs };
        if rhs.is_zero() || gap * U512::from(10_000u32) <= rhs * U512::from(self.cfg.arb_threshold_bps) {
            return None;
        }
        // Token reserve at the target price: tok' = sqrt(tok · usd · PRICE_SCALE · 10^tok_dec
        // / (target · 10^usd_dec)).
        let k = U512::from(tok) * U512::from(usd) * U512::from(PRICE_SCALE) * U512::from(pow10(pool.token.decimals));
        let tok_target = U256::from((k / (U512::from(target) * U512::from(pow10(USD_DECIMALS)))).root(2));
        let fraction = self.rng.random_range(50u32..=100);
        let part = |d: U256| d * U256::from(fraction) / U256::from(100u32);
        let deadline = self.head().timestamp + DEADLINE_S;
        if tok_target > tok {
            // The pool prices the token too high: sell token into it.
            let amount = part(tok_target - tok);
            self.exact_in(i, true, amount, deadline, Quote::Pending)
        } else {
            // Too low: buy token, exact out half the time.
            let amount = part(tok - tok_target);
            if self.rng.random_bool(0.5) {
                self.exact_out(i, false, amount, deadline, Quote::Pending)
            } else {
                let usd_in = v2::amount_in(amount, usd, tok).ok()?;
                self.exact_in(i, false, usd_in, deadline, Quote::Pending)
            }
        }
    }

    /// A random noise swap on pool `i`.
    fn noise(&mut self, i: usize) -> Option<Swap> {
        let usd_whole = self.rng.random_range(self.cfg.noise_min_usd..=self.cfg.noise_max_usd);
        let usd_amount = U256::from(usd_whole) * pow10(USD_DECIMALS);
        let pool = &self.pools[i];
        let (tok, usd) = pool.split(pool.reserves);
        let tok_amount = usd_amount * tok / usd.max(U256::from(1));
        let sells_token = self.rng.random_bool(0.5);
        let deadline = self.head().timestamp + DEADLINE_S;
        let amount = if sells_token { tok_amount } else { usd_amount };
        if self.rng.random_bool(0.3) {
            // Exact out: ask for what the same notional buys.
            let out = if sells_token { usd_amount } else { tok_amount };
            self.exact_out(i, sells_token, out, deadline, Quote::LastBlock)
        } else {
            self.exact_in(i, sells_token, amount, deadline, Quote::LastBlock)
        }
    }

    /// A random slippage allowance in bps.
    fn slippage(&mut self) -> U256 {
        U256::from(self.rng.random_range(0..=self.cfg.slippage_bps))
    }

    /// The reserves a sender quotes its limit on.
    fn quote_reserves(&self, i: usize, quote: Quote) -> (U256, U256) {
        match quote {
            Quote::LastBlock => self.pools[i].reserves,
            Quote::Pending => self.pools[i].pending,
        }
    }

    /// An exact-in swap with its limit quoted on `quote`; `None` when the pool cannot quote.
    fn exact_in(&mut self, i: usize, sells_token: bool, amount: U256, deadline: u64, quote: Quote) -> Option<Swap> {
        let (r_in, r_out) = self.in_out(i, sells_token, self.quote_reserves(i, quote));
        let quote = v2::amount_out(amount, r_in, r_out).ok()?;
        let limit = quote * (U256::from(10_000u32) - self.slippage()) / U256::from(10_000u32);
        // Half the WETH sells send native ETH instead (`swapExactETHForTokens`).
        let eth_in = sells_token && self.pools[i].token.address == MAINNET_WETH && self.rng.random_bool(0.5);
        Some(Swap { pool: i, sells_token, exact: Exact::In, amount, limit, deadline, eth_in })
    }

    /// An exact-out swap with its limit quoted on `quote`; `None` when the pool cannot quote.
    fn exact_out(&mut self, i: usize, sells_token: bool, amount: U256, deadline: u64, quote: Quote) -> Option<Swap> {
        let (r_in, r_out) = self.in_out(i, sells_token, self.quote_reserves(i, quote));
        let quote = v2::amount_in(amount, r_in, r_out).ok()?;
        let limit = quote * (U256::from(10_000u32) + self.slippage()) / U256::from(10_000u32);
        Some(Swap { pool: i, sells_token, exact: Exact::Out, amount, limit, deadline, eth_in: false })
    }

    /// `(reserve in, reserve out)` of pool `i` for a swap in that direction.
    fn in_out(&self, i: usize, sells_token: bool, r: (U256, U256)) -> (U256, U256) {
        let (tok, usd) = self.pools[i].split(r);
        if sells_token { (tok, usd) } else { (usd, tok) }
    }

    /// Signs (so to speak) and queues `swap` from a random sender; returns its hash.
    fn send(&mut self, swap: Swap) -> B256 {
        let s = self.rng.random_range(0..self.senders.len());
        let (from, nonce) = self.senders[s];
        self.senders[s].1 += 1;
        let pool = &self.pools[swap.pool];
        let (t_in, t_out) = if swap.sells_token { (pool.token.address, USDC) } else { (USDC, pool.token.address) };
        let input = encode_call(&swap, t_in, t_out, from);
        let value = if swap.eth_in { swap.amount } else { U256::ZERO };
        let mut seed = Vec::with_capacity(64 + input.len());
        seed.extend_from_slice(&self.cfg.chain_id.to_be_bytes());
        seed.extend_from_slice(from.as_slice());
        seed.extend_from_slice(&nonce.to_be_bytes());
        seed.extend_from_slice(&input);
        let hash = keccak256(&seed);
        // The pending view the next arbitrageur sees: as mining will apply it.
        let pending = self.pools[swap.pool].pending;
        if let Some((a_in, a_out)) = self.apply(&swap, pending, self.head().timestamp + self.cfg.block_time_s) {
            self.pools[swap.pool].pending = self.moved(swap.pool, swap.sells_token, pending, a_in, a_out);
        }
        let tx = SimTx { hash, from, nonce, to: MAINNET_V2_ROUTER02, value, input, swap, outcome: None };
        self.txs.insert(hash, tx);
        self.pending.push(hash);
        hash
    }

    /// The router's amounts for `swap` against reserves `r` in a block at `timestamp`; `None`
    /// when it reverts.
    fn apply(&self, swap: &Swap, r: (U256, U256), timestamp: u64) -> Option<(U256, U256)> {
        if timestamp > swap.deadline {
            return None;
        }
        let (r_in, r_out) = self.in_out(swap.pool, swap.sells_token, r);
        let amounts: Result<(U256, U256), V2Error> = match swap.exact {
            Exact::In => v2::amount_out(swap.amount, r_in, r_out).map(|out| (swap.amount, out)),
            Exact::Out => v2::amount_in(swap.amount, r_in, r_out).map(|a_in| (a_in, swap.amount)),
        };
        let (a_in, a_out) = amounts.ok()?;
        let within = match swap.exact {
            Exact::In => a_out >= swap.limit,
            Exact::Out => a_in <= swap.limit,
        };
        // The pair keeps reserves in uint112.
        let max112 = (U256::from(1) << 112) - U256::from(1);
        (within && r_in.checked_add(a_in).is_some_and(|r| r <= max112)).then_some((a_in, a_out))
    }

    /// Reserves `r` of pool `i` after a swap moved `a_in` in and `a_out` out.
    fn moved(&self, i: usize, sells_token: bool, r: (U256, U256), a_in: U256, a_out: U256) -> (U256, U256) {
        let in_is_0 = (self.pools[i].token0 == self.pools[i].token.address) == sells_token;
        if in_is_0 { (r.0 + a_in, r.1 - a_out) } else { (r.0 - a_out, r.1 + a_in) }
    }

    /// Mines a block now: applies the pending swaps in arrival order and appends a header.
    /// Returns its number.
    pub fn mine(&mut self) -> u64 {
        let parent = self.head();
        let (number, parent_hash) = (parent.number + 1, parent.hash);
        let timestamp = parent.timestamp + self.cfg.block_time_s;
        let hashes = std::mem::take(&mut self.pending);
        for (index, hash) in hashes.iter().enumerate() {
            let Some(swap) = self.txs.get(hash).map(|t| t.swap) else { continue };
            let reserves = self.pools[swap.pool].reserves;
            let amounts = self.apply(&swap, reserves, timestamp);
            if let Some((a_in, a_out)) = amounts {
                self.pools[swap.pool].reserves = self.moved(swap.pool, swap.sells_token, reserves, a_in, a_out);
            }
            if let Some(tx) = self.txs.get_mut(hash) {
                tx.outcome = Some(Outcome { block: number, index: u32::try_from(index).unwrap_or(u32::MAX), amounts });
            }
        }
        let mut state = Vec::with_capacity(64 * self.pools.len());
        for p in &mut self.pools {
            p.pending = p.reserves;
            state.extend_from_slice(&p.reserves.0.to_be_bytes::<32>());
            state.extend_from_slice(&p.reserves.1.to_be_bytes::<32>());
        }
        let state_root = keccak256(&state);
        let mut seed = Vec::with_capacity(72);
        seed.extend_from_slice(parent_hash.as_slice());
        seed.extend_from_slice(state_root.as_slice());
        seed.extend_from_slice(&number.to_be_bytes());
        let hash = keccak256(&seed);
        self.heads.push_back(Header { number, hash, parent_hash, timestamp, state_root, transactions: hashes });
        if self.heads.len() > KEPT_BLOCKS
            && let Some(old) = self.heads.pop_front()
        {
            for h in &old.transactions {
                self.txs.remove(h);
            }
        }
        number
    }

    /// The answer of `eth_call` of `data` on `to`: the return data (empty for an address
    /// without code, as a node answers).
    ///
    /// # Errors
    /// [`CallError::Reverted`] for a function the simulated contract does not have.
    pub fn call(&self, to: Address, data: &[u8]) -> Result<Vec<u8>, CallError> {
        let word_addr = |a: Address| {
            let mut w = [0u8; 32];
            w[12..].copy_from_slice(a.as_slice());
            w.to_vec()
        };
        let sel = data.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok());
        if to == MAINNET_V2_ROUTER02 {
            return match sel {
                Some(ROUTER_WETH) => Ok(word_addr(MAINNET_WETH)),
                Some(ROUTER_FACTORY) => Ok(word_addr(MAINNET_V2_FACTORY)),
                _ => Err(CallError::Reverted),
            };
        }
        if to == MAINNET_V2_FACTORY {
            if sel != Some(FACTORY_GET_PAIR) || data.len() < 68 {
                return Err(CallError::Reverted);
            }
            let a = Address::from_slice(&data[16..36]);
            let b = Address::from_slice(&data[48..68]);
            let pair = self
                .pools
                .iter()
                .find(|p| v2::sort_tokens(a, b) == (p.token0, p.token1))
                .map_or(Address::ZERO, |p| p.pair);
            return Ok(word_addr(pair));
        }
        let Some(pool) = self.pools.iter().find(|p| p.pair == to) else { return Ok(Vec::new()) };
        match sel {
            Some(PAIR_GET_RESERVES) => {
                let mut out = Vec::with_capacity(96);
                out.extend_from_slice(&pool.reserves.0.to_be_bytes::<32>());
                out.extend_from_slice(&pool.reserves.1.to_be_bytes::<32>());
                out.extend_from_slice(&U256::from(self.head().timestamp % (1 << 32)).to_be_bytes::<32>());
                Ok(out)
            }
            Some(PAIR_TOKEN0) => Ok(word_addr(pool.token0)),
            Some(PAIR_TOKEN1) => Ok(word_addr(pool.token1)),
            Some(PAIR_FACTORY) => Ok(word_addr(MAINNET_V2_FACTORY)),
            _ => Err(CallError::Reverted),
        }
    }
}

/// Why a simulated `eth_call` fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The contract has no such function (or the arguments are short): a node answers
    /// "execution reverted".
    #[error("execution reverted")]
    Reverted,
}

/// Router02 `WETH()`.
const ROUTER_WETH: [u8; 4] = [0xad, 0x5c, 0x46, 0x48];
/// Router02 / pair `factory()`.
const ROUTER_FACTORY: [u8; 4] = [0xc4, 0x5a, 0x01, 0x55];
const PAIR_FACTORY: [u8; 4] = ROUTER_FACTORY;
/// Factory `getPair(address,address)`.
const FACTORY_GET_PAIR: [u8; 4] = [0xe6, 0xa4, 0x39, 0x05];
/// Pair `getReserves()`.
const PAIR_GET_RESERVES: [u8; 4] = [0x09, 0x02, 0xf1, 0xac];
/// Pair `token0()`.
const PAIR_TOKEN0: [u8; 4] = [0x0d, 0xfe, 0x16, 0x81];
/// Pair `token1()`.
const PAIR_TOKEN1: [u8; 4] = [0xd2, 0x12, 0x20, 0xa7];

/// Router02 calldata for `swap` along `[t_in, t_out]` paying `to`.
fn encode_call(swap: &Swap, t_in: Address, t_out: Address, to: Address) -> Vec<u8> {
    let word = |v: U256| v.to_be_bytes::<32>();
    let addr = |a: Address| {
        let mut w = [0u8; 32];
        w[12..].copy_from_slice(a.as_slice());
        w
    };
    let (sel, head): ([u8; 4], Vec<[u8; 32]>) = match (swap.exact, swap.eth_in) {
        (Exact::In, true) => (selector::SWAP_EXACT_ETH_FOR_TOKENS, vec![word(swap.limit), word(U256::from(0x80))]),
        (Exact::In, false) => {
            (selector::SWAP_EXACT_TOKENS_FOR_TOKENS, vec![word(swap.amount), word(swap.limit), word(U256::from(0xa0))])
        }
        (Exact::Out, _) => {
            (selector::SWAP_TOKENS_FOR_EXACT_TOKENS, vec![word(swap.amount), word(swap.limit), word(U256::from(0xa0))])
        }
    };
    let mut out = Vec::with_capacity(4 + 32 * (head.len() + 5));
    out.extend_from_slice(&sel);
    for w in head {
        out.extend_from_slice(&w);
    }
    out.extend_from_slice(&addr(to));
    out.extend_from_slice(&word(U256::from(swap.deadline)));
    out.extend_from_slice(&word(U256::from(2)));
    out.extend_from_slice(&addr(t_in));
    out.extend_from_slice(&addr(t_out));
    out
}

/// `10^n`.
fn pow10(n: u8) -> U256 {
    U256::from(10u8).pow(U256::from(n))
}

/// A CEX price as a fixed-point integer; `None` when not positive and finite.
fn price_fixed(price: f64) -> Option<u128> {
    // The process value is f64 by design; it becomes an integer once, here.
    let scaled = (price * 1e9).round();
    // In range, so the cast is exact (a whole number below 2^100).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (1.0..1e30).contains(&scaled).then_some(scaled as u128)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> EthChain {
        let u = [("ETH".to_owned(), 3_500.0), ("BTC".to_owned(), 100_000.0)];
        EthChain::new(&EthSimConfig::default(), &u, 7).unwrap()
    }

    #[test]
    fn pools_sit_at_the_real_pair_addresses_and_start_prices() {
        let c = chain();
        // WETH/USDC on mainnet.
        assert_eq!(c.pools()[0].pair, address!("B4e16d0168e52d35CaCD2c6185b44281Ec28C9Dc"));
        assert!((c.pools()[0].price() - 3_500.0).abs() < 0.01, "{}", c.pools()[0].price());
        assert!((c.pools()[1].price() - 100_000.0).abs() < 1.0, "{}", c.pools()[1].price());
        let reserves = c.call(c.pools()[1].pair, &PAIR_GET_RESERVES).unwrap();
        assert_eq!(U256::from_be_slice(&reserves[..32]), c.pools()[1].reserves.0);
        assert_eq!(c.call(c.pools()[0].pair, &[1, 2, 3, 4]), Err(CallError::Reverted));
        assert_eq!(c.call(Address::ZERO, &PAIR_GET_RESERVES), Ok(vec![]));
    }

    #[test]
    fn bad_configs_are_refused() {
        let u = [("ETH".to_owned(), 3_500.0)];
        let bad = EthSimConfig { noise_min_usd: 10, noise_max_usd: 5, ..EthSimConfig::default() };
        assert!(EthChain::new(&bad, &u, 1).is_err());
        assert!(EthChain::new(&EthSimConfig::default(), &[("ETH".to_owned(), f64::NAN)], 1).is_err());
        let twice = [("ETH".to_owned(), 1.0), ("WETH".to_owned(), 1.0)];
        assert!(EthChain::new(&EthSimConfig::default(), &twice, 1).is_err());
    }
}
