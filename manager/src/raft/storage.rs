//! The raft log on disk: a [`raft::Storage`] backed by one redb file (`<state-dir>/raft/raft.redb`).
//!
//! # Layout
//!
//! ```text
//! raft_entries  u64 -> Entry (protobuf)     one row per log index, contiguous first_index..=last_index
//! raft_meta     str -> bytes                "hard_state" HardState, "conf_state" ConfState,
//!                                           "truncated" index(u64 BE) ++ term(u64 BE) of the entry
//!                                           just before first_index (kept so term(first_index-1)
//!                                           still answers after compaction)
//! raft_snapshot str -> bytes                "metadata" SnapshotMetadata, "data" the raw snapshot data
//! ```
//!
//! # Durability
//!
//! Every mutating method runs ONE redb write transaction committed with
//! [`Durability::Immediate`] (fsync) and returns only after the commit; the in-memory view is
//! updated after the commit succeeds, so readers never see state that is not on disk. The raft
//! driver must call [`RaftStorage::persist`] for a `Ready` before sending the messages that
//! depend on it (raft-rs `examples/five_mem_node`: persist → send → apply → advance).
//!
//! The exception for the leader's own log: [`RaftStorage::stage`] puts a `Ready`'s entries
//! and hard state in memory at once (raft-rs's `advance_append_async` needs them readable)
//! and [`RaftStorage::write_staged`] makes them durable later, off the driver's loop, in
//! staging order. Raft counts them as persisted only when told so after that write
//! (`on_persist_ready`), so nothing commits or applies on the strength of a write not on disk.
//! Staged entries stay in the in-memory tail until written. While a staged write is pending,
//! appends that would replace entries and snapshot installs are refused (the driver drains
//! its writer first); the other writes (a snapshot made by the node, the conf state) touch
//! only durable entries and write a commit index no further than the durable log. So the
//! disk always holds a prefix of what was staged, with a hard state that matches it.
//!
//! The one exception is [`RaftStorage::set_commit`] (the commit index of a `LightReady`): it
//! raises the commit index in memory and is written by the next transaction, without an fsync
//! of its own, as etcd does. Losing it in a crash is safe: raft learns the commit index again.
//!
//! # Memory
//!
//! Hard state, conf state, snapshot metadata and the log bounds live in memory, as does the tail
//! of the log up to [`DEFAULT_CACHE_BYTES`]; `entries()`/`term()` for recent indexes never touch
//! disk. Older entries are read (and decoded) from redb on demand. Snapshot data stays on disk.
//!
//! # Corruption
//!
//! [`RaftStorage::open`] refuses a file that is not a redb database, metadata that does not
//! decode, and a log with holes, with [`StorageError::Corrupted`]; it never treats a damaged
//! file as empty. Entries older than the cached tail are verified when first read.
//!
//! Semantics follow raft-rs's `MemStorage` (same errors for compacted/unavailable indexes, same
//! `max_size` rule); the differences are listed on the methods concerned.

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use protobuf::Message;

use raft::prelude::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{Error as RaftError, GetEntriesContext, RaftState, StorageError as RaftStorageError};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};

use super::sealer::Sealer;
use crate::keymanager::DataKey;

const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_entries");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_snapshot");

const KEY_HARD_STATE: &str = "hard_state";
const KEY_CONF_STATE: &str = "conf_state";
const KEY_TRUNCATED: &str = "truncated";
const KEY_SNAP_META: &str = "metadata";
const KEY_SNAP_DATA: &str = "data";

/// Default byte budget of the in-memory tail of the log.
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// Errors of the raft log storage. Messages say what the operator can do.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The file is not a redb database, or a record in it does not decode, or the log has holes.
    #[error(
        "raft database at {path} is corrupted: {detail}; refusing to start (restore it from a \
         backup, or move it aside and join the cluster again as a new member)"
    )]
    Corrupted { path: PathBuf, detail: String },
    /// Another process holds the database open.
    #[error("raft database at {path} is already open by another process; stop that process first")]
    InUse { path: PathBuf },
    /// The database could not be opened for another reason (permissions, unsupported format, …).
    #[error("cannot open raft database at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: Box<redb::DatabaseError>,
    },
    /// A read or write transaction failed.
    #[error("raft database at {path}: {op} failed: {source}")]
    Db {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: Box<redb::Error>,
    },
    /// A protobuf record could not be encoded.
    #[error("raft database at {path}: cannot encode {what}: {source}")]
    Encode {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: Box<protobuf::ProtobufError>,
    },
    /// `initialize` on a database that already holds raft state.
    #[error(
        "raft database at {path} already holds raft state; refusing to initialize it again \
         (start the node without `init`, or use --force-new-cluster)"
    )]
    AlreadyInitialized { path: PathBuf },
    /// A snapshot older than what the log already covers.
    #[error("snapshot at index {index} is out of date (the log already covers up to {covered})")]
    SnapshotOutOfDate { index: u64, covered: u64 },
    /// A caller broke a log invariant (gap, overwrite of compacted entries, …): a driver bug.
    #[error("invalid raft log operation: {0}")]
    InvalidOperation(String),
}

