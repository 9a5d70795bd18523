//! [`ByRuntime`]: one backend made of several, each task going to the backend that runs its
//! runtime (`wasm` → WASI, `oci` → OCI). The node describes itself with every runtime its
//! parts run, so the scheduler places a task only where one of them can run it.

use std::sync::Arc;

use swarm_proto::task_spec::Runtime;
use swarm_proto::{NodeDescription, Task};

use super::{Backend, Controller, ExecError};

/// Dispatches tasks by runtime to the first part that lists it.
pub struct ByRuntime {
    parts: Vec<(Vec<String>, Arc<dyn Backend>)>,
}

impl ByRuntime {
    /// A backend over `parts`, in order of preference.
    pub fn new(parts: Vec<Arc<dyn Backend>>) -> Self {
        Self {
            parts: parts
                .into_iter()
                .map(|b| (b.describe().runtimes, b))
                .collect(),
        }
    }
}

/// The runtime name of a task (`wasm`, `oci`), as nodes list them.
pub fn runtime_name(task: &Task) -> Option<&'static str> {
    match task.spec.as_ref()?.runtime.as_ref()? {
        Runtime::Wasm(_) => Some("wasm"),
        Runtime::Oci(_) => Some("oci"),
    }
}

impl Backend for ByRuntime {
    /// The first part's platform and resources, with the runtimes of all parts (in order,
    /// without repeats).
    fn describe(&self) -> NodeDescription {
        let mut description = self
            .parts
            .first()
            .map(|(_, b)| b.describe())
            .unwrap_or_default();
        description.runtimes.clear();
        for (runtimes, _) in &self.parts {
            for r in runtimes {
                if !description.runtimes.contains(r) {
                    description.runtimes.push(r.clone());
                }
            }
        }
        description
    }

    fn controller(&self, task: &Task) -> Result<Box<dyn Controller>, ExecError> {
        let Some(want) = runtime_name(task) else {
            return Err(ExecError::InvalidTask("task spec has no runtime".into()));
        };
        match self.parts.iter().find(|(r, _)| r.iter().any(|r| r == want)) {
            Some((_, backend)) => backend.controller(task),
            None => {
                let offered: Vec<&str> = self
                    .parts
                    .iter()
                    .flat_map(|(r, _)| r.iter().map(String::as_str))
                    .collect();
                Err(ExecError::InvalidTask(format!(
                    "this node does not run {want} tasks (it runs: {})",
                    offered.join(", ")
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use swarm_proto::{OciRuntime, TaskSpec, WasmRuntime};

    use super::*;
    use crate::exec::NullBackend;

    /// A part that runs only the runtimes it is told, counting its controllers.
    struct Only(&'static str, NullBackend);

    impl Backend for Only {
        fn describe(&self) -> NodeDescription {
            NodeDescription {
                runtimes: vec![self.0.to_string()],
                ..self.1.describe()
            }
        }
        fn controller(&self, task: &Task) -> Result<Box<dyn Controller>, ExecError> {
            self.1.controller(task)
        }
    }

    fn task(runtime: Runtime) -> Task {
        Task {
            spec: Some(TaskSpec {
                runtime: Some(runtime),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn tasks_go_to_the_part_that_runs_their_runtime() {
        let (wasm, oci) = (NullBackend::new(), NullBackend::new());
        let both = ByRuntime::new(vec![
            Arc::new(Only("wasm", wasm.clone())),
            Arc::new(Only("oci", oci.clone())),
        ]);
        assert_eq!(both.describe().runtimes, vec!["wasm", "oci"]);
        let _c = both
            .controller(&task(Runtime::Oci(OciRuntime::default())))
            .unwrap();
        assert_eq!(
            (
                wasm.stats().controllers_created,
                oci.stats().controllers_created
            ),
            (0, 1)
        );
        let _c = both
            .controller(&task(Runtime::Wasm(WasmRuntime::default())))
            .unwrap();
        assert_eq!(wasm.stats().controllers_created, 1);

        let wasm_only = ByRuntime::new(vec![Arc::new(Only("wasm", NullBackend::new()))]);
        let err = wasm_only
            .controller(&task(Runtime::Oci(OciRuntime::default())))
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "invalid task: this node does not run oci tasks (it runs: wasm)"
        );
        assert!(wasm_only.controller(&Task::default()).is_err());
    }
}
