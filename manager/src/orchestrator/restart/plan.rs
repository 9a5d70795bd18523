//! What the restart supervisor writes for one stopped task: a pure function of the view.
//!
//! | situation                                        | actions (one atomic write)                     |
//! |--------------------------------------------------|------------------------------------------------|
//! | restart                                          | old desired SHUTDOWN + replacement created     |
//! | restart condition/attempts say no                | old desired COMPLETE (keeps its slot, see `task`) |
//! | global task ended on a node that is paused, no   | old desired SHUTDOWN (the global orchestrator  |
//! | longer eligible or gone                          | decides what that node runs)                   |
//! | another runnable task holds the slot (start-first | old desired SHUTDOWN, no replacement          |
//! | update in flight)                                |                                                |
//!
//! The replacement takes the old task's slot (replicated) or node (global) and the service's
//! *current* spec. It is created desired READY when its start must wait (a delay, or an old
//! task still running on a drained node), else desired RUNNING. Writing the stop and the
//! replacement atomically means no one ever sees the slot empty, and a second decision made
//! from a stale view fails as a whole instead of creating a second replacement.

use std::collections::HashMap;
use std::time::Duration;

use swarm_proto::{StoreAction, Task, TaskState};
use tokio::time::Instant;

use super::decision::{
    Decision, NoRestart, RestartHistory, StopCause, policy_of, restart_decision, stop_cause,
};
use super::delayed::PendingStart;
use crate::orchestrator::global::eligibility::{Constraints, Placement, placement};
use crate::orchestrator::task::{
    is_global, is_replicated, is_runnable, new_task, set_desired, state,
};
use crate::store::{self, Tables};

/// The restart history of one slot (replicated) or one node (global) of a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceKey {
    pub service_id: String,
    /// 0 for a global service.
    pub slot: u64,
    /// "" for a replicated service.
    pub node_id: String,
}

/// What a [`Plan`] does, for the supervisor's bookkeeping once it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A replacement was created.
    Restarted {
        replacement: String,
        /// Set when the replacement waits (created desired READY).
        pending: Option<PendingStart>,
        /// Set when the restart counts against `max_attempts`: the key, the task spec
        /// version and the window.
        counted: Option<(InstanceKey, u64, Duration)>,
    },
    /// The task stays stopped for good.
    Declined(NoRestart),
    /// The task was stopped without a replacement (global task on an ineligible node, or
    /// another runnable task holds the slot).
    Stopped,
}

/// The actions for one stopped task, to be written atomically.
#[derive(Debug, Clone)]
pub struct Plan {
    pub task_id: String,
    pub actions: Vec<StoreAction>,
    pub outcome: Outcome,
}

