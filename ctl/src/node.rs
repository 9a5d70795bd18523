//! `swarmctl node ls|inspect|update|rm|promote|demote`.

use std::io::Write;
use std::path::Path;

use clap::{Args, Subcommand, ValueEnum};
use swarm_proto::{
    GetNodeRequest, ListNodesRequest, Node, NodeAvailability, NodeRole, NodeSpec,
    RemoveNodeRequest, UpdateNodeRequest,
};

use crate::client::{self, Client};
use crate::error::CtlError;
use crate::output::{InspectFormat, ListFormat, Table, write_json};
use crate::parse;
use crate::pretty;
use crate::spec::SpecError;

/// `swarmctl node …`
#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    /// List nodes in the swarm
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more nodes
    Inspect(InspectArgs),
    /// Update a node's availability, labels or role
    Update(UpdateArgs),
    /// Remove one or more nodes from the swarm
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Promote one or more nodes to manager
    Promote(NodesArg),
    /// Demote one or more nodes from manager
    Demote(NodesArg),
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// Only display node ids
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Nodes (id, hostname or id prefix)
    #[arg(required = true, value_name = "NODE")]
    pub nodes: Vec<String>,
    /// Output format (JSON, the default)
    #[arg(long, value_enum, conflicts_with = "pretty")]
    pub format: Option<InspectFormat>,
    /// Human-readable output
    #[arg(long)]
    pub pretty: bool,
}

/// `--availability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AvailabilityArg {
    Active,
    Pause,
    Drain,
}

/// `--role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Worker,
    Manager,
}

