//! HMAC-SHA256, keyed once, signing into caller-owned buffers.
//!
//! Per-order signing (Binance HMAC keys, Bybit and OKX REST) runs on the order path, so the
//! signer here does no heap allocation per signature: the key's inner and outer pads are hashed
//! once at construction, each signature clones that state (a few hundred bytes on the stack),
//! feeds the payload parts in order — no concatenated prehash string needed — and writes lowercase
//! hex or base64 into a fixed-size array the caller owns.

use std::fmt;

use base64::Engine as _;
use hmac::digest::KeyInit;
use hmac::digest::generic_array::GenericArray;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::SecretString;

/// Length of an HMAC-SHA256 signature in lowercase hex (Binance, Bybit).
pub const HEX_SIG_LEN: usize = 64;
/// Length of an HMAC-SHA256 signature in padded standard base64 (OKX).
pub const HMAC_BASE64_LEN: usize = 44;

/// SHA-256's block size: HMAC keys are padded (or first hashed) to this length.
const BLOCK_LEN: usize = 64;

/// An HMAC-SHA256 key, ready to sign.
///
/// Why keyed once: the key's pads cost two SHA-256 blocks; doing them at start leaves only the
/// payload's blocks per order. The secret itself is copied into a zeroizing buffer only while the
/// pads are computed. Note the limit: the keyed state lives inside the `hmac` crate's type, which
/// (in `hmac` 0.12) does not zero itself on drop; it is key-equivalent, so drop the signer only
/// when the process no longer needs the key and do not clone it around.
#[derive(Clone)]
pub struct HmacSigner {
    keyed: Hmac<Sha256>,
}

impl HmacSigner {
    /// Keys a signer with the secret's UTF-8 bytes, as every venue here uses the secret string
    /// itself (not a decoding of it) as the HMAC key.
    #[must_use]
    pub fn new(secret: &SecretString) -> Self {
        Self::from_key_bytes(secret.expose().as_bytes())
    }

    /// Keys a signer with raw key bytes of any length (RFC 2104: longer than a block is hashed
    /// first, shorter is zero-padded).
    #[must_use]
    pub fn from_key_bytes(key: &[u8]) -> Self {
        let mut block = Zeroizing::new([0u8; BLOCK_LEN]);
        if key.len() > BLOCK_LEN {
            let digest = Sha256::digest(key);
            block[..digest.len()].copy_from_slice(&digest);
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        // Borrowed, not copied: the padded key stays only in the zeroizing block.
        let keyed = <Hmac<Sha256> as KeyInit>::new(GenericArray::from_slice(&block[..]));
        Self { keyed }
    }

    /// The raw 32-byte MAC of the parts fed in order, as if concatenated.
    #[must_use]
    pub fn mac_parts(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Signs the parts (as if concatenated) into `out` as lowercase hex and returns it as text.
    /// No allocation: the order path signs into a buffer it reuses.
    pub fn sign_hex_into<'a>(&self, parts: &[&[u8]], out: &'a mut [u8; HEX_SIG_LEN]) -> &'a str {
        let mac = self.mac_parts(parts);
        hex_lower_into(&mac, out)
    }

    /// Signs the parts (as if concatenated) into `out` as padded standard base64 and returns it
    /// as text. No allocation.
    pub fn sign_base64_into<'a>(&self, parts: &[&[u8]], out: &'a mut [u8; HMAC_BASE64_LEN]) -> &'a str {
        let mac = self.mac_parts(parts);
        base64_into(&mac, out)
    }

    /// Signs one payload and returns the hex signature by value (64 bytes on the stack), for
    /// callers that do not keep a buffer.
    #[must_use]
    pub fn sign_hex(&self, payload: &[u8]) -> HexSignature {
        let mut sig = HexSignature([0u8; HEX_SIG_LEN]);
        self.sign_hex_into(&[payload], &mut sig.0);
        sig
    }
}

impl fmt::Debug for HmacSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSigner(***)")
    }
}

/// A lowercase-hex HMAC-SHA256 signature held by value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HexSignature([u8; HEX_SIG_LEN]);

impl HexSignature {
    /// The 64 hex digits.
    #[must_use]
    pub fn as_str(&self) -> &str {
        ascii_str(&self.0)
    }
}

impl fmt::Debug for HexSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for HexSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes `bytes` as lowercase hex into `out` (which must be exactly twice as long) and returns
/// the text.
pub(crate) fn hex_lower_into<'a>(bytes: &[u8], out: &'a mut [u8]) -> &'a str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    ascii_str(out)
}

/// Writes `bytes` as padded standard base64 into `out`, sized exactly for it, and returns the
/// text.
pub(crate) fn base64_into<'a>(bytes: &[u8], out: &'a mut [u8]) -> &'a str {
    let written = base64::engine::general_purpose::STANDARD.encode_slice(bytes, out).unwrap_or(0);
    ascii_str(&out[..written])
}

/// Views bytes this module wrote (hex digits, base64 alphabet: all ASCII) as text.
fn ascii_str(bytes: &[u8]) -> &str {
    // Only ever called on ASCII written above; the fallback is unreachable but keeps this
    // panic-free.
    std::str::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_short_keys_match_the_hmac_crate_keying() {
        for len in [0usize, 1, 32, 63, 64, 65, 200] {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let ours = HmacSigner::from_key_bytes(&key).mac_parts(&[b"abc", b"", b"def"]);
            let mut theirs = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
            theirs.update(b"abcdef");
            let theirs: [u8; 32] = theirs.finalize().into_bytes().into();
            assert_eq!(ours, theirs, "key length {len}");
        }
    }

    #[test]
    fn hex_and_base64_encodings_have_the_documented_lengths() {
        let signer = HmacSigner::from_key_bytes(b"k");
        let mut hex = [0u8; HEX_SIG_LEN];
        let mut b64 = [0u8; HMAC_BASE64_LEN];
        assert_eq!(signer.sign_hex_into(&[b"x"], &mut hex).len(), HEX_SIG_LEN);
        let b = signer.sign_base64_into(&[b"x"], &mut b64);
        assert_eq!(b.len(), HMAC_BASE64_LEN);
        assert!(b.ends_with('='));
        assert_eq!(signer.sign_hex(b"x").as_str(), std::str::from_utf8(&hex).unwrap());
        assert_eq!(format!("{signer:?}"), "HmacSigner(***)");
    }
}
