//! The update supervisor: rolling updates (SwarmKit `manager/orchestrator/update`).
//!
//! ```text
//!  service task spec changed ─▶ Rollout::start (dirty slots?) ─┐
//!  task events of a rolling service ───────────────────────────┼─▶ Rollout::step(view, now)
//!  timers (batch delay, monitor windows) ──────────────────────┘      │
//!     slot updates (atomic each) ◀── stop-first / start-first ◀───────┤
//!     start-first completions ◀───────────────────────────────────────┤
//!     failure action: pause (in memory) | rollback (write previous spec back)
//! ```
//!
//! Only a change of the task spec starts a rollout (scaling does not). A rollback — the
//! Control API's, or ours on failure — swaps `spec` and `previous_spec`; a rollout whose
//! service was just swapped that way uses the `rollback` config instead of `update`.
//! At start (leader change) every service with out-of-date tasks gets a rollout. Stop-first
//! replacements are created desired READY and started by the restart supervisor's delayed
//! start once the old task stopped. The decisions are in [`slots`] and [`rollout`].

pub mod rollout;
pub mod slots;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use swarm_proto::{Service, UpdateFailureAction};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::rollout::{Rollout, Status};
use super::batch::{write_atomic_groups, write_batched};
use super::debounce::{Debounce, until};
use super::global::node_changed;
use super::task::{is_global, is_replicated};
use crate::store::{self, Event, EventBatch, Object, Store, StoreError, Tables, WatchFilter};

/// How long a burst of events is collected before one step.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// How long to wait before retrying after a failed write.
const RETRY: Duration = Duration::from_millis(500);

/// Runs the update supervisor until `shutdown` is cancelled. Leader-only.
pub async fn run(store: Store, shutdown: CancellationToken) {
    Updater::default().run(store, shutdown).await;
}

#[derive(Default)]
struct Updater {
    rollouts: HashMap<String, Rollout>,
    /// Services whose task spec changed: start (or restart) their rollout.
    changed: BTreeSet<String>,
    /// Of those, the ones that were rolled back (spec and previous spec swapped).
    rolled_back: BTreeSet<String>,
    /// A rolling service's tasks changed.
    progress: bool,
    /// A node changed: global services without a rollout may have out-of-date tasks on a
    /// node that takes new tasks again (SwarmKit updates those on node reconciliation).
    nodes_changed: bool,
    wake: Option<Instant>,
}

fn rollable(s: &Service) -> bool {
    is_replicated(s) || is_global(s)
}

