//! Ed25519 signing with keys from PKCS#8 PEM files, as Binance issues them.
//!
//! Binance signs the same payloads with Ed25519 as with HMAC (the query string for REST, the
//! sorted parameters for the WebSocket API) and sends the 64-byte signature in standard base64.
//! Ed25519 is also the only key type `session.logon` accepts, which is what lets a connection
//! authenticate once and send orders unsigned afterwards.

use std::fmt;

use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use ed25519_dalek::{Signer as _, SigningKey};

use super::hmac_sha256::base64_into;
use super::{AuthError, KeySource, SecretString};

/// Length of an Ed25519 signature in padded standard base64.
pub const ED25519_BASE64_LEN: usize = 88;

/// An Ed25519 private key, ready to sign.
///
/// Why a wrapper: the key is zeroed on drop (`ed25519-dalek`'s `SigningKey` does that itself),
/// it prints as `***`, and it can only be built from a [`KeySource`] or explicit bytes, so it
/// never passes through config or logs.
pub struct Ed25519Signer {
    key: SigningKey,
}

impl Ed25519Signer {
    /// Parses a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`), the format Binance's key
    /// generator writes.
    ///
    /// # Errors
    /// [`AuthError::InvalidEd25519Key`] if the text is not such a key; the error does not carry
    /// the text.
    pub fn from_pkcs8_pem(pem: &SecretString) -> Result<Self, AuthError> {
        Self::parse_pem(pem, "the given PEM text")
    }

    /// Loads and parses the PKCS#8 PEM key from the environment variable or file `source` names.
    ///
    /// # Errors
    /// Those of [`KeySource::load`], and [`AuthError::InvalidEd25519Key`] naming the source.
    pub fn from_key_source(source: &KeySource) -> Result<Self, AuthError> {
        let pem = source.load()?;
        Self::parse_pem(&pem, &source.describe())
    }

    fn parse_pem(pem: &SecretString, origin: &str) -> Result<Self, AuthError> {
        // The decoder's own error is dropped: it describes DER structure, and a stray excerpt of
        // key material is not worth the risk.
        SigningKey::from_pkcs8_pem(pem.expose())
            .map(|key| Self { key })
            .map_err(|_| AuthError::InvalidEd25519Key { origin: origin.to_owned() })
    }

    /// Builds a signer from the raw 32-byte secret seed (RFC 8032's "secret key").
    #[must_use]
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self { key: SigningKey::from_bytes(seed) }
    }

    /// The public key, to register with the venue or to check against its `session.status`.
    #[must_use]
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The raw 64-byte signature of `message`.
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// Signs `message` into `out` as padded standard base64 (Binance's encoding) and returns the
    /// text. No allocation.
    pub fn sign_base64_into<'a>(&self, message: &[u8], out: &'a mut [u8; ED25519_BASE64_LEN]) -> &'a str {
        base64_into(&self.sign(message), out)
    }
}

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ed25519Signer(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_pem_is_an_error_that_does_not_echo_the_text() {
        let bogus =
            SecretString::new("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----".into());
        let err = Ed25519Signer::from_pkcs8_pem(&bogus).unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains("c2VjcmV0LWJ5dGVz"), "{msg}");
        assert!(matches!(err, AuthError::InvalidEd25519Key { .. }));
    }

    #[test]
    fn base64_signature_has_binance_length_and_debug_is_redacted() {
        let signer = Ed25519Signer::from_seed(&[7u8; 32]);
        let mut out = [0u8; ED25519_BASE64_LEN];
        let sig = signer.sign_base64_into(b"apiKey=k&timestamp=1", &mut out);
        assert_eq!(sig.len(), ED25519_BASE64_LEN);
        assert!(sig.ends_with("=="));
        assert_eq!(format!("{signer:?}"), "Ed25519Signer(***)");
    }
}
