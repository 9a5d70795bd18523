//! `swarm-agent`: joins a swarm as a worker node and runs the tasks its managers assign.
//!
//! ```text
//! swarm-agent --manager HOST:PORT [--manager HOST:PORT]... --join-token TOKEN
//!             [--state-dir DIR] [--backend wasi|oci|null|wasi,oci]
//!             [--oci-runtime runc|crun|youki|PATH] [--label K=V]... [--hostname H]
//!             [--metrics-addr ADDR] [--listen-addr ADDR] [--advertise-addr IP[:PORT]]
//! ```
//!
//! Logs go to stderr, filtered by `RUST_LOG` (default `info`). SIGINT/SIGTERM stop the agent
//! without stopping its tasks' records: a restart on the same `--state-dir` re-adopts them.
//!
//! A worker that the swarm promotes (`swarmctl node promote`) starts a manager in this
//! process, listening on `--listen-addr`; demoted, it stops it again (see
//! `swarm_manager::supervisor`). A promoted node restarted on its state dir resumes as a
//! manager.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use swarm_agent::certs::JoinToken;
use swarm_agent::exec::select::Backends;
use swarm_agent::metrics;
use swarm_agent::session::SessionLinks;
use swarm_manager::keymanager::UnlockKey;
use swarm_manager::node::{Manager, ManagerConfig, NodeState};
use swarm_manager::supervisor::{self, AgentSpec, NodeConfig};
use tokio_util::sync::CancellationToken;

/// mimalloc: glibc malloc cost ~20 % of CPU under the scale benchmark's load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Joins a swarm as a worker node and runs the tasks its managers assign.
#[derive(Debug, Parser)]
#[command(name = "swarm-agent", version)]
struct Cli {
    /// A manager to join through, as HOST:PORT. Repeat for several.
    #[arg(long = "manager", value_name = "HOST:PORT", required = true, value_parser = parse_manager)]
    managers: Vec<String>,

    /// The join token (`swarmctl join-token worker`). Needed to join; a node that already
    /// holds a certificate in its state dir reconnects without it.
    #[arg(long, env = "SWARM_JOIN_TOKEN", value_name = "TOKEN", hide_env_values = true, value_parser = parse_token)]
    join_token: Option<String>,

    /// Where the agent keeps its node id and task DB.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/swarm-agent")]
    state_dir: PathBuf,

    /// Which backends run tasks, comma-separated: wasi (WebAssembly on wasmtime), oci
    /// (containers through an OCI runtime), or null (tasks do nothing until shut down).
    #[arg(long, value_name = "NAMES", default_value = "wasi", value_parser = parse_backend)]
    backend: Backends,

    /// The OCI runtime of the oci backend: runc, crun, youki (found in PATH) or a path.
    #[arg(long, value_name = "RUNTIME", default_value = "runc")]
    oci_runtime: String,

    /// An engine label, usable in `engine.labels.KEY==VALUE` constraints. Repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    labels: Vec<(String, String)>,

    /// Hostname to report (default: this machine's).
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,

    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,

    /// Where this node's manager listens once the node is promoted.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:4242")]
    listen_addr: SocketAddr,

    /// The promoted manager's address given to others (IP or IP:PORT). Default: the listen
    /// address, with 127.0.0.1 when listening on all interfaces.
    #[arg(long, value_name = "IP[:PORT]")]
    advertise_addr: Option<String>,

    /// The unlock key of an autolocked swarm, for a promoted node's manager to restart.
    #[arg(long, env = "SWARM_UNLOCK_KEY", hide_env_values = true, value_parser = |s: &str| UnlockKey::parse(s).map_err(|e| e.to_string()))]
    unlock_key: Option<UnlockKey>,
}

fn parse_manager(s: &str) -> Result<String, String> {
    let bad = || format!("invalid manager address '{s}': expected HOST:PORT, e.g. 10.0.0.1:4242");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(bad());
    }
    Ok(s.to_string())
}

