//! The node supervisor, one per process of either binary: it runs the node's agent (unless
//! `--no-agent`) and, while the node is a manager, its manager beside it. When the swarm
//! promotes or demotes the node it starts or stops the manager; the agent and its tasks
//! carry on untouched (SwarmKit's `node.Node` and its `superviseManager`).
//!
//! ```text
//!  session message: role ─▶ renewer: certificate renewed into it ─▶ Roles.certified
//!                                                                        │
//!  supervisor ◀──────────────────────────────────────────────────────────┘
//!    certified manager, none runs ─▶ resume (state.json says manager) or join raft through
//!                                    the session's manager with the new certificate
//!    certified worker, one runs   ─▶ stop it and retire: raft data removed, state.json worker
//!    its raft member was removed  ─▶ the same (the manager learnt it first)
//! ```
//! Which move is next is decided in [`decide`].

pub mod decide;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use swarm_agent::exec::Backend;
use swarm_agent::exec::select::{self, Backends, OciOptions};
use swarm_agent::session::SessionLinks;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::decide::{ManagerStart, Move};
use crate::node::{Manager, ManagerConfig, ManagerError, NodeState, StateError, retire};
use crate::raft::DriverError;

/// Wait before trying again to start a manager that failed to start.
const RETRY: Duration = Duration::from_secs(2);

/// What runs on this node.
pub struct NodeConfig {
    /// How a manager runs here (state dir, addresses, unlock key, …).
    pub manager: ManagerConfig,
    /// The agent; `None` for `--no-agent`.
    pub agent: Option<AgentSpec>,
    /// Managers the agent reaches first when this node runs no manager (`swarm-agent
    /// --manager`, or a demoted manager's state.json). A running manager is tried first.
    pub remotes: Vec<String>,
    /// The agent's session and roles, shared with its backend (artifact fetches).
    pub links: SessionLinks,
}

/// The agent of a node.
pub struct AgentSpec {
    pub backend: Arc<dyn Backend>,
    pub labels: HashMap<String, String>,
    /// Needed only while the node has no certificate.
    pub join_token: String,
}

/// Runs the node until `shutdown`, starting with `manager` when the process started one
/// (`swarm-manager init|join|run`, or a promoted agent resuming).
///
/// # Errors
/// When the agent cannot start (e.g. its join token is refused), the manager stops on an
/// error other than its removal, or a demoted manager's state cannot be retired.
pub async fn run(
    config: NodeConfig,
    manager: Option<Manager>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut agent = config
        .agent
        .as_ref()
        .map(|spec| spawn_agent(&config, spec, manager.as_ref(), shutdown.child_token()));
    let mut node = Supervisor {
        config,
        manager,
        retry_at: None,
    };
    let mut roles = node.config.links.roles();
    let result = loop {
        let certified = roles.borrow_and_update().certified;
        match decide::next(certified, node.manager.is_some()) {
            Move::StartManager if node.retry_at.is_none_or(|at| at <= Instant::now()) => {
                node.start_manager().await;
            }
            Move::StopManager => {
                tracing::info!("this node was demoted: stopping its manager");
                if let Err(e) = node.retire().await {
                    break Err(e);
                }
            }
            _ => {}
        }
        let event = tokio::select! {
            _ = shutdown.cancelled() => Event::Shutdown,
            changed = roles.changed() => if changed.is_err() { Event::Shutdown } else { Event::Roles },
            r = wait_manager(&mut node.manager) => Event::ManagerEnded(r),
            r = wait_agent(&mut agent) => Event::AgentEnded(r),
            _ = sleep_until(node.retry_at) => Event::Retry,
        };
        match event {
            Event::Shutdown => break Ok(()),
            Event::Roles => {}
            Event::Retry => node.retry_at = None,
            Event::ManagerEnded(Err(ManagerError::Raft(DriverError::Removed(id)))) => {
                tracing::info!(
                    raft_id = format_args!("{id:x}"),
                    "this manager was removed from raft (demoted)"
                );
                if let Err(e) = node.retire().await {
                    break Err(e);
                }
                if agent.is_none() {
                    tracing::warn!("demoted, and this node runs no agent (--no-agent): stopping");
                    break Ok(());
                }
            }
            Event::ManagerEnded(r) => break r.context("manager stopped"),
            Event::AgentEnded(r) => break r,
        }
    };
    shutdown.cancel();
    if let Some(m) = node.manager.take() {
        m.shutdown().await;
    }
    if let Some(a) = agent {
        let _ = a.await;
    }
    result
}

enum Event {
    Shutdown,
    Roles,
    Retry,
    ManagerEnded(Result<(), ManagerError>),
    AgentEnded(anyhow::Result<()>),
}

