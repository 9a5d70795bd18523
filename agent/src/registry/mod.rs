//! Pulls from OCI registries (the distribution API, through `oci-client`), shared by both
//! backends: the OCI backend pulls container images, the WASI backend pulls WASM artifacts
//! published in the CNCF wasm OCI artifact layout. One pull serves both; only the layers it
//! keeps differ.
//!
//! ```text
//!  pull(reference, Want::{Image|Wasm}, blobs)
//!    ├─ manifest + config (oci-client)
//!    ├─ manifest.rs (pure): container image | wasm artifact | something else; the wrong
//!    │  kind is refused ("… is a container image, not a wasm artifact: use --runtime oci")
//!    ├─ the config must hash to the manifest's config digest
//!    └─ each layer not yet at <blobs>/<hex>: streamed to a temp file (oci-client checks the
//!       bytes against the layer digest as they arrive), then renamed into place
//! ```
//!
//! Blobs live in one agent-wide directory, [`blobs_dir`] (`<state-dir>/oci/blobs/sha256`),
//! fetched once and kept for later tasks. A WASM layer's digest is the sha256 of the
//! component's bytes, the same digest a `swarmctl artifact push` of that file gets, so the
//! WASI backend's compiled cache is shared between both ways of publishing.
//!
//! Rules (Docker's, kept small): registries on `localhost` / `127.0.0.1` / `[::1]` are
//! spoken to in plain HTTP (Docker treats loopback registries as insecure); every other
//! registry over HTTPS (rustls, ring provider). Pulls are anonymous. A reference without a
//! registry host (`team/app:1`) is Docker Hub's, as oci-client (and Docker) resolve it.

mod manifest;
mod pull;
pub mod reference;

use std::path::{Path, PathBuf};

pub use manifest::{WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE, Want};
pub(crate) use pull::{Pulled, pull, pull_wasm};

/// Where registry blobs of the agent whose state lives in `state_dir` are kept.
pub fn blobs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("oci").join("blobs").join("sha256")
}
