//! Creating tasks from a service, and the questions every orchestrator asks about a task.
//!
//! A task's `desired_state` says what the managers want of it:
//!
//! | desired          | meaning                                                             |
//! |------------------|---------------------------------------------------------------------|
//! | `READY`          | run up to READY and wait: a delayed start (restart delay, stop-first) |
//! | `RUNNING`        | run it                                                              |
//! | `COMPLETE`       | it ended and its restart policy says it must not run again; it keeps |
//! |                  | its slot (so the slot is not refilled) until the spec changes        |
//! | `SHUTDOWN`       | stop it; it is history (the slot has a replacement, or is free)      |
//! | `REMOVE`         | stop it and let the reaper delete it (scale-down, service removed)   |
//!
//! A task is *runnable* while desired ≤ RUNNING. A slot (or, for a global service, a node) is
//! *occupied* while it holds a runnable task or its latest task is desired COMPLETE.

use std::sync::Arc;

use swarm_proto::ext::{new_id, now_ns};
use swarm_proto::{
    Meta, Service, StoreAction, Task, TaskPatch, TaskSpec, TaskState, TaskStatus,
    service_spec::Mode,
};

use crate::store;

/// A new task for `slot` of `service` (slot 0 and `node_id` for a global service): spec
/// copied from the service, status NEW, desired RUNNING.
pub fn new_task(service: &Service, slot: u64, node_id: Option<&str>) -> Task {
    let now = now_ns();
    let spec = service.spec.as_ref();
    Task {
        id: new_id(),
        meta: Some(Meta {
            version: 0,
            created_at_ns: now,
            updated_at_ns: now,
        }),
        service_id: service.id.clone(),
        slot,
        node_id: node_id.unwrap_or_default().to_string(),
        spec: spec.and_then(|s| s.task.clone()),
        spec_version: service_version(service),
        service_annotations: spec.and_then(|s| s.annotations.clone()),
        status: Some(TaskStatus {
            state: TaskState::New as i32,
            timestamp_ns: now,
            message: "created".into(),
            ..Default::default()
        }),
        desired_state: TaskState::Running as i32,
    }
}

/// The service's `Meta.version` (0 before it is stored).
pub fn service_version(service: &Service) -> u64 {
    service.meta.as_ref().map_or(0, |m| m.version)
}

/// The task's observed state.
pub fn state(task: &Task) -> TaskState {
    TaskState::of(task.status.as_ref().map_or(0, |s| s.state))
}

/// The task's desired state.
pub fn desired(task: &Task) -> TaskState {
    TaskState::of(task.desired_state)
}

/// True while the managers want the task to run (desired ≤ RUNNING).
pub fn is_runnable(task: &Task) -> bool {
    task.desired_state <= TaskState::Running as i32
}

/// True when the task ended and its restart policy said not to run it again.
pub fn is_finished_for_good(task: &Task) -> bool {
    task.desired_state == TaskState::Complete as i32
}

/// True when the task runs the service's current task spec. A task created from the current
/// service version is; otherwise the specs are compared, so a change that leaves the task
/// spec alone (scaling, renaming) does not make tasks out of date.
pub fn is_up_to_date(task: &Task, service: &Service) -> bool {
    if task.spec_version == service_version(service) {
        return true;
    }
    let current = service.spec.as_ref().and_then(|s| s.task.as_ref());
    task.spec.as_ref() == current || (task.spec.is_none() && current == Some(&TaskSpec::default()))
}

/// Creation time of a task, then its id: the order in which tasks of a slot were made.
pub fn age_key(task: &Task) -> (i64, &str) {
    (
        task.meta.as_ref().map_or(0, |m| m.created_at_ns),
        task.id.as_str(),
    )
}

/// The most recently created task, if any.
pub fn latest<'a>(tasks: impl IntoIterator<Item = &'a Arc<Task>>) -> Option<&'a Arc<Task>> {
    tasks.into_iter().max_by(|a, b| age_key(a).cmp(&age_key(b)))
}

/// True when the tasks occupy their slot (or node): one is runnable, or the latest one is
/// finished for good.
pub fn occupies<'a>(tasks: impl IntoIterator<Item = &'a Arc<Task>> + Clone) -> bool {
    tasks.clone().into_iter().any(|t| is_runnable(t))
        || latest(tasks).is_some_and(|t| is_finished_for_good(t))
}

