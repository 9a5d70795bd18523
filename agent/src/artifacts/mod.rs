//! Artifacts on the agent: WASM files fetched from the managers' artifact store, verified
//! by digest and kept under `<state-dir>/artifacts/sha256/<hex>`.
//!
//! Backends ask an [`ArtifactSource`] for a local path by digest; they never talk to the
//! manager themselves. A task's artifact reference is pinned to a digest by the manager when
//! the service is created (`NAME:TAG@sha256:<hex>`, as Docker pins image references), so an
//! agent always knows exactly which bytes to run; [`digest_of_reference`] extracts it.

mod fetch;
mod store;

use std::path::PathBuf;

use sha2::{Digest, Sha256};

pub use store::{ArtifactStore, SESSION_TIMEOUT};

use crate::exec::ExecError;

/// Gives local paths of verified artifacts.
#[async_trait::async_trait]
pub trait ArtifactSource: Send + Sync + 'static {
    /// The local path of the artifact with `digest` (`sha256:<64 hex>`), fetching and
    /// verifying it first if this agent does not hold it yet. Errors are
    /// [`ExecError::NotFound`] when no manager has it, [`ExecError::Temporary`] when no
    /// manager can be reached now.
    async fn path(&self, digest: &str) -> Result<PathBuf, ExecError>;
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The digest a task's artifact reference pins: `sha256:<hex>` itself, or the part after
/// `@` in `NAME[:TAG]@sha256:<hex>`. A reference without a digest is an error: the manager
/// pins every reference when the service is created.
pub fn digest_of_reference(reference: &str) -> Result<String, ExecError> {
    let digest = reference
        .rsplit_once('@')
        .map_or(reference, |(_, digest)| digest);
    let hex = digest.strip_prefix("sha256:").ok_or_else(|| {
        ExecError::InvalidTask(format!(
            "artifact reference '{reference}' is not pinned to a sha256 digest"
        ))
    })?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(ExecError::InvalidTask(format!(
            "artifact reference '{reference}' has a malformed sha256 digest (want 64 lowercase hex digits)"
        )));
    }
    Ok(digest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_pin_digests() {
        let d = digest_of(b"hello");
        assert_eq!(
            d,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(digest_of_reference(&d).unwrap(), d);
        assert_eq!(digest_of_reference(&format!("hello:1@{d}")).unwrap(), d);
        let err = |r: &str| digest_of_reference(r).unwrap_err().to_string();
        assert!(err("hello:latest").contains("not pinned"));
        assert!(err("sha256:abc").contains("malformed"));
        assert!(err(&d.to_uppercase().replace("SHA256", "sha256")).contains("malformed"));
    }
}
