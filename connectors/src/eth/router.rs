//! Uniswap router calldata → decoded swap legs.
//!
//! A pure function of the transaction's `input` and `value`: [`decode_swaps`] recognises the
//! selector, reads the arguments with the bounds-checked [`Words`] reader and appends one
//! [`SwapCall`] per swap the call performs (a `multicall` or a UniversalRouter `execute` may
//! perform several). Covered:
//!
//! - Uniswap V2 Router02: `swapExactTokensForTokens`, `swapTokensForExactTokens`,
//!   `swapExactETHForTokens`, `swapTokensForExactETH`, `swapExactTokensForETH`,
//!   `swapETHForExactTokens` and the three `...SupportingFeeOnTransferTokens` variants.
//! - Uniswap V3 SwapRouter and SwapRouter02: `exactInputSingle`, `exactInput`,
//!   `exactOutputSingle`, `exactOutput` (both struct layouts: SwapRouter's has a deadline,
//!   SwapRouter02's does not), SwapRouter02's V2 pair `swapExactTokensForTokens` /
//!   `swapTokensForExactTokens`, and `multicall(bytes[])`, `multicall(uint256,bytes[])`,
//!   `multicall(bytes32,bytes[])` wrapping any of them.
//! - UniversalRouter 2.x `execute(bytes,bytes[])`, `execute(bytes,bytes[],uint256)` and
//!   `executeSigned(...)`: the `V3_SWAP_EXACT_IN/OUT` (0x00/0x01) and `V2_SWAP_EXACT_IN/OUT`
//!   (0x08/0x09) commands; other commands (wraps, permits, sweeps, V4) are passed over.
//!
//! Paths are normalised to swap order, input token first (a V3 exact-output path is encoded
//! output first and is reversed here). Amounts stay `U256`. Selectors the routers have that do
//! not swap (liquidity, permits, sweeps) are [`SkipReason::NotASwap`]; anything else is
//! [`SkipReason::UnknownSelector`]; calldata that does not match its selector's ABI is
//! [`SkipReason::Calldata`].

use alloy_primitives::{Address, U256};

use super::abi::{CalldataError, Words, split_selector};

/// Most tokens a decoded path holds (so at most `MAX_PATH_TOKENS - 1` hops); longer paths are
/// [`CalldataError::BadPath`]. Real routes have 2–4.
pub const MAX_PATH_TOKENS: usize = 8;

/// Deepest `multicall` nesting followed (a multicall inside a multicall is legal but rare).
const MAX_NESTING: u32 = 2;

/// Which AMM a swap leg trades on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Uniswap V2 constant-product pairs (0.3% fee).
    UniswapV2,
    /// Uniswap V3 concentrated-liquidity pools (fee tier per hop).
    UniswapV3,
}

impl Protocol {
    /// The name in the `pending_swap` JSON (`"uniswap-v2"`, `"uniswap-v3"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UniswapV2 => "uniswap-v2",
            Self::UniswapV3 => "uniswap-v3",
        }
    }
}

/// Which side of the swap the caller fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exact {
    /// The input amount is fixed; the output has a minimum.
    In,
    /// The output amount is fixed; the input has a maximum.
    Out,
}

impl Exact {
    /// `"in"` or `"out"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
        }
    }
}

/// The router function (or UniversalRouter command) that performs a swap leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// V2 `swapExactTokensForTokens` (Router02, 5 args).
    SwapExactTokensForTokens,
    /// V2 `swapTokensForExactTokens` (Router02).
    SwapTokensForExactTokens,
    /// V2 `swapExactETHForTokens`.
    SwapExactEthForTokens,
    /// V2 `swapTokensForExactETH`.
    SwapTokensForExactEth,
    /// V2 `swapExactTokensForETH`.
    SwapExactTokensForEth,
    /// V2 `swapETHForExactTokens`.
    SwapEthForExactTokens,
    /// V2 `swapExactTokensForTokensSupportingFeeOnTransferTokens`.
    SwapExactTokensForTokensFot,
    /// V2 `swapExactETHForTokensSupportingFeeOnTransferTokens`.
    SwapExactEthForTokensFot,
    /// V2 `swapExactTokensForETHSupportingFeeOnTransferTokens`.
    SwapExactTokensForEthFot,
    /// SwapRouter02's V2 `swapExactTokensForTokens` (4 args, no deadline).
    SwapExactTokensForTokens02,
    /// SwapRouter02's V2 `swapTokensForExactTokens` (4 args, no deadline).
    SwapTokensForExactTokens02,
    /// V3 `exactInputSingle`.
    ExactInputSingle,
    /// V3 `exactInput`.
    ExactInput,
    /// V3 `exactOutputSingle`.
    ExactOutputSingle,
    /// V3 `exactOutput`.
    ExactOutput,
    /// UniversalRouter command `V2_SWAP_EXACT_IN`.
    UrV2SwapExactIn,
    /// UniversalRouter command `V2_SWAP_EXACT_OUT`.
    UrV2SwapExactOut,
    /// UniversalRouter command `V3_SWAP_EXACT_IN`.
    UrV3SwapExactIn,
    /// UniversalRouter command `V3_SWAP_EXACT_OUT`.
    UrV3SwapExactOut,
}

