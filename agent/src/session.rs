//! The dispatcher session (SwarmKit `agent/session.go` + the reconnect loop of `agent.go`).
//!
//! ```text
//!          ┌──────────── pick a manager (weighted, not the one that just failed) ◀──────────┐
//!          ▼                                                                                 │
//!  mTLS dial ADDR ─────▶ Session(description; the certificate names the node) ─▶ first msg  │
//!          │                (take manager list, reset backoff)                               │
//!          ▼                                                                                 │
//!  concurrently, until the first of them fails:                                             │
//!    • Heartbeat at once, then every period the dispatcher names                            │
//!    • Session stream: later manager lists / periods                                         │
//!    • Assignments stream: COMPLETE ─▶ worker.assign, INCREMENTAL ─▶ worker.update          │
//!    • reporter sends statuses through UpdateTaskStatus with this session id                 │
//!          │                                                                                 │
//!          └─ error / stream end ─▶ reporter.disconnect ─▶ sleep rand[0, backoff) ───────────┘
//!                                     backoff = min(100 ms + 2·backoff, 8 s)
//! ```
//!
//! A follower's dispatcher answers `Unavailable("not the leader")`; that is just another
//! failure, and the next attempt goes to another manager. Unary calls have a 5 s deadline.
//! Tasks are never touched when a session ends: the worker keeps running them, and the next
//! session's COMPLETE assignment finds them already running. Every connection is mutual TLS
//! with the node's certificate (see `certs`), the latest the renewer published; when the
//! renewer publishes a new one, the session ends and the next one starts at once on a new
//! connection with it (managers refuse calls made with an expired certificate, and TLS
//! checks it only at the handshake), the tasks untouched as on any reconnect.

