//! A node's TLS identity in the cluster (SwarmKit's `ca.SecurityConfig`, node side).
//!
//! Every node holds, under `<state-dir>/certificates/`, the cluster's root CA certificate and
//! its own key and certificate, signed by that root: CN = node id, OU = `swarm-manager` or
//! `swarm-worker`, O = cluster id. All remote gRPC is mutual TLS with these; a manager's
//! certificate also names [`SERVER_NAME`], which is what clients verify.
//!
//! ```text
//!  no certificate ─▶ join::bootstrap(token): GetRootCACertificate (TLS, unverified)
//!                     ─▶ root digest == token's digest? ─▶ CSR + token over TLS verified by
//!                     that root ─▶ IssueNodeCertificate ─▶ saved ─▶ mTLS from now on
//!  certificate    ─▶ renewed at a random point in 50–80 % of its life (join::renew, mTLS)
//! ```
//!
//! The manager side (signing, the NodeCA service, per-RPC role checks) is
//! `swarm_manager::ca`; it shares [`NodeIdentity`] and [`JoinToken`] from here.

mod files;
mod identity;
pub mod join;
mod key_protection;
mod renewal;
pub mod renewer;
mod tls;
mod token;

pub use files::{CertError, CertFiles, NodeCerts, certs_dir};
pub use identity::{NodeIdentity, OU_MANAGER, OU_WORKER};
pub use key_protection::{KeyCodec, KeyProtection, PlainKey, is_plain_pem_key};
pub use renewal::renew_at;
pub use rustls::ClientConfig;
pub use tls::{
    KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT, SERVER_NAME, client_config_resolving, connect,
    server_config, server_verified,
};
pub use token::{JoinToken, TokenError, root_digest};
