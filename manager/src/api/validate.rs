//! Spec validation for the Control API: pure functions from a spec to the first rule it
//! breaks, each message naming the field (and the `swarmctl`/Docker flag that sets it) and
//! what a valid value looks like.
//!
//! The rules follow SwarmKit's `controlapi` validation where it has one, Docker's CLI where
//! the rule lives there (names, env, ports), and add bounds that keep later arithmetic safe
//! (durations fit in `i64` nanoseconds, replica counts stay allocatable).
//!
//! Enum fields travel as `i32`; a number that names no value is rejected rather than read as
//! the default.

use std::collections::HashSet;

use swarm_proto::{
    Annotations, EndpointSpec, Mount, Placement, ResourceRequirements, RestartCondition,
    RestartPolicy, ServiceSpec, TaskSpec, Ulimit, UpdateConfig, UpdateFailureAction, UpdateOrder,
    service_spec::Mode, task_spec::Runtime,
};

use super::error::ValidationError;

mod cluster;
mod reference;

pub use cluster::{cluster_spec, node_spec};
pub use reference::artifact;

/// Longest service name (a DNS label, as Docker requires).
pub const MAX_NAME_LEN: usize = 63;
/// Most replicas (or job completions / concurrency) a service may ask for.
pub const MAX_REPLICAS: u64 = 1_000_000;
/// Longest delay, window or monitor period: a year, so every duration fits comfortably in
/// `i64` nanoseconds.
pub const MAX_DURATION_MS: u64 = 365 * 24 * 3600 * 1000;
/// Shortest raft tick the raft loop is tuned for.
pub const MIN_TICK_MS: u64 = 10;
/// Shortest agent heartbeat period.
pub const MIN_HEARTBEAT_PERIOD_MS: u64 = 1000;

type Result<T = ()> = std::result::Result<T, ValidationError>;

fn invalid<T>(message: impl Into<String>) -> Result<T> {
    Err(ValidationError::new(message))
}

/// Checks a service spec for `CreateService` and `UpdateService`.
pub fn service_spec(spec: &ServiceSpec) -> Result {
    let annotations = spec.annotations.as_ref();
    service_name(annotations.map_or("", |a| a.name.as_str()))?;
    if let Some(a) = annotations {
        labels(a)?;
    }
    mode(spec.mode.as_ref())?;
    let task = spec.task.as_ref().ok_or_else(|| {
        ValidationError::new("task spec is required: give a wasm artifact or an OCI image")
    })?;
    task_spec(task, spec.mode.as_ref())?;
    if let Some(u) = &spec.update {
        update_config(u, "update", "--update")?;
    }
    if let Some(r) = &spec.rollback {
        update_config(r, "rollback", "--rollback")?;
    }
    if let Some(e) = &spec.endpoint {
        endpoint(e)?;
    }
    Ok(())
}

