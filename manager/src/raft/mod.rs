//! Raft: the consensus layer. A raft-rs `RawNode` driven by one loop ([`driver`]), its log
//! in redb ([`storage`]), store snapshots made off that loop (`snapshotter`), messages to
//! peers through a [`transport::Transport`] — between managers the [`GrpcTransport`] (mTLS
//! streams, [`chunks`] for large snapshots) into each peer's [`RaftApi`], at the addresses
//! [`PeerAddrs`] finds in the store.

pub mod chunks;
mod coalesce;
mod driver;
mod grpc_transport;
mod handle;
mod log_writer;
pub mod logger;
pub mod membership;
mod options;
pub mod peers;
mod sealer;
mod service;
mod snapshot_policy;
mod snapshotter;
pub mod storage;
pub mod transport;

pub use driver::{DriverError, start};
pub use grpc_transport::GrpcTransport;
pub use handle::{RaftHandle, RaftStatus};
pub use membership::MembershipApi;
pub use options::RaftOptions;
pub use peers::PeerAddrs;
pub use service::RaftApi;
