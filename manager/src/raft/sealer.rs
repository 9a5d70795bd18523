//! [`Sealer`]: how raft records are stored — encrypted with the manager's data key
//! (`keymanager`), or as is when storage is opened without one (unit tests, tools). Each
//! entry is bound to its index and the snapshot to its slot, so records cannot be moved.

use std::borrow::Cow;
use std::path::Path;

use super::storage::StorageError;
use crate::keymanager::DataKey;

/// Seals and opens stored raft records.
#[derive(Debug, Clone, Default)]
pub struct Sealer {
    key: Option<DataKey>,
}

impl Sealer {
    pub fn new(key: Option<DataKey>) -> Self {
        Self { key }
    }

    fn entry_aad(index: u64) -> [u8; 14] {
        let mut aad = [0u8; 14];
        aad[..6].copy_from_slice(b"entry/");
        aad[6..].copy_from_slice(&index.to_be_bytes());
        aad
    }

    pub fn seal_entry(&self, index: u64, bytes: &[u8]) -> Vec<u8> {
        match &self.key {
            Some(k) => k.seal(bytes, &Self::entry_aad(index)),
            None => bytes.to_vec(),
        }
    }

    pub fn seal_snapshot(&self, bytes: &[u8]) -> Vec<u8> {
        match &self.key {
            Some(k) => k.seal(bytes, b"snapshot"),
            None => bytes.to_vec(),
        }
    }

    /// # Errors
    /// [`StorageError::Corrupted`] when the record does not open with this key.
    pub fn open_entry<'a>(
        &self,
        path: &Path,
        index: u64,
        bytes: &'a [u8],
    ) -> Result<Cow<'a, [u8]>, StorageError> {
        self.open(path, bytes, &Self::entry_aad(index), || {
            format!("log entry {index}")
        })
    }

    /// # Errors
    /// [`StorageError::Corrupted`] when the record does not open with this key.
    pub fn open_snapshot<'a>(
        &self,
        path: &Path,
        bytes: &'a [u8],
    ) -> Result<Cow<'a, [u8]>, StorageError> {
        self.open(path, bytes, b"snapshot", || "the snapshot".to_string())
    }

    fn open<'a>(
        &self,
        path: &Path,
        bytes: &'a [u8],
        aad: &[u8],
        what: impl FnOnce() -> String,
    ) -> Result<Cow<'a, [u8]>, StorageError> {
        match &self.key {
            None => Ok(Cow::Borrowed(bytes)),
            Some(k) => k
                .open(bytes, aad)
                .map(Cow::Owned)
                .map_err(|e| StorageError::Corrupted {
                    path: path.to_path_buf(),
                    detail: format!(
                        "{} does not decrypt with this manager's raft data key: {e}",
                        what()
                    ),
                }),
        }
    }
}
