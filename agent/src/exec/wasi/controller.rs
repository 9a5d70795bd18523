//! [`WasiController`]: one task's guest through prepare → start → wait, shutdown, remove.
//!
//! - `prepare` validates mounts and gets the compiled artifact (compiling it at most once per
//!   digest for the whole backend): by digest from the managers' artifact store, or pulled
//!   from an OCI registry (`crate::registry`), keyed by the digest of its `.wasm` layer.
//! - `start` instantiates and spawns the guest on its own tokio task; it is then running.
//! - `wait` only watches that task (awaiting `&mut JoinHandle` is cancel-safe), and keeps the
//!   outcome so a repeated `wait` returns it again.
//! - `shutdown`: WASM has no signals, so a guest cannot be asked to stop. We cancel its
//!   future at once (well within any grace period): it is dropped at its next yield point,
//!   which the epoch ticker guarantees within one tick even for a guest in a tight loop.
//!   Partial output lines are flushed to the log.
//! - `remove` deletes the task's log files; the guest has no other scratch state.
//!
//! A guest cannot outlive the agent process, so a controller made after an agent restart for
//! a task that was RUNNING finds nothing to re-attach to: `wait` then fails the task (its
//! restart policy decides what comes next). Dropping the controller aborts its guest, so an
//! in-process agent that stops never leaves guests running behind it.

use std::sync::Arc;

use super::backend::Shared;
use super::cache::Compiled;
use super::guest::{self, GuestHandle};
use super::output::TaskOutput;
use super::spec::{ArtifactRef, RunSpec};
use crate::exec::{Controller, ExecError, ExitStatus};
use crate::registry;
use crate::tasklog::{TaskLogWriter, remove_task_logs};

/// Where the guest is.
enum Guest {
    NotStarted,
    Running(GuestHandle),
    /// Ended; the error text is kept as a [`ExecError::Workload`].
    Exited(Result<ExitStatus, String>),
    Stopped,
}

/// The controller of one WASM task.
pub(crate) struct WasiController {
    shared: Arc<Shared>,
    task_id: String,
    spec: RunSpec,
    compiled: Option<Arc<Compiled>>,
    output: TaskOutput,
    guest: Guest,
}

impl WasiController {
    pub(crate) fn new(shared: Arc<Shared>, task_id: String, spec: RunSpec) -> Self {
        let writer = TaskLogWriter::new(
            &shared.logs_dir,
            &task_id,
            shared.limits.log_max_bytes,
            shared.limits.log_max_files,
        );
        let compiled = match &spec.artifact {
            ArtifactRef::Pinned(digest) => shared.cache.cached(digest),
            // The tag may point elsewhere by now: prepare resolves it.
            ArtifactRef::Registry(_) => None,
        };
        Self {
            shared,
            task_id,
            spec,
            compiled,
            output: TaskOutput::new(writer),
            guest: Guest::NotStarted,
        }
    }

    async fn stop(&mut self) {
        if let Guest::Running(handle) = &mut self.guest {
            handle.abort();
            // Resolves as soon as the guest's future is dropped (at its next yield).
            let _ = handle.await;
            self.output.finish();
            self.guest = Guest::Stopped;
        }
    }
}

#[async_trait::async_trait]
impl Controller for WasiController {
    async fn prepare(&mut self) -> Result<(), ExecError> {
        guest::check_mounts(&self.spec)?;
        if self.compiled.is_none() {
            let (digest, path) = match &self.spec.artifact {
                ArtifactRef::Pinned(digest) => {
                    (digest.clone(), self.shared.artifacts.path(digest).await?)
                }
                ArtifactRef::Registry(reference) => {
                    let layer = registry::pull_wasm(reference, &self.shared.registry_blobs).await?;
                    (layer.digest, layer.path)
                }
            };
            self.compiled = Some(self.shared.cache.get(&digest, path).await?);
        }
        Ok(())
    }

    async fn start(&mut self) -> Result<(), ExecError> {
        if matches!(self.guest, Guest::Running(_) | Guest::Exited(_)) {
            return Ok(());
        }
        if self.compiled.is_none() {
            self.prepare().await?;
        }
        let compiled = self.compiled.as_ref().expect("prepared above");
        let handle = guest::start(
            &self.shared.engine,
            &self.shared.limits,
            compiled,
            &self.spec,
            &self.output,
        )
        .await?;
        self.guest = Guest::Running(handle);
        Ok(())
    }

    async fn wait(&mut self) -> Result<ExitStatus, ExecError> {
        let ended = match &mut self.guest {
            Guest::NotStarted => {
                return Err(ExecError::Workload(
                    "the guest is not running (it ended with a previous agent process)".into(),
                ));
            }
            Guest::Stopped => {
                return Ok(ExitStatus {
                    code: 0,
                    message: "shut down".into(),
                });
            }
            Guest::Exited(ended) => ended.clone(),
            Guest::Running(handle) => {
                let ended = match handle.await {
                    Ok(result) => result.map_err(|e| e.to_string()),
                    Err(e) if e.is_panic() => Err(format!("the guest's task panicked: {e}")),
                    Err(e) => Err(format!("the guest's task was cancelled: {e}")),
                };
                self.guest = Guest::Exited(ended.clone());
                ended
            }
        };
        ended.map_err(ExecError::Workload)
    }

    async fn shutdown(&mut self) -> Result<(), ExecError> {
        self.stop().await;
        Ok(())
    }

    async fn remove(&mut self) -> Result<(), ExecError> {
        self.stop().await;
        remove_task_logs(&self.shared.logs_dir, &self.task_id).map_err(|e| ExecError::Io {
            context: format!("remove logs of task {}", self.task_id),
            source: e,
        })
    }
}

impl Drop for WasiController {
    fn drop(&mut self) {
        if let Guest::Running(handle) = &self.guest {
            handle.abort();
        }
    }
}
