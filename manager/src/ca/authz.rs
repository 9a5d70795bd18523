//! Who is calling: every RPC on a manager's TCP listener except the NodeCA service goes
//! through [`NodeAuth`], which reads the caller's certificate (verified by TLS against the
//! root CA), checks it belongs to this cluster and to a node that is still a member — so
//! `node rm` revokes a certificate at once — and, for manager-only services, that it is a
//! manager's. The identity is left in the request's extensions for the handler.

use std::time::SystemTime;

use swarm_agent::certs::NodeIdentity;
use swarm_proto::NodeRole;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::store::Store;

/// Checks callers of one service.
#[derive(Clone)]
pub struct NodeAuth {
    store: Store,
    managers_only: bool,
    /// For raft: the cluster this manager belongs to, checked without the store while it is
    /// still empty (a joining manager receives its first snapshot through raft).
    cluster_id: Option<String>,
}

impl NodeAuth {
    /// Any member node (the dispatcher, log broker and artifact fetch: workers' services).
    pub fn members(store: Store) -> Self {
        Self {
            store,
            managers_only: false,
            cluster_id: None,
        }
    }

    /// Managers only (Control, raft membership).
    pub fn managers(store: Store) -> Self {
        Self {
            store,
            managers_only: true,
            cluster_id: None,
        }
    }

    /// Managers of cluster `cluster_id` (the raft transport). Until this manager's store holds
    /// the cluster, the certificate's cluster and role are all that is checked.
    pub fn raft_peers(store: Store, cluster_id: String) -> Self {
        Self {
            store,
            managers_only: true,
            cluster_id: Some(cluster_id),
        }
    }

    /// The caller's identity, checked.
    ///
    /// # Errors
    /// `Unauthenticated` without a certificate; `PermissionDenied` for another cluster, a
    /// removed node, or a worker calling a manager service.
    pub fn check<T>(&self, request: &Request<T>) -> Result<NodeIdentity, Status> {
        let id = caller(request)?;
        let view = self.store.view();
        let cluster = match (view.the_cluster(), &self.cluster_id) {
            (Some(c), _) => c,
            (None, Some(cluster_id)) => return self.check_unsynced(id, cluster_id),
            (None, None) => return Err(Status::unavailable("the cluster is not initialized yet")),
        };
        if id.cluster_id != cluster.id {
            return Err(Status::permission_denied(format!(
                "the certificate of node {} belongs to cluster {}, not this one ({})",
                id.node_id, id.cluster_id, cluster.id
            )));
        }
        if view.node(&id.node_id).is_none() {
            return Err(Status::permission_denied(format!(
                "node {} has been removed from the swarm; its certificate is no longer accepted \
                 (join again with a join token after deleting its certificates/ directory)",
                id.node_id
            )));
        }
        if self.managers_only && id.role != NodeRole::Manager {
            return Err(Status::permission_denied(format!(
                "node {} is a worker; only managers may make this call",
                id.node_id
            )));
        }
        Ok(id)
    }
}

impl NodeAuth {
    /// The check of a raft peer while this manager's store is still empty.
    fn check_unsynced(&self, id: NodeIdentity, cluster_id: &str) -> Result<NodeIdentity, Status> {
        if id.cluster_id != cluster_id || id.role != NodeRole::Manager {
            return Err(Status::permission_denied(format!(
                "node {} ({:?} of cluster {}) is not a manager of this cluster ({cluster_id})",
                id.node_id, id.role, id.cluster_id
            )));
        }
        Ok(id)
    }
}

impl Interceptor for NodeAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let id = self.check(&request)?;
        request.extensions_mut().insert(id);
        Ok(request)
    }
}

/// The identity in the caller's TLS certificate (not yet checked against the store).
///
/// # Errors
/// `Unauthenticated` when the caller presented no certificate or an expired one;
/// `PermissionDenied` when it is not a node certificate.
pub fn caller<T>(request: &Request<T>) -> Result<NodeIdentity, Status> {
    let now = SystemTime::now();
    let peer = tls_peer(request)?;
    unexpired(&peer, now)?;
    let id = match request.metadata().get(FORWARDED_CERT) {
        Some(forwarded) if peer.role == NodeRole::Manager => forwarded_identity(forwarded)?,
        _ => peer,
    };
    unexpired(&id, now)?;
    Ok(id)
}

/// Refuses a certificate past its NotAfter. TLS checks expiry only at the handshake, so a
/// connection opened with a valid certificate would otherwise keep working after it expired;
/// the identity is parsed per call anyway, so this costs one comparison.
///
/// # Errors
/// `Unauthenticated`, saying the node must renew or rejoin.
pub fn unexpired(id: &NodeIdentity, now: SystemTime) -> Result<(), Status> {
    if id.not_after > now {
        return Ok(());
    }
    Err(Status::unauthenticated(format!(
        "the certificate of node {} expired at {:?}: the node must renew it (its agent does so \
         before expiry over a new connection) or, once expired, join the swarm again with a \
         join token after deleting its certificates/ directory",
        id.node_id,
        id.not_after
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| format!("unix {}", d.as_secs()))
            .unwrap_or_default()
    )))
}

/// The header in which a manager forwarding a request to the leader names the original
/// caller: its certificate (DER, base64), or [`ANONYMOUS`] when it presented none. Honoured
/// only from managers; the forwarding manager checked the certificate against the same root.
pub const FORWARDED_CERT: &str = "swarm-forwarded-cert";
/// [`FORWARDED_CERT`] of a caller without a certificate.
pub const ANONYMOUS: &str = "anonymous";

fn forwarded_identity(
    value: &tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
) -> Result<NodeIdentity, Status> {
    use base64::Engine as _;
    let text = value.to_str().unwrap_or_default();
    if text == ANONYMOUS {
        return Err(Status::unauthenticated(
            "no client certificate: join the swarm first (a join token gets this node a certificate)",
        ));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| Status::permission_denied(format!("forwarded client certificate: {e}")))?;
    NodeIdentity::from_der(&der)
        .map_err(|e| Status::permission_denied(format!("forwarded client certificate: {e}")))
}

/// The identity in the certificate of the TLS peer itself.
fn tls_peer<T>(request: &Request<T>) -> Result<NodeIdentity, Status> {
    let certs = request.peer_certs().ok_or_else(|| {
        Status::unauthenticated(
            "no client certificate: join the swarm first (a join token gets this node a certificate)",
        )
    })?;
    let first = certs
        .first()
        .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
    NodeIdentity::from_der(first.as_ref())
        .map_err(|e| Status::permission_denied(format!("client certificate: {e}")))
}

/// The identity [`NodeAuth`] left on a request.
///
/// # Errors
/// `Internal` when the service was not wrapped in [`NodeAuth`].
pub fn authenticated<T>(request: &Request<T>) -> Result<NodeIdentity, Status> {
    request
        .extensions()
        .get::<NodeIdentity>()
        .cloned()
        .ok_or_else(|| Status::internal("the caller was not authenticated (NodeAuth missing)"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_expired_certificate_is_refused_on_every_call() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let id = NodeIdentity {
            node_id: "w1".into(),
            role: NodeRole::Worker,
            cluster_id: "c".into(),
            not_before: now - Duration::from_secs(100),
            not_after: now + Duration::from_secs(1),
        };
        assert!(unexpired(&id, now).is_ok());
        let e = unexpired(&id, now + Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(
            e.message().contains("w1 expired") && e.message().contains("renew"),
            "{}",
            e.message()
        );
    }
}
