//! Worker tests with the null backend (and a scripted one for failures), a real task DB in a
//! temp dir, and a recording reporter sink. Every wait has a deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use swarm_proto::{AssignmentChange, Task, TaskState, TaskStatus, assignment_change::Action};
use tempfile::TempDir;
use tokio::sync::watch;

use super::*;
use crate::exec::{Controller, ExecError, ExitStatus, NullBackend};
use crate::reporter::Reporter;
use crate::testutil::{TestSink, all_in, eventually, latest, wait_for};

type Batches = watch::Receiver<Vec<Vec<swarm_proto::TaskStatusUpdate>>>;

fn task(id: &str, desired: TaskState) -> Task {
    Task {
        id: id.to_string(),
        service_id: "svc".into(),
        desired_state: desired as i32,
        status: Some(TaskStatus {
            state: TaskState::Assigned as i32,
            message: "scheduler assigned task to node".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tasks(ids: &[&str]) -> Vec<Task> {
    ids.iter().map(|id| task(id, TaskState::Running)).collect()
}

struct Agent {
    db: TaskDb,
    worker: WorkerHandle,
    sink: Arc<TestSink>,
    batches: Batches,
}

async fn start(dir: &TempDir, backend: Arc<dyn Backend>) -> Agent {
    let db = TaskDb::open(&dir.path().join("tasks.redb")).unwrap();
    let reporter = Reporter::spawn();
    let sink = Arc::new(TestSink::new());
    let batches = sink.batches();
    reporter.connect(sink.clone());
    let worker = Worker::start(db.clone(), backend, reporter).await.unwrap();
    Agent {
        db,
        worker,
        sink,
        batches,
    }
}

impl Agent {
    async fn wait_state(&mut self, ids: &[&str], state: TaskState) {
        let what = format!("{ids:?} reported {state:?}");
        wait_for(&mut self.batches, &what, |b| all_in(b, ids, state)).await;
    }

    async fn stop(self) {
        self.worker.stop().await;
        self.db.close().await;
    }
}

#[tokio::test]
async fn t10_a_complete_set_runs_every_task() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(NullBackend::new());
    let mut agent = start(&dir, backend.clone()).await;

    agent.worker.assign(tasks(&["a", "b", "c"])).await.unwrap();
    agent.wait_state(&["a", "b", "c"], TaskState::Running).await;

    assert_eq!(agent.worker.tasks().await.unwrap(), ["a", "b", "c"]);
    assert_eq!(backend.stats().running, 3);
    for t in agent.db.list().await.unwrap() {
        assert!(t.assigned);
        let status = t.status.unwrap();
        assert_eq!(status.state, TaskState::Running as i32, "{}", t.task.id);
        assert_eq!(status.message, "started");
    }
    agent.stop().await;
}

#[tokio::test]
async fn t20_a_smaller_set_shuts_down_and_deletes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(NullBackend::new());
    let mut agent = start(&dir, backend.clone()).await;
    agent.worker.assign(tasks(&["a", "b", "c"])).await.unwrap();
    agent.wait_state(&["a", "b", "c"], TaskState::Running).await;

    agent.worker.assign(tasks(&["a"])).await.unwrap();
    agent.wait_state(&["b", "c"], TaskState::Shutdown).await;
    let db = agent.db.clone();
    eventually("b and c deleted from the DB", || {
        let db = db.clone();
        async move { db.list().await.unwrap().len() == 1 }
    })
    .await;
    assert_eq!(agent.worker.tasks().await.unwrap(), ["a"]);
    assert!(all_in(&agent.batches.borrow(), &["a"], TaskState::Running));
    eventually("removed controllers dropped", || async {
        backend.stats().controllers_live == 1
    })
    .await;
    assert_eq!(backend.stats().running, 1);
    agent.stop().await;
}

#[tokio::test]
async fn t30_incremental_desired_shutdown_then_remove() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = start(&dir, Arc::new(NullBackend::new())).await;
    agent.worker.assign(tasks(&["a", "b"])).await.unwrap();
    agent.wait_state(&["a", "b"], TaskState::Running).await;

    let update = |action: Action, t: Task| AssignmentChange {
        action: action as i32,
        task: Some(t),
    };
    agent
        .worker
        .update(vec![update(Action::Update, task("a", TaskState::Shutdown))])
        .await
        .unwrap();
    agent.wait_state(&["a"], TaskState::Shutdown).await;
    let a = agent.db.get("a").await.unwrap().unwrap();
    assert!(a.assigned, "a shut-down task stays assigned until removed");
    assert_eq!(a.task.desired_state, TaskState::Shutdown as i32);

    agent
        .worker
        .update(vec![
            update(Action::Remove, task("a", TaskState::Shutdown)),
            update(Action::Update, task("c", TaskState::Running)),
        ])
        .await
        .unwrap();
    agent.wait_state(&["c"], TaskState::Running).await;
    let db = agent.db.clone();
    eventually("a deleted", || {
        let db = db.clone();
        async move { db.get("a").await.unwrap().is_none() }
    })
    .await;
    assert_eq!(agent.worker.tasks().await.unwrap(), ["b", "c"]);
    agent.stop().await;
}

#[tokio::test]
async fn t40_restart_readopts_assigned_tasks_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(NullBackend::new());
    let mut agent = start(&dir, backend.clone()).await;
    agent.worker.assign(tasks(&["a", "b", "c"])).await.unwrap();
    agent.wait_state(&["a", "b", "c"], TaskState::Running).await;
    agent.stop().await;
    assert_eq!(backend.stats().controllers_live, 0);
    assert_eq!(backend.stats().controllers_created, 3);

    tracing::info!("--- restart on the same DB");
    let mut agent = start(&dir, backend.clone()).await;
    agent.wait_state(&["a", "b", "c"], TaskState::Running).await;
    assert_eq!(agent.worker.tasks().await.unwrap(), ["a", "b", "c"]);
    let reported: Vec<i32> = agent
        .batches
        .borrow()
        .iter()
        .flatten()
        .map(|u| u.status.as_ref().unwrap().state)
        .collect();
    assert!(
        reported.iter().all(|s| *s == TaskState::Running as i32),
        "re-adopted tasks resume at RUNNING: {reported:?}"
    );
    assert_eq!(backend.stats().controllers_live, 3);

    tracing::info!("--- the dispatcher re-sends the same complete set");
    agent.worker.assign(tasks(&["a", "b", "c"])).await.unwrap();
    assert_eq!(agent.worker.tasks().await.unwrap(), ["a", "b", "c"]);
    assert_eq!(backend.stats().controllers_created, 6);
    assert_eq!(backend.stats().controllers_live, 3);
    agent.stop().await;
}

