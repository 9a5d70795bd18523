//! The executor seam: a [`Backend`] makes one [`Controller`] per task, and the [`driver`]
//! decides which controller call moves the task to its next state.
//!
//! ```text
//!   worker ──Task──▶ taskmanager ──next_step(state, desired)──▶ Step
//!                        │                                         │
//!                        └──── Controller::{prepare,start,wait,shutdown,remove} ◀┘
//! ```
//!
//! Backends live in sub-modules: [`null`] (does nothing; tests and scale benchmarks),
//! [`wasi`] (WASM on wasmtime, the default) and [`oci`] (containers through runc/crun/youki,
//! one detached shim per container). An agent may enable several (`--backend wasi,oci`):
//! [`by_runtime::ByRuntime`] then sends each task to the one that runs its runtime and
//! describes the node with all their runtimes. [`select`] builds what `--backend` names.
//! The worker, task DB and reporter never know which backend runs a task; one shared test
//! suite (`agent/tests/controller_suite.rs`) runs against every backend.

pub mod by_runtime;
pub mod driver;
pub mod error;
pub mod null;
pub mod oci;
pub mod select;
pub mod wasi;

pub use error::ExecError;
pub use null::{NullBackend, NullStats};

/// Runs tasks of one kind of runtime. The worker never knows which.
///
/// Rules for implementations:
/// - [`describe`](Backend::describe) is cheap and side-effect free; it is called once per
///   dispatcher session. The agent fills in `hostname` and `engine_labels` itself.
/// - [`controller`](Backend::controller) does no slow I/O: it validates the task and builds its
///   controller. An error with [`ExecError::is_fatal`] rejects the task (REJECTED before STARTING,
///   FAILED after); a temporary one is retried.
/// - A controller may be built for a task whose workload was started by an earlier agent process
///   (the agent re-adopts tasks from its DB on restart); it must then re-attach rather than
///   start a second copy.
pub trait Backend: Send + Sync + 'static {
    /// Resources, platform and runtimes this node offers.
    fn describe(&self) -> swarm_proto::NodeDescription;
    /// A controller for `task`. Called once per task manager (again after an agent restart).
    fn controller(&self, task: &swarm_proto::Task) -> Result<Box<dyn Controller>, ExecError>;
}

/// Drives one task's workload. The task manager owns it and calls one method at a time.
///
/// Every method must be idempotent: after an agent restart the driver resumes from the last
/// persisted state, so `prepare` or `start` may run again on a workload that already got that
/// far. Only [`wait`](Controller::wait) is cancelled in normal operation (when the desired state
/// changes); when the agent itself stops, any in-flight call may be dropped and is repeated
/// after the restart. Errors that are not [`ExecError::is_fatal`] are retried with backoff.
#[async_trait::async_trait]
pub trait Controller: Send {
    /// Gets everything ready to start (fetch/compile the artifact, build the bundle).
    async fn prepare(&mut self) -> Result<(), ExecError>;
    /// Starts the workload; returns once it runs.
    async fn start(&mut self) -> Result<(), ExecError>;
    /// Waits for the workload to exit. Must be cancel-safe: dropping the future leaves the workload running.
    async fn wait(&mut self) -> Result<ExitStatus, ExecError>;
    /// Stops the workload: graceful, then terminate after the grace period. Must succeed when
    /// nothing was ever started.
    async fn shutdown(&mut self) -> Result<(), ExecError>;
    /// Releases everything the task left behind (bundle, scratch files). Called once the task is
    /// terminal and no longer assigned.
    async fn remove(&mut self) -> Result<(), ExecError>;
}

/// How a workload ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExitStatus {
    /// Exit code; 0 is success.
    pub code: i32,
    /// Extra detail for the user, e.g. a trap message ("wasm trap: out of bounds memory access").
    pub message: String,
}
