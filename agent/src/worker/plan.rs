//! Pure decisions of the worker: what a COMPLETE or INCREMENTAL assignment message means given
//! the ids currently assigned.

use std::collections::{BTreeMap, HashSet};

use swarm_proto::{AssignmentChange, Task, assignment_change::Action};

/// What one assignment message asks of the worker.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Plan {
    /// Tasks to store and run (new) or update (desired state).
    pub(crate) upserts: Vec<Task>,
    /// Assigned task ids to shut down, remove and forget.
    pub(crate) removals: Vec<String>,
}

/// A COMPLETE set replaces what is assigned: everything absent from it is removed.
/// Duplicate ids keep the last copy; tasks without an id are ignored.
pub(crate) fn plan_complete(assigned: &HashSet<String>, set: Vec<Task>) -> Plan {
    let mut upserts: BTreeMap<String, Task> = BTreeMap::new();
    for task in set.into_iter().filter(|t| !t.id.is_empty()) {
        upserts.insert(task.id.clone(), task);
    }
    let mut removals: Vec<String> = assigned
        .iter()
        .filter(|id| !upserts.contains_key(*id))
        .cloned()
        .collect();
    removals.sort_unstable();
    Plan {
        upserts: upserts.into_values().collect(),
        removals,
    }
}

/// INCREMENTAL changes patch what is assigned, applied in order (an UPDATE then a REMOVE of
/// the same id is a removal). Removing an id that is not assigned is a no-op.
pub(crate) fn plan_incremental(assigned: &HashSet<String>, changes: Vec<AssignmentChange>) -> Plan {
    enum Change {
        Upsert(Box<Task>),
        Remove,
    }
    let mut net: BTreeMap<String, Change> = BTreeMap::new();
    for change in changes {
        let Some(task) = change.task.filter(|t| !t.id.is_empty()) else {
            continue;
        };
        match Action::try_from(change.action) {
            Ok(Action::Update) => {
                net.insert(task.id.clone(), Change::Upsert(Box::new(task)));
            }
            Ok(Action::Remove) => {
                if assigned.contains(&task.id) {
                    net.insert(task.id, Change::Remove);
                } else {
                    net.remove(&task.id);
                }
            }
            Err(_) => {
                tracing::warn!(action = change.action, task = %task.id, "unknown assignment action ignored");
            }
        }
    }
    let mut plan = Plan::default();
    for (id, change) in net {
        match change {
            Change::Upsert(task) => plan.upserts.push(*task),
            Change::Remove => plan.removals.push(id),
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str) -> Task {
        Task {
            id: id.into(),
            ..Default::default()
        }
    }

    fn ids(tasks: &[Task]) -> Vec<&str> {
        tasks.iter().map(|t| t.id.as_str()).collect()
    }

    fn assigned(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn change(action: Action, id: &str) -> AssignmentChange {
        AssignmentChange {
            action: action as i32,
            task: Some(task(id)),
        }
    }

    #[test]
    fn complete_set_replaces_what_is_assigned() {
        let plan = plan_complete(
            &assigned(&["a", "b", "c"]),
            vec![task("c"), task("d"), task(""), task("d")],
        );
        assert_eq!(ids(&plan.upserts), ["c", "d"]);
        assert_eq!(plan.removals, ["a", "b"]);
    }

    #[test]
    fn empty_complete_set_removes_everything() {
        let plan = plan_complete(&assigned(&["b", "a"]), vec![]);
        assert!(plan.upserts.is_empty());
        assert_eq!(plan.removals, ["a", "b"]);
    }

    #[test]
    fn incremental_changes_apply_in_order() {
        let plan = plan_incremental(
            &assigned(&["a", "b"]),
            vec![
                change(Action::Update, "c"),
                change(Action::Remove, "a"),
                change(Action::Update, "b"),
                change(Action::Remove, "b"),
                change(Action::Remove, "ghost"),
                change(Action::Update, "e"),
                change(Action::Remove, "e"),
            ],
        );
        assert_eq!(ids(&plan.upserts), ["c"]);
        assert_eq!(plan.removals, ["a", "b"]);
    }

    #[test]
    fn unknown_actions_and_empty_changes_are_skipped() {
        let plan = plan_incremental(
            &assigned(&["a"]),
            vec![
                AssignmentChange {
                    action: 99,
                    task: Some(task("a")),
                },
                AssignmentChange {
                    action: Action::Remove as i32,
                    task: None,
                },
            ],
        );
        assert_eq!(plan, Plan::default());
    }
}
