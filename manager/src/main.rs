//! `swarm-manager`: runs a manager node (`init` a new swarm, or `run` an existing one).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use swarm_agent::exec::select::Backends;
use swarm_agent::session::SessionLinks;
use swarm_manager::keymanager::UnlockKey;
use swarm_manager::node::{Manager, ManagerConfig, NodeState};
use swarm_manager::supervisor::{self, AgentSpec, NodeConfig};
use tokio_util::sync::CancellationToken;

/// mimalloc: glibc malloc cost ~20 % of CPU under the scale benchmark's load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "swarm-manager", version, about = "A swarm manager node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new swarm with this node as its first manager.
    Init(InitArgs),
    /// Join an existing swarm as another manager (`swarmctl join-token manager`).
    Join(JoinArgs),
    /// Start the manager whose state is in --state-dir.
    Run(CommonArgs),
}

#[derive(Args)]
struct JoinArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// A manager of the swarm to join (HOST:PORT).
    #[arg(long)]
    remote: String,
    /// The swarm's manager join token (`swarmctl join-token manager`).
    #[arg(long, env = "SWARM_JOIN_TOKEN", hide_env_values = true)]
    join_token: String,
}

#[derive(Args)]
struct CommonArgs {
    /// Where the manager keeps its state.
    #[arg(long, default_value = "/var/lib/swarm")]
    state_dir: PathBuf,
    /// Address for agents and other managers.
    #[arg(long, default_value = "0.0.0.0:4242")]
    listen_addr: SocketAddr,
    /// Address advertised to agents (IP or IP:PORT). Default: the listen address, with
    /// 127.0.0.1 when listening on all interfaces.
    #[arg(long)]
    advertise_addr: Option<String>,
    /// Do not run tasks on this node (no in-process agent).
    #[arg(long)]
    no_agent: bool,
    /// The in-process agent's backends, comma-separated: wasi (WebAssembly on wasmtime), oci
    /// (containers through an OCI runtime) or null (tasks do nothing until shut down).
    #[arg(long, default_value = "wasi", value_parser = |s: &str| s.parse::<Backends>())]
    backend: Backends,
    /// The OCI runtime of the oci backend: runc, crun, youki (found in PATH) or a path.
    #[arg(long, default_value = "runc")]
    oci_runtime: String,
    /// Serve Prometheus metrics on this address (GET /metrics).
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// Host name recorded for this node.
    #[arg(long)]
    hostname: Option<String>,
    /// The unlock key of an autolocked swarm (`swarmctl cluster unlock-key` shows it).
    #[arg(long, env = "SWARM_UNLOCK_KEY", hide_env_values = true, value_parser = |s: &str| UnlockKey::parse(s).map_err(|e| e.to_string()))]
    unlock_key: Option<UnlockKey>,
}

#[derive(Args)]
struct InitArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Re-initialize from existing state as a one-member cluster, keeping its data.
    #[arg(long)]
    force_new_cluster: bool,
    /// Dispatcher heartbeat period (Docker's `swarm init --dispatcher-heartbeat`).
    #[arg(long, default_value = "5s", value_parser = parse_heartbeat)]
    dispatcher_heartbeat: Duration,
    /// Task history retention limit (Docker's `swarm init --task-history-limit`).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i64).range(0..))]
    task_history_limit: i64,
    /// Validity of node certificates (Docker's `swarm init --cert-expiry`); renewed at a
    /// random point in 50–80 % of it.
    #[arg(long, default_value = "2160h", value_parser = parse_cert_expiry)]
    cert_expiry: Duration,
    /// Lock the managers' raft data with a new unlock key (Docker's `swarm init --autolock`):
    /// a restarted manager then needs `--unlock-key`.
    #[arg(long)]
    autolock: bool,
}

fn parse_cert_expiry(s: &str) -> Result<Duration, String> {
    let d = swarm_proto::ext::parse_duration(s)?;
    let min = swarm_manager::ca::MIN_NODE_CERT_EXPIRY;
    if d < min {
        return Err(format!(
            "{s} is too short: certificates must be valid for at least {}s",
            min.as_secs()
        ));
    }
    Ok(d)
}

fn parse_heartbeat(s: &str) -> Result<Duration, String> {
    let d = swarm_proto::ext::parse_duration(s)?;
    if d < Duration::from_millis(100) {
        return Err(format!(
            "{s} is too short: the heartbeat period must be at least 100ms"
        ));
    }
    Ok(d)
}

