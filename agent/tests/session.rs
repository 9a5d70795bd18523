//! The agent against a small in-test Dispatcher on 127.0.0.1: session, heartbeats, a COMPLETE
//! assignment, status reports; a dropped stream and a reconnect that re-reports without
//! restarting tasks; a follower answering "not the leader"; an agent restart that rejoins as
//! the same node. Every wait has a deadline. The fake dispatchers serve mutual TLS with a
//! test CA, and the agent starts with a node certificate from it already in its state dir.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use swarm_agent::AgentConfig;
use swarm_agent::certs::NodeCerts;
use swarm_agent::exec::NullBackend;
use swarm_proto::dispatcher_server::{Dispatcher, DispatcherServer};
use swarm_proto::{
    AssignmentChange, AssignmentsMessage, AssignmentsRequest, HeartbeatRequest, HeartbeatResponse,
    SessionMessage, SessionRequest, Task, TaskState, TaskStatus, TaskStatusUpdate,
    UpdateTaskStatusRequest, UpdateTaskStatusResponse, WeightedPeer, assignment_change::Action,
    assignments_message::Type,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Response, Status};

const DEADLINE: Duration = Duration::from_secs(20);
const NODE_ID: &str = "node-1";

/// A root CA, one manager certificate for every fake dispatcher, and the agent's certificate.
struct TestPki {
    server_cert: String,
    server_key: String,
    node: NodeCerts,
}

fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| {
        let new_key = || KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let ca_key = new_key();
        let mut ca = CertificateParams::default();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "test-ca");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let root_pem = ca.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca, ca_key);
        let leaf = |cn: &str, ou: &str, san: Vec<String>, eku: Vec<ExtendedKeyUsagePurpose>| {
            let key = new_key();
            let mut p = CertificateParams::new(san).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.distinguished_name
                .push(DnType::OrganizationalUnitName, ou);
            p.distinguished_name
                .push(DnType::OrganizationName, "test-cluster");
            p.extended_key_usages = eku;
            (
                p.signed_by(&key, &issuer).unwrap().pem(),
                key.serialize_pem(),
            )
        };
        let (server_cert, server_key) = leaf(
            "manager-1",
            "swarm-manager",
            vec![swarm_agent::certs::SERVER_NAME.to_string()],
            vec![ExtendedKeyUsagePurpose::ServerAuth],
        );
        let (cert, key) = leaf(
            NODE_ID,
            "swarm-worker",
            vec![],
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        );
        TestPki {
            server_cert,
            server_key,
            node: NodeCerts {
                root_pem: root_pem.into_bytes(),
                cert_pem: cert.into_bytes(),
                key_pem: key.into_bytes(),
            },
        }
    })
}

/// What the fake dispatcher saw.
#[derive(Debug, Clone)]
enum Event {
    Session(SessionRequest, String),
    Heartbeat(String),
    Statuses(String, Vec<TaskStatusUpdate>),
}

type Sender<T> = mpsc::Sender<Result<T, Status>>;

/// The senders behind one session's Session and Assignments streams.
type SessionStreams = (Sender<SessionMessage>, Option<Sender<AssignmentsMessage>>);

/// A dispatcher that assigns a fixed set of tasks to whoever opens a session.
#[derive(Clone)]
struct FakeDispatcher {
    addr: String,
    tasks: Vec<Task>,
    not_leader: bool,
    events: Arc<watch::Sender<Vec<Event>>>,
    /// Open streams by session id; dropping the senders ends the streams.
    streams: Arc<Mutex<HashMap<String, SessionStreams>>>,
}

impl FakeDispatcher {
    fn record(&self, e: Event) {
        self.events.send_modify(|v| v.push(e));
    }

    fn live(&self, session_id: &str) -> bool {
        self.streams.lock().unwrap().contains_key(session_id)
    }

    /// Ends a session's streams, as a dying dispatcher would.
    fn drop_session(&self, session_id: &str) {
        self.streams.lock().unwrap().remove(session_id);
    }
}

#[tonic::async_trait]
impl Dispatcher for FakeDispatcher {
    type SessionStream = ReceiverStream<Result<SessionMessage, Status>>;
    type AssignmentsStream = ReceiverStream<Result<AssignmentsMessage, Status>>;

