//! The global orchestrator: one task of every global service on every eligible node
//! (SwarmKit `manager/orchestrator/global`).
//!
//! ```text
//!  global service created/updated ──────┐
//!  task created/removed/desired changed ├─▶ dirty services ─debounce─▶ reconcile(view, svc) ─┐
//!  node joined/changed/removed ─────────┘   (a node change dirties every global service)    ▼
//!  global service removed ──────────────▶ every task desired REMOVE ──────────────────────▶ store
//! ```
//!
//! A node update matters only when its spec (availability, labels), state, role or
//! description changed; heartbeats that rewrite nothing else are ignored. The decision is in
//! [`reconcile()`]; node eligibility in [`eligibility`].

pub mod eligibility;
mod reconcile;

use std::collections::BTreeSet;
use std::time::Duration;

use swarm_proto::{Node, StoreAction};
use tokio_util::sync::CancellationToken;

use super::actor::{self, Reconciler};
use super::task::{is_global, remove_all};
use crate::store::{Event, EventBatch, Object, Store, Tables};

pub use reconcile::reconcile;

/// Runs the global orchestrator until `shutdown` is cancelled. Leader-only.
pub async fn run(store: Store, shutdown: CancellationToken) {
    actor::run(store, shutdown, Global::default()).await;
}

/// The orchestrator's state: what needs a look.
#[derive(Default)]
struct Global {
    /// Services to reconcile (only global ones are looked at).
    dirty: BTreeSet<String>,
    /// Every global service needs a look (a node changed).
    all: bool,
    /// Removed global services whose tasks must all be desired REMOVE.
    removed: BTreeSet<String>,
}

/// True when a node change can change where global tasks belong.
pub(crate) fn node_changed(old: &Node, new: &Node) -> bool {
    let state = |n: &Node| n.status.as_ref().map(|s| s.state);
    old.spec != new.spec
        || state(old) != state(new)
        || old.role != new.role
        || old.description != new.description
}

impl Reconciler for Global {
    const NAME: &'static str = "global orchestrator";
    const DEBOUNCE: Duration = Duration::from_millis(20);

    fn reset(&mut self, _view: &Tables) {
        self.all = true;
    }

    fn observe(&mut self, batch: &EventBatch) {
        for ev in &batch.events {
            match ev {
                Event::Created(Object::Service(s))
                | Event::Updated {
                    new: Object::Service(s),
                    ..
                } if is_global(s) => {
                    self.dirty.insert(s.id.clone());
                }
                Event::Removed(Object::Service(s)) if is_global(s) => {
                    self.dirty.remove(&s.id);
                    self.removed.insert(s.id.clone());
                }
                Event::Created(Object::Node(_)) | Event::Removed(Object::Node(_)) => {
                    self.all = true
                }
                Event::Updated {
                    old: Object::Node(old),
                    new: Object::Node(new),
                } if node_changed(old, new) => self.all = true,
                Event::Created(Object::Task(t)) | Event::Removed(Object::Task(t)) => {
                    self.dirty.insert(t.service_id.clone());
                }
                Event::Updated {
                    old: Object::Task(old),
                    new: Object::Task(new),
                } if old.desired_state != new.desired_state || old.node_id != new.node_id => {
                    self.dirty.insert(new.service_id.clone());
                }
                _ => {}
            }
        }
    }

    fn is_dirty(&self) -> bool {
        self.all || !self.dirty.is_empty() || !self.removed.is_empty()
    }

    fn plan(&mut self, view: &Tables) -> Vec<StoreAction> {
        let mut actions = Vec::new();
        for id in &self.removed {
            actions.extend(remove_all(view.tasks_by_service(id)));
        }
        let services: Vec<_> = if self.all {
            view.services().filter(|s| is_global(s)).collect()
        } else {
            self.dirty
                .iter()
                .filter_map(|id| view.service(id))
                .filter(|s| is_global(s))
                .collect()
        };
        for service in services {
            let planned = reconcile(view, service);
            if !planned.is_empty() {
                tracing::debug!(service = %service.id, actions = planned.len(), "reconciling global service");
            }
            actions.extend(planned);
        }
        actions
    }

    fn written(&mut self) {
        self.all = false;
        self.dirty.clear();
        self.removed.clear();
    }
}
