//! Resolving what a user typed (an id, a name, or a unique id prefix) to one object.

use std::sync::Arc;

use swarm_proto::{Node, Service, Task};

use super::tables::{Tables, service_name};

/// A reference that names no object, or more than one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("{kind} {reference:?} not found")]
    NotFound {
        kind: &'static str,
        reference: String,
    },
    #[error("{kind} {reference:?} is ambiguous: it matches {matches}; use a longer id")]
    Ambiguous {
        kind: &'static str,
        reference: String,
        matches: String,
    },
}

fn resolve<'a, T: 'a>(
    kind: &'static str,
    reference: &str,
    exact: Option<&'a Arc<T>>,
    by_name: impl Iterator<Item = &'a Arc<T>>,
    all: impl Iterator<Item = &'a Arc<T>>,
    id: fn(&T) -> &str,
) -> Result<Arc<T>, LookupError> {
    let not_found = || LookupError::NotFound {
        kind,
        reference: reference.to_string(),
    };
    if reference.is_empty() {
        return Err(not_found());
    }
    if let Some(o) = exact {
        return Ok(o.clone());
    }
    let pick = |found: Vec<&Arc<T>>| match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).clone())),
        many => Err(LookupError::Ambiguous {
            kind,
            reference: reference.to_string(),
            matches: many.iter().map(|o| id(o)).collect::<Vec<_>>().join(", "),
        }),
    };
    if let Some(o) = pick(by_name.collect())? {
        return Ok(o);
    }
    pick(all.filter(|o| id(o).starts_with(reference)).collect())?.ok_or_else(not_found)
}

impl Tables {
    /// A service by id, name, or unique id prefix.
    pub fn find_service(&self, reference: &str) -> Result<Arc<Service>, LookupError> {
        resolve(
            "service",
            reference,
            self.service(reference),
            self.service_by_name(reference).into_iter(),
            self.services(),
            |s| &s.id,
        )
    }

    /// A node by id, hostname (when unique), or unique id prefix.
    pub fn find_node(&self, reference: &str) -> Result<Arc<Node>, LookupError> {
        resolve(
            "node",
            reference,
            self.node(reference),
            self.nodes().filter(|n| {
                n.description
                    .as_ref()
                    .is_some_and(|d| d.hostname == reference)
                    || n.spec
                        .as_ref()
                        .and_then(|s| s.annotations.as_ref())
                        .is_some_and(|a| a.name == reference)
            }),
            self.nodes(),
            |n| &n.id,
        )
    }

    /// A task by id or unique id prefix.
    pub fn find_task(&self, reference: &str) -> Result<Arc<Task>, LookupError> {
        resolve(
            "task",
            reference,
            self.task(reference),
            std::iter::empty(),
            self.tasks(),
            |t| &t.id,
        )
    }

    /// The name of a task's service, for display ("web").
    pub fn service_name_of(&self, task: &Task) -> String {
        self.service(&task.service_id)
            .map(|s| service_name(s).to_string())
            .unwrap_or_default()
    }
}
