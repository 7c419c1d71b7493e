//! `eth_subscription` notification frames → pending transactions, heads and hashes.
//!
//! A node pushes, per subscription, frames such as (anvil 1.7.1, trimmed):
//!
//! ```text
//! {"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x62..","result":
//!   {"type":"0x2","nonce":"0x9","to":"0xdc64..","value":"0x0","input":"0x38ed1739..",
//!    "hash":"0xa52a..","from":"0xf39f..",...}}}
//! ```
//!
//! with `result` a full transaction (`newPendingTransactions` with `true`), a bare hash
//! (`newPendingTransactions` without), or a block header (`newHeads`). [`parse_notification`]
//! reads one frame with the crate's zero-allocation JSON scanner; the transaction's `input`
//! stays hex, borrowed from the frame, until [`decode_hex_into`] writes it into a reused
//! buffer. No I/O, no clock.

use alloy_primitives::{Address, B256, U256};

use crate::feed::DecodeError;
use crate::json::{Members, Value};

/// Why a frame is not a usable notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not JSON, or not the JSON-RPC shape.
    #[error(transparent)]
    Json(#[from] DecodeError),
    /// A hex field (`0x...`) that is not valid hex or too long for its type.
    #[error("field {0:?} is not valid hex of its type")]
    BadHex(&'static str),
}

/// A full pending transaction, borrowing its calldata hex from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingTx<'a> {
    /// Transaction hash.
    pub hash: B256,
    /// Sender.
    pub from: Address,
    /// Recipient; `None` for a contract creation.
    pub to: Option<Address>,
    /// Sender nonce.
    pub nonce: u64,
    /// Native value sent, in wei.
    pub value: U256,
    /// The calldata as hex digits, without the `0x` prefix.
    pub input_hex: &'a [u8],
}

/// A new block header (the fields the engine uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Parent hash: a head whose parent is not the previous head is a reorg.
    pub parent_hash: B256,
    /// Block timestamp (unix seconds).
    pub timestamp: u64,
}

/// What one websocket frame from an Ethereum node holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notification<'a> {
    /// A full pending transaction.
    PendingTx(PendingTx<'a>),
    /// A pending transaction hash only (fetch it with `eth_getTransactionByHash`).
    PendingHash(B256),
    /// A new head.
    Head(Head),
    /// A subscription notification of another shape (a log, say): the raw `result` object.
    OtherSubscription(&'a [u8]),
    /// A JSON-RPC request (a client's frame, such as a recorded `eth_subscribe`): no data in it.
    Request {
        /// The method named.
        method: &'a [u8],
    },
    /// A JSON-RPC response (`id` present): the raw `id` and `result` (or `None` with an `error`).
    Response {
        /// The raw id (a JSON number or string, as written).
        id: &'a [u8],
        /// The raw `result` value, when the call succeeded.
        result: Option<Value<'a>>,
    },
}

/// Parses one frame from the node.
///
/// # Errors
/// [`FrameError`] when the frame is not JSON-RPC JSON or a field is not of its type.
pub fn parse_notification(frame: &[u8]) -> Result<Notification<'_>, FrameError> {
    let mut method: Option<&[u8]> = None;
    let mut params: Option<Value<'_>> = None;
    let mut id: Option<&[u8]> = None;
    let mut result: Option<Value<'_>> = None;
    let mut has_error = false;
    for m in Members::new(frame) {
        let (k, v) = m?;
        match k {
            b"method" => method = Some(v.str("method")?),
            b"params" => params = Some(v),
            b"id" => {
                id = Some(match v {
                    Value::Num(n) | Value::Str(n) => n,
                    Value::Null => b"null",
                    _ => return Err(DecodeError::WrongType("id").into()),
                })
            }
            b"result" => result = Some(v),
            b"error" => has_error = true,
            _ => {}
        }
    }
    if let (Some(id), None) = (id, method) {
        if result.is_none() && !has_error {
            return Err(DecodeError::MissingField("result").into());
        }
        return Ok(Notification::Response { id, result });
    }
    match method {
        None => return Err(DecodeError::MissingField("method").into()),
        Some(m) if m != b"eth_subscription" => return Ok(Notification::Request { method: m }),
        Some(_) => {}
    }
    let params = match params.ok_or(DecodeError::MissingField("params"))? {
        Value::Object(o) => o,
        _ => return Err(DecodeError::WrongType("params").into()),
    };
    let mut res = None;
    for m in Members::new(params) {
        let (k, v) = m?;
        if k == b"result" {
            res = Some(v);
        }
    }
    match res.ok_or(DecodeError::MissingField("result"))? {
        Value::Str(h) => Ok(Notification::PendingHash(b256(h, "result")?)),
        Value::Object(o) => parse_object(o),
        _ => Err(DecodeError::WrongType("result").into()),
    }
}

