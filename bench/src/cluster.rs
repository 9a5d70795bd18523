//! A manager process for benchmarks: `swarm-manager init` on loopback ports in a temp dir,
//! with its metrics endpoint, and the helpers every benchmark needs around it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::procs;

/// A running `swarm-manager` child (killed on drop).
pub struct ManagerChild {
    /// Held so the process is killed when this is dropped.
    _child: tokio::process::Child,
    pub pid: u32,
    /// `127.0.0.1:PORT` agents connect to.
    pub addr: String,
    /// `127.0.0.1:PORT` serving `/metrics`.
    pub metrics: String,
    pub socket: PathBuf,
}

impl ManagerChild {
    /// `swarm-manager init --state-dir DIR/manager` plus `extra` flags (e.g. `--no-agent`);
    /// returns once the control socket answers.
    pub async fn start(dir: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        let state = dir.join("manager");
        let addr = format!("127.0.0.1:{}", free_port()?);
        let metrics = format!("127.0.0.1:{}", free_port()?);
        let log = std::fs::File::create(dir.join("manager.log"))?;
        let child = tokio::process::Command::new(procs::sibling("swarm-manager")?)
            .args(["init", "--state-dir"])
            .arg(&state)
            .args(["--listen-addr", &addr, "--metrics-addr", &metrics])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting swarm-manager")?;
        let pid = child.id().context("manager pid")?;
        let socket = state.join("control.sock");
        let m = Self {
            _child: child,
            pid,
            addr,
            metrics,
            socket,
        };
        m.worker_token().await?;
        Ok(m)
    }

    /// The worker join token (waits up to 30 s for the manager to answer).
    pub async fn worker_token(&self) -> anyhow::Result<String> {
        let token = procs::wait_until(
            "the manager to answer",
            Duration::from_secs(30),
            Duration::from_millis(50),
            || async {
                procs::swarmctl(&self.socket, &["join-token", "worker", "-q"])
                    .await
                    .ok()
            },
        )
        .await?;
        Ok(token.trim().to_string())
    }

    /// swarmctl against this manager.
    pub async fn ctl(&self, args: &[&str]) -> anyhow::Result<String> {
        procs::swarmctl(&self.socket, args).await
    }

    /// `service create -d --name NAME --replicas N TASK…`, where `task` is what follows the
    /// flags (runtime flags, artifact or image, args).
    pub async fn create_service(
        &self,
        name: &str,
        replicas: u64,
        task: &[&str],
    ) -> anyhow::Result<()> {
        let replicas = replicas.to_string();
        let flags = [
            "service",
            "create",
            "-d",
            "--name",
            name,
            "--replicas",
            &replicas,
        ];
        self.ctl(&[&flags[..], task].concat()).await?;
        Ok(())
    }

    /// Waits until the manager's store counts `n` RUNNING tasks; `on_poll` runs at each poll
    /// (e.g. to sample a process's RSS).
    pub async fn wait_running(
        &self,
        n: u64,
        timeout: Duration,
        mut on_poll: impl FnMut(),
    ) -> anyhow::Result<()> {
        let sample = "swarm_tasks{state=\"running\"}";
        procs::wait_until(
            &format!("{n} tasks RUNNING"),
            timeout,
            Duration::from_millis(20),
            || {
                on_poll();
                async move {
                    (procs::metric(&self.metrics, sample).await.ok()? as u64 >= n).then_some(())
                }
            },
        )
        .await
    }
}

/// A free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
