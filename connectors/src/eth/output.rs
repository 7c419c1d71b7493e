//! The `pending_swap` JSON line, and the pure core of `crossbar decode --venue ethereum`.
//!
//! One object per decoded swap leg, keys in this order:
//!
//! ```text
//! {"type":"pending_swap","tx_hash","from","nonce","router","protocol":"uniswap-v2"|"uniswap-v3",
//!  "method","exact":"in"|"out","path":[token,...],"pools":[pair,...],"amount_in","amount_out",
//!  "amount_out_min","amount_in_max","price_impact_bps","would_revert","seen_ms"}
//! ```
//!
//! Addresses and hashes are lowercase `0x` hex, amounts decimal strings of base units, `nonce`,
//! `price_impact_bps` and `seen_ms` JSON integers. For an exact-in swap `amount_in` comes from
//! the calldata and `amount_out` is the prediction; for exact-out the reverse. `null` where a
//! field does not apply or is not known: without a prediction (offline decoding, V3 legs, pools
//! not loaded) `pools`, the predicted amount, `price_impact_bps` and `would_revert` are `null`.
//! A predicted amount is also `null` when the swap reverts before it can be computed (an
//! invalid path, a pair without liquidity).

use std::fmt::Write as _;

use alloy_primitives::{Address, B256, U256};

use super::abi::CalldataError;
use super::router::{Exact, SkipReason, SwapCall, decode_swaps};
use super::tx::{FrameError, Notification, PendingTx, decode_hex_into, parse_notification};
use super::v2::{Prediction, RevertReason};

/// Appends `0x` and lowercase hex of `bytes`.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push_str("0x");
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
}

fn push_addr(out: &mut String, a: &Address) {
    out.push('"');
    push_hex(out, a.as_slice());
    out.push('"');
}

fn push_amount(out: &mut String, v: Option<U256>) {
    match v {
        Some(v) => {
            let _ = write!(out, "\"{v}\"");
        }
        None => out.push_str("null"),
    }
}

/// Who sent a pending transaction, to whom, and when the engine saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxMeta {
    /// Transaction hash.
    pub hash: B256,
    /// Sender.
    pub from: Address,
    /// Sender nonce.
    pub nonce: u64,
    /// The router it was sent to.
    pub router: Address,
    /// When the engine received it (unix ms), if live.
    pub seen_ms: Option<u64>,
}

impl TxMeta {
    /// The metadata of `tx` (`router` is `to`, zero for a contract creation).
    pub fn of(tx: &PendingTx<'_>, seen_ms: Option<u64>) -> Self {
        Self { hash: tx.hash, from: tx.from, nonce: tx.nonce, router: tx.to.unwrap_or_default(), seen_ms }
    }
}

/// Appends one `pending_swap` line (newline included) for `swap` of `meta`, with `prediction`
/// when the legs' pools were priced.
pub fn write_pending_swap(out: &mut String, meta: &TxMeta, swap: &SwapCall, prediction: Option<&Prediction>) {
    out.push_str("{\"type\":\"pending_swap\",\"tx_hash\":\"");
    push_hex(out, meta.hash.as_slice());
    out.push_str("\",\"from\":");
    push_addr(out, &meta.from);
    let _ = write!(out, ",\"nonce\":{},\"router\":", meta.nonce);
    push_addr(out, &meta.router);
    let _ = write!(
        out,
        ",\"protocol\":\"{}\",\"method\":\"{}\",\"exact\":\"{}\",\"path\":[",
        swap.protocol.as_str(),
        swap.method.as_str(),
        swap.exact.as_str()
    );
    for (i, t) in swap.path.tokens().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_addr(out, t);
    }
    out.push_str("],\"pools\":");
    match prediction {
        Some(p) => {
            out.push('[');
            for (i, a) in p.pools().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_addr(out, a);
            }
            out.push(']');
        }
        None => out.push_str("null"),
    }
    // A predicted amount is meaningful unless the route failed before computing it.
    let predicted = prediction.filter(|p| !matches!(p.revert, Some(RevertReason::Pair(_) | RevertReason::InvalidPath)));
    let (amount_in, amount_out) = match swap.exact {
        Exact::In => (Some(swap.amount), predicted.map(Prediction::amount_out)),
        Exact::Out => (predicted.map(Prediction::amount_in), Some(swap.amount)),
    };
    out.push_str(",\"amount_in\":");
    push_amount(out, amount_in);
    out.push_str(",\"amount_out\":");
    push_amount(out, amount_out);
    out.push_str(",\"amount_out_min\":");
    push_amount(out, swap.amount_out_min());
    out.push_str(",\"amount_in_max\":");
    push_amount(out, swap.amount_in_max());
    match prediction {
        Some(p) => {
            let _ = write!(out, ",\"price_impact_bps\":{},\"would_revert\":{}", p.price_impact_bps, p.would_revert());
        }
        None => out.push_str(",\"price_impact_bps\":null,\"would_revert\":null"),
    }
    match meta.seen_ms {
        Some(ms) => {
            let _ = write!(out, ",\"seen_ms\":{ms}}}");
        }
        None => out.push_str(",\"seen_ms\":null}"),
    }
    out.push('\n');
}

/// Why `crossbar decode --venue ethereum` reports a line as malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeLineError {
    /// Not a JSON-RPC frame, or a field not of its type.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A router swap selector whose calldata does not match its ABI.
    #[error("malformed calldata: {0}")]
    Calldata(#[from] CalldataError),
}

/// Decodes one `eth_subscription` notification frame (one line of `crossbar decode --venue
/// ethereum`) and appends one `pending_swap` line per swap leg to `out`, with the
/// pool-dependent fields `null` (see the [module documentation](self)). Returns the number of
/// lines appended: 0 for a valid frame without a swap (a hash-only or head notification, a
/// subscribe reply, a transaction that is not a router swap). Transactions are decoded by
/// selector whatever their `to`, since an offline file has no router list.
///
/// # Errors
/// [`DecodeLineError::Frame`] when the frame is not a JSON-RPC message or a field is not of its
/// type, [`DecodeLineError::Calldata`] when a swap selector's calldata is malformed; nothing
/// is appended then.
pub fn decode_notification_line(frame: &[u8], out: &mut String) -> Result<usize, DecodeLineError> {
    let Notification::PendingTx(tx) = parse_notification(frame)? else {
        return Ok(0);
    };
    let mut input = Vec::new();
    decode_hex_into(tx.input_hex, &mut input, "input")?;
    let mut swaps = Vec::new();
    match decode_swaps(&input, tx.value, &mut swaps) {
        Ok(_) => {}
        Err(SkipReason::Calldata(e)) => return Err(e.into()),
        Err(SkipReason::NotASwap(_) | SkipReason::UnknownSelector(_)) => return Ok(0),
    }
    let meta = TxMeta::of(&tx, None);
    for s in &swaps {
        write_pending_swap(out, &meta, s, None);
    }
    Ok(swaps.len())
}
