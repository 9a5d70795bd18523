//! The gRPC `Control` service: what `swarmctl` (and the Docker API layer) call on a manager.
//!
//! Each RPC is thin: resolve references against one read view, decide the new object with a
//! pure function (`decide` below: validation, version rules, rollback, token rotation), then
//! write it with **one** [`Store::write_atomic`], so a call either happens entirely or not at
//! all. Optimistic concurrency is the store's: an update carries the `*_version` the client
//! read, and the store refuses it if the object moved on ("update out of sequence").
//!
//! ```text
//!  request ──▶ view().find_*(reference) ──▶ decide::*(old, request) ──▶ write_atomic([action])
//!                                                 │ Err                       │ Err
//!                                                 └──────────▶ ApiError ──▶ tonic::Status
//! ```
//!
//! References (`service_id`, `node_id`, …) accept an id, a name (a hostname for nodes) or a
//! unique id prefix, as Docker's CLI does.

use std::sync::Arc;

use swarm_proto::control_server::Control;
use swarm_proto::ext::{new_id, now_ns};
use swarm_proto::*;
use tonic::{Request, Response, Status};

use super::error::ApiError;
use crate::raft::RaftStatus;
use crate::store::{self, Store, Tables};

mod decide;

/// The Control service over a [`Store`]. Writes fail with `UNAVAILABLE` on a manager that
/// is not the raft leader.
#[derive(Clone)]
pub struct ControlApi {
    store: Store,
    /// This manager's raft status, to show who leads and who is reachable as they are now.
    raft: Option<tokio::sync::watch::Receiver<RaftStatus>>,
}

type ApiResult<T> = Result<T, ApiError>;

fn reply<T>(r: ApiResult<T>) -> Result<Response<T>, Status> {
    r.map(Response::new).map_err(Status::from)
}

/// Pins the service's wasm artifact reference to a digest (see
/// [`crate::artifacts::decide::pin`]).
fn pin_artifact(view: &Tables, service: &mut Service) -> ApiResult<()> {
    match service.spec.as_mut() {
        Some(spec) => crate::artifacts::decide::pin_spec(view, spec),
        None => Ok(()),
    }
}

fn with_version(meta: &mut Option<Meta>, index: u64) {
    meta.get_or_insert_with(Meta::default).version = index;
}

impl ControlApi {
    /// A Control service reading and writing `store`.
    pub fn new(store: Store) -> Self {
        Self { store, raft: None }
    }

    /// Shows the managers' leader and reachability from `status` (this manager's raft).
    pub fn with_raft(mut self, status: tokio::sync::watch::Receiver<RaftStatus>) -> Self {
        self.raft = Some(status);
        self
    }

    /// `n` with its manager status as raft sees it now (see [`decide::live_manager_status`]).
    fn live(&self, n: &Node) -> Node {
        let mut n = n.clone();
        if let (Some(raft), Some(s)) = (&self.raft, n.manager_status.as_mut()) {
            decide::live_manager_status(s, &raft.borrow());
        }
        n
    }

    /// Refuses at once a demotion that would lose raft quorum (the role manager would only
    /// wait), as SwarmKit's UpdateNode does.
    fn check_demotion(&self, node: &Node) -> ApiResult<()> {
        let Some(raft) = &self.raft else {
            return Ok(());
        };
        let status = raft.borrow().clone();
        let demoted = node
            .spec
            .as_ref()
            .is_some_and(|s| s.desired_role == NodeRole::Worker as i32);
        match crate::role_manager::decide::member_of(node, &status) {
            Some(raft_id) if demoted && status.is_leader => {
                crate::role_manager::decide::can_remove(&status, raft_id).map_err(|why| {
                    ApiError::FailedPrecondition(format!("can't demote node {}: {why}", node.id))
                })
            }
            _ => Ok(()),
        }
    }

    fn view(&self) -> Arc<Tables> {
        self.store.view()
    }

    // ---- nodes ----

    async fn update_node_inner(&self, req: UpdateNodeRequest) -> ApiResult<Node> {
        let view = self.view();
        let old = view.find_node(&req.node_id)?;
        let mut node = decide::updated_node(&view, &old, req, now_ns())?;
        self.check_demotion(&node)?;
        let index = self
            .store
            .write_atomic(vec![store::update(node.clone())])
            .await?;
        with_version(&mut node.meta, index);
        Ok(node)
    }

