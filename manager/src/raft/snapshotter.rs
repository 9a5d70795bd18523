//! Making snapshots of the store off the raft loop.
//!
//! Encoding a large store and writing it is slow (100,000 tasks: a 26 MB snapshot, 2–5 s in
//! a debug build): done on the driver's loop it stopped heartbeats for longer than the
//! election timeout, so the followers elected another leader, which then had to snapshot in
//! turn. As SwarmKit (`doSnapshot` in its own goroutine), the driver hands an immutable view
//! of the store at an applied index to a thread, which encodes it and records it in storage
//! (compacting the log); the loop goes on meanwhile, and collects the outcome later.
//!
//! At most one snapshot is made at a time. The driver waits for it before it installs a
//! snapshot from the leader (which replaces the log under it) and before it stops.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use raft::prelude::ConfState;

use super::storage::{RaftStorage, StorageError};
use crate::metrics;
use crate::store::Tables;

/// The snapshot being made, if any.
#[derive(Default)]
pub(super) struct Snapshotter {
    running: Option<JoinHandle<Result<Made, StorageError>>>,
}

/// A snapshot made and stored.
#[derive(Debug, Clone, Copy)]
pub(super) struct Made {
    pub index: u64,
    /// Size of its data.
    pub bytes: usize,
    /// The driver's count of log bytes applied when it was started (what applied after that
    /// counts towards the next one).
    pub log_bytes_then: u64,
}

impl Snapshotter {
    /// True while a snapshot is being made.
    pub(super) fn busy(&self) -> bool {
        self.running.is_some()
    }

    /// Starts making a snapshot of `view` (the store applied up to `view.index`, whose
    /// members are `conf_state`) in `storage`, keeping `keep_entries` log entries behind it;
    /// `log_bytes_then` is handed back in [`Made`].
    ///
    /// # Panics
    /// If a snapshot is being made already (check [`Self::busy`]), or no thread can start.
    pub(super) fn start(
        &mut self,
        storage: RaftStorage,
        view: Arc<Tables>,
        conf_state: ConfState,
        keep_entries: u64,
        log_bytes_then: u64,
    ) {
        assert!(self.running.is_none(), "one snapshot at a time");
        let thread = std::thread::Builder::new()
            .name("raft-snapshot".into())
            .spawn(move || {
                let (index, bytes) = make(&storage, &view, conf_state, keep_entries)?;
                Ok(Made {
                    index,
                    bytes,
                    log_bytes_then,
                })
            })
            .expect("start the raft snapshot thread");
        self.running = Some(thread);
    }

    /// The snapshot made since the last call, if one is done; with `wait`, blocks until the
    /// one being made is. A storage error is the driver's to stop on.
    pub(super) fn finished(&mut self, wait: bool) -> Result<Option<Made>, StorageError> {
        match &self.running {
            Some(t) if wait || t.is_finished() => {}
            _ => return Ok(None),
        }
        let thread = self.running.take().expect("checked above");
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            .map(Some)
    }
}

/// Encodes `view` and records it in `storage`; returns its index and size.
fn make(
    storage: &RaftStorage,
    view: &Tables,
    conf_state: ConfState,
    keep_entries: u64,
) -> Result<(u64, usize), StorageError> {
    let at = Instant::now();
    let index = view.index;
    let data = view.encode_snapshot();
    let (encode, bytes) = (at.elapsed(), data.len());
    storage.create_snapshot(index, conf_state, data, keep_entries)?;
    metrics::RAFT_SNAPSHOTS.with_label_values(&["taken"]).inc();
    tracing::info!(
        index,
        bytes,
        ?encode,
        took = ?at.elapsed(),
        "raft snapshot taken, log compacted"
    );
    Ok((index, bytes))
}
