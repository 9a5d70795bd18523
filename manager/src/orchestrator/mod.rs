//! Orchestration: turning services into tasks and keeping them alive (SwarmKit
//! `manager/orchestrator`). Leader-only; [`run`] starts every orchestration actor.
//!
//! ```text
//!                 ┌──────────────────────── store (watch: every event) ─────────────────────────┐
//!                 ▼                  ▼                    ▼                   ▼                  ▼
//!   replicated/: slots 1..N   global/: a task per   restart/: replace     update: roll tasks   reaper: delete
//!   (create / REMOVE)         eligible node         tasks that stopped    to a new spec        old tasks
//!                 └──────────────┴───────── writes: task creates + desired-state patches ──────┘
//! ```
//!
//! Each actor keeps its own state, decides with pure functions of a store view (unit-tested
//! without tokio, see each module's `tests`), and writes batches of at most
//! [`batch::MAX_BATCH`] actions. Tasks move through desired states only forward (see
//! [`task`] for what each desired state means), so actors never undo each other: the store
//! rejects a patch that no longer moves a task forward, and the actor that made it sees the
//! newer state as an event and decides again.
//!
//! Who owns what:
//! - a slot/node with no task → the replicated/global orchestrator creates one;
//! - a runnable task that stopped (or whose node went down/drained/away) → the restart
//!   supervisor replaces it (atomically with stopping the old one) or marks it finished;
//! - a task whose spec is out of date → the updater;
//! - tasks desired past RUNNING → the reaper deletes them when they are no longer needed.
//!
//! The allocator (NEW → PENDING) runs separately: [`crate::allocator::run`].

pub(crate) mod actor;
pub mod batch;
pub(crate) mod debounce;
pub mod global;
pub mod reaper;
pub mod replicated;
pub mod restart;
pub mod task;
pub mod update;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// Runs the replicated and global orchestrators, the restart supervisor, the updater and
/// the task reaper until `shutdown` is cancelled; returns once all of them stopped.
/// Dropping the future stops them too.
pub async fn run(store: Store, shutdown: CancellationToken) {
    let mut actors = JoinSet::new();
    actors.spawn(replicated::run(store.clone(), shutdown.clone()));
    actors.spawn(global::run(store.clone(), shutdown.clone()));
    actors.spawn(restart::run(store.clone(), shutdown.clone()));
    actors.spawn(update::run(store.clone(), shutdown.clone()));
    actors.spawn(reaper::run(store, shutdown.clone()));
    while let Some(done) = actors.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, "an orchestration actor failed; stopping orchestration");
            shutdown.cancel();
        }
    }
}
