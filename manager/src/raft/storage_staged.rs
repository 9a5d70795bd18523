//! Staged writes: [`RaftStorage::stage`] puts a `Ready`'s entries and hard state in the log's
//! memory at once, [`RaftStorage::write_staged`] makes them durable later, in staging order
//! (see the module header of `storage` for the rules).

use std::fmt;

use raft::prelude::{Entry, HardState};

use super::{ENTRIES, KEY_HARD_STATE, META, RaftStorage, StorageError, check_append};

/// One `Ready`'s entries and hard state, encoded and sealed by [`RaftStorage::stage`], to be
/// written by [`RaftStorage::write_staged`].
#[must_use = "a staged write must be written"]
pub struct StagedWrite {
    /// The last index before staging: entries after `last` up to here are a replaced suffix.
    replaced_up_to: u64,
    /// The last staged entry, if any.
    last: Option<u64>,
    entries: Vec<(u64, Vec<u8>)>,
    hard_state: Option<Vec<u8>>,
}

impl fmt::Debug for StagedWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StagedWrite")
            .field("last", &self.last)
            .field("entries", &self.entries.len())
            .field("hard_state", &self.hard_state.is_some())
            .finish_non_exhaustive()
    }
}

impl RaftStorage {
    /// What [`Self::persist`] does, in two steps: this one checks and encodes the write and
    /// makes it visible in memory at once (raft reads the entries back before they are on
    /// disk); [`Self::write_staged`] must then be called with the result, in staging order.
    /// `None` when there is nothing to write.
    ///
    /// **Durability:** none until the write is done: raft must not treat the entries as
    /// persisted before that (`advance_append_async`, then `on_persist_ready`).
    pub fn stage(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> Result<Option<StagedWrite>, StorageError> {
        let mut core = self.write_core();
        if let Some(first) = entries.first() {
            check_append(&core, entries, first.index)?;
            if first.index <= core.last_index && self.staged_pending() {
                return Err(StorageError::InvalidOperation(format!(
                    "entries from {} would replace entries still being written",
                    first.index
                )));
            }
        }
        if entries.is_empty() && hard_state.is_none_or(|hs| *hs == core.hard_state) {
            return Ok(None);
        }
        let encoded = entries
            .iter()
            .map(|e| {
                let bytes = self.encode(e, "log entry")?;
                Ok((e.index, self.inner.sealer.seal_entry(e.index, &bytes)))
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        // A commit index `set_commit` left unsynced goes with this write.
        let written_hs = hard_state
            .cloned()
            .or_else(|| core.commit_unsynced.then(|| core.hard_state.clone()));
        let hard_state_bytes = written_hs
            .as_ref()
            .map(|hs| self.encode(hs, "hard state"))
            .transpose()?;
        let staged = StagedWrite {
            replaced_up_to: core.last_index,
            last: entries.last().map(|e| e.index),
            entries: encoded,
            hard_state: hard_state_bytes,
        };
        if let (Some(first), Some(last)) = (entries.first(), staged.last) {
            // The cache is a suffix ending at last_index >= first - 1, so after this it is
            // empty or ends at first - 1: pushing keeps it contiguous.
            core.cache.truncate_from(first.index);
            for (e, (_, bytes)) in entries.iter().zip(&staged.entries) {
                core.cache.push_back(e.clone(), bytes.len() as u64);
            }
            core.last_index = last;
            // Replaced entries (only ever with nothing pending, see above) are not on disk.
            core.durable_index = core.durable_index.min(first.index - 1);
        }
        if let Some(hs) = written_hs {
            core.hard_state = hs;
        }
        core.commit_unsynced = false;
        self.inner
            .staged
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Some(staged))
    }

    /// Writes [`StagedWrite`]s, in staging order, in one redb transaction (a group commit),
    /// fsync'd before returning. Calls must come in staging order, one at a time; they do
    /// not block readers.
    pub fn write_staged(&self, writes: Vec<StagedWrite>) -> Result<(), StorageError> {
        self.transact("persist entries and hard state", |txn| {
            let mut t = txn.open_table(ENTRIES)?;
            let mut m = txn.open_table(META)?;
            for staged in &writes {
                if let Some(last) = staged.last
                    && last < staged.replaced_up_to
                {
                    t.retain_in(last + 1..=staged.replaced_up_to, |_, _| false)?;
                }
                for (index, bytes) in &staged.entries {
                    t.insert(index, bytes.as_slice())?;
                }
                if let Some(bytes) = &staged.hard_state {
                    m.insert(KEY_HARD_STATE, bytes.as_slice())?;
                }
            }
            Ok(())
        })?;
        self.inner
            .staged
            .fetch_sub(writes.len(), std::sync::atomic::Ordering::SeqCst);
        if let Some(last) = writes.iter().filter_map(|w| w.last).next_back() {
            // No later staged write replaced these entries (`stage` refuses to while this one
            // is pending), so everything up to `last` is on disk now.
            let mut core = self.write_core();
            core.durable_index = last;
            core.cache.shrink(last);
        }
        Ok(())
    }

    pub(super) fn staged_pending(&self) -> bool {
        self.inner.staged.load(std::sync::atomic::Ordering::SeqCst) != 0
    }
}
