//! The worker's task DB: `<state-dir>/worker/tasks.redb`, SwarmKit's `worker/tasks.db`.
//!
//! Three tables keyed by task id: `tasks` (the prost-encoded [`Task`] as assigned), `assigned`
//! (whether the dispatcher still assigns it) and `status` (the last prost-encoded
//! [`TaskStatus`] the agent observed). Every commit is [`redb::Durability::Immediate`].
//!
//! Writes go through one writer task per DB that *group-commits*: a [`TaskDb::write`] call's ops
//! always land in a single transaction, and while one commit is being fsynced, all writes that
//! arrive queue up and share the next commit. A hundred task managers changing state at once
//! cost a couple of fsyncs, not a hundred.

mod error;
mod writer;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use swarm_proto::{Task, TaskStatus};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use error::TaskDbError;

/// Task id → prost-encoded [`Task`].
const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");
/// Task id → still assigned by the dispatcher.
const ASSIGNED: TableDefinition<&str, bool> = TableDefinition::new("assigned");
/// Task id → prost-encoded last observed [`TaskStatus`].
const STATUS: TableDefinition<&str, &[u8]> = TableDefinition::new("status");

/// One change to the task DB.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Store the task as assigned (insert or replace), marking it assigned.
    PutTask(Box<Task>),
    /// Mark a stored task as no longer assigned (no-op for an unknown id).
    Unassign(String),
    /// Record the task's last observed status (no-op for an unknown id).
    PutStatus(String, TaskStatus),
    /// Forget the task entirely.
    Delete(String),
}

impl WriteOp {
    /// [`WriteOp::PutTask`] of `task`.
    pub fn put_task(task: Task) -> Self {
        Self::PutTask(Box::new(task))
    }
}

/// A task as stored, with its flags.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTask {
    /// The task as the dispatcher last assigned it.
    pub task: Task,
    /// Whether the dispatcher still assigns it.
    pub assigned: bool,
    /// The last status the agent observed, if any was written.
    pub status: Option<TaskStatus>,
}

/// A handle to the task DB. Cheap to clone; the DB closes when the last clone is dropped
/// (or at [`TaskDb::close`], which also waits for queued writes).
#[derive(Clone)]
pub struct TaskDb {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    writes: mpsc::UnboundedSender<writer::Request>,
    writer: JoinHandle<()>,
    commits: Arc<AtomicU64>,
}

