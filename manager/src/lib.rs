//! swarm manager: the raft-replicated control plane.
//!
//! A manager keeps the cluster state in a raft-replicated in-memory [`store`]; the raft
//! leader runs the components that decide what runs where ([`allocator`],
//! [`orchestrator`], [`scheduler`], dispatcher) and serves the Control API. See `node.rs`
//! for what starts when.

pub mod allocator;
pub mod api;
pub mod artifacts;
pub mod ca;
pub mod dispatcher;
pub mod keymanager;
pub mod logbroker;
pub mod metrics;
mod metrics_server;
pub mod node;
pub mod orchestrator;
pub mod proxy;
pub mod raft;
pub mod role_manager;
pub mod scheduler;
pub mod store;
pub mod supervisor;