    async fn remove_node_inner(&self, req: RemoveNodeRequest) -> ApiResult<()> {
        let node = self.view().find_node(&req.node_id)?;
        decide::check_node_removable(&node, req.force)?;
        self.store
            .write_atomic(vec![store::remove((*node).clone())])
            .await?;
        Ok(())
    }

    // ---- services ----

    async fn create_service_inner(&self, req: CreateServiceRequest) -> ApiResult<Service> {
        let mut service = decide::new_service(req, new_id(), now_ns())?;
        pin_artifact(&self.view(), &mut service)?;
        let index = self
            .store
            .write_atomic(vec![store::create(service.clone())])
            .await?;
        with_version(&mut service.meta, index);
        Ok(service)
    }

    async fn update_service_inner(&self, req: UpdateServiceRequest) -> ApiResult<Service> {
        let view = self.view();
        let old = view.find_service(&req.service_id)?;
        let mut service = decide::updated_service(&old, req, now_ns())?;
        pin_artifact(&view, &mut service)?;
        let index = self
            .store
            .write_atomic(vec![store::update(service.clone())])
            .await?;
        with_version(&mut service.meta, index);
        Ok(service)
    }

    async fn remove_service_inner(&self, req: RemoveServiceRequest) -> ApiResult<()> {
        let service = self.view().find_service(&req.service_id)?;
        self.store
            .write_atomic(vec![store::remove((*service).clone())])
            .await?;
        Ok(())
    }

    // ---- tasks ----

    fn list_tasks_inner(&self, req: ListTasksRequest) -> ApiResult<Vec<Task>> {
        let view = self.view();
        let service = (!req.service_id.is_empty())
            .then(|| view.find_service(&req.service_id))
            .transpose()?;
        let node = (!req.node_id.is_empty())
            .then(|| view.find_node(&req.node_id))
            .transpose()?;
        let mut tasks: Vec<Task> = match (&service, &node) {
            (Some(s), _) => view
                .tasks_by_service(&s.id)
                .filter(|t| node.as_ref().is_none_or(|n| t.node_id == n.id))
                .map(|t| (**t).clone())
                .collect(),
            (None, Some(n)) => view.tasks_by_node(&n.id).map(|t| (**t).clone()).collect(),
            (None, None) => view.tasks().map(|t| (**t).clone()).collect(),
        };
        tasks.sort_by(decide::task_order);
        Ok(tasks)
    }

    async fn remove_task_inner(&self, req: RemoveTaskRequest) -> ApiResult<()> {
        let task = self.view().find_task(&req.task_id)?;
        self.store
            .write_atomic(vec![store::remove((*task).clone())])
            .await?;
        Ok(())
    }

    // ---- cluster ----

    async fn update_cluster_inner(&self, req: UpdateClusterRequest) -> ApiResult<Cluster> {
        let old = decide::find_cluster(&self.view(), &req.cluster_id)?;
        // The thread-local CSPRNG is not `Send`: draw the new secrets before any await.
        let mut cluster = decide::updated_cluster(&old, req, now_ns(), &mut rand::rng())?;
        let index = self
            .store
            .write_atomic(vec![store::update(cluster.clone())])
            .await?;
        with_version(&mut cluster.meta, index);
        Ok(cluster)
    }
}

#[tonic::async_trait]
impl Control for ControlApi {
    async fn get_node(
        &self,
        r: Request<GetNodeRequest>,
    ) -> Result<Response<GetNodeResponse>, Status> {
        let found = self.view().find_node(&r.into_inner().node_id);
        reply(
            found
                .map(|n| GetNodeResponse {
                    node: Some(self.live(&n)),
                })
                .map_err(ApiError::from),
        )
    }