impl Method {
    /// The Solidity function name (or UniversalRouter command name) as printed in `method`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SwapExactTokensForTokens | Self::SwapExactTokensForTokens02 => "swapExactTokensForTokens",
            Self::SwapTokensForExactTokens | Self::SwapTokensForExactTokens02 => "swapTokensForExactTokens",
            Self::SwapExactEthForTokens => "swapExactETHForTokens",
            Self::SwapTokensForExactEth => "swapTokensForExactETH",
            Self::SwapExactTokensForEth => "swapExactTokensForETH",
            Self::SwapEthForExactTokens => "swapETHForExactTokens",
            Self::SwapExactTokensForTokensFot => "swapExactTokensForTokensSupportingFeeOnTransferTokens",
            Self::SwapExactEthForTokensFot => "swapExactETHForTokensSupportingFeeOnTransferTokens",
            Self::SwapExactTokensForEthFot => "swapExactTokensForETHSupportingFeeOnTransferTokens",
            Self::ExactInputSingle => "exactInputSingle",
            Self::ExactInput => "exactInput",
            Self::ExactOutputSingle => "exactOutputSingle",
            Self::ExactOutput => "exactOutput",
            Self::UrV2SwapExactIn => "V2_SWAP_EXACT_IN",
            Self::UrV2SwapExactOut => "V2_SWAP_EXACT_OUT",
            Self::UrV3SwapExactIn => "V3_SWAP_EXACT_IN",
            Self::UrV3SwapExactOut => "V3_SWAP_EXACT_OUT",
        }
    }

    /// Whether the router pays out native ETH (unwrapping WETH) at the end of the path.
    pub fn eth_out(self) -> bool {
        matches!(self, Self::SwapTokensForExactEth | Self::SwapExactTokensForEth | Self::SwapExactTokensForEthFot)
    }

    /// Whether the input is the transaction's native ETH value (wrapped to WETH by the router).
    pub fn eth_in(self) -> bool {
        matches!(self, Self::SwapExactEthForTokens | Self::SwapEthForExactTokens | Self::SwapExactEthForTokensFot)
    }

    /// Whether this is a `...SupportingFeeOnTransferTokens` variant.
    pub fn fee_on_transfer(self) -> bool {
        matches!(
            self,
            Self::SwapExactTokensForTokensFot | Self::SwapExactEthForTokensFot | Self::SwapExactTokensForEthFot
        )
    }
}

/// A token path in swap order (input token first), with the V3 fee tier of each hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Path {
    len: u8,
    tokens: [Address; MAX_PATH_TOKENS],
    fees: [u32; MAX_PATH_TOKENS - 1],
}

impl Default for Path {
    fn default() -> Self {
        Self { len: 0, tokens: [Address::ZERO; MAX_PATH_TOKENS], fees: [0; MAX_PATH_TOKENS - 1] }
    }
}

impl Path {
    /// A path from `tokens` (input first) with no fee tiers (a V2 path).
    ///
    /// # Errors
    /// [`CalldataError::BadPath`] with fewer than two or more than [`MAX_PATH_TOKENS`] tokens.
    pub fn from_tokens(tokens: &[Address]) -> Result<Self, CalldataError> {
        let mut p = Self::default();
        for &t in tokens {
            p.push(t, 0)?;
        }
        p.check()?;
        Ok(p)
    }

    fn push(&mut self, token: Address, fee_before: u32) -> Result<(), CalldataError> {
        let i = usize::from(self.len);
        if i >= MAX_PATH_TOKENS {
            return Err(CalldataError::BadPath("too many tokens"));
        }
        self.tokens[i] = token;
        if i > 0 {
            self.fees[i - 1] = fee_before;
        }
        self.len += 1;
        Ok(())
    }

    fn check(&self) -> Result<(), CalldataError> {
        if self.len < 2 { Err(CalldataError::BadPath("fewer than two tokens")) } else { Ok(()) }
    }

