//! Human-readable `inspect --pretty` views of services, nodes and the cluster, laid out
//! as `docker service inspect --pretty` lays them out.

use std::fmt::Write as _;

use swarm_proto::service_spec::Mode;
use swarm_proto::task_spec::Runtime;
use swarm_proto::{
    Cluster, Node, NodeAvailability, NodeState, RestartCondition, Service, UpdateConfig,
    UpdateFailureAction, UpdateOrder,
};

use crate::output::{bytes, capitalize, cpus, timestamp};
use crate::parse::format_ms;
use crate::spec::sorted_labels;

/// Lines of `Key:  value`, values aligned in one column.
#[derive(Default)]
struct Doc(String);

impl Doc {
    /// `key:` indented by `depth` spaces, then the value at column 20.
    fn kv(&mut self, depth: usize, key: &str, value: impl std::fmt::Display) {
        let label = format!("{:depth$}{key}:", "");
        let _ = writeln!(self.0, "{label:<20}{value}");
    }

    /// A heading line (`Placement:`).
    fn head(&mut self, depth: usize, key: &str) {
        let _ = writeln!(self.0, "{:depth$}{key}:", "");
    }

    /// A bare indented line.
    fn line(&mut self, depth: usize, text: &str) {
        let _ = writeln!(self.0, "{:depth$}{text}", "");
    }

    fn labels(&mut self, title: &str, labels: &std::collections::HashMap<String, String>) {
        if labels.is_empty() {
            return;
        }
        self.head(0, title);
        for l in sorted_labels(labels) {
            self.line(1, &l);
        }
    }
}

/// `docker service inspect --pretty`, for a swarm service.
pub fn service(s: &Service) -> String {
    let mut d = Doc::default();
    let spec = s.spec.clone().unwrap_or_default();
    let annotations = spec.annotations.clone().unwrap_or_default();
    d.kv(0, "ID", &s.id);
    d.kv(0, "Name", &annotations.name);
    d.labels("Labels", &annotations.labels);
    match spec.mode {
        Some(Mode::Replicated(r)) => {
            d.kv(0, "Service Mode", "Replicated");
            d.kv(1, "Replicas", r.replicas);
        }
        Some(Mode::Global(_)) => d.kv(0, "Service Mode", "Global"),
        Some(Mode::ReplicatedJob(j)) => {
            d.kv(0, "Service Mode", "Replicated Job");
            d.kv(1, "Max Concurrent", j.max_concurrent);
            d.kv(1, "Total Completions", j.total_completions);
        }
        Some(Mode::GlobalJob(_)) => d.kv(0, "Service Mode", "Global Job"),
        None => {}
    }
    let task = spec.task.clone().unwrap_or_default();
    if let Some(p) = &task.placement
        && (!p.constraints.is_empty() || p.max_replicas > 0)
    {
        d.head(0, "Placement");
        if !p.constraints.is_empty() {
            d.kv(1, "Constraints", format!("[{}]", p.constraints.join(" ")));
        }
        if p.max_replicas > 0 {
            d.kv(1, "Max Replicas", p.max_replicas);
        }
    }
    update_config(&mut d, "UpdateConfig", spec.update.as_ref());
    update_config(&mut d, "RollbackConfig", spec.rollback.as_ref());
    let (kind, artifact, args, env, workdir, mounts) = match &task.runtime {
        Some(Runtime::Wasm(w)) => ("WASM", &w.artifact, &w.args, &w.env, &w.workdir, &w.mounts),
        Some(Runtime::Oci(o)) => ("OCI", &o.image, &o.args, &o.env, &o.workdir, &o.mounts),
        None => (
            "none",
            &String::new(),
            &Vec::new(),
            &Vec::new(),
            &String::new(),
            &Vec::new(),
        ),
    };
    d.kv(0, "Runtime", kind);
    d.kv(1, "Artifact", artifact);
    if !args.is_empty() {
        d.kv(1, "Args", args.join(" "));
    }
    if !env.is_empty() {
        d.kv(1, "Env", env.join(" "));
    }
    if !workdir.is_empty() {
        d.kv(1, "Dir", workdir);
    }
    if !mounts.is_empty() {
        d.head(0, "Mounts");
        for m in mounts {
            d.kv(1, "Target", &m.target);
            d.kv(2, "Source", &m.source);
            d.kv(2, "ReadOnly", m.readonly);
            d.kv(2, "Type", "bind");
        }
    }
    if let Some(r) = &task.resources {
        d.head(0, "Resources");
        for (title, res) in [("Limits", &r.limits), ("Reservations", &r.reservations)] {
            if let Some(res) = res {
                d.head(1, title);
                if res.nano_cpus > 0 {
                    d.kv(2, "CPU", cpus(res.nano_cpus));
                }
                if res.memory_bytes > 0 {
                    d.kv(2, "Memory", bytes(res.memory_bytes));
                }
            }
        }
    }
    if let Some(r) = &task.restart {
        d.head(0, "Restart Policy");
        let condition = match RestartCondition::try_from(r.condition) {
            Ok(RestartCondition::RestartOnFailure) => "on-failure",
            Ok(RestartCondition::RestartNone) => "none",
            _ => "any",
        };
        d.kv(1, "Condition", condition);
        d.kv(
            1,
            "Delay",
            r.delay_ms.map_or("5s (default)".into(), format_ms),
        );
        d.kv(1, "Max Attempts", r.max_attempts);
        d.kv(1, "Window", format_ms(r.window_ms));
    }
    if let Some(e) = spec.endpoint.as_ref().filter(|e| !e.ports.is_empty()) {
        d.head(0, "Ports");
        for p in &e.ports {
            d.line(1, &format!("PublishedPort = {}", p.published_port));
            d.line(2, &format!("Protocol = {}", p.protocol));
            d.line(2, &format!("TargetPort = {}", p.target_port));
            d.line(2, "PublishMode = ingress");
        }
    }
    if let Some(m) = &s.meta {
        d.kv(0, "Created", timestamp(m.created_at_ns));
        d.kv(0, "Updated", timestamp(m.updated_at_ns));
        d.kv(0, "Version", m.version);
    }
    d.0
}