impl TaskDb {
    /// Opens (or creates) the DB file and starts its writer. Must be called inside a tokio
    /// runtime. Fails if another process, or another `TaskDb` in this one, holds the file.
    pub fn open(path: &Path) -> Result<Self, TaskDbError> {
        let open_err = |e: redb::Error| TaskDbError::Open {
            path: path.to_path_buf(),
            source: Box::new(e),
        };
        let db = Database::create(path).map_err(|e| open_err(e.into()))?;
        let txn = db.begin_write().map_err(|e| open_err(e.into()))?;
        {
            txn.open_table(TASKS).map_err(|e| open_err(e.into()))?;
            txn.open_table(ASSIGNED).map_err(|e| open_err(e.into()))?;
            txn.open_table(STATUS).map_err(|e| open_err(e.into()))?;
        }
        txn.commit().map_err(|e| open_err(e.into()))?;
        let db = Arc::new(db);
        let commits = Arc::new(AtomicU64::new(0));
        let (writes, writer) = writer::spawn(Arc::clone(&db), Arc::clone(&commits));
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                writes,
                writer,
                commits,
            }),
        })
    }

    /// Applies `ops` in one durable transaction (possibly shared with other queued writes) and
    /// returns once it is committed.
    pub async fn write(&self, ops: Vec<WriteOp>) -> Result<(), TaskDbError> {
        self.enqueue(ops).await
    }

    /// Queues `ops` now (their order against later writes is fixed from this call on) and
    /// returns a future that resolves once they are committed. Dropping the future does not
    /// cancel the write.
    pub fn enqueue(
        &self,
        ops: Vec<WriteOp>,
    ) -> impl Future<Output = Result<(), TaskDbError>> + Send + 'static {
        let committed = if ops.is_empty() {
            None
        } else {
            let (done, committed) = oneshot::channel();
            let sent = self.inner.writes.send(writer::Request { ops, done });
            Some(sent.map(|()| committed))
        };
        async move {
            match committed {
                None => Ok(()),
                Some(Err(_)) => Err(TaskDbError::Closed),
                Some(Ok(rx)) => rx.await.map_err(|_| TaskDbError::Closed)?,
            }
        }
    }

    /// Records a task's last observed status; returns once committed.
    pub async fn put_status(&self, id: &str, status: TaskStatus) -> Result<(), TaskDbError> {
        self.write(vec![WriteOp::PutStatus(id.to_string(), status)])
            .await
    }

    /// Commits made by this DB's writer so far (one per group of writes).
    pub fn commits(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    /// Every stored task, in id order.
    pub async fn list(&self) -> Result<Vec<StoredTask>, TaskDbError> {
        self.read(|db| {
            let txn = db.begin_read().map_err(TaskDbError::storage)?;
            let tasks = txn.open_table(TASKS).map_err(TaskDbError::storage)?;
            let assigned = txn.open_table(ASSIGNED).map_err(TaskDbError::storage)?;
            let status = txn.open_table(STATUS).map_err(TaskDbError::storage)?;
            let mut out = Vec::new();
            for row in tasks.iter().map_err(TaskDbError::storage)? {
                let (id, bytes) = row.map_err(TaskDbError::storage)?;
                out.push(stored(id.value(), bytes.value(), &assigned, &status)?);
            }
            Ok(out)
        })
        .await
    }

    /// One stored task.
    pub async fn get(&self, id: &str) -> Result<Option<StoredTask>, TaskDbError> {
        let id = id.to_string();
        self.read(move |db| {
            let txn = db.begin_read().map_err(TaskDbError::storage)?;
            let tasks = txn.open_table(TASKS).map_err(TaskDbError::storage)?;
            let assigned = txn.open_table(ASSIGNED).map_err(TaskDbError::storage)?;
            let status = txn.open_table(STATUS).map_err(TaskDbError::storage)?;
            match tasks.get(id.as_str()).map_err(TaskDbError::storage)? {
                Some(bytes) => Ok(Some(stored(&id, bytes.value(), &assigned, &status)?)),
                None => Ok(None),
            }
        })
        .await
    }

    /// Waits for queued writes to commit and closes the file, if this is the last handle
    /// (otherwise it only drops this one). After it returns the file can be reopened.
    pub async fn close(self) {
        if let Ok(inner) = Arc::try_unwrap(self.inner) {
            let Inner {
                db, writes, writer, ..
            } = inner;
            drop(writes);
            if let Err(e) = writer.await {
                tracing::error!(error = %e, "task DB writer panicked");
            }
            drop(db);
        }
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, TaskDbError> + Send + 'static,
    ) -> Result<T, TaskDbError> {
        let db = Arc::clone(&self.inner.db);
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| TaskDbError::Commit(format!("reader panicked: {e}")))?
    }
}

fn stored(
    id: &str,
    task: &[u8],
    assigned: &impl ReadableTable<&'static str, bool>,
    status: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<StoredTask, TaskDbError> {
    let decode_err = |source| TaskDbError::Decode {
        key: id.to_string(),
        source,
    };
    let task = Task::decode(task).map_err(decode_err)?;
    let assigned = assigned
        .get(id)
        .map_err(TaskDbError::storage)?
        .is_some_and(|v| v.value());
    let status = match status.get(id).map_err(TaskDbError::storage)? {
        Some(bytes) => Some(TaskStatus::decode(bytes.value()).map_err(decode_err)?),
        None => None,
    };
    Ok(StoredTask {
        task,
        assigned,
        status,
    })
}

#[cfg(test)]
mod tests;
