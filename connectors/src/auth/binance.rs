//! Binance request signing (spot and USD-M share the rules) and the WebSocket API's
//! `session.logon`.
//!
//! - REST: the signature covers the query string (and form body) exactly as sent, already
//!   percent-encoded; `signature` is appended as the last parameter.
//! - WebSocket API: the signature covers every parameter except `signature`, sorted by name,
//!   written `name=value` joined by `&`, values as raw UTF-8 (no percent-encoding).
//! - HMAC-SHA256 keys give lowercase hex; Ed25519 keys give standard base64 of the same payload.
//! - `session.logon` (Ed25519 keys only) binds the key to the connection; afterwards requests
//!   such as `order.place` omit `apiKey` and `signature` but still carry `timestamp`.
//!
//! A `session.logon` request, as the docs print it:
//! ```json
//! {"id":"c174a2b1-3f51-4580-b200-8528bd237cb7","method":"session.logon",
//!  "params":{"apiKey":"vmPUZE6m...","signature":"1cf54395...","timestamp":1649729878532}}
//! ```

use std::fmt;

use zeroize::Zeroizing;

use super::ed25519::ED25519_BASE64_LEN;
use super::json::{push_str_literal, push_u64};
use super::{AuthError, Ed25519Signer, HmacSigner, KeySource, SecretString};

/// The parameter that carries the signature; never part of what is signed.
pub const SIGNATURE_PARAM: &str = "signature";
/// The WebSocket API method that authenticates a connection.
pub const SESSION_LOGON: &str = "session.logon";

/// A Binance API key's signing half: HMAC-SHA256 or Ed25519 (closed set, so an enum).
///
/// Why one type: order code signs "with the account's key" and should not care which kind it is;
/// only `session.logon` needs Ed25519 and asks for [`Ed25519Signer`] directly.
#[derive(Debug)]
pub enum BinanceKey {
    /// An HMAC key: per-request signatures in lowercase hex.
    Hmac(HmacSigner),
    /// An Ed25519 key: per-request signatures in base64, and `session.logon`.
    Ed25519(Ed25519Signer),
}

impl BinanceKey {
    /// An HMAC key whose secret comes from `source`.
    ///
    /// # Errors
    /// Those of [`KeySource::load`].
    pub fn hmac_from(source: &KeySource) -> Result<Self, AuthError> {
        Ok(Self::Hmac(HmacSigner::new(&source.load()?)))
    }

    /// An Ed25519 key whose PKCS#8 PEM comes from `source`.
    ///
    /// # Errors
    /// Those of [`Ed25519Signer::from_key_source`].
    pub fn ed25519_from(source: &KeySource) -> Result<Self, AuthError> {
        Ok(Self::Ed25519(Ed25519Signer::from_key_source(source)?))
    }

    /// Signs a payload (a REST query string, or a WebSocket API payload from
    /// [`ws_signature_payload`]) in the encoding the key type calls for. No allocation.
    #[must_use]
    pub fn sign(&self, payload: &[u8]) -> BinanceSignature {
        let mut sig = BinanceSignature { buf: [0u8; ED25519_BASE64_LEN], len: 0 };
        let len = match self {
            Self::Hmac(signer) => {
                let mut hex = [0u8; super::HEX_SIG_LEN];
                let text = signer.sign_hex_into(&[payload], &mut hex);
                sig.buf[..text.len()].copy_from_slice(text.as_bytes());
                text.len()
            }
            Self::Ed25519(signer) => {
                let mut b64 = [0u8; ED25519_BASE64_LEN];
                let text = signer.sign_base64_into(payload, &mut b64);
                sig.buf[..text.len()].copy_from_slice(text.as_bytes());
                text.len()
            }
        };
        sig.len = len;
        sig
    }
}

/// A Binance signature held by value: 64 hex digits (HMAC) or 88 base64 characters (Ed25519).
///
/// Signatures are not secret (they travel in the request), so this prints as itself.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BinanceSignature {
    buf: [u8; ED25519_BASE64_LEN],
    len: usize,
}

