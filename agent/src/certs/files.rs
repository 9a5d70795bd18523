//! [`NodeCerts`]: the root CA certificate and this node's key and certificate, as PEM, kept
//! in `<state-dir>/certificates/` (`swarm-root-ca.crt`, `swarm-node.crt`, `swarm-node.key`,
//! SwarmKit's names). Each file is written atomically (temp file, fsync, rename); the key is
//! created 0600.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::NodeIdentity;

const ROOT: &str = "swarm-root-ca.crt";
const CERT: &str = "swarm-node.crt";
const KEY: &str = "swarm-node.key";

/// Why certificates could not be read, written, made or used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("invalid certificate: {0}")]
    Invalid(String),
    #[error("{0}")]
    Crypto(String),
}

/// The certificates directory of a node whose state lives in `state_dir`.
pub fn certs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("certificates")
}

/// A node's TLS material, PEM encoded.
#[derive(Clone)]
pub struct NodeCerts {
    pub root_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for NodeCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCerts")
            .field("identity", &self.identity().ok())
            .finish_non_exhaustive()
    }
}

impl NodeCerts {
    /// Reads the three files from `dir`; `None` when there is no node certificate yet.
    ///
    /// # Errors
    /// A file exists but cannot be read, or the root or key is missing beside a certificate.
    pub fn load(dir: &Path) -> Result<Option<Self>, CertError> {
        let read = |name: &str| {
            let path = dir.join(name);
            fs::read(&path).map_err(|source| CertError::Io {
                what: "read",
                path,
                source,
            })
        };
        match fs::metadata(dir.join(CERT)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            _ => {}
        }
        let certs = Self {
            root_pem: read(ROOT)?,
            cert_pem: read(CERT)?,
            key_pem: read(KEY)?,
        };
        certs.identity()?;
        Ok(Some(certs))
    }

    /// Writes the three files into `dir` (created if missing).
    ///
    /// # Errors
    /// The directory or a file cannot be written.
    pub fn save(&self, dir: &Path) -> Result<(), CertError> {
        fs::create_dir_all(dir).map_err(|source| CertError::Io {
            what: "create",
            path: dir.to_path_buf(),
            source,
        })?;
        write_atomic(&dir.join(ROOT), &self.root_pem, 0o644)?;
        write_atomic(&dir.join(KEY), &self.key_pem, 0o600)?;
        write_atomic(&dir.join(CERT), &self.cert_pem, 0o644)
    }

    /// Who the node certificate names.
    ///
    /// # Errors
    /// The certificate PEM does not hold a node certificate.
    pub fn identity(&self) -> Result<NodeIdentity, CertError> {
        NodeIdentity::from_der(&first_der(&self.cert_pem)?)
    }
}

/// The DER of the first certificate in a PEM bundle.
///
/// # Errors
/// [`CertError::Invalid`] when there is none.
pub(crate) fn first_der(pem: &[u8]) -> Result<Vec<u8>, CertError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .next()
        .and_then(Result::ok)
        .map(|c| c.to_vec())
        .ok_or_else(|| CertError::Invalid("no PEM certificate found".into()))
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertError> {
    let err = |source| CertError::Io {
        what: "write",
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}