/// The plan for `task`, or `None` when it needs nothing from the restart supervisor (still
/// running where it should, not runnable, or its service is gone or of another mode).
pub fn plan(
    view: &Tables,
    task: &Task,
    histories: &HashMap<InstanceKey, RestartHistory>,
    now: Instant,
) -> Option<Plan> {
    let service = view.service(&task.service_id)?;
    let global = is_global(service);
    if !global && !is_replicated(service) {
        return None;
    }
    let cause = stop_cause(view, task, global)?;
    let plan = |actions, outcome| {
        Some(Plan {
            task_id: task.id.clone(),
            actions,
            outcome,
        })
    };
    if global {
        let eligible = view
            .node(&task.node_id)
            .is_some_and(|n| placement(n, &Constraints::of(service)) == Placement::Run);
        if !eligible {
            return plan(
                vec![set_desired(&task.id, TaskState::Shutdown)],
                Outcome::Stopped,
            );
        }
    }
    // Another runnable task still holds the slot (a start-first update in flight): stop
    // this one, replace nothing.
    let mut peers: Box<dyn Iterator<Item = &std::sync::Arc<Task>>> = if global {
        Box::new(
            view.tasks_by_node(&task.node_id)
                .filter(|t| t.service_id == task.service_id),
        )
    } else {
        Box::new(view.tasks_by_slot(&task.service_id, task.slot))
    };
    if peers.any(|t| t.id != task.id && is_runnable(t)) {
        return plan(
            vec![set_desired(&task.id, TaskState::Shutdown)],
            Outcome::Stopped,
        );
    }
    let key = InstanceKey {
        service_id: task.service_id.clone(),
        slot: if global { 0 } else { task.slot },
        node_id: if global {
            task.node_id.clone()
        } else {
            String::new()
        },
    };
    let policy = policy_of(task);
    let history = histories.get(&key).cloned().unwrap_or_default();
    match restart_decision(&policy, &history, task, cause, now) {
        Decision::NoRestart(why) => plan(
            vec![set_desired(&task.id, TaskState::Complete)],
            Outcome::Declined(why),
        ),
        Decision::Restart { after } => {
            let mut replacement = new_task(service, key.slot, global.then_some(&*task.node_id));
            // On a drained node the old task still runs: start the new one once it stopped.
            let old_running = cause == StopCause::NodeDrained && state(task) >= TaskState::Assigned;
            let pending = (!after.is_zero() || old_running).then(|| {
                let wait_for = if old_running {
                    vec![task.id.clone()]
                } else {
                    Vec::new()
                };
                PendingStart::new(now, after, wait_for)
            });
            if pending.is_some() {
                replacement.desired_state = TaskState::Ready as i32;
            }
            let counted = (cause == StopCause::Exited && policy.max_attempts > 0).then(|| {
                (
                    key.clone(),
                    task.spec_version,
                    Duration::from_millis(policy.window_ms),
                )
            });
            let outcome = Outcome::Restarted {
                replacement: replacement.id.clone(),
                pending,
                counted,
            };
            plan(
                vec![
                    set_desired(&task.id, TaskState::Shutdown),
                    store::create(replacement),
                ],
                outcome,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::task::desired;
    use crate::orchestrator::testutil::{
        applied, global, node, node_with, replicated, tables, task, tasks_of, with_constraints,
        with_restart,
    };
    use swarm_proto::{NodeAvailability, RestartCondition};

    fn histories() -> HashMap<InstanceKey, RestartHistory> {
        HashMap::new()
    }

    #[test]
    fn t10_a_failed_task_is_replaced_in_its_slot_after_the_delay() {
        let s = with_restart(replicated("svc", 1), RestartCondition::RestartAny, 5_000);
        let failed = task(&s, 3, "n1", TaskState::Failed, 1);
        let view = tables(
            std::slice::from_ref(&s),
            &[node("n1")],
            std::slice::from_ref(&failed),
        );
        let now = Instant::now();
        let p = plan(&view, &failed, &histories(), now).expect("a plan");
        let Outcome::Restarted {
            replacement,
            pending,
            counted,
        } = &p.outcome
        else {
            panic!("{p:?}")
        };
        assert_eq!(
            pending.as_ref().unwrap().ready_at,
            now + Duration::from_secs(5)
        );
        assert!(
            pending.as_ref().unwrap().wait_for.is_empty(),
            "the old task is already dead"
        );
        assert!(counted.is_none(), "unlimited attempts need no history");
        let after = applied(&view, p.actions);
        assert_eq!(
            desired(after.task(&failed.id).unwrap()),
            TaskState::Shutdown
        );
        let new = after.task(replacement).unwrap();
        assert_eq!((new.slot, new.node_id.as_str()), (3, ""));
        assert_eq!(desired(new), TaskState::Ready);
        assert_eq!(state(new), TaskState::New);
    }

    #[test]
    fn t11_no_delay_means_desired_running_at_once() {
        let s = with_restart(replicated("svc", 1), RestartCondition::RestartAny, 0);
        let failed = task(&s, 1, "n1", TaskState::Failed, 1);
        let view = tables(
            std::slice::from_ref(&s),
            &[node("n1")],
            std::slice::from_ref(&failed),
        );
        let p = plan(&view, &failed, &histories(), Instant::now()).unwrap();
        let after = applied(&view, p.actions);
        let new: Vec<_> = tasks_of(&after, "svc")
            .into_iter()
            .filter(|t| t.id != failed.id)
            .collect();
        assert_eq!(desired(&new[0]), TaskState::Running);
    }

    #[test]
    fn t12_declined_restarts_keep_the_slot() {
        let s = with_restart(replicated("svc", 1), RestartCondition::RestartNone, 0);
        let done = task(&s, 1, "n1", TaskState::Complete, 1);
        let view = tables(
            std::slice::from_ref(&s),
            &[node("n1")],
            std::slice::from_ref(&done),
        );
        let p = plan(&view, &done, &histories(), Instant::now()).unwrap();
        assert_eq!(p.outcome, Outcome::Declined(NoRestart::ConditionNone));
        let after = applied(&view, p.actions);
        assert_eq!(desired(after.task(&done.id).unwrap()), TaskState::Complete);
        assert_eq!(after.task_count(), 1);
        assert!(crate::orchestrator::replicated::reconcile(&after, &s).is_empty());
    }

    #[test]
    fn t13_a_task_on_a_drained_node_waits_for_the_old_one() {
        let s = replicated("svc", 1);
        let running = task(&s, 1, "n1", TaskState::Running, 1);
        let view = tables(
            std::slice::from_ref(&s),
            &[node_with("n1", NodeAvailability::Drain)],
            std::slice::from_ref(&running),
        );
        let now = Instant::now();
        let p = plan(&view, &running, &histories(), now).unwrap();
        let Outcome::Restarted {
            pending: Some(pending),
            ..
        } = &p.outcome
        else {
            panic!("{p:?}")
        };
        assert_eq!(pending.ready_at, now, "no delay on drain");
        assert_eq!(pending.wait_for, std::slice::from_ref(&running.id));
    }

    #[test]
    fn t14_global_tasks_restart_on_their_node_unless_it_is_ineligible() {
        let s = with_restart(global("g"), RestartCondition::RestartAny, 0);
        let on_a = task(&s, 0, "a", TaskState::Failed, 1);
        let on_paused = task(&s, 0, "p", TaskState::Failed, 1);
        let nodes = [node("a"), node_with("p", NodeAvailability::Pause)];
        let view = tables(
            std::slice::from_ref(&s),
            &nodes,
            &[on_a.clone(), on_paused.clone()],
        );
        let now = Instant::now();
        let p = plan(&view, &on_a, &histories(), now).unwrap();
        let after = applied(&view, p.actions);
        let new: Vec<_> = after
            .tasks_by_node("a")
            .filter(|t| t.id != on_a.id)
            .cloned()
            .collect();
        assert_eq!((new[0].slot, desired(&new[0])), (0, TaskState::Running));
        let p = plan(&view, &on_paused, &histories(), now).unwrap();
        assert_eq!(p.outcome, Outcome::Stopped);
        let excluded = with_constraints(s.clone(), &["node.hostname==b"]);
        let view = tables(&[excluded], &[node("a")], std::slice::from_ref(&on_a));
        assert_eq!(
            plan(&view, &on_a, &histories(), now).unwrap().outcome,
            Outcome::Stopped
        );
    }

    #[test]
    fn t15_running_tasks_and_unknown_services_need_nothing() {
        let s = replicated("svc", 1);
        let running = task(&s, 1, "n1", TaskState::Running, 1);
        let view = tables(
            std::slice::from_ref(&s),
            &[node("n1")],
            std::slice::from_ref(&running),
        );
        assert!(plan(&view, &running, &histories(), Instant::now()).is_none());
        let orphan = task(&replicated("gone", 1), 1, "n1", TaskState::Failed, 1);
        assert!(plan(&view, &orphan, &histories(), Instant::now()).is_none());
    }

    #[test]
    fn t16_a_slot_still_held_by_another_task_gets_no_replacement() {
        let s = replicated("svc", 1);
        let failed = task(&s, 1, "n1", TaskState::Failed, 1);
        let other = task(&s, 1, "n1", TaskState::Running, 2);
        let view = tables(
            std::slice::from_ref(&s),
            &[node("n1")],
            &[failed.clone(), other],
        );
        let p = plan(&view, &failed, &histories(), Instant::now()).unwrap();
        assert_eq!(p.outcome, Outcome::Stopped);
    }
}