    /// Parses a V3 packed path `token | fee (uint24) | token | ...`; with `reversed` the encoded
    /// path runs output first (exact-output swaps) and is turned around.
    ///
    /// # Errors
    /// [`CalldataError::BadPath`] when the length is not `20 + 23 k` (k ≥ 1) or too long.
    pub fn from_v3_packed(raw: &[u8], reversed: bool) -> Result<Self, CalldataError> {
        if raw.len() < 43 || !(raw.len() - 20).is_multiple_of(23) {
            return Err(CalldataError::BadPath("V3 path length is not 20 + 23k"));
        }
        let hops = (raw.len() - 20) / 23;
        if hops + 1 > MAX_PATH_TOKENS {
            return Err(CalldataError::BadPath("too many tokens"));
        }
        let token_at = |k: usize| Address::from_slice(&raw[23 * k..23 * k + 20]);
        let fee_after = |k: usize| {
            let f = &raw[23 * k + 20..23 * k + 23];
            u32::from_be_bytes([0, f[0], f[1], f[2]])
        };
        let mut p = Self::default();
        if reversed {
            p.push(token_at(hops), 0)?;
            for k in (0..hops).rev() {
                p.push(token_at(k), fee_after(k))?;
            }
        } else {
            p.push(token_at(0), 0)?;
            for k in 0..hops {
                p.push(token_at(k + 1), fee_after(k))?;
            }
        }
        Ok(p)
    }

    /// The tokens, input first.
    pub fn tokens(&self) -> &[Address] {
        &self.tokens[..usize::from(self.len)]
    }

    /// The V3 fee tier (hundredths of a bip) of each hop; all 0 on a V2 path.
    pub fn fees(&self) -> &[u32] {
        &self.fees[..usize::from(self.len).saturating_sub(1)]
    }

    /// Number of hops (pools) along the path.
    pub fn hops(&self) -> usize {
        usize::from(self.len).saturating_sub(1)
    }

    /// The input token.
    pub fn token_in(&self) -> Address {
        self.tokens[0]
    }

    /// The output token.
    pub fn token_out(&self) -> Address {
        self.tokens[usize::from(self.len).saturating_sub(1)]
    }
}

/// One decoded swap leg of a pending transaction, as the calldata states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapCall {
    /// The AMM the leg trades on.
    pub protocol: Protocol,
    /// The function or command.
    pub method: Method,
    /// Which side is fixed.
    pub exact: Exact,
    /// Tokens in swap order.
    pub path: Path,
    /// The fixed amount: `amountIn` for exact-in (the tx value for ETH-in), `amountOut` for
    /// exact-out. UniversalRouter's `CONTRACT_BALANCE` (2^255) and SwapRouter02's 0 ("use the
    /// router's balance") are passed through as written.
    pub amount: U256,
    /// The limit: `amountOutMin(imum)` for exact-in, `amountInMax(imum)` for exact-out (the tx
    /// value for `swapETHForExactTokens`).
    pub limit: U256,
    /// The deadline (unix seconds) from the call, its struct, or the wrapping multicall/execute.
    pub deadline: Option<U256>,
    /// Where the output goes (`to` / `recipient`).
    pub recipient: Address,
}

impl SwapCall {
    /// `amount_in` of the JSON schema: the fixed input for exact-in, else `None`.
    pub fn amount_in(&self) -> Option<U256> {
        (self.exact == Exact::In).then_some(self.amount)
    }

    /// `amount_out` of the JSON schema: the fixed output for exact-out, else `None`.
    pub fn amount_out(&self) -> Option<U256> {
        (self.exact == Exact::Out).then_some(self.amount)
    }

    /// `amount_out_min`: the limit of an exact-in swap.
    pub fn amount_out_min(&self) -> Option<U256> {
        (self.exact == Exact::In).then_some(self.limit)
    }

    /// `amount_in_max`: the limit of an exact-out swap.
    pub fn amount_in_max(&self) -> Option<U256> {
        (self.exact == Exact::Out).then_some(self.limit)
    }
}

