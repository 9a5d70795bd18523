//! [`LayoutImage`]: an image read from an OCI image layout directory on the agent's disk
//! (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), with every blob it uses checked
//! against its digest, or pulled from a registry by `crate::registry`.
//!
//! The index entry is picked by tag (`org.opencontainers.image.ref.name`) or, without a
//! tag, must be the index's only manifest. Manifest and config are read whole (at most
//! [`MAX_JSON`] bytes each); layers are returned as verified paths for `unpack.rs`.

use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use sha2::{Digest as _, Sha256};

use crate::exec::ExecError;
use crate::registry::Pulled;

/// The largest index, manifest or config JSON we read.
pub(crate) const MAX_JSON: u64 = 4 << 20;
/// The annotation naming a tag in an index.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One image of a layout, digests verified.
#[derive(Debug, Clone)]
pub(crate) struct LayoutImage {
    /// `sha256:<hex>` of the manifest: names the unpacked rootfs in the image cache.
    pub(crate) manifest_digest: String,
    pub(crate) config: ImageConfiguration,
    /// Layer blobs bottom-up, each verified against its digest.
    pub(crate) layers: Vec<PathBuf>,
}

impl LayoutImage {
    /// The image a registry pull of `reference` got (digests verified by the pull).
    ///
    /// # Errors
    /// [`ExecError::InvalidTask`] when its config is not an image config.
    pub(crate) fn pulled(reference: &str, pulled: Pulled) -> Result<Self, ExecError> {
        let config = serde_json::from_str(&pulled.config).map_err(|e| {
            ExecError::InvalidTask(format!("image '{reference}': its config is not valid: {e}"))
        })?;
        Ok(Self {
            manifest_digest: pulled.manifest_digest,
            config,
            layers: pulled.layers.into_iter().map(|b| b.path).collect(),
        })
    }
}

/// Reads the image `tag` (or the only image) of the layout at `dir`.
///
/// # Errors
/// [`ExecError::NotFound`] for a missing layout/tag/blob, [`ExecError::InvalidTask`] for a
/// malformed layout or a digest mismatch.
pub(crate) fn read_image(dir: &Path, tag: Option<&str>) -> Result<LayoutImage, ExecError> {
    let where_ = dir.display();
    if !dir.join("oci-layout").is_file() {
        return Err(ExecError::NotFound(format!(
            "no OCI image layout at {where_} (it has no 'oci-layout' file)"
        )));
    }
    let index: ImageIndex = parse_json(&read_limited(&dir.join("index.json"))?, "index.json")?;
    let desc = pick(index.manifests(), tag).map_err(|e| match e {
        Pick::NoTag(t) => ExecError::NotFound(format!("no image tagged '{t}' in {where_}")),
        Pick::Ambiguous(n) => ExecError::InvalidTask(format!(
            "the layout {where_} holds {n} images; name one with :TAG"
        )),
    })?;
    let manifest_bytes = read_blob(dir, desc, true)?;
    let manifest: ImageManifest = parse_json(&manifest_bytes, "the image manifest")?;
    let config_bytes = read_blob(dir, manifest.config(), true)?;
    let config: ImageConfiguration = parse_json(&config_bytes, "the image config")?;
    let mut layers = Vec::with_capacity(manifest.layers().len());
    for layer in manifest.layers() {
        let path = blob_path(dir, layer)?;
        verify_file(&path, layer)?;
        layers.push(path);
    }
    Ok(LayoutImage {
        manifest_digest: desc.digest().to_string(),
        config,
        layers,
    })
}

enum Pick {
    NoTag(String),
    Ambiguous(usize),
}

/// The index entry for `tag`, or the only one (pure).
fn pick<'a>(manifests: &'a [Descriptor], tag: Option<&str>) -> Result<&'a Descriptor, Pick> {
    match tag {
        Some(t) => manifests
            .iter()
            .find(|d| {
                d.annotations()
                    .as_ref()
                    .and_then(|a| a.get(REF_NAME))
                    .is_some_and(|n| n == t)
            })
            .ok_or_else(|| Pick::NoTag(t.to_string())),
        None if manifests.len() == 1 => Ok(&manifests[0]),
        None if manifests.is_empty() => Err(Pick::NoTag("(any)".into())),
        None => Err(Pick::Ambiguous(manifests.len())),
    }
}

fn blob_path(dir: &Path, desc: &Descriptor) -> Result<PathBuf, ExecError> {
    let digest = desc.digest();
    let hex = digest.digest();
    if digest.algorithm().as_ref() != "sha256"
        || hex.len() != 64
        || !hex.chars().all(|c| c.is_ascii_hexdigit())
    {
        return Err(ExecError::InvalidTask(format!(
            "unsupported blob digest '{digest}' (only sha256)"
        )));
    }
    Ok(dir.join("blobs").join("sha256").join(hex))
}

fn read_blob(dir: &Path, desc: &Descriptor, json: bool) -> Result<Vec<u8>, ExecError> {
    let path = blob_path(dir, desc)?;
    let bytes = if json {
        read_limited(&path)?
    } else {
        std::fs::read(&path).map_err(|e| io(&path, e))?
    };
    let got = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    check_digest(&got, desc)?;
    Ok(bytes)
}

fn verify_file(path: &Path, desc: &Descriptor) -> Result<(), ExecError> {
    let mut file = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|e| io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    check_digest(&format!("sha256:{}", hex::encode(hasher.finalize())), desc)
}

fn check_digest(got: &str, desc: &Descriptor) -> Result<(), ExecError> {
    let want = desc.digest().to_string();
    if got == want {
        Ok(())
    } else {
        Err(ExecError::InvalidTask(format!(
            "blob {want} is corrupt: its content hashes to {got}"
        )))
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, ExecError> {
    let file = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_JSON + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io(path, e))?;
    if bytes.len() as u64 > MAX_JSON {
        return Err(ExecError::InvalidTask(format!(
            "{} is larger than {MAX_JSON} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ExecError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ExecError::InvalidTask(format!("{what} is not valid: {e}")))
}

fn io(path: &Path, e: std::io::Error) -> ExecError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ExecError::NotFound(format!("{} (image layout incomplete)", path.display()))
    } else {
        ExecError::Io {
            context: format!("read {}", path.display()),
            source: e,
        }
    }
}
