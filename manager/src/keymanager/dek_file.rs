//! `<state-dir>/raft/dek.json`: this manager's raft data key (DEK), which encrypts the raft
//! log entries and snapshots in `raft.redb`. Unlocked swarms keep the DEK as is (the file is
//! 0600, like the node key); autolocked swarms keep it sealed with the [`UnlockKey`], so a
//! stolen disk reveals nothing without the key. Written atomically (temp file, fsync,
//! rename), so a rewrap either happens whole or not at all.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::{DataKey, UnlockKey};

/// The associated data of a wrapped DEK.
const AAD: &[u8] = b"swarm raft dek";

/// Why the DEK could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "this manager is locked: its raft data is encrypted with the swarm's unlock key; start it \
         with --unlock-key SWMKEY-1-… (`swarmctl cluster unlock-key` on an unlocked manager shows it)"
    )]
    Locked,
    #[error(
        "invalid unlock key: it does not decrypt this manager's raft data key (nothing was changed)"
    )]
    WrongKey,
    #[error("{} is missing: this state dir has no raft data key", .0.display())]
    Missing(PathBuf),
    #[error("{} is damaged: {}", .0.display(), .1)]
    Corrupt(PathBuf, String),
    #[error("{}: {}", .0.display(), .1)]
    Io(PathBuf, std::io::Error),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Stored {
    /// base64 of the DEK.
    Plain(String),
    /// base64 of the DEK sealed with the unlock key.
    Wrapped(String),
}

/// The DEK file of one state dir.
#[derive(Debug, Clone)]
pub struct DekFile {
    path: PathBuf,
}

impl DekFile {
    pub fn in_state_dir(dir: &Path) -> Self {
        Self {
            path: dir.join("raft").join("dek.json"),
        }
    }

    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Whether the stored DEK is wrapped (the manager needs the unlock key to start).
    ///
    /// # Errors
    /// As [`load`](Self::load), short of the key.
    pub fn is_locked(&self) -> Result<bool, LockError> {
        Ok(matches!(self.read()?, Stored::Wrapped(_)))
    }

    /// A new DEK, stored (wrapped if `lock` is given).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn create(&self, lock: Option<&UnlockKey>) -> Result<DataKey, LockError> {
        let dek = DataKey::generate();
        self.store(&dek, lock)?;
        Ok(dek)
    }

    /// The DEK; `unlock` is needed (and must be right) when it is wrapped, and ignored when not.
    ///
    /// # Errors
    /// [`LockError::Locked`] without a key, [`LockError::WrongKey`] with a wrong one.
    pub fn load(&self, unlock: Option<&UnlockKey>) -> Result<DataKey, LockError> {
        let corrupt = |what: &str| LockError::Corrupt(self.path.clone(), what.to_string());
        let decode = |b64: &str| STANDARD.decode(b64).map_err(|_| corrupt("not base64"));
        let bytes = match self.read()? {
            Stored::Plain(b64) => decode(&b64)?,
            Stored::Wrapped(b64) => {
                let key = unlock.ok_or(LockError::Locked)?;
                key.wrapping_key()
                    .open(&decode(&b64)?, AAD)
                    .map_err(|_| LockError::WrongKey)?
            }
        };
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| corrupt("not a 32-byte key"))?;
        Ok(DataKey::from_bytes(bytes))
    }

    /// Stores `dek`, wrapped with `lock` if given, replacing the file atomically.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn store(&self, dek: &DataKey, lock: Option<&UnlockKey>) -> Result<(), LockError> {
        let stored = match lock {
            None => Stored::Plain(STANDARD.encode(dek.as_bytes())),
            Some(k) => Stored::Wrapped(STANDARD.encode(k.wrapping_key().seal(dek.as_bytes(), AAD))),
        };
        let json = serde_json::to_vec(&stored).expect("serializable");
        let io = |e| LockError::Io(self.path.clone(), e);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(&json).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }

    fn read(&self) -> Result<Stored, LockError> {
        let bytes = std::fs::read(&self.path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => LockError::Missing(self.path.clone()),
            _ => LockError::Io(self.path.clone(), e),
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| LockError::Corrupt(self.path.clone(), e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_dek_needs_the_right_key_and_a_wrong_one_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = DekFile::in_state_dir(dir.path());
        let key = UnlockKey::generate();
        let dek = file.create(Some(&key)).unwrap();
        assert!(file.is_locked().unwrap());
        let before = std::fs::read(dir.path().join("raft/dek.json")).unwrap();
        assert!(matches!(file.load(None), Err(LockError::Locked)));
        assert!(matches!(
            file.load(Some(&UnlockKey::generate())),
            Err(LockError::WrongKey)
        ));
        assert_eq!(
            std::fs::read(dir.path().join("raft/dek.json")).unwrap(),
            before
        );
        assert_eq!(file.load(Some(&key)).unwrap().as_bytes(), dek.as_bytes());

        file.store(&dek, None).unwrap();
        assert!(!file.is_locked().unwrap());
        assert_eq!(file.load(None).unwrap().as_bytes(), dek.as_bytes());
        assert!(matches!(
            DekFile::in_state_dir(&dir.path().join("nope")).load(None),
            Err(LockError::Missing(_))
        ));
    }
}