    async fn session(
        &self,
        request: Request<SessionRequest>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        if self.not_leader {
            return Err(Status::unavailable("not the leader"));
        }
        if request.peer_certs().is_none_or(|c| c.is_empty()) {
            return Err(Status::unauthenticated("no client certificate"));
        }
        let req = request.into_inner();
        let session_id = format!("s{}", self.events.borrow().len());
        self.record(Event::Session(req, session_id.clone()));
        let (tx, rx) = mpsc::channel(4);
        tx.send(Ok(SessionMessage {
            session_id: session_id.clone(),
            node_id: NODE_ID.into(),
            managers: vec![WeightedPeer {
                node_id: "m1".into(),
                addr: self.addr.clone(),
                weight: 10,
            }],
            heartbeat_period_ms: 200,
            role: swarm_proto::NodeRole::Worker as i32,
        }))
        .await
        .unwrap();
        self.streams.lock().unwrap().insert(session_id, (tx, None));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let id = request.into_inner().session_id;
        if !self.live(&id) {
            return Err(Status::not_found("session invalid"));
        }
        self.record(Event::Heartbeat(id));
        Ok(Response::new(HeartbeatResponse { period_ms: 200 }))
    }

    async fn assignments(
        &self,
        request: Request<AssignmentsRequest>,
    ) -> Result<Response<Self::AssignmentsStream>, Status> {
        let id = request.into_inner().session_id;
        let (tx, rx) = mpsc::channel(4);
        let changes = self
            .tasks
            .iter()
            .map(|t| AssignmentChange {
                action: Action::Update as i32,
                task: Some(t.clone()),
            })
            .collect();
        tx.send(Ok(AssignmentsMessage {
            r#type: Type::Complete as i32,
            changes,
        }))
        .await
        .unwrap();
        match self.streams.lock().unwrap().get_mut(&id) {
            Some(streams) => streams.1 = Some(tx),
            None => return Err(Status::not_found("session invalid")),
        }
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn update_task_status(
        &self,
        request: Request<UpdateTaskStatusRequest>,
    ) -> Result<Response<UpdateTaskStatusResponse>, Status> {
        let req = request.into_inner();
        if !self.live(&req.session_id) {
            return Err(Status::not_found("session invalid"));
        }
        self.record(Event::Statuses(req.session_id, req.updates));
        Ok(Response::new(UpdateTaskStatusResponse {}))
    }
}

fn task(id: &str) -> Task {
    Task {
        id: id.into(),
        service_id: "svc".into(),
        node_id: NODE_ID.into(),
        desired_state: TaskState::Running as i32,
        status: Some(TaskStatus {
            state: TaskState::Assigned as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

struct Fake {
    dispatcher: FakeDispatcher,
    addr: String,
    events: watch::Receiver<Vec<Event>>,
    stop: CancellationToken,
}

async fn start_fake(tasks: &[&str], not_leader: bool) -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (events_tx, events) = watch::channel(Vec::new());
    let dispatcher = FakeDispatcher {
        addr: addr.clone(),
        tasks: tasks.iter().map(|id| task(id)).collect(),
        not_leader,
        events: Arc::new(events_tx),
        streams: Arc::default(),
    };
    let stop = CancellationToken::new();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(&pki().server_cert, &pki().server_key))
        .client_ca_root(Certificate::from_pem(&pki().node.root_pem));
    let server = tonic::transport::Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(DispatcherServer::new(dispatcher.clone()))
        .serve_with_incoming_shutdown(
            TcpListenerStream::new(listener),
            stop.clone().cancelled_owned(),
        );
    tokio::spawn(server);
    Fake {
        dispatcher,
        addr,
        events,
        stop,
    }
}

impl Fake {
    async fn wait(&mut self, what: &str, cond: impl FnMut(&Vec<Event>) -> bool) {
        let seen = matches!(
            tokio::time::timeout(DEADLINE, self.events.wait_for(cond)).await,
            Ok(Ok(_))
        );
        assert!(
            seen,
            "{what}: not seen within {DEADLINE:?}; events: {:#?}",
            *self.events.borrow()
        );
    }

    /// The `n`-th session (0-based) once it has been opened.
    async fn session(&mut self, n: usize) -> (SessionRequest, String) {
        self.wait(&format!("session #{n}"), |e| sessions(e).len() > n)
            .await;
        sessions(&self.events.borrow())[n].clone()
    }

    /// Waits until every id was reported RUNNING within session `sid`.
    async fn running_in(&mut self, sid: &str, ids: &[&str]) {
        let what = format!("{ids:?} RUNNING in session {sid}");
        self.wait(&what, |events| {
            let mut latest = HashMap::new();
            for e in events {
                if let Event::Statuses(s, updates) = e
                    && s == sid
                {
                    for u in updates {
                        latest.insert(u.task_id.clone(), u.status.as_ref().unwrap().state);
                    }
                }
            }
            ids.iter()
                .all(|id| latest.get(*id) == Some(&(TaskState::Running as i32)))
        })
        .await;
    }
}

fn sessions(events: &[Event]) -> Vec<(SessionRequest, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Session(r, id) => Some((r.clone(), id.clone())),
            _ => None,
        })
        .collect()
}

fn start_agent(
    managers: Vec<String>,
    state_dir: &std::path::Path,
    backend: Arc<NullBackend>,
) -> (CancellationToken, JoinHandle<anyhow::Result<()>>) {
    let shutdown = CancellationToken::new();
    swarm_agent::certs::CertFiles::plain(swarm_agent::certs::certs_dir(state_dir))
        .save(&pki().node)
        .unwrap();
    let config = AgentConfig {
        managers,
        join_token: String::new(),
        state_dir: state_dir.to_path_buf(),
        key_protection: Default::default(),
        hostname: "test-host".into(),
        labels: HashMap::from([("zone".to_string(), "a".to_string())]),
        backend,
        links: swarm_agent::session::SessionLinks::new(),
    };
    let agent = tokio::spawn(swarm_agent::run(config, shutdown.clone()));
    (shutdown, agent)
}

async fn stop_agent(shutdown: CancellationToken, agent: JoinHandle<anyhow::Result<()>>) {
    shutdown.cancel();
    tokio::time::timeout(DEADLINE, agent)
        .await
        .expect("agent stops within the deadline")
        .expect("agent task")
        .expect("agent run");
}

#[tokio::test]
async fn t10_session_runs_assigned_tasks_and_reconnects_without_restarting_them() {
    let mut fake = start_fake(&["t1", "t2", "t3"], false).await;
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(NullBackend::new());
    let (shutdown, agent) = start_agent(vec![fake.addr.clone()], dir.path(), backend.clone());

    tracing::info!("--- the agent connects over mTLS: its certificate's node id, description");
    let (req, s1) = fake.session(0).await;
    assert_eq!(req.node_id, NODE_ID);
    assert_eq!(
        req.join_token, "",
        "a node with a certificate sends no token"
    );
    let description = req.description.unwrap();
    assert_eq!(description.hostname, "test-host");
    assert_eq!(description.engine_labels["zone"], "a");
    assert!(description.runtimes.contains(&"wasm".to_string()));

    tracing::info!("--- heartbeats, and the three tasks run");
    fake.wait("a heartbeat", |e| {
        e.iter()
            .any(|e| matches!(e, Event::Heartbeat(s) if *s == s1))
    })
    .await;
    fake.running_in(&s1, &["t1", "t2", "t3"]).await;
    assert!(dir.path().join("worker/tasks.redb").exists());

    tracing::info!("--- the dispatcher drops the session; the agent reconnects");
    fake.dispatcher.drop_session(&s1);
    let (req, s2) = fake.session(1).await;
    assert_eq!(
        req.node_id, NODE_ID,
        "rejoins as the node its certificate names"
    );
    fake.running_in(&s2, &["t1", "t2", "t3"]).await;
    let stats = backend.stats();
    assert_eq!(stats.controllers_created, 3, "tasks were not restarted");
    assert_eq!(stats.running, 3);

    stop_agent(shutdown, agent).await;
    fake.stop.cancel();
}

#[tokio::test]
async fn t20_a_follower_saying_not_the_leader_is_skipped() {
    let follower = start_fake(&[], true).await;
    let mut leader = start_fake(&["t1"], false).await;
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(NullBackend::new());
    let (shutdown, agent) = start_agent(
        vec![follower.addr.clone(), leader.addr.clone()],
        dir.path(),
        backend,
    );
    let (_, sid) = leader.session(0).await;
    leader.running_in(&sid, &["t1"]).await;
    stop_agent(shutdown, agent).await;
    follower.stop.cancel();
    leader.stop.cancel();
}

#[tokio::test]
async fn t30_a_restarted_agent_rejoins_as_the_same_node_and_readopts_its_tasks() {
    let mut fake = start_fake(&["t1", "t2"], false).await;
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(NullBackend::new());
    let (shutdown, agent) = start_agent(vec![fake.addr.clone()], dir.path(), backend.clone());
    let (_, s1) = fake.session(0).await;
    fake.running_in(&s1, &["t1", "t2"]).await;
    stop_agent(shutdown, agent).await;
    assert_eq!(backend.stats().controllers_live, 0);

    tracing::info!("--- restart on the same state dir");
    let before = fake.events.borrow().len();
    let (shutdown, agent) = start_agent(vec![fake.addr.clone()], dir.path(), backend.clone());
    let (req, s2) = fake.session(1).await;
    assert_eq!(req.node_id, NODE_ID);
    fake.running_in(&s2, &["t1", "t2"]).await;
    let states: Vec<i32> = fake.events.borrow()[before..]
        .iter()
        .filter_map(|e| match e {
            Event::Statuses(_, u) => Some(u.iter().map(|u| u.status.as_ref().unwrap().state)),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        states.iter().all(|s| *s == TaskState::Running as i32),
        "re-adopted tasks resume at RUNNING, they do not start over: {states:?}"
    );
    stop_agent(shutdown, agent).await;
    fake.stop.cancel();
}
