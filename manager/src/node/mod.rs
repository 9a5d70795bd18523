//! What `swarm-manager init` and `run` start, and the leadership watch that starts and stops
//! the leader-only components.
//!
//! ```text
//! Manager::init ─▶ new ids, raft log bootstrapped with this member, state.json
//!        │          then as `run`, plus the Cluster and Node objects once leader
//! Manager::join ─▶ manager certificate from the CA, empty raft log, start as `run`, then
//!                  RaftMembership.Join: the leader adds it and streams the snapshot + log
//! Manager::run ──▶ state.json ─▶ raft storage ─▶ snapshot → store, log replayed by raft
//!                 ├─ TCP listener: Dispatcher (agents)
//!                 ├─ control.sock (0600): Control API (swarmctl)
//!                 ├─ metrics endpoint (optional)
//!                 ├─ artifact catch-up: blobs a snapshot left out, from the peers
//!                 └─ leadership watch: leader → allocator, orchestrators, scheduler,
//!                                      dispatcher, role manager; follower → all stopped
//! ```
//! The node's agent runs beside the manager, not inside it: the [`crate::supervisor`] starts
//! and stops the manager as the node's role changes while the agent keeps its tasks.

mod bootstrap;
mod config;
mod join;
mod join_retry;
mod leader;
mod leave;
mod revocable;
mod server_tls;
mod servers;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use swarm_agent::certs::{CertFiles, NodeCerts};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use bootstrap::raft_path;
pub use config::ManagerConfig;
pub use leave::retire;
pub use state::{NodeState, ROLE_MANAGER, ROLE_WORKER, StateError};

use crate::keymanager::{self, DataKey, DekFile, NodeKeyCodec};
use crate::proxy::Forwarder;
use crate::raft::{self, GrpcTransport, PeerAddrs, RaftHandle, RaftOptions};
use crate::store::{MemoryStore, Store};

