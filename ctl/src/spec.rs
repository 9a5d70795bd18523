//! `service create` / `service update` flags → [`ServiceSpec`].
//!
//! Pure functions: the command line is parsed by clap into the structs below, and
//! [`create_spec`] / [`update_spec`] turn those into the spec sent to the manager, or a
//! [`SpecError`] naming the flag and the value the user typed. Flag names and value syntax
//! follow `docker service create/update` (DESIGN §7). Only flags the user gave are written:
//! an unset restart delay, update parallelism or monitor period stays unset, so the
//! manager applies SwarmKit's defaults.

use std::collections::HashMap;

use swarm_proto::service_spec::Mode;
use swarm_proto::task_spec::Runtime;
use swarm_proto::{
    GlobalJob, GlobalService, Mount, OciRuntime, ReplicatedJob, ReplicatedService,
    RestartCondition, ServiceSpec, TaskSpec, Ulimit, UpdateConfig, UpdateFailureAction,
    UpdateOrder, WasmRuntime,
};
use thiserror::Error;

use crate::parse;

mod flags;
pub use flags::*;

/// A flag value or a combination of flags that cannot make a spec.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("invalid --{flag} \"{value}\": {reason}")]
    Invalid {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Conflict(String),
}

fn invalid(flag: &'static str, value: &str, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        flag,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Parses `value` with `f`, naming `flag` in the error.
fn parsed<T>(
    flag: &'static str,
    value: &str,
    f: impl FnOnce(&str) -> Result<T, parse::Reason>,
) -> Result<T, SpecError> {
    f(value).map_err(|reason| invalid(flag, value, reason))
}

/// Reads a variable of the client's environment (for a bare `-e KEY`).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Builds the spec `service create` sends.
pub fn create_spec(f: &CreateFlags, env: EnvLookup<'_>) -> Result<ServiceSpec, SpecError> {
    let mode = match f.mode {
        ModeArg::Replicated => Mode::Replicated(ReplicatedService {
            replicas: f.replicas.unwrap_or(1),
        }),
        ModeArg::ReplicatedJob => {
            let total = f.replicas.unwrap_or(1);
            Mode::ReplicatedJob(ReplicatedJob {
                max_concurrent: f.spec.max_concurrent.unwrap_or(total),
                total_completions: total,
            })
        }
        ModeArg::Global | ModeArg::GlobalJob if f.replicas.is_some() => {
            return Err(SpecError::Conflict(
                "--replicas can only be used with replicated or replicated-job mode".into(),
            ));
        }
        ModeArg::Global => Mode::Global(GlobalService {}),
        ModeArg::GlobalJob => Mode::GlobalJob(GlobalJob {}),
    };
    if f.artifact.trim().is_empty() {
        return Err(SpecError::Conflict("an ARTIFACT to run is required".into()));
    }
    let mut task = TaskSpec {
        runtime: Some(match f.runtime {
            RuntimeArg::Wasm => Runtime::Wasm(WasmRuntime::default()),
            RuntimeArg::Oci => Runtime::Oci(OciRuntime::default()),
        }),
        ..Default::default()
    };
    let rt = runtime_mut(&mut task);
    *rt.artifact = f.artifact.clone();
    *rt.args = f.args.clone();
    for e in &f.env {
        rt.env.extend(parsed("env", e, |v| parse::env(v, env))?);
    }
    for m in &f.mount {
        upsert_mount(rt.mounts, parsed("mount", m, parse::mount)?);
    }
    for u in &f.ulimit {
        upsert_ulimit(rt.ulimits, parsed("ulimit", u, parse::ulimit)?);
    }
    if f.read_only {
        match task.runtime.as_mut() {
            Some(Runtime::Oci(o)) => o.read_only = true,
            _ => {
                return Err(SpecError::Conflict(
                    "--read-only applies to containers (--runtime oci): a WASM guest sees \
                     only the mounts it is given"
                        .into(),
                ));
            }
        }
    }
    let mut spec = ServiceSpec {
        mode: Some(mode),
        task: Some(task),
        ..Default::default()
    };
    let annotations = spec.annotations.get_or_insert_default();
    annotations.name = f.name.clone().unwrap_or_default();
    for l in &f.label {
        let (k, v) = parsed("label", l, parse::label)?;
        annotations.labels.insert(k, v);
    }
    for c in &f.constraint {
        parsed("constraint", c, parse::constraint)?;
        let placement = task_mut(&mut spec).placement.get_or_insert_default();
        if !placement.constraints.contains(c) {
            placement.constraints.push(c.clone());
        }
    }
    for p in &f.publish {
        let port = parsed("publish", p, parse::port)?;
        add_port(&mut spec.endpoint.get_or_insert_default().ports, port);
    }
    apply_common(&mut spec, &f.spec)?;
    Ok(spec)
}

/// Builds the spec `service update` sends: `current` with the flags applied. Removals
/// (`--*-rm`) apply before additions, so `--env-rm A --env-add A=2` replaces `A`.
pub fn update_spec(
    current: &ServiceSpec,
    f: &UpdateFlags,
    env: EnvLookup<'_>,
) -> Result<ServiceSpec, SpecError> {
    let mut spec = current.clone();
    if let Some(n) = f.replicas
        && !set_replicas(&mut spec, n)
    {
        return Err(SpecError::Conflict(
            "--replicas can only be used with replicated or replicated-job mode".into(),
        ));
    }

    if !f.label_rm.is_empty() || !f.label_add.is_empty() {
        let labels = &mut spec.annotations.get_or_insert_default().labels;
        for k in &f.label_rm {
            labels.remove(k);
        }
        for l in &f.label_add {
            let (k, v) = parsed("label-add", l, parse::label)?;
            labels.insert(k, v);
        }
    }

    let touches_runtime = f.image.is_some()
        || f.args.is_some()
        || !f.env_rm.is_empty()
        || !f.env_add.is_empty()
        || !f.mount_rm.is_empty()
        || !f.mount_add.is_empty()
        || !f.ulimit_rm.is_empty()
        || !f.ulimit_add.is_empty();
    if touches_runtime {
        let rt = runtime_mut(task_mut(&mut spec));
        if let Some(image) = &f.image {
            if image.trim().is_empty() {
                return Err(invalid("image", image, "the artifact cannot be empty"));
            }
            *rt.artifact = image.clone();
        }
        if let Some(args) = &f.args {
            *rt.args = parsed("args", args, parse::shell_words)?;
        }
        rt.env
            .retain(|e| !f.env_rm.iter().any(|k| parse::env_key(e) == k));
        for e in &f.env_add {
            if let Some(entry) = parsed("env-add", e, |v| parse::env(v, env))? {
                match rt
                    .env
                    .iter_mut()
                    .find(|x| parse::env_key(x) == parse::env_key(&entry))
                {
                    Some(existing) => *existing = entry,
                    None => rt.env.push(entry),
                }
            }
        }
        rt.mounts.retain(|m| !f.mount_rm.contains(&m.target));
        for m in &f.mount_add {
            upsert_mount(rt.mounts, parsed("mount-add", m, parse::mount)?);
        }
        rt.ulimits.retain(|u| !f.ulimit_rm.contains(&u.name));
        for u in &f.ulimit_add {
            upsert_ulimit(rt.ulimits, parsed("ulimit-add", u, parse::ulimit)?);
        }
    }

    if !f.constraint_rm.is_empty() || !f.constraint_add.is_empty() {
        let placement = task_mut(&mut spec).placement.get_or_insert_default();
        placement
            .constraints
            .retain(|c| !f.constraint_rm.contains(c));
        for c in &f.constraint_add {
            parsed("constraint-add", c, parse::constraint)?;
            if !placement.constraints.contains(c) {
                placement.constraints.push(c.clone());
            }
        }
    }

    if !f.publish_rm.is_empty() || !f.publish_add.is_empty() {
        let ports = &mut spec.endpoint.get_or_insert_default().ports;
        for p in &f.publish_rm {
            let rm = parsed("publish-rm", p, parse::port)?;
            ports.retain(|x| !(x.target_port == rm.target_port && x.protocol == rm.protocol));
        }
        for p in &f.publish_add {
            add_port(ports, parsed("publish-add", p, parse::port)?);
        }
    }

    if f.force {
        let task = task_mut(&mut spec);
        task.force_update = task.force_update.wrapping_add(1);
    }
    apply_common(&mut spec, &f.spec)?;
    Ok(spec)
}

/// Sets the replica count (replicated) or the number of completions (replicated job).
/// Returns false for modes without one (global, global job).
pub fn set_replicas(spec: &mut ServiceSpec, n: u64) -> bool {
    match &mut spec.mode {
        Some(Mode::Replicated(r)) => r.replicas = n,
        Some(Mode::ReplicatedJob(j)) => j.total_completions = n,
        None => spec.mode = Some(Mode::Replicated(ReplicatedService { replicas: n })),
        Some(Mode::Global(_) | Mode::GlobalJob(_)) => return false,
    }
    true
}

/// Applies the flags create and update share.
fn apply_common(spec: &mut ServiceSpec, f: &SpecFlags) -> Result<(), SpecError> {
    if let Some(n) = f.max_concurrent {
        match &mut spec.mode {
            Some(Mode::ReplicatedJob(j)) => j.max_concurrent = n,
            _ => {
                return Err(SpecError::Conflict(
                    "--max-concurrent can only be used with replicated-job mode".into(),
                ));
            }
        }
    }
    if let Some(n) = f.max_replicas {
        if matches!(spec.mode, Some(Mode::Global(_) | Mode::GlobalJob(_))) {
            return Err(SpecError::Conflict(
                "--max-replicas can only be used with replicated or replicated-job mode".into(),
            ));
        }
        task_mut(spec)
            .placement
            .get_or_insert_default()
            .max_replicas = n;
    }

    let task = task_mut(spec);
    if let Some(w) = &f.workdir {
        *runtime_mut(task).workdir = w.clone();
    }
    if let Some(v) = &f.limit_memory {
        let bytes = parsed("limit-memory", v, parse::memory_bytes)?;
        resources(task).limits.get_or_insert_default().memory_bytes = bytes;
    }
    if let Some(v) = &f.limit_cpu {
        let nanos = parsed("limit-cpu", v, parse::nano_cpus)?;
        resources(task).limits.get_or_insert_default().nano_cpus = nanos;
    }
    if let Some(v) = &f.reserve_memory {
        let bytes = parsed("reserve-memory", v, parse::memory_bytes)?;
        resources(task)
            .reservations
            .get_or_insert_default()
            .memory_bytes = bytes;
    }
    if let Some(v) = &f.reserve_cpu {
        let nanos = parsed("reserve-cpu", v, parse::nano_cpus)?;
        resources(task)
            .reservations
            .get_or_insert_default()
            .nano_cpus = nanos;
    }

    if let Some(c) = f.restart_condition {
        task.restart.get_or_insert_default().condition = match c {
            RestartConditionArg::Any => RestartCondition::RestartAny,
            RestartConditionArg::OnFailure => RestartCondition::RestartOnFailure,
            RestartConditionArg::None => RestartCondition::RestartNone,
        } as i32;
    }
    if let Some(v) = &f.restart_delay {
        task.restart.get_or_insert_default().delay_ms =
            Some(parsed("restart-delay", v, parse::duration_ms)?);
    }
    if let Some(n) = f.restart_max_attempts {
        task.restart.get_or_insert_default().max_attempts = n;
    }
    if let Some(v) = &f.restart_window {
        task.restart.get_or_insert_default().window_ms =
            parsed("restart-window", v, parse::duration_ms)?;
    }

    let update = UpdateFlagsView {
        prefix: "update",
        parallelism: f.update_parallelism,
        delay: f.update_delay.as_deref(),
        failure_action: f.update_failure_action.map(|a| match a {
            UpdateFailureArg::Pause => UpdateFailureAction::UpdatePause,
            UpdateFailureArg::Continue => UpdateFailureAction::UpdateContinue,
            UpdateFailureArg::Rollback => UpdateFailureAction::UpdateRollback,
        }),
        monitor: f.update_monitor.as_deref(),
        max_failure_ratio: f.update_max_failure_ratio.as_deref(),
        order: f.update_order,
    };
    update.apply(&mut spec.update)?;
    let rollback = UpdateFlagsView {
        prefix: "rollback",
        parallelism: f.rollback_parallelism,
        delay: f.rollback_delay.as_deref(),
        failure_action: f.rollback_failure_action.map(|a| match a {
            RollbackFailureArg::Pause => UpdateFailureAction::UpdatePause,
            RollbackFailureArg::Continue => UpdateFailureAction::UpdateContinue,
        }),
        monitor: f.rollback_monitor.as_deref(),
        max_failure_ratio: f.rollback_max_failure_ratio.as_deref(),
        order: f.rollback_order,
    };
    rollback.apply(&mut spec.rollback)
}

/// The `--update-*` or the `--rollback-*` flags, which fill the same `UpdateConfig` shape.
struct UpdateFlagsView<'a> {
    prefix: &'static str,
    parallelism: Option<u64>,
    delay: Option<&'a str>,
    failure_action: Option<UpdateFailureAction>,
    monitor: Option<&'a str>,
    max_failure_ratio: Option<&'a str>,
    order: Option<OrderArg>,
}

