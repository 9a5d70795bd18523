//! [`MemoryStore`]: the applied state and its watchers; [`Store`]: the handle components use
//! to read, watch and write (writes go through a [`Proposer`], i.e. raft).

use std::sync::{Arc, Mutex, OnceLock, RwLock};

use swarm_proto::{StoreAction, StoreBatch};

use super::apply::ApplyOutcome;
use super::blobs::{self, BlobSink};
use super::error::StoreError;
use super::tables::Tables;
use super::watch::{WatchFilter, Watcher, Watchers};

/// Replicates a batch and returns its outcome once it has been applied locally.
///
/// The raft node implements this. Implementations must apply batches to the
/// [`MemoryStore`] in log order and must not report an outcome before the batch is applied,
/// so that a writer who reads after `propose` returns sees its own write.
#[async_trait::async_trait]
pub trait Proposer: Send + Sync + 'static {
    async fn propose(&self, batch: StoreBatch) -> Result<ApplyOutcome, StoreError>;
}

/// The applied state of the store and its watchers.
#[derive(Default)]
pub struct MemoryStore {
    current: RwLock<Arc<Tables>>,
    /// Held while applying and while subscribing, so a watcher's view and its first event
    /// are consecutive.
    watchers: Mutex<Watchers>,
    /// Where blob chunks go on apply (the manager's blob store); set once at startup.
    blobs: OnceLock<Arc<dyn BlobSink>>,
}

impl MemoryStore {
    /// A store holding `tables`.
    pub fn new(tables: Tables) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Arc::new(tables)),
            watchers: Mutex::default(),
            blobs: OnceLock::new(),
        })
    }

    /// Sets the blob store that blob chunks and artifact seals/deletes are applied to. Call
    /// it before raft replays the log; without a sink, chunks are dropped (tests of
    /// components that never see artifacts).
    ///
    /// # Panics
    /// When a sink is already set.
    pub fn set_blob_sink(&self, sink: Arc<dyn BlobSink>) {
        assert!(
            self.blobs.set(sink).is_ok(),
            "the store's blob sink is set once"
        );
    }

    /// A consistent read view of the whole store.
    pub fn view(&self) -> Arc<Tables> {
        self.current.read().expect("store lock poisoned").clone()
    }

    /// A view and a subscription to every change after it, taken atomically.
    pub fn watch(&self, filter: WatchFilter) -> (Arc<Tables>, Watcher) {
        let mut w = self.watchers.lock().expect("store lock poisoned");
        let view = self.view();
        (view, w.add(filter))
    }

    /// How many subscriptions are open (a metric).
    pub fn watcher_count(&self) -> usize {
        self.watchers.lock().expect("store lock poisoned").count()
    }

    /// Applies committed batches, in order, publishing one new view and one event batch.
    pub fn apply(&self, entries: &[(u64, StoreBatch)]) -> Vec<ApplyOutcome> {
        if entries.is_empty() {
            return Vec::new();
        }
        let mut w = self.watchers.lock().expect("store lock poisoned");
        let mut current = self.current.write().expect("store lock poisoned");
        // Copy-on-write at two levels: when no reader holds the current view, the tables
        // are changed in place; otherwise they are cloned (sharing every node of the
        // persistent maps), and each write copies only the nodes on its path. Changing in
        // place matters under heavy writes: a shared node of the name index holds 32
        // entries whose every refcount a copy bumps, and the copies are freed again with
        // the old view.
        let tables = Arc::make_mut(&mut current);
        let mut outcomes = Vec::with_capacity(entries.len());
        let mut per_entry = Vec::with_capacity(entries.len());
        for (index, batch) in entries {
            let (outcome, evs) = tables.apply(*index, batch);
            outcomes.push(outcome);
            per_entry.push(evs);
        }
        if let Some(sink) = self.blobs.get() {
            // Before the new view is readable: an artifact a reader finds sealed has its bytes.
            let mut ops = Vec::new();
            for (((_, batch), outcome), evs) in entries.iter().zip(&outcomes).zip(&per_entry) {
                blobs::ops_of(batch, outcome, evs, &mut ops);
            }
            if !ops.is_empty() {
                sink.apply(&ops);
            }
        }
        let index = tables.index;
        drop(current);
        let events: Vec<_> = per_entry.into_iter().flatten().collect();
        w.dispatch(index, events);
        outcomes
    }

    /// Advances the applied index past an entry that carries no store change (raft's empty
    /// entries, configuration changes).
    pub fn skip_to(&self, index: u64) {
        let _w = self.watchers.lock().expect("store lock poisoned");
        let mut cur = self.current.write().expect("store lock poisoned");
        if cur.index < index {
            Arc::make_mut(&mut cur).index = index;
        }
    }

    /// Replaces everything (restore from a raft snapshot). Every watcher is closed, since the
    /// events between its view and the snapshot are unknown.
    pub fn restore(&self, tables: Tables) {
        let mut w = self.watchers.lock().expect("store lock poisoned");
        *self.current.write().expect("store lock poisoned") = Arc::new(tables);
        w.clear();
    }
}

