//! `init`: fresh ids, the raft log bootstrapped with this member, and the first objects.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use raft::prelude::ConfState;
use swarm_proto::{
    Annotations, CaConfig, Cluster, ClusterSpec, DispatcherConfig, EncryptionConfig, JoinTokens,
    Meta, Node, NodeAvailability, NodeDescription, NodeRole, NodeSpec, NodeStatus,
    OrchestrationConfig, Platform, ext,
};

use super::{Manager, ManagerConfig, ManagerError, NodeState, ROLE_MANAGER};
use swarm_agent::certs::CertFiles;

use crate::ca::{JoinToken, RootCa, Subject};
use crate::keymanager::{DataKey, DekFile, NodeKeyCodec, UnlockKey};
use crate::raft::RaftOptions;
use crate::raft::storage::RaftStorage;
use crate::store;

/// The raft database inside a state dir.
pub fn raft_path(dir: &Path) -> PathBuf {
    dir.join("raft").join("raft.redb")
}

pub(super) struct Prepared {
    pub state: NodeState,
    pub storage: RaftStorage,
    /// The key `storage` is sealed with.
    pub dek: DataKey,
    /// For a new cluster, what goes into its Cluster object once leader.
    pub fresh: Option<Fresh>,
}

/// The secrets of a new cluster.
pub(super) struct Fresh {
    pub root: RootCa,
    /// With `--autolock`: shown once, kept in the Cluster object.
    pub unlock_key: Option<UnlockKey>,
}

/// Opens the raft log of an existing state dir with its data key (which needs
/// `config.unlock_key` when the swarm is autolocked).
pub(super) fn open_storage(config: &ManagerConfig) -> Result<(RaftStorage, DataKey), ManagerError> {
    let dek = DekFile::in_state_dir(&config.state_dir).load(config.unlock_key.as_ref())?;
    let storage = RaftStorage::open_sealed(&raft_path(&config.state_dir), dek.clone())?;
    Ok((storage, dek))
}

/// A random raft member id (never 0).
pub(super) fn new_raft_id() -> u64 {
    loop {
        let id: u64 = rand::random();
        if id != 0 {
            return id;
        }
    }
}

/// Checks the state dir and readies the raft log for `init`.
pub(super) fn prepare_init(config: &ManagerConfig) -> Result<Prepared, ManagerError> {
    let dir = &config.state_dir;
    let io = |what: String| move |source| ManagerError::Io { what, source };
    if NodeState::exists(dir) {
        let state = NodeState::load(dir)?;
        if !config.force_new_cluster {
            return Err(ManagerError::AlreadyInitialized {
                dir: dir.display().to_string(),
                cluster: state.cluster_id,
            });
        }
        // Keep the data; this member becomes the only voter.
        let (storage, dek) = open_storage(config)?;
        storage.set_conf_state(ConfState {
            voters: vec![state.raft_id],
            ..Default::default()
        })?;
        tracing::warn!(cluster = %state.cluster_id, "forcing a new one-member cluster from existing data");
        return Ok(Prepared {
            state,
            storage,
            dek,
            fresh: None,
        });
    }
    if raft_path(dir).exists() {
        return Err(ManagerError::OrphanRaftData {
            dir: dir.display().to_string(),
        });
    }
    std::fs::create_dir_all(dir.join("raft")).map_err(io(format!("creating {}", dir.display())))?;
    let unlock_key = config.autolock.then(UnlockKey::generate);
    let dek = DekFile::in_state_dir(dir).create(unlock_key.as_ref())?;
    let storage = RaftStorage::open_sealed(&raft_path(dir), dek.clone())?;
    let raft_id = new_raft_id();
    storage.initialize(ConfState {
        voters: vec![raft_id],
        ..Default::default()
    })?;
    let state = NodeState {
        node_id: ext::new_id(),
        raft_id,
        cluster_id: ext::new_id(),
        role: ROLE_MANAGER.into(),
        advertise_addr: String::new(),
        remotes: Vec::new(),
    };
    state.save(dir)?;
    // An autolocked swarm's first node key is sealed from the start.
    let files = config.cert_files();
    files.use_codec(Arc::new(NodeKeyCodec::new(
        dek.clone(),
        unlock_key.is_some(),
    )));
    let root = new_certificates(config, &files, &state)?;
    Ok(Prepared {
        state,
        storage,
        dek,
        fresh: Some(Fresh { root, unlock_key }),
    })
}

