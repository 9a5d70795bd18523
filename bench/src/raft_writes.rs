//! `swarm-bench raft-writes --managers 3`: acknowledged writes per second through the raft
//! leader of a multi-manager swarm.
//!
//! `--clients` concurrent Control clients on the leader's control socket each create services
//! (0 replicas, so no orchestration work follows) for `--seconds`, each on its own
//! connection unless `--connections` says fewer (shared round robin, as HTTP/2 streams of
//! one connection when 1). A write counts once the leader answers it, i.e. once a majority
//! has it on disk and the leader applied it. The driver batches whatever arrives while the
//! previous batch is persisted into one fsync.
//! The run fails unless every manager's own store ends up holding each writer's last
//! acknowledged service.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use swarm_proto::{CreateServiceRequest, GetServiceRequest};
use swarmctl::client::READ_LOCAL_HEADER;

use crate::procs;

#[derive(clap::Args)]
pub struct Args {
    /// Managers in the swarm.
    #[arg(long, default_value_t = 3)]
    managers: usize,
    /// Concurrent writers.
    #[arg(long, default_value_t = 256)]
    clients: usize,
    /// Connections to the control socket the writers share, round robin (at most one a
    /// writer).
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// How long to write.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=args.clients).contains(&args.connections),
        "--connections must be between 1 and --clients ({})",
        args.clients
    );
    let dir = tempfile::tempdir()?;
    let ms = crate::cluster::managers(dir.path(), args.managers).await?;
    let leader = &ms[0];
    leader
        .ctl(&[
            "service",
            "create",
            "-d",
            "--name",
            "template",
            "--replicas",
            "0",
            "app:1",
        ])
        .await?;
    let mut client = swarmctl::client::connect(&leader.socket).await?;
    let template = client
        .get_service(GetServiceRequest {
            service_id: "template".into(),
        })
        .await?
        .into_inner()
        .service
        .and_then(|s| s.spec)
        .ok_or_else(|| anyhow::anyhow!("the template service has no spec"))?;

    let mut connections = vec![client];
    while connections.len() < args.connections {
        connections.push(swarmctl::client::connect(&leader.socket).await?);
    }

    let until = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..args.clients {
        let mut client = connections[w % connections.len()].clone();
        let template = template.clone();
        writers.push(tokio::spawn(async move {
            let (mut latencies, mut errors, mut last) = (Vec::new(), 0u64, None);
            let mut i = 0u64;
            while Instant::now() < until {
                let mut spec = template.clone();
                let name = format!("w{w}-{i}");
                if let Some(a) = spec.annotations.as_mut() {
                    a.name.clone_from(&name);
                }
                i += 1;
                let at = Instant::now();
                match client
                    .create_service(CreateServiceRequest { spec: Some(spec) })
                    .await
                {
                    Ok(_) => {
                        latencies.push(at.elapsed().as_secs_f64());
                        last = Some(name);
                    }
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors, last)
        }));
    }
    let (mut latencies, mut errors, mut lasts) = (Vec::new(), 0, Vec::new());
    for w in writers {
        let (l, e, last) = w.await?;
        latencies.extend(l);
        errors += e;
        lasts.extend(last);
    }
    let elapsed = started.elapsed().as_secs_f64();
    for m in &ms {
        replicated(&m.socket, &lasts).await?;
    }
    anyhow::ensure!(
        !latencies.is_empty(),
        "no write was acknowledged ({errors} errors)"
    );
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{}",
        json!({
            "benchmark": "raft-writes",
            "managers": args.managers,
            "clients": args.clients,
            "connections": args.connections,
            "acknowledged": latencies.len(),
            "errors": errors,
            "writes_per_s": latencies.len() as f64 / elapsed,
            "p50_ms": at(0.50) * 1e3,
            "p99_ms": at(0.99) * 1e3,
        })
    );
    Ok(())
}

/// Waits (up to 60 s) until the store of the manager serving `socket` — its own copy, not
/// the leader's — holds every service in `names`.
async fn replicated(socket: &Path, names: &[String]) -> anyhow::Result<()> {
    let client = swarmctl::client::connect(socket).await?;
    for name in names {
        procs::wait_until(
            &format!("{name} in the store behind {}", socket.display()),
            Duration::from_secs(60),
            Duration::from_millis(20),
            || {
                let mut request = tonic::Request::new(GetServiceRequest {
                    service_id: name.clone(),
                });
                request.metadata_mut().insert(
                    READ_LOCAL_HEADER,
                    tonic::metadata::MetadataValue::from_static("1"),
                );
                let mut client = client.clone();
                async move { client.get_service(request).await.ok() }
            },
        )
        .await?;
    }
    Ok(())
}
