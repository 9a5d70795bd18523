//! [`Revocable`]: a gRPC service that is dropped when the manager shuts down, even while
//! connections are still open. Tonic serves each connection with its own clone of the routes,
//! so one idle peer stream would otherwise keep every service — and through them the store
//! and its databases — alive after shutdown, and a demoted manager promoted again could not
//! reopen its files. After revocation calls answer `Unavailable`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;
use tower::{Service, ServiceExt};

/// A service shared by all connections until its token is cancelled.
pub struct Revocable<S> {
    slot: Arc<RwLock<Option<S>>>,
}

impl<S> Clone for Revocable<S> {
    fn clone(&self) -> Self {
        Self {
            slot: self.slot.clone(),
        }
    }
}

impl<S: Send + Sync + 'static> Revocable<S> {
    /// Wraps `service`, dropping it once `token` is cancelled.
    pub fn new(service: S, token: CancellationToken) -> Self {
        let slot = Arc::new(RwLock::new(Some(service)));
        let revoke = slot.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            let dropped = revoke.write().map(|mut s| s.take());
            drop(dropped);
        });
        Self { slot }
    }
}

impl<S: NamedService> NamedService for Revocable<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Wraps the services [`crate::proxy::LeaderProxy`] already made uniform (tonic bodies).
impl<S> Service<http::Request<Body>> for Revocable<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        match self.slot.read().ok().and_then(|s| s.clone()) {
            Some(s) => Box::pin(s.oneshot(req)),
            None => {
                Box::pin(async { Ok(Status::unavailable("this manager has stopped").into_http()) })
            }
        }
    }
}