/// Index and term of one log position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct LogId {
    index: u64,
    term: u64,
}

/// A contiguous suffix of the log, bounded by the encoded size of its entries.
struct TailCache {
    entries: VecDeque<(Entry, u64)>,
    bytes: u64,
    limit: u64,
}

impl TailCache {
    fn new(limit: u64) -> Self {
        TailCache {
            entries: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|(e, _)| e.index)
    }

    fn get(&self, index: u64) -> Option<&(Entry, u64)> {
        let first = self.first_index()?;
        let offset = usize::try_from(index.checked_sub(first)?).ok()?;
        self.entries.get(offset)
    }

    /// Drops every entry with an index `>= index`.
    fn truncate_from(&mut self, index: u64) {
        while self.entries.back().is_some_and(|(e, _)| e.index >= index) {
            if let Some((_, size)) = self.entries.pop_back() {
                self.bytes -= size;
            }
        }
    }

    /// Drops every entry with an index `< index`.
    fn compact_to(&mut self, index: u64) {
        while self.entries.front().is_some_and(|(e, _)| e.index < index) {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some((_, size)) = self.entries.pop_front() {
            self.bytes -= size;
        }
    }

    /// Appends at the tail (the caller keeps the suffix contiguous; [`Self::shrink`] evicts).
    fn push_back(&mut self, entry: Entry, size: u64) {
        self.bytes += size;
        self.entries.push_back((entry, size));
    }

    /// Evicts from the front down to the byte budget, but only entries up to `durable` (on
    /// disk, so readable from there): a staged entry is only in memory until written.
    fn shrink(&mut self, durable: u64) {
        while self.bytes > self.limit && self.first_index().is_some_and(|i| i <= durable) {
            self.pop_front();
        }
    }

    /// Prepends while loading at open; false (and nothing added) once the budget is full.
    fn push_front(&mut self, entry: Entry, size: u64) -> bool {
        if self.bytes + size > self.limit {
            return false;
        }
        self.bytes += size;
        self.entries.push_front((entry, size));
        true
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

/// The in-memory view; equal to what is committed on disk, except a commit index raised by
/// `set_commit` while `commit_unsynced` is set, and staged writes not yet written.
struct Core {
    hard_state: HardState,
    commit_unsynced: bool,
    conf_state: ConfState,
    snapshot_meta: SnapshotMetadata,
    truncated: LogId,
    last_index: u64,
    /// The last index on disk (below `last_index` while staged entries are being written).
    durable_index: u64,
    cache: TailCache,
}

impl Core {
    fn first_index(&self) -> u64 {
        self.truncated.index + 1
    }

    fn is_empty(&self) -> bool {
        self.hard_state == HardState::default()
            && self.conf_state == ConfState::default()
            && self.last_index == 0
            && self.snapshot_meta.index == 0
    }
}

struct Inner {
    path: PathBuf,
    sealer: Sealer,
    db: Database,
    core: RwLock<Core>,
    /// Set when raft asked for a snapshot that is not there yet.
    snapshot_wanted: std::sync::atomic::AtomicBool,
    /// Staged writes not yet written.
    staged: std::sync::atomic::AtomicUsize,
}

/// The redb-backed raft log. Cheap to clone (all clones share one database).
///
/// Implements [`raft::Storage`] for the `RawNode`; the mutating methods are for the raft driver.
#[derive(Clone)]
pub struct RaftStorage {
    inner: Arc<Inner>,
}

impl fmt::Debug for RaftStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = self.read_core();
        f.debug_struct("RaftStorage")
            .field("path", &self.inner.path)
            .field("first_index", &core.first_index())
            .field("last_index", &core.last_index)
            .field("hard_state", &core.hard_state)
            .finish_non_exhaustive()
    }
}

impl RaftStorage {
    /// Opens or creates `path` (a redb file), with a [`DEFAULT_CACHE_BYTES`] tail cache.
    ///
    /// A file that is not a valid redb database, or whose records fail to decode, is
    /// [`StorageError::Corrupted`] — never silently treated as empty.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        Self::open_with_cache_limit(path, DEFAULT_CACHE_BYTES)
    }

    /// [`RaftStorage::open`] with log entries and snapshots encrypted with `key` (how a
    /// manager opens its log; see `keymanager`). A record that does not decrypt is
    /// [`StorageError::Corrupted`].
    pub fn open_sealed(path: &Path, key: DataKey) -> Result<Self, StorageError> {
        Self::open_inner(path, DEFAULT_CACHE_BYTES, Sealer::new(Some(key)))
    }

    /// [`RaftStorage::open`] with an explicit byte budget for the in-memory tail of the log
    /// (`0` disables the cache: every read goes to redb).
    pub fn open_with_cache_limit(path: &Path, cache_bytes: u64) -> Result<Self, StorageError> {
        Self::open_inner(path, cache_bytes, Sealer::default())
    }

