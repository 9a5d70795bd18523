//! Prometheus metrics of the agent, registered in the default registry (so a manager with an
//! in-process agent serves them next to its own) and rendered by [`render`] for
//! `swarm-agent --metrics-addr`. All agents of one process add up into the same series, which
//! is what the scale benchmark (many agents in one process) wants.

use std::sync::LazyLock;

use prometheus::{
    IntCounter, IntGauge, IntGaugeVec, Opts, register_int_counter, register_int_gauge,
    register_int_gauge_vec,
};
use swarm_proto::TaskState;

/// Tasks held by task managers, by observed state.
pub static TASKS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        Opts::new(
            "swarm_agent_tasks",
            "Tasks run by this agent, by observed state"
        ),
        &["state"]
    )
    .expect("metric registers once")
});

/// Task statuses waiting to be acknowledged by the dispatcher.
pub static REPORTER_PENDING: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "swarm_agent_reporter_pending",
        "Task statuses waiting to be acknowledged by the dispatcher"
    )
    .expect("metric registers once")
});

/// Task status updates acknowledged by the dispatcher.
pub static STATUS_UPDATES_SENT: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "swarm_agent_status_updates_sent_total",
        "Task status updates acknowledged by the dispatcher"
    )
    .expect("metric registers once")
});

/// Task DB commits (each a group of writes).
pub static TASKDB_COMMITS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "swarm_agent_taskdb_commits_total",
        "Task DB commits, each a group of writes"
    )
    .expect("metric registers once")
});

/// Dispatcher sessions established.
pub static SESSIONS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "swarm_agent_sessions_total",
        "Dispatcher sessions established"
    )
    .expect("metric registers once")
});

/// Dispatcher sessions that failed or ended (each followed by a reconnect).
pub static SESSION_FAILURES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "swarm_agent_session_failures_total",
        "Dispatcher sessions that failed or ended"
    )
    .expect("metric registers once")
});

/// WASM artifacts compiled by the WASI backend (cache misses on disk and in memory).
pub static WASM_COMPILES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "swarm_agent_wasm_compiles_total",
        "WASM artifacts compiled by the WASI backend"
    )
    .expect("metric registers once")
});

/// Compiled WASM artifacts loaded from the on-disk cache instead of being compiled.
pub static WASM_CACHE_LOADS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "swarm_agent_wasm_cache_loads_total",
        "Compiled WASM artifacts loaded from the on-disk cache"
    )
    .expect("metric registers once")
});

/// Registers every agent metric now, so that `/metrics` lists them all from the start.
pub fn register() {
    LazyLock::force(&TASKS);
    LazyLock::force(&REPORTER_PENDING);
    LazyLock::force(&STATUS_UPDATES_SENT);
    LazyLock::force(&TASKDB_COMMITS);
    LazyLock::force(&SESSIONS);
    LazyLock::force(&SESSION_FAILURES);
    LazyLock::force(&WASM_COMPILES);
    LazyLock::force(&WASM_CACHE_LOADS);
}

/// Moves one task from state `from` to state `to` in [`TASKS`] (`None` = not counted).
pub fn task_moved(from: Option<TaskState>, to: Option<TaskState>) {
    if from == to {
        return;
    }
    if let Some(s) = from {
        TASKS.with_label_values(&[label(s)]).dec();
    }
    if let Some(s) = to {
        TASKS.with_label_values(&[label(s)]).inc();
    }
}

/// The default registry in Prometheus text format.
pub fn render() -> String {
    let families = prometheus::gather();
    prometheus::TextEncoder::new()
        .encode_to_string(&families)
        .unwrap_or_else(|e| format!("# encoding metrics failed: {e}\n"))
}

/// Serves [`render`] on `GET /metrics` until `shutdown` (agents and managers both use it).
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            ([("content-type", "text/plain; version=0.0.4")], render())
        }),
    );
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled_owned().await })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "metrics server failed");
    }
}

fn label(s: TaskState) -> &'static str {
    use TaskState as S;
    match s {
        S::New => "new",
        S::Pending => "pending",
        S::Assigned => "assigned",
        S::Accepted => "accepted",
        S::Preparing => "preparing",
        S::Ready => "ready",
        S::Starting => "starting",
        S::Running => "running",
        S::Complete => "complete",
        S::Shutdown => "shutdown",
        S::Failed => "failed",
        S::Rejected => "rejected",
        S::Remove => "remove",
        S::Orphaned => "orphaned",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_task_states() {
        task_moved(None, Some(TaskState::Running));
        REPORTER_PENDING.add(0);
        let text = render();
        assert!(
            text.contains("swarm_agent_tasks{state=\"running\"}"),
            "{text}"
        );
        assert!(text.contains("swarm_agent_reporter_pending"), "{text}");
        task_moved(Some(TaskState::Running), None);
    }
}
