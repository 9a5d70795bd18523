//! An OCI image layout packed in a tar file (`oci-layout:/images/app.tar[:TAG]`: what
//! `docker save` writes since Docker 25, and `skopeo copy … oci-archive:FILE`). It is
//! unpacked once per file content into `<state>/oci/layouts/<sha256 of the tar>/` and then
//! read as a layout directory, digests checked as for any layout.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::exec::ExecError;

/// The layout directory for `tar`, unpacked under `layouts` if it is not there yet.
///
/// # Errors
/// [`ExecError::NotFound`] when the file cannot be read, [`ExecError::InvalidTask`] when it
/// is not a tar archive.
pub(crate) fn unpacked(tar: &Path, layouts: &Path) -> Result<PathBuf, ExecError> {
    let read_err = |e: std::io::Error| {
        ExecError::NotFound(format!(
            "cannot read the image archive {}: {e}",
            tar.display()
        ))
    };
    let mut file = std::fs::File::open(tar).map_err(read_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let hex = hex::encode(hasher.finalize());
    let dir = layouts.join(&hex);
    if dir.join("oci-layout").is_file() {
        return Ok(dir);
    }
    let io = |what: &str, e: std::io::Error| ExecError::Runtime(format!("{what}: {e}"));
    std::fs::create_dir_all(layouts).map_err(|e| io("creating the layouts directory", e))?;
    let tmp = layouts.join(format!("{hex}.partial-{}", rand::random::<u64>()));
    let unpack = || -> std::io::Result<()> {
        let mut archive = tar::Archive::new(std::fs::File::open(tar)?);
        archive.set_preserve_permissions(false);
        // `unpack` keeps every entry inside `tmp` (no absolute paths, no '..').
        archive.unpack(&tmp)
    };
    if let Err(e) = unpack() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(ExecError::InvalidTask(format!(
            "{} is not an OCI image layout archive (tar): {e}",
            tar.display()
        )));
    }
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another task unpacked the same archive first.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_is_unpacked_once_and_garbage_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let layout = d.path().join("layout");
        std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        std::fs::write(
            layout.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        std::fs::write(layout.join("index.json"), b"{}").unwrap();
        let archive = d.path().join("image.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&archive).unwrap());
        b.append_dir_all(".", &layout).unwrap();
        b.finish().unwrap();
        drop(b);

        let layouts = d.path().join("layouts");
        let dir = unpacked(&archive, &layouts).unwrap();
        assert!(dir.join("oci-layout").is_file() && dir.join("index.json").is_file());
        assert_eq!(unpacked(&archive, &layouts).unwrap(), dir, "reused");
        assert_eq!(
            std::fs::read_dir(&layouts).unwrap().count(),
            1,
            "no partial dirs left"
        );

        let junk = d.path().join("junk.tar");
        std::fs::write(&junk, vec![0x5a; 2000]).unwrap();
        let e = unpacked(&junk, &layouts).unwrap_err().to_string();
        assert!(e.contains("is not an OCI image layout archive"), "{e}");
        let e = unpacked(&d.path().join("missing.tar"), &layouts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read the image archive"), "{e}");
    }
}
