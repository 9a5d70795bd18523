//! `start-latency --backend wasi|oci --tasks N`: the agent-side start latency of one backend
//! on a one-node cluster. A manager process (`--no-agent`) and one agent in this process
//! whose backend is wrapped in [`Timed`]; after one warm-up task, N replicas; per task, the
//! time from the worker creating its controller to `start()` returning: p50 / p99 / max.
//! The tasks start concurrently, so a latency includes waiting for the others; `span_ms` is
//! the whole burst (first controller made to last start returned) and `span_per_task_ms`
//! that divided by N, the figure comparable to a runtime's sequential per-container cost.
//!
//! | backend | task | warm-up leaves behind | `start()` returns when |
//! |---|---|---|---|
//! | `wasi` | the `sleeper --quiet` guest | the artifact fetched, compiled, cached | the guest's task is spawned |
//! | `oci` | busybox `sleep` under runc | the image unpacked | `runc state` says running |
//!
//! The OCI image is Debian's `busybox-static` written into an OCI image layout by
//! `LayoutWriter` (the e2e tests' image); each task still gets its own bundle (a copy of
//! the rootfs and a config.json), as every container does. Containers outlive the agent by
//! design, so the run ends by removing both services and waiting until runc lists no
//! container; the task traps SIGTERM so that takes well under the 10 s grace period.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use swarm_agent::exec::oci::LayoutWriter;
use swarm_agent::exec::select::{self, BackendKind, Backends, OciOptions};
use swarm_agent::session::SessionLinks;
use tokio_util::sync::CancellationToken;

use crate::cluster::ManagerChild;
use crate::procs;
use crate::timed::{Sample, Timed, quantile, span};
use crate::wasm;

/// The backend a start-latency run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// WASM components on wasmtime (the sleeper guest).
    Wasi,
    /// Containers through runc (busybox `sleep`).
    Oci,
}

#[derive(clap::Args)]
pub struct Args {
    /// The backend to measure.
    #[arg(long, value_enum, default_value_t = Backend::Wasi)]
    backend: Backend,
    /// Tasks to start.
    #[arg(long, default_value_t = 200)]
    tasks: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

/// What the OCI tasks run: idle until SIGTERM, then exit at once.
const OCI_SCRIPT: &str = "trap 'exit 0' TERM; sleep 3600 & wait";

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Wasi => "wasi",
            Backend::Oci => "oci",
        }
    }

    fn kind(self) -> BackendKind {
        match self {
            Backend::Wasi => BackendKind::Wasi,
            Backend::Oci => BackendKind::Oci,
        }
    }

    /// Creates service `name` with `replicas` idle tasks of this backend; `dir` holds the
    /// OCI image layout.
    async fn create(
        self,
        manager: &ManagerChild,
        dir: &Path,
        name: &str,
        replicas: u64,
    ) -> anyhow::Result<()> {
        match self {
            Backend::Wasi => wasm::sleepers(manager, name, replicas).await,
            Backend::Oci => {
                let layout = dir.join("busybox");
                if !layout.exists() {
                    LayoutWriter::busybox(Path::new("/bin/busybox"))?.write(&layout, "1")?;
                }
                let image = format!("oci-layout:{}:1", layout.display());
                let task = ["--runtime", "oci", &image, "sh", "-c", OCI_SCRIPT];
                manager.create_service(name, replicas, &task).await
            }
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manager = ManagerChild::start(dir.path(), &["--no-agent"]).await?;
    let state = dir.path().join("agent");
    let links = SessionLinks::new();
    let timed = Arc::new(Timed::new(select::build(
        &Backends(vec![args.backend.kind()]),
        &OciOptions::default(),
        &state,
        links.clone(),
    )?));
    let shutdown = CancellationToken::new();
    let config = swarm_agent::AgentConfig {
        managers: vec![manager.addr.clone()],
        join_token: manager.worker_token().await?,
        state_dir: state.clone(),
        key_protection: Default::default(),
        hostname: "bench-agent".into(),
        labels: Default::default(),
        backend: timed.clone(),
        links,
    };
    let agent = tokio::spawn(swarm_agent::run(config, shutdown.clone()));
    let timeout = Duration::from_secs(args.timeout);
    let backend = args.backend;

    eprintln!("warming up: one {} task", backend.name());
    backend.create(&manager, dir.path(), "warm", 1).await?;
    manager.wait_running(1, timeout, || {}).await?;
    timed.take();

    eprintln!("starting {} {} tasks", args.tasks, backend.name());
    backend
        .create(&manager, dir.path(), "bench", args.tasks)
        .await?;
    manager.wait_running(args.tasks + 1, timeout, || {}).await?;
    let samples = timed.take();
    let mut latencies: Vec<Duration> = samples.iter().map(Sample::latency).collect();
    latencies.sort();
    let span = span(&samples);
    if backend == Backend::Oci {
        remove_containers(&manager, &state.join("oci").join("runc"), timeout).await?;
    }
    shutdown.cancel();
    let _ = agent.await;
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    println!(
        "{}",
        json!({
            "bench": "start-latency",
            "backend": backend.name(),
            "tasks": latencies.len(),
            "p50_ms": ms(quantile(&latencies, 0.5)),
            "p99_ms": ms(quantile(&latencies, 0.99)),
            "max_ms": ms(quantile(&latencies, 1.0)),
            "span_ms": ms(span),
            "span_per_task_ms": ms(span / latencies.len().max(1) as u32),
        })
    );
    Ok(())
}

/// Removes both services and waits until runc (`--root runc_root`) lists no container.
async fn remove_containers(
    manager: &ManagerChild,
    runc_root: &Path,
    timeout: Duration,
) -> anyhow::Result<()> {
    eprintln!("removing the containers");
    manager.ctl(&["service", "rm", "warm", "bench"]).await?;
    procs::wait_until(
        "runc to list no container",
        timeout,
        Duration::from_millis(100),
        || async {
            let out = tokio::process::Command::new("runc")
                .arg("--root")
                .arg(runc_root)
                .args(["list", "-q"])
                .output()
                .await
                .ok()?;
            (out.status.success() && out.stdout.trim_ascii().is_empty()).then_some(())
        },
    )
    .await
}
