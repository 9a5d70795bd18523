//! A push, from the first message to the commit:
//!
//! ```text
//! header ──▶ name, digest and size checked (before any byte is read)
//! data…  ──▶ buffered (never past the announced size), then size, sha256 and wasm checked
//!        ──▶ one raft entry per 1 MiB chunk (skipped when this manager holds the bytes)
//!        ──▶ one atomic entry creating / naming the Artifact; its apply seals the bytes
//! ```
//! The RPC returns the artifact only after the commit has applied, so a `service create`
//! issued next can pin it.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use swarm_proto::ext::{new_id, now_ns};
use swarm_proto::{
    Artifact, BlobChunk, PushArtifactHeader, PushArtifactRequest, push_artifact_request::Msg,
};
use tonic::Status;

use super::blobs::BlobStore;
use super::{decide, validate};
use crate::api::ApiError;
use crate::store::{self, Conflict, Store, StoreError};

/// Bytes per raft entry.
pub const CHUNK_SIZE: usize = 1024 * 1024;

/// How often a commit is retried when a concurrent push changed the same artifacts.
const COMMIT_ATTEMPTS: usize = 5;

/// What a push needs.
#[derive(Clone)]
pub struct Pusher {
    pub store: Store,
    pub blobs: Arc<BlobStore>,
    pub max_size: u64,
}

impl Pusher {
    /// Receives, validates, replicates and commits one push.
    pub async fn push(
        &self,
        mut stream: impl Stream<Item = Result<PushArtifactRequest, Status>> + Unpin,
    ) -> Result<Artifact, ApiError> {
        let header = match stream.next().await {
            Some(Ok(PushArtifactRequest {
                msg: Some(Msg::Header(h)),
            })) => h,
            Some(Err(e)) => {
                return Err(ApiError::invalid(format!("push aborted: {}", e.message())));
            }
            _ => {
                return Err(ApiError::invalid(
                    "a push starts with a header (name, tag, size, digest) before any data",
                ));
            }
        };
        let name_tag = self.check_header(&header)?;
        let bytes = receive(&mut stream, header.size).await?;
        validate::received(&bytes, header.size, &header.digest)?;
        let kind = validate::kind(&bytes)?;
        if self.blob_size(&header.digest)?.is_none() {
            self.replicate(&header.digest, &bytes).await?;
        }
        self.commit(&header.digest, bytes.len() as u64, kind, &name_tag)
            .await
    }

    fn check_header(&self, h: &PushArtifactHeader) -> Result<String, ApiError> {
        let name_tag = validate::name_tag(&h.name, &h.tag)?;
        validate::digest(&h.digest)?;
        validate::size(h.size, self.max_size)?;
        Ok(name_tag)
    }

    fn blob_size(&self, digest: &str) -> Result<Option<u64>, ApiError> {
        self.blobs
            .sealed_size(digest)
            .map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// One raft entry per chunk, in order: each is small, and a follower applies them as
    /// they come.
    async fn replicate(&self, digest: &str, bytes: &[u8]) -> Result<(), ApiError> {
        for (i, chunk) in bytes.chunks(CHUNK_SIZE).enumerate() {
            let action = store::create(BlobChunk {
                digest: digest.to_string(),
                offset: (i * CHUNK_SIZE) as u64,
                data: chunk.to_vec(),
                total_size: bytes.len() as u64,
            });
            self.store.write(vec![action]).await?;
        }
        Ok(())
    }

    async fn commit(
        &self,
        digest: &str,
        size: u64,
        kind: swarm_proto::ArtifactKind,
        name_tag: &str,
    ) -> Result<Artifact, ApiError> {
        for _ in 0..COMMIT_ATTEMPTS {
            let view = self.store.view();
            let actions = decide::commit(&view, digest, size, kind, name_tag, now_ns(), new_id);
            if !actions.is_empty() {
                match self.store.write_atomic(actions).await {
                    Ok(_) => {}
                    // Another push moved the same name or artifact in between: decide again.
                    Err(StoreError::Conflict(
                        Conflict::VersionMismatch { .. } | Conflict::AlreadyExists { .. },
                    )) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let artifact = self.store.view().artifact_by_digest(digest).cloned();
            let Some(artifact) = artifact else { continue };
            if self.blob_size(digest)?.is_none() {
                return Err(ApiError::Internal(format!(
                    "artifact {digest} was recorded but its bytes could not be stored on this \
                     manager; see the manager's log, then push again"
                )));
            }
            return Ok((*artifact).clone());
        }
        Err(ApiError::FailedPrecondition(format!(
            "artifact {name_tag} kept changing under concurrent pushes; push again"
        )))
    }
}

/// The data messages after the header, refusing more than `size` bytes.
async fn receive(
    stream: &mut (impl Stream<Item = Result<PushArtifactRequest, Status>> + Unpin),
    size: u64,
) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(CHUNK_SIZE * 64));
    while let Some(msg) = stream.next().await {
        let msg = msg.map_err(|e| ApiError::invalid(format!("push aborted: {}", e.message())))?;
        match msg.msg {
            Some(Msg::Data(d)) => {
                if (bytes.len() + d.len()) as u64 > size {
                    return Err(ApiError::invalid(format!(
                        "the push announced {size} bytes but sent more; the file changed while \
                         it was read"
                    )));
                }
                bytes.extend_from_slice(&d);
            }
            Some(Msg::Header(_)) => {
                return Err(ApiError::invalid(
                    "a push has one header, as its first message",
                ));
            }
            None => {}
        }
    }
    Ok(bytes)
}

#[cfg(test)]
#[path = "push_tests.rs"]
mod tests;