    async fn list_nodes(
        &self,
        _: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesResponse>, Status> {
        let nodes = self.view().nodes().map(|n| self.live(n)).collect();
        reply(Ok(ListNodesResponse { nodes }))
    }

    async fn update_node(
        &self,
        r: Request<UpdateNodeRequest>,
    ) -> Result<Response<UpdateNodeResponse>, Status> {
        let node = self.update_node_inner(r.into_inner()).await;
        reply(node.map(|n| UpdateNodeResponse { node: Some(n) }))
    }

    async fn remove_node(
        &self,
        r: Request<RemoveNodeRequest>,
    ) -> Result<Response<RemoveNodeResponse>, Status> {
        reply(
            self.remove_node_inner(r.into_inner())
                .await
                .map(|()| RemoveNodeResponse {}),
        )
    }

    async fn get_service(
        &self,
        r: Request<GetServiceRequest>,
    ) -> Result<Response<GetServiceResponse>, Status> {
        let found = self.view().find_service(&r.into_inner().service_id);
        reply(
            found
                .map(|s| GetServiceResponse {
                    service: Some((*s).clone()),
                })
                .map_err(ApiError::from),
        )
    }

    async fn list_services(
        &self,
        _: Request<ListServicesRequest>,
    ) -> Result<Response<ListServicesResponse>, Status> {
        let services = self.view().services().map(|s| (**s).clone()).collect();
        reply(Ok(ListServicesResponse { services }))
    }

    async fn create_service(
        &self,
        r: Request<CreateServiceRequest>,
    ) -> Result<Response<CreateServiceResponse>, Status> {
        let service = self.create_service_inner(r.into_inner()).await;
        reply(service.map(|s| CreateServiceResponse { service: Some(s) }))
    }

    async fn update_service(
        &self,
        r: Request<UpdateServiceRequest>,
    ) -> Result<Response<UpdateServiceResponse>, Status> {
        let service = self.update_service_inner(r.into_inner()).await;
        reply(service.map(|s| UpdateServiceResponse { service: Some(s) }))
    }

    async fn remove_service(
        &self,
        r: Request<RemoveServiceRequest>,
    ) -> Result<Response<RemoveServiceResponse>, Status> {
        reply(
            self.remove_service_inner(r.into_inner())
                .await
                .map(|()| RemoveServiceResponse {}),
        )
    }

    async fn get_task(
        &self,
        r: Request<GetTaskRequest>,
    ) -> Result<Response<GetTaskResponse>, Status> {
        let found = self.view().find_task(&r.into_inner().task_id);
        reply(
            found
                .map(|t| GetTaskResponse {
                    task: Some((*t).clone()),
                })
                .map_err(ApiError::from),
        )
    }

    async fn list_tasks(
        &self,
        r: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        reply(
            self.list_tasks_inner(r.into_inner())
                .map(|tasks| ListTasksResponse { tasks }),
        )
    }

    async fn remove_task(
        &self,
        r: Request<RemoveTaskRequest>,
    ) -> Result<Response<RemoveTaskResponse>, Status> {
        reply(
            self.remove_task_inner(r.into_inner())
                .await
                .map(|()| RemoveTaskResponse {}),
        )
    }

    async fn get_cluster(
        &self,
        r: Request<GetClusterRequest>,
    ) -> Result<Response<GetClusterResponse>, Status> {
        let found = decide::find_cluster(&self.view(), &r.into_inner().cluster_id);
        reply(found.map(|c| GetClusterResponse {
            cluster: Some(decide::redacted(&c)),
        }))
    }

    async fn list_clusters(
        &self,
        _: Request<ListClustersRequest>,
    ) -> Result<Response<ListClustersResponse>, Status> {
        let clusters = self
            .view()
            .clusters()
            .map(|c| decide::redacted(c))
            .collect();
        reply(Ok(ListClustersResponse { clusters }))
    }

    async fn get_unlock_key(
        &self,
        _: Request<GetUnlockKeyRequest>,
    ) -> Result<Response<GetUnlockKeyResponse>, Status> {
        let key = self
            .view()
            .the_cluster()
            .map(|c| c.unlock_key.clone())
            .unwrap_or_default();
        if key.is_empty() {
            return Err(Status::failed_precondition(
                "no unlock key is set: the swarm is not autolocked (swarm-manager init --autolock)",
            ));
        }
        Ok(Response::new(GetUnlockKeyResponse { unlock_key: key }))
    }

    async fn update_cluster(
        &self,
        r: Request<UpdateClusterRequest>,
    ) -> Result<Response<UpdateClusterResponse>, Status> {
        let cluster = self.update_cluster_inner(r.into_inner()).await;
        reply(cluster.map(|c| UpdateClusterResponse {
            cluster: Some(decide::redacted(&c)),
        }))
    }
}

#[cfg(test)]
mod tests;
