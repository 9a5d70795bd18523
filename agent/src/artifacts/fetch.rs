//! [`Fetcher`]: one artifact download over the agent's dispatcher session, resumable, and
//! verified before it becomes visible. See [`super::ArtifactStore`] for the flow.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use swarm_proto::FetchArtifactRequest;
use swarm_proto::artifact_fetch_client::ArtifactFetchClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use crate::exec::ExecError;
use crate::session::SessionLinks;

/// Streams tried (each on the session current at the time) before the fetch gives up with
/// [`ExecError::Temporary`].
const ATTEMPTS: u32 = 5;

pub(super) struct Fetcher {
    pub dir: PathBuf,
    pub links: SessionLinks,
    pub session_timeout: Duration,
}

/// How one stream ended.
enum Cut {
    /// Fatal: the managers do not have the artifact, or refuse the request.
    Fatal(ExecError),
    /// Worth another stream on the (maybe new) session.
    Retry(String),
}

impl Fetcher {
    pub fn final_path(&self, digest: &str) -> PathBuf {
        self.dir.join("sha256").join(hex_of(digest))
    }

    fn partial_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("tmp")
            .join(format!("{}.partial", hex_of(digest)))
    }

    /// Downloads, verifies and installs `digest`; returns its final path.
    pub async fn fetch(&self, digest: &str) -> Result<PathBuf, ExecError> {
        let done = self.final_path(digest);
        if tokio::fs::try_exists(&done).await.unwrap_or(false) {
            return Ok(done);
        }
        let partial = self.partial_path(digest);
        for dir in [done.parent(), partial.parent()].into_iter().flatten() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(io(format!("create {}", dir.display())))?;
        }
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                // Give a failed session time to be replaced before the next stream.
                tokio::time::sleep(Duration::from_millis(200) * attempt).await;
            }
            match self.stream_into(digest, &partial).await {
                Ok(()) => return self.install(digest, &partial, &done).await,
                Err(Cut::Fatal(e)) => {
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(e);
                }
                Err(Cut::Retry(why)) => {
                    tracing::debug!(%digest, attempt, %why, "artifact fetch interrupted");
                    last = why;
                }
            }
        }
        Err(ExecError::Temporary(format!(
            "fetching artifact {digest}: {last} (after {ATTEMPTS} attempts; the download resumes \
             on the next try)"
        )))
    }

    /// One Fetch stream from the partial file's length to the end.
    async fn stream_into(&self, digest: &str, partial: &Path) -> Result<(), Cut> {
        let link = self.links.wait(self.session_timeout).await.ok_or_else(|| {
            Cut::Retry(format!(
                "no dispatcher session came up within {:?} to fetch it over",
                self.session_timeout
            ))
        })?;
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(partial)
            .await
            .map_err(|e| Cut::Fatal(io(format!("open {}", partial.display()))(e)))?;
        let mut offset = file
            .metadata()
            .await
            .map_err(|e| Cut::Fatal(io(format!("stat {}", partial.display()))(e)))?
            .len();
        let mut client =
            ArtifactFetchClient::new(link.channel).max_decoding_message_size(8 * 1024 * 1024);
        let request = FetchArtifactRequest {
            session_id: link.session_id,
            digest: digest.to_string(),
            offset,
        };
        let mut stream = client
            .fetch(request)
            .await
            .map_err(|s| classify(digest, s))?
            .into_inner();
        loop {
            let chunk = match stream.message().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(s) => return Err(classify(digest, s)),
            };
            if chunk.offset != offset {
                return Err(Cut::Retry(format!(
                    "the manager sent bytes at offset {} while {offset} was expected",
                    chunk.offset
                )));
            }
            if offset + chunk.data.len() as u64 > chunk.total_size {
                return Err(Cut::Fatal(ExecError::Runtime(format!(
                    "artifact {digest}: the manager sent more than its {} bytes",
                    chunk.total_size
                ))));
            }
            file.write_all(&chunk.data)
                .await
                .map_err(|e| Cut::Fatal(io(format!("write {}", partial.display()))(e)))?;
            offset += chunk.data.len() as u64;
            if offset == chunk.total_size {
                break;
            }
        }
        file.sync_all()
            .await
            .map_err(|e| Cut::Fatal(io(format!("fsync {}", partial.display()))(e)))?;
        Ok(())
    }

    /// Verifies the downloaded file and renames it into place; a mismatch deletes it.
    async fn install(
        &self,
        digest: &str,
        partial: &Path,
        done: &Path,
    ) -> Result<PathBuf, ExecError> {
        let actual = sha256_file(partial).await?;
        if actual != digest {
            let _ = tokio::fs::remove_file(partial).await;
            return Err(ExecError::Runtime(format!(
                "artifact {digest}: the downloaded bytes hash to {actual}; they were discarded"
            )));
        }
        tokio::fs::rename(partial, done).await.map_err(io(format!(
            "rename {} to {}",
            partial.display(),
            done.display()
        )))?;
        if let Some(dir) = done.parent()
            && let Ok(d) = tokio::fs::File::open(dir).await
        {
            let _ = d.sync_all().await;
        }
        Ok(done.to_path_buf())
    }
}

/// NOT_FOUND from the fetch service means no such artifact; a bad request is fatal; the
/// rest (no session on that manager, transport errors) is worth a retry.
fn classify(digest: &str, s: tonic::Status) -> Cut {
    match s.code() {
        Code::NotFound => Cut::Fatal(ExecError::NotFound(format!(
            "artifact {digest}: {}",
            s.message()
        ))),
        Code::InvalidArgument | Code::OutOfRange => Cut::Fatal(ExecError::InvalidTask(format!(
            "artifact {digest}: {}",
            s.message()
        ))),
        _ => Cut::Retry(format!("{:?}: {}", s.code(), s.message())),
    }
}

async fn sha256_file(path: &Path) -> Result<String, ExecError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(io(format!("open {}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(io(format!("read {}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> ExecError {
    move |source| ExecError::Io { context, source }
}