impl BinanceSignature {
    /// The signature as it goes on the wire (`&signature=` in REST, `"signature"` in the WS API).
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Debug for BinanceSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for BinanceSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Signs a REST query string (or `application/x-www-form-urlencoded` body) exactly as it will be
/// sent; the caller appends `&signature=<result>`.
#[must_use]
pub fn rest_signature(key: &BinanceKey, query: &str) -> BinanceSignature {
    key.sign(query.as_bytes())
}

/// Writes the WebSocket API signature payload for `params` into `out` (cleared first): sorted by
/// name in place, `name=value` joined by `&`. Sorting the caller's slice avoids allocating.
///
/// # Errors
/// [`AuthError::SignatureParamGiven`] if `signature` is among them, [`AuthError::BadParamName`]
/// for an empty name or one containing `=` or `&`, [`AuthError::DuplicateParam`] for a name
/// given twice. `out` is left empty on error.
pub fn ws_signature_payload(params: &mut [(&str, &str)], out: &mut String) -> Result<(), AuthError> {
    out.clear();
    params.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut previous: Option<&str> = None;
    for &(name, _) in params.iter() {
        if name == SIGNATURE_PARAM {
            return Err(AuthError::SignatureParamGiven);
        }
        if name.is_empty() || name.contains(['=', '&']) {
            return Err(AuthError::BadParamName { name: name.to_owned() });
        }
        if previous == Some(name) {
            return Err(AuthError::DuplicateParam { name: name.to_owned() });
        }
        previous = Some(name);
    }
    for (i, &(name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    Ok(())
}

/// Builds a `session.logon` request: `apiKey`, optional `recvWindow` and `timestamp`, signed
/// with the Ed25519 key (the only kind Binance accepts for it).
///
/// `id` is the caller's request id, echoed in the response; `timestamp_ms` is the caller's clock
/// reading (plus its estimated offset to the venue), in milliseconds. The frame contains the API
/// key, so it comes back in zeroizing memory.
#[must_use]
pub fn session_logon_request(
    id: &str,
    api_key: &SecretString,
    key: &Ed25519Signer,
    timestamp_ms: u64,
    recv_window_ms: Option<u32>,
) -> Zeroizing<String> {
    // Room for the worst-case escaping, so the buffer never reallocates and leaves an unzeroed
    // copy of the key behind.
    let capacity = 192 + 6 * (id.len() + api_key.len());
    // Sorted by name: apiKey < recvWindow < timestamp.
    let mut payload = Zeroizing::new(String::with_capacity(capacity));
    payload.push_str("apiKey=");
    payload.push_str(api_key.expose());
    if let Some(window) = recv_window_ms {
        payload.push_str("&recvWindow=");
        push_u64(&mut payload, u64::from(window));
    }
    payload.push_str("&timestamp=");
    push_u64(&mut payload, timestamp_ms);
    let mut sig = [0u8; ED25519_BASE64_LEN];
    let signature = key.sign_base64_into(payload.as_bytes(), &mut sig);

    let mut frame = Zeroizing::new(String::with_capacity(capacity));
    frame.push_str("{\"id\":");
    push_str_literal(&mut frame, id);
    frame.push_str(",\"method\":\"");
    frame.push_str(SESSION_LOGON);
    frame.push_str("\",\"params\":{\"apiKey\":");
    push_str_literal(&mut frame, api_key.expose());
    if let Some(window) = recv_window_ms {
        frame.push_str(",\"recvWindow\":");
        push_u64(&mut frame, u64::from(window));
    }
    frame.push_str(",\"signature\":");
    push_str_literal(&mut frame, signature);
    frame.push_str(",\"timestamp\":");
    push_u64(&mut frame, timestamp_ms);
    frame.push_str("}}");
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_rejects_signature_duplicates_and_bad_names() {
        let mut out = String::new();
        let mut with_sig = [("symbol", "BTCUSDT"), ("signature", "x")];
        assert!(matches!(ws_signature_payload(&mut with_sig, &mut out), Err(AuthError::SignatureParamGiven)));
        let mut dup = [("b", "1"), ("a", "2"), ("b", "3")];
        assert!(matches!(ws_signature_payload(&mut dup, &mut out), Err(AuthError::DuplicateParam { .. })));
        let mut bad = [("a=b", "1")];
        assert!(matches!(ws_signature_payload(&mut bad, &mut out), Err(AuthError::BadParamName { .. })));
        let mut empty = [("", "1")];
        assert!(matches!(ws_signature_payload(&mut empty, &mut out), Err(AuthError::BadParamName { .. })));
        assert!(out.is_empty());
    }

    #[test]
    fn hmac_and_ed25519_signatures_have_their_encodings() {
        let hmac = BinanceKey::Hmac(HmacSigner::from_key_bytes(b"secret"));
        let sig = rest_signature(&hmac, "symbol=BTCUSDT&timestamp=1");
        assert_eq!(sig.as_str().len(), 64);
        assert!(sig.as_str().bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        let ed = BinanceKey::Ed25519(Ed25519Signer::from_seed(&[1u8; 32]));
        assert_eq!(rest_signature(&ed, "symbol=BTCUSDT&timestamp=1").as_str().len(), 88);
    }
}