/// The handle every manager component uses: reads and watches from memory, writes through
/// raft. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    memory: Arc<MemoryStore>,
    proposer: Arc<dyn Proposer>,
}

impl Store {
    pub fn new(memory: Arc<MemoryStore>, proposer: Arc<dyn Proposer>) -> Self {
        Self { memory, proposer }
    }

    /// A consistent read view.
    pub fn view(&self) -> Arc<Tables> {
        self.memory.view()
    }

    /// A view plus every later change matching `filter`.
    pub fn watch(&self, filter: WatchFilter) -> (Arc<Tables>, Watcher) {
        self.memory.watch(filter)
    }

    /// The applied state (for metrics and snapshots).
    pub fn memory(&self) -> &Arc<MemoryStore> {
        &self.memory
    }

    /// Proposes `actions` as one entry; conflicting actions are skipped and reported in the
    /// outcome while the others apply.
    pub async fn write(&self, actions: Vec<StoreAction>) -> Result<ApplyOutcome, StoreError> {
        self.propose(actions, false).await
    }

    /// Proposes `actions` as one all-or-nothing transaction; the first conflict is the error.
    pub async fn write_atomic(&self, actions: Vec<StoreAction>) -> Result<u64, StoreError> {
        let outcome = self.propose(actions, true).await?;
        match outcome.rejected.into_iter().next() {
            None => Ok(outcome.index),
            Some((_, conflict)) => Err(StoreError::Conflict(conflict)),
        }
    }

    async fn propose(
        &self,
        actions: Vec<StoreAction>,
        atomic: bool,
    ) -> Result<ApplyOutcome, StoreError> {
        let batch = StoreBatch {
            request_id: rand::random(),
            actions,
            atomic,
            coalesced: Vec::new(),
        };
        self.proposer.propose(batch).await
    }
}

/// A proposer that applies at once with consecutive indexes: a one-replica stand-in for raft
/// in unit tests of the components above the store.
#[cfg(test)]
pub mod testing {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    pub struct Immediate {
        pub memory: Arc<MemoryStore>,
        next: AtomicU64,
    }

    #[async_trait::async_trait]
    impl Proposer for Immediate {
        async fn propose(&self, batch: StoreBatch) -> Result<ApplyOutcome, StoreError> {
            let index = self.next.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(self.memory.apply(&[(index, batch)]).remove(0))
        }
    }

    /// An empty store whose writes apply immediately.
    pub fn store() -> Store {
        let memory = MemoryStore::new(Tables::default());
        let proposer = Arc::new(Immediate {
            memory: memory.clone(),
            next: AtomicU64::new(0),
        });
        Store::new(memory, proposer)
    }
}