/// The service's mode, if set.
pub fn mode(service: &Service) -> Option<&Mode> {
    service.spec.as_ref().and_then(|s| s.mode.as_ref())
}

/// The replica count of a replicated service (`None` for other modes).
pub fn replicas(service: &Service) -> Option<u64> {
    match mode(service) {
        Some(Mode::Replicated(r)) => Some(r.replicas),
        _ => None,
    }
}

/// True for a replicated (not job) service.
pub fn is_replicated(service: &Service) -> bool {
    matches!(mode(service), Some(Mode::Replicated(_)))
}

/// True for a global (not job) service.
pub fn is_global(service: &Service) -> bool {
    matches!(mode(service), Some(Mode::Global(_)))
}

/// A patch raising the task's desired state to `desired` (a no-op conflict if it is
/// already there or past it).
pub fn set_desired(task_id: &str, desired: TaskState) -> StoreAction {
    store::patch_task(TaskPatch {
        task_id: task_id.to_string(),
        desired_state: Some(desired as i32),
        ..Default::default()
    })
}

/// Marks every task of a service that is not yet desired REMOVE for removal (the service is
/// gone; the reaper deletes them once they stopped).
pub fn remove_all<'a>(tasks: impl IntoIterator<Item = &'a Arc<Task>>) -> Vec<StoreAction> {
    tasks
        .into_iter()
        .filter(|t| t.desired_state < TaskState::Remove as i32)
        .map(|t| set_desired(&t.id, TaskState::Remove))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::testutil::replicated;
    use swarm_proto::ReplicatedService;

    #[test]
    fn new_task_copies_the_service_spec_and_starts_new() {
        let s = replicated("svc", 3);
        let t = new_task(&s, 2, None);
        assert_eq!(t.id.len(), 25);
        assert_eq!(t.service_id, "svc");
        assert_eq!(t.slot, 2);
        assert_eq!(t.node_id, "");
        assert_eq!(t.spec_version, 7);
        assert_eq!(t.spec, s.spec.as_ref().unwrap().task);
        assert_eq!(t.service_annotations.as_ref().unwrap().name, "svc");
        assert_eq!(state(&t), TaskState::New);
        assert_eq!(t.status.as_ref().unwrap().message, "created");
        assert!(t.status.as_ref().unwrap().timestamp_ns > 0);
        assert_eq!(desired(&t), TaskState::Running);
        let meta = t.meta.unwrap();
        assert_eq!(meta.created_at_ns, meta.updated_at_ns);
        let g = new_task(&s, 0, Some("n1"));
        assert_eq!(g.node_id, "n1");
    }

    #[test]
    fn up_to_date_ignores_version_bumps_that_keep_the_task_spec() {
        let mut s = replicated("svc", 3);
        let t = new_task(&s, 1, None);
        assert!(is_up_to_date(&t, &s));
        // Scaled: new version, same task spec.
        s.meta.as_mut().unwrap().version = 9;
        s.spec.as_mut().unwrap().mode = Some(Mode::Replicated(ReplicatedService { replicas: 5 }));
        assert!(is_up_to_date(&t, &s));
        // Forced update: the task spec changes.
        s.spec.as_mut().unwrap().task.as_mut().unwrap().force_update = 1;
        assert!(!is_up_to_date(&t, &s));
    }

    #[test]
    fn runnable_and_occupancy() {
        let s = replicated("svc", 1);
        let mut a = new_task(&s, 1, None);
        a.meta.as_mut().unwrap().created_at_ns = 1;
        let mut b = new_task(&s, 1, None);
        b.meta.as_mut().unwrap().created_at_ns = 2;
        assert!(is_runnable(&a));
        a.desired_state = TaskState::Shutdown as i32;
        b.desired_state = TaskState::Complete as i32;
        let (a, b) = (Arc::new(a), Arc::new(b));
        assert!(!is_runnable(&a) && !is_runnable(&b));
        assert!(occupies([&a, &b]), "latest is finished for good");
        assert!(!occupies([&a]), "a shut-down task frees its slot");
        assert!(!occupies(std::iter::empty::<&Arc<Task>>()));
    }
}
