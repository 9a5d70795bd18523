//! The leadership watch: leader-only components run exactly while this member leads
//! (seed: "如果是leader … 如果是follower 全部停掉" — if leader, start them; if follower, stop
//! them all). Also the in-process agent and the store metrics.

use std::sync::Arc;
use std::time::Duration;

use swarm_agent::exec::Backend;
use swarm_proto::TaskState;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Manager, ManagerConfig};
use crate::dispatcher::{Dispatcher, DispatcherConfig};
use crate::metrics;
use crate::raft::RaftHandle;
use crate::store::Store;

/// Runs until `shutdown`, starting the leader components on gaining leadership and
/// cancelling them on losing it.
pub(super) async fn watch(
    store: Store,
    raft: RaftHandle,
    dispatcher: Dispatcher,
    shutdown: CancellationToken,
) {
    let mut status = raft.status();
    let mut current: Option<CancellationToken> = None;
    let mut metrics_tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        let leading = status.borrow_and_update().is_leader;
        match (leading, &current) {
            (true, None) => {
                tracing::info!("became leader: starting leader components");
                current = Some(start_components(
                    &store,
                    &dispatcher,
                    shutdown.child_token(),
                ));
            }
            (false, Some(token)) => {
                tracing::info!("lost leadership: stopping leader components");
                token.cancel();
                current = None;
            }
            _ => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = status.changed() => if changed.is_err() { break },
            _ = metrics_tick.tick() => refresh_metrics(&store),
        }
    }
    if let Some(t) = current {
        t.cancel();
    }
}

fn start_components(
    store: &Store,
    dispatcher: &Dispatcher,
    token: CancellationToken,
) -> CancellationToken {
    let heartbeat = store
        .view()
        .the_cluster()
        .and_then(|c| {
            c.spec
                .as_ref()?
                .dispatcher
                .as_ref()
                .map(|d| d.heartbeat_period_ms)
        })
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis);
    let config = DispatcherConfig {
        heartbeat_period: heartbeat.unwrap_or(DispatcherConfig::default().heartbeat_period),
        ..Default::default()
    };
    dispatcher.activate(config, token.clone());
    tokio::spawn(crate::allocator::run(store.clone(), token.clone()));
    tokio::spawn(crate::orchestrator::run(store.clone(), token.clone()));
    tokio::spawn(crate::scheduler::run(store.clone(), token.clone()));
    token
}

fn refresh_metrics(store: &Store) {
    let view = store.view();
    metrics::STORE_OBJECTS
        .with_label_values(&["nodes"])
        .set(view.nodes().count() as i64);
    metrics::STORE_OBJECTS
        .with_label_values(&["services"])
        .set(view.services().count() as i64);
    metrics::STORE_OBJECTS
        .with_label_values(&["tasks"])
        .set(view.task_count() as i64);
    let counts = view.task_state_counts();
    for state in [
        TaskState::New,
        TaskState::Pending,
        TaskState::Assigned,
        TaskState::Accepted,
        TaskState::Preparing,
        TaskState::Ready,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Complete,
        TaskState::Shutdown,
        TaskState::Failed,
        TaskState::Rejected,
        TaskState::Remove,
        TaskState::Orphaned,
    ] {
        metrics::TASK_STATES
            .with_label_values(&[&state.display_name()])
            .set(counts.get(&(state as i32)).copied().unwrap_or(0) as i64);
    }
}

/// Starts the manager's own agent once the cluster exists (it joins with the manager token
/// under this manager's node id, and keeps its task DB in `<state-dir>/worker/`).
pub(super) fn start_local_agent(
    manager: &Manager,
    config: &ManagerConfig,
    backend: Arc<dyn Backend>,
) -> JoinHandle<()> {
    let store = manager.store.clone();
    let token = manager.shutdown_token();
    let addr = manager.addr.to_string();
    let state_dir = config.state_dir.clone();
    let hostname = config.hostname.clone();
    let links = config.agent_links.clone();
    tokio::spawn(async move {
        let (_, mut watcher) = store.watch(crate::store::WatchFilter::All);
        // The dispatcher accepts the agent (with this manager's certificate) once the
        // cluster and this node exist.
        loop {
            if store.view().the_cluster().is_some() {
                break;
            }
            tokio::select! {
                _ = token.cancelled() => return,
                b = watcher.recv() => if b.is_none() { let (_, w) = store.watch(crate::store::WatchFilter::All); watcher = w; },
            }
        }
        drop(watcher);
        let agent = swarm_agent::AgentConfig {
            managers: vec![addr],
            join_token: String::new(),
            state_dir,
            hostname,
            labels: Default::default(),
            backend,
            links,
        };
        if let Err(e) = swarm_agent::run(agent, token).await {
            tracing::error!(error = %e, "in-process agent stopped");
        }
    })
}
