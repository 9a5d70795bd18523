//! `swarm-manager join --remote ADDR --join-token T`: a new manager for an existing swarm.
//! A promoted node takes the same path from step 2 on, with the manager certificate it
//! renewed into (no token).
//!
//! ```text
//!  1. certificate from the CA at ADDR with the manager token (as an agent joins)
//!  2. empty raft log, a fresh data key, a random raft id
//!  3. start: listeners bound, raft waiting for the leader
//!  4. RaftMembership.Join(node, address, raft id) → the leader records the address and
//!     adds the member as a raft learner; it then sends the snapshot and the log
//!  5. state.json written: from now on `swarm-manager run` resumes this manager
//!  6. wait (up to PROMOTION_DEADLINE) until the leader has promoted it to voter, which it
//!     does once the learner has caught up (`raft::membership::promote`)
//! ```
//! Steps 1 and 4 retry transient failures until a deadline ([`super::join_retry`]).
//! A join that fails before step 5 leaves no state.json and no raft data behind (the
//! certificate stays, so the node is named in the error); one that times out in step 6 is a
//! member already, so it keeps its state and says how to resume it.

use std::path::Path;
use std::time::Duration;

use swarm_agent::certs::{CertFiles, NodeCerts};
use swarm_agent::session::RPC_TIMEOUT;
use swarm_proto::raft_membership_client::RaftMembershipClient;
use swarm_proto::{JoinRaftRequest, NodeRole};

use super::join_retry::{Failure, JOIN_RETRY_DEADLINE, retry, transient};
use super::{Manager, ManagerConfig, ManagerError, NodeState, ROLE_MANAGER, bootstrap, leave};
use crate::keymanager::DekFile;
use crate::raft::storage::RaftStorage;

impl Manager {
    /// Joins the swarm that the manager at `remote` belongs to, as a manager.
    pub async fn join(
        config: ManagerConfig,
        remote: &str,
        token: &str,
    ) -> Result<Self, ManagerError> {
        let dir = &config.state_dir;
        // A demoted manager (state.json says worker) may join again once promoted.
        if NodeState::exists(dir) && NodeState::load(dir)?.is_manager() {
            let state = NodeState::load(dir)?;
            return Err(ManagerError::AlreadyInitialized {
                dir: dir.display().to_string(),
                cluster: state.cluster_id,
            });
        }
        if bootstrap::raft_path(dir).exists() {
            return Err(ManagerError::OrphanRaftData {
                dir: dir.display().to_string(),
            });
        }
        let files = config.cert_files();
        let certs = retry(
            &format!("getting a manager certificate through {remote}"),
            JOIN_RETRY_DEADLINE,
            || manager_certificate(&files, remote, token),
        )
        .await?;
        let identity = certs
            .identity()
            .map_err(|e| ManagerError::Other(format!("the issued certificate: {e}")))?;
        let io = |what: String| move |source| ManagerError::Io { what, source };
        std::fs::create_dir_all(dir.join("raft"))
            .map_err(io(format!("creating {}", dir.display())))?;
        let dek = DekFile::in_state_dir(dir).create(None)?;
        let storage = RaftStorage::open_sealed(&bootstrap::raft_path(dir), dek.clone())?;
        let state = NodeState {
            node_id: identity.node_id.clone(),
            raft_id: bootstrap::new_raft_id(),
            cluster_id: identity.cluster_id.clone(),
            role: ROLE_MANAGER.into(),
            advertise_addr: String::new(),
            remotes: Vec::new(),
        };
        let manager = match Self::start(config.clone(), state, storage, dek).await {
            Ok(m) => m,
            Err(e) => {
                let _ = leave::remove_raft_data(dir, &files);
                return Err(e);
            }
        };
        let joined = retry(
            &format!("joining raft through {remote}"),
            JOIN_RETRY_DEADLINE,
            || join_raft(&manager, remote, &certs),
        )
        .await;
        if let Err(e) = joined {
            manager.shutdown().await;
            let _ = leave::remove_raft_data(dir, &files);
            return Err(e);
        }
        let mut state = manager.state.clone();
        state.advertise_addr = manager.addr.to_string();
        state.save(dir)?;
        tracing::info!(node = %state.node_id, raft_id = format_args!("{:x}", state.raft_id), "joined raft as a learner; catching up");
        if let Err(e) = wait_until_voter(&manager, dir, PROMOTION_DEADLINE).await {
            manager.shutdown().await;
            return Err(e);
        }
        tracing::info!(node = %state.node_id, raft_id = format_args!("{:x}", state.raft_id), "joined the swarm as a manager");
        Ok(manager)
    }
}

