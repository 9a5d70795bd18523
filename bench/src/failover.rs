//! `swarm-bench failover --managers 3 --kills 20`: time from SIGKILL of the raft leader to
//! the first acknowledged write on the managers that are left.
//!
//! Each round finds the leader (`swarm_raft_leader` in each manager's metrics), kills it, and writes (`swarmctl
//! service create -d`, each attempt through the next survivor) until one is acknowledged;
//! the killed manager is then restarted (`swarm-manager run`) and the cluster is given a
//! leader again before the next round. The figure includes swarmctl's process start
//! (a few ms), so it is an upper bound of the write path's own failover time.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use crate::cluster::ManagerChild;
use crate::procs;

#[derive(clap::Args)]
pub struct Args {
    /// Managers in the cluster (3 or 5).
    #[arg(long, default_value_t = 3)]
    managers: usize,
    /// Leader kills to measure.
    #[arg(long, default_value_t = 20)]
    kills: usize,
}

/// The index in `ms` of the one manager whose metrics say it leads (`skip` is down).
async fn leader(ms: &[ManagerChild], skip: Option<usize>) -> Option<usize> {
    let mut leaders = Vec::new();
    for (i, m) in ms.iter().enumerate().filter(|(i, _)| Some(*i) != skip) {
        if procs::metric(&m.metrics, "swarm_raft_leader").await.ok()? == 1.0 {
            leaders.push(i);
        }
    }
    (leaders.len() == 1).then(|| leaders[0])
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut ms = crate::cluster::managers(dir.path(), args.managers).await?;
    let mut samples: Vec<f64> = Vec::new();
    for round in 0..args.kills {
        let victim = procs::wait_until(
            "a leader",
            Duration::from_secs(30),
            Duration::from_millis(50),
            || leader(&ms, None),
        )
        .await?;
        ms[victim].kill9()?;
        let killed = Instant::now();
        let survivors: Vec<usize> = (0..ms.len()).filter(|i| *i != victim).collect();
        let mut attempt = 0;
        let mut last_error = String::new();
        let took = loop {
            if killed.elapsed() > Duration::from_secs(60) {
                bail!(
                    "round {round}: no write acknowledged within 60 s of the kill (last error: {last_error})"
                );
            }
            let m = &ms[survivors[attempt % survivors.len()]];
            attempt += 1;
            let name = format!("f{round}-{attempt}");
            let args = ["service", "create", "-d", "--name", &name, "app:1"];
            match tokio::time::timeout(Duration::from_secs(2), m.ctl(&args)).await {
                Ok(Ok(_)) => break killed.elapsed(),
                Ok(Err(e)) => last_error = format!("{e:#}"),
                Err(_) => last_error = "swarmctl took more than 2 s".into(),
            }
        };
        let next = procs::wait_until(
            "a new leader",
            Duration::from_secs(30),
            Duration::from_millis(20),
            || leader(&ms, Some(victim)),
        )
        .await?;
        eprintln!(
            "round {round}: killed leader {victim}; write acknowledged {took:?} later; new leader {next}"
        );
        samples.push(took.as_secs_f64());
        ms[victim]
            .restart()
            .await
            .with_context(|| format!("round {round}: restarting the killed manager"))?;
    }
    samples.sort_by(f64::total_cmp);
    let pick =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    println!(
        "{}",
        json!({
            "benchmark": "failover",
            "managers": args.managers,
            "kills": args.kills,
            "p50_s": pick(0.50),
            "p99_s": pick(0.99),
            "max_s": samples.last(),
            "min_s": samples.first(),
        })
    );
    Ok(())
}
