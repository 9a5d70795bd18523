//! [`OciController`]: one task's container through prepare → start → wait, shutdown,
//! remove. Everything it knows lives on disk in the task dir, so a controller made after an
//! agent restart picks up where the last one was:
//!
//! - `prepare`: image (layout read or registry pull, digests verified, unpacked once per
//!   image) → bundle
//!   (rootfs copy + config.json). Skipped when the bundle exists.
//! - `start`: nothing if the container already ran or runs (exit.json, or the runtime knows
//!   it, or its shim is alive); else writes shim.json, starts the shim detached and polls
//!   `runtime state` (or exit.json, for a job faster than the poll) under a deadline.
//! - `wait`: polls exit.json (cancel-safe: nothing is held between polls); a shim that died
//!   without writing it fails the task with the shim's own log.
//! - `shutdown`: `kill TERM`, then `kill KILL` after the grace period, then `delete`.
//! - `remove`: stops what is left, deletes the task dir and the task's logs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::backend::Shared;
use super::bundle;
use super::layout::{LayoutImage, read_image};
use super::reference::ImageRef;
use super::shim::{self, CONFIG_FILE, LOG_FILE, PID_FILE, ShimConfig};
use super::spec::OciTaskSpec;
use super::unpack::remove_any;
use crate::exec::{Controller, ExecError, ExitStatus};
use crate::registry::{self, Want};
use crate::tasklog::remove_task_logs;

/// How often `start`, `wait` and `shutdown` look at the container.
const POLL: Duration = Duration::from_millis(20);

/// How long a container may take to end after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// The controller of one container task.
pub(crate) struct OciController {
    shared: Arc<Shared>,
    task_id: String,
    spec: OciTaskSpec,
    dir: PathBuf,
}

impl OciController {
    pub(crate) fn new(shared: Arc<Shared>, task_id: String, spec: OciTaskSpec) -> Self {
        let dir = shared.tasks_dir.join(&task_id);
        Self {
            shared,
            task_id,
            spec,
            dir,
        }
    }

    fn bundle_ready(&self) -> bool {
        self.dir.join("bundle").join("config.json").is_file()
    }

    /// True once the container was started by some agent process (it may have ended).
    async fn started(&self) -> Result<bool, ExecError> {
        Ok(shim::read_exit(&self.dir).is_some()
            || shim::shim_alive(&self.dir)
            || self.shared.runc.state(&self.task_id).await?.is_some())
    }

