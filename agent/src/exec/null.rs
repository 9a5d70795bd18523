//! The null backend: every task "runs" without doing anything until it is shut down.
//!
//! Used by tests and by the scale benchmark (1,000 agents × 100 tasks in one process), so a
//! controller is a few bytes and `wait()` is a pending future — no timers, no channels. Counters
//! shared by all controllers of one backend let tests check that tasks were not restarted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use swarm_proto::{NodeDescription, Platform, Resources, Task};

use super::{Backend, Controller, ExecError, ExitStatus};

/// A backend whose workloads do nothing and run until shut down.
///
/// It claims the `wasm` and `oci` runtimes so that a scheduler places any task on it.
#[derive(Clone)]
pub struct NullBackend {
    resources: Resources,
    counters: Arc<Counters>,
}

/// A snapshot of a [`NullBackend`]'s counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NullStats {
    /// Controllers made since the backend was created.
    pub controllers_created: u64,
    /// Controllers not yet dropped.
    pub controllers_live: u64,
    /// Workloads started and not shut down (by live controllers).
    pub running: u64,
}

#[derive(Default)]
struct Counters {
    created: AtomicU64,
    live: AtomicU64,
    running: AtomicU64,
}

impl NullBackend {
    /// A null backend that reports this machine's CPU count and memory.
    pub fn new() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
        Self::with_resources(Resources {
            nano_cpus: cpus * 1_000_000_000,
            memory_bytes: total_memory_bytes().unwrap_or(1 << 30),
        })
    }

    /// A null backend that reports the given resources (benchmarks simulate many node sizes).
    pub fn with_resources(resources: Resources) -> Self {
        Self {
            resources,
            counters: Arc::default(),
        }
    }

    /// Current counters, shared by every clone of this backend.
    pub fn stats(&self) -> NullStats {
        NullStats {
            controllers_created: self.counters.created.load(Ordering::Relaxed),
            controllers_live: self.counters.live.load(Ordering::Relaxed),
            running: self.counters.running.load(Ordering::Relaxed),
        }
    }
}

impl Default for NullBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl Backend for NullBackend {
    fn describe(&self) -> NodeDescription {
        NodeDescription {
            platform: Some(Platform {
                os: std::env::consts::OS.to_string(),
                architecture: std::env::consts::ARCH.to_string(),
            }),
            resources: Some(self.resources),
            runtimes: vec!["wasm".to_string(), "oci".to_string()],
            ..Default::default()
        }
    }

    fn controller(&self, _task: &Task) -> Result<Box<dyn Controller>, ExecError> {
        self.counters.created.fetch_add(1, Ordering::Relaxed);
        self.counters.live.fetch_add(1, Ordering::Relaxed);
        Ok(Box::new(NullController {
            counters: Arc::clone(&self.counters),
            running: false,
            stopped: false,
        }))
    }
}

/// A controller of nothing: `wait()` pends until `shutdown()` was called.
struct NullController {
    counters: Arc<Counters>,
    running: bool,
    stopped: bool,
}

impl NullController {
    fn set_running(&mut self, running: bool) {
        if self.running != running {
            self.running = running;
            if running {
                self.counters.running.fetch_add(1, Ordering::Relaxed);
            } else {
                self.counters.running.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

#[async_trait::async_trait]
impl Controller for NullController {
    async fn prepare(&mut self) -> Result<(), ExecError> {
        Ok(())
    }

    async fn start(&mut self) -> Result<(), ExecError> {
        self.stopped = false;
        self.set_running(true);
        Ok(())
    }

    async fn wait(&mut self) -> Result<ExitStatus, ExecError> {
        // `&mut self` means shutdown() cannot run while we wait: the task manager drops this
        // future first. So "pends until shutdown" is simply "pends unless already shut down".
        if self.stopped {
            return Ok(ExitStatus::default());
        }
        std::future::pending().await
    }

    async fn shutdown(&mut self) -> Result<(), ExecError> {
        self.stopped = true;
        self.set_running(false);
        Ok(())
    }

    async fn remove(&mut self) -> Result<(), ExecError> {
        Ok(())
    }
}

impl Drop for NullController {
    fn drop(&mut self) {
        self.set_running(false);
        self.counters.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `MemTotal` from /proc/meminfo, in bytes (Linux only; `None` elsewhere).
pub(crate) fn total_memory_bytes() -> Option<i64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn wait_pends_until_shutdown_and_counters_follow() {
        let backend = NullBackend::new();
        let mut c = backend.controller(&Task::default()).unwrap();
        c.prepare().await.unwrap();
        c.start().await.unwrap();
        assert_eq!(backend.stats().running, 1);
        let pending = tokio::time::timeout(Duration::from_millis(20), c.wait()).await;
        assert!(pending.is_err(), "wait() must pend while running");
        c.shutdown().await.unwrap();
        let exit = tokio::time::timeout(Duration::from_secs(5), c.wait()).await;
        assert_eq!(exit.unwrap().unwrap().code, 0);
        assert_eq!(
            backend.stats(),
            NullStats {
                controllers_created: 1,
                controllers_live: 1,
                running: 0
            }
        );
        drop(c);
        assert_eq!(backend.stats().controllers_live, 0);
    }

    #[test]
    fn describes_platform_and_runtimes() {
        let d = NullBackend::new().describe();
        assert_eq!(d.platform.unwrap().os, std::env::consts::OS);
        assert!(d.runtimes.contains(&"wasm".to_string()));
        assert!(d.resources.unwrap().nano_cpus >= 1_000_000_000);
    }
}