#[tokio::test]
async fn t50_init_retires_and_deletes_unassigned_tasks() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = TaskDb::open(&dir.path().join("tasks.redb")).unwrap();
        db.write(vec![
            WriteOp::put_task(task("kept", TaskState::Running)),
            WriteOp::put_task(task("stale", TaskState::Running)),
            WriteOp::Unassign("stale".into()),
        ])
        .await
        .unwrap();
        db.close().await;
    }
    let mut agent = start(&dir, Arc::new(NullBackend::new())).await;
    agent.wait_state(&["kept"], TaskState::Running).await;
    agent.wait_state(&["stale"], TaskState::Shutdown).await;
    let db = agent.db.clone();
    eventually("stale deleted", || {
        let db = db.clone();
        async move { db.get("stale").await.unwrap().is_none() }
    })
    .await;
    assert_eq!(agent.worker.tasks().await.unwrap(), ["kept"]);
    agent.stop().await;
}

/// A backend whose behaviour is scripted by the task's `service_id`.
struct ScriptBackend {
    flaky_failures: Arc<AtomicU32>,
}

struct ScriptController {
    script: String,
    flaky_failures: Arc<AtomicU32>,
}

impl Backend for ScriptBackend {
    fn describe(&self) -> swarm_proto::NodeDescription {
        Default::default()
    }

    fn controller(&self, task: &Task) -> Result<Box<dyn Controller>, ExecError> {
        if task.service_id == "unsupported" {
            return Err(ExecError::InvalidTask("no runtime in task spec".into()));
        }
        Ok(Box::new(ScriptController {
            script: task.service_id.clone(),
            flaky_failures: Arc::clone(&self.flaky_failures),
        }))
    }
}

#[async_trait::async_trait]
impl Controller for ScriptController {
    async fn prepare(&mut self) -> Result<(), ExecError> {
        match self.script.as_str() {
            "missing" => Err(ExecError::NotFound("artifact hello:1".into())),
            "flaky" if self.flaky_failures.fetch_add(1, Ordering::SeqCst) < 2 => {
                Err(ExecError::Temporary("registry busy".into()))
            }
            _ => Ok(()),
        }
    }
    async fn start(&mut self) -> Result<(), ExecError> {
        match self.script.as_str() {
            "nostart" => Err(ExecError::Runtime("exec format error".into())),
            _ => Ok(()),
        }
    }
    async fn wait(&mut self) -> Result<ExitStatus, ExecError> {
        match self.script.as_str() {
            "exit3" => Ok(ExitStatus {
                code: 3,
                message: "disk full".into(),
            }),
            "job" => Ok(ExitStatus::default()),
            _ => std::future::pending().await,
        }
    }
    async fn shutdown(&mut self) -> Result<(), ExecError> {
        Ok(())
    }
    async fn remove(&mut self) -> Result<(), ExecError> {
        Ok(())
    }
}

#[tokio::test]
async fn t60_fatal_errors_reject_before_starting_and_fail_after() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(ScriptBackend {
        flaky_failures: Arc::new(AtomicU32::new(0)),
    });
    let mut agent = start(&dir, backend.clone()).await;
    let scripted = |id: &str, script: &str| Task {
        service_id: script.into(),
        ..task(id, TaskState::Running)
    };
    agent
        .worker
        .assign(vec![
            scripted("unsupported", "unsupported"),
            scripted("missing", "missing"),
            scripted("nostart", "nostart"),
            scripted("exit3", "exit3"),
            scripted("job", "job"),
            scripted("flaky", "flaky"),
        ])
        .await
        .unwrap();
    agent
        .wait_state(&["unsupported", "missing"], TaskState::Rejected)
        .await;
    agent
        .wait_state(&["nostart", "exit3"], TaskState::Failed)
        .await;
    agent.wait_state(&["job"], TaskState::Complete).await;
    agent.wait_state(&["flaky"], TaskState::Running).await;

    let latest = latest(&agent.batches.borrow());
    assert_eq!(
        latest["unsupported"].err,
        "invalid task: no runtime in task spec"
    );
    assert_eq!(latest["missing"].err, "not found: artifact hello:1");
    assert_eq!(latest["nostart"].err, "runtime error: exec format error");
    assert_eq!(latest["exit3"].err, "task: non-zero exit (3): disk full");
    assert_eq!(latest["exit3"].exit_code, 3);
    assert_eq!(latest["exit3"].message, "disk full");
    assert_eq!(latest["job"].message, "finished");
    assert_eq!(backend.flaky_failures.load(Ordering::SeqCst), 3);
    assert!(agent.sink.attempts() > 0);
    agent.stop().await;
}
