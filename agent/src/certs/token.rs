//! Join tokens in SwarmKit's format: `SWMTKN-1-<digest>-<secret>`.
//!
//! `<digest>` is the SHA-256 of the cluster's root of trust in base 36, zero-padded to 50
//! characters, so a joining node can pin the root it is given; `<secret>` is 16 random bytes
//! in base 36, padded to 25. The root of trust digested is the root CA certificate (PEM).

use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "SWMTKN";
const VERSION: &str = "1";

/// A parsed join token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    pub digest: String,
    pub secret: String,
}

/// A string that is not a join token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid join token {0:?}: expected SWMTKN-1-<50 base-36 characters>-<25 base-36 characters>"
)]
pub struct TokenError(pub String);

/// The digest a join token carries for the root CA certificate `root_pem`.
pub fn root_digest(root_pem: &[u8]) -> String {
    base36_padded(&Sha256::digest(root_pem), 50)
}

impl JoinToken {
    /// A new token for the root CA certificate `root_pem` with a fresh random secret.
    pub fn generate(root_pem: &[u8]) -> Self {
        Self {
            digest: root_digest(root_pem),
            secret: new_secret(&mut rand::rng()),
        }
    }

    /// The same root digest with a fresh secret (token rotation).
    pub fn rotated(&self) -> Self {
        self.rotated_with(&mut rand::rng())
    }

    /// [`rotated`](Self::rotated) drawing the secret from `rng` (a CSPRNG outside tests).
    pub fn rotated_with(&self, rng: &mut impl RngCore) -> Self {
        Self {
            digest: self.digest.clone(),
            secret: new_secret(rng),
        }
    }

    pub fn parse(s: &str) -> Result<Self, TokenError> {
        let err = || TokenError(s.to_string());
        let parts: Vec<&str> = s.split('-').collect();
        let [prefix, version, digest, secret] = parts.as_slice() else {
            return Err(err());
        };
        let b36 = |p: &str, len: usize| {
            p.len() == len
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        };
        if *prefix != PREFIX || *version != VERSION || !b36(digest, 50) || !b36(secret, 25) {
            return Err(err());
        }
        Ok(Self {
            digest: digest.to_string(),
            secret: secret.to_string(),
        })
    }
}

impl std::fmt::Display for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}-{VERSION}-{}-{}", self.digest, self.secret)
    }
}

fn new_secret(rng: &mut impl RngCore) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    base36_padded(&bytes, 25)
}

/// Big-endian bytes as a base-36 number, zero-padded on the left to `width` digits.
fn base36_padded(bytes: &[u8], width: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n: Vec<u8> = bytes.to_vec();
    let mut out = Vec::new();
    while n.iter().any(|&b| b != 0) {
        let mut rem: u32 = 0;
        for b in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 36) as u8;
            rem = cur % 36;
        }
        out.push(DIGITS[rem as usize]);
    }
    while out.len() < width {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).expect("base-36 digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_matches_known_values() {
        assert_eq!(base36_padded(&[0], 3), "000");
        assert_eq!(base36_padded(&[35], 1), "z");
        assert_eq!(base36_padded(&[1, 0], 1), "74"); // 256 = 7*36 + 4
    }

    #[test]
    fn tokens_have_swarmkit_shape_and_round_trip() {
        let t = JoinToken::generate(b"cluster-id");
        let s = t.to_string();
        assert!(s.starts_with("SWMTKN-1-"));
        assert_eq!(s.len(), "SWMTKN-1-".len() + 50 + 1 + 25);
        assert_eq!(JoinToken::parse(&s).unwrap(), t);
        let r = t.rotated();
        assert_eq!(r.digest, t.digest);
        assert_ne!(r.secret, t.secret);
        assert!(JoinToken::parse("SWMTKN-1-abc-def").is_err());
        assert!(JoinToken::parse(&s.replace("SWMTKN", "XXX")).is_err());
    }
}
