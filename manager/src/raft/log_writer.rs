//! The leader's log writer: makes the driver's staged raft writes durable on a thread of its
//! own, in staging order, so the driver's loop keeps stepping acknowledgements and proposals
//! while an fsync runs (raft thesis §10.2.1: the leader may write its log in parallel with
//! replicating it; raft-rs's `advance_append_async` / `on_persist_ready`).
//!
//! ```text
//!  driver ── stage (memory) ── Job::Write(number) ──▶ writer thread: write_staged (fsync)
//!     ▲                                                     │
//!     └──────────────── Persisted { number, result } ───────┘   → RawNode::on_persist_ready
//! ```
//!
//! Writes queued while an fsync runs are written together in the next transaction (a group
//! commit), so a slow disk costs latency, not throughput. [`LogWriter::drain`] waits until
//! every queued write is on disk: the driver calls it before any storage write of its own
//! and before it handles a `Ready` synchronously.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::storage::{RaftStorage, StagedWrite, StorageError};
use crate::metrics;

/// A write made durable: the number of its `Ready`, or the error that stops the driver.
pub(super) type Persisted = Result<u64, StorageError>;

enum Job {
    Write { number: u64, staged: StagedWrite },
    Drain(std_mpsc::SyncSender<()>),
}

/// Handle to the writer thread. Dropping it waits for the thread to finish its queue and
/// exit, so that the log's database is closed when the driver has stopped.
pub(super) struct LogWriter {
    /// `None` only while dropping.
    jobs: Option<std_mpsc::Sender<Job>>,
    pending: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LogWriter {
    /// Starts the thread; each finished write is reported on `done`.
    pub fn start(storage: RaftStorage, done: mpsc::UnboundedSender<Persisted>) -> Self {
        let (jobs, queue) = std_mpsc::channel::<Job>();
        let pending = Arc::new(AtomicUsize::new(0));
        let left = pending.clone();
        let thread = std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || {
                let mut next = queue.recv().ok();
                while let Some(job) = next.take() {
                    let (number, staged) = match job {
                        Job::Write { number, staged } => (number, staged),
                        Job::Drain(reply) => {
                            let _ = reply.send(());
                            next = queue.recv().ok();
                            continue;
                        }
                    };
                    // Writes queued during the last fsync go in one transaction with this one.
                    let (mut last, mut writes) = (number, vec![staged]);
                    for job in queue.try_iter() {
                        match job {
                            Job::Write { number, staged } => {
                                last = number;
                                writes.push(staged);
                            }
                            drain => {
                                next = Some(drain);
                                break;
                            }
                        }
                    }
                    let count = writes.len();
                    let at = Instant::now();
                    let result = storage.write_staged(writes).map(|()| last);
                    metrics::RAFT_PERSIST_SECONDS.observe(at.elapsed().as_secs_f64());
                    left.fetch_sub(count, Ordering::SeqCst);
                    let failed = result.is_err();
                    if done.send(result).is_err() || failed {
                        return;
                    }
                    if next.is_none() {
                        next = queue.recv().ok();
                    }
                }
            })
            .expect("spawning the raft log writer thread");
        Self {
            jobs: Some(jobs),
            pending,
            thread: Some(thread),
        }
    }

    fn send(&self, job: Job) -> bool {
        self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok())
    }

    /// Queues the staged write of `Ready` number `number`.
    pub fn write(&self, number: u64, staged: StagedWrite) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if !self.send(Job::Write { number, staged }) {
            // The thread stopped after a failed write; the driver is stopping on that error.
            self.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Blocks until every queued write is done (the writer thread runs while this waits).
    pub fn drain(&self) {
        if self.pending.load(Ordering::SeqCst) == 0 {
            return;
        }
        let (reply, wait) = std_mpsc::sync_channel(1);
        if self.send(Job::Drain(reply)) {
            let _ = wait.recv();
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
