//! Choosing a backend by name: `--backend wasi|null` of `swarm-agent` and of
//! `swarm-manager`'s in-process agent, in one place.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

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
    /// Tasks do nothing and run until shut down (tests, control-plane benchmarks).
    Null,
}

impl BackendKind {
    /// The names `--backend` accepts, for help and error texts.
    pub const NAMES: &'static str = "wasi, null";
}

impl FromStr for BackendKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wasi" => Ok(Self::Wasi),
            "null" => Ok(Self::Null),
            other => Err(format!(
                "unknown backend '{other}': this build supports: {}",
                Self::NAMES
            )),
        }
    }
}

/// Builds the backend of an agent whose state lives in `state_dir`. The WASI backend
/// fetches artifacts over the agent's dispatcher session, so pass the same `links` as
/// [`crate::AgentConfig::links`].
pub fn build(
    kind: BackendKind,
    state_dir: &Path,
    links: SessionLinks,
) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(match kind {
        BackendKind::Wasi => {
            let artifacts = Arc::new(ArtifactStore::new(state_dir.join("artifacts"), links));
            Arc::new(WasiBackend::new(WasiConfig::new(
                state_dir.to_path_buf(),
                artifacts,
            ))?)
        }
        BackendKind::Null => {
            tracing::warn!("backend 'null': tasks do nothing and run until shut down");
            Arc::new(NullBackend::new())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_names_are_explained() {
        assert_eq!("wasi".parse(), Ok(BackendKind::Wasi));
        assert_eq!("null".parse(), Ok(BackendKind::Null));
        assert_eq!(BackendKind::default(), BackendKind::Wasi);
        assert_eq!(
            "oci".parse::<BackendKind>(),
            Err("unknown backend 'oci': this build supports: wasi, null".to_string())
        );
    }
}