/// How long a joined learner may take to catch up and be promoted to voter.
const PROMOTION_DEADLINE: Duration = Duration::from_secs(300);

/// Waits until this manager's raft lists it among the voters.
async fn wait_until_voter(
    manager: &Manager,
    dir: &Path,
    deadline: Duration,
) -> Result<(), ManagerError> {
    let me = manager.state.raft_id;
    let mut status = manager.raft.status();
    match tokio::time::timeout(deadline, status.wait_for(|s| s.voters.contains(&me))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err(ManagerError::Other(
            "raft stopped while this manager was catching up as a learner".into(),
        )),
        Err(_) => Err(ManagerError::Other(format!(
            "this manager joined raft as a learner but the leader did not promote it to voter \
             within {deadline:?} (it is still catching up with the leader's log, or the swarm \
             has no leader); it is a member, so its state was kept: resume it with \
             `swarm-manager run --state-dir {}`",
            dir.display()
        ))),
    }
}

/// Gets this node a manager certificate through the CA at `remote` (or reuses the one a
/// failed join left).
async fn manager_certificate(
    files: &CertFiles,
    remote: &str,
    token: &str,
) -> Result<NodeCerts, Failure> {
    let other = |what: String| Failure::Permanent(ManagerError::Other(what));
    let existing = files
        .load()
        .map_err(|e| other(format!("loading certificates: {e}")))?;
    let certs = match existing {
        Some(c) => c,
        None => {
            let c = swarm_agent::certs::join::bootstrap(remote, token, RPC_TIMEOUT)
                .await
                .map_err(|e| {
                    let why = format!("joining through {remote}: {e}");
                    if e.is_temporary() {
                        Failure::Transient(why)
                    } else {
                        other(why)
                    }
                })?;
            files
                .save(&c)
                .map_err(|e| other(format!("saving certificates: {e}")))?;
            c
        }
    };
    let identity = certs
        .identity()
        .map_err(|e| other(format!("the issued certificate: {e}")))?;
    if identity.role != NodeRole::Manager {
        let _ = std::fs::remove_dir_all(files.dir());
        return Err(other(format!(
            "the join token is a worker token: node {} joined as a worker (use \
             `swarm-agent --join-token` for workers, and `swarmctl join-token manager` for \
             the manager token); its certificate was removed",
            identity.node_id
        )));
    }
    Ok(certs)
}

/// Asks the swarm (through `remote`, which forwards to the leader) to add this manager.
async fn join_raft(manager: &Manager, remote: &str, certs: &NodeCerts) -> Result<(), Failure> {
    let tls = certs.client_config().map_err(|e| {
        Failure::Permanent(ManagerError::Other(format!(
            "this manager's certificate: {e}"
        )))
    })?;
    let channel = swarm_agent::certs::connect(remote, tls, RPC_TIMEOUT)
        .await
        .map_err(|e| Failure::Transient(format!("connecting to {remote}: {e}")))?;
    let response = RaftMembershipClient::new(channel)
        .join(JoinRaftRequest {
            node_id: manager.state.node_id.clone(),
            addr: manager.addr.to_string(),
            raft_id: manager.state.raft_id,
        })
        .await
        .map_err(|s| {
            let why = format!("joining raft through {remote}: {}", s.message());
            if transient(s.code(), s.message()) {
                Failure::Transient(why)
            } else {
                Failure::Permanent(ManagerError::Other(why))
            }
        })?
        .into_inner();
    manager.peers.add_seeds(&response.members);
    Ok(())
}
