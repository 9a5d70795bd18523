//! [`LayoutWriter`]: writes a small OCI image layout (gzip layers, config, manifest,
//! `index.json`) from files given in memory. Tests and the benchmark build their images
//! with it (e.g. busybox from Debian's `busybox-static`), so nothing is downloaded.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;

use sha2::{Digest as _, Sha256};

/// One entry of a layer.
#[derive(Debug, Clone)]
pub enum LayerEntry {
    /// A directory (mode 0755).
    Dir(String),
    /// A regular file with its mode.
    File(String, Vec<u8>, u32),
    /// A symlink `path -> target`.
    Symlink(String, String),
}

/// An image being described; [`write`](Self::write) puts it on disk.
#[derive(Debug, Clone, Default)]
pub struct LayoutWriter {
    layers: Vec<Vec<LayerEntry>>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<String>,
    workdir: String,
    user: String,
}

/// Applets the busybox image links to `/bin/busybox`.
const BUSYBOX_APPLETS: [&str; 14] = [
    "sh", "echo", "sleep", "cat", "ls", "true", "false", "kill", "id", "env", "pwd", "ps", "touch",
    "printf",
];

impl LayoutWriter {
    /// An image without layers or config.
    pub fn new() -> Self {
        Self::default()
    }

    /// A one-layer busybox image from a static busybox binary (`/bin/busybox` of Debian's
    /// `busybox-static`), with `Cmd ["sh"]` and a PATH, as Docker Hub's busybox has.
    ///
    /// # Errors
    /// The binary cannot be read.
    pub fn busybox(binary: &Path) -> std::io::Result<Self> {
        let mut layer = vec![
            LayerEntry::Dir("bin".into()),
            LayerEntry::Dir("tmp".into()),
            LayerEntry::Dir("etc".into()),
            LayerEntry::File("bin/busybox".into(), std::fs::read(binary)?, 0o755),
            LayerEntry::File(
                "etc/passwd".into(),
                b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
                    .to_vec(),
                0o644,
            ),
            LayerEntry::File(
                "etc/group".into(),
                b"root:x:0:\nnogroup:x:65534:\n".to_vec(),
                0o644,
            ),
        ];
        for applet in BUSYBOX_APPLETS {
            layer.push(LayerEntry::Symlink(
                format!("bin/{applet}"),
                "busybox".into(),
            ));
        }
        Ok(Self::new()
            .layer(layer)
            .cmd(&["sh"])
            .env("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"))
    }

    /// Adds a layer on top of the others.
    pub fn layer(mut self, entries: Vec<LayerEntry>) -> Self {
        self.layers.push(entries);
        self
    }

    /// Sets the image's `Entrypoint`.
    pub fn entrypoint(mut self, args: &[&str]) -> Self {
        self.entrypoint = args.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Sets the image's `Cmd`.
    pub fn cmd(mut self, args: &[&str]) -> Self {
        self.cmd = args.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Adds a `KEY=VALUE` to the image's `Env`.
    pub fn env(mut self, kv: &str) -> Self {
        self.env.push(kv.to_string());
        self
    }

    /// Sets the image's `WorkingDir`.
    pub fn workdir(mut self, dir: &str) -> Self {
        self.workdir = dir.to_string();
        self
    }

    /// Sets the image's `User`.
    pub fn user(mut self, user: &str) -> Self {
        self.user = user.to_string();
        self
    }

    /// The gzip-compressed layer tarballs, bottom-up.
    ///
    /// # Errors
    /// Building a tar in memory failed.
    pub fn layer_blobs(&self) -> std::io::Result<Vec<Vec<u8>>> {
        self.layers.iter().map(|l| layer_tar_gz(l)).collect()
    }

    /// The image config JSON for the given layer blobs.
    pub fn config_json(&self, layers: &[Vec<u8>]) -> Vec<u8> {
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|gz| {
                let mut tar = Vec::new();
                let _ = std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(&gz[..]),
                    &mut tar,
                );
                sha256(&tar)
            })
            .collect();
        let config = serde_json::json!({
            "architecture": oci_arch(),
            "os": "linux",
            "config": {
                "Entrypoint": non_empty(&self.entrypoint),
                "Cmd": non_empty(&self.cmd),
                "Env": self.env,
                "WorkingDir": self.workdir,
                "User": self.user,
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        serde_json::to_vec(&config).expect("json")
    }

    /// Writes the layout to `dir` (created) and tags the image `tag`.
    ///
    /// # Errors
    /// Writing a file failed.
    pub fn write(&self, dir: &Path, tag: &str) -> std::io::Result<()> {
        let blobs = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs)?;
        let put = |bytes: &[u8]| -> std::io::Result<(String, usize)> {
            let digest = sha256(bytes);
            std::fs::write(blobs.join(&digest["sha256:".len()..]), bytes)?;
            Ok((digest, bytes.len()))
        };
        let layers = self.layer_blobs()?;
        let config = self.config_json(&layers);
        let (config_digest, config_size) = put(&config)?;
        let mut layer_descs = Vec::new();
        for layer in &layers {
            let (digest, size) = put(layer)?;
            layer_descs.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest, "size": size,
            }));
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest, "size": config_size,
            },
            "layers": layer_descs,
        }))
        .expect("json");
        let (manifest_digest, manifest_size) = put(&manifest)?;
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest, "size": manifest_size,
                "annotations": HashMap::from([("org.opencontainers.image.ref.name", tag)]),
            }],
        });
        std::fs::write(
            dir.join("index.json"),
            serde_json::to_vec(&index).expect("json"),
        )?;
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
    }
}

fn non_empty(v: &[String]) -> serde_json::Value {
    if v.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!(v)
    }
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// This machine's architecture as OCI names it.
pub(crate) fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn layer_tar_gz(entries: &[LayerEntry]) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match entry {
            LayerEntry::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, path, std::io::empty())?;
            }
            LayerEntry::File(path, bytes, mode) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(bytes.len() as u64);
                tar.append_data(&mut header, path, &bytes[..])?;
            }
            LayerEntry::Symlink(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, path, target)?;
            }
        }
    }
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    gz.finish()
}