impl UpdateFlagsView<'_> {
    fn is_empty(&self) -> bool {
        self.parallelism.is_none()
            && self.delay.is_none()
            && self.failure_action.is_none()
            && self.monitor.is_none()
            && self.max_failure_ratio.is_none()
            && self.order.is_none()
    }

    /// The name of this group's `--<prefix>-<name>` flag, for error messages.
    fn flag(&self, name: &str) -> &'static str {
        match (self.prefix, name) {
            ("update", "delay") => "update-delay",
            ("update", "monitor") => "update-monitor",
            ("update", _) => "update-max-failure-ratio",
            (_, "delay") => "rollback-delay",
            (_, "monitor") => "rollback-monitor",
            _ => "rollback-max-failure-ratio",
        }
    }

    fn apply(&self, config: &mut Option<UpdateConfig>) -> Result<(), SpecError> {
        if self.is_empty() {
            return Ok(());
        }
        let c = config.get_or_insert_default();
        if let Some(n) = self.parallelism {
            c.parallelism = Some(n);
        }
        if let Some(v) = self.delay {
            c.delay_ms = parsed(self.flag("delay"), v, parse::duration_ms)?;
        }
        if let Some(a) = self.failure_action {
            c.failure_action = a as i32;
        }
        if let Some(v) = self.monitor {
            c.monitor_ms = Some(parsed(self.flag("monitor"), v, parse::duration_ms)?);
        }
        if let Some(v) = self.max_failure_ratio {
            c.max_failure_ratio =
                parsed(self.flag("ratio"), v, |s| match s.trim().parse::<f32>() {
                    Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                    _ => Err("expected a number between 0 and 1 (e.g. 0.2)".into()),
                })?;
        }
        if let Some(o) = self.order {
            c.order = match o {
                OrderArg::StopFirst => UpdateOrder::StopFirst,
                OrderArg::StartFirst => UpdateOrder::StartFirst,
            } as i32;
        }
        Ok(())
    }
}

