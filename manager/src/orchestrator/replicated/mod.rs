//! The replicated orchestrator: keeps `replicas` occupied slots for every replicated service
//! (SwarmKit `manager/orchestrator/replicated`).
//!
//! ```text
//!  service created/updated ─┐
//!  task created/removed,    ├─▶ dirty services ──debounce──▶ reconcile(view, service) ─┐
//!  task desired changed  ───┘                                                          ▼
//!  service removed ──────────▶ removed services ──────────▶ every task desired REMOVE ─▶ store
//! ```
//!
//! Status-only task changes (the agent reporting progress) do not change which slots are
//! occupied, so they do not trigger a reconcile. Node changes are the restart supervisor's
//! business (it moves tasks off down or drained nodes). The decision is in [`reconcile()`].

mod reconcile;

use std::collections::BTreeSet;
use std::time::Duration;

use swarm_proto::StoreAction;
use tokio_util::sync::CancellationToken;

use super::actor::{self, Reconciler};
use super::task::{is_replicated, remove_all};
use crate::store::{Event, EventBatch, Object, Store, Tables};

pub use reconcile::reconcile;

/// Runs the replicated orchestrator until `shutdown` is cancelled. Leader-only.
pub async fn run(store: Store, shutdown: CancellationToken) {
    actor::run(store, shutdown, Replicated::default()).await;
}

/// The orchestrator's state: what needs a look.
#[derive(Default)]
struct Replicated {
    /// Services to reconcile (only replicated ones are looked at).
    dirty: BTreeSet<String>,
    /// Removed replicated services whose tasks must all be desired REMOVE.
    removed: BTreeSet<String>,
}

impl Reconciler for Replicated {
    const NAME: &'static str = "replicated orchestrator";
    const DEBOUNCE: Duration = Duration::from_millis(20);

    fn reset(&mut self, view: &Tables) {
        self.dirty = view
            .services()
            .filter(|s| is_replicated(s))
            .map(|s| s.id.clone())
            .collect();
    }

    fn observe(&mut self, batch: &EventBatch) {
        for ev in &batch.events {
            match ev {
                Event::Created(Object::Service(s))
                | Event::Updated {
                    new: Object::Service(s),
                    ..
                } if is_replicated(s) => {
                    self.dirty.insert(s.id.clone());
                }
                Event::Removed(Object::Service(s)) if is_replicated(s) => {
                    self.dirty.remove(&s.id);
                    self.removed.insert(s.id.clone());
                }
                Event::Created(Object::Task(t)) | Event::Removed(Object::Task(t)) => {
                    self.dirty.insert(t.service_id.clone());
                }
                Event::Updated {
                    old: Object::Task(old),
                    new: Object::Task(new),
                } if old.desired_state != new.desired_state || old.slot != new.slot => {
                    self.dirty.insert(new.service_id.clone());
                }
                _ => {}
            }
        }
    }

    fn is_dirty(&self) -> bool {
        !self.dirty.is_empty() || !self.removed.is_empty()
    }

    fn plan(&mut self, view: &Tables) -> Vec<StoreAction> {
        let mut actions = Vec::new();
        for id in &self.removed {
            actions.extend(remove_all(view.tasks_by_service(id)));
        }
        for id in &self.dirty {
            if let Some(service) = view.service(id).filter(|s| is_replicated(s)) {
                let planned = reconcile(view, service);
                if !planned.is_empty() {
                    tracing::debug!(service = %id, actions = planned.len(), "reconciling replicated service");
                }
                actions.extend(planned);
            }
        }
        actions
    }

    fn written(&mut self) {
        self.dirty.clear();
        self.removed.clear();
    }
}
