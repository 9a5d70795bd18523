//! A [`Backend`] wrapper that times each task from the moment the worker asks for its
//! controller (the assignment is persisted and a task manager exists) until `start()`
//! returns (the workload runs) — the agent-side start latency.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swarm_agent::exec::{Backend, Controller, ExecError, ExitStatus};
use swarm_proto::{NodeDescription, Task};

/// Wraps a backend and records one [`Sample`] per started task.
pub struct Timed {
    inner: Arc<dyn Backend>,
    samples: Arc<Mutex<Vec<Sample>>>,
}

/// One task's start.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// The worker asked for the task's controller.
    pub created: Instant,
    /// `start()` returned.
    pub started: Instant,
}

impl Sample {
    /// The task's start latency.
    pub fn latency(&self) -> Duration {
        self.started - self.created
    }
}

/// From the first controller made to the last start returned: how long the agent took to
/// start the whole burst.
pub fn span(samples: &[Sample]) -> Duration {
    let first = samples.iter().map(|s| s.created).min();
    let last = samples.iter().map(|s| s.started).max();
    match (first, last) {
        (Some(first), Some(last)) => last - first,
        _ => Duration::ZERO,
    }
}

impl Timed {
    pub fn new(inner: Arc<dyn Backend>) -> Self {
        Self {
            inner,
            samples: Arc::default(),
        }
    }

    /// Takes the samples recorded so far.
    pub fn take(&self) -> Vec<Sample> {
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
    samples: Arc<Mutex<Vec<Sample>>>,
}

#[async_trait::async_trait]
impl Controller for TimedController {
    async fn prepare(&mut self) -> Result<(), ExecError> {
        self.inner.prepare().await
    }

    async fn start(&mut self) -> Result<(), ExecError> {
        self.inner.start().await?;
        self.samples.lock().unwrap().push(Sample {
            created: self.created,
            started: Instant::now(),
        });
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

    #[test]
    fn the_span_runs_from_the_first_creation_to_the_last_start() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let samples = [
            Sample {
                created: at(5),
                started: at(40),
            },
            Sample {
                created: at(0),
                started: at(10),
            },
        ];
        assert_eq!(span(&samples), Duration::from_millis(40));
        assert_eq!(samples[0].latency(), Duration::from_millis(35));
        assert_eq!(span(&[]), Duration::ZERO);
    }
}
