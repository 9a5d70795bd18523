//! Test helpers shared by the unit tests: a recording [`StatusSink`] and condition waits
//! with deadlines (tests never sleep to wait).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use swarm_proto::{TaskState, TaskStatus, TaskStatusUpdate};
use tokio::sync::{Semaphore, watch};

use crate::reporter::{ReportError, StatusSink};

/// How long any test waits for a condition before failing.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// A sink that records every acknowledged batch, can fail its next sends, and can hold sends
/// until a permit is added.
pub(crate) struct TestSink {
    acked: watch::Sender<Vec<Vec<TaskStatusUpdate>>>,
    attempts: AtomicUsize,
    fail_next: AtomicUsize,
    gate: Option<Semaphore>,
}

impl TestSink {
    pub(crate) fn new() -> Self {
        Self {
            acked: watch::Sender::new(Vec::new()),
            attempts: AtomicUsize::new(0),
            fail_next: AtomicUsize::new(0),
            gate: None,
        }
    }

    /// Every send waits for a permit added with [`TestSink::open`].
    pub(crate) fn gated() -> Self {
        Self {
            gate: Some(Semaphore::new(0)),
            ..Self::new()
        }
    }

    /// Lets `n` more sends through a gated sink.
    pub(crate) fn open(&self, n: usize) {
        self.gate.as_ref().expect("gated sink").add_permits(n);
    }

    /// The next `n` sends fail.
    pub(crate) fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// Sends attempted so far.
    pub(crate) fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }

    /// Watches the acknowledged batches.
    pub(crate) fn batches(&self) -> watch::Receiver<Vec<Vec<TaskStatusUpdate>>> {
        self.acked.subscribe()
    }
}

#[async_trait::async_trait]
impl StatusSink for TestSink {
    async fn send(&self, updates: Vec<TaskStatusUpdate>) -> Result<(), ReportError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("gate open").forget();
        }
        let failing = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(ReportError::Other("injected failure".into()));
        }
        self.acked.send_modify(|b| b.push(updates));
        Ok(())
    }
}

/// The latest acknowledged status per task across `batches`.
pub(crate) fn latest(batches: &[Vec<TaskStatusUpdate>]) -> HashMap<String, TaskStatus> {
    let mut out = HashMap::new();
    for u in batches.iter().flatten() {
        out.insert(u.task_id.clone(), u.status.clone().unwrap_or_default());
    }
    out
}

/// True when every id in `ids` was last reported in `state`.
pub(crate) fn all_in(batches: &[Vec<TaskStatusUpdate>], ids: &[&str], state: TaskState) -> bool {
    let latest = latest(batches);
    ids.iter()
        .all(|id| latest.get(*id).is_some_and(|s| s.state == state as i32))
}

/// Waits until `cond` holds for the watched value, or panics after [`DEADLINE`].
pub(crate) async fn wait_for<T>(
    rx: &mut watch::Receiver<T>,
    what: &str,
    cond: impl FnMut(&T) -> bool,
) {
    match tokio::time::timeout(DEADLINE, rx.wait_for(cond)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => panic!("{what}: sender dropped"),
        Err(_) => panic!("{what}: not reached within {DEADLINE:?}"),
    }
}

/// Re-checks an async condition every 10 ms until it holds, or panics after [`DEADLINE`].
pub(crate) async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not reached within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
