//! Unpacking image layers into a rootfs: tar or tar+gzip (detected by its magic bytes),
//! applied bottom-up, with the OCI whiteouts of the image spec:
//!
//! - `DIR/.wh.NAME` deletes `DIR/NAME` from the layers below;
//! - `DIR/.wh..wh..opq` (opaque dir) deletes everything below in `DIR` before this layer's
//!   own entries of `DIR` are added (the spec lets an opaque marker come after them in the
//!   tar, so each layer is applied in two passes: whiteouts first, then entries).
//!
//! Hostile tars cannot write outside the rootfs: entry paths with `..` or that are absolute
//! are refused, and `tar`'s `unpack_in` refuses to write through a symlink that leaves the
//! root. Device nodes are skipped (containers get theirs from runc).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use crate::exec::ExecError;

/// The prefix of a whiteout file name.
const WHITEOUT: &str = ".wh.";
/// The name of an opaque-directory marker.
const OPAQUE: &str = ".wh..wh..opq";

/// What one tar entry asks for (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// Delete this path (relative to the rootfs) from the layers below.
    Whiteout(PathBuf),
    /// Empty this directory (relative) of what the layers below put there.
    Opaque(PathBuf),
    /// Unpack the entry at this relative path.
    Normal(PathBuf),
}

/// Classifies an entry path, refusing paths that would leave the rootfs.
pub(crate) fn classify(path: &Path) -> Result<EntryKind, String> {
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => rel.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(format!(
                    "layer entry '{}' leaves the rootfs",
                    path.display()
                ));
            }
        }
    }
    let Some(name) = rel.file_name().and_then(|n| n.to_str()) else {
        return Ok(EntryKind::Normal(rel));
    };
    if name == OPAQUE {
        return Ok(EntryKind::Opaque(
            rel.parent().unwrap_or(Path::new("")).to_path_buf(),
        ));
    }
    if let Some(target) = name.strip_prefix(WHITEOUT) {
        if target.is_empty() {
            return Err(format!(
                "layer entry '{}' is an empty whiteout",
                path.display()
            ));
        }
        return Ok(EntryKind::Whiteout(rel.with_file_name(target)));
    }
    Ok(EntryKind::Normal(rel))
}

/// Applies the layer at `layer` on top of `rootfs`.
///
/// # Errors
/// [`ExecError::InvalidTask`] for a malformed or hostile layer, [`ExecError::Io`] otherwise.
pub(crate) fn apply_layer(layer: &Path, rootfs: &Path) -> Result<(), ExecError> {
    // Pass 1: whiteouts and opaque markers delete from the layers below.
    for_each_entry(layer, |entry| {
        let path = entry.path().map_err(bad(layer))?.into_owned();
        match classify(&path).map_err(ExecError::InvalidTask)? {
            EntryKind::Whiteout(rel) => remove_any(&rootfs.join(rel))?,
            EntryKind::Opaque(rel) => {
                let dir = rootfs.join(rel);
                if let Ok(children) = std::fs::read_dir(&dir) {
                    for child in children.flatten() {
                        remove_any(&child.path())?;
                    }
                }
            }
            EntryKind::Normal(_) => {}
        }
        Ok(())
    })?;
    // Pass 2: this layer's own entries.
    for_each_entry(layer, |mut entry| {
        let path = entry.path().map_err(bad(layer))?.into_owned();
        let EntryKind::Normal(rel) = classify(&path).map_err(ExecError::InvalidTask)? else {
            return Ok(());
        };
        let kind = entry.header().entry_type();
        if kind.is_block_special() || kind.is_character_special() || kind.is_fifo() {
            return Ok(());
        }
        // A file replacing a directory (or the reverse) in a higher layer: the lower one goes.
        let target = rootfs.join(&rel);
        if let Ok(meta) = std::fs::symlink_metadata(&target)
            && (meta.is_dir() != kind.is_dir() || meta.file_type().is_symlink())
        {
            remove_any(&target)?;
        }
        entry.set_preserve_mtime(true);
        entry.set_unpack_xattrs(false);
        let unpacked = entry.unpack_in(rootfs).map_err(|e| {
            ExecError::InvalidTask(format!(
                "layer {}: cannot unpack '{}': {e}",
                layer.display(),
                rel.display()
            ))
        })?;
        if !unpacked {
            return Err(ExecError::InvalidTask(format!(
                "layer {}: entry '{}' leaves the rootfs",
                layer.display(),
                rel.display()
            )));
        }
        Ok(())
    })
}

fn for_each_entry(
    layer: &Path,
    mut f: impl FnMut(tar::Entry<'_, Box<dyn Read>>) -> Result<(), ExecError>,
) -> Result<(), ExecError> {
    let mut archive = tar::Archive::new(open_layer(layer)?);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(bad(layer))? {
        f(entry.map_err(bad(layer))?)?;
    }
    Ok(())
}

/// The layer as a tar stream, un-gzipped when it starts with gzip's magic bytes.
fn open_layer(layer: &Path) -> Result<Box<dyn Read>, ExecError> {
    let io = |e| ExecError::Io {
        context: format!("open layer {}", layer.display()),
        source: e,
    };
    let mut file = BufReader::new(File::open(layer).map_err(io)?);
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(io)?;
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let stream = head.chain(file);
    Ok(if magic[..n] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(stream))
    } else {
        Box::new(stream)
    })
}

fn bad(layer: &Path) -> impl Fn(std::io::Error) -> ExecError + '_ {
    move |e| ExecError::InvalidTask(format!("layer {} is not a valid tar: {e}", layer.display()))
}

/// Removes a file, symlink or directory tree; a missing path is fine.
pub(crate) fn remove_any(path: &Path) -> Result<(), ExecError> {
    let result = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    result.map_err(|e| ExecError::Io {
        context: format!("remove {}", path.display()),
        source: e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_and_opaque_markers_are_classified() {
        let c = |p: &str| classify(Path::new(p));
        assert_eq!(c("etc/passwd"), Ok(EntryKind::Normal("etc/passwd".into())));
        assert_eq!(
            c("./etc/.wh.motd"),
            Ok(EntryKind::Whiteout("etc/motd".into()))
        );
        assert_eq!(c("/var/.wh..wh..opq"), Ok(EntryKind::Opaque("var".into())));
        assert_eq!(c(".wh..wh..opq"), Ok(EntryKind::Opaque("".into())));
        assert!(
            c("../etc/passwd")
                .unwrap_err()
                .contains("leaves the rootfs")
        );
        assert!(c("a/../../b").is_err());
        assert!(c("a/.wh.").unwrap_err().contains("empty whiteout"));
    }
}
