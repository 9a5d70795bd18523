//! The filter pipeline: may this task run on this node? Filters run in this order and the
//! first that fails says why:
//!
//! 1. **Ready** — the node reports READY.
//! 2. **Availability** — the node is ACTIVE (not paused or drained).
//! 3. **Runtime** — the node's description lists the task's runtime (`wasm`, `oci`) among
//!    the runtimes its agent's backends run. A node that lists none has not described
//!    itself yet (or predates the field) and is not checked, like an unknown capacity.
//! 4. **Resources** — the task's reservations fit the node's capacity minus what its
//!    occupying tasks reserve (a capacity of 0 is unknown and not checked).
//! 5. **Constraints** — every placement constraint holds ([`super::constraint`]).
//! 6. **MaxReplicas** — fewer than `max_replicas` tasks of the service occupy the node.
//!
//! Resources and MaxReplicas depend on what the scheduler has placed so far, so
//! [`Pipeline::check_capacity`] re-runs just those two. A [`Tally`] of the failures becomes
//! the reason an unschedulable task shows (moby#32999): `no suitable node (3 nodes are not
//! available for new tasks; 1 node has insufficient memory)`.

use std::fmt::Write as _;

use swarm_proto::Task;
use swarm_proto::task_spec::Runtime;

use super::constraint::{self, Constraint, ConstraintError};
use super::node_info::{NodeInfo, Usage};

/// Why one node cannot take a task: the first filter that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    NotReady,
    NotActive,
    /// The node's backends do not run the task's runtime.
    Runtime,
    Resources {
        cpu: bool,
        memory: bool,
    },
    /// The constraint at this index of the pipeline is not satisfied.
    Constraint(usize),
    MaxReplicas,
}

/// The filters a group of identical tasks (same service, same placement and reservations)
/// is checked with.
#[derive(Debug, Clone)]
pub struct Pipeline {
    service_id: String,
    /// `wasm` or `oci`; `None` for a task without a runtime (not checked).
    runtime: Option<&'static str>,
    reservations: Usage,
    constraints: Vec<Constraint>,
    max_replicas: u64,
}

impl Pipeline {
    /// The pipeline for `task`. An invalid constraint (the Control API validates them, so
    /// only an old or hand-written task has one) makes the task unschedulable rather than
    /// silently ignored.
    pub fn new(task: &Task) -> Result<Self, ConstraintError> {
        let placement = task.spec.as_ref().and_then(|s| s.placement.as_ref());
        let constraints = match placement {
            Some(p) => constraint::parse_all(&p.constraints)?,
            None => Vec::new(),
        };
        let runtime = match task.spec.as_ref().and_then(|s| s.runtime.as_ref()) {
            Some(Runtime::Wasm(_)) => Some("wasm"),
            Some(Runtime::Oci(_)) => Some("oci"),
            None => None,
        };
        Ok(Pipeline {
            service_id: task.service_id.clone(),
            runtime,
            reservations: Usage::reserved_by(task),
            constraints,
            max_replicas: placement.map_or(0, |p| p.max_replicas),
        })
    }

    /// The service whose tasks this pipeline checks.
    pub fn service_id(&self) -> &str {
        &self.service_id
    }

    /// Runs every filter in order.
    pub fn check(&self, node: &NodeInfo) -> Result<(), Rejection> {
        if !node.is_ready() {
            return Err(Rejection::NotReady);
        }
        if !node.is_active() {
            return Err(Rejection::NotActive);
        }
        self.check_runtime(node)?;
        self.check_resources(node)?;
        if let Some(n) = node.node()
            && let Some(i) = constraint::first_unsatisfied(&self.constraints, n)
        {
            return Err(Rejection::Constraint(i));
        }
        self.check_max_replicas(node)
    }

    /// Re-runs the filters that placements change: Resources and MaxReplicas.
    pub fn check_capacity(&self, node: &NodeInfo) -> Result<(), Rejection> {
        self.check_resources(node)?;
        self.check_max_replicas(node)
    }