/// A transaction or a header object (the `result` of a notification, or of
/// `eth_getTransactionByHash` / `eth_getBlockByNumber`), told apart by their fields.
///
/// # Errors
/// [`FrameError`] when the object is not JSON or a field is not of its type.
pub fn parse_object(o: &[u8]) -> Result<Notification<'_>, FrameError> {
    let (mut hash, mut from, mut to, mut nonce, mut value, mut input) = (None, None, None, None, None, None);
    let (mut number, mut parent, mut timestamp) = (None, None, None);
    for m in Members::new(o) {
        let (k, v) = m?;
        match k {
            b"hash" => hash = Some(b256(v.str("hash")?, "hash")?),
            b"from" => from = Some(address(v.str("from")?, "from")?),
            b"to" => {
                to = Some(match v {
                    Value::Null => None,
                    v => Some(address(v.str("to")?, "to")?),
                })
            }
            b"nonce" => nonce = Some(v.str("nonce")?),
            b"value" => value = Some(quantity_u256(v.str("value")?, "value")?),
            b"input" | b"data" => input = Some(hex_body(v.str("input")?, "input")?),
            b"number" => number = Some(quantity_u64(v.str("number")?, "number")?),
            b"parentHash" => parent = Some(b256(v.str("parentHash")?, "parentHash")?),
            b"timestamp" => timestamp = Some(quantity_u64(v.str("timestamp")?, "timestamp")?),
            _ => {}
        }
    }
    let hash = hash.ok_or(DecodeError::MissingField("hash"))?;
    if let (Some(number), Some(parent_hash)) = (number, parent) {
        let timestamp = timestamp.ok_or(DecodeError::MissingField("timestamp"))?;
        return Ok(Notification::Head(Head { number, hash, parent_hash, timestamp }));
    }
    match (from, input) {
        (Some(from), Some(input_hex)) => Ok(Notification::PendingTx(PendingTx {
            hash,
            from,
            to: to.flatten(),
            // Block-header nonces are 8-byte hashes; a transaction's is a quantity.
            nonce: quantity_u64(nonce.ok_or(DecodeError::MissingField("nonce"))?, "nonce")?,
            value: value.unwrap_or_default(),
            input_hex,
        })),
        _ => Ok(Notification::OtherSubscription(o)),
    }
}

/// The digits of a `0x`-prefixed hex string.
fn hex_body<'a>(s: &'a [u8], field: &'static str) -> Result<&'a [u8], FrameError> {
    match s {
        [b'0', b'x' | b'X', rest @ ..] => Ok(rest),
        _ => Err(FrameError::BadHex(field)),
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex digits (no prefix, even length) into `out`, which is cleared first.
///
/// # Errors
/// [`FrameError::BadHex`] naming `field` on an odd length or a non-hex digit.
pub fn decode_hex_into(hex: &[u8], out: &mut Vec<u8>, field: &'static str) -> Result<(), FrameError> {
    out.clear();
    if !hex.len().is_multiple_of(2) {
        return Err(FrameError::BadHex(field));
    }
    out.reserve(hex.len() / 2);
    for pair in hex.chunks_exact(2) {
        let hi = nibble(pair[0]).ok_or(FrameError::BadHex(field))?;
        let lo = nibble(pair[1]).ok_or(FrameError::BadHex(field))?;
        out.push(hi << 4 | lo);
    }
    Ok(())
}

/// Fixed-size hex data (`0x` + exactly `2 N` digits).
fn fixed<const N: usize>(s: &[u8], field: &'static str) -> Result<[u8; N], FrameError> {
    let body = hex_body(s, field)?;
    if body.len() != 2 * N {
        return Err(FrameError::BadHex(field));
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(body.chunks_exact(2)) {
        let hi = nibble(pair[0]).ok_or(FrameError::BadHex(field))?;
        let lo = nibble(pair[1]).ok_or(FrameError::BadHex(field))?;
        *o = hi << 4 | lo;
    }
    Ok(out)
}

/// A `0x`-prefixed 20-byte address.
///
/// # Errors
/// [`FrameError::BadHex`] when not exactly 40 hex digits after `0x`.
pub fn address(s: &[u8], field: &'static str) -> Result<Address, FrameError> {
    Ok(Address::from(fixed::<20>(s, field)?))
}

/// A `0x`-prefixed 32-byte hash.
///
/// # Errors
/// [`FrameError::BadHex`] when not exactly 64 hex digits after `0x`.
pub fn b256(s: &[u8], field: &'static str) -> Result<B256, FrameError> {
    Ok(B256::from(fixed::<32>(s, field)?))
}

/// A JSON-RPC quantity (`0x` + 1..=64 hex digits) as `U256`.
///
/// # Errors
/// [`FrameError::BadHex`] when empty, not hex, or more than 256 bits.
pub fn quantity_u256(s: &[u8], field: &'static str) -> Result<U256, FrameError> {
    let body = hex_body(s, field)?;
    if body.is_empty() || body.len() > 64 {
        return Err(FrameError::BadHex(field));
    }
    let mut be = [0u8; 32];
    // Fill from the right, two digits per byte.
    for (i, &c) in body.iter().rev().enumerate() {
        let n = nibble(c).ok_or(FrameError::BadHex(field))?;
        be[31 - i / 2] |= if i % 2 == 0 { n } else { n << 4 };
    }
    Ok(U256::from_be_bytes(be))
}

/// A JSON-RPC quantity that fits 64 bits.
///
/// # Errors
/// [`FrameError::BadHex`] when empty, not hex, or more than 64 bits.
pub fn quantity_u64(s: &[u8], field: &'static str) -> Result<u64, FrameError> {
    let v = quantity_u256(s, field)?;
    u64::try_from(v).map_err(|_| FrameError::BadHex(field))
}
