//! How this node's private key is kept on disk. A worker keeps it as a plain PEM file (as
//! SwarmKit's workers do); a manager of an autolocked swarm seals it, so that a stolen disk
//! gives neither its raft data nor its identity. The sealing itself belongs to the manager
//! (`swarm_manager::keymanager`): this crate only sees a [`KeyCodec`], which the manager
//! hands in through a [`KeyProtection`] shared by everything on the node that reads or
//! writes `certificates/` (the agent's join and renewer, the manager's TLS reload, its own
//! renewal, `join`).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use super::CertError;

/// Turns the key PEM into the bytes stored in `swarm-node.key`, and back.
pub trait KeyCodec: Send + Sync {
    /// The bytes to store for the key `pem`.
    fn encode(&self, pem: &[u8]) -> Vec<u8>;

    /// The key PEM held in `stored`. A codec reads what it writes and a plain PEM key, so a
    /// file written under an earlier codec of the node still loads.
    ///
    /// # Errors
    /// [`CertError::SealedKey`] when `stored` is sealed and this codec cannot open it.
    fn decode(&self, stored: &[u8]) -> Result<Vec<u8>, CertError>;

    /// For logs: what this codec writes ("plain", "sealed").
    fn name(&self) -> &'static str;
}

/// The codec of a worker: the key is stored as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainKey;

impl KeyCodec for PlainKey {
    fn encode(&self, pem: &[u8]) -> Vec<u8> {
        pem.to_vec()
    }

    fn decode(&self, stored: &[u8]) -> Result<Vec<u8>, CertError> {
        if is_plain_pem_key(stored) {
            Ok(stored.to_vec())
        } else {
            Err(CertError::SealedKey(
                "the node key is not a plain PEM key: it is sealed by this node's manager (an \
                 autolocked swarm); start the node as a manager with --unlock-key"
                    .into(),
            ))
        }
    }

    fn name(&self) -> &'static str {
        "plain"
    }
}

/// Whether `bytes` look like a PEM private key (of any kind).
pub fn is_plain_pem_key(bytes: &[u8]) -> bool {
    bytes.starts_with(b"-----BEGIN") && bytes.windows(12).any(|w| w == b"PRIVATE KEY-")
}

/// The node key's current codec, shared by the clones of one node (its manager and its
/// agent). The lock is held while a key file is encoded and written, so a renewal saved
/// while the manager changes the protection never lands under the old codec.
#[derive(Clone)]
pub struct KeyProtection(Arc<Mutex<Arc<dyn KeyCodec>>>);

impl Default for KeyProtection {
    fn default() -> Self {
        Self::new(Arc::new(PlainKey))
    }
}

impl fmt::Debug for KeyProtection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyProtection({})", self.lock().name())
    }
}

impl KeyProtection {
    pub fn new(codec: Arc<dyn KeyCodec>) -> Self {
        Self(Arc::new(Mutex::new(codec)))
    }

    /// The current codec, locked: hold it across a read or a write of the key file.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Arc<dyn KeyCodec>> {
        // A panic while holding it cannot leave the codec half-replaced.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_codec_stores_the_key_as_is_and_refuses_anything_sealed() {
        let pem = b"-----BEGIN PRIVATE KEY-----\nMIG\n-----END PRIVATE KEY-----\n";
        assert_eq!(PlainKey.encode(pem), pem);
        assert_eq!(PlainKey.decode(pem).unwrap(), pem);
        let e = PlainKey.decode(b"-----BEGIN SWARM SEALED NODE KEY-----\nAA==\n");
        assert!(
            e.unwrap_err().to_string().contains("--unlock-key"),
            "a sealed key is refused saying how to start the node"
        );
    }
}