    fn check_runtime(&self, node: &NodeInfo) -> Result<(), Rejection> {
        let Some(want) = self.runtime else {
            return Ok(());
        };
        let offered = node
            .node()
            .and_then(|n| n.description.as_ref())
            .map_or(&[][..], |d| d.runtimes.as_slice());
        if offered.is_empty() || offered.iter().any(|r| r == want) {
            Ok(())
        } else {
            Err(Rejection::Runtime)
        }
    }

    fn check_resources(&self, node: &NodeInfo) -> Result<(), Rejection> {
        let want = self.reservations;
        if want.is_zero() {
            return Ok(());
        }
        let (cap, used) = (node.capacity(), node.reserved());
        let short = |want: i64, cap: i64, used: i64| want > 0 && cap > 0 && want > cap - used;
        let cpu = short(want.nano_cpus, cap.nano_cpus, used.nano_cpus);
        let memory = short(want.memory_bytes, cap.memory_bytes, used.memory_bytes);
        if cpu || memory {
            return Err(Rejection::Resources { cpu, memory });
        }
        Ok(())
    }

    fn check_max_replicas(&self, node: &NodeInfo) -> Result<(), Rejection> {
        if self.max_replicas > 0 && node.service_count(&self.service_id) as u64 >= self.max_replicas
        {
            return Err(Rejection::MaxReplicas);
        }
        Ok(())
    }

    /// What `r` says about one node ("is not ready"), or about several ("are not ready").
    pub fn explain(&self, r: Rejection, plural: bool) -> String {
        let (one, many) = match r {
            Rejection::NotReady => ("is not ready", "are not ready"),
            Rejection::NotActive => (
                "is not available for new tasks",
                "are not available for new tasks",
            ),
            Rejection::Runtime => {
                let verb = if plural { "do not" } else { "does not" };
                let what = self.runtime.unwrap_or("this runtime's");
                return format!("{verb} run {what} tasks");
            }
            Rejection::Resources { cpu, memory } => {
                let what = match (cpu, memory) {
                    (true, true) => "CPU and memory",
                    (true, false) => "CPU",
                    _ => "memory",
                };
                let verb = if plural { "have" } else { "has" };
                return format!("{verb} insufficient {what}");
            }
            Rejection::Constraint(i) => {
                let c = self.constraints.get(i).map(|c| c.to_string());
                let verb = if plural { "do not" } else { "does not" };
                return format!("{verb} satisfy constraint {}", c.unwrap_or_default());
            }
            Rejection::MaxReplicas => {
                let verb = if plural {
                    "already run"
                } else {
                    "already runs"
                };
                return format!(
                    "{verb} the maximum of {} tasks of this service per node",
                    self.max_replicas
                );
            }
        };
        (if plural { many } else { one }).to_string()
    }

    /// The reason a task pre-assigned to `node` cannot run there.
    pub fn explain_preassigned(&self, node: &NodeInfo, r: Rejection) -> String {
        format!(
            "no suitable node (node {} {})",
            describe(node),
            self.explain(r, false)
        )
    }
}

/// `id` or `id (hostname)`.
fn describe(node: &NodeInfo) -> String {
    let host = node
        .node()
        .and_then(|n| n.description.as_ref())
        .map(|d| d.hostname.as_str())
        .filter(|h| !h.is_empty());
    match host {
        Some(h) => format!("{} ({h})", node.id()),
        None => node.id().to_string(),
    }
}

/// How many nodes each filter rejected, for one group of tasks.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// In order of first occurrence; there are only a handful of distinct rejections.
    counts: Vec<(Rejection, usize)>,
}

impl Tally {
    pub fn add(&mut self, r: Rejection) {
        match self.counts.iter_mut().find(|(k, _)| *k == r) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((r, 1)),
        }
    }

    /// `no suitable node (…)`: each rejection with its node count, most frequent first
    /// (ties in pipeline order), joined by `; `.
    pub fn reason(&self, pipeline: &Pipeline) -> String {
        if self.counts.is_empty() {
            return "no suitable node (no nodes in the cluster)".to_string();
        }
        let mut counts = self.counts.clone();
        counts.sort_by_key(|&(r, n)| (std::cmp::Reverse(n), order(r)));
        let mut out = String::from("no suitable node (");
        for (i, (r, n)) in counts.into_iter().enumerate() {
            if i > 0 {
                out.push_str("; ");
            }
            let noun = if n == 1 { "node" } else { "nodes" };
            let _ = write!(out, "{n} {noun} {}", pipeline.explain(r, n != 1));
        }
        out.push(')');
        out
    }
}

