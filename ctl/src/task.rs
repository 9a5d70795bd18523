//! `swarmctl task ls|inspect`, and the task table `service ps` shares.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use clap::{Args, Subcommand};
use swarm_proto::task_spec::Runtime;
use swarm_proto::{
    GetNodeRequest, GetServiceRequest, GetTaskRequest, ListNodesRequest, ListTasksRequest, Task,
    TaskSpec, TaskState,
};

use crate::client::{self, Client};
use crate::error::CtlError;
use crate::output::{self, InspectFormat, ListFormat, Table, capitalize, short_id, write_json};

/// `swarmctl task …`
#[derive(Subcommand, Debug)]
pub enum TaskCmd {
    /// List tasks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more tasks
    Inspect(InspectArgs),
    /// Fetch the logs of a task
    Logs(crate::logs::TaskLogsArgs),
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only tasks of this service (id, name or id prefix)
    #[arg(long)]
    pub service: Option<String>,
    /// Only tasks on this node (id, hostname or id prefix)
    #[arg(long)]
    pub node: Option<String>,
    #[command(flatten)]
    pub view: TaskListFlags,
}

/// Output flags of task lists (`task ls`, `service ps`).
#[derive(Args, Debug, Clone, Default)]
pub struct TaskListFlags {
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// Do not truncate ids, names and errors
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display task ids
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Task ids (or unique prefixes)
    #[arg(required = true, value_name = "TASK")]
    pub ids: Vec<String>,
    /// Output format (JSON, the default)
    #[arg(long, value_enum)]
    pub format: Option<InspectFormat>,
}

/// Runs a `task` subcommand.
pub async fn run(cmd: TaskCmd, socket: &Path) -> Result<(), CtlError> {
    let mut c = client::connect(socket).await?;
    let mut out = std::io::stdout().lock();
    match cmd {
        TaskCmd::Ls(a) => {
            let service_id = match &a.service {
                Some(s) => resolve_service(&mut c, s).await?,
                None => String::new(),
            };
            let node_id = match &a.node {
                Some(n) => {
                    let req = GetNodeRequest { node_id: n.clone() };
                    c.get_node(req)
                        .await?
                        .into_inner()
                        .node
                        .map(|n| n.id)
                        .unwrap_or_default()
                }
                None => String::new(),
            };
            let tasks = c
                .list_tasks(ListTasksRequest {
                    service_id,
                    node_id,
                })
                .await?
                .into_inner()
                .tasks;
            print_tasks(&mut c, &mut out, &tasks, &a.view).await
        }
        TaskCmd::Logs(a) => {
            drop(out);
            crate::logs::task(a, socket).await
        }
        TaskCmd::Inspect(a) => {
            let mut found = Vec::new();
            let mut missing = Vec::new();
            for id in &a.ids {
                match c
                    .get_task(GetTaskRequest {
                        task_id: id.clone(),
                    })
                    .await
                {
                    Ok(r) => found.extend(r.into_inner().task),
                    Err(s) => missing.push(CtlError::from(s).to_string()),
                }
            }
            write_json(&mut out, &found)?;
            if missing.is_empty() {
                Ok(())
            } else {
                Err(CtlError::Failed(missing.join("\n")))
            }
        }
    }
}

/// The id of a service given by id, name or prefix.
pub(crate) async fn resolve_service(c: &mut Client, name: &str) -> Result<String, CtlError> {
    let req = GetServiceRequest {
        service_id: name.to_owned(),
    };
    let svc = c.get_service(req).await?.into_inner().service;
    svc.map(|s| s.id)
        .ok_or_else(|| CtlError::Failed(format!("service {name} not found")))
}

/// Prints tasks as a table (node hostnames looked up), ids, or JSON.
pub(crate) async fn print_tasks(
    c: &mut Client,
    out: &mut dyn Write,
    tasks: &[Task],
    view: &TaskListFlags,
) -> Result<(), CtlError> {
    if view.format == ListFormat::Json {
        return Ok(write_json(out, tasks)?);
    }
    if view.quiet {
        for t in sorted(tasks) {
            writeln!(out, "{}", short_id(&t.id, view.no_trunc))?;
        }
        return Ok(());
    }
    let nodes = c.list_nodes(ListNodesRequest {}).await?.into_inner().nodes;
    let hostnames: HashMap<String, String> = nodes
        .into_iter()
        .map(|n| (n.id, n.description.map(|d| d.hostname).unwrap_or_default()))
        .collect();
    let table = task_table(tasks, &hostnames, swarm_proto::ext::now_ns(), view.no_trunc);
    Ok(out.write_all(table.render().as_bytes())?)
}

