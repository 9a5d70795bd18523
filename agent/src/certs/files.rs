//! [`NodeCerts`]: the root CA certificate and this node's key and certificate, as PEM, kept
//! by [`CertFiles`] in `<state-dir>/certificates/` (`swarm-root-ca.crt`, `swarm-node.crt`,
//! `swarm-node.key`, SwarmKit's names). Each file is written atomically (temp file, fsync,
//! rename), so a crash leaves the old file or the new one; the key is created 0600 and
//! stored through the node's [`KeyProtection`] (sealed on an autolocked manager).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{KeyCodec, KeyProtection, NodeIdentity};

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
    /// The key file is sealed and cannot be opened with the node's current protection.
    #[error("{0}")]
    SealedKey(String),
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

/// A node's `certificates/` directory, its key read and written through the node's
/// [`KeyProtection`]. Clones share the protection.
#[derive(Debug, Clone)]
pub struct CertFiles {
    dir: PathBuf,
    key: KeyProtection,
}

impl CertFiles {
    pub fn new(dir: PathBuf, key: KeyProtection) -> Self {
        Self { dir, key }
    }

    /// A worker's files: the key in plain PEM.
    pub fn plain(dir: PathBuf) -> Self {
        Self::new(dir, KeyProtection::default())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the three files; `None` when there is no node certificate yet.
    ///
    /// # Errors
    /// A file exists but cannot be read, the root or key is missing beside a certificate,
    /// or the key is sealed and the current protection cannot open it.
    pub fn load(&self) -> Result<Option<NodeCerts>, CertError> {
        let read = |name: &str| {
            let path = self.dir.join(name);
            fs::read(&path).map_err(|source| CertError::Io {
                what: "read",
                path,
                source,
            })
        };
        match fs::metadata(self.dir.join(CERT)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            _ => {}
        }
        let key_pem = {
            let codec = self.key.lock();
            codec.decode(&read(KEY)?)?
        };
        let certs = NodeCerts {
            root_pem: read(ROOT)?,
            cert_pem: read(CERT)?,
            key_pem,
        };
        certs.identity()?;
        Ok(Some(certs))
    }

    /// Writes the three files (the directory is created if missing), the key encoded by the
    /// current protection.
    ///
    /// # Errors
    /// The directory or a file cannot be written.
    pub fn save(&self, certs: &NodeCerts) -> Result<(), CertError> {
        fs::create_dir_all(&self.dir).map_err(|source| CertError::Io {
            what: "create",
            path: self.dir.clone(),
            source,
        })?;
        write_atomic(&self.dir.join(ROOT), &certs.root_pem, 0o644)?;
        {
            let codec = self.key.lock();
            write_atomic(&self.dir.join(KEY), &codec.encode(&certs.key_pem), 0o600)?;
        }
        write_atomic(&self.dir.join(CERT), &certs.cert_pem, 0o644)
    }

    /// Makes `codec` the node key's protection, first rewriting the key file (if there is
    /// one) under it: read with the current codec, written atomically with the new one. On
    /// an error nothing changed.
    ///
    /// # Errors
    /// The key file cannot be read, opened or written.
    pub fn protect(&self, codec: Arc<dyn KeyCodec>) -> Result<(), CertError> {
        let mut current = self.key.lock();
        let path = self.dir.join(KEY);
        match fs::read(&path) {
            Ok(stored) => {
                let pem = current.decode(&stored)?;
                write_atomic(&path, &codec.encode(&pem), 0o600)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(CertError::Io {
                    what: "read",
                    path,
                    source,
                });
            }
        }
        tracing::debug!(
            from = current.name(),
            to = codec.name(),
            "node key protection changed"
        );
        *current = codec;
        Ok(())
    }

    /// Uses `codec` from now on without touching the files: for a manager starting up,
    /// whose codec opens whatever its earlier runs wrote.
    pub fn use_codec(&self, codec: Arc<dyn KeyCodec>) {
        *self.key.lock() = codec;
    }
}

impl NodeCerts {
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
