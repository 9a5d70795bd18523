//! The cluster CA (SwarmKit's `ca` package, manager side): the root made at `init` and kept
//! in the Cluster object ([`RootCa`]), the NodeCA service that issues and renews node
//! certificates ([`NodeCaApi`]), and the per-RPC caller checks ([`NodeAuth`]). Join tokens
//! and the node side of certificates live in `swarm_agent::certs`.

mod authz;
mod root;
pub mod self_renew;
mod service;

pub use authz::{ANONYMOUS, FORWARDED_CERT, NodeAuth, authenticated, caller};
pub use root::{CaError, DEFAULT_NODE_CERT_EXPIRY, MIN_NODE_CERT_EXPIRY, RootCa, Subject};
pub use service::{NodeCaApi, node_cert_expiry, role_of_token};
pub use swarm_agent::certs::{JoinToken, TokenError};
