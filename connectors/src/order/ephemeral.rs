//! Throw-away credentials for a run against the embedded simulator.
//!
//! A demo run needs an account at each simulated venue, but no real secret belongs in it: the
//! engine draws a random API key and secret (an Ed25519 key for Binance spot, whose WebSocket
//! API logs in with one) from the OS's random source, registers them with the simulator, and
//! forgets them when the run ends. They live only in memory, zeroed on drop.

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use zeroize::Zeroizing;

use super::{Credentials, OrderError, SecretKey};
use crate::auth::SecretString;
use crate::venue::Protocol;

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Random bytes from the OS (`/dev/urandom`): keys must not be predictable even in a demo whose
/// simulator listens on a local port.
fn random_bytes<const N: usize>() -> Result<Zeroizing<[u8; N]>, OrderError> {
    use std::io::Read as _;
    let mut out = Zeroizing::new([0u8; N]);
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut out[..]))
        .map_err(|e| OrderError::Http(format!("reading /dev/urandom: {e}")))?;
    Ok(out)
}

/// A random alphanumeric string of `len` characters (the shape of the venues' API keys).
fn random_token(len: usize) -> Result<SecretString, OrderError> {
    let bytes = random_bytes::<64>()?;
    let mut s = String::with_capacity(len);
    for &b in bytes.iter().cycle().take(len) {
        // 62 symbols from a byte: the slight bias does not matter for a throw-away key.
        s.push(char::from(ALPHANUMERIC[usize::from(b) % ALPHANUMERIC.len()]));
    }
    Ok(SecretString::new(s))
}

/// Fresh random credentials of the kind `protocol`'s order entry logs in with: an Ed25519
/// PKCS#8 PEM key for Binance spot (`session.logon`), an HMAC secret otherwise, and a
/// passphrase for OKX.
///
/// # Errors
/// [`OrderError::Http`] when the OS random source cannot be read.
pub fn ephemeral_credentials(protocol: Protocol) -> Result<Credentials, OrderError> {
    let key = match protocol {
        Protocol::BinanceSpot => {
            let seed = random_bytes::<32>()?;
            let pem = SigningKey::from_bytes(&seed)
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| OrderError::Malformed { request: "ed25519 key", detail: e.to_string() })?;
            SecretKey::Ed25519(SecretString::new(pem.as_str().to_owned()))
        }
        _ => SecretKey::Hmac(random_token(64)?),
    };
    let passphrase = if protocol == Protocol::Okx { Some(random_token(16)?) } else { None };
    Ok(Credentials { api_key: random_token(64)?, key, passphrase })
}

/// A second copy of `c`, for the simulator's account book while the session keeps the first
/// (credentials are deliberately not `Clone`: copies are made only where named).
pub fn duplicate(c: &Credentials) -> Credentials {
    Credentials {
        api_key: c.api_key.clone(),
        key: match &c.key {
            SecretKey::Hmac(s) => SecretKey::Hmac(s.clone()),
            SecretKey::Ed25519(s) => SecretKey::Ed25519(s.clone()),
        },
        passphrase: c.passphrase.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Ed25519Signer;

    #[test]
    fn binance_spot_gets_a_parseable_ed25519_key_and_the_others_hmac() {
        let c = ephemeral_credentials(Protocol::BinanceSpot).unwrap();
        let SecretKey::Ed25519(pem) = &c.key else { panic!("expected Ed25519") };
        assert!(pem.expose().starts_with("-----BEGIN PRIVATE KEY-----"));
        Ed25519Signer::from_pkcs8_pem(pem).unwrap();
        assert!(c.passphrase.is_none());
        for p in [Protocol::BinanceUsdm, Protocol::BybitLinear, Protocol::BybitSpot] {
            let c = ephemeral_credentials(p).unwrap();
            let SecretKey::Hmac(s) = &c.key else { panic!("expected HMAC for {p:?}") };
            assert_eq!(s.len(), 64);
            assert!(s.expose().bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(c.api_key.len(), 64);
        }
        let okx = ephemeral_credentials(Protocol::Okx).unwrap();
        assert_eq!(okx.passphrase.as_ref().map(SecretString::len), Some(16));
    }

    #[test]
    fn two_draws_differ_and_a_duplicate_is_equal() {
        let (a, b) = (ephemeral_credentials(Protocol::Okx).unwrap(), ephemeral_credentials(Protocol::Okx).unwrap());
        assert_ne!(a.api_key.expose(), b.api_key.expose());
        let d = duplicate(&a);
        assert_eq!(d.api_key.expose(), a.api_key.expose());
        let (SecretKey::Hmac(x), SecretKey::Hmac(y)) = (&a.key, &d.key) else { panic!() };
        assert_eq!(x.expose(), y.expose());
        assert_eq!(format!("{d:?}").matches("***").count(), 3, "{d:?}");
    }
}
