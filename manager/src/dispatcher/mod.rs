//! The dispatcher: where agents hold their sessions.
//!
//! ```text
//! agent ── Session ──────▶ node registered READY, session id, manager list, heartbeat period
//!       ── Heartbeat ────▶ deadline = now + 3 × period; missed → node DOWN (monitor)
//!       ── Assignments ──▶ COMPLETE set of the node's tasks, then INCREMENTAL changes,
//!                          from a watch of this node's events only
//!       ── UpdateTaskStatus ▶ validated, group-committed: one raft write per round
//! ```
//! It only serves while this manager leads: [`Dispatcher::activate`] is called on gaining
//! leadership and the returned guard's token is cancelled on losing it; in between, every RPC
//! answers `Unavailable` so agents try another manager.

mod assignments;
mod heartbeat;
mod service;
mod session_info;
mod sessions;
mod status_batcher;

pub use service::Dispatcher;
pub use sessions::DispatcherConfig;
