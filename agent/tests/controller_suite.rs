//! ONE controller test suite, run against every backend (openraft's `testing/log/suite.rs`
//! pattern): the rules written on `exec::Backend` and `exec::Controller` — idempotent
//! prepare/start, a cancel-safe `wait` that pends while the workload runs, `shutdown` that
//! succeeds before any start and stops a running workload, a repeatable `remove`, and jobs
//! whose exit code and last stderr line come back from `wait` — checked the same way for
//! the null, WASI and OCI (runc) backends. The OCI case needs `runc` and Debian's
//! `busybox-static` (`.ci/run` installs both) and runs as root.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swarm_agent::artifacts::{ArtifactSource, digest_of};
use swarm_agent::exec::oci::{LayoutWriter, OciBackend, OciConfig, ShimCommand};
use swarm_agent::exec::wasi::{WasiBackend, WasiConfig};
use swarm_agent::exec::{Backend, Controller, ExecError, ExitStatus, NullBackend};
use swarm_agent::tasklog::{Tail, TaskLogReader, logs_dir};
use swarm_proto::task_spec::Runtime;
use swarm_proto::{OciRuntime, Task, TaskSpec, WasmRuntime};

/// A job that exits 0 logging `ok_line`, and one that exits `code` with `message` (its last
/// stderr line).
struct Jobs {
    ok: Task,
    ok_line: String,
    fail: Task,
    code: i32,
    message: String,
}

/// The longest any one step may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// What the suite needs from a backend under test.
trait Case {
    fn backend(&self) -> Arc<dyn Backend>;
    /// A task that runs until shut down.
    fn long_running(&self, id: &str) -> Task;
    /// Two jobs and what they must end with. `None` for a backend whose workloads never
    /// exit (null).
    fn jobs(&self, id: &str) -> Option<Jobs>;
    /// The task's log lines.
    fn lines(&self, task_id: &str) -> Vec<String>;
}

async fn step<T>(what: &str, f: impl std::future::Future<Output = Result<T, ExecError>>) -> T {
    match tokio::time::timeout(DEADLINE, f).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("{what} failed: {e}"),
        Err(_) => panic!("{what} did not finish within {DEADLINE:?}"),
    }
}

async fn run_job(c: &mut Box<dyn Controller>) -> ExitStatus {
    step("prepare", c.prepare()).await;
    step("start", c.start()).await;
    step("wait", c.wait()).await
}

/// The suite. Each numbered part announces itself.
async fn suite(case: &dyn Case) {
    let backend = case.backend();

    eprintln!("--- 1. a long-running workload: wait pends, start is idempotent, shutdown stops it");
    let task = case.long_running("long1");
    let mut c = backend.controller(&task).expect("controller");
    step("prepare", c.prepare()).await;
    step("prepare again", c.prepare()).await;
    step("start", c.start()).await;
    step("start again", c.start()).await;
    let pending = tokio::time::timeout(Duration::from_millis(300), c.wait()).await;
    assert!(pending.is_err(), "wait() must pend while the workload runs");
    // A second controller for the same task (an agent restart) re-attaches, starts nothing.
    let mut again = backend.controller(&task).expect("controller");
    step("start from a new controller", again.start()).await;
    drop(again);
    step("shutdown", c.shutdown()).await;
    step("shutdown again", c.shutdown()).await;
    step("remove", c.remove()).await;
    step("remove again", c.remove()).await;

    eprintln!("--- 2. shutdown and remove of a workload that never started");
    let mut never = backend
        .controller(&case.long_running("never1"))
        .expect("controller");
    step("shutdown", never.shutdown()).await;
    step("remove", never.remove()).await;

    let Some(Jobs {
        ok,
        ok_line,
        fail,
        code,
        message,
    }) = case.jobs("job")
    else {
        return;
    };
    eprintln!("--- 3. a job that exits 0, with its output in the task log");
    let mut c = backend.controller(&ok).expect("controller");
    assert_eq!(run_job(&mut c).await, ExitStatus::default());
    assert!(
        case.lines(&ok.id).contains(&ok_line),
        "log of {}: {:?}",
        ok.id,
        case.lines(&ok.id)
    );
    // wait() again returns the same end (a repeated call after a cancelled one).
    assert_eq!(step("wait again", c.wait()).await, ExitStatus::default());
    step("remove", c.remove()).await;
    assert!(case.lines(&ok.id).is_empty(), "remove() deletes the logs");

    eprintln!("--- 4. a failing job: its code and last stderr line");
    let mut c = backend.controller(&fail).expect("controller");
    let exit = run_job(&mut c).await;
    assert_eq!((exit.code, exit.message), (code, message));
    step("remove", c.remove()).await;
}

fn lines_in(state: &Path, task_id: &str) -> Vec<String> {
    TaskLogReader::new(&logs_dir(state), task_id)
        .backlog(Tail::All)
        .map(|r| r.into_iter().map(|r| r.log).collect())
        .unwrap_or_default()
}

// ---- null ----

struct NullCase(NullBackend);

impl Case for NullCase {
    fn backend(&self) -> Arc<dyn Backend> {
        Arc::new(self.0.clone())
    }
    fn long_running(&self, id: &str) -> Task {
        Task {
            id: id.into(),
            ..Default::default()
        }
    }
    fn jobs(&self, _id: &str) -> Option<Jobs> {
        None
    }
    fn lines(&self, _task_id: &str) -> Vec<String> {
        Vec::new()
    }
}

