//! The orchestration actors together, against an in-memory store whose writes apply at once.
//! The scheduler and the agents are simulated by patching tasks as they would. Every wait
//! has a deadline (`testutil::wait_for`).

use std::sync::Arc;

use swarm_proto::ext::now_ns;
use swarm_proto::{
    NodeAvailability, NodeState, ReplicatedService, RestartCondition, Service, Task, TaskPatch,
    TaskState, TaskStatus, service_spec::Mode,
};
use tokio_util::sync::CancellationToken;

use super::task::{desired, is_runnable, state};
use super::testutil::{cluster, global, node, replicated, wait_for, with_restart};
use crate::store::{self, Store, Tables, testing};

/// A store with the allocator and every orchestration actor running on it.
struct Fixture {
    store: Store,
    shutdown: CancellationToken,
}

impl Fixture {
    async fn start() -> Self {
        let store = testing::store();
        let out = store
            .write(vec![store::create(cluster(5)), store::create(node("n1"))])
            .await
            .unwrap();
        assert!(out.is_clean());
        let shutdown = CancellationToken::new();
        tokio::spawn(super::run(store.clone(), shutdown.clone()));
        tokio::spawn(crate::allocator::run(store.clone(), shutdown.clone()));
        Fixture { store, shutdown }
    }

    async fn write(&self, actions: Vec<swarm_proto::StoreAction>) {
        let out = self.store.write(actions).await.unwrap();
        assert!(out.is_clean(), "{out:?}");
    }

    /// What the scheduler and an agent would do: assign to `node`, then run.
    async fn run_on(&self, task_id: &str, node: &str) {
        for (s, n) in [(TaskState::Assigned, node), (TaskState::Running, "")] {
            self.write(vec![patch(task_id, s, n)]).await;
        }
    }

    /// What an agent reports when the task ends.
    async fn report(&self, task_id: &str, s: TaskState) {
        self.write(vec![patch(task_id, s, "")]).await;
    }

    fn tasks(&self, service: &str) -> Vec<Arc<Task>> {
        tasks(&self.store.view(), service)
    }

