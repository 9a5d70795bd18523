//! The allocator: the first manager step of a task's life, NEW → PENDING.
//!
//! In SwarmKit the allocator gives a task its network resources (overlay IPs, published
//! ports) and only then lets the scheduler see it by moving it to PENDING. swarm has no
//! overlay networks yet, so today this actor only moves NEW tasks to PENDING ("pending task
//! scheduling"); published/ingress port allocation will live here.
//!
//! ```text
//!  store ──task created (NEW)──▶ dirty ids ──debounce──▶ pending_actions(view) ──▶ store.write
//! ```
//!
//! Tasks already desired past RUNNING (scaled away before they were allocated) are left
//! NEW: the reaper deletes them, nobody needs to schedule them.

use std::collections::BTreeSet;
use std::time::Duration;

use swarm_proto::ext::now_ns;
use swarm_proto::{StoreAction, Task, TaskPatch, TaskState, TaskStatus};
use tokio_util::sync::CancellationToken;

use crate::orchestrator::actor::{self, Reconciler};
use crate::store::{self, Event, EventBatch, Object, Store, Tables};

/// How long a burst of task creations is collected before one allocation pass.
const DEBOUNCE: Duration = Duration::from_millis(20);

/// The status message of a task the allocator released to the scheduler.
pub const PENDING_MESSAGE: &str = "pending task scheduling";

/// True when the allocator should move this task to PENDING.
pub fn needs_allocation(task: &Task) -> bool {
    let state = task.status.as_ref().map_or(0, |s| s.state);
    state == TaskState::New as i32 && task.desired_state <= TaskState::Running as i32
}

/// The patches that move every task in `ids` that still [`needs_allocation`] to PENDING.
pub fn pending_actions<'a>(
    view: &Tables,
    ids: impl IntoIterator<Item = &'a String>,
) -> Vec<StoreAction> {
    let now = now_ns();
    ids.into_iter()
        .filter_map(|id| view.task(id))
        .filter(|t| needs_allocation(t))
        .map(|t| {
            store::patch_task(TaskPatch {
                task_id: t.id.clone(),
                status: Some(TaskStatus {
                    state: TaskState::Pending as i32,
                    timestamp_ns: now,
                    message: PENDING_MESSAGE.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
        })
        .collect()
}

/// Runs the allocator until `shutdown` is cancelled. Leader-only.
pub async fn run(store: Store, shutdown: CancellationToken) {
    actor::run(store, shutdown, Allocator::default()).await;
}

/// The allocator's state: tasks seen NEW since the last pass.
#[derive(Default)]
struct Allocator {
    dirty: BTreeSet<String>,
}

impl Reconciler for Allocator {
    const NAME: &'static str = "allocator";
    const DEBOUNCE: Duration = DEBOUNCE;

    fn reset(&mut self, view: &Tables) {
        self.dirty = view
            .tasks()
            .filter(|t| needs_allocation(t))
            .map(|t| t.id.clone())
            .collect();
    }

    fn observe(&mut self, batch: &EventBatch) {
        for ev in &batch.events {
            if let Event::Created(Object::Task(t))
            | Event::Updated {
                new: Object::Task(t),
                ..
            } = ev
                && needs_allocation(t)
            {
                self.dirty.insert(t.id.clone());
            }
        }
    }

    fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    fn plan(&mut self, view: &Tables) -> Vec<StoreAction> {
        pending_actions(view, &self.dirty)
    }

    fn written(&mut self) {
        self.dirty.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::testutil::{applied, desired, replicated, tables, task, wait_for};
    use crate::store::testing;

    #[test]
    fn new_runnable_tasks_become_pending() {
        let s = replicated("svc", 3);
        let tasks = [
            task(&s, 1, "", TaskState::New, 1),
            task(&s, 2, "", TaskState::Pending, 1),
            desired(task(&s, 3, "", TaskState::New, 1), TaskState::Remove),
        ];
        let view = tables(&[s], &[], &tasks);
        let ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
        let actions = pending_actions(&view, &ids);
        assert_eq!(actions.len(), 1, "only the NEW, runnable task");
        let after = applied(&view, actions);
        let t = after.task(&tasks[0].id).unwrap();
        let status = t.status.as_ref().unwrap();
        assert_eq!(status.state, TaskState::Pending as i32);
        assert_eq!(status.message, PENDING_MESSAGE);
    }

    #[tokio::test]
    async fn t10_allocates_existing_and_new_tasks() {
        let store = testing::store();
        let s = replicated("svc", 1);
        let before = task(&s, 1, "", TaskState::New, 1);
        store
            .write(vec![store::create(before.clone())])
            .await
            .unwrap();
        let shutdown = CancellationToken::new();
        let actor = tokio::spawn(run(store.clone(), shutdown.clone()));
        let after = task(&s, 2, "", TaskState::New, 2);
        store
            .write(vec![store::create(after.clone())])
            .await
            .unwrap();
        wait_for(&store, "both tasks PENDING", |v| {
            let pending = |id: &str| {
                v.task(id).unwrap().status.as_ref().unwrap().state == TaskState::Pending as i32
            };
            pending(&before.id) && pending(&after.id)
        })
        .await;
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), actor)
            .await
            .expect("allocator stops on shutdown")
            .unwrap();
    }
}
