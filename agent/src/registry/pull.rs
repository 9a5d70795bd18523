//! [`pull`]: a manifest, its config and the layers a backend keeps, from a registry into the
//! agent's blob directory. See the module docs of `registry` for the flow and the rules.

use std::path::{Path, PathBuf};

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};

use super::manifest::{self, Want};
use crate::exec::ExecError;

/// What a pull got.
#[derive(Debug, Clone)]
pub(crate) struct Pulled {
    /// `sha256:<hex>` of the manifest.
    pub(crate) manifest_digest: String,
    /// The config JSON (its digest checked against the manifest).
    pub(crate) config: String,
    /// The layers, in manifest order (bottom-up for an image).
    pub(crate) layers: Vec<Blob>,
}

/// One verified blob on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Blob {
    /// `sha256:<hex>` of its bytes.
    pub(crate) digest: String,
    pub(crate) path: PathBuf,
}

/// Pulls `reference` for `want` into `blobs` (`…/blobs/sha256`).
///
/// # Errors
/// [`ExecError::InvalidTask`] for a reference or manifest the caller cannot use (a container
/// image named for a WASM task, and the reverse), [`ExecError::NotFound`] when the registry
/// has no such repository or tag, [`ExecError::Temporary`] when the registry cannot be
/// reached (the step is retried).
pub(crate) async fn pull(reference: &str, want: Want, blobs: &Path) -> Result<Pulled, ExecError> {
    let image: Reference = reference
        .parse()
        .map_err(|e| ExecError::InvalidTask(format!("'{reference}': {e}")))?;
    let client = client_for(&image);
    let (manifest, manifest_digest, config) = client
        .pull_manifest_and_config(&image, &RegistryAuth::Anonymous)
        .await
        .map_err(|e| pull_error(reference, e))?;
    let layers = manifest::layers_for(reference, &manifest, want)?;
    let got = format!("sha256:{}", hex::encode(Sha256::digest(config.as_bytes())));
    if got != manifest.config.digest {
        return Err(ExecError::InvalidTask(format!(
            "'{reference}': its config hashes to {got}, not {}",
            manifest.config.digest
        )));
    }
    tokio::fs::create_dir_all(blobs)
        .await
        .map_err(|e| io("create", blobs, e))?;
    let mut kept = Vec::with_capacity(layers.len());
    for layer in layers {
        kept.push(fetch_blob(&client, &image, reference, layer, blobs).await?);
    }
    Ok(Pulled {
        manifest_digest,
        config,
        layers: kept,
    })
}

/// Pulls the WASM artifact `reference` into `blobs`; returns its one layer (the `.wasm`).
///
/// # Errors
/// As [`pull`] with [`Want::Wasm`].
pub(crate) async fn pull_wasm(reference: &str, blobs: &Path) -> Result<Blob, ExecError> {
    let pulled = pull(reference, Want::Wasm, blobs).await?;
    pulled.layers.into_iter().next().ok_or_else(|| {
        ExecError::Runtime(format!(
            "'{reference}': the pull kept no layer of the wasm artifact"
        ))
    })
}

/// A client speaking plain HTTP to a loopback registry and HTTPS to every other.
fn client_for(image: &Reference) -> Client {
    // The process-wide rustls provider; an error means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new(ClientConfig {
        protocol: if is_loopback(image.resolve_registry()) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        ..Default::default()
    })
}

/// True for a registry host (with or without port) that is this machine.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => registry.split(':').next().unwrap_or_default(),
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// The blob `layer`, from disk if an earlier pull kept it. Concurrent pulls of one blob
/// each write their own temp file; the renames are atomic and the bytes the same.
async fn fetch_blob(
    client: &Client,
    image: &Reference,
    reference: &str,
    layer: &OciDescriptor,
    blobs: &Path,
) -> Result<Blob, ExecError> {
    let path = blob_path(blobs, &layer.digest)?;
    if !path.is_file() {
        let tmp = blobs.join(format!(".{:016x}.partial", rand::random::<u64>()));
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| io("create", &tmp, e))?;
        // oci-client checks the bytes against the layer's digest as they arrive.
        let fetched = client
            .pull_blob(image, layer, file)
            .await
            .map_err(|e| pull_error(reference, e));
        let installed = match fetched {
            Ok(()) => tokio::fs::rename(&tmp, &path)
                .await
                .map_err(|e| io("rename a blob to", &path, e)),
            Err(e) => Err(e),
        };
        if let Err(e) = installed {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
    }
    Ok(Blob {
        digest: layer.digest.clone(),
        path,
    })
}

fn blob_path(blobs: &Path, digest: &str) -> Result<PathBuf, ExecError> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64 && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(blobs.join(hex))
        }
        _ => Err(ExecError::InvalidTask(format!(
            "unsupported layer digest '{digest}' (only sha256)"
        ))),
    }
}

fn pull_error(reference: &str, e: OciDistributionError) -> ExecError {
    use OciDistributionError as E;
    match e {
        E::RequestError(e) => ExecError::Temporary(format!(
            "cannot reach the registry of '{reference}': {}",
            crate::errors::chain(&e)
        )),
        E::ImageManifestNotFoundError(_) | E::ServerError { code: 404, .. } => not_found(reference),
        E::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown
                )
            }) =>
        {
            not_found(reference)
        }
        other => ExecError::InvalidTask(format!("pull '{reference}': {other}")),
    }
}

fn not_found(reference: &str) -> ExecError {
    ExecError::NotFound(format!(
        "'{reference}' is not in its registry (no such repository or tag); push it first"
    ))
}

fn io(what: &str, path: &Path, source: std::io::Error) -> ExecError {
    ExecError::Io {
        context: format!("{what} {}", path.display()),
        source,
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

    #[test]
    fn only_sha256_blobs_are_stored() {
        let hex = "ab".repeat(32);
        assert_eq!(
            blob_path(Path::new("/b"), &format!("sha256:{hex}")).unwrap(),
            Path::new("/b").join(&hex)
        );
        for bad in [
            "sha512:00",
            "sha256:../../etc",
            &format!("sha256:{}", hex.to_uppercase()),
        ] {
            assert!(blob_path(Path::new("/b"), bad).is_err(), "{bad}");
        }
    }
}