/// Longest error shown before it is cut (Docker's `maxErrLength`).
const MAX_ERR: usize = 30;

/// Tasks sorted as `docker service ps` shows them: by service name, slot (or node), then
/// newest first.
fn sorted(tasks: &[Task]) -> Vec<&Task> {
    let mut v: Vec<&Task> = tasks.iter().collect();
    v.sort_by(|a, b| {
        group_key(a)
            .cmp(&group_key(b))
            .then_with(|| created(b).cmp(&created(a)))
            .then_with(|| a.id.cmp(&b.id))
    });
    v
}

fn service_name(t: &Task) -> &str {
    t.service_annotations
        .as_ref()
        .map_or("", |a| a.name.as_str())
}

/// Tasks of one slot (replicated) or one node (global) form a group; older tasks of a
/// group are shown as its history (` \_ web.1`).
fn group_key(t: &Task) -> (&str, &str, u64, &str) {
    if t.slot != 0 {
        (service_name(t), &t.service_id, t.slot, "")
    } else {
        (service_name(t), &t.service_id, 0, &t.node_id)
    }
}

fn created(t: &Task) -> i64 {
    t.meta.as_ref().map_or(0, |m| m.created_at_ns)
}

/// The task table: ID, NAME, IMAGE, NODE, DESIRED STATE, CURRENT STATE, ERROR.
pub fn task_table(
    tasks: &[Task],
    hostnames: &HashMap<String, String>,
    now_ns: i64,
    no_trunc: bool,
) -> Table {
    let mut table = Table::new(&[
        "ID",
        "NAME",
        "IMAGE",
        "NODE",
        "DESIRED STATE",
        "CURRENT STATE",
        "ERROR",
    ]);
    let mut previous = None;
    for t in sorted(tasks) {
        let key = group_key(t);
        let mut name = if t.slot != 0 {
            format!("{}.{}", service_name(t), t.slot)
        } else {
            format!("{}.{}", service_name(t), t.node_id)
        };
        if no_trunc {
            name = format!("{name}.{}", t.id);
        }
        if previous == Some(key) {
            name = format!(" \\_ {name}");
        }
        previous = Some(key);
        let node = match hostnames.get(&t.node_id) {
            Some(h) if !h.is_empty() => h.clone(),
            _ => t.node_id.clone(),
        };
        let status = t.status.clone().unwrap_or_default();
        let state = capitalize(&TaskState::of(status.state).display_name());
        let current = if status.timestamp_ns > 0 {
            format!("{state} {}", output::ago(now_ns, status.timestamp_ns))
        } else {
            state
        };
        table.row(vec![
            short_id(&t.id, no_trunc).to_owned(),
            name,
            display_artifact(&artifact(t.spec.as_ref()), no_trunc),
            node,
            capitalize(&TaskState::of(t.desired_state).display_name()),
            current,
            error_cell(&status.err, no_trunc),
        ]);
    }
    table
}

/// Docker's ERROR cell: quoted, cut to 30 characters unless `no_trunc`.
fn error_cell(err: &str, no_trunc: bool) -> String {
    if err.is_empty() {
        return String::new();
    }
    let err = err.replace('\n', " ");
    let err = if no_trunc {
        err
    } else {
        output::ellipsize(&err, MAX_ERR)
    };
    format!("\"{err}\"")
}

/// The artifact (WASM) or image (OCI) a task spec runs.
pub fn artifact(spec: Option<&TaskSpec>) -> String {
    match spec.and_then(|s| s.runtime.as_ref()) {
        Some(Runtime::Wasm(w)) => w.artifact.clone(),
        Some(Runtime::Oci(o)) => o.image.clone(),
        None => String::new(),
    }
}

