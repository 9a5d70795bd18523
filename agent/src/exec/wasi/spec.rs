//! [`RunSpec`]: a task's `WasmRuntime` and resource limits, validated once when the
//! controller is made (pure, no I/O), in the form the guest builder needs.
//!
//! Rules: the artifact is a digest the manager pinned or a registry reference (it has a
//! '/'); `env` entries are `KEY=VALUE` with a non-empty key; `workdir` and mount targets
//! are absolute guest paths; mount sources are absolute host paths (their existence is
//! checked in `prepare`/`start`); the only ulimit is `cpu` (seconds; the soft value is
//! the limit, -1 = unlimited, as RLIMIT_CPU's SIGXCPU fires at the soft limit); a memory
//! limit must fit the engine's pool slot; unset means the backend's default cap.

use std::path::PathBuf;

use swarm_proto::task_spec::Runtime;
use swarm_proto::{Task, WasmRuntime};

use super::config::WasiLimits;
use super::limits::format_bytes;
use crate::artifacts::digest_of_reference;
use crate::exec::ExecError;
use crate::registry;

/// A host directory made visible to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountSpec {
    pub(crate) source: PathBuf,
    pub(crate) target: String,
    pub(crate) readonly: bool,
}

/// Where a task's WASM bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArtifactRef {
    /// `sha256:<hex>` in the managers' artifact store (the manager pinned the reference).
    Pinned(String),
    /// A WASM artifact in an OCI registry (`HOST[:PORT]/REPO[:TAG|@sha256:…]`), pulled when
    /// the task is prepared; the digest of its one layer keys the compiled cache.
    Registry(String),
}

/// Everything needed to run one task's guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunSpec {
    pub(crate) artifact: ArtifactRef,
    /// argv; argv[0] is the artifact's name.
    pub(crate) argv: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) workdir: Option<String>,
    pub(crate) mounts: Vec<MountSpec>,
    pub(crate) memory_bytes: u64,
    /// CPU share in billionths of a CPU; 0 = unlimited.
    pub(crate) nano_cpus: i64,
    /// `ulimit cpu`, seconds of CPU time.
    pub(crate) cpu_limit_secs: Option<u64>,
}

impl RunSpec {
    /// Validates `task` for this backend.
    ///
    /// # Errors
    /// [`ExecError::InvalidTask`] naming the offending field.
    pub(crate) fn from_task(task: &Task, limits: &WasiLimits) -> Result<Self, ExecError> {
        let spec = task.spec.as_ref();
        let wasm = match spec.and_then(|s| s.runtime.as_ref()) {
            Some(Runtime::Wasm(w)) => w,
            Some(Runtime::Oci(_)) => {
                return Err(invalid(
                    "the WASI backend runs WASM tasks, not OCI containers",
                ));
            }
            None => return Err(invalid("task spec has no runtime")),
        };
        let limits_spec = spec
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.limits.as_ref());
        let memory = limits_spec.map_or(0, |l| l.memory_bytes);
        let nano_cpus = limits_spec.map_or(0, |l| l.nano_cpus);
        if nano_cpus < 0 {
            return Err(invalid(format!(
                "cpu limit {nano_cpus} nano-CPUs is negative"
            )));
        }
        Ok(Self {
            artifact: artifact_ref(&wasm.artifact)?,
            argv: argv(wasm),
            env: wasm
                .env
                .iter()
                .map(|e| parse_env(e))
                .collect::<Result<_, _>>()?,
            workdir: workdir(&wasm.workdir)?,
            mounts: wasm.mounts.iter().map(mount).collect::<Result<_, _>>()?,
            memory_bytes: memory_bytes(memory, limits)?,
            nano_cpus,
            cpu_limit_secs: cpu_limit(wasm)?,
        })
    }
}

fn invalid(msg: impl Into<String>) -> ExecError {
    ExecError::InvalidTask(msg.into())
}

/// A reference with a '/' is a registry's (the manager's rule too: the artifact store's
/// names have none); any other was pinned to a digest by the manager.
fn artifact_ref(reference: &str) -> Result<ArtifactRef, ExecError> {
    if reference.contains('/') {
        registry::reference::check(reference).map_err(|e| {
            invalid(format!(
                "artifact '{reference}': {e} (expected HOST[:PORT]/REPO[:TAG|@sha256:HEX])"
            ))
        })?;
        return Ok(ArtifactRef::Registry(reference.to_string()));
    }
    digest_of_reference(reference).map(ArtifactRef::Pinned)
}

/// argv[0] is the artifact's name (`hello` of `hello:1@sha256:…` or of
/// `localhost:5000/hello:1`), then the task's args.
fn argv(wasm: &WasmRuntime) -> Vec<String> {
    let name = wasm.artifact.split('@').next().unwrap_or_default();
    let name = if name.starts_with("sha256:") {
        name
    } else {
        registry::reference::short_name(name)
    };
    std::iter::once(name.to_string())
        .chain(wasm.args.iter().cloned())
        .collect()
}

fn parse_env(entry: &str) -> Result<(String, String), ExecError> {
    match entry.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(invalid(format!(
            "environment entry {entry:?} is not KEY=VALUE"
        ))),
    }
}

fn workdir(dir: &str) -> Result<Option<String>, ExecError> {
    if dir.is_empty() {
        return Ok(None);
    }
    if !dir.starts_with('/') {
        return Err(invalid(format!(
            "working directory {dir:?} must be an absolute guest path"
        )));
    }
    Ok(Some(dir.to_string()))
}

fn mount(m: &swarm_proto::Mount) -> Result<MountSpec, ExecError> {
    if !m.source.starts_with('/') {
        return Err(invalid(format!(
            "mount source {:?} must be an absolute host path",
            m.source
        )));
    }
    if !m.target.starts_with('/') {
        return Err(invalid(format!(
            "mount target {:?} must be an absolute guest path",
            m.target
        )));
    }
    Ok(MountSpec {
        source: PathBuf::from(&m.source),
        target: m.target.clone(),
        readonly: m.readonly,
    })
}

fn memory_bytes(limit: i64, limits: &WasiLimits) -> Result<u64, ExecError> {
    match u64::try_from(limit) {
        Err(_) => Err(invalid(format!("memory limit {limit} bytes is negative"))),
        Ok(0) => Ok(limits.default_memory_bytes.min(limits.max_memory_bytes)),
        Ok(n) if n > limits.max_memory_bytes => Err(invalid(format!(
            "memory limit of {} is above this node's maximum of {} per WASM task",
            format_bytes(n),
            format_bytes(limits.max_memory_bytes)
        ))),
        Ok(n) => Ok(n),
    }
}

fn cpu_limit(wasm: &WasmRuntime) -> Result<Option<u64>, ExecError> {
    let mut limit = None;
    for u in &wasm.ulimits {
        if u.name != "cpu" {
            return Err(invalid(format!(
                "ulimit {:?} is not supported for WASM tasks (supported: cpu=SECONDS)",
                u.name
            )));
        }
        if limit.is_some() {
            return Err(invalid("ulimit \"cpu\" is given twice"));
        }
        limit = Some(match u.soft {
            -1 => None,
            n if n > 0 => Some(n as u64),
            n => {
                return Err(invalid(format!(
                    "ulimit cpu={n}: the limit is seconds > 0 or -1 (unlimited)"
                )));
            }
        });
    }
    Ok(limit.flatten())
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