/// The cluster's root CA and this manager's certificate, saved in `files`. The root key
/// goes only into the Cluster object (the raft store, which autolock encrypts): like
/// Docker's managers, `certificates/` holds the root certificate and no root key.
fn new_certificates(
    config: &ManagerConfig,
    files: &CertFiles,
    state: &NodeState,
) -> Result<RootCa, ManagerError> {
    let ca_err =
        |e: crate::ca::CaError| ManagerError::Other(format!("creating the cluster CA: {e}"));
    let root = RootCa::generate(&state.cluster_id).map_err(ca_err)?;
    let subject = Subject {
        node_id: &state.node_id,
        role: NodeRole::Manager,
        cluster_id: &state.cluster_id,
    };
    let certs = root
        .issue_local(&subject, config.node_cert_expiry)
        .map_err(ca_err)?;
    files
        .save(&certs)
        .map_err(|e| ManagerError::Other(format!("saving certificates: {e}")))?;
    Ok(root)
}

/// Waits for leadership, then writes the Cluster and this manager's Node in one transaction.
pub(super) async fn create_cluster_objects(
    manager: &Manager,
    config: &ManagerConfig,
    fresh: Fresh,
) -> Result<(), ManagerError> {
    let root = fresh.root;
    let config_err =
        |e: store::StoreError| ManagerError::Other(format!("creating the cluster: {e}"));
    manager
        .raft
        .wait_leader(std::time::Duration::from_secs(10))
        .await
        .map_err(config_err)?;
    let state = &manager.state;
    let now = ext::now_ns();
    let meta = Some(Meta {
        version: 0,
        created_at_ns: now,
        updated_at_ns: now,
    });
    let worker = JoinToken::generate(root.cert_pem.as_bytes());
    let cluster = Cluster {
        id: state.cluster_id.clone(),
        meta,
        spec: Some(ClusterSpec {
            annotations: Some(Annotations {
                name: "default".into(),
                ..Default::default()
            }),
            orchestration: Some(OrchestrationConfig {
                task_history_retention_limit: config.task_history_limit,
            }),
            raft: Some(RaftOptions::new(state.raft_id).to_spec()),
            dispatcher: Some(DispatcherConfig {
                heartbeat_period_ms: config.heartbeat_period.as_millis() as u64,
            }),
            ca_config: Some(CaConfig {
                node_cert_expiry_secs: config.node_cert_expiry.as_secs(),
            }),
            encryption: Some(EncryptionConfig {
                auto_lock_managers: fresh.unlock_key.is_some(),
            }),
        }),
        join_tokens: Some(JoinTokens {
            worker: worker.to_string(),
            manager: worker.rotated().to_string(),
        }),
        root_ca: Some(root.to_proto()),
        unlock_key: fresh
            .unlock_key
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    };
    let has_agent = config.runs_agent;
    let node = Node {
        id: state.node_id.clone(),
        meta,
        spec: Some(NodeSpec {
            annotations: Some(Annotations::default()),
            desired_role: NodeRole::Manager as i32,
            // A manager without an agent runs no tasks.
            availability: if has_agent {
                NodeAvailability::Active
            } else {
                NodeAvailability::Drain
            } as i32,
        }),
        description: Some(NodeDescription {
            hostname: config.hostname.clone(),
            platform: Some(Platform {
                os: std::env::consts::OS.into(),
                architecture: std::env::consts::ARCH.into(),
            }),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            message: if has_agent {
                String::new()
            } else {
                "manager only (--no-agent)".into()
            },
            ..Default::default()
        }),
        role: NodeRole::Manager as i32,
        manager_status: Some(swarm_proto::ManagerStatus {
            raft_id: state.raft_id,
            addr: manager.addr.to_string(),
            leader: true,
            reachable: true,
            catching_up: false,
        }),
    };
    manager
        .store
        .write_atomic(vec![store::create(cluster), store::create(node)])
        .await
        .map_err(config_err)?;
    Ok(())
}
