//! The `ArtifactFetch` gRPC service on the TCP listener, beside the Dispatcher: agents fetch
//! artifact bytes by digest, on behalf of their live dispatcher session, in 1 MiB chunks
//! from any offset (so a fetch cut by a reconnect resumes where it stopped). Managers fetch
//! without a session: that is how one catches up on bytes it missed ([`super::catchup`]).

use std::sync::Arc;

use futures::Stream;
use swarm_proto::artifact_fetch_server::{ArtifactFetch, ArtifactFetchServer};
use swarm_proto::{ArtifactChunk, FetchArtifactRequest, NodeRole};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::blobs::BlobStore;
use super::push::CHUNK_SIZE;
use super::validate;
use crate::dispatcher::Dispatcher;

type ChunkStream = std::pin::Pin<Box<dyn Stream<Item = Result<ArtifactChunk, Status>> + Send>>;

/// Serves this manager's sealed blobs to agents with a live session.
#[derive(Clone)]
pub struct FetchApi {
    dispatcher: Dispatcher,
    blobs: Arc<BlobStore>,
}

impl FetchApi {
    /// Sessions are checked against `dispatcher`'s registry.
    pub fn new(dispatcher: Dispatcher, blobs: Arc<BlobStore>) -> Self {
        Self { dispatcher, blobs }
    }

    /// The tonic service.
    pub fn into_service(self) -> ArtifactFetchServer<Self> {
        ArtifactFetchServer::new(self)
    }
}

#[tonic::async_trait]
impl ArtifactFetch for FetchApi {
    type FetchStream = ChunkStream;

    async fn fetch(
        &self,
        request: Request<FetchArtifactRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let manager = crate::ca::authenticated(&request)?.role == NodeRole::Manager;
        let req = request.into_inner();
        // NOT_FOUND is kept for "no such artifact": an unknown session is UNAUTHENTICATED,
        // so the agent retries on its next session instead of failing the task.
        if !manager {
            self.dispatcher
                .session(&req.session_id)
                .map_err(|s| match s.code() {
                    tonic::Code::NotFound => Status::unauthenticated(s.message()),
                    _ => s,
                })?;
        }
        validate::digest(&req.digest).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let size = self
            .blobs
            .sealed_size(&req.digest)
            .map_err(|e| Status::internal(e.to_string()))?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "artifact {} is not in this manager's artifact store; push it with \
                     `swarmctl artifact push FILE NAME[:TAG]`",
                    req.digest
                ))
            })?;
        if req.offset > size {
            return Err(Status::out_of_range(format!(
                "offset {} is past the end of artifact {} ({size} bytes)",
                req.offset, req.digest
            )));
        }
        // redb reads are blocking I/O: one blocking task per fetch feeds the stream, and
        // stops when the agent goes away (the channel closes).
        let (tx, rx) = mpsc::channel(2);
        let blobs = self.blobs.clone();
        tokio::task::spawn_blocking(move || {
            let mut offset = req.offset;
            while offset < size {
                let chunk = match blobs.read(&req.digest, offset, CHUNK_SIZE) {
                    Ok(Some(data)) if !data.is_empty() => ArtifactChunk {
                        offset,
                        total_size: size,
                        data,
                    },
                    Ok(_) => {
                        let _ = tx.blocking_send(Err(Status::not_found(format!(
                            "artifact {} was removed during the fetch",
                            req.digest
                        ))));
                        return;
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(Status::internal(e.to_string())));
                        return;
                    }
                };
                offset += chunk.data.len() as u64;
                if tx.blocking_send(Ok(chunk)).is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
