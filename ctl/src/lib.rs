//! swarmctl: the operator CLI of a swarm cluster.
//!
//! It talks to a manager's Control service over the manager's local control socket
//! (`<state-dir>/control.sock`, see [`client`]). Flags and output follow the Docker CLI
//! (`docker service …`, `docker node …`) wherever the concept exists (DESIGN §7).
//!
//! ```text
//!  main.rs ── clap ──▶ Cli ──▶ run()
//!                              ├─ artifact.rs  artifact push|ls|inspect|rm
//!                              ├─ cluster.rs   cluster inspect, join-token
//!                              ├─ node.rs      node ls|inspect|update|rm|promote|demote
//!                              ├─ service.rs   service create|ls|inspect|ps|scale|update|rollback|rm
//!                              │    ├─ service/table.rs     the `service ls` table
//!                              │    ├─ spec.rs + parse.rs   flags (spec/flags.rs) → ServiceSpec (pure)
//!                              │    └─ progress.rs          convergence wait
//!                              │         └─ progress/converge.rs  the decision (pure)
//!                              ├─ task.rs      task ls|inspect (+ the task table)
//!                              └─ logs.rs      service logs, task logs (Logs stream)
//!  output.rs (tables, JSON, times) · pretty.rs (inspect --pretty) · error.rs (exit codes)
//! ```
//!
//! The library exists so that end-to-end tests can reuse [`client::connect`] and the
//! pure pieces; the `swarmctl` binary is a thin `main`.

pub mod artifact;
pub mod client;
pub mod cluster;
pub mod error;
pub mod logs;
pub mod node;
pub mod output;
pub mod parse;
pub mod pretty;
pub mod progress;
pub mod service;
pub mod spec;
pub mod task;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use error::CtlError;

/// The command line.
#[derive(Parser, Debug)]
#[command(
    name = "swarmctl",
    version,
    about = "Control a swarm cluster (services, nodes, tasks) through a manager",
    propagate_version = true
)]
pub struct Cli {
    /// The manager's control socket
    #[arg(
        long,
        global = true,
        env = "SWARM_SOCKET",
        default_value = client::DEFAULT_SOCKET,
        value_name = "PATH"
    )]
    pub socket: PathBuf,
    /// Answer reads from this manager's own copy of the store (may lag the leader; still
    /// answers when the managers have lost quorum) instead of asking the leader
    #[arg(long, global = true)]
    pub local_read: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level command groups.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Manage artifacts (WebAssembly files in the managers' artifact store)
    #[command(subcommand)]
    Artifact(artifact::ArtifactCmd),
    /// Manage the cluster
    #[command(subcommand)]
    Cluster(cluster::ClusterCmd),
    /// Manage join tokens (same as `cluster join-token`)
    JoinToken(cluster::JoinTokenArgs),
    /// Manage nodes
    #[command(subcommand)]
    Node(node::NodeCmd),
    /// Manage services
    #[command(subcommand)]
    Service(Box<service::ServiceCmd>),
    /// Inspect tasks
    #[command(subcommand)]
    Task(task::TaskCmd),
}

/// Runs a parsed command line.
///
/// # Errors
/// Whatever the command failed with; [`CtlError::exit_code`] says how to exit.
pub async fn run(cli: Cli) -> Result<(), CtlError> {
    let socket = cli.socket.as_path();
    client::set_read_local(cli.local_read);
    match cli.command {
        Command::Artifact(cmd) => artifact::run(cmd, socket).await,
        Command::Cluster(cmd) => cluster::run(cmd, socket).await,
        Command::JoinToken(a) => cluster::run(cluster::ClusterCmd::JoinToken(a), socket).await,
        Command::Node(cmd) => node::run(cmd, socket).await,
        Command::Service(cmd) => service::run(*cmd, socket).await,
        Command::Task(cmd) => task::run(cmd, socket).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn socket_defaults_and_flag() {
        let cli = Cli::try_parse_from(["swarmctl", "service", "ls"]).unwrap();
        // SWARM_SOCKET may be set in the environment running the tests.
        if std::env::var_os("SWARM_SOCKET").is_none() {
            assert_eq!(cli.socket, PathBuf::from("/var/lib/swarm/control.sock"));
        }
        let cli =
            Cli::try_parse_from(["swarmctl", "node", "ls", "--socket", "/tmp/x.sock"]).unwrap();
        assert_eq!(cli.socket, PathBuf::from("/tmp/x.sock"));
    }
}
