//! Blobs a manager missed. Artifact bytes travel through raft one chunk per entry, but a
//! manager that received the store as a snapshot (it joined, or fell far behind) never saw
//! the chunks compacted into it: its store names artifacts its blob store lacks, and it
//! could not serve them once it leads. This task fetches each such blob from another
//! manager's own copy (`ArtifactFetch` with [`READ_LOCAL`], no session: managers may),
//! stores the chunks and seals them — sealing checks the digest, so a bad copy is never
//! served. It looks again whenever the store is restored from a snapshot, and retries
//! every [`RETRY`] while something is missing.

use std::sync::Arc;
use std::time::Duration;

use swarm_agent::certs::ClientConfig;
use swarm_proto::artifact_fetch_client::ArtifactFetchClient;
use swarm_proto::{BlobChunk, FetchArtifactRequest};
use tokio_util::sync::CancellationToken;

use super::blobs::BlobStore;
use crate::proxy::READ_LOCAL;
use crate::store::{BlobOp, Store, Tables, WatchFilter};

/// Wait between rounds while some blob is still missing (no peer had it, or none answered).
const RETRY: Duration = Duration::from_secs(5);
/// Dial timeout for a peer.
const DIAL: Duration = Duration::from_secs(2);

/// What this manager needs: the artifacts the store names whose bytes are not sealed here.
fn missing(view: &Tables, blobs: &BlobStore) -> Vec<(String, u64)> {
    view.artifacts()
        .filter(|a| matches!(blobs.sealed_size(&a.digest), Ok(None)))
        .map(|a| (a.digest.clone(), a.size))
        .collect()
}

/// The other managers' addresses, as the store names them.
fn peers(view: &Tables, own: &str) -> Vec<String> {
    view.nodes()
        .filter_map(|n| n.manager_status.as_ref().map(|s| s.addr.clone()))
        .filter(|a| !a.is_empty() && a != own)
        .collect()
}

/// Runs until `token` is cancelled. `own` is this manager's address (never asked).
pub async fn run(
    store: Store,
    blobs: Arc<BlobStore>,
    tls: Arc<ClientConfig>,
    own: String,
    token: CancellationToken,
) {
    loop {
        let (view, mut events) = store.watch(WatchFilter::All);
        let needed = missing(&view, &blobs);
        let peers = peers(&view, &own);
        drop(view);
        let mut complete = true;
        for (digest, size) in needed {
            let fetched = fetch_from_any(&peers, &tls, &blobs, &digest, size).await;
            complete &= fetched;
        }
        // Wait for a restore (the watch closes), or retry while incomplete.
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(RETRY), if !complete => break,
                batch = events.recv() => if batch.is_none() { break },
            }
        }
    }
}

/// Fetches `digest` from the first peer that has it; whether it is sealed here now.
async fn fetch_from_any(
    peers: &[String],
    tls: &Arc<ClientConfig>,
    blobs: &Arc<BlobStore>,
    digest: &str,
    size: u64,
) -> bool {
    for peer in peers {
        match fetch(peer, tls, blobs, digest, size).await {
            Ok(()) => {
                tracing::info!(%digest, size, %peer, "artifact bytes this manager missed fetched from a peer");
                return true;
            }
            Err(e) => {
                tracing::debug!(%digest, %peer, error = %e, "peer could not supply artifact bytes")
            }
        }
    }
    tracing::warn!(%digest, peers = ?peers, retry_in = ?RETRY, "no other manager supplied artifact bytes this manager lacks");
    false
}

async fn fetch(
    peer: &str,
    tls: &Arc<ClientConfig>,
    blobs: &Arc<BlobStore>,
    digest: &str,
    size: u64,
) -> Result<(), String> {
    let channel = swarm_agent::certs::connect(peer, tls.clone(), DIAL)
        .await
        .map_err(|e| e.to_string())?;
    let mut request = tonic::Request::new(FetchArtifactRequest {
        session_id: String::new(),
        digest: digest.to_string(),
        offset: 0,
    });
    request
        .metadata_mut()
        .insert(READ_LOCAL, tonic::metadata::MetadataValue::from_static("1"));
    let mut stream = ArtifactFetchClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .fetch(request)
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|s| s.message().to_string())?
    {
        let chunk = BlobChunk {
            digest: digest.to_string(),
            offset: chunk.offset,
            data: chunk.data,
            total_size: size,
        };
        let blobs = blobs.clone();
        tokio::task::spawn_blocking(move || blobs.write_ops(&[BlobOp::Chunk(&chunk)]))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    let (blobs, d) = (blobs.clone(), digest.to_string());
    tokio::task::spawn_blocking(move || {
        blobs.write_ops(&[BlobOp::Seal { digest: &d, size }])?;
        blobs.sealed_size(&d)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?
    .map(|_| ())
    .ok_or_else(|| format!("the bytes from {peer} do not match digest {digest}"))
}
