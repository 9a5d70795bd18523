//! The WASI backend (the default): runs `wasi:cli/command` components and core wasip1
//! modules on one shared wasmtime [`Engine`](wasmtime::Engine).
//!
//! ```text
//!  WasiBackend ── controller(task) ──▶ WasiController (one per task)
//!    │ engine.rs   one async Engine, pooling allocator, ONE epoch ticker thread,
//!    │             the p2 (component) and p1 (module) linkers, built once
//!    │ cache.rs    digest ─▶ pre-linked InstancePre, compiled once, kept in memory and
//!    │             serialized to <state-dir>/cache/<engine-hash>/<hex>.cwasm (+ .sha256)
//!    └ prepare():  spec.rs validates the task; the artifact comes from the managers by
//!                  digest (crate::artifacts) or from an OCI registry (crate::registry);
//!                  cache.rs compiles/loads it
//!      start():    guest.rs builds the Store (host.rs: WASI ctx, limits.rs memory limiter,
//!                  cpu.rs epoch callback), instantiates, spawns the run on its own tokio task
//!      wait():     watches that task (cancel-safe); outcome.rs turns the end into an
//!                  ExitStatus or an error ("wasm trap: …", "memory limit of 64 MiB exceeded")
//!      shutdown(): aborts the guest's task (WASM has no signals; see controller.rs)
//!      remove():   deletes the task's log files (output.rs wrote them via tasklog::TaskLogWriter)
//! ```

mod backend;
mod cache;
mod config;
mod controller;
mod cpu;
mod engine;
mod guest;
mod host;
mod limits;
mod outcome;
mod output;
mod spec;

pub use backend::{WasiBackend, WasiStats};
pub use config::{WasiConfig, WasiLimits};

#[cfg(test)]
mod tests;
