//! Prometheus metrics of the manager, registered in the default registry and served on
//! `--metrics-addr` at `/metrics`.

use std::sync::LazyLock;

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    register_histogram, register_int_counter, register_int_counter_vec, register_int_gauge,
    register_int_gauge_vec,
};

/// A latency histogram with buckets from 100 µs to ~3.3 s (doubling).
fn latency(name: &str, help: &str) -> Histogram {
    let buckets = prometheus::exponential_buckets(0.0001, 2.0, 16).expect("valid buckets");
    register_histogram!(HistogramOpts::new(name, help).buckets(buckets))
        .expect("metric registers once")
}

/// Time from proposing a raft entry to applying it locally.
pub static RAFT_COMMIT_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    latency(
        "swarm_raft_commit_seconds",
        "Time from proposing a store batch to applying it",
    )
});

/// Time to make one Ready's entries and hard state durable (redb commit with fsync).
pub static RAFT_PERSIST_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    latency(
        "swarm_raft_persist_seconds",
        "Time to persist one raft Ready (entries + hard state, fsynced)",
    )
});

/// Time to apply one Ready's committed entries to the store.
pub static RAFT_APPLY_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    latency(
        "swarm_raft_apply_seconds",
        "Time to apply one Ready's committed entries to the in-memory store",
    )
});

/// Raft entries applied to the store.
pub static RAFT_APPLIED_ENTRIES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "swarm_raft_applied_entries_total",
        "Raft entries applied to the store"
    )
    .expect("metric registers once")
});

/// Raft snapshots by what happened to them: `taken` (of this manager's store, compacting
/// its log), `sent` (streamed to a member whose log is too far behind), `installed` (received
/// from the leader in place of the log).
pub static RAFT_SNAPSHOTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        Opts::new(
            "swarm_raft_snapshots_total",
            "Raft snapshots taken, sent to other managers, and installed from the leader"
        ),
        &["event"]
    )
    .expect("metric registers once")
});

/// Chunks of the raft snapshots sent to other managers.
pub static RAFT_SNAPSHOT_CHUNKS_SENT: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "swarm_raft_snapshot_chunks_sent_total",
        "Chunks (of at most 1 MiB) of raft snapshots sent to other managers"
    )
    .expect("metric registers once")
});

/// Bytes of the raft snapshots sent to other managers.
pub static RAFT_SNAPSHOT_BYTES_SENT: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "swarm_raft_snapshot_sent_bytes_total",
        "Bytes of raft snapshot messages sent to other managers"
    )
    .expect("metric registers once")
});

/// 1 while this manager is the raft leader.
pub static RAFT_LEADER: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "swarm_raft_leader",
        "1 while this manager is the raft leader, else 0"
    )
    .expect("metric registers once")
});

/// Objects in the store, by table.
pub static STORE_OBJECTS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        Opts::new("swarm_store_objects", "Objects in the store, by table"),
        &["table"]
    )
    .expect("metric registers once")
});

/// Tasks placed on nodes by the scheduler.
pub static SCHEDULER_PLACEMENTS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "swarm_scheduler_placements_total",
        "Tasks assigned to nodes by the scheduler"
    )
    .expect("metric registers once")
});

/// Scheduling attempts that found no suitable node.
pub static SCHEDULER_UNSCHEDULABLE: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "swarm_scheduler_unschedulable_total",
        "Scheduling attempts that found no suitable node"
    )
    .expect("metric registers once")
});

/// Open agent sessions on this dispatcher.
pub static DISPATCHER_SESSIONS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "swarm_dispatcher_sessions",
        "Agent sessions open on this dispatcher"
    )
    .expect("metric registers once")
});

/// Tasks in the store by observed state.
pub static TASK_STATES: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        Opts::new("swarm_tasks", "Tasks in the store, by state"),
        &["state"]
    )
    .expect("metric registers once")
});

/// Task status updates received from agents.
pub static TASK_STATUS_UPDATES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        Opts::new(
            "swarm_dispatcher_task_status_updates_total",
            "Task status updates received from agents, by outcome"
        ),
        &["outcome"]
    )
    .expect("metric registers once")
});
