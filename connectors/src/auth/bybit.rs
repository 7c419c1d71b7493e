//! Bybit v5 signing: REST request signatures and the private websocket's `auth` message.
//!
//! - REST: lowercase hex HMAC-SHA256 over `timestamp + api_key + recv_window + payload`, where
//!   the payload is the query string (GET, without `?`) or the JSON body (POST) exactly as sent.
//!   The values travel in the `X-BAPI-*` headers below.
//! - Websocket (private streams and the trade stream): hex HMAC-SHA256 over
//!   `"GET/realtime" + expires`, `expires` a future Unix time in milliseconds; sent as
//!   `{"req_id":"10001","op":"auth","args":["api_key",1662350400000,"signature"]}`
//!   (`req_id` optional). After it, the connection takes orders unsigned.

use zeroize::Zeroizing;

use super::json::{U64_DIGITS, push_str_literal, push_u64, u64_digits};
use super::{HEX_SIG_LEN, HmacSigner, SecretString};

/// What the websocket `auth` signature covers, before `expires`.
pub const WS_AUTH_PREFIX: &str = "GET/realtime";
/// REST header carrying the API key.
pub const HEADER_API_KEY: &str = "X-BAPI-API-KEY";
/// REST header carrying the request timestamp (ms).
pub const HEADER_TIMESTAMP: &str = "X-BAPI-TIMESTAMP";
/// REST header carrying the signature.
pub const HEADER_SIGN: &str = "X-BAPI-SIGN";
/// REST header carrying the receive window (ms).
pub const HEADER_RECV_WINDOW: &str = "X-BAPI-RECV-WINDOW";

/// Signs a REST request into `out` as lowercase hex and returns it: HMAC over
/// `timestamp_ms + api_key + recv_window_ms + payload` (decimal integers, no separators).
///
/// `payload` is the query string for GET (without `?`) or the JSON body for POST, byte for byte
/// as sent. No allocation: the prehash is fed to the MAC in pieces.
pub fn rest_signature_into<'a>(
    signer: &HmacSigner,
    timestamp_ms: u64,
    api_key: &SecretString,
    recv_window_ms: u32,
    payload: &str,
    out: &'a mut [u8; HEX_SIG_LEN],
) -> &'a str {
    let mut ts = [0u8; U64_DIGITS];
    let mut window = [0u8; U64_DIGITS];
    let parts: [&[u8]; 4] = [
        u64_digits(timestamp_ms, &mut ts),
        api_key.expose().as_bytes(),
        u64_digits(u64::from(recv_window_ms), &mut window),
        payload.as_bytes(),
    ];
    signer.sign_hex_into(&parts, out)
}

/// Signs the websocket `auth` prehash `"GET/realtime" + expires_ms` into `out` as lowercase hex
/// and returns it.
pub fn ws_auth_signature_into<'a>(signer: &HmacSigner, expires_ms: u64, out: &'a mut [u8; HEX_SIG_LEN]) -> &'a str {
    let mut expires = [0u8; U64_DIGITS];
    signer.sign_hex_into(&[WS_AUTH_PREFIX.as_bytes(), u64_digits(expires_ms, &mut expires)], out)
}

/// Builds the websocket `auth` frame, `{"req_id":..,"op":"auth","args":[api_key, expires,
/// signature]}`, with `req_id` left out when `None`.
///
/// `expires_ms` is the caller's clock reading (plus venue offset) plus a few seconds: Bybit
/// rejects an `expires` already in the past. The frame holds the API key, so it comes back in
/// zeroizing memory.
#[must_use]
pub fn ws_auth_message(
    api_key: &SecretString,
    signer: &HmacSigner,
    expires_ms: u64,
    req_id: Option<&str>,
) -> Zeroizing<String> {
    let mut sig = [0u8; HEX_SIG_LEN];
    let signature = ws_auth_signature_into(signer, expires_ms, &mut sig);
    let id_len = req_id.map_or(0, str::len);
    // Worst-case escaping reserved up front so the key is never left behind by a reallocation.
    let mut frame = Zeroizing::new(String::with_capacity(160 + 6 * (id_len + api_key.len())));
    frame.push('{');
    if let Some(id) = req_id {
        frame.push_str("\"req_id\":");
        push_str_literal(&mut frame, id);
        frame.push(',');
    }
    frame.push_str("\"op\":\"auth\",\"args\":[");
    push_str_literal(&mut frame, api_key.expose());
    frame.push(',');
    push_u64(&mut frame, expires_ms);
    frame.push(',');
    push_str_literal(&mut frame, signature);
    frame.push_str("]}");
    frame
}