/// Pipeline order, for stable explanations.
fn order(r: Rejection) -> (u8, usize) {
    match r {
        Rejection::NotReady => (0, 0),
        Rejection::NotActive => (1, 0),
        Rejection::Runtime => (2, 0),
        Rejection::Resources { cpu, memory } => (3, usize::from(cpu) * 2 + usize::from(memory)),
        Rejection::Constraint(i) => (4, i),
        Rejection::MaxReplicas => (5, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::fixtures::{CPU, MIB, NodeBuilder, TaskBuilder};
    use swarm_proto::{NodeAvailability, NodeState, TaskState};

    fn info(b: NodeBuilder) -> NodeInfo {
        let n = b.arc();
        NodeInfo::new(&n.id.clone(), Some(n))
    }

    fn pipeline(t: TaskBuilder) -> Pipeline {
        Pipeline::new(&t.build()).unwrap()
    }

    #[test]
    fn ready_filter() {
        let p = pipeline(TaskBuilder::new("t", "s"));
        assert_eq!(p.check(&info(NodeBuilder::new("n"))), Ok(()));
        for s in [
            NodeState::NodeDown,
            NodeState::NodeUnknown,
            NodeState::NodeDisconnected,
        ] {
            let r = p.check(&info(NodeBuilder::new("n").state(s)));
            assert_eq!(r, Err(Rejection::NotReady), "{s:?}");
        }
        assert_eq!(
            p.check(&NodeInfo::new("gone", None)),
            Err(Rejection::NotReady)
        );
    }

    #[test]
    fn availability_filter() {
        let p = pipeline(TaskBuilder::new("t", "s"));
        for a in [NodeAvailability::Pause, NodeAvailability::Drain] {
            let r = p.check(&info(NodeBuilder::new("n").availability(a)));
            assert_eq!(r, Err(Rejection::NotActive), "{a:?}");
        }
        // A down, drained node is reported as not ready (the first failing filter).
        let n = NodeBuilder::new("n")
            .state(NodeState::NodeDown)
            .availability(NodeAvailability::Drain);
        assert_eq!(p.check(&info(n)), Err(Rejection::NotReady));
    }

    #[test]
    fn runtime_filter_needs_the_task_runtime_among_the_node_runtimes() {
        let oci = pipeline(TaskBuilder::new("t", "s").oci("busybox"));
        let wasm = pipeline(TaskBuilder::new("t", "s").wasm("hello"));
        let wasi_node = info(NodeBuilder::new("n1").runtimes(&["wasm"]));
        let both = info(NodeBuilder::new("n2").runtimes(&["wasm", "oci"]));
        assert_eq!(oci.check(&wasi_node), Err(Rejection::Runtime));
        assert_eq!(oci.check(&both), Ok(()));
        assert_eq!(wasm.check(&wasi_node), Ok(()));
        // A node that has not described its runtimes is not checked; nor is a task without one.
        assert_eq!(oci.check(&info(NodeBuilder::new("n3"))), Ok(()));
        assert_eq!(
            pipeline(TaskBuilder::new("t", "s")).check(&wasi_node),
            Ok(())
        );
        let mut t = Tally::default();
        t.add(Rejection::Runtime);
        t.add(Rejection::Runtime);
        assert_eq!(
            t.reason(&oci),
            "no suitable node (2 nodes do not run oci tasks)"
        );
        assert_eq!(
            oci.explain_preassigned(&wasi_node, Rejection::Runtime),
            "no suitable node (node n1 does not run oci tasks)"
        );
    }

    #[test]
    fn resources_filter_counts_occupying_tasks_and_ignores_unknown_capacity() {
        let p = pipeline(TaskBuilder::new("t", "s").reserve(CPU, 300 * MIB));
        let mut n = info(NodeBuilder::new("n").resources(2 * CPU, 512 * MIB));
        assert_eq!(p.check(&n), Ok(()));
        n.add(
            &TaskBuilder::new("x", "other")
                .reserve(0, 300 * MIB)
                .on("n", TaskState::Running)
                .build(),
        );
        assert_eq!(
            p.check(&n),
            Err(Rejection::Resources {
                cpu: false,
                memory: true
            })
        );
        n.add(&TaskBuilder::new("y", "other").reserve(CPU + 1, 0).build());
        assert_eq!(
            p.check(&n),
            Err(Rejection::Resources {
                cpu: true,
                memory: true
            })
        );
        // Unknown capacity (0) is not limited; a task without reservations always fits.
        assert_eq!(p.check(&info(NodeBuilder::new("n"))), Ok(()));
        let free = pipeline(TaskBuilder::new("t", "s"));
        assert_eq!(free.check(&n), Ok(()));
        assert_eq!(free.check_capacity(&n), Ok(()));
    }

    #[test]
    fn constraints_filter_names_the_first_unsatisfied_constraint() {
        let p = pipeline(
            TaskBuilder::new("t", "s")
                .constraint("node.role==manager")
                .constraint("node.labels.zone==eu"),
        );
        let mgr_eu = info(NodeBuilder::new("n").manager().label("zone", "eu"));
        let mgr_us = info(NodeBuilder::new("n").manager().label("zone", "us"));
        let worker = info(NodeBuilder::new("n").label("zone", "eu"));
        assert_eq!(p.check(&mgr_eu), Ok(()));
        assert_eq!(p.check(&mgr_us), Err(Rejection::Constraint(1)));
        assert_eq!(p.check(&worker), Err(Rejection::Constraint(0)));
        assert_eq!(
            p.explain(Rejection::Constraint(1), false),
            "does not satisfy constraint node.labels.zone==eu"
        );
    }

    #[test]
    fn invalid_constraints_refuse_the_pipeline() {
        let t = TaskBuilder::new("t", "s")
            .constraint("node.colour==red")
            .build();
        let err = Pipeline::new(&t).unwrap_err();
        assert!(
            err.to_string().contains("unknown key \"node.colour\""),
            "{err}"
        );
    }

    #[test]
    fn max_replicas_filter_counts_only_this_service() {
        let p = pipeline(TaskBuilder::new("t", "web").max_replicas(2));
        let mut n = info(NodeBuilder::new("n"));
        n.add(&TaskBuilder::new("a", "web").build());
        n.add(&TaskBuilder::new("b", "db").build());
        n.add(&TaskBuilder::new("c", "db").build());
        assert_eq!(p.check(&n), Ok(()));
        n.add(&TaskBuilder::new("d", "web").build());
        assert_eq!(p.check(&n), Err(Rejection::MaxReplicas));
        assert_eq!(p.check_capacity(&n), Err(Rejection::MaxReplicas));
        assert_eq!(
            p.explain(Rejection::MaxReplicas, true),
            "already run the maximum of 2 tasks of this service per node"
        );
    }

    #[test]
    fn tally_explains_most_frequent_first() {
        let p = pipeline(TaskBuilder::new("t", "s").constraint("node.role==manager"));
        let mut t = Tally::default();
        assert_eq!(t.reason(&p), "no suitable node (no nodes in the cluster)");
        t.add(Rejection::Resources {
            cpu: false,
            memory: true,
        });
        t.add(Rejection::NotActive);
        t.add(Rejection::NotActive);
        t.add(Rejection::NotActive);
        t.add(Rejection::Constraint(0));
        t.add(Rejection::NotReady);
        assert_eq!(
            t.reason(&p),
            "no suitable node (3 nodes are not available for new tasks; 1 node is not ready; \
             1 node has insufficient memory; 1 node does not satisfy constraint \
             node.role==manager)"
        );
        let n = info(NodeBuilder::new("n1").hostname("box"));
        assert_eq!(
            p.explain_preassigned(&n, Rejection::NotActive),
            "no suitable node (node n1 (box) is not available for new tasks)"
        );
    }
}
