//! The `Artifacts` gRPC service on the control socket (`swarmctl artifact …`): thin handlers
//! over [`Pusher`] and the pure decisions in [`decide`].

use std::sync::Arc;

use swarm_proto::artifacts_server::{Artifacts, ArtifactsServer};
use swarm_proto::ext::now_ns;
use swarm_proto::{
    Artifact, GetArtifactRequest, ListArtifactsRequest, ListArtifactsResponse, PushArtifactRequest,
    RemoveArtifactRequest, RemoveArtifactResponse,
};
use tonic::{Request, Response, Status, Streaming};

use super::blobs::BlobStore;
use super::decide::{self, Removal};
use super::push::Pusher;
use crate::api::ApiError;
use crate::store::{self, Store};

/// The Artifacts service over a store and this manager's blob store.
#[derive(Clone)]
pub struct ArtifactsApi {
    pusher: Pusher,
}

impl ArtifactsApi {
    /// Accepts artifacts up to `max_size` bytes.
    pub fn new(store: Store, blobs: Arc<BlobStore>, max_size: u64) -> Self {
        Self {
            pusher: Pusher {
                store,
                blobs,
                max_size,
            },
        }
    }

    /// The tonic service.
    pub fn into_service(self) -> ArtifactsServer<Self> {
        ArtifactsServer::new(self)
    }

    fn store(&self) -> &Store {
        &self.pusher.store
    }

    async fn remove_inner(&self, reference: &str) -> Result<RemoveArtifactResponse, ApiError> {
        let view = self.store().view();
        match decide::removal(&view, reference, now_ns())? {
            Removal::Untag(artifact) => {
                let index = self
                    .store()
                    .write_atomic(vec![store::update(artifact.clone())])
                    .await?;
                let mut artifact = artifact;
                artifact.meta.get_or_insert_default().version = index;
                Ok(RemoveArtifactResponse {
                    artifact: Some(artifact),
                    deleted: false,
                })
            }
            Removal::Delete(artifact) => {
                self.store()
                    .write_atomic(vec![store::remove((*artifact).clone())])
                    .await?;
                Ok(RemoveArtifactResponse {
                    artifact: None,
                    deleted: true,
                })
            }
        }
    }
}

#[tonic::async_trait]
impl Artifacts for ArtifactsApi {
    async fn push(
        &self,
        request: Request<Streaming<PushArtifactRequest>>,
    ) -> Result<Response<Artifact>, Status> {
        let artifact = self.pusher.push(request.into_inner()).await?;
        Ok(Response::new(artifact))
    }

    async fn list(
        &self,
        _: Request<ListArtifactsRequest>,
    ) -> Result<Response<ListArtifactsResponse>, Status> {
        let mut artifacts: Vec<Artifact> = self
            .store()
            .view()
            .artifacts()
            .map(|a| (**a).clone())
            .collect();
        artifacts.sort_by(|a, b| decide::display(a).cmp(decide::display(b)));
        Ok(Response::new(ListArtifactsResponse { artifacts }))
    }

    async fn get(
        &self,
        request: Request<GetArtifactRequest>,
    ) -> Result<Response<Artifact>, Status> {
        let found = self
            .store()
            .view()
            .find_artifact(&request.into_inner().reference);
        let artifact = found.map_err(ApiError::from)?;
        Ok(Response::new((*artifact).clone()))
    }

    async fn remove(
        &self,
        request: Request<RemoveArtifactRequest>,
    ) -> Result<Response<RemoveArtifactResponse>, Status> {
        let reply = self.remove_inner(&request.into_inner().reference).await?;
        Ok(Response::new(reply))
    }
}