fn task_mut(spec: &mut ServiceSpec) -> &mut TaskSpec {
    spec.task.get_or_insert_default()
}

fn resources(task: &mut TaskSpec) -> &mut swarm_proto::ResourceRequirements {
    task.resources.get_or_insert_default()
}

/// The fields the WASM and OCI runtimes share, whichever the task has.
pub(crate) struct RuntimeFields<'a> {
    pub artifact: &'a mut String,
    pub args: &'a mut Vec<String>,
    pub env: &'a mut Vec<String>,
    pub workdir: &'a mut String,
    pub mounts: &'a mut Vec<Mount>,
    pub ulimits: &'a mut Vec<Ulimit>,
}

/// The runtime's shared fields (a task without a runtime gets an empty WASM one).
pub(crate) fn runtime_mut(task: &mut TaskSpec) -> RuntimeFields<'_> {
    match task
        .runtime
        .get_or_insert_with(|| Runtime::Wasm(WasmRuntime::default()))
    {
        Runtime::Wasm(w) => RuntimeFields {
            artifact: &mut w.artifact,
            args: &mut w.args,
            env: &mut w.env,
            workdir: &mut w.workdir,
            mounts: &mut w.mounts,
            ulimits: &mut w.ulimits,
        },
        Runtime::Oci(o) => RuntimeFields {
            artifact: &mut o.image,
            args: &mut o.args,
            env: &mut o.env,
            workdir: &mut o.workdir,
            mounts: &mut o.mounts,
            ulimits: &mut o.ulimits,
        },
    }
}

