//! Secrets in memory that is zeroed on drop, and where config says to load them from.
//!
//! Config never holds a secret itself (no keys in TOML): it holds a [`KeySource`] naming an
//! environment variable or a key file, and the engine loads the secret at start. Both types are
//! safe to log: a [`SecretString`] prints and serializes as `***`, a [`KeySource`] only names
//! where the secret lives, and every [`AuthError`] names the variable or the file, not the bytes.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::AuthError;

/// What a secret prints as, wherever it is formatted or serialized.
pub const REDACTED: &str = "***";

/// An API key, API secret, passphrase or PEM private key, zeroed when dropped.
///
/// Why a type and not a `String`: a plain `String` ends up in a `{:?}` of some config struct or
/// an error message sooner or later. This one prints `***` under `Debug`, `Display` and
/// `Serialize`, deliberately has no `Deserialize` (secrets do not come from config files), and
/// the only way to the bytes is the explicitly named [`SecretString::expose`].
#[derive(Clone)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps a value the caller already holds (tests, or a key handed over by another loader).
    /// The `String` is moved in, so no unzeroed copy is left behind by this call.
    #[must_use]
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret itself, for signing or for writing into a login frame. Keep the borrow short
    /// and do not copy it into a plain `String`.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// Reads the secret from environment variable `var`, with surrounding whitespace trimmed.
    ///
    /// # Errors
    /// [`AuthError::EnvMissing`], [`AuthError::EnvNotUnicode`] or [`AuthError::EnvEmpty`], each
    /// naming `var` only.
    pub fn from_env(var: &str) -> Result<Self, AuthError> {
        let raw = match std::env::var(var) {
            Ok(v) => Zeroizing::new(v),
            Err(std::env::VarError::NotPresent) => return Err(AuthError::EnvMissing { var: var.to_owned() }),
            // The error carries the raw value; it is dropped here, never formatted.
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(AuthError::EnvNotUnicode { var: var.to_owned() });
            }
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(AuthError::EnvEmpty { var: var.to_owned() });
        }
        Ok(Self::new(trimmed.to_owned()))
    }

    /// Reads the secret from the file at `path`, with surrounding whitespace (the usual trailing
    /// newline) trimmed. The bytes read are zeroed once copied.
    ///
    /// # Errors
    /// [`AuthError::FileRead`], [`AuthError::FileNotUtf8`] or [`AuthError::FileEmpty`], each
    /// naming `path` only.
    pub fn from_file(path: &Path) -> Result<Self, AuthError> {
        let bytes = Zeroizing::new(
            std::fs::read(path).map_err(|source| AuthError::FileRead { path: path.to_owned(), source })?,
        );
        let text = std::str::from_utf8(&bytes).map_err(|_| AuthError::FileNotUtf8 { path: path.to_owned() })?;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(AuthError::FileEmpty { path: path.to_owned() });
        }
        Ok(Self::new(trimmed.to_owned()))
    }

    /// The length in bytes, for sizing buffers without exposing the value.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty (never true for a loaded one).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for SecretString {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// Where one secret comes from: exactly one of an environment variable or a key file.
///
/// This is what config holds instead of the secret, e.g. in TOML
/// `api_secret = { env = "BINANCE_API_SECRET" }` or `ed25519_key = { file = "/etc/crossbar/key.pem" }`.
/// It is safe to print and to serialize into a run report: it says where, not what.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySource {
    /// Name of the environment variable holding the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Path of a file holding the secret (surrounding whitespace is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

/// Which one place a validated [`KeySource`] points at.
enum Origin<'a> {
    Env(&'a str),
    File(&'a Path),
}

impl KeySource {
    /// A source reading environment variable `var`.
    #[must_use]
    pub fn env(var: impl Into<String>) -> Self {
        Self { env: Some(var.into()), file: None }
    }

    /// A source reading the key file at `path`.
    #[must_use]
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self { env: None, file: Some(path.into()) }
    }

    /// Checks that exactly one place is named, so config errors surface at load, not at the
    /// first order.
    ///
    /// # Errors
    /// [`AuthError::NoSource`] or [`AuthError::AmbiguousSource`].
    pub fn validate(&self) -> Result<(), AuthError> {
        self.origin().map(|_| ())
    }

    fn origin(&self) -> Result<Origin<'_>, AuthError> {
        match (&self.env, &self.file) {
            (Some(var), None) => Ok(Origin::Env(var)),
            (None, Some(path)) => Ok(Origin::File(path)),
            (None, None) => Err(AuthError::NoSource),
            (Some(var), Some(path)) => Err(AuthError::AmbiguousSource { var: var.clone(), path: path.clone() }),
        }
    }

    /// Loads the secret from the one place named.
    ///
    /// # Errors
    /// Those of [`KeySource::validate`], [`SecretString::from_env`] and
    /// [`SecretString::from_file`].
    pub fn load(&self) -> Result<SecretString, AuthError> {
        match self.origin()? {
            Origin::Env(var) => SecretString::from_env(var),
            Origin::File(path) => SecretString::from_file(path),
        }
    }

    /// A human description of the place, for error messages: ``env var `X` `` or
    /// ``file `/path` ``. Never includes the secret.
    #[must_use]
    pub fn describe(&self) -> String {
        match self.origin() {
            Ok(Origin::Env(var)) => format!("env var `{var}`"),
            Ok(Origin::File(path)) => format!("file `{}`", path.display()),
            Err(_) => "an invalid key source".to_owned(),
        }
    }
}
