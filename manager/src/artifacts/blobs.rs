//! [`BlobStore`]: the bytes of artifacts on one manager, in `<state-dir>/artifacts.redb`.
//!
//! Content-addressed by digest. Chunks arrive from applied raft entries (one 1 MiB chunk per
//! entry, see [`crate::store::BlobSink`]); when the entry creating the artifact applies, the
//! blob is *sealed*: its chunks are checked to be contiguous, of the artifact's size and of
//! its sha256, and only a sealed blob is served to agents. Every write is one redb
//! transaction committed with `Durability::Immediate` (fsync), and every write is
//! idempotent, so replaying the log after a restart changes nothing.
//!
//! Not covered here (the multi-manager issue): a manager that joins later, or falls so far
//! behind that it installs a raft snapshot, gets the artifact metadata with the snapshot but
//! none of the bytes, whose entries were compacted away. Streaming blobs alongside snapshot
//! installation belongs with the raft transport between managers; until then such a manager
//! logs the missing blob at seal time and answers fetches with `NOT_FOUND`, and agents
//! retry on another manager.
//!
//! Chunks of a push that was abandoned before its commit stay in the file until the same
//! bytes are pushed and removed again (they are keyed by digest, so a retry reuses them).

use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use sha2::{Digest, Sha256};

use crate::store::{BlobOp, BlobSink};

/// (digest, offset) → bytes.
const CHUNKS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("artifact_chunks");
/// digest → size, for blobs whose chunks were verified.
const SEALED: TableDefinition<&str, u64> = TableDefinition::new("artifact_sealed");

/// Why the blob store failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("artifact blob store {path}: {op}: {source}")]
    Db {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: Box<redb::Error>,
    },
}

/// The artifact bytes held by this manager.
pub struct BlobStore {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("path", &self.path)
            .finish()
    }
}

impl BlobStore {
    /// Opens (creating if needed) the blob store at `path`.
    pub fn open(path: &Path) -> Result<Self, BlobError> {
        let err = |op| move |e: redb::DatabaseError| db_error(path, op, e);
        let db = Database::create(path).map_err(err("open"))?;
        let store = Self {
            db,
            path: path.to_path_buf(),
        };
        store.write("create tables", |txn| {
            txn.open_table(CHUNKS)?;
            txn.open_table(SEALED)?;
            Ok(())
        })?;
        Ok(store)
    }

    /// The size of the sealed blob `digest`, or `None` when this manager does not hold it
    /// complete and verified.
    pub fn sealed_size(&self, digest: &str) -> Result<Option<u64>, BlobError> {
        let read = || -> Result<Option<u64>, redb::Error> {
            let txn = self.db.begin_read()?;
            let size = txn.open_table(SEALED)?.get(digest)?;
            Ok(size.map(|s| s.value()))
        };
        read().map_err(|e| db_error(&self.path, "read sealed blobs", e))
    }

    /// Up to `max_len` bytes of the sealed blob `digest` from `offset` (empty at or past its
    /// end), or `None` when the blob is not sealed here.
    pub fn read(
        &self,
        digest: &str,
        offset: u64,
        max_len: usize,
    ) -> Result<Option<Vec<u8>>, BlobError> {
        if self.sealed_size(digest)?.is_none() {
            return Ok(None);
        }
        let read = || -> Result<Vec<u8>, redb::Error> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(CHUNKS)?;
            // The chunk holding `offset` starts at or before it: the last key <= (digest, offset).
            let start = table
                .range((digest, 0)..=(digest, offset))?
                .next_back()
                .transpose()?
                .map_or(0, |(k, _)| k.value().1);
            let mut out = Vec::new();
            for item in table.range((digest, start)..=(digest, u64::MAX))? {
                let (k, v) = item?;
                let data = v.value();
                let skip =
                    usize::try_from(offset.saturating_sub(k.value().1)).unwrap_or(usize::MAX);
                let piece = data.get(skip..).unwrap_or_default();
                let room = max_len - out.len();
                out.extend_from_slice(&piece[..piece.len().min(room)]);
                if out.len() == max_len {
                    break;
                }
            }
            Ok(out)
        };
        read()
            .map(Some)
            .map_err(|e| db_error(&self.path, "read blob chunks", e))
    }

    /// Applies `ops` in one durable transaction.
    pub fn write_ops(&self, ops: &[BlobOp<'_>]) -> Result<(), BlobError> {
        self.write("apply blob operations", |txn| {
            for op in ops {
                match *op {
                    BlobOp::Chunk(c) => {
                        txn.open_table(CHUNKS)?
                            .insert((c.digest.as_str(), c.offset), c.data.as_slice())?;
                    }
                    BlobOp::Seal { digest, size } => seal(txn, digest, size)?,
                    BlobOp::Delete { digest } => {
                        txn.open_table(CHUNKS)?
                            .retain_in((digest, 0)..=(digest, u64::MAX), |_, _| false)?;
                        txn.open_table(SEALED)?.remove(digest)?;
                    }
                }
            }
            Ok(())
        })
    }

    fn write(
        &self,
        op: &'static str,
        f: impl FnOnce(&WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), BlobError> {
        let write = || -> Result<(), redb::Error> {
            let mut txn = self.db.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            f(&txn)?;
            txn.commit()?;
            Ok(())
        };
        write().map_err(|e| db_error(&self.path, op, e))
    }
}

/// Marks `digest` sealed when its chunks are contiguous from 0, `size` bytes long and hash
/// to `digest`; otherwise leaves it unsealed and says why.
fn seal(txn: &WriteTransaction, digest: &str, size: u64) -> Result<(), redb::Error> {
    if txn.open_table(SEALED)?.get(digest)?.is_some() {
        return Ok(());
    }
    let chunks = txn.open_table(CHUNKS)?;
    let mut hasher = Sha256::new();
    let mut next = 0u64;
    for item in chunks.range((digest, 0)..=(digest, u64::MAX))? {
        let (k, v) = item?;
        let at = k.value().1;
        if at != next {
            break;
        }
        let data = v.value();
        hasher.update(data);
        next += data.len() as u64;
    }
    drop(chunks);
    let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
    if next != size || actual != digest {
        tracing::error!(
            %digest,
            expected_size = size,
            contiguous_bytes = next,
            "artifact bytes are not complete on this manager; agents will fetch them from another \
             manager (a manager that joined through a raft snapshot has no blobs yet)"
        );
        return Ok(());
    }
    txn.open_table(SEALED)?.insert(digest, size)?;
    Ok(())
}

impl BlobSink for BlobStore {
    fn apply(&self, ops: &[BlobOp<'_>]) {
        if let Err(e) = self.write_ops(ops) {
            // The metadata still applies (every replica must reach the same store state);
            // this manager just cannot serve these bytes.
            tracing::error!(error = %e, "artifact blob store write failed");
        }
    }
}

fn db_error(path: &Path, op: &'static str, e: impl Into<redb::Error>) -> BlobError {
    BlobError::Db {
        path: path.to_path_buf(),
        op,
        source: Box::new(e.into()),
    }
}

#[cfg(test)]
#[path = "blobs_tests.rs"]
mod tests;