    fn service(&self, id: &str) -> Service {
        (**self.store.view().service(id).unwrap()).clone()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn patch(task_id: &str, s: TaskState, node: &str) -> swarm_proto::StoreAction {
    store::patch_task(TaskPatch {
        task_id: task_id.into(),
        status: Some(TaskStatus {
            state: s as i32,
            timestamp_ns: now_ns(),
            exit_code: if s == TaskState::Failed { 1 } else { 0 },
            ..Default::default()
        }),
        node_id: node.into(),
        desired_state: None,
    })
}

fn tasks(view: &Tables, service: &str) -> Vec<Arc<Task>> {
    let mut v: Vec<_> = view.tasks_by_service(service).cloned().collect();
    v.sort_by_key(|t| (t.slot, t.meta.as_ref().map_or(0, |m| m.created_at_ns)));
    v
}

fn runnable(view: &Tables, service: &str) -> Vec<Arc<Task>> {
    tasks(view, service)
        .into_iter()
        .filter(|t| is_runnable(t))
        .collect()
}

fn slots(ts: &[Arc<Task>]) -> Vec<u64> {
    ts.iter().map(|t| t.slot).collect()
}

#[tokio::test]
async fn t10_a_new_service_gets_pending_tasks_in_slots_1_to_n() {
    tracing::info!("--- create a 5-replica service");
    let f = Fixture::start().await;
    f.write(vec![store::create(replicated("web", 5))]).await;
    wait_for(&f.store, "5 PENDING tasks in slots 1..5", |v| {
        let ts = tasks(v, "web");
        slots(&ts) == [1, 2, 3, 4, 5] && ts.iter().all(|t| state(t) == TaskState::Pending)
    })
    .await;
    let ts = f.tasks("web");
    assert!(
        ts.iter()
            .all(|t| desired(t) == TaskState::Running && t.node_id.is_empty())
    );
}

#[tokio::test]
async fn t11_scaling_down_marks_the_surplus_for_removal_and_the_reaper_deletes_it() {
    let f = Fixture::start().await;
    f.write(vec![store::create(replicated("web", 5))]).await;
    wait_for(&f.store, "5 PENDING tasks", |v| {
        let ts = tasks(v, "web");
        ts.len() == 5 && ts.iter().all(|t| state(t) == TaskState::Pending)
    })
    .await;
    for t in f.tasks("web") {
        f.run_on(&t.id, "n1").await;
    }

    tracing::info!("--- scale to 2");
    let mut s = f.service("web");
    s.spec.as_mut().unwrap().mode = Some(Mode::Replicated(ReplicatedService { replicas: 2 }));
    f.write(vec![store::update(s)]).await;
    wait_for(&f.store, "slots 3..5 desired REMOVE", |v| {
        let ts = tasks(v, "web");
        let removed: Vec<u64> = ts
            .iter()
            .filter(|t| desired(t) == TaskState::Remove)
            .map(|t| t.slot)
            .collect();
        removed == [3, 4, 5] && slots(&runnable(v, "web")) == [1, 2]
    })
    .await;

    tracing::info!("--- the agent stops them; the reaper deletes them");
    for t in f.tasks("web").iter().filter(|t| t.slot > 2) {
        f.report(&t.id, TaskState::Shutdown).await;
    }
    wait_for(&f.store, "only slots 1 and 2 left", |v| {
        slots(&tasks(v, "web")) == [1, 2]
    })
    .await;
}

#[tokio::test]
async fn t20_a_failed_task_is_replaced_in_its_slot_after_the_restart_delay() {
    let f = Fixture::start().await;
    let s = with_restart(replicated("web", 2), RestartCondition::RestartAny, 200);
    f.write(vec![store::create(s)]).await;
    wait_for(&f.store, "2 PENDING tasks", |v| {
        let ts = tasks(v, "web");
        ts.len() == 2 && ts.iter().all(|t| state(t) == TaskState::Pending)
    })
    .await;
    let ts = f.tasks("web");
    for t in &ts {
        f.run_on(&t.id, "n1").await;
    }

    tracing::info!("--- the task in slot 2 fails");
    let failed = ts[1].clone();
    let reported = tokio::time::Instant::now();
    f.report(&failed.id, TaskState::Failed).await;
    wait_for(
        &f.store,
        "a replacement in slot 2, waiting (desired READY)",
        |v| {
            let slot2: Vec<_> = tasks(v, "web")
                .into_iter()
                .filter(|t| t.slot == 2)
                .collect();
            slot2.len() == 2 && slot2.iter().any(|t| desired(t) == TaskState::Ready)
        },
    )
    .await;
    assert_eq!(
        desired(f.store.view().task(&failed.id).unwrap()),
        TaskState::Shutdown
    );
    wait_for(&f.store, "the replacement desired RUNNING", |v| {
        tasks(v, "web")
            .iter()
            .any(|t| t.slot == 2 && t.id != failed.id && desired(t) == TaskState::Running)
    })
    .await;
    assert!(
        reported.elapsed() >= std::time::Duration::from_millis(200),
        "the delay was honoured"
    );
    assert_eq!(slots(&runnable(&f.store.view(), "web")), [1, 2]);
}

#[tokio::test]
async fn t21_restart_condition_none_leaves_the_slot_finished() {
    let f = Fixture::start().await;
    let s = with_restart(replicated("job", 1), RestartCondition::RestartNone, 0);
    f.write(vec![store::create(s)]).await;
    wait_for(&f.store, "1 PENDING task", |v| {
        tasks(v, "job")
            .iter()
            .any(|t| state(t) == TaskState::Pending)
    })
    .await;
    let t = f.tasks("job")[0].clone();
    f.run_on(&t.id, "n1").await;
    f.report(&t.id, TaskState::Complete).await;
    wait_for(&f.store, "the task desired COMPLETE", |v| {
        desired(v.task(&t.id).unwrap()) == TaskState::Complete
    })
    .await;
    // Give the orchestrators a chance to (wrongly) refill the slot; then check they did not.
    let (_, mut w) = f.store.watch(crate::store::WatchFilter::All);
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(300), w.recv()).await;
    assert!(quiet.is_err(), "nothing else happened: {quiet:?}");
    assert_eq!(f.tasks("job").len(), 1);
}

#[tokio::test]
async fn t22_tasks_on_a_node_that_goes_down_are_rescheduled() {
    let f = Fixture::start().await;
    f.write(vec![store::create(node("n2"))]).await;
    let s = with_restart(replicated("web", 2), RestartCondition::RestartAny, 0);
    f.write(vec![store::create(s)]).await;
    wait_for(&f.store, "2 PENDING tasks", |v| {
        let ts = tasks(v, "web");
        ts.len() == 2 && ts.iter().all(|t| state(t) == TaskState::Pending)
    })
    .await;
    let ts = f.tasks("web");
    f.run_on(&ts[0].id, "n1").await;
    f.run_on(&ts[1].id, "n2").await;

    tracing::info!("--- n2 goes down");
    let mut n2 = (**f.store.view().node("n2").unwrap()).clone();
    n2.status.as_mut().unwrap().state = NodeState::NodeDown as i32;
    f.write(vec![store::update(n2)]).await;
    wait_for(&f.store, "slot 2 replaced by an unassigned task", |v| {
        let r = runnable(v, "web");
        slots(&r) == [1, 2] && r[1].node_id.is_empty()
    })
    .await;
    assert_eq!(
        desired(f.store.view().task(&ts[1].id).unwrap()),
        TaskState::Shutdown
    );
}

#[tokio::test]
async fn t23_max_attempts_stops_a_crash_loop() {
    let f = Fixture::start().await;
    tokio::spawn(simulate(f.store.clone(), f.shutdown.clone(), 7));
    let mut s = with_restart(replicated("crash", 1), RestartCondition::RestartAny, 0);
    let task_spec = s.spec.as_mut().unwrap().task.as_mut().unwrap();
    task_spec.force_update = 7;
    task_spec.restart.as_mut().unwrap().max_attempts = 2;
    f.write(vec![store::create(s)]).await;
    wait_for(
        &f.store,
        "3 failed tasks, the last finished for good",
        |v| {
            let ts = tasks(v, "crash");
            ts.len() == 3
                && ts.iter().all(|t| state(t) == TaskState::Failed)
                && ts
                    .iter()
                    .filter(|t| desired(t) == TaskState::Shutdown)
                    .count()
                    == 2
                && ts
                    .iter()
                    .filter(|t| desired(t) == TaskState::Complete)
                    .count()
                    == 1
        },
    )
    .await;
}

#[tokio::test]
async fn t30_global_service_follows_the_nodes() {
    let f = Fixture::start().await;
    f.write(vec![store::create(node("a")), store::create(node("b"))])
        .await;
    f.write(vec![store::create(global("agent"))]).await;
    let on = |v: &Tables| {
        let mut n: Vec<String> = runnable(v, "agent")
            .iter()
            .map(|t| t.node_id.clone())
            .collect();
        n.sort();
        n
    };
    wait_for(&f.store, "a task on a, b and n1", |v| {
        on(v) == ["a", "b", "n1"]
    })
    .await;

    tracing::info!("--- c joins, a is drained");
    let mut a = (**f.store.view().node("a").unwrap()).clone();
    a.spec.as_mut().unwrap().availability = NodeAvailability::Drain as i32;
    f.write(vec![store::create(node("c")), store::update(a)])
        .await;
    wait_for(&f.store, "tasks on b, c and n1 only", |v| {
        on(v) == ["b", "c", "n1"]
    })
    .await;
    let view = f.store.view();
    let old_a: Vec<_> = tasks(&view, "agent")
        .into_iter()
        .filter(|t| t.node_id == "a")
        .collect();
    assert_eq!(old_a.len(), 1);
    assert_eq!(desired(&old_a[0]), TaskState::Shutdown);

    tracing::info!("--- b is removed from the cluster");
    let b = (**f.store.view().node("b").unwrap()).clone();
    f.write(vec![store::remove(b)]).await;
    wait_for(&f.store, "b's task gone", |v| {
        on(v) == ["c", "n1"] && tasks(v, "agent").iter().all(|t| t.node_id != "b")
    })
    .await;
}

#[tokio::test]
async fn t40_the_reaper_keeps_the_retention_limit_per_slot() {
    let f = Fixture::start().await;
    let mut c = (**f.store.view().the_cluster().unwrap()).clone();
    c.spec
        .as_mut()
        .unwrap()
        .orchestration
        .as_mut()
        .unwrap()
        .task_history_retention_limit = 2;
    f.write(vec![store::update(c)]).await;
    let s = with_restart(replicated("crash", 1), RestartCondition::RestartAny, 0);
    f.write(vec![store::create(s)]).await;

    tracing::info!("--- the task crashes 5 times");
    for round in 0..5 {
        wait_for(&f.store, "a PENDING task to run", |v| {
            runnable(v, "crash")
                .iter()
                .any(|t| state(t) == TaskState::Pending)
        })
        .await;
        let current = runnable(&f.store.view(), "crash")[0].clone();
        f.run_on(&current.id, "n1").await;
        f.report(&current.id, TaskState::Failed).await;
        wait_for(&f.store, "the crash handled", |v| {
            desired(v.task(&current.id).map_or(&current, |t| t)) == TaskState::Shutdown
        })
        .await;
        tracing::info!(round, "crashed");
    }
    wait_for(&f.store, "2 old tasks + the current one", |v| {
        let ts = tasks(v, "crash");
        ts.len() == 3 && ts.iter().filter(|t| is_runnable(t)).count() == 1
    })
    .await;
}

#[tokio::test]
async fn t50_removing_a_service_removes_its_tasks() {
    let f = Fixture::start().await;
    f.write(vec![store::create(replicated("web", 3))]).await;
    wait_for(&f.store, "3 PENDING tasks", |v| {
        let ts = tasks(v, "web");
        ts.len() == 3 && ts.iter().all(|t| state(t) == TaskState::Pending)
    })
    .await;
    let ts = f.tasks("web");
    f.run_on(&ts[0].id, "n1").await;
    let s = f.service("web");
    f.write(vec![store::remove(s)]).await;
    wait_for(
        &f.store,
        "the running task desired REMOVE, the others deleted",
        |v| {
            let left = tasks(v, "web");
            left.len() == 1 && desired(&left[0]) == TaskState::Remove
        },
    )
    .await;
    f.report(&ts[0].id, TaskState::Shutdown).await;
    wait_for(&f.store, "no task left", |v| tasks(v, "web").is_empty()).await;
}

/// Plays scheduler and agents: assigns PENDING tasks (to their preset node, else "n1"),
/// runs what is desired RUNNING, stops what is desired stopped. Tasks whose spec has
/// `force_update == fail_at` fail instead of running.
async fn simulate(store: Store, shutdown: CancellationToken, fail_at: u64) {
    let (_, mut events) = store.watch(crate::store::WatchFilter::All);
    loop {
        let view = store.view();
        let mut actions = Vec::new();
        for t in view.tasks() {
            let (s, d) = (state(t), desired(t));
            let fails = t.spec.as_ref().is_some_and(|s| s.force_update == fail_at);
            if s == TaskState::Pending && d <= TaskState::Running {
                let node = if t.node_id.is_empty() {
                    "n1"
                } else {
                    t.node_id.as_str()
                };
                actions.push(patch(&t.id, TaskState::Assigned, node));
            } else if s == TaskState::Assigned && d == TaskState::Running {
                let to = if fails {
                    TaskState::Failed
                } else {
                    TaskState::Running
                };
                actions.push(patch(&t.id, to, ""));
            } else if s >= TaskState::Assigned
                && s <= TaskState::Running
                && d >= TaskState::Shutdown
            {
                actions.push(patch(&t.id, TaskState::Shutdown, ""));
            }
        }
        if !actions.is_empty() {
            store.write(actions).await.unwrap();
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            e = events.recv() => if e.is_none() { return },
        }
    }
}

fn force_update(s: &mut Service, n: u64, parallelism: u64, monitor_ms: u64) {
    let spec = s.spec.as_mut().unwrap();
    spec.task.as_mut().unwrap().force_update = n;
    spec.update = Some(swarm_proto::UpdateConfig {
        parallelism: Some(parallelism),
        monitor_ms: Some(monitor_ms),
        ..Default::default()
    });
}

#[tokio::test]
async fn t60_a_spec_change_rolls_one_slot_at_a_time_stop_first() {
    let f = Fixture::start().await;
    tokio::spawn(simulate(f.store.clone(), f.shutdown.clone(), u64::MAX));
    let s = with_restart(replicated("web", 3), RestartCondition::RestartAny, 0);
    f.write(vec![store::create(s)]).await;
    wait_for(&f.store, "3 RUNNING tasks", |v| {
        let r = runnable(v, "web");
        r.len() == 3 && r.iter().all(|t| state(t) == TaskState::Running)
    })
    .await;

    tracing::info!("--- update the task spec");
    let mut s = f.service("web");
    force_update(&mut s, 1, 1, 50);
    f.write(vec![store::update(s)]).await;
    let most_in_flight = std::sync::Mutex::new(0usize);
    wait_for(&f.store, "3 RUNNING tasks of the new spec", |v| {
        let r = runnable(v, "web");
        let new: Vec<_> = r
            .iter()
            .filter(|t| t.spec.as_ref().unwrap().force_update == 1)
            .collect();
        let starting = new
            .iter()
            .filter(|t| state(t) != TaskState::Running)
            .count();
        let mut m = most_in_flight.lock().unwrap();
        *m = (*m).max(starting);
        new.len() == 3 && r.len() == 3 && new.iter().all(|t| state(t) == TaskState::Running)
    })
    .await;
    assert_eq!(*most_in_flight.lock().unwrap(), 1, "parallelism 1");
    let view = f.store.view();
    let old: Vec<_> = tasks(&view, "web")
        .into_iter()
        .filter(|t| t.spec.as_ref().unwrap().force_update == 0)
        .collect();
    assert!(
        old.iter()
            .all(|t| desired(t) == TaskState::Shutdown && state(t) == TaskState::Shutdown)
    );
}

#[tokio::test]
async fn t61_a_failing_update_pauses() {
    let f = Fixture::start().await;
    tokio::spawn(simulate(f.store.clone(), f.shutdown.clone(), 7));
    let s = with_restart(replicated("web", 3), RestartCondition::RestartAny, 60_000);
    f.write(vec![store::create(s)]).await;
    wait_for(&f.store, "3 RUNNING tasks", |v| {
        let r = runnable(v, "web");
        r.len() == 3 && r.iter().all(|t| state(t) == TaskState::Running)
    })
    .await;

    tracing::info!("--- update to a spec whose tasks fail");
    let mut s = f.service("web");
    force_update(&mut s, 7, 1, 1_000);
    f.write(vec![store::update(s)]).await;
    wait_for(
        &f.store,
        "the first new task failed; its replacement waits",
        |v| {
            tasks(v, "web").iter().any(|t| {
                t.spec.as_ref().unwrap().force_update == 7 && state(t) == TaskState::Failed
            }) && runnable(v, "web")
                .iter()
                .any(|t| desired(t) == TaskState::Ready && state(t) == TaskState::Assigned)
        },
    )
    .await;
    // The restart delay is a minute, so nothing else happens unless the update goes on.
    let (_, mut w) = f.store.watch(crate::store::WatchFilter::All);
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(300), w.recv()).await;
    assert!(quiet.is_err(), "the update paused: {quiet:?}");
    let old_running = runnable(&f.store.view(), "web")
        .iter()
        .filter(|t| t.spec.as_ref().unwrap().force_update == 0 && state(t) == TaskState::Running)
        .count();
    assert_eq!(old_running, 2);
}

/// The scale benchmark's first step, end to end (slow in debug builds: run with `--ignored`).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "scale check; run with --ignored"]
async fn t90_a_hundred_thousand_replicas_become_pending() {
    let f = Fixture::start().await;
    let started = std::time::Instant::now();
    f.write(vec![store::create(replicated("big", 100_000))])
        .await;
    let (_, mut events) = f.store.watch(crate::store::WatchFilter::All);
    tokio::time::timeout(std::time::Duration::from_secs(120), async {
        loop {
            let v = f.store.view();
            let pending = v
                .tasks_by_service("big")
                .filter(|t| state(t) == TaskState::Pending)
                .count();
            if pending == 100_000 {
                return;
            }
            // Coalesce: look again only after a burst of writes.
            while let Ok(Some(_)) =
                tokio::time::timeout(std::time::Duration::from_millis(100), events.recv()).await
            {
            }
        }
    })
    .await
    .expect("100,000 PENDING tasks within 2 minutes");
    eprintln!("100,000 tasks pending after {:?}", started.elapsed());
}
