//! Keeps this node's certificate fresh: sleeps until [`renew_at`] — or until the swarm gives
//! the node another role than its certificate holds (a promotion or demotion, see
//! [`Roles`](crate::session::Roles)) — then renews over the current dispatcher session's
//! connection (authenticated by the certificate being replaced), saves the new files and
//! publishes them for the next connection and the node's certified role. A failed
//! renewal is retried every [`RETRY`] (sooner never helps: the session is down or the node
//! was removed, which the session reports loudly).

use std::time::{Duration, SystemTime};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{CertFiles, NodeCerts, join, renew_at};
use crate::session::{Roles, SessionLinks};

/// Wait between failed renewal attempts.
const RETRY: Duration = Duration::from_secs(5);

/// Renews until `shutdown`. `certs` holds the current certificates and receives new ones.
pub async fn run(
    files: CertFiles,
    certs: watch::Sender<NodeCerts>,
    links: SessionLinks,
    shutdown: CancellationToken,
) {
    let mut rng = StdRng::from_os_rng();
    let mut roles = links.roles();
    let mut last_role_renewal = None;
    loop {
        let current = certs.borrow().clone();
        let Ok(identity) = current.identity() else {
            tracing::error!("the node certificate does not parse; not renewing it");
            return;
        };
        links.set_certified(identity.role);
        let at = renew_at(&identity, &mut rng);
        let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
        tracing::debug!(node_id = %identity.node_id, in_secs = wait.as_secs(), "next certificate renewal");
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            r = role_change(&mut roles, last_role_renewal) => {
                tracing::info!(from = ?r.certified, to = ?r.assigned, "the swarm changed this node's role: renewing its certificate");
                last_role_renewal = Some(Instant::now());
            }
        }
        loop {
            let attempt = match links.wait(RETRY).await {
                None => Err("no dispatcher session is up".to_string()),
                Some(link) => join::renew(link.channel, "the session's manager", &current)
                    .await
                    .map_err(|e| e.to_string()),
            };
            match attempt {
                Ok(new) => {
                    if let Err(e) = files.save(&new) {
                        tracing::error!(error = %e, "saving the renewed certificate failed");
                    }
                    let id = new.identity().map(|i| i.node_id).unwrap_or_default();
                    tracing::info!(node_id = %id, "node certificate renewed");
                    certs.send_replace(new);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?RETRY, "renewing the node certificate failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        }
    }
}

/// Resolves once the assigned and certified roles differ, but not sooner than [`RETRY`]
/// after the last renewal it caused (a CA that keeps issuing the old role is not hammered).
async fn role_change(roles: &mut watch::Receiver<Roles>, last: Option<Instant>) -> Roles {
    if let Some(last) = last {
        tokio::time::sleep_until(last + RETRY).await;
    }
    let roles = roles.wait_for(Roles::needs_renewal).await.map(|r| *r);
    match roles {
        Ok(r) => r,
        // The links outlive the renewer; without them there is nothing to wait for.
        Err(_) => std::future::pending().await,
    }
}