    fn open_inner(path: &Path, cache_bytes: u64, sealer: Sealer) -> Result<Self, StorageError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_error(path, e.into()))?;
        }
        let db = Database::create(path).map_err(|e| open_error(path, e))?;
        // Create the tables on a fresh file so readers can always open them.
        let txn = db
            .begin_write()
            .map_err(|e| db_error(path, "create tables", e))?;
        let created = (|| -> Result<(), redb::Error> {
            txn.open_table(ENTRIES)?;
            txn.open_table(META)?;
            txn.open_table(SNAPSHOT)?;
            Ok(())
        })();
        created.map_err(|e| db_error(path, "create tables", e))?;
        txn.commit()
            .map_err(|e| db_error(path, "create tables", e))?;

        let core = load(path, &db, cache_bytes, &sealer)?;
        tracing::debug!(
            path = %path.display(),
            first_index = core.first_index(),
            last_index = core.last_index,
            cached = core.cache.entries.len(),
            commit = core.hard_state.commit,
            term = core.hard_state.term,
            "opened raft log"
        );
        Ok(RaftStorage {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                sealer,
                db,
                core: RwLock::new(core),
                snapshot_wanted: Default::default(),
                staged: Default::default(),
            }),
        })
    }

    /// True after raft asked for a snapshot this storage could not give (a follower that
    /// needs one), until [`Self::create_snapshot`] makes one.
    pub fn snapshot_requested(&self) -> bool {
        self.inner
            .snapshot_wanted
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The commit index this storage holds (what a snapshot may cover).
    pub fn commit_index(&self) -> u64 {
        self.read_core().hard_state.commit
    }

    /// True if the database has never held any raft state (fresh file).
    pub fn is_empty(&self) -> bool {
        self.read_core().is_empty()
    }

    /// Bootstraps a fresh log with `conf_state` (used by `init`); errors if not [`Self::is_empty`].
    ///
    /// Writes what raft-rs recommends for a real cluster: a snapshot at index 1, term 1 whose
    /// metadata holds `conf_state` and whose data is empty, with hard state `term 1, commit 1`.
    /// The log therefore starts at index 2, so a member that joins later always receives a
    /// snapshot first and learns the voter set from it. The state machine must treat a snapshot
    /// with empty data as the empty store.
    pub fn initialize(&self, conf_state: ConfState) -> Result<(), StorageError> {
        if conf_state.voters.is_empty() {
            return Err(StorageError::InvalidOperation(
                "cannot initialize a raft log with no voters".into(),
            ));
        }
        let mut core = self.write_core();
        if !core.is_empty() {
            return Err(StorageError::AlreadyInitialized {
                path: self.inner.path.clone(),
            });
        }
        let boot = LogId { index: 1, term: 1 };
        let meta = SnapshotMetadata {
            index: boot.index,
            term: boot.term,
            conf_state: Some(conf_state.clone()).into(),
            ..Default::default()
        };
        let hs = HardState {
            term: boot.term,
            commit: boot.index,
            ..Default::default()
        };

        let meta_bytes = self.encode(&meta, "snapshot metadata")?;
        let hs_bytes = self.encode(&hs, "hard state")?;
        let cs_bytes = self.encode(&conf_state, "conf state")?;
        let empty_snapshot = self.inner.sealer.seal_snapshot(b"");
        self.commit(&mut core, "initialize", |txn| {
            let mut m = txn.open_table(META)?;
            m.insert(KEY_HARD_STATE, hs_bytes.as_slice())?;
            m.insert(KEY_CONF_STATE, cs_bytes.as_slice())?;
            m.insert(KEY_TRUNCATED, encode_log_id(boot).as_slice())?;
            let mut s = txn.open_table(SNAPSHOT)?;
            s.insert(KEY_SNAP_META, meta_bytes.as_slice())?;
            s.insert(KEY_SNAP_DATA, empty_snapshot.as_slice())?;
            Ok(())
        })?;
        core.hard_state = hs;
        core.conf_state = conf_state;
        core.snapshot_meta = meta;
        core.truncated = boot;
        core.last_index = boot.index;
        core.durable_index = boot.index;
        Ok(())
    }

    /// Persists one `Ready`'s worth: appends `entries` — replacing any conflicting suffix, as
    /// `MemStorage::append` does — and, if given, the hard state, in one redb transaction.
    ///
    /// **Durability:** entries and hard state are on disk (fsync'd) before this returns; raft
    /// messages that depend on them may only be sent after.
    ///
    /// Errors (instead of `MemStorage`'s panics) if `entries` would overwrite compacted entries,
    /// leave a gap after the last index, or are not contiguous.
    pub fn persist(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> Result<(), StorageError> {
        match self.stage(entries, hard_state)? {
            Some(staged) => self.write_staged(vec![staged]),
            None => Ok(()),
        }
    }

    /// Raises the commit index to `commit` (from `LightReady::commit_index`) in memory; it is
    /// written, without an fsync of its own, by the next transaction (`persist`, …). raft-rs
    /// does not repeat such a commit index in a later `Ready::hs`, so without this it would stay
    /// stale on disk. A lower value than the current commit index is ignored.
    pub fn set_commit(&self, commit: u64) {
        let mut core = self.write_core();
        if commit > core.hard_state.commit {
            core.hard_state.commit = commit;
            core.commit_unsynced = true;
        }
    }

    /// Persists the conf state (after applying a conf change), fsync'd before returning.
    pub fn set_conf_state(&self, cs: ConfState) -> Result<(), StorageError> {
        let mut core = self.write_core();
        let bytes = self.encode(&cs, "conf state")?;
        self.commit(&mut core, "persist conf state", |txn| {
            txn.open_table(META)?
                .insert(KEY_CONF_STATE, bytes.as_slice())?;
            Ok(())
        })?;
        core.conf_state = cs;
        Ok(())
    }

    /// Installs a snapshot received from the leader (from `Ready::snapshot`), fsync'd before
    /// returning: stores it, sets the conf state from its metadata, raises the hard state term to
    /// at least the snapshot's and sets commit to its index (as `MemStorage::apply_snapshot`).
    ///
    /// Entries up to the snapshot index are dropped; if the log holds the snapshot's index with
    /// the same term the entries after it are kept, otherwise the whole log is dropped.
    /// Errors with [`StorageError::SnapshotOutOfDate`] if the index is below `first_index`.
    pub fn apply_snapshot(&self, mut snapshot: Snapshot) -> Result<(), StorageError> {
        let mut core = self.write_core();
        if self.staged_pending() {
            return Err(StorageError::InvalidOperation(
                "install snapshot while a staged write is still being written (drain the writer \
                 first)"
                    .into(),
            ));
        }
        let meta = snapshot.take_metadata();
        let at = LogId {
            index: meta.index,
            term: meta.term,
        };
        if core.first_index() > at.index {
            return Err(StorageError::SnapshotOutOfDate {
                index: at.index,
                covered: core.first_index() - 1,
            });
        }
        let keep_suffix = self.term_at(&core, at.index)? == Some(at.term);
        let mut hs = core.hard_state.clone();
        hs.term = hs.term.max(at.term);
        hs.commit = at.index;

        let meta_bytes = self.encode(&meta, "snapshot metadata")?;
        let hs_bytes = self.encode(&hs, "hard state")?;
        let cs_bytes = self.encode(meta.get_conf_state(), "conf state")?;
        let data = self.inner.sealer.seal_snapshot(&snapshot.take_data());
        self.commit(&mut core, "install snapshot", |txn| {
            let mut t = txn.open_table(ENTRIES)?;
            if keep_suffix {
                t.retain_in(..=at.index, |_, _| false)?;
            } else {
                t.retain(|_, _| false)?;
            }
            let mut m = txn.open_table(META)?;
            m.insert(KEY_HARD_STATE, hs_bytes.as_slice())?;
            m.insert(KEY_CONF_STATE, cs_bytes.as_slice())?;
            m.insert(KEY_TRUNCATED, encode_log_id(at).as_slice())?;
            let mut s = txn.open_table(SNAPSHOT)?;
            s.insert(KEY_SNAP_META, meta_bytes.as_slice())?;
            s.insert(KEY_SNAP_DATA, &data[..])?;
            Ok(())
        })?;
        if keep_suffix {
            core.cache.compact_to(at.index + 1);
        } else {
            core.cache.clear();
            core.last_index = at.index;
            core.durable_index = at.index;
        }
        core.hard_state = hs;
        core.conf_state = meta.get_conf_state().clone();
        core.truncated = at;
        core.snapshot_meta = meta;
        Ok(())
    }

    /// Records a snapshot the local node made of its applied state at `index`, with `data`, then
    /// compacts the log so that it keeps `keep_entries` entries before `index` (raft's
    /// `log_entries_for_slow_followers`): entries below `index - keep_entries` are dropped.
    /// One transaction, fsync'd before returning.
    ///
    /// `index` must be committed (the caller guarantees it is also applied), within the log, and
    /// newer than the stored snapshot ([`StorageError::SnapshotOutOfDate`] otherwise).
    pub fn create_snapshot(
        &self,
        index: u64,
        conf_state: ConfState,
        data: Vec<u8>,
        keep_entries: u64,
    ) -> Result<(), StorageError> {
        let mut core = self.write_core();
        if index <= core.snapshot_meta.index {
            return Err(StorageError::SnapshotOutOfDate {
                index,
                covered: core.snapshot_meta.index,
            });
        }
        if index > core.hard_state.commit {
            return Err(StorageError::InvalidOperation(format!(
                "cannot snapshot at index {index}: only {} is committed",
                core.hard_state.commit
            )));
        }
        let Some(term) = self.term_at(&core, index)? else {
            return Err(StorageError::InvalidOperation(format!(
                "cannot snapshot at index {index}: the log holds {}..={}",
                core.first_index(),
                core.last_index
            )));
        };
        let meta = SnapshotMetadata {
            index,
            term,
            conf_state: Some(conf_state).into(),
            ..Default::default()
        };
        let meta_bytes = self.encode(&meta, "snapshot metadata")?;
        let compaction = self.plan_compaction(&core, index.saturating_sub(keep_entries))?;
        let data = self.inner.sealer.seal_snapshot(&data);
        // The compacted log must restart with a commit index at least at its new start. The
        // commit index on disk may lag (a staged write carries it, or `set_commit` raised it
        // in memory only), so this write carries it, up to the durable log.
        core.commit_unsynced = true;
        self.commit(&mut core, "create snapshot", |txn| {
            let mut s = txn.open_table(SNAPSHOT)?;
            s.insert(KEY_SNAP_META, meta_bytes.as_slice())?;
            s.insert(KEY_SNAP_DATA, data.as_slice())?;
            write_compaction(txn, compaction)
        })?;
        core.snapshot_meta = meta;
        apply_compaction(&mut core, compaction);
        self.inner
            .snapshot_wanted
            .store(false, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Discards all log entries before `compact_index` (as `MemStorage::compact`; a no-op if
    /// `compact_index <= first_index`). The term of `compact_index - 1` stays answerable.
    /// Errors if `compact_index > last_index + 1`. It is the caller's job not to compact past
    /// the applied index.
    pub fn compact(&self, compact_index: u64) -> Result<(), StorageError> {
        let mut core = self.write_core();
        if compact_index > core.last_index + 1 {
            return Err(StorageError::InvalidOperation(format!(
                "cannot compact to {compact_index}: the log ends at {}",
                core.last_index
            )));
        }
        let compaction = self.plan_compaction(&core, compact_index)?;
        if compaction.is_some() {
            self.commit(&mut core, "compact log", |txn| {
                write_compaction(txn, compaction)
            })?;
            apply_compaction(&mut core, compaction);
        }
        Ok(())
    }

    /// The stored snapshot, data included (read from disk), for restoring the state machine on
    /// start. A database without a snapshot gives `Snapshot::default()` (index 0).
    ///
    /// Unlike the other getters this reads the disk, hence the `Result`.
    pub fn snapshot_now(&self) -> Result<Snapshot, StorageError> {
        let core = self.read_core();
        self.read_snapshot(&core)
    }

    /// The persisted hard state.
    pub fn hard_state(&self) -> HardState {
        self.read_core().hard_state.clone()
    }

    /// The persisted conf state.
    pub fn conf_state(&self) -> ConfState {
        self.read_core().conf_state.clone()
    }

    /// Index of the first entry available through `entries` (compacted prefix + 1).
    pub fn first_index(&self) -> u64 {
        self.read_core().first_index()
    }

    /// Index of the last entry in the log (the snapshot index if the log is empty).
    pub fn last_index(&self) -> u64 {
        self.read_core().last_index
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    // ---- internals -------------------------------------------------------------------------

    // A panic while holding the lock cannot leave `Core` ahead of the disk (it is updated only
    // after a commit, by infallible code), so a poisoned lock is still consistent.
    fn read_core(&self) -> RwLockReadGuard<'_, Core> {
        self.inner
            .core
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_core(&self) -> RwLockWriteGuard<'_, Core> {
        self.inner
            .core
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn encode(&self, m: &impl Message, what: &'static str) -> Result<Vec<u8>, StorageError> {
        m.write_to_bytes().map_err(|source| StorageError::Encode {
            path: self.inner.path.clone(),
            what,
            source: Box::new(source),
        })
    }

    /// Runs `f` in one write transaction committed with `Durability::Immediate`, writing first
    /// the hard state if `set_commit` left it unsynced (so a hard state `f` writes wins).
    ///
    /// It may run while staged writes are pending (the snapshot thread's `create_snapshot`,
    /// the driver's `set_conf_state`): `f` must then touch only durable entries, and the
    /// unsynced commit index is written only up to the durable log, the rest staying unsynced
    /// for the staged write that holds its entries. A commit index on disk past the log on
    /// disk would not restart.
    fn commit(
        &self,
        core: &mut Core,
        op: &'static str,
        f: impl FnOnce(&WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), StorageError> {
        let unsynced = if core.commit_unsynced {
            let mut hs = core.hard_state.clone();
            hs.commit = hs.commit.min(core.durable_index);
            Some((
                self.encode(&hs, "hard state")?,
                hs.commit == core.hard_state.commit,
            ))
        } else {
            None
        };
        self.transact(op, |txn| {
            if let Some((bytes, _)) = &unsynced {
                txn.open_table(META)?
                    .insert(KEY_HARD_STATE, bytes.as_slice())?;
            }
            f(txn)
        })?;
        if let Some((_, whole)) = unsynced {
            core.commit_unsynced = !whole;
        }
        Ok(())
    }

    /// Runs `f` in one write transaction committed with `Durability::Immediate` (fsync).
    fn transact(
        &self,
        op: &'static str,
        f: impl FnOnce(&WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), StorageError> {
        let path = &self.inner.path;
        let mut txn = self
            .inner
            .db
            .begin_write()
            .map_err(|e| db_error(path, op, e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| db_error(path, op, e))?;
        f(&txn).map_err(|e| db_error(path, op, e))?;
        txn.commit().map_err(|e| db_error(path, op, e))
    }

    /// Term of `index`, or `None` outside `[first_index - 1, last_index]`.
    fn term_at(&self, core: &Core, index: u64) -> Result<Option<u64>, StorageError> {
        if index == core.truncated.index {
            return Ok(Some(core.truncated.term));
        }
        if index < core.first_index() || index > core.last_index {
            return Ok(None);
        }
        if let Some((e, _)) = core.cache.get(index) {
            return Ok(Some(e.term));
        }
        let (entries, _) = self.read_entries(index, index + 1, u64::MAX)?;
        Ok(entries.first().map(|e| e.term))
    }

    /// What compacting to `compact_index` would record as the new truncated position.
    fn plan_compaction(
        &self,
        core: &Core,
        compact_index: u64,
    ) -> Result<Option<LogId>, StorageError> {
        if compact_index <= core.first_index() {
            return Ok(None);
        }
        let index = compact_index - 1;
        match self.term_at(core, index)? {
            Some(term) => Ok(Some(LogId { index, term })),
            None => Err(StorageError::InvalidOperation(format!(
                "cannot compact to {compact_index}: the log ends at {}",
                core.last_index
            ))),
        }
    }

    /// Reads `[low, high)` from redb, stopping once `max_size` bytes are exceeded (the first
    /// entry is always returned).
    fn read_entries(
        &self,
        low: u64,
        high: u64,
        max_size: u64,
    ) -> Result<(Vec<Entry>, u64), StorageError> {
        let path = &self.inner.path;
        let op = "read log entries";
        let txn = self
            .inner
            .db
            .begin_read()
            .map_err(|e| db_error(path, op, e))?;
        let table = txn.open_table(ENTRIES).map_err(|e| db_error(path, op, e))?;
        let range = table.range(low..high).map_err(|e| db_error(path, op, e))?;
        let mut out = Vec::new();
        let mut size = 0u64;
        let mut next = low;
        for item in range {
            let (k, v) = item.map_err(|e| db_error(path, op, e))?;
            let bytes = v.value();
            let entry_size = bytes.len() as u64;
            if !out.is_empty() && size.saturating_add(entry_size) > max_size {
                return Ok((out, size));
            }
            size += entry_size;
            let plain = self.inner.sealer.open_entry(path, k.value(), bytes)?;
            out.push(decode_entry(path, k.value(), &plain, next)?);
            next += 1;
        }
        if next != high {
            return Err(corrupted(path, format!("log entry {next} is missing")));
        }
        Ok((out, size))
    }

    fn read_snapshot(&self, core: &Core) -> Result<Snapshot, StorageError> {
        let mut snapshot = Snapshot::default();
        if core.snapshot_meta.index == 0 {
            return Ok(snapshot);
        }
        let path = &self.inner.path;
        let op = "read snapshot";
        let txn = self
            .inner
            .db
            .begin_read()
            .map_err(|e| db_error(path, op, e))?;
        let table = txn
            .open_table(SNAPSHOT)
            .map_err(|e| db_error(path, op, e))?;
        let data = table
            .get(KEY_SNAP_DATA)
            .map_err(|e| db_error(path, op, e))?;
        let Some(data) = data else {
            return Err(corrupted(
                path,
                "the snapshot data record is missing".into(),
            ));
        };
        snapshot.data = self
            .inner
            .sealer
            .open_snapshot(path, data.value())?
            .into_owned()
            .into();
        snapshot.set_metadata(core.snapshot_meta.clone());
        Ok(snapshot)
    }
}

fn check_append(core: &Core, entries: &[Entry], first: u64) -> Result<(), StorageError> {
    if first < core.first_index() {
        return Err(StorageError::InvalidOperation(format!(
            "cannot overwrite compacted raft log: compacted up to {}, append starts at {first}",
            core.first_index() - 1
        )));
    }
    if first > core.last_index + 1 {
        return Err(StorageError::InvalidOperation(format!(
            "raft log must stay contiguous: last index {}, append starts at {first}",
            core.last_index
        )));
    }
    if let Some(w) = entries.windows(2).find(|w| w[1].index != w[0].index + 1) {
        return Err(StorageError::InvalidOperation(format!(
            "appended entries are not contiguous: {} followed by {}",
            w[0].index, w[1].index
        )));
    }
    Ok(())
}

fn write_compaction(txn: &WriteTransaction, compaction: Option<LogId>) -> Result<(), redb::Error> {
    if let Some(at) = compaction {
        txn.open_table(ENTRIES)?
            .retain_in(..=at.index, |_, _| false)?;
        txn.open_table(META)?
            .insert(KEY_TRUNCATED, encode_log_id(at).as_slice())?;
    }
    Ok(())
}

fn apply_compaction(core: &mut Core, compaction: Option<LogId>) {
    if let Some(at) = compaction {
        core.cache.compact_to(at.index + 1);
        core.truncated = at;
    }
}

fn encode_log_id(id: LogId) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&id.index.to_be_bytes());
    out[8..].copy_from_slice(&id.term.to_be_bytes());
    out
}

fn decode_log_id(path: &Path, bytes: &[u8]) -> Result<LogId, StorageError> {
    let Ok(record) = <[u8; 16]>::try_from(bytes) else {
        return Err(corrupted(
            path,
            format!(
                "record `{KEY_TRUNCATED}` has {} bytes, expected 16",
                bytes.len()
            ),
        ));
    };
    let (mut index, mut term) = ([0u8; 8], [0u8; 8]);
    index.copy_from_slice(&record[..8]);
    term.copy_from_slice(&record[8..]);
    Ok(LogId {
        index: u64::from_be_bytes(index),
        term: u64::from_be_bytes(term),
    })
}

fn decode_entry(path: &Path, key: u64, bytes: &[u8], expected: u64) -> Result<Entry, StorageError> {
    if key != expected {
        return Err(corrupted(
            path,
            format!("log entry {expected} is missing (found {key})"),
        ));
    }
    let entry = Entry::parse_from_bytes(bytes)
        .map_err(|e| corrupted(path, format!("log entry {key} does not decode: {e}")))?;
    if entry.index != key {
        return Err(corrupted(
            path,
            format!("log entry at key {key} claims index {}", entry.index),
        ));
    }
    Ok(entry)
}

fn decode_record<M: Message + Default>(
    path: &Path,
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<M, StorageError> {
    let op = "read raft metadata";
    match table.get(key).map_err(|e| db_error(path, op, e))? {
        None => Ok(M::default()),
        Some(v) => M::parse_from_bytes(v.value())
            .map_err(|e| corrupted(path, format!("record `{key}` does not decode: {e}"))),
    }
}

/// Reads the in-memory view from disk, checking the invariants the rest of the code relies on.
fn load(
    path: &Path,
    db: &Database,
    cache_bytes: u64,
    sealer: &Sealer,
) -> Result<Core, StorageError> {
    let op = "load raft state";
    let txn = db.begin_read().map_err(|e| db_error(path, op, e))?;
    let meta = txn.open_table(META).map_err(|e| db_error(path, op, e))?;
    let hard_state: HardState = decode_record(path, &meta, KEY_HARD_STATE)?;
    let conf_state: ConfState = decode_record(path, &meta, KEY_CONF_STATE)?;
    let truncated = match meta.get(KEY_TRUNCATED).map_err(|e| db_error(path, op, e))? {
        Some(v) => decode_log_id(path, v.value())?,
        None => LogId::default(),
    };
    let snap = txn
        .open_table(SNAPSHOT)
        .map_err(|e| db_error(path, op, e))?;
    let snapshot_meta: SnapshotMetadata = decode_record(path, &snap, KEY_SNAP_META)?;

    let entries = txn.open_table(ENTRIES).map_err(|e| db_error(path, op, e))?;
    let len = entries.len().map_err(|e| db_error(path, op, e))?;
    let first = entries
        .first()
        .map_err(|e| db_error(path, op, e))?
        .map(|(k, _)| k.value());
    let last = entries
        .last()
        .map_err(|e| db_error(path, op, e))?
        .map(|(k, _)| k.value());
    let last_index = match (first, last) {
        (Some(first), Some(last)) => {
            if first != truncated.index + 1 {
                return Err(corrupted(
                    path,
                    format!(
                        "the log starts at {first} but was compacted up to {}",
                        truncated.index
                    ),
                ));
            }
            if last - first + 1 != len {
                return Err(corrupted(
                    path,
                    format!("the log {first}..={last} has holes ({len} entries)"),
                ));
            }
            last
        }
        _ => truncated.index,
    };
    if hard_state.commit > last_index {
        return Err(corrupted(
            path,
            format!(
                "hard state commits index {} but the log ends at {last_index}",
                hard_state.commit
            ),
        ));
    }
    if snapshot_meta.index < truncated.index && snapshot_meta.index != 0 {
        tracing::warn!(
            path = %path.display(),
            snapshot = snapshot_meta.index,
            compacted = truncated.index,
            "raft log was compacted past its snapshot"
        );
    }

    let mut cache = TailCache::new(cache_bytes);
    let range = entries
        .range(truncated.index + 1..)
        .map_err(|e| db_error(path, op, e))?;
    let mut expected = last_index;
    for item in range.rev() {
        let (k, v) = item.map_err(|e| db_error(path, op, e))?;
        let bytes = v.value();
        let plain = sealer.open_entry(path, k.value(), bytes)?;
        let entry = decode_entry(path, k.value(), &plain, expected)?;
        if !cache.push_front(entry, bytes.len() as u64) {
            break;
        }
        expected -= 1;
    }
    Ok(Core {
        hard_state,
        commit_unsynced: false,
        conf_state,
        snapshot_meta,
        truncated,
        last_index,
        durable_index: last_index,
        cache,
    })
}

fn corrupted(path: &Path, detail: String) -> StorageError {
    StorageError::Corrupted {
        path: path.to_path_buf(),
        detail,
    }
}

fn open_error(path: &Path, e: redb::DatabaseError) -> StorageError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StorageError::InUse {
            path: path.to_path_buf(),
        },
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
            corrupted(path, detail)
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            corrupted(path, format!("not a redb database ({io})"))
        }
        source => StorageError::Open {
            path: path.to_path_buf(),
            source: Box::new(source),
        },
    }
}

fn db_error(path: &Path, op: &'static str, e: impl Into<redb::Error>) -> StorageError {
    match e.into() {
        redb::Error::Corrupted(detail) => corrupted(path, detail),
        e @ (redb::Error::TableTypeMismatch { .. } | redb::Error::TypeDefinitionChanged { .. }) => {
            corrupted(path, format!("unexpected table layout ({e})"))
        }
        source => StorageError::Db {
            path: path.to_path_buf(),
            op,
            source: Box::new(source),
        },
    }
}

fn to_raft(e: StorageError) -> RaftError {
    RaftError::Store(RaftStorageError::Other(Box::new(e)))
}

impl raft::Storage for RaftStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let core = self.read_core();
        Ok(RaftState::new(
            core.hard_state.clone(),
            core.conf_state.clone(),
        ))
    }

    /// `[low, high)`, at least one entry if any, then up to `max_size` bytes (`MemStorage`'s
    /// rule). Tail entries come from memory, older ones from redb. `high > last_index + 1` is
    /// `Unavailable` rather than `MemStorage`'s panic.
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let max_size = max_size.into().unwrap_or(u64::MAX);
        let core = self.read_core();
        if low < core.first_index() {
            return Err(RaftError::Store(RaftStorageError::Compacted));
        }
        if high > core.last_index + 1 {
            return Err(RaftError::Store(RaftStorageError::Unavailable));
        }
        if low >= high {
            return Ok(Vec::new());
        }
        let cache_first = core.cache.first_index().unwrap_or(core.last_index + 1);
        let mut out = Vec::new();
        let mut size = 0u64;
        if low < cache_first {
            let disk_high = high.min(cache_first);
            (out, size) = self
                .read_entries(low, disk_high, max_size)
                .map_err(to_raft)?;
            if (out.len() as u64) < disk_high - low {
                return Ok(out); // size limit reached on disk
            }
        }
        for index in low.max(cache_first)..high {
            let Some((entry, entry_size)) = core.cache.get(index) else {
                return Err(to_raft(corrupted(
                    &self.inner.path,
                    format!("cached log misses entry {index}"),
                )));
            };
            if !out.is_empty() && size.saturating_add(*entry_size) > max_size {
                break;
            }
            size += entry_size;
            out.push(entry.clone());
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let core = self.read_core();
        if idx == core.snapshot_meta.index {
            return Ok(core.snapshot_meta.term);
        }
        if idx < core.truncated.index {
            return Err(RaftError::Store(RaftStorageError::Compacted));
        }
        match self.term_at(&core, idx).map_err(to_raft)? {
            Some(term) => Ok(term),
            None => Err(RaftError::Store(RaftStorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.read_core().first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.read_core().last_index)
    }

    /// The stored snapshot (data included). Unlike `MemStorage`, which fabricates an empty
    /// snapshot at the commit index, this returns the last snapshot created or installed, and
    /// `SnapshotTemporarilyUnavailable` if there is none, it is older than `request_index`, or
    /// its members do not include `to` (a member that joined after it, which raft would refuse
    /// to restore it); the driver then creates one ([`Self::snapshot_requested`]).
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let core = self.read_core();
        let meta = &core.snapshot_meta;
        let names_to = meta
            .conf_state
            .as_ref()
            .is_some_and(|cs| cs.voters.contains(&to) || cs.learners.contains(&to));
        if meta.index == 0 || meta.index < request_index || !names_to {
            tracing::debug!(
                to,
                request_index,
                stored = meta.index,
                "no recent enough raft snapshot; asking the driver for one"
            );
            self.inner
                .snapshot_wanted
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(RaftError::Store(
                RaftStorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        self.read_snapshot(&core).map_err(to_raft)
    }
}

#[path = "storage_staged.rs"]
mod staged;
pub use staged::StagedWrite;

#[cfg(test)]
#[path = "storage_tests.rs"]
mod tests;
