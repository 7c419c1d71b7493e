//! OKX v5 signing: REST request signatures and the private websocket's `login` message.
//!
//! - REST: base64 HMAC-SHA256 over `timestamp + METHOD + requestPath + body`; `timestamp` is the
//!   ISO-8601 text sent in `OK-ACCESS-TIMESTAMP` (e.g. `2020-12-08T09:08:57.715Z`), `METHOD`
//!   upper case, `requestPath` includes the query string for GET
//!   (`/api/v5/account/balance?ccy=BTC`), `body` is the JSON body or empty.
//! - Websocket `login`: the same with `timestamp` in Unix seconds, `GET` and
//!   `/users/self/verify` and no body, sent as
//!   `{"op":"login","args":[{"apiKey":"..","passphrase":"..","timestamp":"1538054050","sign":".."}]}`.
//!   After it, the private connection takes orders unsigned.

use zeroize::Zeroizing;

use super::json::{U64_DIGITS, push_str_literal, u64_digits};
use super::{HMAC_BASE64_LEN, HmacSigner, SecretString};

/// The fixed method and path the websocket `login` signature covers after the timestamp.
pub const WS_LOGIN_PREHASH_SUFFIX: &str = "GET/users/self/verify";
/// REST header carrying the API key.
pub const HEADER_API_KEY: &str = "OK-ACCESS-KEY";
/// REST header carrying the signature.
pub const HEADER_SIGN: &str = "OK-ACCESS-SIGN";
/// REST header carrying the ISO-8601 timestamp.
pub const HEADER_TIMESTAMP: &str = "OK-ACCESS-TIMESTAMP";
/// REST header carrying the passphrase.
pub const HEADER_PASSPHRASE: &str = "OK-ACCESS-PASSPHRASE";

/// An HTTP method, upper case as OKX's prehash wants it; an enum so a lower-case `"get"` cannot
/// produce a signature the venue rejects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMethod {
    /// `GET`
    Get,
    /// `POST`
    Post,
}

impl HttpMethod {
    /// The method as it appears in the prehash and on the request line.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// Signs a REST request into `out` as base64 and returns it: HMAC over
/// `timestamp + method + request_path + body`. No allocation.
///
/// `timestamp` is the exact `OK-ACCESS-TIMESTAMP` header value; `body` is empty for GET.
pub fn rest_signature_into<'a>(
    signer: &HmacSigner,
    timestamp: &str,
    method: HttpMethod,
    request_path: &str,
    body: &str,
    out: &'a mut [u8; HMAC_BASE64_LEN],
) -> &'a str {
    let parts: [&[u8]; 4] =
        [timestamp.as_bytes(), method.as_str().as_bytes(), request_path.as_bytes(), body.as_bytes()];
    signer.sign_base64_into(&parts, out)
}

/// Signs the websocket `login` prehash `timestamp_s + "GET" + "/users/self/verify"` into `out`
/// as base64 and returns it.
pub fn login_signature_into<'a>(signer: &HmacSigner, timestamp_s: u64, out: &'a mut [u8; HMAC_BASE64_LEN]) -> &'a str {
    let mut ts = [0u8; U64_DIGITS];
    signer.sign_base64_into(&[u64_digits(timestamp_s, &mut ts), WS_LOGIN_PREHASH_SUFFIX.as_bytes()], out)
}

/// Builds the websocket `login` frame for `timestamp_s` (Unix seconds, the caller's clock plus
/// venue offset; OKX rejects it 30 s later).
///
/// The frame holds the API key and the passphrase, so it comes back in zeroizing memory.
#[must_use]
pub fn login_message(
    api_key: &SecretString,
    passphrase: &SecretString,
    signer: &HmacSigner,
    timestamp_s: u64,
) -> Zeroizing<String> {
    let mut sig = [0u8; HMAC_BASE64_LEN];
    let sign = login_signature_into(signer, timestamp_s, &mut sig);
    let mut ts = [0u8; U64_DIGITS];
    let timestamp = std::str::from_utf8(u64_digits(timestamp_s, &mut ts)).unwrap_or_default();
    // Worst-case escaping reserved up front so no secret is left behind by a reallocation.
    let mut frame = Zeroizing::new(String::with_capacity(192 + 6 * (api_key.len() + passphrase.len())));
    frame.push_str("{\"op\":\"login\",\"args\":[{\"apiKey\":");
    push_str_literal(&mut frame, api_key.expose());
    frame.push_str(",\"passphrase\":");
    push_str_literal(&mut frame, passphrase.expose());
    frame.push_str(",\"timestamp\":");
    push_str_literal(&mut frame, timestamp);
    frame.push_str(",\"sign\":");
    push_str_literal(&mut frame, sign);
    frame.push_str("}]}");
    frame
}