mod dispatcher_sink;
mod error;
mod link;
mod managers;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use swarm_proto::assignments_message::Type as AssignmentsType;
use swarm_proto::dispatcher_client::DispatcherClient;
use swarm_proto::{
    AssignmentsMessage, AssignmentsRequest, HeartbeatRequest, NodeDescription, SessionMessage,
    SessionRequest, assignment_change::Action,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;
use tonic::transport::Channel;

pub use error::SessionError;
pub use link::{Link, Roles, SessionLinks};

use self::dispatcher_sink::DispatcherSink;
use self::managers::ManagerList;
use crate::backoff::Backoff;
use crate::certs::NodeCerts;
use crate::errors::chain;
use crate::metrics;
use crate::reporter::ReporterHandle;
use crate::worker::WorkerHandle;

/// Deadline of every unary dispatcher call, of connecting, and of opening a stream.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// Heartbeat period when the dispatcher names none (SwarmKit's default).
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

/// Who the agent is, as it tells the dispatcher.
pub struct SessionConfig {
    /// Managers to try first (`host:port`); replaced by each session's manager list.
    pub managers: Vec<String>,
    /// This node's certificates (mutual TLS; they name the node). The renewer publishes new
    /// ones here; each connection uses the latest.
    pub certs: watch::Receiver<NodeCerts>,
    /// The node description sent with every session.
    pub description: NodeDescription,
    /// Published with each session that comes up, cleared when it ends.
    pub links: SessionLinks,
}

/// Runs dispatcher sessions, one at a time, reconnecting until shut down.
pub struct SessionLoop {
    identity: Identity,
    managers: ManagerList,
    backoff: Backoff,
    rng: StdRng,
    links: SessionLinks,
}

struct Identity {
    node_id: String,
    certs: watch::Receiver<NodeCerts>,
    description: NodeDescription,
}

impl Identity {
    /// Checks the node id the dispatcher names: it can only be the certificate's.
    fn adopt(&mut self, node_id: &str) {
        if !node_id.is_empty() && node_id != self.node_id {
            tracing::warn!(certificate = %self.node_id, dispatcher = %node_id, "the dispatcher names a different node id than this node's certificate");
        }
    }
}

impl SessionLoop {
    /// A session loop; `rng` picks managers and jitters backoff (seed it in tests).
    pub fn new(config: SessionConfig, rng: StdRng) -> Self {
        let node_id = config
            .certs
            .borrow()
            .identity()
            .map(|i| i.node_id)
            .unwrap_or_default();
        Self {
            managers: ManagerList::new(&config.managers),
            identity: Identity {
                node_id,
                certs: config.certs,
                description: config.description,
            },
            backoff: Backoff::session(),
            rng,
            links: config.links,
        }
    }

    /// Runs sessions until `shutdown` is cancelled, feeding assignments to `worker` and
    /// connecting `reporter` to each session.
    pub async fn run(
        mut self,
        worker: &WorkerHandle,
        reporter: &ReporterHandle,
        shutdown: &CancellationToken,
    ) {
        loop {
            let Some(addr) = self.managers.pick(&mut self.rng) else {
                tracing::error!("no manager address to connect to; pass --manager HOST:PORT");
                shutdown.cancelled().await;
                return;
            };
            let ended = tokio::select! {
                biased;
                _ = shutdown.cancelled() => None,
                e = self.attempt(&addr, worker, reporter) => Some(e),
            };
            reporter.disconnect();
            self.links.clear();
            let Some(err) = ended else {
                break;
            };
            if matches!(err, SessionError::Renewed) {
                tracing::info!(manager = %addr, "node certificate renewed: reconnecting with it");
                continue;
            }
            metrics::SESSION_FAILURES.inc();
            self.managers.observe_failure(&addr);
            let delay = self.backoff.next_delay(&mut self.rng);
            if err.is_not_leader() {
                tracing::info!(manager = %addr, retry_in = ?delay, "manager is not the leader; trying another");
            } else if err.is_auth() {
                tracing::error!(manager = %addr, error = %chain(&err), retry_in = ?delay, "the manager refused this node; check --join-token");
            } else {
                tracing::warn!(manager = %addr, error = %chain(&err), retry_in = ?delay, "dispatcher session ended; reconnecting");
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(delay) => {}
            }
        }
        tracing::info!("dispatcher sessions stopped");
    }

    /// One session with `addr`; returns why it ended.
    async fn attempt(
        &mut self,
        addr: &str,
        worker: &WorkerHandle,
        reporter: &ReporterHandle,
    ) -> SessionError {
        match self.session(addr, worker, reporter).await {
            Ok(never) => match never {},
            Err(e) => e,
        }
    }

    async fn session(
        &mut self,
        addr: &str,
        worker: &WorkerHandle,
        reporter: &ReporterHandle,
    ) -> Result<Infallible, SessionError> {
        let mut renewals = self.identity.certs.clone();
        let certs = renewals.borrow_and_update().clone();
        let channel = connect(addr, &certs).await?;
        let mut client = DispatcherClient::new(channel.clone());
        let request = SessionRequest {
            description: Some(self.identity.description.clone()),
            node_id: self.identity.node_id.clone(),
            join_token: String::new(),
        };
        let mut session = call("Session", client.session(request)).await?.into_inner();
        let first = match tokio::time::timeout(RPC_TIMEOUT, session.message()).await {
            Ok(Ok(Some(m))) => m,
            Ok(Ok(None)) => return Err(SessionError::StreamEnded("Session")),
            Ok(Err(status)) => {
                return Err(SessionError::Rpc {
                    call: "Session",
                    status,
                });
            }
            Err(_) => return Err(timeout("Session")),
        };
        self.identity.adopt(&first.node_id);
        self.links.set_assigned(first.role());
        self.managers.replace(&first.managers);
        self.managers.observe_success(addr);
        self.backoff.reset();
        metrics::SESSIONS.inc();
        tracing::info!(manager = %addr, session = %first.session_id, node_id = %self.identity.node_id, "dispatcher session established");

        let session_id = first.session_id;
        let assignments = call(
            "Assignments",
            client.assignments(AssignmentsRequest {
                session_id: session_id.clone(),
            }),
        )
        .await?
        .into_inner();
        self.links.publish(Link {
            channel,
            addr: addr.to_string(),
            session_id: session_id.clone(),
            node_id: self.identity.node_id.clone(),
        });
        reporter.connect(Arc::new(DispatcherSink::new(
            client.clone(),
            session_id.clone(),
        )));
        let (period_tx, period_rx) = watch::channel(heartbeat_period(first.heartbeat_period_ms));
        let err = tokio::select! {
            e = heartbeat(client, session_id, period_rx) => e,
            e = follow_session(session, period_tx, &mut self.identity, &mut self.managers, &self.links) => e,
            e = follow_assignments(assignments, worker) => e,
            e = renewed(&mut renewals) => e,
        };
        Err(err)
    }
}

/// Resolves once the renewer publishes a new certificate (never if it has stopped).
async fn renewed(certs: &mut watch::Receiver<NodeCerts>) -> SessionError {
    match certs.changed().await {
        Ok(()) => SessionError::Renewed,
        Err(_) => std::future::pending().await,
    }
}

/// Dials `addr` with this node's certificates (mutual TLS).
async fn connect(addr: &str, certs: &NodeCerts) -> Result<Channel, SessionError> {
    let tls = certs
        .client_config()
        .map_err(|e| SessionError::Credentials(e.to_string()))?;
    match tokio::time::timeout(RPC_TIMEOUT, crate::certs::connect(addr, tls, RPC_TIMEOUT)).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(source)) => Err(SessionError::Connect {
            addr: addr.to_string(),
            source,
        }),
        Err(_) => Err(timeout("connect")),
    }
}

