//! The task DB's group-commit writer: one tokio task per DB that drains every queued write
//! request into one transaction, commits it on the blocking pool, and answers each request.
//! Requests that arrive during a commit wait for the next one, so the commit rate adapts to
//! the fsync latency instead of paying one fsync per write.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prost::Message;
use redb::{Database, Durability, ReadableTable};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{ASSIGNED, STATUS, TASKS, TaskDbError, WriteOp};
use crate::metrics;

/// At most this many ops share one commit (keeps a transaction's memory bounded).
const MAX_GROUP_OPS: usize = 10_000;

/// A batch of ops that must land in one transaction, and who to tell when it did.
pub(super) struct Request {
    pub(super) ops: Vec<WriteOp>,
    pub(super) done: oneshot::Sender<Result<(), TaskDbError>>,
}

/// Starts the writer; it exits once every sender is dropped and the queue is drained.
pub(super) fn spawn(
    db: Arc<Database>,
    commits: Arc<AtomicU64>,
) -> (mpsc::UnboundedSender<Request>, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, tokio::spawn(run(db, commits, rx)))
}

async fn run(db: Arc<Database>, commits: Arc<AtomicU64>, mut rx: mpsc::UnboundedReceiver<Request>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        let mut ops = group[0].ops.len();
        while ops < MAX_GROUP_OPS {
            match rx.try_recv() {
                Ok(req) => {
                    ops += req.ops.len();
                    group.push(req);
                }
                Err(_) => break,
            }
        }
        let (batches, replies): (Vec<_>, Vec<_>) =
            group.into_iter().map(|r| (r.ops, r.done)).unzip();
        let db = Arc::clone(&db);
        let result = tokio::task::spawn_blocking(move || commit(&db, &batches))
            .await
            .unwrap_or_else(|e| Err(format!("commit panicked: {e}")));
        commits.fetch_add(1, Ordering::Relaxed);
        metrics::TASKDB_COMMITS.inc();
        if let Err(e) = &result {
            tracing::error!(error = %e, "task DB commit failed");
        }
        for reply in replies {
            let _ = reply.send(result.clone().map_err(TaskDbError::Commit));
        }
    }
}

fn commit(db: &Database, batches: &[Vec<WriteOp>]) -> Result<(), String> {
    let mut txn = db.begin_write().map_err(|e| e.to_string())?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| e.to_string())?;
    {
        let mut tasks = txn.open_table(TASKS).map_err(|e| e.to_string())?;
        let mut assigned = txn.open_table(ASSIGNED).map_err(|e| e.to_string())?;
        let mut status = txn.open_table(STATUS).map_err(|e| e.to_string())?;
        for op in batches.iter().flatten() {
            let applied: Result<(), redb::StorageError> = (|| {
                match op {
                    WriteOp::PutTask(task) => {
                        tasks.insert(task.id.as_str(), task.encode_to_vec().as_slice())?;
                        assigned.insert(task.id.as_str(), true)?;
                    }
                    WriteOp::Unassign(id) => {
                        if tasks.get(id.as_str())?.is_some() {
                            assigned.insert(id.as_str(), false)?;
                        }
                    }
                    WriteOp::PutStatus(id, s) => {
                        if tasks.get(id.as_str())?.is_some() {
                            status.insert(id.as_str(), s.encode_to_vec().as_slice())?;
                        }
                    }
                    WriteOp::Delete(id) => {
                        tasks.remove(id.as_str())?;
                        assigned.remove(id.as_str())?;
                        status.remove(id.as_str())?;
                    }
                }
                Ok(())
            })();
            applied.map_err(|e| e.to_string())?;
        }
    }
    txn.commit().map_err(|e| e.to_string())
}
