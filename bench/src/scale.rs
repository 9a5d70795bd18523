//! `swarm-bench scale --nodes N --tasks T`.
//!
//! The manager runs as its own process (`swarm-manager init --no-agent`) so that its RSS is
//! its own; the N agents are the real agent library with the NullBackend, in this process,
//! each with its own task DB and its own gRPC session over loopback. The clock runs from
//! `swarmctl service create` to the manager's `swarm_tasks{state="running"}` gauge
//! reaching T.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio_util::sync::CancellationToken;

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
    let state = dir.path().join("manager");
    let port = free_port()?;
    let metrics_port = free_port()?;
    let metrics = format!("127.0.0.1:{metrics_port}");
    let log = std::fs::File::create(dir.path().join("manager.log"))?;
    let mut manager = tokio::process::Command::new(procs::sibling("swarm-manager")?)
        .args(["init", "--no-agent", "--state-dir"])
        .arg(&state)
        .args([
            "--listen-addr",
            &format!("127.0.0.1:{port}"),
            "--metrics-addr",
            &metrics,
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting swarm-manager")?;
    let pid = manager.id().context("manager pid")?;
    let socket = state.join("control.sock");
    let token = procs::wait_until(
        "the manager to answer",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || {
            let socket = socket.clone();
            async move {
                procs::swarmctl(&socket, &["join-token", "worker", "-q"])
                    .await
                    .ok()
            }
        },
    )
    .await?;
    let token = token.trim().to_string();

    let shutdown = CancellationToken::new();
    eprintln!("starting {} agents", args.nodes);
    for i in 0..args.nodes {
        let config = swarm_agent::AgentConfig {
            managers: vec![format!("127.0.0.1:{port}")],
            join_token: token.clone(),
            state_dir: dir.path().join(format!("agent-{i}")),
            node_id: None,
            hostname: format!("node-{i:04}"),
            labels: Default::default(),
            backend: Arc::new(swarm_agent::exec::NullBackend::default()),
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
            let (m, s) = (metrics.clone(), ready.clone());
            async move { (procs::metric(&m, &s).await.ok()? as usize >= args.nodes).then_some(()) }
        },
    )
    .await?;

    eprintln!("creating a service of {} replicas", args.tasks);
    let start = Instant::now();
    procs::swarmctl(
        &socket,
        &[
            "service",
            "create",
            "-d",
            "--name",
            "bench",
            "--replicas",
            &args.tasks.to_string(),
            "bench:1",
        ],
    )
    .await?;
    let running = "swarm_tasks{state=\"running\"}".to_string();
    let mut peak_rss = procs::rss_mib(pid)?;
    procs::wait_until(
        "all tasks RUNNING",
        Duration::from_secs(args.timeout),
        Duration::from_millis(50),
        || {
            let (m, s) = (metrics.clone(), running.clone());
            peak_rss = peak_rss.max(procs::rss_mib(pid).unwrap_or(0.0));
            async move { (procs::metric(&m, &s).await.ok()? as u64 >= args.tasks).then_some(()) }
        },
    )
    .await?;
    let seconds = start.elapsed().as_secs_f64();
    let rss = procs::rss_mib(pid)?.max(peak_rss);
    shutdown.cancel();
    let _ = manager.kill().await;
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

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
