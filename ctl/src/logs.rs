//! `swarmctl service logs` and `swarmctl task logs`: a task's output, streamed from the
//! agents through the manager's `Logs` service, printed as `docker service logs` does.
//!
//! ```text
//! web.1.3kq9x2mvb1zw@node-1    | a line the task wrote
//! ^name ^slot (global: node id) ^task id   ^node hostname
//! ```
//! Lines a task wrote to stdout go to stdout, its stderr lines to stderr; the lines of one
//! task keep their order. Tasks and node hostnames are looked up once and again only for a
//! task seen for the first time (a followed service's new tasks).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use clap::Args;
use swarm_proto::logs_client::LogsClient;
use swarm_proto::{
    GetServiceRequest, GetTaskRequest, ListNodesRequest, LogMessage, LogOptions, LogSelector,
    LogStreamKind, SubscribeLogsRequest, Task,
};

use crate::client::{self, Client};
use crate::error::CtlError;
use crate::output::{self, short_id};

/// Flags `service logs` and `task logs` share.
#[derive(Args, Debug, Clone)]
pub struct LogFlags {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of each task's logs ("all" or a number)
    #[arg(short = 'n', long, default_value = "all", value_parser = parse_tail)]
    pub tail: i64,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Do not include task ids in the prefix
    #[arg(long)]
    pub no_task_ids: bool,
    /// Do not truncate ids in the prefix
    #[arg(long)]
    pub no_trunc: bool,
    /// Print the lines only, without the prefix
    #[arg(long)]
    pub raw: bool,
}

/// `swarmctl service logs SERVICE`
#[derive(Args, Debug)]
pub struct ServiceLogsArgs {
    /// Service name, id or unique id prefix
    #[arg(value_name = "SERVICE")]
    pub service: String,
    #[command(flatten)]
    pub flags: LogFlags,
}

/// `swarmctl task logs TASK`
#[derive(Args, Debug)]
pub struct TaskLogsArgs {
    /// Task id or unique id prefix
    #[arg(value_name = "TASK")]
    pub task: String,
    #[command(flatten)]
    pub flags: LogFlags,
}

/// `--tail all|N`: all is -1.
///
/// # Errors
/// A value that is neither `all` nor a non-negative number.
pub fn parse_tail(s: &str) -> Result<i64, String> {
    if s.eq_ignore_ascii_case("all") {
        return Ok(-1);
    }
    s.parse::<u32>()
        .map(i64::from)
        .map_err(|_| format!("invalid --tail {s:?}: expected \"all\" or a number of lines"))
}

/// Runs `service logs`.
pub async fn service(args: ServiceLogsArgs, socket: &Path) -> Result<(), CtlError> {
    let mut c = client::connect(socket).await?;
    let req = GetServiceRequest {
        service_id: args.service.clone(),
    };
    let service = c.get_service(req).await?.into_inner().service;
    let id = service
        .map(|s| s.id)
        .ok_or_else(|| CtlError::Failed(format!("service {} not found", args.service)))?;
    let selector = LogSelector {
        service_ids: vec![id],
        ..Default::default()
    };
    stream(c, socket, selector, &args.flags).await
}

/// Runs `task logs`.
pub async fn task(args: TaskLogsArgs, socket: &Path) -> Result<(), CtlError> {
    let mut c = client::connect(socket).await?;
    let req = GetTaskRequest {
        task_id: args.task.clone(),
    };
    let task = c.get_task(req).await?.into_inner().task;
    let id = task
        .map(|t| t.id)
        .ok_or_else(|| CtlError::Failed(format!("task {} not found", args.task)))?;
    let selector = LogSelector {
        task_ids: vec![id],
        ..Default::default()
    };
    stream(c, socket, selector, &args.flags).await
}

async fn stream(
    mut c: Client,
    socket: &Path,
    selector: LogSelector,
    flags: &LogFlags,
) -> Result<(), CtlError> {
    let mut logs = LogsClient::new(client::channel(socket).await?);
    let request = SubscribeLogsRequest {
        selector: Some(selector),
        options: Some(LogOptions {
            follow: flags.follow,
            tail: flags.tail,
            streams: Vec::new(),
        }),
    };
    let mut stream = logs.subscribe_logs(request).await?.into_inner();
    let mut prefixes = Prefixes::default();
    while let Some(batch) = stream.message().await? {
        for m in batch.messages {
            let prefix = if flags.raw {
                String::new()
            } else {
                prefixes.get(&mut c, &m, flags).await?
            };
            let line = line(&prefix, &m, flags.timestamps);
            if m.stream() == LogStreamKind::LogStreamStderr {
                std::io::stderr().lock().write_all(line.as_bytes())?;
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes())?;
                if flags.follow {
                    out.flush()?;
                }
            }
        }
    }
    std::io::stdout().lock().flush()?;
    Ok(())
}

