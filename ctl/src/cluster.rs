//! `swarmctl cluster inspect|unlock-key` and `swarmctl [cluster] join-token worker|manager`.

use std::io::Write;
use std::path::Path;

use clap::{Args, Subcommand, ValueEnum};
use swarm_proto::{
    CaConfig, Cluster, EncryptionConfig, GetUnlockKeyRequest, ListClustersRequest,
    ListNodesRequest, Node, UpdateClusterRequest,
};

use crate::client::{self, Client};
use crate::error::CtlError;
use crate::output::{InspectFormat, write_json};
use crate::pretty;

/// `swarmctl cluster …`
#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// Display the cluster object (JSON unless --pretty)
    Inspect(InspectArgs),
    /// Manage join tokens
    JoinToken(JoinTokenArgs),
    /// Show (or rotate) the unlock key of an autolocked swarm
    UnlockKey(UnlockKeyArgs),
    /// Change cluster settings (Docker's `swarm update`)
    Update(UpdateArgs),
}

#[derive(Args, Debug)]
pub struct UnlockKeyArgs {
    /// Only display the key
    #[arg(short, long)]
    pub quiet: bool,
    /// Replace the key (managers rewrap their raft data key; the old key stops working)
    #[arg(long)]
    pub rotate: bool,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Lock managers' raft data with an unlock key (true), or stop doing so (false)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", value_parser = clap::value_parser!(bool))]
    pub autolock: Option<bool>,
    /// Validity of node certificates issued from now on, e.g. 2160h
    #[arg(long, value_name = "DURATION", value_parser = |s: &str| crate::parse::duration(s).map_err(|r| r.to_string()))]
    pub cert_expiry: Option<std::time::Duration>,
    /// Raft log entries between snapshots of the managers' store (Docker's
    /// `--snapshot-interval`; the fewest: a manager also waits until the log since its last
    /// snapshot is as large as that snapshot, so a big store is not re-encoded every few
    /// thousand writes)
    #[arg(long, value_name = "N")]
    pub snapshot_interval: Option<u64>,
    /// Raft log entries kept behind each snapshot for managers that lag (a manager further
    /// behind receives the snapshot)
    #[arg(long, value_name = "N")]
    pub log_entries_for_slow_followers: Option<u64>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Output format (JSON, the default)
    #[arg(long, value_enum, conflicts_with = "pretty")]
    pub format: Option<InspectFormat>,
    /// Human-readable output
    #[arg(long)]
    pub pretty: bool,
}

/// Which join token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    Worker,
    Manager,
}

