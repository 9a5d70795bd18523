//! [`WasiBackend`]: the default backend. Owns the engine and the compiled-artifact cache
//! shared by all its controllers, and describes the node as a `wasi`/`wasm32` platform
//! with this machine's CPUs and memory.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use swarm_proto::{NodeDescription, Platform, Resources, Task};

use super::cache::ArtifactCache;
use super::config::{WasiConfig, WasiLimits};
use super::controller::WasiController;
use super::engine::WasiEngine;
use super::spec::RunSpec;
use crate::artifacts::ArtifactSource;
use crate::exec::null::total_memory_bytes;
use crate::exec::{Backend, Controller, ExecError};
use crate::tasklog::logs_dir;

/// Runs WASM tasks on wasmtime. See the module docs of `exec::wasi`.
pub struct WasiBackend {
    shared: Arc<Shared>,
    resources: Resources,
}

/// Compile and cache-load counts of one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WasiStats {
    /// Artifacts compiled (not found in memory nor on disk).
    pub compiles: u64,
    /// Artifacts loaded from the on-disk cache.
    pub cache_loads: u64,
}

/// What every controller of one backend shares.
pub(crate) struct Shared {
    pub(crate) engine: Arc<WasiEngine>,
    pub(crate) cache: Arc<ArtifactCache>,
    pub(crate) artifacts: Arc<dyn ArtifactSource>,
    pub(crate) limits: WasiLimits,
    pub(crate) logs_dir: PathBuf,
    /// Where WASM artifacts pulled from registries are kept (`crate::registry::blobs_dir`).
    pub(crate) registry_blobs: PathBuf,
}

impl WasiBackend {
    /// Builds the engine (reserving the instance pool) and starts its epoch ticker.
    ///
    /// # Errors
    /// wasmtime rejects the configuration or cannot reserve the pool's address space.
    pub fn new(config: WasiConfig) -> anyhow::Result<Self> {
        let engine = Arc::new(WasiEngine::new(&config.limits)?);
        let cache = Arc::new(ArtifactCache::new(Arc::clone(&engine), &config.state_dir));
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
        Ok(Self {
            shared: Arc::new(Shared {
                engine,
                cache,
                artifacts: config.artifacts,
                limits: config.limits,
                logs_dir: logs_dir(&config.state_dir),
                registry_blobs: crate::registry::blobs_dir(&config.state_dir),
            }),
            resources: Resources {
                nano_cpus: cpus * 1_000_000_000,
                memory_bytes: total_memory_bytes().unwrap_or(1 << 30),
            },
        })
    }

    /// Compiles and disk-cache loads so far.
    pub fn stats(&self) -> WasiStats {
        let counts = &self.shared.cache.counts;
        WasiStats {
            compiles: counts.compiles.load(Ordering::Relaxed),
            cache_loads: counts.loads.load(Ordering::Relaxed),
        }
    }
}

impl Backend for WasiBackend {
    fn describe(&self) -> NodeDescription {
        NodeDescription {
            platform: Some(Platform {
                os: "wasi".to_string(),
                architecture: "wasm32".to_string(),
            }),
            resources: Some(self.resources),
            runtimes: vec!["wasm".to_string()],
            ..Default::default()
        }
    }

    fn controller(&self, task: &Task) -> Result<Box<dyn Controller>, ExecError> {
        let spec = RunSpec::from_task(task, &self.shared.limits)?;
        Ok(Box::new(WasiController::new(
            Arc::clone(&self.shared),
            task.id.clone(),
            spec,
        )))
    }
}
