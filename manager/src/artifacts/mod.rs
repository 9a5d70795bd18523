//! The artifact store: WASM files users push, replicated through raft, fetched by agents.
//!
//! ```text
//!  swarmctl ── Artifacts.Push ──▶ push.rs: validate (validate.rs) ──▶ raft: one entry per
//!                                 1 MiB BlobChunk, then the Artifact (decide.rs)
//!                                              │ apply, on every manager
//!                                              ▼
//!              store (metadata: the artifact table) + BlobSink ──▶ blobs.rs (artifacts.redb)
//!  agent ──── ArtifactFetch.Fetch(session, digest, offset) ──▶ fetch.rs ◀── blobs.rs
//!  Control.CreateService/UpdateService ──▶ decide::pin_spec: NAME[:TAG] → NAME:TAG@sha256:…
//! ```
//!
//! A WASM task may also name an artifact in an OCI registry (`HOST[:PORT]/REPO[:TAG]`, the
//! CNCF wasm OCI artifact layout): its syntax is checked at `service create/update`
//! (`api::validate::artifact`), pinning leaves it as written, and the agent pulls it
//! (`swarm_agent::registry`), as it pulls container images.
//!
//! One [`Artifact`](swarm_proto::Artifact) per digest; names (`NAME:TAG`) point at one
//! digest each and move when the same name is pushed with new bytes. Removing an artifact
//! that a service's spec or previous spec pins is refused.

mod blobs;
pub mod catchup;
pub mod decide;
mod fetch;
mod push;
mod service;
pub mod validate;

use std::path::Path;
use std::sync::Arc;

pub use blobs::{BlobError, BlobStore};
pub use fetch::FetchApi;
pub use push::CHUNK_SIZE;
pub use service::ArtifactsApi;
pub use validate::DEFAULT_MAX_SIZE;

/// The blob store file in a manager's state dir.
pub fn blob_path(state_dir: &Path) -> std::path::PathBuf {
    state_dir.join("artifacts.redb")
}

/// Opens the manager's blob store and makes it the store's blob sink. Call before raft
/// starts replaying the log.
pub fn attach(
    state_dir: &Path,
    memory: &crate::store::MemoryStore,
) -> Result<Arc<BlobStore>, BlobError> {
    let blobs = Arc::new(BlobStore::open(&blob_path(state_dir))?);
    memory.set_blob_sink(blobs.clone());
    Ok(blobs)
}