#[derive(Args, Debug)]
pub struct JoinTokenArgs {
    /// Which token
    #[arg(value_enum)]
    pub role: Role,
    /// Rotate the token (nodes already joined are unaffected)
    #[arg(long)]
    pub rotate: bool,
    /// Only display the token
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs a `cluster` subcommand.
pub async fn run(cmd: ClusterCmd, socket: &Path) -> Result<(), CtlError> {
    let mut c = client::connect(socket).await?;
    let mut out = std::io::stdout().lock();
    match cmd {
        ClusterCmd::Inspect(a) => {
            let cluster = get(&mut c).await?;
            if a.pretty {
                write!(out, "{}", pretty::cluster(&cluster))?;
            } else {
                write_json(&mut out, &cluster)?;
            }
            Ok(())
        }
        ClusterCmd::JoinToken(a) => join_token(&mut c, &mut out, &a).await,
        ClusterCmd::Update(a) => update(&mut c, &mut out, &a).await,
        ClusterCmd::UnlockKey(a) => {
            if a.rotate {
                let cluster = get(&mut c).await?;
                c.update_cluster(UpdateClusterRequest {
                    cluster_id: cluster.id.clone(),
                    cluster_version: cluster.meta.map_or(0, |m| m.version),
                    spec: cluster.spec.clone(),
                    rotate_unlock_key: true,
                    ..Default::default()
                })
                .await?;
                if !a.quiet {
                    writeln!(out, "Successfully rotated manager unlock key.\n")?;
                }
            }
            let key = c
                .get_unlock_key(GetUnlockKeyRequest {})
                .await?
                .into_inner()
                .unlock_key;
            if a.quiet {
                writeln!(out, "{key}")?;
            } else {
                unlock_instructions(&mut out, &key)?;
            }
            Ok(())
        }
    }
}

/// `cluster update`: changes the given settings, keeps the rest.
async fn update(c: &mut Client, out: &mut dyn Write, a: &UpdateArgs) -> Result<(), CtlError> {
    let cluster = get(c).await?;
    let mut spec = cluster.spec.clone().unwrap_or_default();
    if let Some(on) = a.autolock {
        spec.encryption = Some(EncryptionConfig {
            auto_lock_managers: on,
        });
    }
    if let Some(d) = a.cert_expiry {
        spec.ca_config = Some(CaConfig {
            node_cert_expiry_secs: d.as_secs(),
        });
    }
    if a.snapshot_interval.is_some() || a.log_entries_for_slow_followers.is_some() {
        let raft = spec.raft.get_or_insert_with(Default::default);
        if let Some(n) = a.snapshot_interval {
            raft.snapshot_interval = n;
        }
        if let Some(n) = a.log_entries_for_slow_followers {
            raft.log_entries_for_slow_followers = n;
        }
    }
    c.update_cluster(UpdateClusterRequest {
        cluster_id: cluster.id.clone(),
        cluster_version: cluster.meta.map_or(0, |m| m.version),
        spec: Some(spec),
        ..Default::default()
    })
    .await?;
    writeln!(out, "Swarm updated.")?;
    if a.autolock == Some(true) {
        let key = c
            .get_unlock_key(GetUnlockKeyRequest {})
            .await?
            .into_inner()
            .unlock_key;
        unlock_instructions(out, &key)?;
    }
    Ok(())
}

fn unlock_instructions(out: &mut dyn Write, key: &str) -> std::io::Result<()> {
    writeln!(
        out,
        "To unlock a swarm manager after it stops, run:\n\n    swarm-manager run --state-dir DIR --unlock-key {key}\n\nStore this key somewhere safe: a stopped manager cannot read its raft data without it."
    )
}

/// The cluster (a manager serves exactly one).
async fn get(c: &mut Client) -> Result<Cluster, CtlError> {
    c.list_clusters(ListClustersRequest {})
        .await?
        .into_inner()
        .clusters
        .into_iter()
        .next()
        .ok_or_else(|| CtlError::Failed("the manager has no cluster yet".into()))
}

async fn join_token(
    c: &mut Client,
    out: &mut dyn Write,
    a: &JoinTokenArgs,
) -> Result<(), CtlError> {
    let mut cluster = get(c).await?;
    if a.rotate {
        cluster = c
            .update_cluster(UpdateClusterRequest {
                cluster_id: cluster.id.clone(),
                cluster_version: cluster.meta.map_or(0, |m| m.version),
                spec: cluster.spec.clone(),
                rotate_worker_token: a.role == Role::Worker,
                rotate_manager_token: a.role == Role::Manager,
                ..Default::default()
            })
            .await?
            .into_inner()
            .cluster
            .ok_or_else(|| CtlError::Failed("the manager returned no cluster".into()))?;
    }
    let tokens = cluster.join_tokens.unwrap_or_default();
    let token = match a.role {
        Role::Worker => tokens.worker,
        Role::Manager => tokens.manager,
    };
    if a.quiet {
        writeln!(out, "{token}")?;
        return Ok(());
    }
    let role = match a.role {
        Role::Worker => "worker",
        Role::Manager => "manager",
    };
    if a.rotate {
        writeln!(out, "Successfully rotated {role} join token.\n")?;
    }
    let nodes = c.list_nodes(ListNodesRequest {}).await?.into_inner().nodes;
    write!(
        out,
        "{}",
        instructions(a.role, &token, &manager_addr(&nodes))
    )?;
    Ok(())
}

/// The address to join through: the leader's, else any manager's.
pub fn manager_addr(nodes: &[Node]) -> String {
    let managers = || {
        nodes
            .iter()
            .filter_map(|n| n.manager_status.as_ref())
            .filter(|m| !m.addr.is_empty())
    };
    managers()
        .find(|m| m.leader)
        .or_else(|| managers().next())
        .map_or_else(|| "<manager-addr>".to_owned(), |m| m.addr.clone())
}

/// What `join-token` prints, as `docker swarm join-token` words it.
pub fn instructions(role: Role, token: &str, addr: &str) -> String {
    match role {
        Role::Worker => format!(
            "To add a worker to this swarm, run the following command:\n\n    swarm-agent --manager {addr} --join-token {token}\n\n"
        ),
        Role::Manager => format!(
            "To add a manager to this swarm, run the following command:\n\n    swarm-manager join --remote {addr} --join-token {token}\n\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_proto::ManagerStatus;

    #[test]
    fn join_instructions_like_docker() {
        assert_eq!(
            instructions(Role::Worker, "SWMTKN-1-abc-def", "10.0.0.1:4242"),
            "To add a worker to this swarm, run the following command:\n\n    swarm-agent --manager 10.0.0.1:4242 --join-token SWMTKN-1-abc-def\n\n"
        );
        assert!(
            instructions(Role::Manager, "T", "A")
                .contains("    swarm-manager join --remote A --join-token T\n")
        );
    }

    #[test]
    fn join_address_prefers_the_leader() {
        let m = |addr: &str, leader| Node {
            manager_status: Some(ManagerStatus {
                addr: addr.into(),
                leader,
                reachable: true,
                raft_id: 1,
                catching_up: false,
            }),
            ..Default::default()
        };
        assert_eq!(
            manager_addr(&[Node::default(), m("a:1", false), m("b:2", true)]),
            "b:2"
        );
        assert_eq!(manager_addr(&[m("a:1", false)]), "a:1");
        assert_eq!(manager_addr(&[]), "<manager-addr>");
    }
}