#[derive(Args, Debug, Default, Clone)]
pub struct UpdateFlags {
    /// Availability of the node
    #[arg(long, value_enum)]
    pub availability: Option<AvailabilityArg>,
    /// Add or update a node label (KEY=VALUE)
    #[arg(long, value_name = "KEY=VALUE")]
    pub label_add: Vec<String>,
    /// Remove a node label
    #[arg(long, value_name = "KEY")]
    pub label_rm: Vec<String>,
    /// Role of the node
    #[arg(long, value_enum)]
    pub role: Option<RoleArg>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub flags: UpdateFlags,
    /// Node (id, hostname or id prefix)
    #[arg(value_name = "NODE")]
    pub node: String,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force-remove a node that is not down, or a manager
    #[arg(short, long)]
    pub force: bool,
    /// Nodes (id, hostname or id prefix)
    #[arg(required = true, value_name = "NODE")]
    pub nodes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NodesArg {
    /// Nodes (id, hostname or id prefix)
    #[arg(required = true, value_name = "NODE")]
    pub nodes: Vec<String>,
}

/// Runs a `node` subcommand.
pub async fn run(cmd: NodeCmd, socket: &Path) -> Result<(), CtlError> {
    let mut out = std::io::stdout().lock();
    match cmd {
        NodeCmd::Ls(a) => {
            let mut c = client::connect(socket).await?;
            let mut nodes = c.list_nodes(ListNodesRequest {}).await?.into_inner().nodes;
            nodes.sort_by(|a, b| hostname(a).cmp(hostname(b)).then(a.id.cmp(&b.id)));
            if a.format == ListFormat::Json {
                return Ok(write_json(&mut out, &nodes)?);
            }
            if a.quiet {
                for n in &nodes {
                    writeln!(out, "{}", n.id)?;
                }
                return Ok(());
            }
            Ok(out.write_all(node_table(&nodes).render().as_bytes())?)
        }
        NodeCmd::Inspect(a) => {
            let mut c = client::connect(socket).await?;
            let mut found = Vec::new();
            let mut missing = Vec::new();
            for name in &a.nodes {
                match get(&mut c, name).await {
                    Ok(n) => found.push(n),
                    Err(e) => missing.push(e.to_string()),
                }
            }
            if a.pretty {
                let texts: Vec<String> = found.iter().map(pretty::node).collect();
                write!(out, "{}", texts.join("\n"))?;
            } else {
                write_json(&mut out, &found)?;
            }
            failed_if_any(missing)
        }
        NodeCmd::Update(a) => {
            // Bad label syntax is a usage error: report it before connecting.
            let syntax_only = UpdateFlags {
                label_rm: vec![],
                ..a.flags.clone()
            };
            apply_update(&NodeSpec::default(), &syntax_only)?;
            let mut c = client::connect(socket).await?;
            let node = get(&mut c, &a.node).await?;
            let spec = apply_update(&node.spec.clone().unwrap_or_default(), &a.flags)?;
            update(&mut c, &node, spec).await?;
            writeln!(out, "{}", a.node)?;
            Ok(())
        }
        NodeCmd::Rm(a) => {
            let mut c = client::connect(socket).await?;
            let mut errors = Vec::new();
            for name in &a.nodes {
                let req = RemoveNodeRequest {
                    node_id: name.clone(),
                    force: a.force,
                };
                match c.remove_node(req).await {
                    Ok(_) => writeln!(out, "{name}")?,
                    Err(s) => errors.push(CtlError::from(s).to_string()),
                }
            }
            failed_if_any(errors)
        }
        NodeCmd::Promote(a) => set_role(socket, &mut out, &a.nodes, NodeRole::Manager).await,
        NodeCmd::Demote(a) => set_role(socket, &mut out, &a.nodes, NodeRole::Worker).await,
    }
}

/// Promotes or demotes nodes, printing Docker's messages.
async fn set_role(
    socket: &Path,
    out: &mut dyn Write,
    names: &[String],
    role: NodeRole,
) -> Result<(), CtlError> {
    let mut c = client::connect(socket).await?;
    let mut errors = Vec::new();
    for name in names {
        let result: Result<(), CtlError> = async {
            let node = get(&mut c, name).await?;
            let mut spec = node.spec.clone().unwrap_or_default();
            if spec.desired_role == role as i32 {
                let what = if role == NodeRole::Manager {
                    "a manager"
                } else {
                    "a worker"
                };
                writeln!(out, "Node {name} is already {what}.")?;
                return Ok(());
            }
            spec.desired_role = role as i32;
            update(&mut c, &node, spec).await?;
            match role {
                NodeRole::Manager => {
                    writeln!(out, "Node {name} promoted to a manager in the swarm.")?
                }
                NodeRole::Worker => writeln!(out, "Manager {name} demoted in the swarm.")?,
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            errors.push(e.to_string());
        }
    }
    failed_if_any(errors)
}

async fn update(c: &mut Client, node: &Node, spec: NodeSpec) -> Result<(), CtlError> {
    c.update_node(UpdateNodeRequest {
        node_id: node.id.clone(),
        node_version: node.meta.map_or(0, |m| m.version),
        spec: Some(spec),
    })
    .await?;
    Ok(())
}

async fn get(c: &mut Client, name: &str) -> Result<Node, CtlError> {
    c.get_node(GetNodeRequest {
        node_id: name.to_owned(),
    })
    .await?
    .into_inner()
    .node
    .ok_or_else(|| CtlError::Failed(format!("node {name} not found")))
}

fn failed_if_any(errors: Vec<String>) -> Result<(), CtlError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CtlError::Failed(errors.join("\nerror: ")))
    }
}

/// The node spec `node update` sends: availability, role and labels changed as asked.
/// Removing a label the node does not have is an error, as in Docker.
pub fn apply_update(current: &NodeSpec, f: &UpdateFlags) -> Result<NodeSpec, CtlError> {
    let mut spec = current.clone();
    if let Some(a) = f.availability {
        spec.availability = match a {
            AvailabilityArg::Active => NodeAvailability::Active,
            AvailabilityArg::Pause => NodeAvailability::Pause,
            AvailabilityArg::Drain => NodeAvailability::Drain,
        } as i32;
    }
    if let Some(r) = f.role {
        spec.desired_role = match r {
            RoleArg::Worker => NodeRole::Worker,
            RoleArg::Manager => NodeRole::Manager,
        } as i32;
    }
    let labels = &mut spec.annotations.get_or_insert_default().labels;
    for k in &f.label_rm {
        if labels.remove(k).is_none() {
            return Err(CtlError::Failed(format!(
                "key {k} doesn't exist in node's labels"
            )));
        }
    }
    for l in &f.label_add {
        let (k, v) = parse::label(l).map_err(|reason| SpecError::Invalid {
            flag: "label-add",
            value: l.clone(),
            reason,
        })?;
        labels.insert(k, v);
    }
    Ok(spec)
}