/// Why a manager could not start.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(
        "{dir} already holds a swarm (cluster {cluster}); start it with `swarm-manager run --state-dir {dir}`, or use `init --force-new-cluster` to make this node a one-member cluster keeping its data"
    )]
    AlreadyInitialized { dir: String, cluster: String },
    #[error(
        "{dir} holds raft data but no state.json; move it away before `init`, or restore state.json"
    )]
    OrphanRaftData { dir: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Locked(#[from] crate::keymanager::LockError),
    #[error(transparent)]
    Storage(#[from] raft::storage::StorageError),
    #[error(transparent)]
    Raft(#[from] raft::DriverError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// A running manager.
pub struct Manager {
    pub state: NodeState,
    pub store: Store,
    pub raft: RaftHandle,
    /// Where the other managers are reached.
    pub peers: PeerAddrs,
    /// Where agents and peers reach this manager.
    pub addr: SocketAddr,
    pub control_socket: PathBuf,
    pub metrics_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    raft_task: Option<JoinHandle<Result<(), raft::DriverError>>>,
    tasks: Vec<JoinHandle<()>>,
}

/// This manager's certificates, made at `init` (or `join`): from now on the node key is
/// read and written with `dek`, sealed while the DEK is wrapped (the swarm is autolocked).
fn load_certificates(
    config: &ManagerConfig,
    dek: &DataKey,
) -> Result<(CertFiles, NodeCerts), ManagerError> {
    let sealed = DekFile::in_state_dir(&config.state_dir).is_locked()?;
    let files = config.cert_files();
    files.use_codec(Arc::new(NodeKeyCodec::new(dek.clone(), sealed)));
    match files.load() {
        Ok(Some(certs)) => Ok((files, certs)),
        Ok(None) => Err(ManagerError::Other(format!(
            "no node certificate in {}: this state dir was not made by `swarm-manager init`",
            files.dir().display()
        ))),
        Err(e) => Err(ManagerError::Other(format!("loading certificates: {e}"))),
    }
}

impl Manager {
    /// `swarm-manager init`: creates a new one-manager cluster in `config.state_dir`.
    pub async fn init(config: ManagerConfig) -> Result<Self, ManagerError> {
        let prepared = bootstrap::prepare_init(&config)?;
        let manager = Self::start(
            config.clone(),
            prepared.state,
            prepared.storage,
            prepared.dek,
        )
        .await?;
        if let Some(fresh) = prepared.fresh {
            bootstrap::create_cluster_objects(&manager, &config, fresh).await?;
        }
        Ok(manager)
    }

    /// `swarm-manager run`: resumes the manager whose state is in `config.state_dir`.
    pub async fn run(config: ManagerConfig) -> Result<Self, ManagerError> {
        let state = NodeState::load(&config.state_dir)?;
        if !state.is_manager() {
            return Err(ManagerError::Other(format!(
                "{} belongs to a node that was demoted to a worker; it runs as a worker until \
                 it is promoted again",
                config.state_dir.display()
            )));
        }
        let (storage, dek) = bootstrap::open_storage(&config)?;
        if storage.is_empty() {
            return Err(ManagerError::Other(format!(
                "the raft database of {} is empty although state.json names cluster {}; refusing to start an empty manager",
                config.state_dir.display(),
                state.cluster_id
            )));
        }
        Self::start(config, state, storage, dek).await
    }

    async fn start(
        config: ManagerConfig,
        state: NodeState,
        storage: raft::storage::RaftStorage,
        dek: DataKey,
    ) -> Result<Self, ManagerError> {
        let shutdown = CancellationToken::new();
        let (files, certs) = load_certificates(&config, &dek)?;
        let cert = server_tls::ReloadingCert::new(files.clone(), &certs)
            .map_err(|e| ManagerError::Other(format!("this manager's certificate: {e}")))?;
        let tls = swarm_agent::certs::client_config_resolving(&certs.root_pem, cert.clone())
            .map_err(|e| ManagerError::Other(format!("this manager's certificate: {e}")))?;
        let memory = MemoryStore::new(Default::default());
        let blobs = crate::artifacts::attach(&config.state_dir, &memory)
            .map_err(|e| ManagerError::Other(e.to_string()))?;
        let options = RaftOptions::new(state.raft_id);
        let peers = PeerAddrs::new(memory.clone());
        let transport = GrpcTransport::new(peers.clone(), tls.clone(), shutdown.child_token());
        let (raft, raft_task) = raft::start(
            options,
            storage,
            memory.clone(),
            Arc::new(transport.clone()),
            shutdown.child_token(),
        )?;
        transport.attach(raft.clone());
        let store = Store::new(memory, Arc::new(raft.clone()));
        let forwarder = Forwarder::new(raft.clone(), peers.clone(), tls.clone());
        let servers = servers::start(
            &config,
            &state,
            cert,
            store.clone(),
            &forwarder,
            blobs.clone(),
            shutdown.clone(),
        )
        .await?;
        let mut tasks = servers.tasks;
        tasks.push(tokio::spawn(keymanager::rewrap::run(
            store.clone(),
            keymanager::rewrap::Guarded {
                dek_file: DekFile::in_state_dir(&config.state_dir),
                dek,
                certs: files.clone(),
            },
            shutdown.child_token(),
        )));
        if !config.runs_agent {
            tasks.push(tokio::spawn(crate::ca::self_renew::run(
                store.clone(),
                files,
                shutdown.child_token(),
            )));
        }
        tasks.push(tokio::spawn(crate::artifacts::catchup::run(
            store.clone(),
            blobs,
            tls,
            servers.addr.to_string(),
            shutdown.child_token(),
        )));
        tasks.push(tokio::spawn(leader::watch(
            store.clone(),
            raft.clone(),
            servers.dispatcher,
            servers.membership,
            shutdown.child_token(),
        )));
        Ok(Self {
            state,
            store,
            raft,
            peers,
            addr: servers.addr,
            control_socket: servers.control_socket,
            metrics_addr: servers.metrics_addr,
            shutdown,
            raft_task: Some(raft_task),
            tasks,
        })
    }

    /// Resolves when the manager stops on its own (its raft driver failed) or is shut down.
    /// Cancel-safe: a dropped `wait` can be called again.
    pub async fn wait(&mut self) -> Result<(), ManagerError> {
        let Some(task) = self.raft_task.as_mut() else {
            return Ok(());
        };
        let r = task.await;
        self.raft_task = None;
        self.shutdown.cancel();
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(ManagerError::Other(format!("raft driver panicked: {e}"))),
        }
    }

    /// A token cancelled when the manager shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops everything and waits for the raft driver and servers to finish. Servers get
    /// [`SHUTDOWN_GRACE`] to close their connections (an agent's forwarded session stream
    /// would hold one open); then they are aborted, so everything the manager opened (its
    /// databases among them) is closed when this returns.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.raft_task.take() {
            let _ = task.await;
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        for mut t in self.tasks.drain(..) {
            if tokio::time::timeout_at(deadline, &mut t).await.is_err() {
                t.abort();
                let _ = t.await;
            }
        }
        let _ = std::fs::remove_file(&self.control_socket);
    }
}

/// How long [`Manager::shutdown`] lets servers close their connections.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
