//! Manager processes for benchmarks: `swarm-manager init` (or `join`, for more managers) on
//! loopback ports in a temp dir, with its metrics endpoint, and the helpers every benchmark
//! needs around it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::procs;

/// A running `swarm-manager` child (killed on drop).
pub struct ManagerChild {
    /// `None` only before the first launch.
    child: Option<tokio::process::Child>,
    pub pid: u32,
    /// `127.0.0.1:PORT` agents connect to.
    pub addr: String,
    /// `127.0.0.1:PORT` serving `/metrics`.
    pub metrics: String,
    pub socket: PathBuf,
    state: PathBuf,
    log: PathBuf,
    /// Flags given at start that `run` takes too.
    extra: Vec<String>,
}

impl ManagerChild {
    /// `swarm-manager init --state-dir DIR/manager` plus `extra` flags (e.g. `--no-agent`);
    /// returns once the control socket answers.
    pub async fn start(dir: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Self::spawn(dir, "manager", "init", &[], extra).await
    }

    /// `swarm-manager join` through `remote` with the manager token, in `DIR/<name>`.
    pub async fn join(
        dir: &Path,
        name: &str,
        remote: &ManagerChild,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let token = remote.ctl(&["join-token", "manager", "-q"]).await?;
        let join = [
            "--remote".to_string(),
            remote.addr.clone(),
            "--join-token".into(),
            token.trim().to_string(),
        ];
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Self::spawn(dir, name, "join", &join, extra).await
    }

    async fn spawn(
        dir: &Path,
        name: &str,
        cmd: &str,
        once: &[String],
        extra: Vec<String>,
    ) -> anyhow::Result<Self> {
        let mut m = Self {
            child: None,
            pid: 0,
            addr: format!("127.0.0.1:{}", free_port()?),
            metrics: format!("127.0.0.1:{}", free_port()?),
            socket: dir.join(name).join("control.sock"),
            state: dir.join(name),
            log: dir.join(format!("{name}.log")),
            extra,
        };
        m.launch(cmd, once).await?;
        Ok(m)
    }

    /// Starts the process for `cmd` on this manager's state dir and ports.
    async fn launch(&mut self, cmd: &str, once: &[String]) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = tokio::process::Command::new(procs::sibling("swarm-manager")?)
            .args([cmd, "--state-dir"])
            .arg(&self.state)
            .args(["--listen-addr", &self.addr, "--metrics-addr", &self.metrics])
            .args(once)
            .args(&self.extra)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting swarm-manager")?;
        self.pid = child.id().context("manager pid")?;
        self.child = Some(child);
        self.worker_token().await?;
        Ok(())
    }

    /// SIGKILL, without waiting for anything.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        let child = self.child.as_mut().context("the manager never started")?;
        child.start_kill().context("killing swarm-manager")
    }

    /// `swarm-manager run` again on the same state dir and ports (after [`Self::kill9`]).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = child.wait().await;
        }
        self.launch("run", &[]).await
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

/// The smallest valid core module: services on managers without agents need an artifact.
const EMPTY_MODULE: &[u8] = b"\0asm\x01\0\0\0";

/// `managers` managers (`--no-agent`): the first by init, the others joined through it;
/// returns once all of them vote.
pub async fn managers(dir: &std::path::Path, managers: usize) -> anyhow::Result<Vec<ManagerChild>> {
    anyhow::ensure!(managers >= 1, "--managers must be at least 1");
    let mut ms = vec![ManagerChild::start(dir, &["--no-agent"]).await?];
    for i in 1..managers {
        let m = ManagerChild::join(dir, &format!("m{i}"), &ms[0], &["--no-agent"]).await?;
        ms.push(m);
    }
    // Joiners are raft learners until they catch up; a benchmark that kills the leader
    // needs them voting first.
    procs::wait_until(
        &format!("{managers} managers voting"),
        Duration::from_secs(120),
        Duration::from_millis(50),
        || async {
            let nodes = ms[0].ctl(&["node", "ls"]).await.ok()?;
            let voting = nodes
                .lines()
                .filter(|l| l.contains("Leader") || l.contains("Reachable"))
                .count();
            (voting == managers && !nodes.contains("Catching up")).then_some(())
        },
    )
    .await?;
    let module = dir.join("empty.wasm");
    std::fs::write(&module, EMPTY_MODULE)?;
    ms[0]
        .ctl(&["artifact", "push", &module.display().to_string(), "app:1"])
        .await?;
    Ok(ms)
}

/// A free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