fn hostname(n: &Node) -> &str {
    n.description.as_ref().map_or("", |d| d.hostname.as_str())
}

/// The `node ls` table: ID, HOSTNAME, STATUS, AVAILABILITY, MANAGER STATUS.
pub fn node_table(nodes: &[Node]) -> Table {
    let mut table = Table::new(&["ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS"]);
    for n in nodes {
        table.row(vec![
            n.id.clone(),
            hostname(n).to_owned(),
            pretty::node_state(n),
            pretty::node_availability(n),
            pretty::manager_status(n),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_proto::{Annotations, ManagerStatus, NodeDescription, NodeState, NodeStatus};

    fn node(
        id: &str,
        host: &str,
        state: NodeState,
        availability: NodeAvailability,
        leader: Option<bool>,
    ) -> Node {
        Node {
            id: id.into(),
            spec: Some(NodeSpec {
                availability: availability as i32,
                ..Default::default()
            }),
            description: Some(NodeDescription {
                hostname: host.into(),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                state: state as i32,
                ..Default::default()
            }),
            manager_status: leader.map(|l| ManagerStatus {
                leader: l,
                reachable: true,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn ls_table_like_docker() {
        let nodes = vec![
            node(
                "n4i0o8zx9oyjh9oxpb4fbk22s",
                "manager-1",
                NodeState::NodeReady,
                NodeAvailability::Active,
                Some(true),
            ),
            node(
                "x7c8d9e0f1g2h3i4j5k6l7m8n",
                "worker-1",
                NodeState::NodeDown,
                NodeAvailability::Drain,
                None,
            ),
        ];
        let out = node_table(&nodes).render();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "ID                          HOSTNAME    STATUS    AVAILABILITY   MANAGER STATUS"
        );
        assert_eq!(
            lines[1],
            "n4i0o8zx9oyjh9oxpb4fbk22s   manager-1   Ready     Active         Leader"
        );
        assert_eq!(
            lines[2],
            "x7c8d9e0f1g2h3i4j5k6l7m8n   worker-1    Down      Drain"
        );
    }

    #[test]
    fn update_sets_availability_role_and_labels() {
        let current = NodeSpec {
            annotations: Some(Annotations {
                name: String::new(),
                labels: [("old".to_string(), "1".to_string())].into(),
            }),
            ..Default::default()
        };
        let f = UpdateFlags {
            availability: Some(AvailabilityArg::Drain),
            label_add: vec!["zone=a".into(), "ssd".into()],
            label_rm: vec!["old".into()],
            role: Some(RoleArg::Manager),
        };
        let spec = apply_update(&current, &f).unwrap();
        assert_eq!(spec.availability, NodeAvailability::Drain as i32);
        assert_eq!(spec.desired_role, NodeRole::Manager as i32);
        let labels = &spec.annotations.unwrap().labels;
        assert_eq!(labels.len(), 2);
        assert_eq!(labels["zone"], "a");
        assert_eq!(labels["ssd"], "");
    }

    #[test]
    fn update_errors() {
        let f = UpdateFlags {
            label_rm: vec!["nope".into()],
            ..Default::default()
        };
        assert_eq!(
            apply_update(&NodeSpec::default(), &f)
                .unwrap_err()
                .to_string(),
            "key nope doesn't exist in node's labels"
        );
        let f = UpdateFlags {
            label_add: vec!["=x".into()],
            ..Default::default()
        };
        let e = apply_update(&NodeSpec::default(), &f).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            "invalid --label-add \"=x\": missing key (expected KEY=VALUE)"
        );
    }
}