fn update_config(d: &mut Doc, title: &str, c: Option<&UpdateConfig>) {
    let Some(c) = c else { return };
    d.head(0, title);
    d.kv(1, "Parallelism", c.parallelism.unwrap_or(1));
    if c.delay_ms > 0 {
        d.kv(1, "Delay", format_ms(c.delay_ms));
    }
    let action = match UpdateFailureAction::try_from(c.failure_action) {
        Ok(UpdateFailureAction::UpdateContinue) => "continue",
        Ok(UpdateFailureAction::UpdateRollback) => "rollback",
        _ => "pause",
    };
    d.kv(1, "On failure", action);
    d.kv(
        1,
        "Monitoring Period",
        format_ms(c.monitor_ms.unwrap_or(5000)),
    );
    d.kv(1, "Max failure ratio", c.max_failure_ratio);
    let order = match UpdateOrder::try_from(c.order) {
        Ok(UpdateOrder::StartFirst) => "start-first",
        _ => "stop-first",
    };
    d.kv(1, "Update order", order);
}

/// Node status as Docker capitalizes it ("Ready").
pub fn node_state(n: &Node) -> String {
    let state = NodeState::try_from(n.status.as_ref().map_or(0, |s| s.state))
        .unwrap_or(NodeState::NodeUnknown);
    let name = state
        .as_str_name()
        .trim_start_matches("NODE_")
        .to_ascii_lowercase();
    capitalize(&name)
}

/// Node availability as Docker capitalizes it ("Active").
pub fn node_availability(n: &Node) -> String {
    let a = NodeAvailability::try_from(n.spec.as_ref().map_or(0, |s| s.availability))
        .unwrap_or(NodeAvailability::Active);
    capitalize(&a.as_str_name().to_ascii_lowercase())
}

/// `Leader`, `Reachable` or `Unreachable` for managers ("Catching up" for a joined manager
/// not yet a voter), "" for workers.
pub fn manager_status(n: &Node) -> String {
    n.manager_status
        .as_ref()
        .map_or_else(String::new, |m| raft_status(m).into())
}

fn raft_status(m: &swarm_proto::ManagerStatus) -> &'static str {
    match m {
        m if m.leader => "Leader",
        m if !m.reachable => "Unreachable",
        m if m.catching_up => "Catching up",
        _ => "Reachable",
    }
}

/// `docker node inspect --pretty`.
pub fn node(n: &Node) -> String {
    let mut d = Doc::default();
    let desc = n.description.clone().unwrap_or_default();
    let spec = n.spec.clone().unwrap_or_default();
    d.kv(0, "ID", &n.id);
    if let Some(a) = &spec.annotations {
        if !a.name.is_empty() {
            d.kv(0, "Name", &a.name);
        }
        d.labels("Labels", &a.labels);
    }
    d.kv(0, "Hostname", &desc.hostname);
    if let Some(m) = &n.meta {
        d.kv(0, "Joined at", timestamp(m.created_at_ns));
    }
    d.head(0, "Status");
    d.kv(1, "State", node_state(n));
    if let Some(msg) = n
        .status
        .as_ref()
        .map(|s| &s.message)
        .filter(|m| !m.is_empty())
    {
        d.kv(1, "Message", msg);
    }
    d.kv(1, "Availability", node_availability(n));
    if let Some(addr) = n.status.as_ref().map(|s| &s.addr).filter(|a| !a.is_empty()) {
        d.kv(1, "Address", addr);
    }
    if let Some(m) = &n.manager_status {
        d.head(0, "Manager Status");
        d.kv(1, "Address", &m.addr);
        d.kv(
            1,
            "Raft Status",
            match raft_status(m) {
                "Leader" => "Reachable",
                s => s,
            },
        );
        d.kv(1, "Leader", if m.leader { "Yes" } else { "No" });
    }
    if let Some(p) = &desc.platform {
        d.head(0, "Platform");
        d.kv(1, "Operating System", &p.os);
        d.kv(1, "Architecture", &p.architecture);
    }
    if let Some(r) = &desc.resources {
        d.head(0, "Resources");
        d.kv(1, "CPUs", cpus(r.nano_cpus));
        d.kv(1, "Memory", bytes(r.memory_bytes));
    }
    if !desc.runtimes.is_empty() {
        d.kv(0, "Runtimes", desc.runtimes.join(", "));
    }
    d.labels("Engine Labels", &desc.engine_labels);
    d.0
}

