//! [`LeaderProxy`]: a tower layer around a gRPC service that sends the calls [`route`]
//! gives to the leader over mTLS, at the HTTP level, so one piece serves every method and
//! streams pass through unchanged (SwarmKit's raft proxy).
//!
//! The leader must know who called: a request forwarded from the TCP listener carries the
//! caller's certificate (or [`ANONYMOUS`]) in [`FORWARDED_CERT`], which the leader honours
//! because a manager sent it (`ca::caller`); one from the control socket carries none, so the
//! leader sees this manager, as powerful as the local root user it serves. A forwarded
//! request is never forwarded again ([`FORWARDED_HOP`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use swarm_agent::certs::ClientConfig;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;
use tonic::transport::Channel;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Service, ServiceExt};

use super::route::{Route, route};
use crate::ca::{ANONYMOUS, FORWARDED_CERT};
use crate::raft::{PeerAddrs, RaftHandle};

/// Set on a request a manager forwards.
pub const FORWARDED_HOP: &str = "swarm-forwarded";
/// Set by a client (`swarmctl --local-read`) that wants reads answered from this manager's
/// own copy of the store.
pub const READ_LOCAL: &str = "swarm-read-local";

const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Finds the leader and keeps a connection to it. Cheap to clone.
#[derive(Clone)]
pub struct Forwarder {
    inner: Arc<Inner>,
}

struct Inner {
    raft: RaftHandle,
    addrs: PeerAddrs,
    tls: Arc<ClientConfig>,
    channels: Mutex<HashMap<String, Channel>>,
}

impl Forwarder {
    pub fn new(raft: RaftHandle, addrs: PeerAddrs, tls: Arc<ClientConfig>) -> Self {
        Self {
            inner: Arc::new(Inner {
                raft,
                addrs,
                tls,
                channels: Mutex::default(),
            }),
        }
    }

    /// The raft member whose leader this forwards to.
    pub fn raft(&self) -> &RaftHandle {
        &self.inner.raft
    }

    /// Wraps a service of the TCP listener (callers identified by their certificate).
    pub fn remote<S>(&self, service: S) -> LeaderProxy<S> {
        LeaderProxy {
            service,
            forwarder: self.clone(),
            remote: true,
        }
    }

    /// Wraps a service of the control socket (the caller is this host's root user).
    pub fn local<S>(&self, service: S) -> LeaderProxy<S> {
        LeaderProxy {
            service,
            forwarder: self.clone(),
            remote: false,
        }
    }

    /// A connection to the leader, or why there is none.
    async fn leader(&self) -> Result<(String, Channel), Status> {
        let status = self.inner.raft.status().borrow().clone();
        if status.leader_id == 0 {
            return Err(Status::unavailable(format!(
                "no quorum: this manager sees no raft leader, so writes are refused until a \
                 majority of the {} managers is reachable (reads answer with the last state)",
                status.voters.len().max(1)
            )));
        }
        let addr = self.inner.addrs.get(status.leader_id).ok_or_else(|| {
            Status::unavailable(format!(
                "the leader (raft member {:x}) has no known address yet; retry",
                status.leader_id
            ))
        })?;
        if let Some(c) = self.inner.channels.lock().expect("channels").get(&addr) {
            return Ok((addr, c.clone()));
        }
        let channel = swarm_agent::certs::connect(&addr, self.inner.tls.clone(), DIAL_TIMEOUT)
            .await
            .map_err(|e| {
                Status::unavailable(format!("the leader at {addr} is unreachable: {e}"))
            })?;
        self.inner
            .channels
            .lock()
            .expect("channels")
            .insert(addr.clone(), channel.clone());
        Ok((addr, channel))
    }

    /// Sends `req` to the leader `channel` at `addr`, naming the caller.
    async fn send(
        &self,
        mut req: http::Request<Body>,
        remote: bool,
        addr: String,
        channel: Channel,
    ) -> http::Response<Body> {
        let identity = remote.then(|| caller_header(&req));
        let headers = req.headers_mut();
        headers.remove(FORWARDED_CERT);
        if let Some(value) = identity {
            headers.insert(FORWARDED_CERT, value);
        }
        headers.insert(FORWARDED_HOP, http::HeaderValue::from_static("1"));
        match channel.oneshot(req).await {
            Ok(response) => response,
            Err(e) => {
                self.inner.channels.lock().expect("channels").remove(&addr);
                Status::unavailable(format!("forwarding to the leader at {addr} failed: {e}"))
                    .into_http()
            }
        }
    }
}

/// The [`FORWARDED_CERT`] value naming the caller of `req`.
fn caller_header(req: &http::Request<Body>) -> http::HeaderValue {
    let cert = req
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(TlsConnectInfo::peer_certs)
        .and_then(|certs| certs.first().cloned());
    match cert {
        Some(der) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
            http::HeaderValue::from_str(&b64).expect("base64 is a valid header value")
        }
        None => http::HeaderValue::from_static(ANONYMOUS),
    }
}

/// A gRPC service answered here when this manager leads or the call is a read, and by the
/// leader otherwise.
#[derive(Clone)]
pub struct LeaderProxy<S> {
    service: S,
    forwarder: Forwarder,
    remote: bool,
}

impl<S: NamedService> NamedService for LeaderProxy<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<Body>> for LeaderProxy<S>
where
    S: Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each call gets a clone of the service (tonic's services are always ready).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let (is_leader, leader_id) = self.forwarder.inner.raft.leadership();
        let route = route(req.uri().path());
        let local = match route {
            _ if is_leader => true,
            Route::Local => true,
            // No leader, a leader that took us for one, or a client asking for this copy.
            Route::Read => {
                leader_id == 0
                    || req.headers().contains_key(FORWARDED_HOP)
                    || req.headers().contains_key(READ_LOCAL)
            }
            Route::Leader => false,
        };
        let service = self.service.clone();
        let answer_here = |req| async move { Ok(service.oneshot(req).await?.map(Body::new)) };
        if local {
            return Box::pin(answer_here(req));
        }
        if req.headers().contains_key(FORWARDED_HOP) {
            let status = Status::unavailable(
                "this manager is not the leader (the request was already forwarded once); retry",
            );
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let forwarder = self.forwarder.clone();
        let remote = self.remote;
        Box::pin(async move {
            match forwarder.leader().await {
                Ok((addr, channel)) => Ok(forwarder.send(req, remote, addr, channel).await),
                // A read still answers while the leader cannot be reached (it may be gone).
                Err(_) if route == Route::Read => answer_here(req).await,
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}
