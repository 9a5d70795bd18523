//! The Dispatcher gRPC service.

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::Stream;
use rand::Rng;
use swarm_proto::dispatcher_server::{self, DispatcherServer};
use swarm_proto::{
    AssignmentsMessage, AssignmentsRequest, HeartbeatRequest, HeartbeatResponse, NodeState,
    NodeStatus, SessionMessage, SessionRequest, TaskPatch, TaskState, UpdateTaskStatusRequest,
    UpdateTaskStatusResponse, WeightedPeer, assignments_message::Type, ext,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::assignments;
use super::heartbeat;
use super::session_info::{follow_managers, manager_list, role_of};
use super::sessions::{DispatcherConfig, Sessions};
use super::status_batcher::StatusBatcher;
use crate::metrics;
use crate::store::{self, Store, StoreError, WatchFilter};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The dispatcher. Clone it into the gRPC server; [`Dispatcher::activate`] it on leadership.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// This manager's address, handed to agents as the manager list.
    addr: String,
    node_id: String,
    active: Mutex<Option<Active>>,
}

/// State that exists only while this manager leads.
#[derive(Clone)]
struct Active {
    config: DispatcherConfig,
    sessions: Arc<Mutex<Sessions>>,
    batcher: StatusBatcher,
    /// The manager list sessions hand out, kept current by [`follow_managers`].
    managers: watch::Receiver<Vec<WeightedPeer>>,
    token: CancellationToken,
}

impl Dispatcher {
    /// A dispatcher for the manager `node_id` reachable at `addr`, inactive until activated.
    pub fn new(store: Store, node_id: String, addr: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                addr,
                node_id,
                active: Mutex::new(None),
            }),
        }
    }

    /// The tonic service.
    pub fn into_service(self) -> DispatcherServer<Self> {
        DispatcherServer::new(self)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024)
    }

    /// Starts serving (this manager just became leader) until `token` is cancelled. Nodes the
    /// store knows as READY get `leader_grace` heartbeat periods to open a session.
    pub fn activate(&self, config: DispatcherConfig, token: CancellationToken) {
        let store = self.inner.store.clone();
        let sessions = Arc::new(Mutex::new(Sessions::default()));
        let grace = Instant::now() + config.heartbeat_period * config.leader_grace;
        {
            let mut s = sessions.lock().expect("sessions lock");
            for n in store.view().nodes() {
                if n.status.as_ref().map(|s| s.state) == Some(NodeState::NodeReady as i32) {
                    s.expect(&n.id, grace);
                }
            }
        }
        let (managers_tx, managers) = watch::channel(manager_list(
            &store.view(),
            &self.inner.node_id,
            &self.inner.addr,
        ));
        tokio::spawn(follow_managers(
            store.clone(),
            managers_tx,
            self.inner.node_id.clone(),
            self.inner.addr.clone(),
            token.clone(),
        ));
        let active = Active {
            managers,
            batcher: StatusBatcher::spawn(store.clone(), token.clone()),
            config: config.clone(),
            sessions: sessions.clone(),
            token: token.clone(),
        };
        *self.inner.active.lock().expect("dispatcher lock") = Some(active);
        tokio::spawn(heartbeat::monitor(store, sessions, config, token.clone()));
        let inner = self.inner.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            inner.active.lock().expect("dispatcher lock").take();
            metrics::DISPATCHER_SESSIONS.set(0);
        });
    }

    fn active(&self) -> Result<Active, Status> {
        let a = self.inner.active.lock().expect("dispatcher lock").clone();
        a.filter(|a| !a.token.is_cancelled()).ok_or_else(|| {
            Status::unavailable("this manager's dispatcher is not running (it is not the leader)")
        })
    }

    /// The node holding the live session `session_id`, and a token cancelled when that
    /// session ends: how other services agents call (the log broker) authenticate them.
    ///
    /// # Errors
    /// `UNAVAILABLE` when this manager is not leading, `NOT_FOUND` for an unknown session.
    pub fn session(&self, session_id: &str) -> Result<(String, CancellationToken), Status> {
        let active = self.active()?;
        self.session_node(&active, session_id)
    }

    fn session_node(
        &self,
        active: &Active,
        session_id: &str,
    ) -> Result<(String, CancellationToken), Status> {
        let sessions = active.sessions.lock().expect("sessions lock");
        let s = sessions
            .get(session_id)
            .ok_or_else(|| Status::not_found("session invalid or expired; open a new session"))?;
        Ok((s.node_id.clone(), s.ended.clone()))
    }

    /// Refreshes the node object of `node_id` (created by the CA when it joined) for a new
    /// session: description, READY, address.
    async fn register(
        &self,
        req: &SessionRequest,
        node_id: &str,
        addr: String,
    ) -> Result<(), Status> {
        let store = &self.inner.store;
        for _ in 0..5 {
            let view = store.view();
            let now = ext::now_ns();
            let status = NodeStatus {
                state: NodeState::NodeReady as i32,
                message: String::new(),
                addr: addr.clone(),
            };
            let existing = view.node(node_id).ok_or_else(|| {
                Status::permission_denied(format!(
                    "node {node_id} is not a member of this swarm (was it removed?)"
                ))
            })?;
            let mut n = (**existing).clone();
            n.description = req.description.clone();
            n.status = Some(status);
            if let Some(m) = n.meta.as_mut() {
                m.updated_at_ns = now;
            }
            let action = store::update(n);
            match store.write_atomic(vec![action]).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(Status::aborted("node registration kept conflicting; retry"))
    }
}

