//! The manager's client-facing APIs.
//!
//! - [`control`]: the gRPC `Control` service (`swarmctl`'s nodes, services, tasks, cluster).
//! - [`validate`]: the spec rules every write of a spec passes first (pure, unit-tested).
//! - [`error`]: [`ApiError`] and its single mapping to `tonic::Status`.
//!
//! Handlers read one store view, decide, and write with one atomic store transaction; on a
//! follower the write fails with `UNAVAILABLE` ("this manager is not the leader").

pub mod control;
pub mod error;
mod token;
pub mod validate;

use swarm_proto::control_server::ControlServer;

pub use control::ControlApi;
pub use error::{ApiError, ValidationError};

use crate::store::Store;

/// The Control gRPC service over `store`, ready to add to a tonic `Server`.
pub fn control_service(store: Store) -> ControlServer<ControlApi> {
    ControlServer::new(ControlApi::new(store))
}

/// [`control_service`] on a manager, whose node listings show raft's live view.
pub fn manager_control_service(
    store: Store,
    raft: &crate::raft::RaftHandle,
) -> ControlServer<ControlApi> {
    ControlServer::new(ControlApi::new(store).with_raft(raft.status()))
}
