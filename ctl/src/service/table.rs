//! The `service ls` table.

use std::collections::{HashMap, HashSet};

use swarm_proto::service_spec::Mode;
use swarm_proto::{Service, ServiceSpec, Task, TaskState};

use super::service_name;
use crate::output::{Table, short_id};
use crate::task::{artifact, display_artifact};

/// The `service ls` table: ID, NAME, MODE, REPLICAS, IMAGE, PORTS.
pub fn service_table(services: &[Service], tasks: &[Task]) -> Table {
    let mut by_service: HashMap<&str, Vec<&Task>> = HashMap::new();
    for t in tasks {
        by_service.entry(t.service_id.as_str()).or_default().push(t);
    }
    let mut table = Table::new(&["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]);
    for s in services {
        let spec = s.spec.clone().unwrap_or_default();
        let tasks = by_service.get(s.id.as_str()).map_or(&[][..], Vec::as_slice);
        let ports: Vec<String> = spec
            .endpoint
            .iter()
            .flat_map(|e| &e.ports)
            .map(|p| {
                let published = if p.published_port == 0 {
                    String::new()
                } else {
                    p.published_port.to_string()
                };
                format!("*:{published}->{}/{}", p.target_port, p.protocol)
            })
            .collect();
        table.row(vec![
            short_id(&s.id, false).to_owned(),
            service_name(s).unwrap_or_default().to_owned(),
            mode_name(spec.mode.as_ref()).to_owned(),
            replicas(&spec, tasks),
            display_artifact(&artifact(spec.task.as_ref()), false),
            ports.join(", "),
        ]);
    }
    table
}

fn mode_name(mode: Option<&Mode>) -> &'static str {
    match mode {
        Some(Mode::Replicated(_)) | None => "replicated",
        Some(Mode::Global(_)) => "global",
        Some(Mode::ReplicatedJob(_)) => "replicated job",
        Some(Mode::GlobalJob(_)) => "global job",
    }
}

/// Docker's REPLICAS cell: `running/desired`, jobs add `(completed/total completed)`,
/// and `(max N per node)` when set.
fn replicas(spec: &ServiceSpec, tasks: &[&Task]) -> String {
    let state = |t: &Task| TaskState::of(t.status.as_ref().map_or(0, |s| s.state));
    let desired = |t: &Task| TaskState::of(t.desired_state);
    let running = tasks
        .iter()
        .filter(|t| state(t) == TaskState::Running && desired(t) <= TaskState::Complete)
        .count() as u64;
    let completed = tasks
        .iter()
        .filter(|t| state(t) == TaskState::Complete)
        .count() as u64;
    let meant = tasks
        .iter()
        .filter(|t| desired(t) <= TaskState::Complete && state(t) <= TaskState::Complete)
        .count() as u64;
    let mut cell = match spec.mode {
        Some(Mode::Replicated(r)) => format!("{running}/{}", r.replicas),
        None => format!("{running}/0"),
        Some(Mode::Global(_)) => format!("{running}/{meant}"),
        Some(Mode::ReplicatedJob(j)) => {
            let left = j.total_completions.saturating_sub(completed);
            format!(
                "{running}/{} ({completed}/{} completed)",
                j.max_concurrent.min(left),
                j.total_completions
            )
        }
        Some(Mode::GlobalJob(_)) => {
            let nodes = tasks
                .iter()
                .map(|t| t.node_id.as_str())
                .collect::<HashSet<_>>();
            format!(
                "{running}/{} ({completed}/{} completed)",
                meant - completed.min(meant),
                nodes.len()
            )
        }
    };
    let max = spec
        .task
        .as_ref()
        .and_then(|t| t.placement.as_ref())
        .map_or(0, |p| p.max_replicas);
    if max > 0 && matches!(spec.mode, Some(Mode::Replicated(_))) {
        cell.push_str(&format!(" (max {max} per node)"));
    }
    cell
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_proto::task_spec::Runtime;
    use swarm_proto::{
        Annotations, EndpointSpec, GlobalService, Placement, PortConfig, ReplicatedJob,
        ReplicatedService, TaskSpec, TaskStatus, WasmRuntime,
    };

    fn svc(id: &str, name: &str, mode: Mode) -> Service {
        Service {
            id: id.into(),
            spec: Some(ServiceSpec {
                annotations: Some(Annotations {
                    name: name.into(),
                    ..Default::default()
                }),
                mode: Some(mode),
                task: Some(TaskSpec {
                    runtime: Some(Runtime::Wasm(WasmRuntime {
                        artifact: "hello:1".into(),
                        ..Default::default()
                    })),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn task(service: &str, state: TaskState, desired: TaskState) -> Task {
        Task {
            service_id: service.into(),
            status: Some(TaskStatus {
                state: state as i32,
                ..Default::default()
            }),
            desired_state: desired as i32,
            ..Default::default()
        }
    }

    #[test]
    fn ls_table_counts_running_over_desired() {
        let mut web = svc(
            "0123456789abcdefghijklmno",
            "web",
            Mode::Replicated(ReplicatedService { replicas: 5 }),
        );
        web.spec.as_mut().unwrap().endpoint = Some(EndpointSpec {
            ports: vec![PortConfig {
                protocol: "tcp".into(),
                target_port: 80,
                published_port: 8080,
                ..Default::default()
            }],
        });
        web.spec.as_mut().unwrap().task.as_mut().unwrap().placement = Some(Placement {
            constraints: vec![],
            max_replicas: 2,
        });
        let agent = svc("zzz", "agent", Mode::Global(GlobalService {}));
        let job = svc(
            "jjj",
            "migrate",
            Mode::ReplicatedJob(ReplicatedJob {
                max_concurrent: 2,
                total_completions: 4,
            }),
        );
        let mut tasks = vec![
            task(
                "0123456789abcdefghijklmno",
                TaskState::Running,
                TaskState::Running
            );
            3
        ];
        tasks.push(task(
            "0123456789abcdefghijklmno",
            TaskState::Running,
            TaskState::Shutdown,
        ));
        tasks.push(task(
            "0123456789abcdefghijklmno",
            TaskState::Preparing,
            TaskState::Running,
        ));
        tasks.push(task("zzz", TaskState::Running, TaskState::Running));
        tasks.push(task("zzz", TaskState::Starting, TaskState::Running));
        tasks.push(task("jjj", TaskState::Complete, TaskState::Complete));
        tasks.push(task("jjj", TaskState::Running, TaskState::Complete));
        let out = service_table(&[web, agent, job], &tasks).render();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "ID             NAME      MODE             REPLICAS               IMAGE     PORTS"
        );
        assert_eq!(
            lines[1],
            "0123456789ab   web       replicated       3/5 (max 2 per node)   hello:1   *:8080->80/tcp"
        );
        assert_eq!(
            lines[2],
            "zzz            agent     global           1/2                    hello:1"
        );
        assert_eq!(
            lines[3],
            "jjj            migrate   replicated job   1/2 (1/4 completed)    hello:1"
        );
    }
}
