//! The leadership watch: leader-only components run exactly while this member leads
//! (seed: "如果是leader … 如果是follower 全部停掉" — if leader, start them; if follower, stop
//! them all): dispatcher, allocator, orchestrators, scheduler, role manager. Also the store
//! metrics.

use std::time::Duration;

use swarm_proto::TaskState;
use tokio_util::sync::CancellationToken;

use crate::dispatcher::{Dispatcher, DispatcherConfig};
use crate::metrics;
use crate::raft::{MembershipApi, RaftHandle};
use crate::store::Store;

/// Runs until `shutdown`, starting the leader components on gaining leadership and
/// cancelling them on losing it.
pub(super) async fn watch(
    store: Store,
    raft: RaftHandle,
    dispatcher: Dispatcher,
    membership: MembershipApi,
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
                    &raft,
                    &dispatcher,
                    &membership,
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
    raft: &RaftHandle,
    dispatcher: &Dispatcher,
    membership: &MembershipApi,
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
    tokio::spawn(crate::role_manager::run(
        store.clone(),
        raft.clone(),
        membership.clone(),
        token.clone(),
    ));
    token
}

fn refresh_metrics(store: &Store) {
    let view = store.view();
    metrics::STORE_OBJECTS
        .with_label_values(&["nodes"])
        .set(view.node_count() as i64);
    metrics::STORE_OBJECTS
        .with_label_values(&["services"])
        .set(view.service_count() as i64);
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
