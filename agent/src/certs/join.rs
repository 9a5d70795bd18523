//! Getting and renewing a node certificate from a manager's NodeCA service.
//!
//! [`bootstrap`] is how a node joins (see the module docs of `certs`); [`renew`] replaces a
//! certificate before it expires, authenticated by the current one. The key never leaves the
//! node: the CA receives a CSR and sets the subject itself.

use std::time::{Duration, SystemTime};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rcgen::{CertificateParams, KeyPair};
use swarm_proto::node_ca_client::NodeCaClient;
use swarm_proto::{GetRootCaCertificateRequest, IssueNodeCertificateRequest};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;

use super::tls::{server_verified, unverified};
use super::{CertError, CertFiles, JoinToken, NodeCerts, connect, root_digest};
use crate::backoff::Backoff;
use crate::session::RPC_TIMEOUT;

/// Why joining or renewing failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The cluster said no, or is not the cluster the token names: retrying will not help.
    #[error("{0}")]
    Refused(String),
    /// The manager could not be reached or answered with a transient error.
    #[error("{0}")]
    Unreachable(String),
    #[error(transparent)]
    Cert(#[from] CertError),
}

impl JoinError {
    /// `true` when trying again (perhaps another manager) may succeed.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Unreachable(_))
    }
}

/// A fresh P-256 key and a CSR for it, both PEM.
///
/// # Errors
/// Key generation or CSR encoding failed.
pub fn new_key_and_csr() -> Result<(String, String), CertError> {
    let crypto = |e: rcgen::Error| CertError::Crypto(format!("new node key: {e}"));
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(crypto)?;
    let csr = CertificateParams::default()
        .serialize_request(&key)
        .map_err(crypto)?
        .pem()
        .map_err(crypto)?;
    Ok((key.serialize_pem(), csr))
}

/// Joins through the manager at `addr` with `token` and returns the node's certificates
/// (not yet saved).
///
/// # Errors
/// [`JoinError::Refused`] for a malformed or wrong token, a root CA that does not match the
/// token's digest, or any refusal by the CA; [`JoinError::Unreachable`] for network trouble.
pub async fn bootstrap(addr: &str, token: &str, timeout: Duration) -> Result<NodeCerts, JoinError> {
    let parsed = JoinToken::parse(token).map_err(|e| JoinError::Refused(e.to_string()))?;
    let channel = dial(addr, unverified(), timeout).await?;
    let root_pem = NodeCaClient::new(channel)
        .get_root_ca_certificate(GetRootCaCertificateRequest {})
        .await
        .map_err(|s| status_error(addr, "GetRootCACertificate", s))?
        .into_inner()
        .certificate;
    let digest = root_digest(&root_pem);
    if digest != parsed.digest {
        return Err(JoinError::Refused(format!(
            "the manager at {addr} does not hold the root CA this join token was made for \
             (token digest {}, manager's root CA digest {digest}); check the token and the address",
            parsed.digest
        )));
    }
    let channel = dial(addr, server_verified(&root_pem)?, timeout).await?;
    issue(channel, addr, root_pem, token).await
}

/// Renews `certs` over `channel`, a connection authenticated with them (the dispatcher
/// session's); the new certificate has the node's current role (a promotion or demotion
/// takes effect here).
///
/// # Errors
/// As [`bootstrap`]; a removed node is refused.
pub async fn renew(
    channel: Channel,
    addr: &str,
    certs: &NodeCerts,
) -> Result<NodeCerts, JoinError> {
    issue(channel, addr, certs.root_pem.clone(), "").await
}

/// Loads this node's certificates from `files`, or joins through one of `managers` with
/// `token` and saves them there. Unreachable managers are retried (with backoff, in turn)
/// until `shutdown`; a refusal ends it at once. `Ok(None)` when shut down first.
///
/// # Errors
/// A refusal, an unreadable `dir`, no token for a node without certificates, or a
/// certificate that has expired (the node must join again).
pub async fn obtain(
    files: &CertFiles,
    managers: &[String],
    token: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<NodeCerts>> {
    if let Some(certs) = files.load()? {
        let id = certs.identity()?;
        anyhow::ensure!(
            id.not_after > SystemTime::now(),
            "this node's certificate ({}) expired at {}; remove {} and join again with a join token",
            id.node_id,
            humantime_utc(id.not_after),
            files.dir().display()
        );
        return Ok(Some(certs));
    }
    anyhow::ensure!(
        !token.is_empty(),
        "this node has not joined a swarm yet: pass --join-token (from `swarmctl join-token worker` on a manager)"
    );
    let mut backoff = Backoff::session();
    let mut rng = StdRng::from_os_rng();
    for addr in managers.iter().cycle() {
        match bootstrap(addr, token, RPC_TIMEOUT).await {
            Ok(certs) => {
                files.save(&certs)?;
                tracing::info!(node_id = %certs.identity()?.node_id, manager = %addr, "joined the swarm: node certificate issued");
                return Ok(Some(certs));
            }
            Err(e) if e.is_temporary() => {
                let delay = backoff.next_delay(&mut rng);
                tracing::warn!(manager = %addr, error = %e, retry_in = ?delay, "joining failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            Err(e) => return Err(anyhow::anyhow!("joining the swarm through {addr}: {e}")),
        }
    }
    Ok(None)
}

/// `t` as RFC 3339 UTC, for messages.
fn humantime_utc(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format!("{t:?}"))
}

async fn issue(
    channel: Channel,
    addr: &str,
    root_pem: Vec<u8>,
    token: &str,
) -> Result<NodeCerts, JoinError> {
    let (key_pem, csr_pem) = new_key_and_csr()?;
    let issued = NodeCaClient::new(channel)
        .issue_node_certificate(IssueNodeCertificateRequest {
            csr: csr_pem.into_bytes(),
            token: token.to_string(),
        })
        .await
        .map_err(|s| status_error(addr, "IssueNodeCertificate", s))?
        .into_inner();
    let certs = NodeCerts {
        root_pem,
        cert_pem: issued.certificate,
        key_pem: key_pem.into_bytes(),
    };
    let identity = certs.identity()?;
    if identity.node_id != issued.node_id {
        return Err(JoinError::Refused(format!(
            "the CA issued a certificate for node {} but said node {}",
            identity.node_id, issued.node_id
        )));
    }
    Ok(certs)
}

async fn dial(
    addr: &str,
    tls: std::sync::Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<Channel, JoinError> {
    match tokio::time::timeout(timeout, connect(addr, tls, timeout)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(JoinError::Unreachable(format!(
            "connecting to manager {addr}: {}",
            crate::errors::chain(&e)
        ))),
        Err(_) => Err(JoinError::Unreachable(format!(
            "connecting to manager {addr}: no answer within {timeout:?}"
        ))),
    }
}

fn status_error(addr: &str, call: &str, s: tonic::Status) -> JoinError {
    let text = format!("{call} at {addr}: {}", s.message());
    match s.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::Unknown => {
            JoinError::Unreachable(text)
        }
        _ => JoinError::Refused(text),
    }
}