fn unavailable(e: StoreError) -> Status {
    Status::unavailable(e.to_string())
}

#[tonic::async_trait]
impl dispatcher_server::Dispatcher for Dispatcher {
    type SessionStream = BoxStream<SessionMessage>;
    type AssignmentsStream = BoxStream<AssignmentsMessage>;

    async fn session(
        &self,
        request: Request<SessionRequest>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let active = self.active()?;
        let addr = request
            .remote_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let node_id = crate::ca::authenticated(&request)?.node_id;
        let req = request.into_inner();
        if !req.node_id.is_empty() && req.node_id != node_id {
            return Err(Status::permission_denied(format!(
                "the session asks for node {} but the certificate names node {node_id}",
                req.node_id
            )));
        }
        self.register(&req, &node_id, addr).await?;
        let session_id = ext::new_id();
        let session = {
            let mut s = active.sessions.lock().expect("sessions lock");
            let session = s.open(
                &node_id,
                session_id.clone(),
                Instant::now() + active.config.ttl(),
                &active.token,
            );
            metrics::DISPATCHER_SESSIONS.set(s.len() as i64);
            session
        };
        tracing::info!(node = %node_id, session = %session_id, "agent session opened");
        let updates = SessionUpdates {
            store: self.inner.store.clone(),
            managers: active.managers.clone(),
            first: SessionMessage {
                session_id,
                node_id,
                managers: Vec::new(),
                heartbeat_period_ms: active.config.heartbeat_period.as_millis() as u64,
                role: 0,
            },
        };
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(updates.run(tx, session.ended));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let active = self.active()?;
        let req = request.into_inner();
        let deadline = Instant::now() + active.config.ttl();
        if !active
            .sessions
            .lock()
            .expect("sessions lock")
            .heartbeat(&req.session_id, deadline)
        {
            return Err(Status::not_found(
                "session invalid or expired; open a new session",
            ));
        }
        // ±10 % jitter spreads thousands of agents' heartbeats over time.
        let period = active.config.heartbeat_period.as_millis() as f64;
        let jitter = rand::rng().random_range(-0.1..=0.1);
        Ok(Response::new(HeartbeatResponse {
            period_ms: (period * (1.0 + jitter)) as u64,
        }))
    }

