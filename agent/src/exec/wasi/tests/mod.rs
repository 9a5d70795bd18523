//! Tests of the WASI backend with real wasmtime and the real test guests (`swarm-guests`),
//! grouped by area from basic runs to hostile guests. Each test has its own state dir and
//! backend; every wait has a deadline.

mod t10_exit;
mod t20_traps;
mod t30_cpu;
mod t40_sandbox;
mod t50_cache;
mod t60_lifecycle;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swarm_proto::task_spec::Runtime;
use swarm_proto::{ResourceRequirements, Resources, Task, TaskSpec, Ulimit, WasmRuntime};

use super::{WasiBackend, WasiConfig};
use crate::artifacts::{ArtifactSource, digest_of};
use crate::exec::{Backend, Controller, ExecError, ExitStatus};
use crate::tasklog::{LogRecord, Tail, TaskLogReader, logs_dir};

/// How long any single step of a test may take before it fails.
const DEADLINE: Duration = Duration::from_secs(30);

/// Artifacts kept as files in a temp dir, by digest (what the agent's store does after a fetch).
#[derive(Default)]
struct DirArtifacts {
    files: Mutex<HashMap<String, PathBuf>>,
}

#[async_trait::async_trait]
impl ArtifactSource for DirArtifacts {
    async fn path(&self, digest: &str) -> Result<PathBuf, ExecError> {
        let files = self.files.lock().unwrap();
        files
            .get(digest)
            .cloned()
            .ok_or_else(|| ExecError::NotFound(format!("artifact {digest}")))
    }
}

/// A backend on a temp state dir, with artifacts registered by the test.
struct Fixture {
    state: tempfile::TempDir,
    artifacts: Arc<DirArtifacts>,
    backend: WasiBackend,
}

impl Fixture {
    fn new() -> Self {
        let state = tempfile::tempdir().unwrap();
        let artifacts = Arc::new(DirArtifacts::default());
        let backend = Self::backend_on(state.path(), &artifacts);
        Self {
            state,
            artifacts,
            backend,
        }
    }

    fn backend_on(state: &Path, artifacts: &Arc<DirArtifacts>) -> WasiBackend {
        let source: Arc<dyn ArtifactSource> = artifacts.clone();
        let mut config = WasiConfig::new(state.to_path_buf(), source);
        // A small pool: tests run several backends at once, and each pooled stack's guard
        // page is a memory mapping of its own (the process has 65,530 at most by default).
        config.limits.max_instances = 64;
        WasiBackend::new(config).unwrap()
    }

    /// Registers the artifact at `path` under `name`; returns its pinned reference.
    fn add(&self, name: &str, path: &str) -> String {
        let digest = digest_of(&std::fs::read(path).unwrap());
        self.artifacts
            .files
            .lock()
            .unwrap()
            .insert(digest.clone(), PathBuf::from(path));
        format!("{name}:1@{digest}")
    }

    /// Writes `wat` to the artifact dir and registers it.
    fn add_wat(&self, name: &str, wat: &str) -> String {
        let path = self.state.path().join(format!("{name}.wat"));
        std::fs::write(&path, wat).unwrap();
        self.add(name, path.to_str().unwrap())
    }

    fn controller(&self, task: &Task) -> Box<dyn Controller> {
        self.backend.controller(task).unwrap()
    }

    /// prepare + start + wait, each under the deadline.
    async fn run(&self, task: &Task) -> Result<ExitStatus, ExecError> {
        run_on(&self.backend, task).await
    }

    fn logs(&self, task_id: &str) -> Vec<LogRecord> {
        TaskLogReader::new(&logs_dir(self.state.path()), task_id)
            .backlog(Tail::All)
            .unwrap()
    }

    fn lines(&self, task_id: &str) -> Vec<String> {
        self.logs(task_id).into_iter().map(|r| r.log).collect()
    }

    /// Polls the task's log until a line contains `needle`.
    async fn wait_for_line(&self, task_id: &str, needle: &str) {
        let found = async {
            loop {
                if self.lines(task_id).iter().any(|l| l.contains(needle)) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(DEADLINE, found).await.is_err() {
            panic!(
                "task {task_id} never logged {needle:?}; log: {:?}",
                self.lines(task_id)
            );
        }
    }
}

/// Runs `f`, failing the test with `what` if it takes longer than [`DEADLINE`].
/// prepare + start + wait on `backend`, each under the deadline.
async fn run_on(backend: &WasiBackend, task: &Task) -> Result<ExitStatus, ExecError> {
    let mut c = backend.controller(task).unwrap();
    within("prepare", c.prepare()).await?;
    within("start", c.start()).await?;
    within("wait", c.wait()).await
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {DEADLINE:?}"))
}

/// A task builder over [`WasmRuntime`].
struct TaskBuilder {
    task: Task,
}

fn task(id: &str, artifact: &str) -> TaskBuilder {
    TaskBuilder {
        task: Task {
            id: id.into(),
            spec: Some(TaskSpec {
                runtime: Some(Runtime::Wasm(WasmRuntime {
                    artifact: artifact.into(),
                    ..Default::default()
                })),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

impl TaskBuilder {
    fn wasm(&mut self) -> &mut WasmRuntime {
        match self.task.spec.as_mut().unwrap().runtime.as_mut().unwrap() {
            Runtime::Wasm(w) => w,
            Runtime::Oci(_) => unreachable!("built as wasm"),
        }
    }

    fn args(mut self, args: &[&str]) -> Self {
        self.wasm().args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    fn env(mut self, env: &[&str]) -> Self {
        self.wasm().env = env.iter().map(|a| a.to_string()).collect();
        self
    }

    fn mount(mut self, source: &Path, target: &str, readonly: bool) -> Self {
        self.wasm().mounts.push(swarm_proto::Mount {
            source: source.to_str().unwrap().into(),
            target: target.into(),
            readonly,
        });
        self
    }

    fn cpu_ulimit(mut self, seconds: i64) -> Self {
        self.wasm().ulimits.push(Ulimit {
            name: "cpu".into(),
            soft: seconds,
            hard: seconds,
        });
        self
    }

    fn limits(mut self, nano_cpus: i64, memory_bytes: i64) -> Self {
        self.task.spec.as_mut().unwrap().resources = Some(ResourceRequirements {
            limits: Some(Resources {
                nano_cpus,
                memory_bytes,
            }),
            reservations: None,
        });
        self
    }

    fn build(self) -> Task {
        self.task
    }
}
