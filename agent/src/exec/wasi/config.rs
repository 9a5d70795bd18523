//! [`WasiConfig`]: what the WASI backend needs (state dir, artifact source) and the limits
//! that size its engine, with defaults fit for one agent running ~10,000 idle guests.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::artifacts::ArtifactSource;
use crate::tasklog::{DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES};

/// Configuration of a [`WasiBackend`](super::WasiBackend).
#[derive(Clone)]
pub struct WasiConfig {
    /// The agent's state dir: logs go to `logs/`, compiled artifacts to `cache/`.
    pub state_dir: PathBuf,
    /// Where artifacts come from, by digest.
    pub artifacts: Arc<dyn ArtifactSource>,
    /// Engine and per-task limits.
    pub limits: WasiLimits,
}

impl WasiConfig {
    /// A configuration with default [`WasiLimits`].
    pub fn new(state_dir: PathBuf, artifacts: Arc<dyn ArtifactSource>) -> Self {
        Self {
            state_dir,
            artifacts,
            limits: WasiLimits::default(),
        }
    }
}

/// Sizes of the engine's instance pool and defaults for tasks that set no limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasiLimits {
    /// Guests (components or modules) that may be instantiated at once. The pool reserves
    /// address space for this many; a start beyond it fails with a temporary error.
    pub max_instances: u32,
    /// The largest linear memory one guest may have (the pool's slot size). A task whose
    /// memory limit is above this is rejected.
    pub max_memory_bytes: u64,
    /// The memory cap of a task that sets no `resources.limits.memory_bytes`.
    pub default_memory_bytes: u64,
    /// How often the epoch ticker thread ticks: the longest a guest runs without yielding.
    pub epoch_tick: Duration,
    /// The accounting period of `nano_cpus` throttling (CFS's `cpu.cfs_period_us`).
    pub cpu_period: Duration,
    /// Size of one task log file before it rotates.
    pub log_max_bytes: u64,
    /// Task log files kept per task, the current one included.
    pub log_max_files: u32,
}

impl Default for WasiLimits {
    fn default() -> Self {
        Self {
            max_instances: 12_000,
            max_memory_bytes: 1 << 30,
            default_memory_bytes: 256 << 20,
            epoch_tick: Duration::from_millis(5),
            cpu_period: Duration::from_millis(100),
            log_max_bytes: DEFAULT_MAX_BYTES,
            log_max_files: DEFAULT_MAX_FILES,
        }
    }
}
