//! The status reporter (SwarmKit's `statusReporter`): an actor that keeps only the latest
//! status per task, sends queued ones in batches through a [`StatusSink`] (the current
//! dispatcher session), and retries with jittered backoff until they are acknowledged.
//!
//! ```text
//!  task managers ──report(id, status)──▶ ┌──────────┐ ──batch──▶ StatusSink (UpdateTaskStatus)
//!  session ──connect(sink)/disconnect──▶ │ Reporter │ ◀──ack / error (retry after backoff)
//!  worker ──forget(id)──────────────────▶ └──────────┘
//! ```
//!
//! One batch is in flight at a time; statuses recorded meanwhile coalesce and go in the next
//! one. `connect` (a new session) re-queues the latest status of every known task, so
//! statuses lost with a dead manager are reported again.

mod queue;
mod sink;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rand::SeedableRng;
use rand::rngs::StdRng;
use swarm_proto::TaskStatus;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

pub use queue::{Sent, StatusQueue};
pub use sink::{ReportError, StatusSink};

use crate::backoff::Backoff;
use crate::errors::chain;
use crate::metrics;

/// Largest batch sent in one `UpdateTaskStatus` call.
pub const MAX_BATCH: usize = 1_000;

/// Starts reporter actors.
pub struct Reporter;

/// Talks to a running reporter. Cheap to clone; the reporter stops when every handle is
/// dropped. No method blocks.
#[derive(Clone)]
pub struct ReporterHandle {
    tx: mpsc::UnboundedSender<Command>,
}

enum Command {
    Report(String, TaskStatus),
    Forget(String),
    Connect(Arc<dyn StatusSink>),
    Disconnect,
    Unacked(oneshot::Sender<usize>),
}

impl Reporter {
    /// Spawns a reporter with no sink: statuses queue until [`ReporterHandle::connect`].
    pub fn spawn() -> ReporterHandle {
        Self::spawn_with_rng(StdRng::from_os_rng())
    }

    /// Like [`Reporter::spawn`], with the RNG that jitters retry delays.
    pub fn spawn_with_rng(rng: StdRng) -> ReporterHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let actor = Actor {
            queue: StatusQueue::default(),
            sink: None,
            in_flight: None,
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
            retry_at: None,
            rng,
            gauge: 0,
        };
        tokio::spawn(actor.run(rx));
        ReporterHandle { tx }
    }
}

impl ReporterHandle {
    /// Records a task's latest status (superseding any not yet sent).
    pub fn report(&self, id: &str, status: TaskStatus) {
        let _ = self.tx.send(Command::Report(id.to_string(), status));
    }

    /// The task is gone: stop re-reporting it once its last status is acknowledged.
    pub fn forget(&self, id: &str) {
        let _ = self.tx.send(Command::Forget(id.to_string()));
    }

    /// A new session: send through `sink` from now on, starting with every known status.
    pub fn connect(&self, sink: Arc<dyn StatusSink>) {
        let _ = self.tx.send(Command::Connect(sink));
    }

    /// The session ended: hold statuses until the next [`connect`](Self::connect).
    pub fn disconnect(&self) {
        let _ = self.tx.send(Command::Disconnect);
    }

    /// Statuses not yet acknowledged (0 if the reporter has stopped).
    pub async fn unacked(&self) -> usize {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Command::Unacked(tx));
        rx.await.unwrap_or(0)
    }
}

type SendResult = Result<(), ReportError>;

struct Actor {
    queue: StatusQueue,
    sink: Option<Arc<dyn StatusSink>>,
    in_flight: Option<(Sent, BoxFuture<'static, SendResult>)>,
    backoff: Backoff,
    retry_at: Option<Instant>,
    rng: StdRng,
    /// What this reporter currently adds to the process-wide pending gauge.
    gauge: i64,
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        loop {
            self.start_send();
            self.update_gauge();
            let retry_at = self.retry_at;
            let in_flight = self.in_flight.as_mut().map(|(_, f)| f);
            tokio::select! {
                biased;
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
                result = async { in_flight.expect("guarded").await }, if in_flight.is_some() => {
                    let (sent, _) = self.in_flight.take().expect("in flight");
                    self.finish(sent, result);
                }
                _ = tokio::time::sleep_until(retry_at.unwrap_or_else(Instant::now)),
                    if retry_at.is_some() => {
                    self.retry_at = None;
                }
            }
        }
        metrics::REPORTER_PENDING.sub(self.gauge);
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Report(id, status) => self.queue.record(&id, status),
            Command::Forget(id) => self.queue.forget(&id),
            Command::Connect(sink) => {
                self.abandon_in_flight();
                self.sink = Some(sink);
                self.queue.resync();
                self.backoff.reset();
                self.retry_at = None;
            }
            Command::Disconnect => {
                self.abandon_in_flight();
                self.sink = None;
                self.retry_at = None;
            }
            Command::Unacked(reply) => {
                let _ = reply.send(self.queue.unacked_len());
            }
        }
    }

    /// Starts a send if there is a sink, something queued, nothing in flight and no backoff.
    fn start_send(&mut self) {
        if self.in_flight.is_some() || self.retry_at.is_some() || self.queue.queued_len() == 0 {
            return;
        }
        let Some(sink) = self.sink.clone() else {
            return;
        };
        let (updates, sent) = self.queue.take_batch(MAX_BATCH);
        self.in_flight = Some((sent, Box::pin(async move { sink.send(updates).await })));
    }

    fn finish(&mut self, sent: Sent, result: SendResult) {
        match result {
            Ok(()) => {
                metrics::STATUS_UPDATES_SENT.inc_by(sent.len() as u64);
                self.queue.acked(sent);
                self.backoff.reset();
            }
            Err(e) => {
                self.queue.failed(sent);
                let delay = self.backoff.next_delay(&mut self.rng);
                tracing::warn!(error = %chain(&e), retry_in = ?delay, "task status report failed");
                self.retry_at = Some(Instant::now() + delay);
            }
        }
    }

    /// Drops a send to a sink that is going away; its statuses are queued again.
    fn abandon_in_flight(&mut self) {
        if let Some((sent, _)) = self.in_flight.take() {
            self.queue.failed(sent);
        }
    }

    fn update_gauge(&mut self) {
        let now = self.queue.queued_len() as i64;
        if now != self.gauge {
            metrics::REPORTER_PENDING.add(now - self.gauge);
            self.gauge = now;
        }
    }
}

#[cfg(test)]
mod tests;
