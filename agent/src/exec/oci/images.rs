//! [`ImageStore`]: unpacked images, shared read-only by every task of this agent.
//!
//! ```text
//! <state-dir>/oci/images/<manifest hex>/rootfs   all layers applied (whiteouts resolved)
//! <state-dir>/oci/images/<manifest hex>/config.json  the image config
//! ```
//!
//! An image is unpacked once per manifest digest (into a temp dir renamed into place, so a
//! crash never leaves half an image), under a per-digest lock so that 50 tasks of one service
//! starting together unpack it once. A task never writes here: `bundle.rs` copies the rootfs
//! into the task's bundle. (Sharing the files themselves — hardlinks or overlayfs — would be
//! cheaper, but a hardlinked file written in place by one container would change it for
//! every other task; copying keeps tasks isolated. Layer-level sharing between images is not
//! done: each image is unpacked whole.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use oci_spec::image::ImageConfiguration;

use super::layout::LayoutImage;
use super::unpack::{apply_layer, remove_any};
use crate::exec::ExecError;

/// The image cache of one backend.
pub(crate) struct ImageStore {
    root: PathBuf,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// An unpacked image.
#[derive(Debug, Clone)]
pub(crate) struct Unpacked {
    pub(crate) rootfs: PathBuf,
    pub(crate) config: ImageConfiguration,
}

impl ImageStore {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self {
            root,
            locks: Mutex::default(),
        }
    }

    /// The unpacked rootfs of `image`, unpacking it first if this is its first use.
    pub(crate) async fn unpacked(&self, image: LayoutImage) -> Result<Unpacked, ExecError> {
        let hex = image
            .manifest_digest
            .strip_prefix("sha256:")
            .unwrap_or(&image.manifest_digest)
            .to_string();
        let dir = self.root.join(&hex);
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(locks.entry(hex.clone()).or_default())
        };
        let _guard = lock.lock().await;
        let rootfs = dir.join("rootfs");
        if !rootfs.is_dir() {
            let root = self.root.clone();
            let layers = image.layers.clone();
            let target = dir.clone();
            tokio::task::spawn_blocking(move || unpack_image(&root, &hex, &layers, &target))
                .await
                .map_err(|e| ExecError::Runtime(format!("unpacking the image panicked: {e}")))??;
        }
        Ok(Unpacked {
            rootfs,
            config: image.config,
        })
    }
}

fn unpack_image(root: &Path, hex: &str, layers: &[PathBuf], dir: &Path) -> Result<(), ExecError> {
    let tmp = root.join(format!(".{hex}.tmp"));
    remove_any(&tmp)?;
    let rootfs = tmp.join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(|e| ExecError::Io {
        context: format!("create {}", rootfs.display()),
        source: e,
    })?;
    for layer in layers {
        apply_layer(layer, &rootfs)?;
    }
    remove_any(dir)?;
    std::fs::rename(&tmp, dir).map_err(|e| ExecError::Io {
        context: format!("move the unpacked image to {}", dir.display()),
        source: e,
    })
}

/// Copies the tree at `from` to `to` (which must not exist): directories, regular files,
/// symlinks, with modes and owners. Other file types are skipped.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(from)?;
    let ft = meta.file_type();
    if ft.is_dir() {
        std::fs::create_dir(to)?;
        for child in std::fs::read_dir(from)? {
            let child = child?;
            copy_tree(&child.path(), &to.join(child.file_name()))?;
        }
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode()))?;
    } else if ft.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)?;
    } else if ft.is_file() {
        std::fs::copy(from, to)?;
    } else {
        return Ok(());
    }
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))
}
