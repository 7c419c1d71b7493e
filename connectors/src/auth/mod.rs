//! Request signing and credential handling for the venues' private APIs.
//!
//! Everything here is pure: no sockets, no clock. Callers pass the timestamp they read from
//! their own injected clock and write the returned bytes to the wire themselves, so the same code
//! signs live orders, simulator orders and test vectors.
//!
//! - [`secret`]: [`SecretString`] and [`KeySource`] hold API keys, secrets, passphrases and
//!   private keys in memory that is zeroed on drop, print as `***`, and load from an environment
//!   variable or a key file named in config. Errors name the variable or file, never the content.
//! - [`hmac_sha256`]: [`HmacSigner`], HMAC-SHA256 keyed once, signing into caller-owned buffers
//!   (lowercase hex or base64) without allocating — the per-order path.
//! - [`ed25519`]: [`Ed25519Signer`], Ed25519 from a PKCS#8 PEM key, base64 output.
//! - [`binance`], [`bybit`], [`okx`]: each venue's prehash rules and its connection-login
//!   message (`session.logon`, `auth`, `login`).
//!
//! Venue rules, as their documentation states them:
//!
//! | venue | what is signed | encoding |
//! |---|---|---|
//! | Binance REST | the query string (or form body) exactly as sent | HMAC hex / Ed25519 base64 |
//! | Binance WS API | all params but `signature`, sorted by name, `k=v` joined by `&` | HMAC hex / Ed25519 base64 |
//! | Bybit v5 REST | `timestamp + api_key + recv_window + (query \| body)` | HMAC hex |
//! | Bybit v5 WS `auth` | `"GET/realtime" + expires` | HMAC hex |
//! | OKX v5 REST | `timestamp + METHOD + requestPath + body` | HMAC base64 |
//! | OKX v5 WS `login` | `timestamp + "GET" + "/users/self/verify"` | HMAC base64 |

pub mod binance;
pub mod bybit;
pub mod ed25519;
pub mod hmac_sha256;
mod json;
pub mod okx;
pub mod secret;

pub use ed25519::Ed25519Signer;
pub use hmac_sha256::{HEX_SIG_LEN, HMAC_BASE64_LEN, HmacSigner};
pub use secret::{KeySource, SecretString};

use std::path::PathBuf;

/// Why credentials could not be loaded or a request could not be signed.
///
/// Every variant is a configuration or programming fault, so every one is fatal for the
/// connection that needed it: retrying with the same input gives the same answer. Messages name
/// the environment variable, file or parameter involved and never carry secret content.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The key source names neither an environment variable nor a file.
    #[error("key source names neither `env` nor `file`")]
    NoSource,
    /// The key source names both; which one wins would be a guess, so neither does.
    #[error("key source names both env var `{var}` and file `{path}`: keep exactly one")]
    AmbiguousSource {
        /// The environment variable named.
        var: String,
        /// The file named.
        path: PathBuf,
    },
    /// The environment variable is not set.
    #[error("environment variable `{var}` is not set")]
    EnvMissing {
        /// The variable's name.
        var: String,
    },
    /// The environment variable holds bytes that are not UTF-8.
    #[error("environment variable `{var}` is not valid UTF-8")]
    EnvNotUnicode {
        /// The variable's name.
        var: String,
    },
    /// The environment variable is set but empty (or only whitespace).
    #[error("environment variable `{var}` is empty")]
    EnvEmpty {
        /// The variable's name.
        var: String,
    },
    /// The key file could not be read.
    #[error("cannot read key file `{path}`: {source}")]
    FileRead {
        /// The file's path.
        path: PathBuf,
        /// The operating system's reason (no file content).
        source: std::io::Error,
    },
    /// The key file is not UTF-8 text.
    #[error("key file `{path}` is not valid UTF-8")]
    FileNotUtf8 {
        /// The file's path.
        path: PathBuf,
    },
    /// The key file is empty (or only whitespace).
    #[error("key file `{path}` is empty")]
    FileEmpty {
        /// The file's path.
        path: PathBuf,
    },
    /// The text from `origin` is not a PKCS#8 PEM Ed25519 private key.
    #[error("{origin} does not hold a PKCS#8 PEM Ed25519 private key")]
    InvalidEd25519Key {
        /// Where the text came from, e.g. ``env var `BINANCE_ED25519_KEY` `` (never the text).
        origin: String,
    },
    /// A request parameter name is empty or contains `=` or `&`, so the signed payload would be
    /// ambiguous.
    #[error("request parameter name `{name}` is empty or contains `=` or `&`")]
    BadParamName {
        /// The offending name.
        name: String,
    },
    /// A request parameter appears twice; the venue would see a different payload than we sign.
    #[error("request parameter `{name}` given twice")]
    DuplicateParam {
        /// The repeated name.
        name: String,
    },
    /// `signature` was passed as a parameter; it is computed here, never signed over.
    #[error("`signature` must not be among the parameters to sign")]
    SignatureParamGiven,
}

impl AuthError {
    /// Whether retrying could help. Always `false`: every cause is in config or code, so the
    /// caller should stop the venue and report, not loop.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        false
    }
}