    fn shim_log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join(LOG_FILE)).unwrap_or_default();
        let last = text.lines().rev().find(|l| !l.trim().is_empty());
        last.unwrap_or("(no output)").to_string()
    }

    fn spawn_shim(&self) -> Result<(), ExecError> {
        let io = |what: &str, e| ExecError::Io {
            context: format!("{what} for task {}", self.task_id),
            source: e,
        };
        let config = ShimConfig {
            task_id: self.task_id.clone(),
            argv: self
                .shared
                .runc
                .run_argv(&self.dir.join("bundle"), &self.task_id),
            logs_dir: self.shared.logs_dir.clone(),
            log_max_bytes: self.shared.config.log_max_bytes,
            log_max_files: self.shared.config.log_max_files,
        };
        let json = serde_json::to_vec(&config).expect("shim config serializes");
        std::fs::write(self.dir.join(CONFIG_FILE), json).map_err(|e| io("write shim.json", e))?;
        let log =
            std::fs::File::create(self.dir.join(LOG_FILE)).map_err(|e| io("create shim.log", e))?;
        let log2 = log.try_clone().map_err(|e| io("create shim.log", e))?;
        let shim = &self.shared.config.shim;
        let mut child = tokio::process::Command::new(&shim.program)
            .args(&shim.args)
            .arg(&self.dir)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Its own process group: a Ctrl-C or a signal to the agent's group does not
            // reach the shim, and it outlives the agent.
            .process_group(0)
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| io(&format!("start the shim {}", shim.program.display()), e))?;
        let pid = child.id().unwrap_or(0);
        std::fs::write(self.dir.join(PID_FILE), pid.to_string())
            .map_err(|e| io("write shim.pid", e))?;
        // Reap it when it exits (while this agent lives; otherwise init does).
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(())
    }

    /// SIGKILL, then waits up to 10 s for the container to end.
    ///
    /// # Errors
    /// The kill fails, or the container still runs after the wait (temporary: retried).
    async fn kill_and_wait(&self) -> Result<(), ExecError> {
        self.shared.runc.kill(&self.task_id, "KILL").await?;
        if self.ended_by(Instant::now() + KILL_WAIT).await {
            return Ok(());
        }
        Err(ExecError::Temporary(format!(
            "container {} still runs {} s after SIGKILL",
            self.task_id,
            KILL_WAIT.as_secs()
        )))
    }

    /// Polls until the container ended (exit.json) or `deadline`; true if it ended.
    async fn ended_by(&self, deadline: Instant) -> bool {
        loop {
            if shim::read_exit(&self.dir).is_some() || !shim::shim_alive(&self.dir) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn stop(&mut self) -> Result<(), ExecError> {
        if !self.started().await? {
            return Ok(());
        }
        let runc = &self.shared.runc;
        if shim::read_exit(&self.dir).is_none() {
            runc.kill(&self.task_id, "TERM").await?;
            let grace = Instant::now() + self.shared.config.stop_grace;
            if !self.ended_by(grace).await {
                tracing::info!(task = %self.task_id, "container ignored SIGTERM; sending SIGKILL");
                self.kill_and_wait().await?;
            }
        }
        runc.delete(&self.task_id).await
    }
}

#[async_trait::async_trait]
impl Controller for OciController {
    async fn prepare(&mut self) -> Result<(), ExecError> {
        if self.bundle_ready() {
            return Ok(());
        }
        for m in &self.spec.mounts {
            if !m.source.exists() {
                return Err(ExecError::NotFound(format!(
                    "mount source {} does not exist on this node",
                    m.source.display()
                )));
            }
        }
        let image = match &self.spec.image {
            ImageRef::Layout { dir, tag } => {
                let (dir, tag) = (dir.clone(), tag.clone());
                let layouts = self.shared.layouts_dir.clone();
                tokio::task::spawn_blocking(move || {
                    let dir = if dir.is_file() {
                        super::layout_tar::unpacked(&dir, &layouts)?
                    } else {
                        dir
                    };
                    read_image(&dir, tag.as_deref())
                })
                .await
                .map_err(|e| ExecError::Runtime(format!("reading the image panicked: {e}")))??
            }
            ImageRef::Registry(r) => {
                let pulled = registry::pull(r, Want::Image, &self.shared.blobs_dir).await?;
                LayoutImage::pulled(r, pulled)?
            }
        };
        let unpacked = self.shared.images.unpacked(image).await?;
        let (dir, spec) = (self.dir.clone(), self.spec.clone());
        let hostname: String = self.task_id.chars().take(12).collect();
        tokio::task::spawn_blocking(move || bundle::build(&dir, &hostname, &spec, &unpacked))
            .await
            .map_err(|e| ExecError::Runtime(format!("building the bundle panicked: {e}")))?
    }

    async fn start(&mut self) -> Result<(), ExecError> {
        if self.started().await? {
            return Ok(());
        }
        if !self.bundle_ready() {
            self.prepare().await?;
        }
        self.spawn_shim()?;
        let deadline = Instant::now() + self.shared.config.start_timeout;
        loop {
            if shim::read_exit(&self.dir).is_some() {
                return Ok(());
            }
            if let Some(_status) = self.shared.runc.state(&self.task_id).await? {
                return Ok(());
            }
            if !shim::shim_alive(&self.dir) && shim::read_exit(&self.dir).is_none() {
                return Err(ExecError::Runtime(format!(
                    "the container's shim exited without starting it: {}",
                    self.shim_log()
                )));
            }
            if Instant::now() >= deadline {
                return Err(ExecError::Runtime(format!(
                    "the container did not start within {:?}",
                    self.shared.config.start_timeout
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn wait(&mut self) -> Result<ExitStatus, ExecError> {
        loop {
            if let Some(exit) = shim::read_exit(&self.dir) {
                return Ok(ExitStatus {
                    code: exit.code,
                    message: if exit.code == 0 {
                        String::new()
                    } else {
                        exit.message
                    },
                });
            }
            if !shim::shim_alive(&self.dir) {
                // The shim may have written exit.json between the two checks.
                if let Some(exit) = shim::read_exit(&self.dir) {
                    return Ok(ExitStatus {
                        code: exit.code,
                        message: exit.message,
                    });
                }
                return Err(ExecError::Workload(format!(
                    "the container is not running and left no exit code (shim: {})",
                    self.shim_log()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn shutdown(&mut self) -> Result<(), ExecError> {
        self.stop().await
    }

    async fn remove(&mut self) -> Result<(), ExecError> {
        if self.started().await? && shim::read_exit(&self.dir).is_none() {
            self.kill_and_wait().await?;
        }
        self.shared.runc.delete(&self.task_id).await?;
        remove_any(&self.dir)?;
        remove_task_logs(&self.shared.logs_dir, &self.task_id).map_err(|e| ExecError::Io {
            context: format!("remove logs of task {}", self.task_id),
            source: e,
        })
    }
}
