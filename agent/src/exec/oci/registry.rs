//! Pulling an image from an OCI registry (distribution API, through `oci-client`) into the
//! agent's blob store, as the same [`LayoutImage`] a layout directory gives:
//!
//! ```text
//! <state-dir>/oci/blobs/sha256/<hex>    layer blobs, each verified against its digest,
//!                                       fetched once and kept for later tasks
//! ```
//!
//! Rules (Docker's, kept small): registries on `localhost` / `127.0.0.1` / `[::1]` are
//! spoken to in plain HTTP (Docker treats loopback registries as insecure); every other
//! registry over HTTPS (rustls, ring provider). Pulls are anonymous. The config must match the manifest's digest; the
//! manifest must be an image manifest (a WASM artifact, config type
//! `application/vnd.wasm.config.v0+json`, is refused: run it with `--runtime wasm`).

use std::path::{Path, PathBuf};

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};

use super::layout::LayoutImage;
use crate::exec::ExecError;

/// The config media type of a WASM artifact (CNCF wasm OCI layout).
const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";

/// True for a registry host (with or without port) that is this machine.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => registry.split(':').next().unwrap_or_default(),
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// Pulls `reference` (manifest, config, missing layers) into `blobs` (`…/blobs/sha256`).
///
/// # Errors
/// [`ExecError::InvalidTask`] for a reference or image this backend cannot use,
/// [`ExecError::Temporary`] when the registry cannot be reached (the step is retried),
/// [`ExecError::NotFound`] when the registry has no such image.
pub(crate) async fn pull(reference: &str, blobs: &Path) -> Result<LayoutImage, ExecError> {
    let image: Reference = reference
        .parse()
        .map_err(|e| ExecError::InvalidTask(format!("image '{reference}': {e}")))?;
    let registry = image.resolve_registry().to_string();
    // The process-wide rustls provider; an error means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::new(ClientConfig {
        protocol: if is_loopback(&registry) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        ..Default::default()
    });
    let (manifest, manifest_digest, config) = client
        .pull_manifest_and_config(&image, &RegistryAuth::Anonymous)
        .await
        .map_err(|e| pull_error(reference, e))?;
    if manifest.config.media_type == WASM_CONFIG {
        return Err(ExecError::InvalidTask(format!(
            "image '{reference}' is a WASM artifact; create the service with --runtime wasm"
        )));
    }
    let got = format!("sha256:{}", hex::encode(Sha256::digest(config.as_bytes())));
    if got != manifest.config.digest {
        return Err(ExecError::InvalidTask(format!(
            "image '{reference}': its config hashes to {got}, not {}",
            manifest.config.digest
        )));
    }
    let config = serde_json::from_str(&config).map_err(|e| {
        ExecError::InvalidTask(format!("image '{reference}': its config is not valid: {e}"))
    })?;
    tokio::fs::create_dir_all(blobs)
        .await
        .map_err(|e| io(blobs, e))?;
    let mut layers = Vec::with_capacity(manifest.layers.len());
    for layer in &manifest.layers {
        let path = blob_path(blobs, &layer.digest)?;
        if !path.is_file() {
            let tmp = path.with_extension("partial");
            let file = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| io(&tmp, e))?;
            // oci-client checks the bytes against the layer's digest as they arrive.
            client
                .pull_blob(&image, layer, file)
                .await
                .map_err(|e| pull_error(reference, e))?;
            tokio::fs::rename(&tmp, &path)
                .await
                .map_err(|e| io(&path, e))?;
        }
        layers.push(path);
    }
    Ok(LayoutImage {
        manifest_digest,
        config,
        layers,
    })
}

fn blob_path(blobs: &Path, digest: &str) -> Result<PathBuf, ExecError> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) => {
            Ok(blobs.join(hex))
        }
        _ => Err(ExecError::InvalidTask(format!(
            "unsupported layer digest '{digest}' (only sha256)"
        ))),
    }
}

fn pull_error(reference: &str, e: oci_client::errors::OciDistributionError) -> ExecError {
    use oci_client::errors::OciDistributionError as E;
    match e {
        E::RequestError(e) => ExecError::Temporary(format!("pull {reference}: {e}")),
        E::ImageManifestNotFoundError(_) => {
            ExecError::NotFound(format!("image {reference} is not in its registry"))
        }
        other => ExecError::InvalidTask(format!("pull {reference}: {other}")),
    }
}

fn io(path: &Path, e: std::io::Error) -> ExecError {
    ExecError::Io {
        context: format!("store blob {}", path.display()),
        source: e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_registries_are_insecure() {
        for r in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "[::1]:5000",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "registry.example.com",
            "10.0.0.1:5000",
            "localhost.evil.com:5000",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
