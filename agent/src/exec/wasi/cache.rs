//! [`ArtifactCache`]: compiled artifacts by digest, pre-linked and ready to instantiate.
//!
//! ```text
//!  get(digest) ─▶ in memory? ─yes─▶ Arc<Compiled> (shared by every task of that artifact)
//!                     │ no (first caller compiles/loads; concurrent callers wait for it)
//!                     ▼
//!   <state-dir>/cache/<engine-hash>/<hex>.cwasm + <hex>.cwasm.sha256
//!      sidecar matches the file's sha256 and wasmtime accepts it ─▶ deserialize (cache load)
//!      otherwise: delete both, compile the artifact, write .cwasm then .sha256
//!      (each to a temp file + rename), count a compile
//! ```
//!
//! The engine hash names the directory, so another wasmtime version or engine setting uses
//! other files; wasmtime also checks compatibility itself when deserializing.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use wasmtime::component::Component;
use wasmtime::{Engine, InstancePre, Module, Precompiled};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;

use super::engine::WasiEngine;
use super::host::{Host, P2Wasi};
use crate::exec::ExecError;
use crate::metrics;

/// A compiled, linked artifact.
pub(crate) enum Compiled {
    /// A `wasi:cli/command` component.
    Component(CommandPre<Host<P2Wasi>>),
    /// A core wasip1 module with `_start`.
    Module(InstancePre<Host<WasiP1Ctx>>),
}

/// Compile and disk-load counts of one cache (the process-wide counters are in metrics.rs).
#[derive(Debug, Default)]
pub(crate) struct CacheCounts {
    pub(crate) compiles: AtomicU64,
    pub(crate) loads: AtomicU64,
}

type Slot = Arc<OnceCell<Arc<Compiled>>>;

/// Compiled artifacts in memory and on disk.
pub(crate) struct ArtifactCache {
    engine: Arc<WasiEngine>,
    dir: PathBuf,
    entries: Mutex<HashMap<String, Slot>>,
    pub(crate) counts: CacheCounts,
}

impl ArtifactCache {
    /// A cache under `<state_dir>/cache/<engine-hash>/`.
    pub(crate) fn new(engine: Arc<WasiEngine>, state_dir: &Path) -> Self {
        let mut hasher = DefaultHasher::new();
        engine
            .engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        let dir = state_dir
            .join("cache")
            .join(format!("{:016x}", hasher.finish()));
        Self {
            engine,
            dir,
            entries: Mutex::default(),
            counts: CacheCounts::default(),
        }
    }

