//! What an agent must be told: the complete set of its tasks, then changes. Pure functions
//! from a store view or from watch events to assignment messages.

use std::collections::HashMap;

use swarm_proto::{
    AssignmentChange, AssignmentsMessage, Task, TaskState, assignment_change::Action,
    assignments_message::Type,
};

use crate::store::{Event, Object, Tables};

/// A task is the agent's business once the scheduler has assigned it to the node.
fn visible_on(task: &Task, node_id: &str) -> bool {
    task.node_id == node_id
        && task.status.as_ref().map_or(0, |s| s.state) >= TaskState::Assigned as i32
}

/// Everything the node must hold: sent first on every Assignments stream.
pub(super) fn complete(view: &Tables, node_id: &str) -> AssignmentsMessage {
    AssignmentsMessage {
        r#type: Type::Complete as i32,
        changes: view
            .tasks_by_node(node_id)
            .filter(|t| visible_on(t, node_id))
            .map(|t| change(Action::Update, t))
            .collect(),
    }
}

fn change(action: Action, task: &Task) -> AssignmentChange {
    AssignmentChange {
        action: action as i32,
        task: Some(task.clone()),
    }
}

/// True if the agent must hear about `new`, given it already holds `old`. A change of status
/// alone is the agent's own report coming back, and is not sent (SwarmKit does the same).
fn worth_sending(old: &Task, new: &Task) -> bool {
    old.desired_state != new.desired_state
        || old.spec != new.spec
        || old.spec_version != new.spec_version
}

/// The changes that `events` make to what `node_id` holds, one per task (the last wins),
/// in order of first appearance.
pub(super) fn incremental<'a>(
    node_id: &str,
    events: impl IntoIterator<Item = &'a Event>,
) -> Vec<AssignmentChange> {
    let mut out: Vec<AssignmentChange> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    let mut put = |c: AssignmentChange| {
        let id = c.task.as_ref().map(|t| t.id.clone()).unwrap_or_default();
        match position.get(&id) {
            Some(&i) => out[i] = c,
            None => {
                position.insert(id, out.len());
                out.push(c);
            }
        }
    };
    for ev in events {
        let (old, new) = match ev {
            Event::Created(Object::Task(t)) => (None, Some(t)),
            Event::Updated {
                old: Object::Task(o),
                new: Object::Task(n),
            } => (Some(o), Some(n)),
            Event::Removed(Object::Task(t)) => (Some(t), None),
            _ => continue,
        };
        let held = old.filter(|o| visible_on(o, node_id));
        match (held, new.filter(|n| visible_on(n, node_id))) {
            (None, Some(n)) => put(change(Action::Update, n)),
            (Some(o), Some(n)) if worth_sending(o, n) => put(change(Action::Update, n)),
            (Some(_), Some(_)) => {}
            (Some(o), None) => put(change(Action::Remove, o)),
            (None, None) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use swarm_proto::TaskStatus;

    use super::*;

    fn task(id: &str, node: &str, state: TaskState, desired: TaskState) -> Arc<Task> {
        Arc::new(Task {
            id: id.into(),
            node_id: node.into(),
            status: Some(TaskStatus {
                state: state as i32,
                ..Default::default()
            }),
            desired_state: desired as i32,
            ..Default::default()
        })
    }

    fn upd(old: Arc<Task>, new: Arc<Task>) -> Event {
        Event::Updated {
            old: Object::Task(old),
            new: Object::Task(new),
        }
    }

    fn actions(changes: &[AssignmentChange]) -> Vec<(String, i32)> {
        changes
            .iter()
            .map(|c| (c.task.as_ref().unwrap().id.clone(), c.action))
            .collect()
    }

    #[test]
    fn assignment_is_sent_once_the_scheduler_assigns() {
        use TaskState::*;
        let pending = task("t1", "", Pending, Running);
        let assigned = task("t1", "n1", Assigned, Running);
        let evs = [
            Event::Created(Object::Task(pending.clone())),
            upd(pending, assigned),
        ];
        let out = incremental("n1", &evs);
        assert_eq!(actions(&out), [("t1".to_string(), Action::Update as i32)]);
        assert!(incremental("n2", &evs).is_empty());
    }

    #[test]
    fn status_only_changes_are_not_echoed_but_desired_state_is() {
        use TaskState::*;
        let a = task("t1", "n1", Assigned, Running);
        let b = task("t1", "n1", Running, Running);
        assert!(incremental("n1", &[upd(a, b.clone())]).is_empty());
        let c = task("t1", "n1", Running, Shutdown);
        assert_eq!(incremental("n1", &[upd(b, c)]).len(), 1);
    }

    #[test]
    fn removal_and_moving_away_send_remove_and_last_change_wins() {
        use TaskState::*;
        let a = task("t1", "n1", Running, Running);
        let b = task("t1", "n1", Running, Shutdown);
        let evs = [upd(a, b.clone()), Event::Removed(Object::Task(b))];
        assert_eq!(
            actions(&incremental("n1", &evs)),
            [("t1".to_string(), Action::Remove as i32)]
        );
    }
}
