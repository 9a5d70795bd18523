//! The replicated object store.
//!
//! Everything lives in memory as persistent (structurally shared) maps, so a read view is an
//! `Arc` clone of the current [`Tables`] and never blocks a writer. Writes are batches of
//! [`StoreAction`](swarm_proto::StoreAction)s proposed through raft and applied on commit, in
//! log order, by [`MemoryStore::apply`]; the proposer waits for the outcome of its own entry.
//!
//! ```text
//!  component ──write(actions)──▶ Store ──propose──▶ raft ──commit──▶ MemoryStore::apply
//!      ▲                                                                  │
//!      └──────────── watch(filter): view + events per node/service ◀──────┘
//! ```
//!
//! Watchers subscribe by node, by service or to everything, so a dispatcher session only
//! ever sees its own node's events (SwarmKit's swarm3k profiles spent a quarter of manager CPU
//! filtering one global broadcast).

mod actions;
mod apply;
mod artifacts;
mod blobs;
mod error;
mod lookup;
mod memory;
mod tables;
mod watch;

#[cfg(test)]
pub use memory::testing;

pub use actions::{create, patch_task, remove, update};
pub use apply::{ApplyOutcome, Conflict};
pub use artifacts::{DEFAULT_TAG, name_with_tag};
pub use blobs::{BlobOp, BlobSink};
pub use error::StoreError;
pub use lookup::LookupError;
pub use memory::{MemoryStore, Proposer, Store};
pub use tables::{Object, Tables};
pub use watch::{Event, EventBatch, WatchFilter, Watcher};

#[cfg(test)]
mod tests;
