//! `swarm-bench raft-writes --managers 3`: acknowledged writes per second through the raft
//! leader of a multi-manager swarm.
//!
//! `--clients` concurrent Control clients on the leader's control socket each create services
//! (0 replicas, so no orchestration work follows) for `--seconds`; a write counts once the
//! leader answers it, i.e. once a majority has it on disk and the leader applied it. The
//! driver batches whatever arrives while the previous batch is persisted into one fsync.

use std::time::{Duration, Instant};

use serde_json::json;
use swarm_proto::{CreateServiceRequest, GetServiceRequest};

#[derive(clap::Args)]
pub struct Args {
    /// Managers in the swarm.
    #[arg(long, default_value_t = 3)]
    managers: usize,
    /// Concurrent writers.
    #[arg(long, default_value_t = 256)]
    clients: usize,
    /// How long to write.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
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

    let until = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..args.clients {
        let mut client = client.clone();
        let template = template.clone();
        writers.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            let mut i = 0u64;
            while Instant::now() < until {
                let mut spec = template.clone();
                if let Some(a) = spec.annotations.as_mut() {
                    a.name = format!("w{w}-{i}");
                }
                i += 1;
                let at = Instant::now();
                match client
                    .create_service(CreateServiceRequest { spec: Some(spec) })
                    .await
                {
                    Ok(_) => latencies.push(at.elapsed().as_secs_f64()),
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for w in writers {
        let (l, e) = w.await?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
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
            "acknowledged": latencies.len(),
            "errors": errors,
            "writes_per_s": latencies.len() as f64 / elapsed,
            "p50_ms": at(0.50) * 1e3,
            "p99_ms": at(0.99) * 1e3,
        })
    );
    Ok(())
}