/// The cluster's settings, human-readable.
pub fn cluster(c: &Cluster) -> String {
    let mut d = Doc::default();
    let spec = c.spec.clone().unwrap_or_default();
    d.kv(0, "ID", &c.id);
    d.kv(
        0,
        "Name",
        spec.annotations.as_ref().map_or("", |a| a.name.as_str()),
    );
    if let Some(o) = &spec.orchestration {
        d.head(0, "Orchestration");
        d.kv(
            1,
            "Task History Retention Limit",
            o.task_history_retention_limit,
        );
    }
    if let Some(r) = &spec.raft {
        d.head(0, "Raft");
        d.kv(1, "Snapshot Interval", r.snapshot_interval);
        d.kv(
            1,
            "Log Entries For Slow Followers",
            r.log_entries_for_slow_followers,
        );
        d.kv(1, "Heartbeat Tick", r.heartbeat_tick);
        d.kv(1, "Election Tick", r.election_tick);
        d.kv(1, "Tick", format_ms(r.tick_ms));
    }
    if let Some(disp) = &spec.dispatcher {
        d.head(0, "Dispatcher");
        d.kv(1, "Heartbeat Period", format_ms(disp.heartbeat_period_ms));
    }
    if let Some(m) = &c.meta {
        d.kv(0, "Created", timestamp(m.created_at_ns));
    }
    d.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_proto::{
        Annotations, ManagerStatus, Mount, NodeStatus, Placement, ReplicatedService,
        ResourceRequirements, Resources, ServiceSpec, TaskSpec, WasmRuntime,
    };

    #[test]
    fn service_pretty_shows_the_spec() {
        let s = Service {
            id: "svc1".into(),
            spec: Some(ServiceSpec {
                annotations: Some(Annotations {
                    name: "web".into(),
                    labels: [("tier".to_string(), "front".to_string())].into(),
                }),
                mode: Some(Mode::Replicated(ReplicatedService { replicas: 3 })),
                task: Some(TaskSpec {
                    runtime: Some(Runtime::Wasm(WasmRuntime {
                        artifact: "hello:1".into(),
                        args: vec!["--port".into(), "80".into()],
                        mounts: vec![Mount {
                            source: "/data".into(),
                            target: "/srv".into(),
                            readonly: true,
                        }],
                        ..Default::default()
                    })),
                    resources: Some(ResourceRequirements {
                        limits: Some(Resources {
                            nano_cpus: 500_000_000,
                            memory_bytes: 64 << 20,
                        }),
                        reservations: None,
                    }),
                    placement: Some(Placement {
                        constraints: vec!["node.role==manager".into()],
                        max_replicas: 0,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = service(&s);
        for want in [
            "ID:                 svc1\n",
            "Name:               web\n",
            "Labels:\n tier=front\n",
            "Service Mode:       Replicated\n Replicas:          3\n",
            " Constraints:       [node.role==manager]\n",
            " Artifact:          hello:1\n",
            " Args:              --port 80\n",
            " Target:            /srv\n  Source:           /data\n  ReadOnly:         true\n",
            "  CPU:              0.5\n  Memory:           64MiB\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn node_columns() {
        let mut n = Node {
            status: Some(NodeStatus {
                state: NodeState::NodeReady as i32,
                ..Default::default()
            }),
            manager_status: Some(ManagerStatus {
                leader: true,
                reachable: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(node_state(&n), "Ready");
        assert_eq!(node_availability(&n), "Active");
        assert_eq!(manager_status(&n), "Leader");
        n.manager_status.as_mut().unwrap().leader = false;
        assert_eq!(manager_status(&n), "Reachable");
        n.manager_status.as_mut().unwrap().catching_up = true;
        assert_eq!(manager_status(&n), "Catching up");
        n.manager_status.as_mut().unwrap().reachable = false;
        assert_eq!(manager_status(&n), "Unreachable");
        n.manager_status = None;
        assert_eq!(manager_status(&n), "");
        assert!(node(&n).contains(" State:             Ready\n"));
    }
}
