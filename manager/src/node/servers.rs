//! The manager's listeners: TCP for other nodes, the control socket for swarmctl (Control
//! API), and the optional metrics endpoint.
//!
//! The TCP listener is TLS with this manager's certificate; a client certificate is optional
//! at the TLS layer (a joining node has none yet) and required per service: NodeCA is open
//! (it checks join tokens itself), Dispatcher, LogBroker and ArtifactFetch take any member
//! node, Control takes managers only ([`NodeAuth`]); Raft takes managers of this cluster and
//! RaftMembership managers. On a follower, calls that need the leader are forwarded to it
//! ([`Forwarder`]), on both listeners.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use super::revocable::Revocable;
use super::server_tls::{self, ReloadingCert};
use super::{ManagerConfig, ManagerError, NodeState};
use crate::artifacts::{ArtifactsApi, BlobStore, FetchApi};
use crate::ca::{NodeAuth, NodeCaApi};
use crate::dispatcher::Dispatcher;
use crate::logbroker::{BrokerConfig, LogBroker};
use crate::proxy::Forwarder;
use crate::raft::{MembershipApi, RaftApi};
use crate::store::Store;

pub(super) struct Servers {
    pub addr: SocketAddr,
    pub control_socket: PathBuf,
    pub metrics_addr: Option<SocketAddr>,
    pub dispatcher: Dispatcher,
    /// Raft membership changes (joins served here, leaves by the role manager).
    pub membership: MembershipApi,
    pub tasks: Vec<JoinHandle<()>>,
}

