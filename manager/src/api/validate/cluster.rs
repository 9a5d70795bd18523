//! Node and cluster spec rules.

use swarm_proto::{ClusterSpec, NodeAvailability, NodeRole, NodeSpec};

use super::{MIN_HEARTBEAT_PERIOD_MS, MIN_TICK_MS, Result, invalid, labels};

/// Checks a node spec for `UpdateNode`: known role and availability, sane labels.
pub fn node_spec(spec: &NodeSpec) -> Result {
    if NodeRole::try_from(spec.desired_role).is_err() {
        return invalid(format!(
            "unknown node role {} (use `swarmctl node promote|demote`)",
            spec.desired_role
        ));
    }
    if NodeAvailability::try_from(spec.availability).is_err() {
        return invalid(format!(
            "unknown node availability {} (--availability active|pause|drain)",
            spec.availability
        ));
    }
    if let Some(a) = &spec.annotations {
        labels(a)?;
    }
    Ok(())
}

/// Checks a cluster spec for `UpdateCluster`. Absent sections keep their defaults; a present
/// section must be complete.
pub fn cluster_spec(spec: &ClusterSpec) -> Result {
    if let Some(o) = &spec.orchestration
        && o.task_history_retention_limit < 0
    {
        return invalid(format!(
            "task_history_retention_limit (--task-history-limit) must not be negative, not {}",
            o.task_history_retention_limit
        ));
    }
    if let Some(r) = &spec.raft {
        if r.heartbeat_tick < 1 {
            return invalid("raft heartbeat_tick must be at least 1");
        }
        if r.election_tick <= r.heartbeat_tick {
            return invalid(format!(
                "raft election_tick ({}) must be greater than heartbeat_tick ({})",
                r.election_tick, r.heartbeat_tick
            ));
        }
        if r.tick_ms < MIN_TICK_MS {
            return invalid(format!(
                "raft tick_ms must be at least {MIN_TICK_MS}, not {}",
                r.tick_ms
            ));
        }
        if r.snapshot_interval < 1 {
            return invalid("raft snapshot_interval (--snapshot-interval) must be at least 1");
        }
    }
    if let Some(ca) = &spec.ca_config
        && ca.node_cert_expiry_secs < crate::ca::MIN_NODE_CERT_EXPIRY.as_secs()
    {
        return invalid(format!(
            "node certificate expiry (--cert-expiry) must be at least {} s, not {} s",
            crate::ca::MIN_NODE_CERT_EXPIRY.as_secs(),
            ca.node_cert_expiry_secs
        ));
    }
    if let Some(d) = &spec.dispatcher
        && d.heartbeat_period_ms < MIN_HEARTBEAT_PERIOD_MS
    {
        return invalid(format!(
            "dispatcher heartbeat period (--dispatcher-heartbeat) must be at least 1s, not {} ms",
            d.heartbeat_period_ms
        ));
    }
    Ok(())
}