/// An artifact as tables show it: digests shortened unless `no_trunc`.
pub fn display_artifact(artifact: &str, no_trunc: bool) -> String {
    if no_trunc {
        return artifact.to_owned();
    }
    if let Some(hex) = artifact.strip_prefix("sha256:") {
        return format!("sha256:{}", short_id(hex, false));
    }
    match artifact.split_once("@sha256:") {
        Some((name, _)) => name.to_owned(),
        None => artifact.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_proto::{Annotations, Meta, TaskStatus, WasmRuntime};

    const NOW: i64 = 2_000_000_000_000_000_000;
    const SEC: i64 = 1_000_000_000;

    fn task(
        id: &str,
        slot: u64,
        node: &str,
        created: i64,
        state: TaskState,
        desired: TaskState,
    ) -> Task {
        Task {
            id: id.into(),
            service_id: "svc".into(),
            slot,
            node_id: node.into(),
            meta: Some(Meta {
                version: 1,
                created_at_ns: created,
                updated_at_ns: created,
            }),
            spec: Some(TaskSpec {
                runtime: Some(Runtime::Wasm(WasmRuntime {
                    artifact: "hello:1".into(),
                    ..Default::default()
                })),
                ..Default::default()
            }),
            service_annotations: Some(Annotations {
                name: "web".into(),
                ..Default::default()
            }),
            status: Some(TaskStatus {
                state: state as i32,
                timestamp_ns: NOW - 5 * SEC,
                ..Default::default()
            }),
            desired_state: desired as i32,
            ..Default::default()
        }
    }

    #[test]
    fn ps_table_groups_history_under_the_slot() {
        let mut failed = task(
            "aaaaaaaaaaaaaaaaaaaaaaaaa",
            1,
            "n1",
            NOW - 60 * SEC,
            TaskState::Failed,
            TaskState::Shutdown,
        );
        failed.status.as_mut().unwrap().err =
            "task: non-zero exit (1): the workload trapped".into();
        let tasks = vec![
            task(
                "ccccccccccccccccccccccccc",
                2,
                "n2",
                NOW - 10 * SEC,
                TaskState::Running,
                TaskState::Running,
            ),
            failed,
            task(
                "bbbbbbbbbbbbbbbbbbbbbbbbb",
                1,
                "n1",
                NOW - 10 * SEC,
                TaskState::Running,
                TaskState::Running,
            ),
        ];
        let hostnames: HashMap<String, String> = [("n1".to_string(), "alpha".to_string())].into();
        let out = task_table(&tasks, &hostnames, NOW, false).render();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "ID             NAME        IMAGE     NODE      DESIRED STATE   CURRENT STATE           ERROR"
        );
        assert_eq!(
            lines[1],
            "bbbbbbbbbbbb   web.1       hello:1   alpha     Running         Running 5 seconds ago"
        );
        assert_eq!(
            lines[2],
            "aaaaaaaaaaaa    \\_ web.1   hello:1   alpha     Shutdown        Failed 5 seconds ago    \"task: non-zero exit (1): the …\""
        );
        assert_eq!(
            lines[3],
            "cccccccccccc   web.2       hello:1   n2        Running         Running 5 seconds ago"
        );
    }

    #[test]
    fn no_trunc_shows_full_ids_and_errors() {
        let mut t = task(
            "aaaaaaaaaaaaaaaaaaaaaaaaa",
            0,
            "node-xyz",
            NOW,
            TaskState::Rejected,
            TaskState::Shutdown,
        );
        t.status.as_mut().unwrap().err = "x".repeat(40);
        let out = task_table(&[t], &HashMap::new(), NOW, true).render();
        let row = out.lines().nth(1).unwrap();
        assert!(
            row.starts_with(
                "aaaaaaaaaaaaaaaaaaaaaaaaa   web.node-xyz.aaaaaaaaaaaaaaaaaaaaaaaaa   "
            ),
            "{row}"
        );
        assert!(row.ends_with(&format!("\"{}\"", "x".repeat(40))), "{row}");
    }

    #[test]
    fn artifacts_shorten_digests() {
        let digest = format!("sha256:{}", "f".repeat(64));
        assert_eq!(display_artifact(&digest, false), "sha256:ffffffffffff");
        assert_eq!(display_artifact(&digest, true), digest);
        assert_eq!(
            display_artifact(&format!("hello:1@{digest}"), false),
            "hello:1"
        );
        assert_eq!(display_artifact("hello:1", false), "hello:1");
    }
}