/// Why a transaction produced no swap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// The selector is none of the routers' functions.
    #[error("unknown selector 0x{}", hex4(.0))]
    UnknownSelector([u8; 4]),
    /// A router function that does not swap (liquidity, permit, sweep, ...), or a multicall /
    /// execute that contains no swap.
    #[error("router call {0} is not a swap")]
    NotASwap(&'static str),
    /// Calldata that does not match its selector's ABI.
    #[error("malformed calldata: {0}")]
    Calldata(#[from] CalldataError),
}

fn hex4(b: &[u8; 4]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Selectors the decoder understands.
pub mod selector {
    /// V2 `swapExactTokensForTokens(uint256,uint256,address[],address,uint256)`.
    pub const SWAP_EXACT_TOKENS_FOR_TOKENS: [u8; 4] = [0x38, 0xed, 0x17, 0x39];
    /// V2 `swapTokensForExactTokens(uint256,uint256,address[],address,uint256)`.
    pub const SWAP_TOKENS_FOR_EXACT_TOKENS: [u8; 4] = [0x88, 0x03, 0xdb, 0xee];
    /// V2 `swapExactETHForTokens(uint256,address[],address,uint256)`.
    pub const SWAP_EXACT_ETH_FOR_TOKENS: [u8; 4] = [0x7f, 0xf3, 0x6a, 0xb5];
    /// V2 `swapTokensForExactETH(uint256,uint256,address[],address,uint256)`.
    pub const SWAP_TOKENS_FOR_EXACT_ETH: [u8; 4] = [0x4a, 0x25, 0xd9, 0x4a];
    /// V2 `swapExactTokensForETH(uint256,uint256,address[],address,uint256)`.
    pub const SWAP_EXACT_TOKENS_FOR_ETH: [u8; 4] = [0x18, 0xcb, 0xaf, 0xe5];
    /// V2 `swapETHForExactTokens(uint256,address[],address,uint256)`.
    pub const SWAP_ETH_FOR_EXACT_TOKENS: [u8; 4] = [0xfb, 0x3b, 0xdb, 0x41];
    /// V2 `swapExactTokensForTokensSupportingFeeOnTransferTokens(...)`.
    pub const SWAP_EXACT_TOKENS_FOR_TOKENS_FOT: [u8; 4] = [0x5c, 0x11, 0xd7, 0x95];
    /// V2 `swapExactETHForTokensSupportingFeeOnTransferTokens(...)`.
    pub const SWAP_EXACT_ETH_FOR_TOKENS_FOT: [u8; 4] = [0xb6, 0xf9, 0xde, 0x95];
    /// V2 `swapExactTokensForETHSupportingFeeOnTransferTokens(...)`.
    pub const SWAP_EXACT_TOKENS_FOR_ETH_FOT: [u8; 4] = [0x79, 0x1a, 0xc9, 0x47];
    /// SwapRouter02 `swapExactTokensForTokens(uint256,uint256,address[],address)`.
    pub const SWAP_EXACT_TOKENS_FOR_TOKENS_02: [u8; 4] = [0x47, 0x2b, 0x43, 0xf3];
    /// SwapRouter02 `swapTokensForExactTokens(uint256,uint256,address[],address)`.
    pub const SWAP_TOKENS_FOR_EXACT_TOKENS_02: [u8; 4] = [0x42, 0x71, 0x2a, 0x67];
    /// SwapRouter `exactInputSingle` (struct with deadline).
    pub const EXACT_INPUT_SINGLE: [u8; 4] = [0x41, 0x4b, 0xf3, 0x89];
    /// SwapRouter `exactInput` (struct with deadline).
    pub const EXACT_INPUT: [u8; 4] = [0xc0, 0x4b, 0x8d, 0x59];
    /// SwapRouter `exactOutputSingle` (struct with deadline).
    pub const EXACT_OUTPUT_SINGLE: [u8; 4] = [0xdb, 0x3e, 0x21, 0x98];
    /// SwapRouter `exactOutput` (struct with deadline).
    pub const EXACT_OUTPUT: [u8; 4] = [0xf2, 0x8c, 0x04, 0x98];
    /// SwapRouter02 `exactInputSingle` (no deadline).
    pub const EXACT_INPUT_SINGLE_02: [u8; 4] = [0x04, 0xe4, 0x5a, 0xaf];
    /// SwapRouter02 `exactInput` (no deadline).
    pub const EXACT_INPUT_02: [u8; 4] = [0xb8, 0x58, 0x18, 0x3f];
    /// SwapRouter02 `exactOutputSingle` (no deadline).
    pub const EXACT_OUTPUT_SINGLE_02: [u8; 4] = [0x50, 0x23, 0xb4, 0xdf];
    /// SwapRouter02 `exactOutput` (no deadline).
    pub const EXACT_OUTPUT_02: [u8; 4] = [0x09, 0xb8, 0x13, 0x46];
    /// `multicall(bytes[])`.
    pub const MULTICALL: [u8; 4] = [0xac, 0x96, 0x50, 0xd8];
    /// `multicall(uint256 deadline, bytes[])`.
    pub const MULTICALL_DEADLINE: [u8; 4] = [0x5a, 0xe4, 0x01, 0xdc];
    /// `multicall(bytes32 previousBlockhash, bytes[])`.
    pub const MULTICALL_BLOCKHASH: [u8; 4] = [0x1f, 0x04, 0x64, 0xd1];
    /// UniversalRouter `execute(bytes,bytes[])`.
    pub const EXECUTE: [u8; 4] = [0x24, 0x85, 0x6b, 0xc3];
    /// UniversalRouter `execute(bytes,bytes[],uint256)`.
    pub const EXECUTE_DEADLINE: [u8; 4] = [0x35, 0x93, 0x56, 0x4c];
    /// UniversalRouter `executeSigned(bytes,bytes[],bytes32,bytes32,bool,bytes32,bytes,uint256)`.
    pub const EXECUTE_SIGNED: [u8; 4] = [0x44, 0x68, 0x4d, 0xc3];
}

/// Router selectors that do not swap, with their names: a call to one is
/// [`SkipReason::NotASwap`] rather than an unknown selector.
pub const NON_SWAP_SELECTORS: [([u8; 4], &str); 37] = [
    ([0xe8, 0xe3, 0x37, 0x00], "addLiquidity"),
    ([0xf3, 0x05, 0xd7, 0x19], "addLiquidityETH"),
    ([0xba, 0xa2, 0xab, 0xde], "removeLiquidity"),
    ([0x02, 0x75, 0x1c, 0xec], "removeLiquidityETH"),
    ([0xaf, 0x29, 0x79, 0xeb], "removeLiquidityETHSupportingFeeOnTransferTokens"),
    ([0xde, 0xd9, 0x38, 0x2a], "removeLiquidityETHWithPermit"),
    ([0x5b, 0x0d, 0x59, 0x84], "removeLiquidityETHWithPermitSupportingFeeOnTransferTokens"),
    ([0x21, 0x95, 0x99, 0x5c], "removeLiquidityWithPermit"),
    ([0x57, 0x1a, 0xc8, 0xb0], "approveMax"),
    ([0xca, 0xb3, 0x72, 0xce], "approveMaxMinusOne"),
    ([0x63, 0x9d, 0x71, 0xa9], "approveZeroThenMax"),
    ([0xab, 0x3f, 0xdd, 0x50], "approveZeroThenMaxMinusOne"),
    ([0xb3, 0xa2, 0xaf, 0x13], "callPositionManager"),
    ([0xde, 0xe0, 0x0f, 0x35], "getApprovalType"),
    ([0xf1, 0x00, 0xb2, 0x05], "increaseLiquidity"),
    ([0x11, 0xed, 0x56, 0xc9], "mint"),
    ([0xf2, 0xd5, 0xd5, 0x6b], "pull"),
    ([0x12, 0x21, 0x0e, 0x8a], "refundETH"),
    ([0xf3, 0x99, 0x5c, 0x67], "selfPermit"),
    ([0x46, 0x59, 0xa4, 0x94], "selfPermitAllowed"),
    ([0xa4, 0xa7, 0x8f, 0x0c], "selfPermitAllowedIfNecessary"),
    ([0xc2, 0xe3, 0x14, 0x0a], "selfPermitIfNecessary"),
    ([0xdf, 0x2a, 0xb5, 0xbb], "sweepToken"),
    ([0xe9, 0x0a, 0x18, 0x2f], "sweepToken"),
    ([0x30, 0x68, 0xc5, 0x54], "sweepTokenWithFee"),
    ([0xe0, 0xe1, 0x89, 0xa0], "sweepTokenWithFee"),
    ([0xfa, 0x46, 0x1e, 0x33], "uniswapV3SwapCallback"),
    ([0x49, 0x40, 0x4b, 0x7c], "unwrapWETH9"),
    ([0x49, 0x61, 0x69, 0x97], "unwrapWETH9"),
    ([0x9b, 0x2c, 0x0a, 0x37], "unwrapWETH9WithFee"),
    ([0xd4, 0xef, 0x38, 0xde], "unwrapWETH9WithFee"),
    ([0x1c, 0x58, 0xdb, 0x4f], "wrapETH"),
    ([0x91, 0xdd, 0x73, 0x46], "unlockCallback"),
    // Router02 read-only helpers that are sometimes sent as transactions by mistake.
    ([0xd0, 0x6c, 0xa6, 0x1f], "getAmountsOut"),
    ([0x1f, 0x00, 0xca, 0x74], "getAmountsIn"),
    ([0xad, 0x5c, 0x46, 0x48], "WETH"),
    ([0xc4, 0x5a, 0x01, 0x55], "factory"),
];

/// Decodes the swaps of router calldata `input` sent with native `value`, appending one
/// [`SwapCall`] per swap leg to `out` (which is not cleared). Returns how many were appended
/// (at least one on success).
///
/// # Errors
/// A [`SkipReason`]: unknown selector, a router call that is not a swap, or malformed calldata.
/// On error `out` may hold legs appended before the defect was found; callers truncate.
pub fn decode_swaps(input: &[u8], value: U256, out: &mut Vec<SwapCall>) -> Result<usize, SkipReason> {
    if input.len() < 4 {
        // A plain transfer (or a fallback call): nothing to decode.
        return Err(SkipReason::NotASwap("no calldata"));
    }
    let start = out.len();
    decode_call(input, value, None, 0, out)?;
    let n = out.len() - start;
    if n == 0 {
        let (sel, _) = split_selector(input)?;
        return Err(SkipReason::NotASwap(match sel {
            selector::EXECUTE | selector::EXECUTE_DEADLINE | selector::EXECUTE_SIGNED => "execute",
            _ => "multicall",
        }));
    }
    Ok(n)
}

fn decode_call(
    input: &[u8],
    value: U256,
    outer_deadline: Option<U256>,
    depth: u32,
    out: &mut Vec<SwapCall>,
) -> Result<(), SkipReason> {
    use selector as s;
    let (sel, w) = split_selector(input)?;
    let leg = |method, exact, args: V2Args| SwapCall {
        protocol: Protocol::UniswapV2,
        method,
        exact,
        path: args.path,
        amount: args.amount,
        limit: args.limit,
        deadline: args.deadline.or(outer_deadline),
        recipient: args.to,
    };
    match sel {
        s::SWAP_EXACT_TOKENS_FOR_TOKENS => out.push(leg(Method::SwapExactTokensForTokens, Exact::In, v2_five(&w)?)),
        s::SWAP_TOKENS_FOR_EXACT_TOKENS => out.push(leg(Method::SwapTokensForExactTokens, Exact::Out, v2_five(&w)?)),
        s::SWAP_TOKENS_FOR_EXACT_ETH => out.push(leg(Method::SwapTokensForExactEth, Exact::Out, v2_five(&w)?)),
        s::SWAP_EXACT_TOKENS_FOR_ETH => out.push(leg(Method::SwapExactTokensForEth, Exact::In, v2_five(&w)?)),
        s::SWAP_EXACT_TOKENS_FOR_TOKENS_FOT => {
            out.push(leg(Method::SwapExactTokensForTokensFot, Exact::In, v2_five(&w)?));
        }
        s::SWAP_EXACT_TOKENS_FOR_ETH_FOT => out.push(leg(Method::SwapExactTokensForEthFot, Exact::In, v2_five(&w)?)),
        s::SWAP_EXACT_ETH_FOR_TOKENS => {
            out.push(leg(Method::SwapExactEthForTokens, Exact::In, v2_eth(&w, value, Exact::In)?))
        }
        s::SWAP_ETH_FOR_EXACT_TOKENS => {
            out.push(leg(Method::SwapEthForExactTokens, Exact::Out, v2_eth(&w, value, Exact::Out)?))
        }
        s::SWAP_EXACT_ETH_FOR_TOKENS_FOT => {
            out.push(leg(Method::SwapExactEthForTokensFot, Exact::In, v2_eth(&w, value, Exact::In)?));
        }
        s::SWAP_EXACT_TOKENS_FOR_TOKENS_02 => {
            out.push(leg(Method::SwapExactTokensForTokens02, Exact::In, v2_four(&w)?))
        }
        s::SWAP_TOKENS_FOR_EXACT_TOKENS_02 => {
            out.push(leg(Method::SwapTokensForExactTokens02, Exact::Out, v2_four(&w)?));
        }
        s::EXACT_INPUT_SINGLE => out.push(v3_single(&w, true, Exact::In, outer_deadline)?),
        s::EXACT_INPUT_SINGLE_02 => out.push(v3_single(&w, false, Exact::In, outer_deadline)?),
        s::EXACT_OUTPUT_SINGLE => out.push(v3_single(&w, true, Exact::Out, outer_deadline)?),
        s::EXACT_OUTPUT_SINGLE_02 => out.push(v3_single(&w, false, Exact::Out, outer_deadline)?),
        s::EXACT_INPUT => out.push(v3_multi(&w, true, Exact::In, outer_deadline)?),
        s::EXACT_INPUT_02 => out.push(v3_multi(&w, false, Exact::In, outer_deadline)?),
        s::EXACT_OUTPUT => out.push(v3_multi(&w, true, Exact::Out, outer_deadline)?),
        s::EXACT_OUTPUT_02 => out.push(v3_multi(&w, false, Exact::Out, outer_deadline)?),
        s::MULTICALL | s::MULTICALL_DEADLINE | s::MULTICALL_BLOCKHASH => {
            if depth >= MAX_NESTING {
                return Err(CalldataError::TooDeep.into());
            }
            let (data_arg, deadline) = match sel {
                s::MULTICALL => (0, outer_deadline),
                s::MULTICALL_DEADLINE => (1, Some(w.u256(0, "multicall.deadline")?)),
                _ => {
                    w.word(0, "multicall.previousBlockhash")?;
                    (1, outer_deadline)
                }
            };
            let (n, items) = w.array(data_arg, "multicall.data")?;
            for k in 0..n {
                let call = items.dyn_bytes(k, "multicall.data[k]")?;
                match decode_call(call, value, deadline, depth + 1, out) {
                    Ok(()) | Err(SkipReason::NotASwap(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        s::EXECUTE | s::EXECUTE_DEADLINE | s::EXECUTE_SIGNED => {
            let deadline = match sel {
                s::EXECUTE => outer_deadline,
                s::EXECUTE_DEADLINE => Some(w.u256(2, "execute.deadline")?),
                _ => Some(w.u256(7, "executeSigned.deadline")?),
            };
            universal_router(&w, deadline, out)?;
        }
        _ => {
            return Err(match NON_SWAP_SELECTORS.iter().find(|(k, _)| *k == sel) {
                Some((_, name)) => SkipReason::NotASwap(name),
                None => SkipReason::UnknownSelector(sel),
            });
        }
    }
    Ok(())
}

struct V2Args {
    amount: U256,
    limit: U256,
    path: Path,
    to: Address,
    deadline: Option<U256>,
}

fn address_path(w: &Words<'_>, i: usize, what: &'static str) -> Result<Path, CalldataError> {
    let (n, items) = w.array(i, what)?;
    if n > MAX_PATH_TOKENS {
        return Err(CalldataError::BadPath("too many tokens"));
    }
    let mut p = Path::default();
    for k in 0..n {
        p.push(items.address(k, what)?, 0)?;
    }
    p.check()?;
    Ok(p)
}

/// `(uint256 amount, uint256 limit, address[] path, address to, uint256 deadline)`.
fn v2_five(w: &Words<'_>) -> Result<V2Args, CalldataError> {
    Ok(V2Args {
        amount: w.u256(0, "amount")?,
        limit: w.u256(1, "limit")?,
        path: address_path(w, 2, "path")?,
        to: w.address(3, "to")?,
        deadline: Some(w.u256(4, "deadline")?),
    })
}

/// SwapRouter02: `(uint256 amount, uint256 limit, address[] path, address to)`.
fn v2_four(w: &Words<'_>) -> Result<V2Args, CalldataError> {
    Ok(V2Args {
        amount: w.u256(0, "amount")?,
        limit: w.u256(1, "limit")?,
        path: address_path(w, 2, "path")?,
        to: w.address(3, "to")?,
        deadline: None,
    })
}

/// ETH in: `(uint256 amountOutMin | amountOut, address[] path, address to, uint256 deadline)`;
/// the transaction's value is the fixed input (exact-in) or the input maximum (exact-out).
fn v2_eth(w: &Words<'_>, value: U256, exact: Exact) -> Result<V2Args, CalldataError> {
    let stated = w.u256(0, "amount")?;
    let (amount, limit) = match exact {
        Exact::In => (value, stated),
        Exact::Out => (stated, value),
    };
    Ok(V2Args {
        amount,
        limit,
        path: address_path(w, 1, "path")?,
        to: w.address(2, "to")?,
        deadline: Some(w.u256(3, "deadline")?),
    })
}

/// `exactInputSingle` / `exactOutputSingle`: a static struct inline in the head:
/// `(tokenIn, tokenOut, fee, recipient, [deadline,] amount, limit, sqrtPriceLimitX96)`.
fn v3_single(w: &Words<'_>, with_deadline: bool, exact: Exact, outer: Option<U256>) -> Result<SwapCall, CalldataError> {
    let d = usize::from(with_deadline);
    let token_in = w.address(0, "tokenIn")?;
    let token_out = w.address(1, "tokenOut")?;
    let fee = w.uint(2, 24, "fee")? as u32;
    let recipient = w.address(3, "recipient")?;
    let deadline = if with_deadline { Some(w.u256(4, "deadline")?) } else { outer };
    let amount = w.u256(4 + d, "amount")?;
    let limit = w.u256(5 + d, "limit")?;
    w.uint(6 + d, 160, "sqrtPriceLimitX96")?;
    let mut path = Path::default();
    path.push(token_in, 0)?;
    path.push(token_out, fee)?;
    let method = match exact {
        Exact::In => Method::ExactInputSingle,
        Exact::Out => Method::ExactOutputSingle,
    };
    Ok(SwapCall { protocol: Protocol::UniswapV3, method, exact, path, amount, limit, deadline, recipient })
}

/// `exactInput` / `exactOutput`: a dynamic struct behind an offset:
/// `(bytes path, recipient, [deadline,] amount, limit)`.
fn v3_multi(w: &Words<'_>, with_deadline: bool, exact: Exact, outer: Option<U256>) -> Result<SwapCall, CalldataError> {
    let d = usize::from(with_deadline);
    let t = w.tail(0, "params")?;
    let raw = t.dyn_bytes(0, "path")?;
    let recipient = t.address(1, "recipient")?;
    let deadline = if with_deadline { Some(t.u256(2, "deadline")?) } else { outer };
    let amount = t.u256(2 + d, "amount")?;
    let limit = t.u256(3 + d, "limit")?;
    let path = Path::from_v3_packed(raw, exact == Exact::Out)?;
    let method = match exact {
        Exact::In => Method::ExactInput,
        Exact::Out => Method::ExactOutput,
    };
    Ok(SwapCall { protocol: Protocol::UniswapV3, method, exact, path, amount, limit, deadline, recipient })
}

/// UniversalRouter command codes (2.x; `COMMAND_TYPE_MASK` 0x3f).
mod command {
    pub const TYPE_MASK: u8 = 0x3f;
    pub const V3_SWAP_EXACT_IN: u8 = 0x00;
    pub const V3_SWAP_EXACT_OUT: u8 = 0x01;
    pub const V2_SWAP_EXACT_IN: u8 = 0x08;
    pub const V2_SWAP_EXACT_OUT: u8 = 0x09;
}

/// `execute(bytes commands, bytes[] inputs, ...)`: one input per command byte; the swap
/// commands' inputs are `(address recipient, uint256 amount, uint256 limit, path, bool
/// payerIsUser)` with `path` an `address[]` (V2) or packed `bytes` (V3).
fn universal_router(w: &Words<'_>, deadline: Option<U256>, out: &mut Vec<SwapCall>) -> Result<(), CalldataError> {
    let commands = w.dyn_bytes(0, "execute.commands")?;
    let (n, inputs) = w.array(1, "execute.inputs")?;
    if n != commands.len() {
        return Err(CalldataError::BadValue("execute: commands and inputs differ in length"));
    }
    for (k, &cmd) in commands.iter().enumerate() {
        let kind = cmd & command::TYPE_MASK;
        if !matches!(
            kind,
            command::V3_SWAP_EXACT_IN
                | command::V3_SWAP_EXACT_OUT
                | command::V2_SWAP_EXACT_IN
                | command::V2_SWAP_EXACT_OUT
        ) {
            continue;
        }
        let input = Words::new(inputs.dyn_bytes(k, "execute.inputs[k]")?);
        let recipient = input.address(0, "recipient")?;
        let amount = input.u256(1, "amount")?;
        let limit = input.u256(2, "limit")?;
        input.bool(4, "payerIsUser")?;
        let (protocol, method, exact, path) = match kind {
            command::V3_SWAP_EXACT_IN => {
                let p = Path::from_v3_packed(input.dyn_bytes(3, "path")?, false)?;
                (Protocol::UniswapV3, Method::UrV3SwapExactIn, Exact::In, p)
            }
            command::V3_SWAP_EXACT_OUT => {
                let p = Path::from_v3_packed(input.dyn_bytes(3, "path")?, true)?;
                (Protocol::UniswapV3, Method::UrV3SwapExactOut, Exact::Out, p)
            }
            command::V2_SWAP_EXACT_IN => {
                (Protocol::UniswapV2, Method::UrV2SwapExactIn, Exact::In, address_path(&input, 3, "path")?)
            }
            _ => (Protocol::UniswapV2, Method::UrV2SwapExactOut, Exact::Out, address_path(&input, 3, "path")?),
        };
        out.push(SwapCall { protocol, method, exact, path, amount, limit, deadline, recipient });
    }
    Ok(())
}
