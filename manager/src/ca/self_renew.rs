//! A manager without an agent (`--no-agent`) renews its own certificate: there is no
//! dispatcher session to renew over, but a manager holds the root CA in its store, so it
//! signs a fresh key's CSR itself, at the same random point in 50–80 % of the certificate's
//! life an agent would, with the role the store gives its node. The files it writes are
//! what the manager's TLS reloads.

use std::time::{Duration, SystemTime};

use rand::SeedableRng;
use rand::rngs::StdRng;
use swarm_agent::certs::{CertFiles, NodeCerts, join, renew_at};
use swarm_proto::NodeRole;
use tokio_util::sync::CancellationToken;

use super::{RootCa, Subject, node_cert_expiry};
use crate::store::Store;

/// Wait before retrying a failed renewal.
const RETRY: Duration = Duration::from_secs(5);

/// Renews the certificate in `files` until `token` is cancelled.
pub async fn run(store: Store, files: CertFiles, token: CancellationToken) {
    let mut rng = StdRng::from_os_rng();
    loop {
        let wait = match files.load().map_err(|e| e.to_string()).and_then(|c| {
            let c = c.ok_or("no certificate")?;
            c.identity().map_err(|e| e.to_string())
        }) {
            Ok(id) => renew_at(&id, &mut rng)
                .duration_since(SystemTime::now())
                .unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read this manager's certificate");
                RETRY
            }
        };
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        match renew(&store, &files) {
            Ok(()) => tracing::info!("manager certificate renewed by this manager"),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?RETRY, "renewing this manager's certificate failed");
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    }
}

fn renew(store: &Store, files: &CertFiles) -> Result<(), String> {
    let current = files
        .load()
        .map_err(|e| e.to_string())?
        .ok_or("no certificate")?;
    let id = current.identity().map_err(|e| e.to_string())?;
    let view = store.view();
    let cluster = view.the_cluster().ok_or("the store holds no cluster yet")?;
    let root = RootCa::from_proto(cluster.root_ca.as_ref()).map_err(|e| e.to_string())?;
    let role = view
        .node(&id.node_id)
        .and_then(|n| NodeRole::try_from(n.role).ok())
        .unwrap_or(id.role);
    let (key_pem, csr) = join::new_key_and_csr().map_err(|e| e.to_string())?;
    let subject = Subject {
        node_id: &id.node_id,
        role,
        cluster_id: &cluster.id,
    };
    let cert = root
        .sign(&csr, &subject, node_cert_expiry(cluster))
        .map_err(|e| e.to_string())?;
    files
        .save(&NodeCerts {
            root_pem: current.root_pem,
            cert_pem: cert.into_bytes(),
            key_pem: key_pem.into_bytes(),
        })
        .map_err(|e| e.to_string())
}
