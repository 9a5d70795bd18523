//! The WASI backend's benchmarks, each on a one-node cluster with the real `sleeper` guest
//! (`start-latency` is in start_latency.rs, for both backends):
//!
//! - `converge --replicas N`: `swarm-manager init` with its in-process agent on the WASI
//!   backend; the clock runs from `service create` to N tasks RUNNING in the store.
//! - `density --instances N`: a manager (`--no-agent`) and a `swarm-agent` process; N idle
//!   `sleeper --quiet` replicas; the agent's RSS once all run.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster::ManagerChild;
use crate::procs;

/// The artifact name the benchmarks push the sleeper guest as.
const SLEEPER: &str = "sleeper:bench";

#[derive(clap::Args)]
pub struct ConvergeArgs {
    /// Replicas of the sleeper service.
    #[arg(long, default_value_t = 1000)]
    replicas: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

#[derive(clap::Args)]
pub struct DensityArgs {
    /// Idle sleeper instances on the one agent.
    #[arg(long, default_value_t = 10_000)]
    instances: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

/// Pushes the sleeper guest as [`SLEEPER`] unless the manager has it already.
async fn push_sleeper(manager: &ManagerChild) -> anyhow::Result<()> {
    if manager
        .ctl(&["artifact", "inspect", SLEEPER])
        .await
        .is_err()
    {
        manager
            .ctl(&["artifact", "push", swarm_guests::SLEEPER, SLEEPER])
            .await?;
    }
    Ok(())
}

/// Pushes the sleeper guest and creates `name` with `replicas` quiet sleepers.
pub async fn sleepers(manager: &ManagerChild, name: &str, replicas: u64) -> anyhow::Result<()> {
    push_sleeper(manager).await?;
    manager
        .create_service(name, replicas, &[SLEEPER, "--quiet"])
        .await
}

/// Waits until an agent holds a session with `manager`.
async fn wait_joined(manager: &ManagerChild) -> anyhow::Result<()> {
    procs::wait_until(
        "an agent to join",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            let n = procs::metric(&manager.metrics, "swarm_dispatcher_sessions ").await;
            (n.ok()? >= 1.0).then_some(())
        },
    )
    .await
}

pub async fn converge(args: ConvergeArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manager = ManagerChild::start(dir.path(), &["--backend", "wasi"]).await?;
    // The manager's own agent must have joined before the clock starts.
    wait_joined(&manager).await?;
    manager
        .ctl(&["artifact", "push", swarm_guests::SLEEPER, SLEEPER])
        .await?;
    let start = Instant::now();
    sleepers(&manager, "bench", args.replicas).await?;
    manager
        .wait_running(args.replicas, Duration::from_secs(args.timeout), || {})
        .await?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "bench": "converge",
            "backend": "wasi",
            "replicas": args.replicas,
            "seconds": (seconds * 1000.0).round() / 1000.0,
        })
    );
    Ok(())
}

pub async fn density(args: DensityArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manager = ManagerChild::start(dir.path(), &["--no-agent"]).await?;
    let log = std::fs::File::create(dir.path().join("agent.log"))?;
    let agent = tokio::process::Command::new(procs::sibling("swarm-agent")?)
        .args(["--manager", &manager.addr, "--join-token"])
        .arg(manager.worker_token().await?)
        .arg("--state-dir")
        .arg(dir.path().join("agent"))
        .args(["--backend", "wasi", "--hostname", "density"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let pid = agent.id().unwrap_or_default();
    wait_joined(&manager).await?;
    let idle_rss = procs::rss_mib(pid)?;
    let start = Instant::now();
    sleepers(&manager, "density", args.instances).await?;
    manager
        .wait_running(args.instances, Duration::from_secs(args.timeout), || {})
        .await?;
    let seconds = start.elapsed().as_secs_f64();
    let rss = procs::rss_mib(pid)?;
    println!(
        "{}",
        json!({
            "bench": "density",
            "backend": "wasi",
            "instances": args.instances,
            "agent_rss_mib": rss.round(),
            "agent_rss_before_mib": idle_rss.round(),
            "kib_per_instance": ((rss - idle_rss) * 1024.0 / args.instances as f64).round(),
            "converge_seconds": (seconds * 1000.0).round() / 1000.0,
        })
    );
    drop(agent);
    Ok(())
}
