//! Test builders for nodes and tasks, shared by the scheduler's unit tests.

use std::sync::Arc;

use swarm_proto::task_spec::Runtime;
use swarm_proto::{
    Annotations, Node, NodeAvailability, NodeDescription, NodeRole, NodeSpec, NodeState,
    NodeStatus, OciRuntime, Placement, Platform, ResourceRequirements, Resources, Task, TaskSpec,
    TaskState, TaskStatus, WasmRuntime,
};

pub const MIB: i64 = 1 << 20;
pub const CPU: i64 = 1_000_000_000;

/// A READY, ACTIVE worker unless told otherwise.
pub struct NodeBuilder(pub Node);

impl NodeBuilder {
    pub fn new(id: &str) -> Self {
        NodeBuilder(Node {
            id: id.into(),
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                state: NodeState::NodeReady as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn desc(&mut self) -> &mut NodeDescription {
        self.0.description.get_or_insert_with(Default::default)
    }

    fn labels(&mut self) -> &mut std::collections::HashMap<String, String> {
        &mut self
            .0
            .spec
            .get_or_insert_with(Default::default)
            .annotations
            .get_or_insert_with(Annotations::default)
            .labels
    }

    pub fn hostname(mut self, h: &str) -> Self {
        self.desc().hostname = h.into();
        self
    }

    pub fn manager(mut self) -> Self {
        self.0.role = NodeRole::Manager as i32;
        self
    }

    pub fn platform(mut self, os: &str, arch: &str) -> Self {
        self.desc().platform = Some(Platform {
            os: os.into(),
            architecture: arch.into(),
        });
        self
    }

    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels().insert(k.into(), v.into());
        self
    }

    pub fn engine_label(mut self, k: &str, v: &str) -> Self {
        self.desc().engine_labels.insert(k.into(), v.into());
        self
    }

    pub fn runtimes(mut self, runtimes: &[&str]) -> Self {
        self.desc().runtimes = runtimes.iter().map(|r| r.to_string()).collect();
        self
    }

    pub fn resources(mut self, nano_cpus: i64, memory_bytes: i64) -> Self {
        self.desc().resources = Some(Resources {
            nano_cpus,
            memory_bytes,
        });
        self
    }

    pub fn state(mut self, s: NodeState) -> Self {
        self.0.status.get_or_insert_with(Default::default).state = s as i32;
        self
    }

    pub fn availability(mut self, a: NodeAvailability) -> Self {
        self.0
            .spec
            .get_or_insert_with(Default::default)
            .availability = a as i32;
        self
    }

    pub fn build(self) -> Node {
        self.0
    }

    pub fn arc(self) -> Arc<Node> {
        Arc::new(self.0)
    }
}

/// A PENDING task of a service, desired RUNNING, unless told otherwise.
pub struct TaskBuilder(pub Task);

impl TaskBuilder {
    pub fn new(id: &str, service: &str) -> Self {
        TaskBuilder(Task {
            id: id.into(),
            service_id: service.into(),
            spec_version: 1,
            spec: Some(TaskSpec::default()),
            status: Some(TaskStatus {
                state: TaskState::Pending as i32,
                ..Default::default()
            }),
            desired_state: TaskState::Running as i32,
            ..Default::default()
        })
    }

    fn placement(&mut self) -> &mut Placement {
        self.0
            .spec
            .get_or_insert_with(Default::default)
            .placement
            .get_or_insert_with(Default::default)
    }

    pub fn constraint(mut self, c: &str) -> Self {
        self.placement().constraints.push(c.into());
        self
    }

    pub fn oci(mut self, image: &str) -> Self {
        self.0.spec.get_or_insert_with(Default::default).runtime = Some(Runtime::Oci(OciRuntime {
            image: image.into(),
            ..Default::default()
        }));
        self
    }

    pub fn wasm(mut self, artifact: &str) -> Self {
        self.0.spec.get_or_insert_with(Default::default).runtime =
            Some(Runtime::Wasm(WasmRuntime {
                artifact: artifact.into(),
                ..Default::default()
            }));
        self
    }

    pub fn max_replicas(mut self, n: u64) -> Self {
        self.placement().max_replicas = n;
        self
    }

    pub fn reserve(mut self, nano_cpus: i64, memory_bytes: i64) -> Self {
        self.0.spec.get_or_insert_with(Default::default).resources = Some(ResourceRequirements {
            limits: None,
            reservations: Some(Resources {
                nano_cpus,
                memory_bytes,
            }),
        });
        self
    }

    pub fn spec_version(mut self, v: u64) -> Self {
        self.0.spec_version = v;
        self
    }

    /// Places the task on `node` in `state` (RUNNING tasks already on a node, or a
    /// PENDING task pre-assigned by a global orchestrator).
    pub fn on(mut self, node: &str, state: TaskState) -> Self {
        self.0.node_id = node.into();
        self.0.status.get_or_insert_with(Default::default).state = state as i32;
        self
    }

    pub fn desired(mut self, state: TaskState) -> Self {
        self.0.desired_state = state as i32;
        self
    }

    pub fn build(self) -> Task {
        self.0
    }

    pub fn arc(self) -> Arc<Task> {
        Arc::new(self.0)
    }
}
