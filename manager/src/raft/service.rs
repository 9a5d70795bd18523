//! [`RaftApi`]: the receiving end of [`GrpcTransport`](super::GrpcTransport). Each peer
//! streams its messages; they are reassembled and stepped into this member's raft in order.
//! Callers are checked by [`NodeAuth::raft_peers`](crate::ca::NodeAuth::raft_peers).

use swarm_proto::raft_server::{Raft, RaftServer};
use swarm_proto::{RaftMessageChunk, RaftMessageResponse};
use tonic::{Request, Response, Status, Streaming};

use super::RaftHandle;
use super::chunks::Assembler;

/// The Raft gRPC service of one manager.
#[derive(Clone)]
pub struct RaftApi {
    raft: RaftHandle,
}

impl RaftApi {
    pub fn new(raft: RaftHandle) -> Self {
        Self { raft }
    }

    pub fn into_service(self) -> RaftServer<Self> {
        RaftServer::new(self)
    }
}

#[tonic::async_trait]
impl Raft for RaftApi {
    async fn stream_raft_message(
        &self,
        request: Request<Streaming<RaftMessageChunk>>,
    ) -> Result<Response<RaftMessageResponse>, Status> {
        let me = self.raft.status().borrow().id;
        let mut stream = request.into_inner();
        let mut assembler = Assembler::default();
        while let Some(chunk) = stream.message().await? {
            let Some(message) = assembler
                .push(chunk)
                .map_err(|e| Status::invalid_argument(e.to_string()))?
            else {
                continue;
            };
            if message.to != me {
                return Err(Status::failed_precondition(format!(
                    "raft message for member {:x}, but this manager is member {me:x}",
                    message.to
                )));
            }
            self.raft
                .step(message)
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
        }
        Ok(Response::new(RaftMessageResponse {}))
    }
}
