//! swarm agent: receives tasks from the managers' dispatcher, persists them, runs them through
//! a pluggable [`exec::Backend`], and reports their status (SwarmKit's `agent/`).
//!
//! ```text
//!             ┌────────────── SessionLoop (session.rs) ───────────────┐
//!  manager ◀──┤ Session / Heartbeat / Assignments / UpdateTaskStatus  │
//!             └───────┬──────────────────────────────────▲────────────┘
//!          assign/update                          statuses (batched, retried)
//!                     ▼                                  │
//!               Worker (worker.rs) ──statuses──▶ Reporter (reporter.rs)
//!                 │   persist first                      ▲
//!                 ▼                                      │
//!             TaskDb (taskdb.rs)    TaskManager per task ┘ ── Controller (exec/)
//! ```
//!
//! Embed an agent with [`run`] (a manager's in-process agent, the scale benchmark's simulated
//! agents, tests), or run the `swarm-agent` binary.

pub mod artifacts;
pub mod backoff;
pub mod certs;
pub mod errors;
pub mod exec;
pub mod logs;
pub mod metrics;
pub mod registry;
pub mod reporter;
pub mod session;
pub mod taskdb;
pub mod tasklog;
pub mod worker;

#[cfg(test)]
mod testutil;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use rand::SeedableRng;
use rand::rngs::StdRng;
use swarm_proto::NodeDescription;
use tokio_util::sync::CancellationToken;

use crate::exec::Backend;
use crate::reporter::Reporter;
use crate::session::{SessionConfig, SessionLinks, SessionLoop};
use crate::taskdb::TaskDb;
use crate::worker::Worker;

/// Everything an agent needs to run.
pub struct AgentConfig {
    /// Managers to connect to first, as `host:port`. After the first session the agent uses
    /// the manager list the dispatcher sends.
    pub managers: Vec<String>,
    /// Join token (`SWMTKN-1-…`): needed only while the node has no certificate yet.
    pub join_token: String,
    /// Holds `certificates/` and `worker/tasks.redb`. One agent per state dir.
    /// A manager's in-process agent shares the manager's state dir, hence its certificate.
    pub state_dir: PathBuf,
    /// How the node key is stored: `KeyProtection::default()` (plain) for a worker; a
    /// manager's in-process agent shares the manager's, which seals it while autolocked.
    pub key_protection: certs::KeyProtection,
    /// Hostname reported to the managers; empty means this machine's.
    pub hostname: String,
    /// Engine labels (`--label k=v`), usable in `engine.labels.K == v` constraints.
    pub labels: HashMap<String, String>,
    /// Runs the tasks.
    pub backend: Arc<dyn Backend>,
    /// Where the agent publishes its current dispatcher session. Give the backend a clone
    /// (artifact fetches) before starting the agent; `SessionLinks::new()` when nothing
    /// else needs it.
    pub links: SessionLinks,
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("managers", &self.managers)
            .field("join_token", &"<redacted>")
            .field("state_dir", &self.state_dir)
            .field("hostname", &self.hostname)
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

/// Runs an agent until `shutdown` is cancelled.
///
/// Startup: creates `<state_dir>/worker/`, loads the node certificate (or joins with the
/// join token to get one; a refused token ends `run` with the reason), opens the task DB,
/// re-adopts the tasks still assigned in it (their statuses are re-reported), then runs dispatcher sessions, reconnecting
/// with backoff for as long as it runs, and renews the certificate in the background. Errors
/// are returned only for startup failures (state dir, joining, task DB); session failures are
/// retried forever.
///
/// Shutdown: ends the session, stops every task manager *without* shutting its task down or
/// marking it in the DB, and closes the DB — so an agent restarted on the same state dir
/// re-adopts its tasks (for the null backend there is nothing to keep running meanwhile).
pub async fn run(config: AgentConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::ensure!(
        !config.managers.is_empty(),
        "no manager address given: pass at least one manager as HOST:PORT"
    );
    let worker_dir = config.state_dir.join("worker");
    std::fs::create_dir_all(&worker_dir)
        .with_context(|| format!("create state dir {}", worker_dir.display()))?;
    let cert_files = certs::CertFiles::new(
        certs::certs_dir(&config.state_dir),
        config.key_protection.clone(),
    );
    let Some(node_certs) =
        certs::join::obtain(&cert_files, &config.managers, &config.join_token, &shutdown).await?
    else {
        return Ok(());
    };
    let (certs_tx, certs_rx) = tokio::sync::watch::channel(node_certs);
    let renewer = tokio::spawn(certs::renewer::run(
        cert_files,
        certs_tx,
        config.links.clone(),
        shutdown.child_token(),
    ));
    let db = TaskDb::open(&worker_dir.join("tasks.redb"))?;
    metrics::register();

    let reporter = Reporter::spawn();
    let worker = Worker::start(db.clone(), Arc::clone(&config.backend), reporter.clone())
        .await
        .context("start the worker")?;
    let log_publisher = tokio::spawn(logs::run(
        config.links.clone(),
        db.clone(),
        logs::PublisherConfig::new(tasklog::logs_dir(&config.state_dir)),
        shutdown.child_token(),
    ));
    let session = SessionLoop::new(
        SessionConfig {
            description: describe(&config),
            managers: config.managers,
            certs: certs_rx,
            links: config.links,
        },
        StdRng::from_os_rng(),
    );
    session.run(&worker, &reporter, &shutdown).await;

    let _ = log_publisher.await;
    let _ = renewer.await;
    worker.stop().await;
    drop(reporter);
    db.close().await;
    tracing::info!("agent stopped");
    Ok(())
}

/// The node description sent to the dispatcher: the backend's resources, platform and
/// runtimes, with the configured hostname and labels.
pub fn describe(config: &AgentConfig) -> NodeDescription {
    let mut description = config.backend.describe();
    description.hostname = if config.hostname.is_empty() {
        default_hostname()
    } else {
        config.hostname.clone()
    };
    description.engine_labels.extend(config.labels.clone());
    description
}

/// This machine's hostname (`/proc/sys/kernel/hostname`, `/etc/hostname`, `$HOSTNAME`), or
/// "localhost".
pub fn default_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