/// Binds every listener (so bad addresses fail `init`/`run` at once) and serves them until
/// `shutdown`.
pub(super) async fn start(
    config: &ManagerConfig,
    state: &NodeState,
    cert: Arc<ReloadingCert>,
    store: Store,
    forwarder: &Forwarder,
    blobs: Arc<BlobStore>,
    shutdown: CancellationToken,
) -> Result<Servers, ManagerError> {
    let io = |what: String| move |source| ManagerError::Io { what, source };
    let tcp = TcpListener::bind(config.listen_addr)
        .await
        .map_err(io(format!("listening on {}", config.listen_addr)))?;
    let bound = tcp.local_addr().map_err(io("listen address".into()))?;
    let addr = advertised(config, bound)?;
    let dispatcher = Dispatcher::new(store.clone(), state.node_id.clone(), addr.to_string());
    let logs = LogBroker::spawn(
        store.clone(),
        dispatcher.clone(),
        BrokerConfig::default(),
        shutdown.clone(),
    );

    let socket = config.state_dir.join("control.sock");
    // A socket left by a killed manager would make bind fail.
    let _ = std::fs::remove_file(&socket);
    let unix = UnixListener::bind(&socket).map_err(io(format!("binding {}", socket.display())))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .map_err(io(format!("chmod {}", socket.display())))?;

    let mut tasks = Vec::new();
    let token = shutdown.clone();
    let raft = forwarder.raft();
    let members = NodeAuth::members(store.clone());
    let managers = NodeAuth::managers(store.clone());
    let svc = forwarder.remote(InterceptedService::new(
        dispatcher.clone().into_service(),
        members.clone(),
    ));
    let broker_svc = forwarder.remote(InterceptedService::new(
        logs.broker_service(),
        members.clone(),
    ));
    let fetch_svc = forwarder.remote(InterceptedService::new(
        FetchApi::new(dispatcher.clone(), blobs.clone()).into_service(),
        members,
    ));
    // The control plane (swarmctl's services): on the socket for this host's root, and on
    // TCP for other managers forwarding to the leader.
    let control = crate::api::manager_control_service(store.clone(), raft);
    let logs_api = logs.logs_service();
    let artifacts =
        ArtifactsApi::new(store.clone(), blobs, crate::artifacts::DEFAULT_MAX_SIZE).into_service();
    let for_managers = |svc| InterceptedService::new(svc, managers.clone());
    let remote_control = forwarder.remote(for_managers(control.clone()));
    let remote_logs = forwarder.remote(InterceptedService::new(logs_api.clone(), managers.clone()));
    let remote_artifacts =
        forwarder.remote(InterceptedService::new(artifacts.clone(), managers.clone()));
    let membership = MembershipApi::new(store.clone(), raft.clone());
    let membership_svc = forwarder.remote(InterceptedService::new(
        membership.clone().into_service(),
        managers,
    ));
    // Raft is always answered here; the proxy only gives it the same shape as the rest.
    let raft_svc = forwarder.remote(InterceptedService::new(
        RaftApi::new(raft.clone()).into_service(),
        NodeAuth::raft_peers(store.clone(), state.cluster_id.clone()),
    ));
    let ca_svc = forwarder.remote(NodeCaApi::new(store.clone()).into_service());
    let tls = swarm_agent::certs::server_config(&cert.root_pem, cert.clone())
        .map_err(|e| ManagerError::Other(format!("TLS configuration: {e}")))?;
    tasks.push(tokio::spawn(cert.follow(shutdown.child_token())));
    let incoming = server_tls::incoming(tcp, TlsAcceptor::from(tls), shutdown.child_token());
    let server = tonic::transport::Server::builder();
    let server = server
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(10)))
        .add_service(Revocable::new(ca_svc, shutdown.clone()))
        .add_service(Revocable::new(svc, shutdown.clone()))
        .add_service(Revocable::new(broker_svc, shutdown.clone()))
        .add_service(Revocable::new(fetch_svc, shutdown.clone()))
        .add_service(Revocable::new(remote_control, shutdown.clone()))
        .add_service(Revocable::new(remote_logs, shutdown.clone()))
        .add_service(Revocable::new(remote_artifacts, shutdown.clone()))
        .add_service(Revocable::new(membership_svc, shutdown.clone()))
        .add_service(Revocable::new(raft_svc, shutdown.clone()));
    tasks.push(tokio::spawn(async move {
        let r = server
            .serve_with_incoming_shutdown(incoming, token.cancelled_owned())
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "dispatcher server stopped");
        }
    }));
    let token = shutdown.clone();
    let control = Revocable::new(forwarder.local(control), shutdown.clone());
    let logs_svc = Revocable::new(forwarder.local(logs_api), shutdown.clone());
    let artifacts_svc = Revocable::new(forwarder.local(artifacts), shutdown.clone());
    tasks.push(tokio::spawn(async move {
        let r = tonic::transport::Server::builder()
            .add_service(control)
            .add_service(logs_svc)
            .add_service(artifacts_svc)
            .serve_with_incoming_shutdown(UnixListenerStream::new(unix), token.cancelled_owned())
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "control server stopped");
        }
    }));
    let metrics_addr = match config.metrics_addr {
        Some(a) => {
            let (bound, task) = crate::metrics_server::serve(a, shutdown.clone())
                .await
                .map_err(io(format!("metrics listener on {a}")))?;
            tasks.push(task);
            Some(bound)
        }
        None => None,
    };
    tracing::info!(%addr, socket = %socket.display(), "manager listening");
    Ok(Servers {
        addr,
        control_socket: socket,
        metrics_addr,
        dispatcher,
        membership,
        tasks,
    })
}

fn advertised(config: &ManagerConfig, bound: SocketAddr) -> Result<SocketAddr, ManagerError> {
    match &config.advertise_addr {
        Some(a) => {
            let with_port = if a.contains(':') {
                a.clone()
            } else {
                format!("{a}:{}", bound.port())
            };
            with_port.parse().map_err(|e| {
                ManagerError::Other(format!(
                    "invalid --advertise-addr {a:?}: {e} (expected IP[:PORT])"
                ))
            })
        }
        None if bound.ip().is_unspecified() => Ok(([127, 0, 0, 1], bound.port()).into()),
        None => Ok(bound),
    }
}
