//! [`DataKey`]: a 256-bit key sealing records with ChaCha20-Poly1305 (ring). A sealed record
//! is `version (1) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`. Nonces never repeat under one key:
//! each `DataKey` value draws a random 96-bit base once and numbers its records from it (a
//! counter XORed into the base, shared by its clones), so sealing costs no system call, and
//! two values holding the same key (two processes, a restart) collide only if their random
//! bases come within 2^64 of each other. The caller's associated data (e.g. the record's key) binds a record to its place so
//! records cannot be swapped around undetected.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

const VERSION: u8 = 1;

/// A record failed to open: wrong key, or the bytes were altered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the record does not decrypt with this key (wrong key, or damaged data)")]
pub struct OpenError;

/// A symmetric key for sealing records.
#[derive(Clone)]
pub struct DataKey {
    bytes: [u8; 32],
    sealer: Arc<Sealer>,
}

/// The expanded key and the nonce sequence of one [`DataKey`] value and its clones.
struct Sealer {
    key: LessSafeKey,
    nonce_base: [u8; NONCE_LEN],
    sealed: AtomicU64,
}

impl Sealer {
    fn new(bytes: &[u8; 32]) -> Self {
        let mut nonce_base = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce_base)
            .expect("the system RNG works");
        Self {
            key: LessSafeKey::new(
                UnboundKey::new(&CHACHA20_POLY1305, bytes).expect("a 32-byte key"),
            ),
            nonce_base,
            sealed: AtomicU64::new(0),
        }
    }

    /// The next nonce: the base with the record's number XORed into its last 8 bytes.
    fn next_nonce(&self) -> [u8; NONCE_LEN] {
        let n = self.sealed.fetch_add(1, Ordering::Relaxed);
        let mut nonce = self.nonce_base;
        for (b, x) in nonce[NONCE_LEN - 8..].iter_mut().zip(n.to_be_bytes()) {
            *b ^= x;
        }
        nonce
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("the system RNG works");
        Self::from_bytes(bytes)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            sealer: Arc::new(Sealer::new(&bytes)),
            bytes,
        }
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// Encrypts and authenticates `plaintext`, bound to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce = self.sealer.next_nonce();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .sealer
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out[1 + NONCE_LEN..],
            )
            .expect("sealing cannot fail for in-range lengths");
        out.extend_from_slice(tag.as_ref());
        out
    }

    /// Checks and decrypts a record made by [`seal`](Self::seal) with the same `aad`.
    ///
    /// # Errors
    /// [`OpenError`] for a wrong key, other associated data, or altered bytes.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            return Err(OpenError);
        }
        let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN].try_into().expect("length checked");
        let mut body = sealed[1 + NONCE_LEN..].to_vec();
        let plain = self
            .sealer
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| OpenError)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_anything_else_is_refused() {
        let key = DataKey::generate();
        let sealed = key.seal(b"raft entry 7", b"entry/7");
        assert_ne!(&sealed[1 + NONCE_LEN..], b"raft entry 7", "encrypted");
        assert_eq!(key.open(&sealed, b"entry/7").unwrap(), b"raft entry 7");
        assert_eq!(
            key.open(&sealed, b"entry/8"),
            Err(OpenError),
            "moved record"
        );
        assert_eq!(
            DataKey::generate().open(&sealed, b"entry/7"),
            Err(OpenError)
        );
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(key.open(&flipped, b"entry/7"), Err(OpenError));
        assert_eq!(key.open(b"short", b""), Err(OpenError));
        assert_ne!(key.seal(b"x", b""), key.seal(b"x", b""), "fresh nonces");
        let same = DataKey::from_bytes(*key.as_bytes());
        assert_eq!(same.open(&sealed, b"entry/7").unwrap(), b"raft entry 7");
        assert_ne!(
            same.seal(b"x", b"")[1..1 + NONCE_LEN],
            key.seal(b"x", b"")[1..1 + NONCE_LEN],
            "another value of the same key draws its own nonces"
        );
    }

    #[test]
    fn nonces_of_one_key_and_its_clones_never_repeat() {
        let key = DataKey::generate();
        let clone = key.clone();
        let nonces: std::collections::HashSet<Vec<u8>> = (0..1000)
            .flat_map(|_| [key.seal(b"", b""), clone.seal(b"", b"")])
            .map(|s| s[1..1 + NONCE_LEN].to_vec())
            .collect();
        assert_eq!(nonces.len(), 2000);
    }
}
