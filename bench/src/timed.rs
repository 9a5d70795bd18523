//! A [`Backend`] wrapper that times each task from the moment the worker asks for its
//! controller (the assignment is persisted and a task manager exists) until `start()`
//! returns (the guest runs) — the agent-side start latency.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swarm_agent::exec::{Backend, Controller, ExecError, ExitStatus};
use swarm_proto::{NodeDescription, Task};

/// Wraps a backend and records one start latency per started task.
pub struct Timed {
    inner: Arc<dyn Backend>,
    samples: Arc<Mutex<Vec<Duration>>>,
}

impl Timed {
    pub fn new(inner: Arc<dyn Backend>) -> Self {
        Self {
            inner,
            samples: Arc::default(),
        }
    }

    /// Takes the samples recorded so far.
    pub fn take(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.samples.lock().unwrap())
    }
}

impl Backend for Timed {
    fn describe(&self) -> NodeDescription {
        self.inner.describe()
    }

    fn controller(&self, task: &Task) -> Result<Box<dyn Controller>, ExecError> {
        Ok(Box::new(TimedController {
            created: Instant::now(),
            inner: self.inner.controller(task)?,
            samples: Arc::clone(&self.samples),
        }))
    }
}

struct TimedController {
    created: Instant,
    inner: Box<dyn Controller>,
    samples: Arc<Mutex<Vec<Duration>>>,
}

#[async_trait::async_trait]
impl Controller for TimedController {
    async fn prepare(&mut self) -> Result<(), ExecError> {
        self.inner.prepare().await
    }

    async fn start(&mut self) -> Result<(), ExecError> {
        self.inner.start().await?;
        self.samples.lock().unwrap().push(self.created.elapsed());
        Ok(())
    }

    async fn wait(&mut self) -> Result<ExitStatus, ExecError> {
        self.inner.wait().await
    }

    async fn shutdown(&mut self) -> Result<(), ExecError> {
        self.inner.shutdown().await
    }

    async fn remove(&mut self) -> Result<(), ExecError> {
        self.inner.remove().await
    }
}

/// The `q` quantile (0..=1) of sorted samples, nearest rank.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let ms = |n| Duration::from_millis(n);
        let v: Vec<_> = (1..=100).map(ms).collect();
        assert_eq!(quantile(&v, 0.5), ms(50));
        assert_eq!(quantile(&v, 0.99), ms(99));
        assert_eq!(quantile(&v, 1.0), ms(100));
        assert_eq!(quantile(&[ms(7)], 0.99), ms(7));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