#[tokio::test]
async fn t10_null_backend_passes_the_suite() {
    let backend = NullBackend::new();
    suite(&NullCase(backend.clone())).await;
    assert_eq!(backend.stats().running, 0);
}

// ---- WASI ----

#[derive(Default)]
struct Files(Mutex<std::collections::HashMap<String, PathBuf>>);

#[async_trait::async_trait]
impl ArtifactSource for Files {
    async fn path(&self, digest: &str) -> Result<PathBuf, ExecError> {
        let files = self.0.lock().unwrap();
        files
            .get(digest)
            .cloned()
            .ok_or_else(|| ExecError::NotFound(format!("artifact {digest}")))
    }
}

struct WasiCase {
    state: tempfile::TempDir,
    backend: Arc<WasiBackend>,
    files: Arc<Files>,
}

impl WasiCase {
    fn new() -> Self {
        let state = tempfile::tempdir().unwrap();
        let files = Arc::new(Files::default());
        let source: Arc<dyn ArtifactSource> = files.clone();
        let mut config = WasiConfig::new(state.path().to_path_buf(), source);
        config.limits.max_instances = 16;
        Self {
            backend: Arc::new(WasiBackend::new(config).unwrap()),
            state,
            files,
        }
    }

    fn add(&self, name: &str, path: &str) -> String {
        let digest = digest_of(&std::fs::read(path).unwrap());
        self.files
            .0
            .lock()
            .unwrap()
            .insert(digest.clone(), path.into());
        format!("{name}:1@{digest}")
    }

    fn task(&self, id: &str, artifact: String, args: &[&str]) -> Task {
        Task {
            id: id.into(),
            spec: Some(TaskSpec {
                runtime: Some(Runtime::Wasm(WasmRuntime {
                    artifact,
                    args: args.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

impl Case for WasiCase {
    fn backend(&self) -> Arc<dyn Backend> {
        self.backend.clone()
    }
    fn long_running(&self, id: &str) -> Task {
        let sleeper = self.add("sleeper", swarm_guests::SLEEPER);
        self.task(id, sleeper, &["--quiet"])
    }
    fn jobs(&self, id: &str) -> Option<Jobs> {
        // The wasip1 exit-code module keeps its exit code (a wasip2 one would report 1); it
        // prints to stdout only, so there is no stderr line.
        let hello = self.add("hello", swarm_guests::HELLO);
        let exit = self.add("exit-code", swarm_guests::EXIT_CODE_P1);
        Some(Jobs {
            ok: self.task(&format!("{id}-ok"), hello, &["suite"]),
            ok_line: "hello from swarm suite".into(),
            fail: self.task(&format!("{id}-fail"), exit, &["3"]),
            code: 3,
            message: String::new(),
        })
    }
    fn lines(&self, task_id: &str) -> Vec<String> {
        lines_in(self.state.path(), task_id)
    }
}

#[tokio::test]
async fn t20_wasi_backend_passes_the_suite() {
    suite(&WasiCase::new()).await;
}

// ---- OCI (runc) ----

struct OciCase {
    state: tempfile::TempDir,
    image: String,
    backend: Arc<OciBackend>,
}

impl OciCase {
    fn new() -> Self {
        let state = tempfile::tempdir().unwrap();
        let layout = state.path().join("busybox-layout");
        LayoutWriter::busybox(Path::new("/bin/busybox"))
            .expect("read /bin/busybox (apt-get install busybox-static)")
            .write(&layout, "1")
            .unwrap();
        let runtime = swarm_agent::exec::oci::resolve_runtime("runc")
            .expect("runc is installed (apt-get install runc)");
        let shim = ShimCommand {
            program: env!("CARGO_BIN_EXE_swarm-oci-shim").into(),
            args: vec!["oci-shim".into()],
        };
        let mut config = OciConfig::new(state.path().join("agent"), runtime, shim);
        config.stop_grace = Duration::from_secs(2);
        Self {
            image: format!("oci-layout:{}:1", layout.display()),
            backend: Arc::new(OciBackend::new(config).unwrap()),
            state,
        }
    }

    fn task(&self, id: &str, script: &str) -> Task {
        Task {
            id: id.into(),
            spec: Some(TaskSpec {
                runtime: Some(Runtime::Oci(OciRuntime {
                    image: self.image.clone(),
                    args: vec!["sh".into(), "-c".into(), script.into()],
                    ..Default::default()
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

impl Case for OciCase {
    fn backend(&self) -> Arc<dyn Backend> {
        self.backend.clone()
    }
    fn long_running(&self, id: &str) -> Task {
        self.task(id, "trap 'exit 0' TERM; while true; do sleep 0.1; done")
    }
    fn jobs(&self, id: &str) -> Option<Jobs> {
        Some(Jobs {
            ok: self.task(&format!("{id}-ok"), "echo hello"),
            ok_line: "hello".into(),
            fail: self.task(&format!("{id}-fail"), "echo oops >&2; exit 3"),
            code: 3,
            message: "oops".into(),
        })
    }
    fn lines(&self, task_id: &str) -> Vec<String> {
        lines_in(&self.state.path().join("agent"), task_id)
    }
}

#[tokio::test]
async fn t30_oci_backend_passes_the_suite() {
    let case = OciCase::new();
    suite(&case).await;
    // Nothing left behind in the runtime.
    let out = std::process::Command::new("runc")
        .arg("--root")
        .arg(case.backend.runtime_root())
        .args(["list", "-q"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "", "runc list");
}