/// Adds a mount, replacing one with the same target (as Docker does).
fn upsert_mount(mounts: &mut Vec<Mount>, m: Mount) {
    upsert(mounts, m, |a, b| a.target == b.target);
}

/// Adds a ulimit, replacing one with the same name (as Docker does).
fn upsert_ulimit(ulimits: &mut Vec<Ulimit>, u: Ulimit) {
    upsert(ulimits, u, |a, b| a.name == b.name);
}

/// Adds `item`, replacing the first entry `same` says it replaces.
fn upsert<T>(items: &mut Vec<T>, item: T, same: impl Fn(&T, &T) -> bool) {
    match items.iter_mut().find(|x| same(x, &item)) {
        Some(existing) => *existing = item,
        None => items.push(item),
    }
}

/// Adds a published port, replacing one that publishes the same (non-zero) port or is
/// identical.
fn add_port(ports: &mut Vec<swarm_proto::PortConfig>, p: swarm_proto::PortConfig) {
    ports.retain(|x| !(x == &p || (p.published_port != 0 && x.published_port == p.published_port)));
    ports.push(p);
}

/// Labels as sorted `k=v` strings (for display and tests).
pub fn sorted_labels(labels: &HashMap<String, String>) -> Vec<String> {
    let mut v: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests;