/// Awaits a call's response (for streams: its headers) within [`RPC_TIMEOUT`].
async fn call<T>(
    name: &'static str,
    response: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<tonic::Response<T>, SessionError> {
    match tokio::time::timeout(RPC_TIMEOUT, response).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(status)) => Err(SessionError::Rpc { call: name, status }),
        Err(_) => Err(timeout(name)),
    }
}

fn timeout(call: &'static str) -> SessionError {
    SessionError::Timeout {
        call,
        secs: RPC_TIMEOUT.as_secs(),
    }
}

fn heartbeat_period(ms: u64) -> Duration {
    if ms == 0 {
        DEFAULT_HEARTBEAT
    } else {
        Duration::from_millis(ms)
    }
}

/// Heartbeats at once, then at the period the dispatcher names; ends at the first failure.
async fn heartbeat(
    mut client: DispatcherClient<Channel>,
    session_id: String,
    period: watch::Receiver<Duration>,
) -> SessionError {
    loop {
        let mut request = tonic::Request::new(HeartbeatRequest {
            session_id: session_id.clone(),
        });
        request.set_timeout(RPC_TIMEOUT);
        let next = match call("Heartbeat", client.heartbeat(request)).await {
            Ok(r) => r.into_inner().period_ms,
            Err(e) => return e,
        };
        let wait = if next > 0 {
            Duration::from_millis(next)
        } else {
            *period.borrow()
        };
        tracing::trace!(next_in = ?wait, "heartbeat acknowledged");
        tokio::time::sleep(wait).await;
    }
}

/// Follows the session stream: later messages update the node id, managers, period and the
/// node's assigned role.
async fn follow_session(
    mut stream: Streaming<SessionMessage>,
    period: watch::Sender<Duration>,
    identity: &mut Identity,
    managers: &mut ManagerList,
    links: &SessionLinks,
) -> SessionError {
    loop {
        match stream.message().await {
            Ok(Some(msg)) => {
                identity.adopt(&msg.node_id);
                links.set_assigned(msg.role());
                managers.replace(&msg.managers);
                if msg.heartbeat_period_ms > 0 {
                    period.send_replace(heartbeat_period(msg.heartbeat_period_ms));
                }
                tracing::debug!(managers = ?managers.addrs(), "session message");
            }
            Ok(None) => return SessionError::StreamEnded("Session"),
            Err(status) => {
                return SessionError::Rpc {
                    call: "Session",
                    status,
                };
            }
        }
    }
}

/// Follows the assignments stream into the worker; ends when the stream does or the worker
/// cannot persist an assignment.
async fn follow_assignments(
    mut stream: Streaming<AssignmentsMessage>,
    worker: &WorkerHandle,
) -> SessionError {
    loop {
        let msg = match stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return SessionError::StreamEnded("Assignments"),
            Err(status) => {
                return SessionError::Rpc {
                    call: "Assignments",
                    status,
                };
            }
        };
        let changes = msg.changes.len();
        let applied = match AssignmentsType::try_from(msg.r#type) {
            Ok(AssignmentsType::Complete) => {
                tracing::debug!(tasks = changes, "complete assignment set");
                let tasks = msg
                    .changes
                    .into_iter()
                    .filter(|c| c.action == Action::Update as i32)
                    .filter_map(|c| c.task)
                    .collect();
                worker.assign(tasks).await
            }
            Ok(AssignmentsType::Incremental) => {
                tracing::debug!(changes, "incremental assignment changes");
                worker.update(msg.changes).await
            }
            Err(_) => {
                tracing::warn!(
                    r#type = msg.r#type,
                    "unknown assignments message type ignored"
                );
                Ok(())
            }
        };
        if let Err(e) = applied {
            return e.into();
        }
    }
}
