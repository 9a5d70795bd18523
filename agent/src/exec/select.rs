//! Choosing backends by name: `--backend wasi|oci|null` (or a comma-separated list such as
//! `wasi,oci`) and `--oci-runtime runc|crun|youki|PATH` of `swarm-agent` and of
//! `swarm-manager`'s in-process agent, in one place.
//!
//! Several backends are combined with [`ByRuntime`]. An OCI backend whose runtime is missing
//! is left out with a warning (the agent keeps running its other backends); if it was the
//! only one asked for, starting fails with the reason.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use super::by_runtime::ByRuntime;
use super::oci::{OciBackend, OciConfig, ShimCommand, resolve_runtime};
use super::wasi::{WasiBackend, WasiConfig};
use super::{Backend, NullBackend};
use crate::artifacts::ArtifactStore;
use crate::session::SessionLinks;

/// A backend this build can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// WebAssembly components and core modules on wasmtime (the default).
    #[default]
    Wasi,
    /// Containers from OCI images, run by an OCI runtime (runc).
    Oci,
    /// Tasks do nothing and run until shut down (tests, control-plane benchmarks).
    Null,
}

impl BackendKind {
    /// The names `--backend` accepts, for help and error texts.
    pub const NAMES: &'static str = "wasi, oci, null";
}

impl FromStr for BackendKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wasi" => Ok(Self::Wasi),
            "oci" => Ok(Self::Oci),
            "null" => Ok(Self::Null),
            other => Err(format!(
                "unknown backend '{other}': this build supports: {}",
                Self::NAMES
            )),
        }
    }
}

/// What `--backend` names: one or more backends, without repeats; `null` stands alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backends(pub Vec<BackendKind>);

impl Default for Backends {
    fn default() -> Self {
        Backends(vec![BackendKind::Wasi])
    }
}

impl FromStr for Backends {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut kinds = Vec::new();
        for name in s.split(',').map(str::trim) {
            if name.is_empty() {
                return Err(format!("empty backend name in '{s}'"));
            }
            let kind: BackendKind = name.parse()?;
            if kinds.contains(&kind) {
                return Err(format!("backend '{name}' is named twice"));
            }
            kinds.push(kind);
        }
        if kinds.len() > 1 && kinds.contains(&BackendKind::Null) {
            return Err("backend 'null' cannot be combined with others".into());
        }
        Ok(Backends(kinds))
    }
}

/// Options of the OCI backend.
#[derive(Debug, Clone)]
pub struct OciOptions {
    /// `--oci-runtime`: `runc`, `crun`, `youki` or a path.
    pub runtime: String,
}

impl Default for OciOptions {
    fn default() -> Self {
        Self {
            runtime: "runc".into(),
        }
    }
}

/// Builds the backend of an agent whose state lives in `state_dir`. The WASI backend
/// fetches artifacts over the agent's dispatcher session, so pass the same `links` as
/// [`crate::AgentConfig::links`].
pub fn build(
    kinds: &Backends,
    oci: &OciOptions,
    state_dir: &Path,
    links: SessionLinks,
) -> anyhow::Result<Arc<dyn Backend>> {
    let mut parts: Vec<Arc<dyn Backend>> = Vec::new();
    for kind in &kinds.0 {
        match kind {
            BackendKind::Wasi => {
                let artifacts = Arc::new(ArtifactStore::new(
                    state_dir.join("artifacts"),
                    links.clone(),
                ));
                parts.push(Arc::new(WasiBackend::new(WasiConfig::new(
                    state_dir.to_path_buf(),
                    artifacts,
                ))?));
            }
            BackendKind::Oci => match resolve_runtime(&oci.runtime) {
                Ok(runtime) => {
                    let config = OciConfig::new(
                        state_dir.to_path_buf(),
                        runtime,
                        ShimCommand::current_exe()?,
                    );
                    parts.push(Arc::new(OciBackend::new(config)?));
                }
                Err(e) if kinds.0.len() > 1 => {
                    tracing::warn!("the OCI backend is disabled: {e}");
                }
                Err(e) => anyhow::bail!("the OCI backend cannot start: {e}"),
            },
            BackendKind::Null => {
                tracing::warn!("backend 'null': tasks do nothing and run until shut down");
                parts.push(Arc::new(NullBackend::new()));
            }
        }
    }
    Ok(match parts.len() {
        1 => parts.remove(0),
        0 => anyhow::bail!("no backend to run tasks with"),
        _ => Arc::new(ByRuntime::new(parts)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_names_are_explained() {
        assert_eq!("wasi".parse(), Ok(BackendKind::Wasi));
        assert_eq!("oci".parse(), Ok(BackendKind::Oci));
        assert_eq!("null".parse(), Ok(BackendKind::Null));
        assert_eq!(BackendKind::default(), BackendKind::Wasi);
        assert_eq!(
            "crun".parse::<BackendKind>(),
            Err("unknown backend 'crun': this build supports: wasi, oci, null".to_string())
        );
    }

    #[test]
    fn lists_parse_without_repeats_and_null_alone() {
        assert_eq!(
            "wasi,oci".parse(),
            Ok(Backends(vec![BackendKind::Wasi, BackendKind::Oci]))
        );
        assert_eq!("oci".parse(), Ok(Backends(vec![BackendKind::Oci])));
        assert_eq!(
            "wasi,wasi".parse::<Backends>(),
            Err("backend 'wasi' is named twice".into())
        );
        assert_eq!(
            "wasi,".parse::<Backends>(),
            Err("empty backend name in 'wasi,'".into())
        );
        assert!(
            "null,oci"
                .parse::<Backends>()
                .unwrap_err()
                .contains("cannot be combined")
        );
        assert!(
            "wasi,docker"
                .parse::<Backends>()
                .unwrap_err()
                .contains("unknown backend 'docker'")
        );
    }

    #[test]
    fn a_missing_runtime_disables_oci_only_when_other_backends_remain() {
        let dir = tempfile::tempdir().unwrap();
        let missing = OciOptions {
            runtime: "/nonexistent/runc".into(),
        };
        let links = SessionLinks::new();
        let err = build(&"oci".parse().unwrap(), &missing, dir.path(), links.clone())
            .err()
            .unwrap();
        assert!(err.to_string().contains("not an executable file"), "{err}");
        let b = build(&"wasi,oci".parse().unwrap(), &missing, dir.path(), links).unwrap();
        assert_eq!(b.describe().runtimes, vec!["wasm".to_string()]);
    }
}