    async fn assignments(
        &self,
        request: Request<AssignmentsRequest>,
    ) -> Result<Response<Self::AssignmentsStream>, Status> {
        let active = self.active()?;
        let (node_id, ended) = self.session_node(&active, &request.get_ref().session_id)?;
        let (view, mut watcher) = self.inner.store.watch(WatchFilter::Node(node_id.clone()));
        let complete = assignments::complete(&view, &node_id);
        drop(view);
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            if tx.send(Ok(complete)).await.is_err() {
                return;
            }
            loop {
                let batch = tokio::select! {
                    _ = ended.cancelled() => {
                        let _ = tx.send(Err(Status::unavailable("session ended; open a new one"))).await;
                        return;
                    }
                    _ = tx.closed() => return,
                    b = watcher.recv() => b,
                };
                let Some(first) = batch else {
                    let _ = tx
                        .send(Err(Status::unavailable("store was restored; reconnect")))
                        .await;
                    return;
                };
                let mut batches = vec![first];
                while let Ok(b) = watcher.try_recv() {
                    batches.push(b);
                }
                let changes = assignments::incremental(
                    &node_id,
                    batches.iter().flat_map(|b| b.events.iter()),
                );
                if changes.is_empty() {
                    continue;
                }
                let msg = AssignmentsMessage {
                    r#type: Type::Incremental as i32,
                    changes,
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn update_task_status(
        &self,
        request: Request<UpdateTaskStatusRequest>,
    ) -> Result<Response<UpdateTaskStatusResponse>, Status> {
        let active = self.active()?;
        let req = request.into_inner();
        let (node_id, _) = self.session_node(&active, &req.session_id)?;
        let view = self.inner.store.view();
        let mut actions = Vec::with_capacity(req.updates.len());
        for u in req.updates {
            let Some(status) = u.status else {
                return Err(Status::invalid_argument(format!(
                    "task {}: status missing",
                    u.task_id
                )));
            };
            if TaskState::try_from(status.state).is_err() {
                return Err(Status::invalid_argument(format!(
                    "task {}: unknown task state {}",
                    u.task_id, status.state
                )));
            }
            if status.state <= TaskState::Assigned as i32 {
                // The manager's own states echoed back: nothing the agent may change.
                metrics::TASK_STATUS_UPDATES
                    .with_label_values(&["ignored"])
                    .inc();
                continue;
            }
            match view.task(&u.task_id) {
                Some(t) if t.node_id == node_id => {}
                _ => {
                    // Removed meanwhile, or not this node's: nothing to record.
                    metrics::TASK_STATUS_UPDATES
                        .with_label_values(&["ignored"])
                        .inc();
                    continue;
                }
            }
            actions.push(store::patch_task(TaskPatch {
                task_id: u.task_id,
                status: Some(status),
                node_id: String::new(),
                desired_state: None,
            }));
        }
        drop(view);
        let n = actions.len() as u64;
        if n > 0 {
            active.batcher.commit(actions).await.map_err(unavailable)?;
            metrics::TASK_STATUS_UPDATES
                .with_label_values(&["committed"])
                .inc_by(n);
        }
        Ok(Response::new(UpdateTaskStatusResponse {}))
    }
}

/// One session's stream: the first message, then a new one each time the manager list or
/// the node's role changes, until the session ends.
struct SessionUpdates {
    store: Store,
    managers: watch::Receiver<Vec<WeightedPeer>>,
    /// The first message without its managers and role (filled in by [`Self::current`]).
    first: SessionMessage,
}

impl SessionUpdates {
    fn current(&mut self) -> SessionMessage {
        let mut msg = self.first.clone();
        msg.managers = self.managers.borrow_and_update().clone();
        msg.role = role_of(&self.store.view(), &msg.node_id) as i32;
        msg
    }

    async fn run(
        mut self,
        tx: mpsc::Sender<Result<SessionMessage, Status>>,
        ended: CancellationToken,
    ) {
        let (_, mut node_events) = self
            .store
            .watch(WatchFilter::Node(self.first.node_id.clone()));
        let mut sent = self.current();
        if tx.send(Ok(sent.clone())).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                _ = ended.cancelled() => {
                    let _ = tx.send(Err(Status::unavailable("session ended; open a new one"))).await;
                    return;
                }
                _ = tx.closed() => return,
                changed = self.managers.changed() => if changed.is_err() { return },
                batch = node_events.recv() => if batch.is_none() {
                    // The store was restored: watch again from a fresh view.
                    (_, node_events) = self.store.watch(WatchFilter::Node(self.first.node_id.clone()));
                },
            }
            let now = self.current();
            if now.role != sent.role || now.managers != sent.managers {
                if tx.send(Ok(now.clone())).await.is_err() {
                    return;
                }
                sent = now;
            }
        }
    }
}
