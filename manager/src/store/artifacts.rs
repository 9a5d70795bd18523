//! The artifact table: metadata of the WASM files in the artifact store, one object per
//! digest. The bytes are not here but in each manager's blob store (see
//! [`BlobSink`](super::BlobSink)); only what `artifact ls` shows and what pinning needs is
//! kept in memory and in raft snapshots.

use std::sync::Arc;

use swarm_proto::Artifact;

use super::lookup::LookupError;
use super::tables::{Id, Tables};

/// The tag a `NAME` without one means, as in Docker.
pub const DEFAULT_TAG: &str = "latest";

/// `NAME:TAG` for a `NAME[:TAG]` reference (the tag defaults to `latest`).
pub fn name_with_tag(reference: &str) -> String {
    if reference.contains(':') {
        reference.to_string()
    } else {
        format!("{reference}:{DEFAULT_TAG}")
    }
}

impl Tables {
    pub fn artifact(&self, id: &str) -> Option<&Arc<Artifact>> {
        self.artifacts.get(id)
    }

    /// Artifacts in id order.
    pub fn artifacts(&self) -> impl Iterator<Item = &Arc<Artifact>> {
        self.artifacts.values()
    }

    /// The artifact holding `digest` (`sha256:<hex>`).
    pub fn artifact_by_digest(&self, digest: &str) -> Option<&Arc<Artifact>> {
        self.artifact_digests
            .get(digest)
            .and_then(|id| self.artifacts.get(&**id))
    }

    /// The artifact that `NAME:TAG` points at. A scan: the artifact table is small (pushed
    /// by hand), and a name index would have to follow names moving between digests.
    pub fn artifact_by_name(&self, name_tag: &str) -> Option<&Arc<Artifact>> {
        self.artifacts
            .values()
            .find(|a| a.names.iter().any(|n| n == name_tag))
    }

    /// An artifact by `sha256:<hex>`, `NAME[:TAG]` (tag `latest` by default), id, or a unique
    /// prefix of its id or of its digest's hex (at least 4 digits, as `docker image`).
    pub fn find_artifact(&self, reference: &str) -> Result<Arc<Artifact>, LookupError> {
        let not_found = || LookupError::NotFound {
            kind: "artifact",
            reference: reference.to_string(),
        };
        if reference.is_empty() {
            return Err(not_found());
        }
        let exact = self
            .artifact_by_digest(reference)
            .or_else(|| self.artifact(reference))
            .or_else(|| self.artifact_by_name(&name_with_tag(reference)));
        if let Some(a) = exact {
            return Ok(a.clone());
        }
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        let found: Vec<&Arc<Artifact>> = self
            .artifacts()
            .filter(|a| {
                a.id.starts_with(reference)
                    || (hex.len() >= 4
                        && a.digest
                            .strip_prefix("sha256:")
                            .is_some_and(|h| h.starts_with(hex)))
            })
            .collect();
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(not_found()),
            many => Err(LookupError::Ambiguous {
                kind: "artifact",
                reference: reference.to_string(),
                matches: many
                    .iter()
                    .map(|a| a.digest.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    pub(super) fn put_artifact(&mut self, a: Arc<Artifact>) {
        let id = Id::from(a.id.as_str());
        self.artifact_digests
            .insert(Id::from(a.digest.as_str()), id.clone());
        self.artifacts.insert(id, a);
    }

    pub(super) fn delete_artifact(&mut self, id: &str) -> Option<Arc<Artifact>> {
        let old = self.artifacts.remove(id)?;
        self.artifact_digests.remove(old.digest.as_str());
        Some(old)
    }
}
