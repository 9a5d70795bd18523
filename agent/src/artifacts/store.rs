//! [`ArtifactStore`]: the agent's [`ArtifactSource`], backed by `<dir>/sha256/<hex>` files
//! and the managers' artifact store.
//!
//! ```text
//! path(digest) ── file present? ──yes──▶ path
//!      │ no
//!      ▼
//!  one fetch per digest (concurrent callers share it)
//!      ├─ wait for a session (SessionLinks), Fetch(session, digest, offset) on its channel
//!      ├─ append chunks to <dir>/tmp/<hex>.partial; a cut stream resumes at the file's length
//!      │  on the next session
//!      └─ sha256 of the whole file == digest ─▶ fsync, rename to <dir>/sha256/<hex>
//!                                    mismatch ─▶ delete, error
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::ArtifactSource;
use super::fetch::Fetcher;
use crate::exec::ExecError;
use crate::session::SessionLinks;

/// How long a fetch waits for a dispatcher session before giving up with
/// [`ExecError::Temporary`] (the task manager retries it with backoff).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(30);

/// The outcome of one fetch, shared by everyone who asked for the digest meanwhile.
type SharedFetch = Shared<BoxFuture<'static, Result<PathBuf, Arc<ExecError>>>>;

/// Artifacts on this agent, fetched over its dispatcher session on first use.
#[derive(Clone)]
pub struct ArtifactStore {
    fetcher: Arc<Fetcher>,
    inflight: Arc<Mutex<HashMap<String, SharedFetch>>>,
}

impl std::fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactStore")
            .field("dir", &self.fetcher.dir)
            .finish_non_exhaustive()
    }
}

impl ArtifactStore {
    /// A store under `dir` (the agent's `<state-dir>/artifacts`) that fetches through the
    /// agent's current session.
    pub fn new(dir: PathBuf, links: SessionLinks) -> Self {
        Self::with_session_timeout(dir, links, SESSION_TIMEOUT)
    }

    /// As [`ArtifactStore::new`], waiting at most `session_timeout` for a session.
    pub fn with_session_timeout(
        dir: PathBuf,
        links: SessionLinks,
        session_timeout: Duration,
    ) -> Self {
        Self {
            fetcher: Arc::new(Fetcher {
                dir,
                links,
                session_timeout,
            }),
            inflight: Arc::default(),
        }
    }

    /// Where the verified artifact `digest` lives (whether or not it is there yet).
    pub fn path_of(&self, digest: &str) -> PathBuf {
        self.fetcher.final_path(digest)
    }
}

#[async_trait::async_trait]
impl ArtifactSource for ArtifactStore {
    async fn path(&self, digest: &str) -> Result<PathBuf, ExecError> {
        super::digest_of_reference(digest)?;
        let path = self.fetcher.final_path(digest);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(path);
        }
        let fetch = {
            let mut inflight = self.inflight.lock().expect("artifact fetches lock");
            inflight
                .entry(digest.to_string())
                .or_insert_with(|| {
                    let fetcher = self.fetcher.clone();
                    let inflight = self.inflight.clone();
                    let digest = digest.to_string();
                    async move {
                        let r = fetcher.fetch(&digest).await.map_err(Arc::new);
                        inflight
                            .lock()
                            .expect("artifact fetches lock")
                            .remove(&digest);
                        r
                    }
                    .boxed()
                    .shared()
                })
                .clone()
        };
        fetch.await.map_err(|e| copy_error(&e))
    }
}

/// An owned copy of a shared fetch error in the same category for the task's state
/// machine: temporary, not found, invalid, or else fatal with the full message.
fn copy_error(e: &ExecError) -> ExecError {
    let message = crate::errors::chain(e);
    match e {
        ExecError::Temporary(m) => ExecError::Temporary(m.clone()),
        ExecError::NotFound(m) => ExecError::NotFound(m.clone()),
        ExecError::InvalidTask(m) => ExecError::InvalidTask(m.clone()),
        _ => ExecError::Runtime(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::digest_of;

    #[tokio::test(start_paused = true)]
    async fn without_a_session_a_fetch_is_temporary_and_a_held_file_needs_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::with_session_timeout(
            dir.path().to_path_buf(),
            SessionLinks::new(),
            Duration::from_secs(1),
        );
        let digest = digest_of(b"\0asm\x01\0\0\0");
        let e = store.path(&digest).await.unwrap_err();
        assert!(e.is_temporary(), "{e}");
        assert!(e.to_string().contains("no dispatcher session"), "{e}");

        let held = store.path_of(&digest);
        std::fs::create_dir_all(held.parent().unwrap()).unwrap();
        std::fs::write(&held, b"\0asm\x01\0\0\0").unwrap();
        assert_eq!(store.path(&digest).await.unwrap(), held);

        let e = store.path("sha256:nothex").await.unwrap_err();
        assert!(matches!(e, ExecError::InvalidTask(_)), "{e}");
    }
}