/// Docker's rule for service names: a DNS label of letters, digits, `-`, `_` and `.`, that
/// starts and ends with a letter or digit, at most 63 characters.
pub fn service_name(name: &str) -> Result {
    if name.is_empty() {
        return invalid("service name is required (--name)");
    }
    if name.len() > MAX_NAME_LEN {
        return invalid(format!(
            "service name {name:?} is {} characters long; the maximum is {MAX_NAME_LEN}",
            name.len()
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let alnum_ends = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !name.chars().all(allowed) || !alnum_ends {
        return invalid(format!(
            "invalid service name {name:?}: only letters, digits, '-', '_' and '.' are allowed, \
             and the name must start and end with a letter or digit"
        ));
    }
    Ok(())
}

fn labels(a: &Annotations) -> Result {
    for key in a.labels.keys() {
        if key.is_empty() {
            return invalid("label keys must not be empty (--label KEY=VALUE)");
        }
        if key.chars().any(char::is_whitespace) {
            return invalid(format!("label key {key:?} contains whitespace"));
        }
    }
    Ok(())
}

fn mode(mode: Option<&Mode>) -> Result {
    match mode {
        None => invalid(
            "service mode is required: replicated (--replicas N), global (--mode global), \
             replicated-job or global-job",
        ),
        Some(Mode::Replicated(r)) => count("replicas", "--replicas", r.replicas, 0),
        Some(Mode::ReplicatedJob(j)) => {
            count("total_completions", "--replicas", j.total_completions, 1)?;
            // A max_concurrent above total_completions is allowed (as in Docker): at most
            // total_completions tasks ever run at once.
            count("max_concurrent", "--max-concurrent", j.max_concurrent, 1)
        }
        Some(Mode::Global(_)) | Some(Mode::GlobalJob(_)) => Ok(()),
    }
}

fn count(field: &str, flag: &str, n: u64, min: u64) -> Result {
    if n < min {
        return invalid(format!("{field} ({flag}) must be at least {min}, not {n}"));
    }
    if n > MAX_REPLICAS {
        return invalid(format!(
            "{field} ({flag}) is {n}, more than the maximum of {MAX_REPLICAS}"
        ));
    }
    Ok(())
}

fn task_spec(task: &TaskSpec, mode: Option<&Mode>) -> Result {
    match &task.runtime {
        None => return invalid("task runtime is required: give a wasm artifact or an OCI image"),
        Some(Runtime::Wasm(w)) => {
            artifact(&w.artifact)?;
            env(&w.env)?;
            mounts(&w.mounts)?;
            wasm_ulimits(&w.ulimits)?;
        }
        Some(Runtime::Oci(o)) => {
            // The OCI backend accepts registry references and image layouts; it resolves the
            // syntax itself, so only emptiness and whitespace are checked here.
            if o.image.trim().is_empty() {
                return invalid("OCI image is required (e.g. docker.io/library/alpine:3.20)");
            }
            if o.image.chars().any(char::is_whitespace) {
                return invalid(format!("OCI image {:?} contains whitespace", o.image));
            }
            env(&o.env)?;
            mounts(&o.mounts)?;
        }
    }
    if let Some(r) = &task.resources {
        resources(r)?;
    }
    if let Some(r) = &task.restart {
        restart(r)?;
    }
    if let Some(p) = &task.placement {
        placement(p, mode)?;
    }
    Ok(())
}

/// `KEY=VALUE` entries with a non-empty key without whitespace (`--env`).
pub fn env(entries: &[String]) -> Result {
    for e in entries {
        let Some((key, _)) = e.split_once('=') else {
            return invalid(format!(
                "invalid env entry {e:?}: expected KEY=VALUE (--env)"
            ));
        };
        if key.is_empty() {
            return invalid(format!(
                "invalid env entry {e:?}: the variable name is empty"
            ));
        }
        if key.chars().any(char::is_whitespace) {
            return invalid(format!(
                "invalid env entry {e:?}: the variable name contains whitespace"
            ));
        }
    }
    Ok(())
}

/// Bind mounts: absolute source and target, each target used once (`--mount`).
pub fn mounts(mounts: &[Mount]) -> Result {
    let mut targets = HashSet::new();
    for m in mounts {
        if !m.source.starts_with('/') {
            return invalid(format!(
                "invalid mount source {:?}: it must be an absolute path on the node \
                 (--mount type=bind,source=/path,target=/path)",
                m.source
            ));
        }
        if !m.target.starts_with('/') {
            return invalid(format!(
                "invalid mount target {:?}: it must be an absolute path inside the task",
                m.target
            ));
        }
        let target = m.target.trim_end_matches('/');
        if !targets.insert(if target.is_empty() { "/" } else { target }) {
            return invalid(format!("duplicate mount target {:?}", m.target));
        }
    }
    Ok(())
}

/// WASM tasks support one ulimit, `cpu` (seconds of CPU time), set once, as a positive
/// number or -1 (unlimited).
pub fn wasm_ulimits(ulimits: &[Ulimit]) -> Result {
    let mut seen = HashSet::new();
    for u in ulimits {
        if u.name != "cpu" {
            return invalid(format!(
                "ulimit {:?} is not supported for WASM tasks (supported: cpu=SECONDS)",
                u.name
            ));
        }
        if !seen.insert(u.name.as_str()) {
            return invalid(format!("ulimit {:?} is given twice", u.name));
        }
        let ok = |n: i64| n == -1 || n > 0;
        if !ok(u.soft) || !ok(u.hard) || (u.hard != -1 && (u.soft == -1 || u.soft > u.hard)) {
            return invalid(format!(
                "invalid ulimit cpu={}:{}: limits are seconds > 0 or -1 (unlimited), soft <= hard",
                u.soft, u.hard
            ));
        }
    }
    Ok(())
}

/// Non-negative limits and reservations; a reservation no larger than its limit.
pub fn resources(r: &ResourceRequirements) -> Result {
    let limits = r.limits.unwrap_or_default();
    let reservations = r.reservations.unwrap_or_default();
    for (value, flag) in [
        (limits.nano_cpus, "--limit-cpu"),
        (limits.memory_bytes, "--limit-memory"),
        (reservations.nano_cpus, "--reserve-cpu"),
        (reservations.memory_bytes, "--reserve-memory"),
    ] {
        if value < 0 {
            return invalid(format!("{flag} must not be negative (got {value})"));
        }
    }
    if limits.nano_cpus > 0 && reservations.nano_cpus > limits.nano_cpus {
        return invalid(format!(
            "the CPU reservation ({} CPUs, --reserve-cpu) is more than the CPU limit ({} CPUs, \
             --limit-cpu)",
            cpus(reservations.nano_cpus),
            cpus(limits.nano_cpus)
        ));
    }
    if limits.memory_bytes > 0 && reservations.memory_bytes > limits.memory_bytes {
        return invalid(format!(
            "the memory reservation ({} bytes, --reserve-memory) is more than the memory limit \
             ({} bytes, --limit-memory)",
            reservations.memory_bytes, limits.memory_bytes
        ));
    }
    Ok(())
}

fn cpus(nano: i64) -> f64 {
    nano as f64 / 1e9
}

/// A known restart condition and delays/windows of at most [`MAX_DURATION_MS`].
pub fn restart(r: &RestartPolicy) -> Result {
    if RestartCondition::try_from(r.condition).is_err() {
        return invalid(format!(
            "unknown restart condition {} (--restart-condition any|on-failure|none)",
            r.condition
        ));
    }
    duration("restart delay", "--restart-delay", r.delay_ms.unwrap_or(0))?;
    duration("restart window", "--restart-window", r.window_ms)
}

fn duration(what: &str, flag: &str, ms: u64) -> Result {
    if ms > MAX_DURATION_MS {
        return invalid(format!(
            "{what} ({flag}) of {ms} ms is too long; the maximum is 365 days"
        ));
    }
    Ok(())
}

/// Constraints that the scheduler can parse; `max_replicas` only for replicated modes.
pub fn placement(p: &Placement, mode: Option<&Mode>) -> Result {
    for c in &p.constraints {
        constraint(c)?;
    }
    if p.max_replicas > 0 && matches!(mode, Some(Mode::Global(_)) | Some(Mode::GlobalJob(_))) {
        return invalid(
            "max_replicas (--replicas-max-per-node) only applies to replicated services; a \
             global service runs one task per node",
        );
    }
    if p.max_replicas > MAX_REPLICAS {
        return invalid(format!(
            "max_replicas (--replicas-max-per-node) is {}, more than the maximum of {MAX_REPLICAS}",
            p.max_replicas
        ));
    }
    Ok(())
}

/// One placement constraint, checked with the scheduler's own parser so that whatever is
/// accepted here is what the scheduler evaluates. (The parser's message names the
/// expression and the expected syntax.)
pub fn constraint(expr: &str) -> Result {
    crate::scheduler::constraint::parse(expr)
        .map(drop)
        .map_err(|e| ValidationError::new(format!("{e} (--constraint)")))
}

/// Update and rollback settings: known enums, `max_failure_ratio` in [0, 1], sane delays.
pub fn update_config(u: &UpdateConfig, what: &str, flag: &str) -> Result {
    let Ok(action) = UpdateFailureAction::try_from(u.failure_action) else {
        return invalid(format!(
            "unknown {what} failure action {} ({flag}-failure-action pause|continue|rollback)",
            u.failure_action
        ));
    };
    if what == "rollback" && action == UpdateFailureAction::UpdateRollback {
        return invalid(
            "a rollback can't fail by rolling back (--rollback-failure-action pause|continue)",
        );
    }
    if UpdateOrder::try_from(u.order).is_err() {
        return invalid(format!(
            "unknown {what} order {} ({flag}-order stop-first|start-first)",
            u.order
        ));
    }
    let ratio = u.max_failure_ratio;
    if !(0.0..=1.0).contains(&ratio) {
        return invalid(format!(
            "{what} max_failure_ratio ({flag}-max-failure-ratio) must be between 0 and 1, not {ratio}"
        ));
    }
    duration(
        &format!("{what} delay"),
        &format!("{flag}-delay"),
        u.delay_ms,
    )?;
    duration(
        &format!("{what} monitor period"),
        &format!("{flag}-monitor"),
        u.monitor_ms.unwrap_or(0),
    )
}

/// Published ports: target and published in 1–65535, a known protocol, no published port
/// (per protocol) twice.
pub fn endpoint(e: &EndpointSpec) -> Result {
    let mut published = HashSet::new();
    for p in &e.ports {
        let protocol = if p.protocol.is_empty() {
            "tcp".to_string()
        } else {
            p.protocol.to_ascii_lowercase()
        };
        if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
            return invalid(format!(
                "unknown protocol {:?} for port {}: use tcp, udp or sctp (--publish P:T/udp)",
                p.protocol, p.target_port
            ));
        }
        for (port, what) in [(p.target_port, "target"), (p.published_port, "published")] {
            if !(1..=65535).contains(&port) {
                return invalid(format!(
                    "{what} port {port} is out of range: ports are 1-65535 (--publish P:T)"
                ));
            }
        }
        if !published.insert((p.published_port, protocol.clone())) {
            return invalid(format!(
                "port {}/{protocol} is published more than once",
                p.published_port
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
