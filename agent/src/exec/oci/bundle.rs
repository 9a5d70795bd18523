//! Building a task's bundle (blocking I/O, run on the blocking pool):
//!
//! ```text
//! <state-dir>/oci/tasks/<task id>/bundle/rootfs        a private copy of the image rootfs
//! <state-dir>/oci/tasks/<task id>/bundle/config.json   runtime_spec::build(...)
//! ```
//!
//! Built in `bundle.tmp` and renamed, so an existing `bundle/` is always complete (a
//! repeated `prepare` after an agent restart finds it and does nothing).

use std::io::Read;
use std::path::Path;

use super::images::{Unpacked, copy_tree};
use super::runtime_spec::{self, Accounts};
use super::spec::OciTaskSpec;
use super::unpack::remove_any;
use crate::exec::ExecError;

/// Builds `<task dir>/bundle` unless it exists.
pub(crate) fn build(
    task_dir: &Path,
    hostname: &str,
    spec: &OciTaskSpec,
    image: &Unpacked,
) -> Result<(), ExecError> {
    let bundle = task_dir.join("bundle");
    if bundle.join("config.json").is_file() {
        return Ok(());
    }
    let tmp = task_dir.join("bundle.tmp");
    remove_any(&tmp)?;
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    let rootfs = tmp.join("rootfs");
    copy_tree(&image.rootfs, &rootfs).map_err(|e| io(&rootfs, e))?;
    let accounts = Accounts {
        passwd: read_small(&rootfs.join("etc/passwd")),
        group: read_small(&rootfs.join("etc/group")),
    };
    let config = runtime_spec::build(spec, &image.config, hostname, &accounts)?;
    let path = tmp.join("config.json");
    config
        .save(&path)
        .map_err(|e| ExecError::Runtime(format!("write {}: {e}", path.display())))?;
    remove_any(&bundle)?;
    std::fs::rename(&tmp, &bundle).map_err(|e| io(&bundle, e))
}

/// A file of the rootfs read as text (at most 1 MiB; missing or unreadable = empty). A
/// symlink is not followed out of the rootfs: only regular files are read.
fn read_small(path: &Path) -> String {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return String::new();
    };
    if !meta.is_file() {
        return String::new();
    }
    let mut out = String::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(1 << 20).read_to_string(&mut out);
    }
    out
}

fn io(path: &Path, e: std::io::Error) -> ExecError {
    ExecError::Io {
        context: format!("build bundle {}", path.display()),
        source: e,
    }
}