    /// The compiled artifact `digest`, whose bytes are in the file `source`.
    ///
    /// # Errors
    /// [`ExecError::InvalidTask`] when the artifact is not valid WASM or not a runnable
    /// command; I/O errors reading it.
    pub(crate) async fn get(
        self: &Arc<Self>,
        digest: &str,
        source: PathBuf,
    ) -> Result<Arc<Compiled>, ExecError> {
        let slot = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(entries.entry(digest.to_string()).or_default())
        };
        let this = Arc::clone(self);
        let digest = digest.to_string();
        slot.get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || this.load_or_compile(&digest, &source))
                .await
                .map_err(|e| ExecError::Runtime(format!("compile task failed: {e}")))?
                .map(Arc::new)
        })
        .await
        .cloned()
    }

    /// The compiled artifact if it is already in memory.
    pub(crate) fn cached(&self, digest: &str) -> Option<Arc<Compiled>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(digest).and_then(|s| s.get().cloned())
    }

    fn load_or_compile(&self, digest: &str, source: &Path) -> Result<Compiled, ExecError> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let cwasm = self.dir.join(format!("{hex}.cwasm"));
        let sidecar = self.dir.join(format!("{hex}.cwasm.sha256"));
        match self.load(&cwasm, &sidecar) {
            Ok(Some(compiled)) => {
                self.counts.loads.fetch_add(1, Ordering::Relaxed);
                metrics::WASM_CACHE_LOADS.inc();
                return Ok(compiled);
            }
            Ok(None) => {}
            Err(reason) => {
                tracing::warn!(file = %cwasm.display(), %reason, "discarding cached compiled artifact");
                let _ = std::fs::remove_file(&sidecar);
                let _ = std::fs::remove_file(&cwasm);
            }
        }
        let bytes = std::fs::read(source).map_err(|e| ExecError::Io {
            context: format!("read artifact {}", source.display()),
            source: e,
        })?;
        let (compiled, serialized) = self.compile(digest, &bytes)?;
        self.counts.compiles.fetch_add(1, Ordering::Relaxed);
        metrics::WASM_COMPILES.inc();
        if let Err(e) = self.store(&cwasm, &sidecar, &serialized) {
            tracing::warn!(file = %cwasm.display(), error = %e, "could not cache compiled artifact");
        }
        Ok(compiled)
    }

    /// `Ok(None)` when nothing is cached; `Err(reason)` when what is cached must go.
    fn load(&self, cwasm: &Path, sidecar: &Path) -> Result<Option<Compiled>, String> {
        let bytes = match std::fs::read(cwasm) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("unreadable: {e}")),
        };
        let expected = std::fs::read_to_string(sidecar)
            .map_err(|e| format!("checksum file unreadable: {e}"))?;
        if expected.trim() != hex::encode(Sha256::digest(&bytes)) {
            return Err("checksum mismatch (corrupted file)".into());
        }
        let kind = Engine::detect_precompiled(&bytes).ok_or("not a compiled artifact")?;
        deserialize_verified(&self.engine.engine, kind, &bytes)
            .and_then(|artifact| self.link(artifact))
            .map(Some)
            .map_err(|e| format!("rejected: {e:#}"))
    }

    fn compile(&self, digest: &str, bytes: &[u8]) -> Result<(Compiled, Vec<u8>), ExecError> {
        let engine = &self.engine.engine;
        let invalid = |e: wasmtime::Error| {
            ExecError::InvalidTask(format!("artifact {digest} is not valid WebAssembly: {e:#}"))
        };
        let artifact = if is_component(bytes) {
            Artifact::Component(Component::new(engine, bytes).map_err(invalid)?)
        } else {
            Artifact::Module(Module::new(engine, bytes).map_err(invalid)?)
        };
        let serialized = match &artifact {
            Artifact::Component(c) => c.serialize(),
            Artifact::Module(m) => m.serialize(),
        }
        .map_err(|e| ExecError::Runtime(format!("serialize compiled artifact: {e:#}")))?;
        let compiled = self.link(artifact).map_err(|e| {
            ExecError::InvalidTask(format!("artifact {digest} cannot run here: {e:#}"))
        })?;
        Ok((compiled, serialized))
    }

    /// Links once: a start is then only an instantiation.
    fn link(&self, artifact: Artifact) -> wasmtime::Result<Compiled> {
        Ok(match artifact {
            Artifact::Component(c) => {
                let pre = self.engine.components.instantiate_pre(&c)?;
                Compiled::Component(CommandPre::new(pre).map_err(|e| {
                    e.context("component does not export wasi:cli/run (not a command)")
                })?)
            }
            Artifact::Module(m) => {
                if m.get_export("_start").is_none() {
                    wasmtime::bail!("module does not export `_start` (not a WASI command)");
                }
                Compiled::Module(self.engine.modules.instantiate_pre(&m)?)
            }
        })
    }

    fn store(&self, cwasm: &Path, sidecar: &Path, bytes: &[u8]) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        write_atomic(cwasm, bytes)?;
        write_atomic(sidecar, hex::encode(Sha256::digest(bytes)).as_bytes())
    }
}

enum Artifact {
    Component(Component),
    Module(Module),
}

/// Binary components carry layer 1 in their header; text starts with `(component`.
fn is_component(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"\0asm") {
        return bytes.get(6..8) == Some(&[1, 0]);
    }
    String::from_utf8_lossy(&bytes[..bytes.len().min(4096)])
        .trim_start()
        .starts_with("(component")
}

/// Deserializes a compiled artifact that this agent wrote and has just verified.
#[allow(unsafe_code)]
fn deserialize_verified(
    engine: &Engine,
    kind: Precompiled,
    bytes: &[u8],
) -> wasmtime::Result<Artifact> {
    // SAFETY: wasmtime requires that the bytes were produced by `serialize` of a compatible
    // engine and not tampered with. They were: this agent wrote them with `serialize` into
    // its own state dir (engine-hash directory, temp file + rename), and the caller checked
    // these exact bytes against the sha256 sidecar written at the same time, so a corrupted
    // or truncated file never reaches here (and deserializing the in-memory bytes, rather
    // than the file, leaves no window to swap the file after the check). wasmtime itself
    // then rejects bytes from an incompatible engine or version.
    Ok(match kind {
        Precompiled::Component => {
            Artifact::Component(unsafe { Component::deserialize(engine, bytes)? })
        }
        Precompiled::Module => Artifact::Module(unsafe { Module::deserialize(engine, bytes)? }),
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
