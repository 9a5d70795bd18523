//! The NodeCA gRPC service on every manager's TCP listener: the root certificate for anyone
//! (it is public; joining nodes check it against their token), and node certificates for a
//! CSR plus a join token (joining: a new Node object is created with the token's role) or
//! for a CSR from a node that already holds a valid certificate (renewal: same node id,
//! the node's current role).

use std::time::Duration;

use subtle::ConstantTimeEq;
use swarm_proto::node_ca_server::{NodeCa, NodeCaServer};
use swarm_proto::{
    Annotations, Cluster, GetRootCaCertificateRequest, GetRootCaCertificateResponse,
    IssueNodeCertificateRequest, IssueNodeCertificateResponse, Meta, Node, NodeAvailability,
    NodeRole, NodeSpec, NodeState, NodeStatus, ext,
};
use tonic::{Request, Response, Status};

use super::authz::{NodeAuth, caller};
use super::root::{CaError, DEFAULT_NODE_CERT_EXPIRY, RootCa, Subject};
use crate::store::{self, Store};

/// Serves NodeCA from the store's Cluster object.
#[derive(Clone)]
pub struct NodeCaApi {
    store: Store,
}

impl NodeCaApi {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub fn into_service(self) -> NodeCaServer<Self> {
        NodeCaServer::new(self)
    }

    fn cluster(&self) -> Result<std::sync::Arc<Cluster>, Status> {
        self.store
            .view()
            .the_cluster()
            .cloned()
            .ok_or_else(|| Status::unavailable("the cluster is not initialized yet"))
    }
}

/// The role a join token grants, compared in constant time.
///
/// # Errors
/// `Unauthenticated` for a wrong token.
pub fn role_of_token(cluster: &Cluster, token: &str) -> Result<NodeRole, Status> {
    let tokens = cluster.join_tokens.clone().unwrap_or_default();
    let eq = |a: &str, b: &str| !b.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()));
    if eq(token, &tokens.manager) {
        Ok(NodeRole::Manager)
    } else if eq(token, &tokens.worker) {
        Ok(NodeRole::Worker)
    } else {
        Err(Status::unauthenticated(
            "invalid join token (get the current one with `swarmctl join-token worker`)",
        ))
    }
}

/// The validity of node certificates in `cluster`.
pub fn node_cert_expiry(cluster: &Cluster) -> Duration {
    match cluster
        .spec
        .as_ref()
        .and_then(|s| s.ca_config)
        .map(|c| c.node_cert_expiry_secs)
    {
        Some(secs) if secs > 0 => Duration::from_secs(secs),
        _ => DEFAULT_NODE_CERT_EXPIRY,
    }
}

fn ca_status(e: CaError) -> Status {
    match e {
        CaError::BadCsr(_) => Status::invalid_argument(e.to_string()),
        CaError::Root(_) => Status::internal(e.to_string()),
    }
}

fn new_node(id: &str, role: NodeRole) -> Node {
    let now = ext::now_ns();
    Node {
        id: id.to_string(),
        meta: Some(Meta {
            version: 0,
            created_at_ns: now,
            updated_at_ns: now,
        }),
        spec: Some(NodeSpec {
            annotations: Some(Annotations::default()),
            desired_role: role as i32,
            availability: NodeAvailability::Active as i32,
        }),
        description: None,
        status: Some(NodeStatus {
            state: NodeState::NodeUnknown as i32,
            message: "joined; waiting for its first session".into(),
            addr: String::new(),
        }),
        role: role as i32,
        manager_status: None,
    }
}

#[tonic::async_trait]
impl NodeCa for NodeCaApi {
    async fn get_root_ca_certificate(
        &self,
        _: Request<GetRootCaCertificateRequest>,
    ) -> Result<Response<GetRootCaCertificateResponse>, Status> {
        let cluster = self.cluster()?;
        let root = RootCa::from_proto(cluster.root_ca.as_ref()).map_err(ca_status)?;
        Ok(Response::new(GetRootCaCertificateResponse {
            certificate: root.cert_pem.into_bytes(),
        }))
    }

    async fn issue_node_certificate(
        &self,
        request: Request<IssueNodeCertificateRequest>,
    ) -> Result<Response<IssueNodeCertificateResponse>, Status> {
        let cluster = self.cluster()?;
        let root = RootCa::from_proto(cluster.root_ca.as_ref()).map_err(ca_status)?;
        let renewing = request.get_ref().token.is_empty();
        let (node_id, role) = if renewing {
            if caller(&request).is_err() {
                return Err(Status::unauthenticated(
                    "a join token is required (swarmctl join-token worker)",
                ));
            }
            let id = NodeAuth::members(self.store.clone()).check(&request)?;
            let node = self.store.view().node(&id.node_id).cloned();
            let role = node.map_or(id.role, |n| NodeRole::try_from(n.role).unwrap_or(id.role));
            (id.node_id, role)
        } else {
            let role = role_of_token(&cluster, &request.get_ref().token)?;
            (ext::new_id(), role)
        };
        let req = request.into_inner();
        let csr = String::from_utf8(req.csr)
            .map_err(|_| Status::invalid_argument("the CSR is not PEM text"))?;
        let subject = Subject {
            node_id: &node_id,
            role,
            cluster_id: &cluster.id,
        };
        let cert = root
            .sign(&csr, &subject, node_cert_expiry(&cluster))
            .map_err(ca_status)?;
        if !renewing {
            self.store
                .write_atomic(vec![store::create(new_node(&node_id, role))])
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            tracing::info!(node = %node_id, ?role, "node joined: certificate issued");
        } else {
            tracing::info!(node = %node_id, ?role, "node certificate renewed");
        }
        Ok(Response::new(IssueNodeCertificateResponse {
            node_id,
            certificate: cert.into_bytes(),
            role: role as i32,
        }))
    }
}