fn config(args: &CommonArgs) -> ManagerConfig {
    let mut c = ManagerConfig::new(&args.state_dir);
    c.listen_addr = args.listen_addr;
    c.advertise_addr = args.advertise_addr.clone();
    c.metrics_addr = args.metrics_addr;
    c.unlock_key = args.unlock_key.clone();
    c.runs_agent = !args.no_agent;
    if let Some(h) = &args.hostname {
        c.hostname = h.clone();
    }
    c
}

/// The node around the manager: its agent (unless --no-agent), with the backends built.
fn node_config(
    args: &CommonArgs,
    manager: ManagerConfig,
    remotes: Vec<String>,
) -> anyhow::Result<NodeConfig> {
    let links = SessionLinks::new();
    let agent = if args.no_agent {
        None
    } else {
        Some(AgentSpec {
            backend: supervisor::build_backend(
                &args.backend,
                &args.oci_runtime,
                &args.state_dir,
                &links,
            )?,
            labels: Default::default(),
            join_token: String::new(),
        })
    };
    Ok(NodeConfig {
        manager,
        agent,
        remotes,
        links,
    })
}

fn main() -> anyhow::Result<()> {
    // `swarm-manager oci-shim DIR`: a container's shim for the in-process agent.
    swarm_agent::exec::oci::shim::exit_if_invoked();
    // mimalloc asks for transparent huge pages on its arenas (MADV_HUGEPAGE), and the kernel
    // then zeroes 2 MiB at a time as the store grows and memory is recycled: ~10 % of the
    // leader's CPU under `swarm-bench raft-writes`, which gains 9–20 % without them
    // (BENCHMARKS.md). This is what MIMALLOC_ALLOW_THP=0 does; shims turn them back on, so
    // containers keep the host's policy.
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("swarm-manager: transparent huge pages stay on: {e}");
    }
    manager_main()
}

#[tokio::main]
async fn manager_main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,raft=warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let (args, manager) = match cli.command {
        Command::Init(args) => {
            let mut c = config(&args.common);
            c.force_new_cluster = args.force_new_cluster;
            c.heartbeat_period = args.dispatcher_heartbeat;
            c.task_history_limit = args.task_history_limit;
            c.node_cert_expiry = args.cert_expiry;
            c.autolock = args.autolock;
            let m = Manager::init(c).await.context("swarm-manager init")?;
            print_welcome(&m);
            (args.common, Some(m))
        }
        Command::Join(args) => {
            let m = Manager::join(config(&args.common), &args.remote, &args.join_token)
                .await
                .context("swarm-manager join")?;
            println!(
                "This node ({}) joined the swarm as a manager (listening on {}).\n\nControl socket: {}",
                m.state.node_id,
                m.addr,
                m.control_socket.display()
            );
            (args.common, Some(m))
        }
        Command::Run(args) => {
            let state = NodeState::load(&args.state_dir).context("swarm-manager run")?;
            if state.is_manager() {
                let m = Manager::run(config(&args))
                    .await
                    .context("swarm-manager run")?;
                (args, Some(m))
            } else if args.no_agent {
                anyhow::bail!(
                    "swarm-manager run: this node was demoted to a worker and --no-agent leaves it \
                     nothing to run; start it without --no-agent, or promote it first"
                );
            } else {
                tracing::info!(managers = ?state.remotes, "this node was demoted: running it as a worker");
                (args, None)
            }
        }
    };
    let remotes = NodeState::load(&args.state_dir)
        .map(|s| s.remotes)
        .unwrap_or_default();
    let node = node_config(&args, config(&args), remotes)?;
    let shutdown = CancellationToken::new();
    tokio::spawn(supervisor::stop_on_signal(shutdown.clone()));
    supervisor::run(node, manager, shutdown).await
}

fn print_welcome(m: &Manager) {
    let cluster = m.store.view().the_cluster().cloned();
    let token = cluster
        .as_ref()
        .and_then(|c| c.join_tokens.clone())
        .map(|t| t.worker)
        .unwrap_or_default();
    let unlock_key = cluster.map(|c| c.unlock_key.clone()).unwrap_or_default();
    println!(
        "Swarm initialized: current node ({}) is now a manager.\n\nTo add a worker to this swarm, run the following command:\n\n    swarm-agent --manager {} --join-token {}\n\nControl socket: {} (swarmctl --socket {} …)",
        m.state.node_id,
        m.addr,
        token,
        m.control_socket.display(),
        m.control_socket.display()
    );
    if !unlock_key.is_empty() {
        println!(
            "\nThis swarm is autolocked. To start a manager after it stops, run\n\n    swarm-manager run --state-dir DIR --unlock-key {unlock_key}\n\nStore this key somewhere safe (a password manager): without it a stopped manager \
             cannot read its raft data."
        );
    }
}