/// The prefix of each task's lines, looked up once per task.
#[derive(Default)]
struct Prefixes {
    by_task: HashMap<String, String>,
    hostnames: Option<HashMap<String, String>>,
}

impl Prefixes {
    async fn get(
        &mut self,
        c: &mut Client,
        m: &LogMessage,
        flags: &LogFlags,
    ) -> Result<String, CtlError> {
        let ctx = m.context.clone().unwrap_or_default();
        if let Some(p) = self.by_task.get(&ctx.task_id) {
            return Ok(p.clone());
        }
        let task = c
            .get_task(GetTaskRequest {
                task_id: ctx.task_id.clone(),
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().task)
            .unwrap_or_else(|| Task {
                id: ctx.task_id.clone(),
                node_id: ctx.node_id.clone(),
                ..Default::default()
            });
        if self.hostnames.is_none() {
            let nodes = c.list_nodes(ListNodesRequest {}).await?.into_inner().nodes;
            let names = nodes
                .into_iter()
                .map(|n| {
                    let host = n.description.map(|d| d.hostname).unwrap_or_default();
                    (n.id, host)
                })
                .collect();
            self.hostnames = Some(names);
        }
        let host = self
            .hostnames
            .as_ref()
            .and_then(|h| h.get(&ctx.node_id))
            .filter(|h| !h.is_empty())
            .cloned()
            .unwrap_or_else(|| short_id(&ctx.node_id, false).to_owned());
        let p = prefix(&task, &host, flags.no_task_ids, flags.no_trunc);
        self.by_task.insert(ctx.task_id, p.clone());
        Ok(p)
    }
}

/// `web.1.<task>@host` (replicated) or `web.<node>.<task>@host` (global); without the task
/// id with `no_task_ids`.
pub fn prefix(task: &Task, hostname: &str, no_task_ids: bool, no_trunc: bool) -> String {
    let name = task
        .service_annotations
        .as_ref()
        .map_or("", |a| a.name.as_str());
    let name = if name.is_empty() {
        short_id(&task.service_id, no_trunc)
    } else {
        name
    };
    let slot = if task.slot != 0 {
        task.slot.to_string()
    } else {
        short_id(&task.node_id, no_trunc).to_owned()
    };
    if no_task_ids {
        format!("{name}.{slot}@{hostname}")
    } else {
        format!("{name}.{slot}.{}@{hostname}", short_id(&task.id, no_trunc))
    }
}

/// One output line: `prefix    | [timestamp ]data\n` (no prefix part when `prefix` is
/// empty, i.e. `--raw`).
pub fn line(prefix: &str, m: &LogMessage, timestamps: bool) -> String {
    let mut s = String::new();
    if !prefix.is_empty() {
        s.push_str(prefix);
        s.push_str("    | ");
    }
    if timestamps {
        s.push_str(&timestamp_nanos(m.timestamp));
        s.push(' ');
    }
    s.push_str(&String::from_utf8_lossy(&m.data));
    s.push('\n');
    s
}

/// RFC 3339 with nanoseconds, UTC ("2024-05-01T12:00:00.000000001Z"), as Docker prints.
fn timestamp_nanos(ns: i64) -> String {
    let whole = output::timestamp(ns);
    let seconds = whole.trim_end_matches('Z');
    format!("{seconds}.{:09}Z", ns.rem_euclid(1_000_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_proto::Annotations;

    fn task(slot: u64) -> Task {
        Task {
            id: "abcdefghijklmnopqrstuvwxy".into(),
            service_id: "svc0123456789".into(),
            node_id: "node0123456789abcdef".into(),
            slot,
            service_annotations: Some(Annotations {
                name: "web".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn prefixes_name_slot_or_node_task_and_host() {
        assert_eq!(
            prefix(&task(2), "h1", false, false),
            "web.2.abcdefghijkl@h1"
        );
        assert_eq!(
            prefix(&task(0), "h1", false, false),
            "web.node01234567.abcdefghijkl@h1"
        );
        assert_eq!(prefix(&task(2), "h1", true, false), "web.2@h1");
    }

    #[test]
    fn lines_carry_prefix_timestamp_and_data() {
        let m = LogMessage {
            timestamp: 1_000_000_007,
            data: b"hello".to_vec(),
            ..Default::default()
        };
        assert_eq!(line("web.1.x@h", &m, false), "web.1.x@h    | hello\n");
        assert_eq!(line("", &m, false), "hello\n");
        assert_eq!(line("", &m, true), "1970-01-01T00:00:01.000000007Z hello\n");
    }

    #[test]
    fn tail_is_all_or_a_count() {
        assert_eq!(parse_tail("all"), Ok(-1));
        assert_eq!(parse_tail("5"), Ok(5));
        let e = parse_tail("-3").unwrap_err();
        assert!(e.contains("expected \"all\" or a number"), "{e}");
    }
}
