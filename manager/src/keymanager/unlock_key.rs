//! [`UnlockKey`]: the cluster key that wraps each manager's raft data key when the swarm is
//! autolocked, written `SWMKEY-1-<32 random bytes, base64>` as SwarmKit writes it. It is
//! random, so it is used as a key directly (no password hashing needed).

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use super::DataKey;

const PREFIX: &str = "SWMKEY-1-";

/// Not an unlock key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid unlock key: expected SWMKEY-1-<43 base64 characters> (see `swarmctl cluster unlock-key`)"
)]
pub struct UnlockKeyError;

/// The autolock key.
#[derive(Clone, PartialEq, Eq)]
pub struct UnlockKey([u8; 32]);

impl std::fmt::Debug for UnlockKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnlockKey(<redacted>)")
    }
}

impl UnlockKey {
    pub fn generate() -> Self {
        Self(*DataKey::generate().as_bytes())
    }

    /// # Errors
    /// [`UnlockKeyError`] for anything but `SWMKEY-1-` and 32 bytes of base64.
    pub fn parse(s: &str) -> Result<Self, UnlockKeyError> {
        let body = s.trim().strip_prefix(PREFIX).ok_or(UnlockKeyError)?;
        let bytes = STANDARD_NO_PAD.decode(body).map_err(|_| UnlockKeyError)?;
        Ok(Self(bytes.try_into().map_err(|_| UnlockKeyError)?))
    }

    /// The key that wraps data keys.
    pub fn wrapping_key(&self) -> DataKey {
        DataKey::from_bytes(self.0)
    }
}

impl std::fmt::Display for UnlockKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}{}", STANDARD_NO_PAD.encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_malformed_ones_are_refused() {
        let k = UnlockKey::generate();
        let s = k.to_string();
        assert!(s.starts_with("SWMKEY-1-") && s.len() == 9 + 43, "{s}");
        assert_eq!(UnlockKey::parse(&s).unwrap(), k);
        for bad in [
            "",
            "SWMKEY-1-",
            "SWMKEY-2-abc",
            &s[..s.len() - 1],
            &s.replace("SWMKEY", "X"),
        ] {
            assert_eq!(UnlockKey::parse(bad), Err(UnlockKeyError), "{bad}");
        }
    }
}