fn parse_token(s: &str) -> Result<String, String> {
    let token = s.trim();
    if token.is_empty() {
        return Err(
            "the join token is empty: get one with `swarmctl join-token worker`".to_string(),
        );
    }
    JoinToken::parse(token).map_err(|e| e.to_string())?;
    Ok(token.to_string())
}

fn parse_backend(s: &str) -> Result<Backends, String> {
    s.parse()
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("invalid label '{s}': expected KEY=VALUE")),
    }
}

fn main() -> anyhow::Result<()> {
    // `swarm-agent oci-shim DIR`: a container's shim (see exec::oci::shim), not an agent.
    swarm_agent::exec::oci::shim::exit_if_invoked();
    agent_main()
}

#[tokio::main]
async fn agent_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();

    let links = SessionLinks::new();
    let backend =
        supervisor::build_backend(&cli.backend, &cli.oci_runtime, &cli.state_dir, &links)?;
    let shutdown = CancellationToken::new();
    tokio::spawn(supervisor::stop_on_signal(shutdown.clone()));
    if let Some(addr) = cli.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("bind --metrics-addr {addr}"))?;
        tracing::info!(%addr, "serving metrics at /metrics");
        tokio::spawn(metrics::serve(listener, shutdown.clone()));
    }

    let mut manager_config = ManagerConfig::new(&cli.state_dir);
    manager_config.listen_addr = cli.listen_addr;
    manager_config.advertise_addr = cli.advertise_addr;
    manager_config.unlock_key = cli.unlock_key;
    manager_config.runs_agent = true;
    if let Some(h) = cli.hostname {
        manager_config.hostname = h;
    }
    // A promoted node resumes its manager first, so the agent reaches it.
    let manager = match NodeState::load(&cli.state_dir) {
        Ok(state) if state.is_manager() => Some(
            Manager::run(manager_config.clone())
                .await
                .context("resuming this promoted node's manager")?,
        ),
        _ => None,
    };
    let node = NodeConfig {
        manager: manager_config,
        agent: Some(AgentSpec {
            backend,
            labels: cli.labels.into_iter().collect(),
            join_token: cli.join_token.unwrap_or_default(),
        }),
        remotes: cli.managers,
        links,
    };
    supervisor::run(node, manager, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str =
        "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx";

    #[test]
    fn flags_are_validated_with_clear_errors() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("swarm-agent").chain(args.iter().copied()))
        };
        let ok = parse(&[
            "--manager",
            "127.0.0.1:4242",
            "--manager",
            "m2:4242",
            "--join-token",
            TOKEN,
            "--label",
            "zone=a",
            "--label",
            "empty=",
        ])
        .unwrap();
        assert_eq!(ok.managers, ["127.0.0.1:4242", "m2:4242"]);
        assert_eq!(
            ok.labels,
            [("zone".into(), "a".into()), ("empty".into(), String::new())]
        );
        assert_eq!(ok.backend, Backends::default());

        let err = |args: &[&str]| parse(args).unwrap_err().to_string();
        let base = ["--manager", "m:1", "--join-token", TOKEN];
        let with = |extra: &[&'static str]| -> Vec<&'static str> {
            base.iter().chain(extra.iter()).copied().collect()
        };
        assert!(
            err(&with(&["--backend", "crun"]))
                .contains("unknown backend 'crun': this build supports: wasi, oci, null")
        );
        assert!(
            err(&with(&["--label", "novalue"]))
                .contains("invalid label 'novalue': expected KEY=VALUE")
        );
        assert!(err(&with(&["--label", "=v"])).contains("invalid label"));
        assert!(err(&["--manager", "m:1", "--join-token", " "]).contains("join token is empty"));
        assert!(err(&["--manager", "m:1", "--join-token", "t"]).contains("invalid join token"));
        assert!(err(&["--manager", "nohost"]).contains("expected HOST:PORT"));
        assert!(err(&["--manager", "h:99999"]).contains("expected HOST:PORT"));
        assert!(
            parse(&["--manager", "m:1"]).is_ok(),
            "a joined node needs no token"
        );
    }
}
