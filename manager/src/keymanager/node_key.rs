//! [`NodeKeyCodec`]: how a manager stores its TLS private key (`certificates/swarm-node.key`).
//! While the swarm is autolocked the key is sealed — a PEM-framed record that does not parse
//! as a private key — so a stolen disk gives neither the raft data nor the node's identity.
//!
//! The key is sealed with this manager's raft data key (the DEK), not directly with the
//! unlock key: the DEK is itself wrapped by the unlock key in [`DekFile`](super::DekFile),
//! so reading the node key still takes the unlock key, yet the two files never disagree
//! about *which* unlock key: a crash between rewriting `dek.json` and `swarm-node.key` (an
//! autolock change or a rotation) leaves a state dir that starts with the key the swarm now
//! shows. SwarmKit gets the same from keeping the wrapped DEK in the key file's PEM headers.
//! A rotation of the unlock key rewraps the DEK, which is what it protects; the node key is
//! sealed afresh too, under a new nonce.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use swarm_agent::certs::{CertError, KeyCodec, is_plain_pem_key};

use super::DataKey;

/// The associated data of a sealed node key.
const AAD: &[u8] = b"swarm node key";
const BEGIN: &str = "-----BEGIN SWARM SEALED NODE KEY-----\n";
const END: &str = "-----END SWARM SEALED NODE KEY-----\n";

/// A manager's node key codec: opens both a plain and a sealed key with its DEK; writes
/// sealed iff `seal` (the swarm is autolocked).
#[derive(Debug, Clone)]
pub struct NodeKeyCodec {
    dek: DataKey,
    seal: bool,
}

impl NodeKeyCodec {
    pub fn new(dek: DataKey, seal: bool) -> Self {
        Self { dek, seal }
    }
}

impl KeyCodec for NodeKeyCodec {
    fn encode(&self, pem: &[u8]) -> Vec<u8> {
        if !self.seal {
            return pem.to_vec();
        }
        let b64 = STANDARD.encode(self.dek.seal(pem, AAD));
        let mut out = String::from(BEGIN);
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str(END);
        out.into_bytes()
    }

    fn decode(&self, stored: &[u8]) -> Result<Vec<u8>, CertError> {
        if is_plain_pem_key(stored) {
            return Ok(stored.to_vec());
        }
        let sealed = |why: &str| {
            CertError::SealedKey(format!(
                "the node key does not open with this manager's raft data key ({why}); the \
                 certificates/ and raft/ of this state dir do not belong together"
            ))
        };
        let text = std::str::from_utf8(stored).map_err(|_| sealed("not text"))?;
        let body = text
            .strip_prefix(BEGIN)
            .and_then(|t| t.trim_end().strip_suffix(END.trim_end()))
            .ok_or_else(|| sealed("neither a PEM key nor a sealed one"))?;
        let b64: String = body.split_whitespace().collect();
        let record = STANDARD.decode(b64).map_err(|_| sealed("not base64"))?;
        self.dek
            .open(&record, AAD)
            .map_err(|_| sealed("wrong key or damaged file"))
    }

    fn name(&self) -> &'static str {
        if self.seal { "sealed" } else { "plain" }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use swarm_agent::certs::{CertFiles, KeyProtection, NodeCerts, PlainKey};

    use super::*;
    use crate::ca::{RootCa, Subject};

    const PEM_KEY: &[u8] = b"-----BEGIN PRIVATE KEY-----";

    fn certs() -> NodeCerts {
        let root = RootCa::generate("c").unwrap();
        let subject = Subject {
            node_id: "n1",
            role: swarm_proto::NodeRole::Manager,
            cluster_id: "c",
        };
        root.issue_local(&subject, std::time::Duration::from_secs(3600))
            .unwrap()
    }

    fn key_file(files: &CertFiles) -> Vec<u8> {
        std::fs::read(files.dir().join("swarm-node.key")).unwrap()
    }

    #[test]
    fn a_sealed_key_round_trips_and_does_not_read_as_a_pem_key() {
        let dek = DataKey::generate();
        let codec = NodeKeyCodec::new(dek.clone(), true);
        let pem = certs().key_pem;
        let sealed = codec.encode(&pem);
        assert!(!sealed.windows(PEM_KEY.len()).any(|w| w == PEM_KEY));
        assert!(!is_plain_pem_key(&sealed));
        assert_eq!(codec.decode(&sealed).unwrap(), pem);
        assert_eq!(
            NodeKeyCodec::new(dek, false).decode(&sealed).unwrap(),
            pem,
            "an unsealing codec still reads a sealed key (a crash mid-change)"
        );
        assert_eq!(codec.decode(&pem).unwrap(), pem, "and a plain one");
        let wrong = NodeKeyCodec::new(DataKey::generate(), true);
        assert!(matches!(
            wrong.decode(&sealed),
            Err(CertError::SealedKey(_))
        ));
        assert!(matches!(
            PlainKey.decode(&sealed),
            Err(CertError::SealedKey(_))
        ));
        let mut damaged = sealed.clone();
        damaged[BEGIN.len() + 3] ^= 1;
        assert!(codec.decode(&damaged).is_err());
    }

    #[test]
    fn protection_changes_rewrite_the_key_and_a_failed_one_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dek = DataKey::generate();
        let files = CertFiles::new(dir.path().to_path_buf(), KeyProtection::default());
        let certs = certs();
        files.save(&certs).unwrap();
        assert_eq!(key_file(&files), certs.key_pem, "plain by default");

        files
            .protect(Arc::new(NodeKeyCodec::new(dek.clone(), true)))
            .unwrap();
        let sealed = key_file(&files);
        assert!(!is_plain_pem_key(&sealed), "sealed on disk");
        assert_eq!(files.load().unwrap().unwrap().key_pem, certs.key_pem);
        files.save(&certs).unwrap();
        assert!(!is_plain_pem_key(&key_file(&files)), "saves stay sealed");

        tracing::info!("--- a stranger's codec can neither load nor reprotect it");
        let before = key_file(&files);
        let stranger = CertFiles::new(
            dir.path().to_path_buf(),
            KeyProtection::new(Arc::new(NodeKeyCodec::new(DataKey::generate(), true))),
        );
        assert!(matches!(stranger.load(), Err(CertError::SealedKey(_))));
        assert!(stranger.protect(Arc::new(PlainKey)).is_err());
        assert_eq!(key_file(&files), before, "a failed change leaves the file");
        assert!(
            !dir.path().join("swarm-node.tmp").exists(),
            "and no temp file"
        );

        files.protect(Arc::new(PlainKey)).unwrap();
        assert_eq!(key_file(&files), certs.key_pem, "plain again");
    }
}