impl Updater {
    async fn run(mut self, store: Store, shutdown: CancellationToken) {
        let (view, mut watcher) = store.watch(WatchFilter::All);
        self.reset(&view);
        drop(view);
        let mut debounce = Debounce::new(DEBOUNCE);
        debounce.fire_now();
        tracing::debug!("update supervisor started");
        loop {
            let deadline = match (debounce.deadline(), self.wake) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                batch = watcher.recv() => {
                    match batch {
                        Some(batch) => self.observe(&batch),
                        None => {
                            let (view, w) = store.watch(WatchFilter::All);
                            watcher = w;
                            self.reset(&view);
                        }
                    }
                    if !self.changed.is_empty() || self.progress || self.nodes_changed {
                        debounce.arm();
                    }
                },
                _ = until(deadline) => {
                    debounce.clear();
                    self.wake = None;
                    if let Err(e) = self.tick(&store).await {
                        tracing::warn!(error = %e, "update supervisor: write failed; will retry");
                        debounce.arm_at(Instant::now() + RETRY);
                    }
                }
            }
        }
        tracing::debug!("update supervisor stopped");
    }

    fn reset(&mut self, view: &Tables) {
        self.rollouts.clear();
        self.rolled_back.clear();
        self.changed = view
            .services()
            .filter(|s| rollable(s))
            .map(|s| s.id.clone())
            .collect();
    }

    fn observe(&mut self, batch: &EventBatch) {
        for ev in &batch.events {
            match ev {
                Event::Updated {
                    old: Object::Service(old),
                    new: Object::Service(new),
                } => {
                    let task_spec = |s: &Service| s.spec.as_ref().and_then(|s| s.task.clone());
                    if rollable(new) && task_spec(old) != task_spec(new) {
                        self.changed.insert(new.id.clone());
                        let swapped = new.previous_spec.is_some()
                            && new.spec == old.previous_spec
                            && new.previous_spec == old.spec;
                        if swapped {
                            self.rolled_back.insert(new.id.clone());
                        } else {
                            self.rolled_back.remove(&new.id);
                        }
                    }
                }
                Event::Removed(Object::Service(s)) => {
                    self.rollouts.remove(&s.id);
                    self.changed.remove(&s.id);
                }
                Event::Created(Object::Node(_)) => self.nodes_changed = true,
                Event::Updated {
                    old: Object::Node(old),
                    new: Object::Node(new),
                } if node_changed(old, new) => self.nodes_changed = true,
                Event::Created(Object::Task(t))
                | Event::Updated {
                    new: Object::Task(t),
                    ..
                }
                | Event::Removed(Object::Task(t)) => {
                    self.progress |= self.rollouts.contains_key(&t.service_id);
                }
                _ => {}
            }
        }
    }

    async fn tick(&mut self, store: &Store) -> Result<(), StoreError> {
        let now = Instant::now();
        let view = store.view();
        for id in std::mem::take(&mut self.changed) {
            let rollback = self.rolled_back.remove(&id);
            let Some(service) = view.service(&id).filter(|s| rollable(s)) else {
                continue;
            };
            match Rollout::start(&view, service, rollback, now) {
                Some(r) => {
                    tracing::info!(
                        service = %id,
                        rollback,
                        parallelism = r.settings.parallelism,
                        order = ?r.settings.order,
                        "rolling update started"
                    );
                    self.rollouts.insert(id, r);
                }
                None => {
                    self.rollouts.remove(&id);
                }
            }
        }
        if std::mem::take(&mut self.nodes_changed) {
            for service in view.services().filter(|s| is_global(s)) {
                if !self.rollouts.contains_key(&service.id)
                    && let Some(r) = Rollout::start(&view, service, false, now)
                {
                    tracing::info!(service = %service.id, "updating tasks on nodes that take tasks again");
                    self.rollouts.insert(service.id.clone(), r);
                }
            }
        }
        self.progress = false;

        let mut groups = Vec::new();
        let mut owners = Vec::new();
        let mut cleanup = Vec::new();
        let mut rollbacks = Vec::new();
        let mut wake: Option<Instant> = None;
        for (id, r) in self.rollouts.iter_mut() {
            let Some(service) = view.service(id) else {
                continue;
            };
            let step = r.step(&view, service, now);
            if let Some((action, why)) = &step.failed {
                tracing::warn!(service = %id, reason = %why, action = ?action, "rolling update failed");
                if *action == UpdateFailureAction::UpdateRollback && !r.rollback {
                    rollbacks.push((**service).clone());
                }
            }
            cleanup.extend(step.cleanup);
            for (actions, new_id) in step.slots {
                groups.push(actions);
                owners.push((id.clone(), new_id));
            }
            if let Some(w) = step.wake {
                wake = Some(wake.map_or(w, |x| x.min(w)));
            }
        }
        self.wake = wake;
        self.rollouts.retain(|id, r| {
            if r.status == Status::Done {
                tracing::info!(service = %id, "rolling update completed");
            }
            r.status != Status::Done
        });

        write_batched(store, cleanup, "update supervisor").await?;
        let (applied, failed) = write_atomic_groups(store, &groups, "update supervisor").await;
        let mut launched: HashMap<String, Vec<String>> = HashMap::new();
        for i in applied {
            let (service, task) = owners[i].clone();
            launched.entry(service).or_default().push(task);
        }
        for (service, ids) in launched {
            if let Some(r) = self.rollouts.get_mut(&service) {
                tracing::debug!(%service, tasks = ids.len(), "updating tasks");
                r.launched(ids);
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        for service in rollbacks {
            roll_back(store, service).await?;
        }
        Ok(())
    }
}

/// Writes `service`'s previous spec back (swapping it with the current one), which starts
/// a rollout back to it with the rollback config.
async fn roll_back(store: &Store, mut service: Service) -> Result<(), StoreError> {
    let Some(previous) = service.previous_spec.take() else {
        tracing::warn!(service = %service.id, "cannot roll back: no previous spec; update paused");
        return Ok(());
    };
    service.previous_spec = service.spec.replace(previous);
    let id = service.id.clone();
    match store.write_atomic(vec![store::update(service)]).await {
        Ok(_) => {
            tracing::warn!(service = %id, "rolling back to the previous spec");
            Ok(())
        }
        Err(StoreError::Conflict(c)) => {
            // Someone changed the service meanwhile; their change starts its own rollout.
            tracing::info!(service = %id, conflict = %c, "rollback skipped: the service changed");
            Ok(())
        }
        Err(e) => Err(e),
    }
}
