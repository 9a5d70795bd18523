//! swarm's wire and storage types, generated from `proto/swarm/*.proto`.
//!
//! The same messages are the object model of the manager's store (as SwarmKit's `api`
//! package is), the payload of raft entries, and what the Control and Dispatcher gRPC
//! services carry. Helpers that every crate needs (state names, ids) live in [`ext`].

#[allow(clippy::all, clippy::pedantic, missing_docs)]
mod generated {
    tonic::include_proto!("swarm");
}

pub use generated::*;

pub mod ext;
pub mod json;
