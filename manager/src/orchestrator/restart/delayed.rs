//! Delayed starts (SwarmKit's `DelayStart`): a replacement task is created desired READY, so
//! it is scheduled and prepared at once but does not start; it is promoted to desired
//! RUNNING once
//!
//! 1. its restart delay has elapsed, and
//! 2. the tasks it replaces have stopped: they reached a terminal state, never got past
//!    PENDING, are gone, or their node is DOWN or gone — or [`OLD_TASK_TIMEOUT`] passed
//!    (SwarmKit waits at most one minute).
//!
//! Tasks that others create desired READY (the updater's stop-first replacements) are
//! *adopted*: they get no delay, only the wait for their slot's stopping tasks. After a
//! leader change every READY task is adopted with its policy's delay counted from its
//! creation, since the new leader cannot tell who made it.

use std::time::Duration;

use swarm_proto::ext::now_ns;
use swarm_proto::{NodeState, Task, TaskState};
use tokio::time::Instant;

use crate::orchestrator::task::state;
use crate::store::Tables;

/// How long a replacement waits for the task it replaces to stop.
pub const OLD_TASK_TIMEOUT: Duration = Duration::from_secs(60);

/// A replacement waiting to be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingStart {
    /// Not before this.
    pub ready_at: Instant,
    /// Tasks that must stop first.
    pub wait_for: Vec<String>,
    /// Stop waiting for them at this point.
    pub give_up_at: Instant,
}

/// What to do with a pending start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Promote it to desired RUNNING.
    Start,
    /// Look again at this instant (or on an earlier event).
    Wait(Instant),
    /// Forget it: the task is gone or no longer desired READY.
    Drop,
}

impl PendingStart {
    /// A start after `delay` that waits for `wait_for` to stop.
    pub fn new(now: Instant, delay: Duration, wait_for: Vec<String>) -> Self {
        Self {
            ready_at: now + delay,
            wait_for,
            give_up_at: now + OLD_TASK_TIMEOUT,
        }
    }

    /// Adopts `task`, found desired READY in the store: `delay` counts from its creation, and
    /// it waits for whatever in its slot (its node, for a global task) is still stopping.
    pub fn adopt(view: &Tables, task: &Task, delay: Duration, now: Instant) -> Self {
        let created = task.meta.as_ref().map_or(0, |m| m.created_at_ns);
        let age = Duration::from_nanos(now_ns().saturating_sub(created).max(0) as u64);
        Self::new(now, delay.saturating_sub(age), predecessors(view, task))
    }

    /// Whether the task `task_id` may start at `now`.
    pub fn readiness(&self, view: &Tables, task_id: &str, now: Instant) -> Readiness {
        match view.task(task_id) {
            Some(t) if t.desired_state == TaskState::Ready as i32 => {}
            _ => return Readiness::Drop,
        }
        if now < self.ready_at {
            return Readiness::Wait(self.ready_at);
        }
        if now >= self.give_up_at || self.wait_for.iter().all(|id| has_stopped(view, id)) {
            Readiness::Start
        } else {
            Readiness::Wait(self.give_up_at)
        }
    }
}

/// True when the task no longer runs (or never will).
fn has_stopped(view: &Tables, id: &str) -> bool {
    let Some(t) = view.task(id) else {
        return true;
    };
    let s = state(t);
    if s.is_terminal() || s < TaskState::Assigned {
        return true;
    }
    match view.node(&t.node_id) {
        None => true,
        Some(n) => n
            .status
            .as_ref()
            .is_some_and(|s| s.state == NodeState::NodeDown as i32),
    }
}

/// The tasks of `task`'s slot (or node) that were told to stop and have not yet.
fn predecessors(view: &Tables, task: &Task) -> Vec<String> {
    let peers: Vec<&std::sync::Arc<Task>> = if task.slot > 0 {
        view.tasks_by_slot(&task.service_id, task.slot).collect()
    } else {
        view.tasks_by_node(&task.node_id)
            .filter(|t| t.service_id == task.service_id && t.slot == 0)
            .collect()
    };
    peers
        .into_iter()
        .filter(|t| t.id != task.id && t.desired_state > TaskState::Running as i32)
        .filter(|t| !has_stopped(view, &t.id))
        .map(|t| t.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::task::set_desired;
    use crate::orchestrator::testutil::{
        applied, desired, node, node_in, replicated, tables, task,
    };

    #[test]
    fn waits_for_the_delay_then_for_the_old_task() {
        let s = replicated("svc", 1);
        let old = desired(
            task(&s, 1, "n1", TaskState::Running, 1),
            TaskState::Shutdown,
        );
        let new = desired(task(&s, 1, "", TaskState::Pending, 2), TaskState::Ready);
        let view = tables(
            std::slice::from_ref(&s),
            &[node("n1")],
            &[old.clone(), new.clone()],
        );
        let t0 = Instant::now();
        let p = PendingStart::new(t0, Duration::from_secs(5), vec![old.id.clone()]);
        assert_eq!(
            p.readiness(&view, &new.id, t0),
            Readiness::Wait(t0 + Duration::from_secs(5))
        );
        let t5 = t0 + Duration::from_secs(5);
        assert_eq!(
            p.readiness(&view, &new.id, t5),
            Readiness::Wait(p.give_up_at)
        );
        // The old task stops.
        let mut stopped = (*view.task(&old.id).unwrap().clone()).clone();
        stopped.status.as_mut().unwrap().state = TaskState::Shutdown as i32;
        let after = applied(&view, vec![crate::store::update(stopped)]);
        assert_eq!(p.readiness(&after, &new.id, t5), Readiness::Start);
        // Or we give up waiting.
        assert_eq!(p.readiness(&view, &new.id, p.give_up_at), Readiness::Start);
        // A task someone else moved on is forgotten.
        let moved = applied(&view, vec![set_desired(&new.id, TaskState::Remove)]);
        assert_eq!(p.readiness(&moved, &new.id, t5), Readiness::Drop);
    }

    #[test]
    fn adopted_tasks_wait_for_what_is_stopping_in_their_slot() {
        let s = replicated("svc", 1);
        let stopping = desired(
            task(&s, 1, "n1", TaskState::Running, 1),
            TaskState::Shutdown,
        );
        let on_down = desired(
            task(&s, 1, "down", TaskState::Running, 1),
            TaskState::Shutdown,
        );
        let done = desired(task(&s, 1, "n1", TaskState::Failed, 1), TaskState::Shutdown);
        let new = desired(task(&s, 1, "", TaskState::Pending, 2), TaskState::Ready);
        let nodes = [node("n1"), node_in("down", NodeState::NodeDown)];
        let view = tables(
            std::slice::from_ref(&s),
            &nodes,
            &[stopping.clone(), on_down, done, new.clone()],
        );
        let now = Instant::now();
        let p = PendingStart::adopt(&view, &new, Duration::ZERO, now);
        assert_eq!(p.wait_for, [stopping.id]);
        assert_eq!(p.ready_at, now);
    }
}
