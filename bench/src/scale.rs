//! `swarm-bench scale --nodes N --tasks T`.
//!
//! The manager runs as its own process (`swarm-manager init --no-agent`) so that its RSS is
//! its own; the N agents are the real agent library with the NullBackend, in this process,
//! each with its own task DB and its own gRPC session over loopback. The clock runs from
//! `swarmctl service create` to the manager's `swarm_tasks{state="running"}` gauge
//! reaching T.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cluster::ManagerChild;
use crate::procs;

#[derive(clap::Args)]
pub struct Args {
    /// Simulated agents.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Replicas of the one service.
    #[arg(long, default_value_t = 10_000)]
    tasks: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manager = ManagerChild::start(dir.path(), &["--no-agent"]).await?;
    let token = manager.worker_token().await?;

    let shutdown = CancellationToken::new();
    eprintln!("starting {} agents", args.nodes);
    for i in 0..args.nodes {
        let config = swarm_agent::AgentConfig {
            managers: vec![manager.addr.clone()],
            join_token: token.clone(),
            state_dir: dir.path().join(format!("agent-{i}")),
            key_protection: Default::default(),
            hostname: format!("node-{i:04}"),
            labels: Default::default(),
            backend: Arc::new(swarm_agent::exec::NullBackend::default()),
            links: swarm_agent::session::SessionLinks::new(),
        };
        let t = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = swarm_agent::run(config, t).await {
                eprintln!("agent {i}: {e:#}");
            }
        });
    }
    let ready = "swarm_dispatcher_sessions ".to_string();
    procs::wait_until(
        "all agents to hold a session",
        Duration::from_secs(120),
        Duration::from_millis(100),
        || {
            let (m, s) = (manager.metrics.clone(), ready.clone());
            async move { (procs::metric(&m, &s).await.ok()? as usize >= args.nodes).then_some(()) }
        },
    )
    .await?;

    eprintln!("creating a service of {} replicas", args.tasks);
    let start = Instant::now();
    manager
        .ctl(&[
            "service",
            "create",
            "-d",
            "--name",
            "bench",
            "--replicas",
            &args.tasks.to_string(),
            // A registry reference needs no `artifact push` (the null agents run anything).
            "registry.test/bench:1",
        ])
        .await?;
    let pid = manager.pid;
    let mut peak_rss = procs::rss_mib(pid)?;
    manager
        .wait_running(args.tasks, Duration::from_secs(args.timeout), || {
            peak_rss = peak_rss.max(procs::rss_mib(pid).unwrap_or(0.0));
        })
        .await?;
    let seconds = start.elapsed().as_secs_f64();
    let rss = procs::rss_mib(pid)?.max(peak_rss);
    shutdown.cancel();
    drop(manager);
    println!(
        "{}",
        json!({
            "bench": "scale",
            "nodes": args.nodes,
            "tasks": args.tasks,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "tasks_per_s": (args.tasks as f64 / seconds).round(),
            "manager_rss_mib": rss.round(),
        })
    );
    Ok(())
}
