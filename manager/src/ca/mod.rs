//! Cluster identity: join tokens (and, with cluster security, the root CA).

mod token;

pub use token::{JoinToken, TokenError};
