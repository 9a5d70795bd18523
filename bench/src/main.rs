//! `swarm-bench`: benchmarks that print one JSON object as their last line.
//!
//! Build everything first (`cargo build --release --workspace --bins`): benchmarks start the
//! real `swarm-manager` and `swarmctl` binaries that sit next to this one.

mod cluster;
mod failover;
mod procs;
mod raft_writes;
mod scale;
mod start_latency;
mod timed;
mod wasm;

use clap::{Parser, Subcommand};

/// mimalloc: glibc malloc cost ~20 % of CPU under the scale benchmark's load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "swarm-bench", about = "swarm benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One manager process, N in-process agents (NullBackend, real gRPC over loopback), one
    /// service of T replicas: time from `service create` to all tasks RUNNING.
    Scale(scale::Args),
    /// Managers (`--managers`, joined with the manager token): time from SIGKILL of the
    /// leader to the first acknowledged write, over `--kills` rounds; p50 and p99.
    Failover(failover::Args),
    /// Managers (`--managers`): acknowledged writes per second through the leader with
    /// `--clients` concurrent writers.
    RaftWrites(raft_writes::Args),
    /// Agent-side start latency of idle tasks on one backend: the sleeper guest on WASI
    /// (warm cache) or busybox under runc on OCI (image unpacked): p50, p99.
    StartLatency(start_latency::Args),
    /// One-node cluster, the real sleeper guest: `service create` to all replicas RUNNING.
    Converge(wasm::ConvergeArgs),
    /// Agent RSS with N idle sleeper instances.
    Density(wasm::DensityArgs),
}

fn main() -> anyhow::Result<()> {
    // `swarm-bench oci-shim DIR`: a container's shim for start-latency's in-process agent.
    swarm_agent::exec::oci::shim::exit_if_invoked();
    bench_main()
}

#[tokio::main]
async fn bench_main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Scale(a) => scale::run(a).await,
        Command::Failover(a) => failover::run(a).await,
        Command::RaftWrites(a) => raft_writes::run(a).await,
        Command::StartLatency(a) => start_latency::run(a).await,
        Command::Converge(a) => wasm::converge(a).await,
        Command::Density(a) => wasm::density(a).await,
    }
}