struct Supervisor {
    config: NodeConfig,
    manager: Option<Manager>,
    /// A manager start failed: not before this.
    retry_at: Option<Instant>,
}

impl Supervisor {
    /// Starts the manager of a node whose certificate says manager: resumes it, or joins
    /// raft when the node was just promoted. A failure is logged and retried after [`RETRY`].
    async fn start_manager(&mut self) {
        match self.try_start_manager().await {
            Ok(m) => {
                tracing::info!(addr = %m.addr, "manager started on this node");
                self.manager = Some(m);
                self.retry_at = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?RETRY, "this node is a manager now, but its manager did not start");
                self.retry_at = Some(Instant::now() + RETRY);
            }
        }
    }

    async fn try_start_manager(&self) -> Result<Manager, ManagerError> {
        let config = self.config.manager.clone();
        let state = match NodeState::load(&config.state_dir) {
            Ok(s) => Some(s.is_manager()),
            Err(StateError::Missing { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let session = self.config.links.now().map(|l| l.addr);
        match decide::manager_start(state, session.as_deref()) {
            ManagerStart::Resume => Manager::run(config).await,
            ManagerStart::Join(remote) => {
                tracing::info!(%remote, "promoted: joining raft");
                Manager::join(config, &remote, "").await
            }
            ManagerStart::NoRemote => Err(ManagerError::Other(
                "promoted, but no dispatcher session is up to join raft through".into(),
            )),
        }
    }

    /// Stops the demoted manager and retires its state: raft data removed, state.json says
    /// worker and names the other managers.
    async fn retire(&mut self) -> anyhow::Result<()> {
        let Some(m) = self.manager.take() else {
            return Ok(());
        };
        let own = m.addr.to_string();
        let remotes: Vec<String> = m
            .store
            .view()
            .nodes()
            .filter_map(|n| n.manager_status.as_ref().map(|s| s.addr.clone()))
            .filter(|a| !a.is_empty() && *a != own)
            .collect();
        m.shutdown().await;
        retire(
            &self.config.manager.state_dir,
            &self.config.manager.cert_files(),
            remotes,
        )
        .context("retiring the demoted manager")?;
        tracing::info!("manager stopped and its raft data removed; this node is a worker");
        Ok(())
    }
}

/// The agent's backends (`--backend`, `--oci-runtime`), sharing `links` for artifact fetches.
///
/// # Errors
/// When a backend cannot start (e.g. the OCI runtime is missing).
pub fn build_backend(
    backends: &Backends,
    oci_runtime: &str,
    state_dir: &Path,
    links: &SessionLinks,
) -> anyhow::Result<Arc<dyn Backend>> {
    let oci = OciOptions {
        runtime: oci_runtime.to_string(),
    };
    select::build(backends, &oci, state_dir, links.clone())
        .with_context(|| format!("start the {backends:?} backend"))
}

/// Cancels `shutdown` on SIGINT or SIGTERM (a node's processes stop on either).
pub async fn stop_on_signal(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("signal received; stopping");
    shutdown.cancel();
}

/// Starts the agent: it reaches this node's manager first when one runs.
fn spawn_agent(
    config: &NodeConfig,
    spec: &AgentSpec,
    manager: Option<&Manager>,
    token: CancellationToken,
) -> JoinHandle<anyhow::Result<()>> {
    let mut managers: Vec<String> = manager.map(|m| m.addr.to_string()).into_iter().collect();
    managers.extend(config.remotes.iter().cloned());
    let agent = swarm_agent::AgentConfig {
        managers,
        join_token: spec.join_token.clone(),
        state_dir: config.manager.state_dir.clone(),
        key_protection: config.manager.key_protection.clone(),
        hostname: config.manager.hostname.clone(),
        labels: spec.labels.clone(),
        backend: spec.backend.clone(),
        links: config.links.clone(),
    };
    tracing::info!(?agent, "starting agent");
    tokio::spawn(swarm_agent::run(agent, token))
}

async fn wait_manager(manager: &mut Option<Manager>) -> Result<(), ManagerError> {
    match manager {
        Some(m) => m.wait().await,
        None => std::future::pending().await,
    }
}

async fn wait_agent(agent: &mut Option<JoinHandle<anyhow::Result<()>>>) -> anyhow::Result<()> {
    let Some(handle) = agent else {
        return std::future::pending().await;
    };
    let r = handle.await;
    *agent = None;
    match r {
        Ok(r) => r.context("agent stopped"),
        Err(e) => Err(anyhow::anyhow!("agent panicked: {e}")),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
