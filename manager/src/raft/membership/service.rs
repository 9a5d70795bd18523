//! [`MembershipApi`]: the RaftMembership service. Runs on every manager; only the leader
//! changes membership (followers forward through the leader proxy). Changes are serialized:
//! raft takes one at a time. A join adds the manager as a raft *learner* and answers once
//! that has applied; the leader's driver promotes it to voter when it has caught up
//! ([`super::promote`]), and the joiner waits for that itself.

use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use raft::prelude::{ConfChange, ConfChangeType};
use swarm_proto::raft_membership_server::{RaftMembership, RaftMembershipServer};
use swarm_proto::{JoinRaftRequest, JoinRaftResponse, LeaveRaftRequest, LeaveRaftResponse};
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

use super::decide::{self, Join};
use crate::api::ApiError;
use crate::raft::RaftHandle;
use crate::store::{self, Store, StoreError};

/// How long a membership change may take to commit.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// The RaftMembership service of one manager.
#[derive(Clone)]
pub struct MembershipApi {
    store: Store,
    raft: RaftHandle,
    changing: Arc<Mutex<()>>,
}

impl MembershipApi {
    pub fn new(store: Store, raft: RaftHandle) -> Self {
        Self {
            store,
            raft,
            changing: Arc::default(),
        }
    }

    pub fn into_service(self) -> RaftMembershipServer<Self> {
        RaftMembershipServer::new(self)
    }

    /// Adds `node_id` as raft learner `raft_id` at `addr`; returns the members after.
    pub async fn join(&self, req: JoinRaftRequest) -> Result<JoinRaftResponse, ApiError> {
        let _one_at_a_time = self.changing.lock().await;
        let members = self.raft.status().borrow().members();
        let plan = decide::join(
            &self.store.view(),
            &members,
            &req.node_id,
            req.raft_id,
            &req.addr,
        )?;
        if let Join::Add(node) = plan {
            self.store.write_atomic(vec![store::update(*node)]).await?;
            let member = swarm_proto::RaftMember {
                raft_id: req.raft_id,
                node_id: req.node_id.clone(),
                addr: req.addr.clone(),
            };
            self.change(
                ConfChangeType::AddLearnerNode,
                req.raft_id,
                member.encode_to_vec(),
            )
            .await?;
            tracing::info!(node = %req.node_id, raft_id = format_args!("{:x}", req.raft_id), addr = %req.addr, "manager joined raft as a learner");
        }
        let members = self.raft.status().borrow().members();
        Ok(JoinRaftResponse {
            raft_id: req.raft_id,
            members: decide::members(&self.store.view(), &members),
        })
    }

    /// Removes `node_id`'s raft member.
    pub async fn leave(&self, node_id: &str) -> Result<(), ApiError> {
        let _one_at_a_time = self.changing.lock().await;
        let status = self.raft.status().borrow().clone();
        let raft_id = decide::leave(
            &self.store.view(),
            &status.voters,
            &status.learners,
            node_id,
        )?;
        self.change(ConfChangeType::RemoveNode, raft_id, Vec::new())
            .await?;
        tracing::info!(node = %node_id, raft_id = format_args!("{raft_id:x}"), "manager left raft");
        Ok(())
    }

    async fn change(
        &self,
        kind: ConfChangeType,
        raft_id: u64,
        context: Vec<u8>,
    ) -> Result<(), ApiError> {
        let mut cc = ConfChange::default();
        cc.set_change_type(kind);
        cc.node_id = raft_id;
        cc.context = context.into();
        tokio::time::timeout(CHANGE_TIMEOUT, self.raft.change_membership(cc))
            .await
            .map_err(|_| {
                StoreError::Dropped(format!(
                    "the membership change did not commit within {CHANGE_TIMEOUT:?} (is a \
                     majority of managers reachable?)"
                ))
            })??;
        Ok(())
    }
}

#[tonic::async_trait]
impl RaftMembership for MembershipApi {
    async fn join(
        &self,
        request: Request<JoinRaftRequest>,
    ) -> Result<Response<JoinRaftResponse>, Status> {
        let caller = crate::ca::authenticated(&request)?;
        let req = request.into_inner();
        if caller.node_id != req.node_id {
            tracing::info!(caller = %caller.node_id, node = %req.node_id, "join forwarded by another manager");
        }
        Ok(Response::new(MembershipApi::join(self, req).await?))
    }

    async fn leave(
        &self,
        request: Request<LeaveRaftRequest>,
    ) -> Result<Response<LeaveRaftResponse>, Status> {
        crate::ca::authenticated(&request)?;
        MembershipApi::leave(self, &request.get_ref().node_id).await?;
        Ok(Response::new(LeaveRaftResponse {}))
    }
}
