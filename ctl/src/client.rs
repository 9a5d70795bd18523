//! Connecting to a manager's control socket (`<state-dir>/control.sock`: plain gRPC over
//! a Unix socket, no TLS; the socket's 0600 mode is the access control).
//!
//! The connection is made eagerly so that an unreachable manager is reported before any
//! request, with a message that says what to do about it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use swarm_proto::control_client::ControlClient;
use thiserror::Error;
use tokio::net::UnixStream;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// A connection to the control socket, with this process's [`ReadMode`].
pub type Conn = InterceptedService<Channel, ReadMode>;

/// The Control client every command uses.
pub type Client = ControlClient<Conn>;

/// The request header asking a manager to answer reads from its own copy of the store.
pub const READ_LOCAL_HEADER: &str = "swarm-read-local";

static READ_LOCAL: AtomicBool = AtomicBool::new(false);

/// `--local-read`: reads are answered by the manager swarmctl talks to, from its own copy
/// of the store (possibly behind the leader's), instead of by the leader.
pub fn set_read_local(on: bool) {
    READ_LOCAL.store(on, Ordering::Relaxed);
}

/// Marks requests with [`READ_LOCAL_HEADER`] when [`set_read_local`] asked for it.
#[derive(Debug, Clone, Copy)]
pub struct ReadMode;

impl Interceptor for ReadMode {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if READ_LOCAL.load(Ordering::Relaxed) {
            request.metadata_mut().insert(
                READ_LOCAL_HEADER,
                tonic::metadata::MetadataValue::from_static("1"),
            );
        }
        Ok(request)
    }
}

/// The socket a manager with the default state dir (`/var/lib/swarm`) serves Control on.
pub const DEFAULT_SOCKET: &str = "/var/lib/swarm/control.sock";

/// Why the control socket could not be reached.
#[derive(Debug, Error)]
pub enum ConnectError {
    #[error(
        "cannot reach the manager at {}: no such file (is swarm-manager running? set --socket or SWARM_SOCKET)",
        .0.display()
    )]
    NotFound(PathBuf),
    #[error(
        "cannot reach the manager at {}: connection refused (the manager is down; start swarm-manager, or set --socket or SWARM_SOCKET)",
        .0.display()
    )]
    Refused(PathBuf),
    #[error(
        "cannot reach the manager at {}: permission denied (the socket is only open to the user running swarm-manager; try sudo)",
        .0.display()
    )]
    PermissionDenied(PathBuf),
    #[error("cannot reach the manager at {}: {reason}", path.display())]
    Other { path: PathBuf, reason: String },
}

/// Connects to the Control service on the Unix socket at `socket`.
///
/// # Errors
/// [`ConnectError`] saying whether the socket is missing, refused (no manager listening),
/// not accessible, or failed otherwise.
pub async fn connect(socket: &Path) -> Result<Client, ConnectError> {
    Ok(ControlClient::new(channel(socket).await?))
}

/// A channel to the manager's control socket, for the services other than Control
/// (`Logs`). Errors as [`connect`].
pub async fn channel(socket: &Path) -> Result<Conn, ConnectError> {
    let path = socket.to_path_buf();
    let channel = Endpoint::from_static("http://[::]:50051")
        .connect_timeout(Duration::from_secs(10))
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move { Ok::<_, io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .map_err(|e| classify(socket, &e))?;
    Ok(InterceptedService::new(channel, ReadMode))
}

/// Maps a transport error to what the user can do about it, by the io error inside it.
fn classify(socket: &Path, err: &(dyn std::error::Error + 'static)) -> ConnectError {
    let path = socket.to_path_buf();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::NotFound => ConnectError::NotFound(path),
                io::ErrorKind::ConnectionRefused if is_socket(socket) => {
                    ConnectError::Refused(path)
                }
                io::ErrorKind::ConnectionRefused => ConnectError::Other {
                    path,
                    reason:
                        "not a socket (set --socket or SWARM_SOCKET to <state-dir>/control.sock)"
                            .into(),
                },
                io::ErrorKind::PermissionDenied => ConnectError::PermissionDenied(path),
                _ => ConnectError::Other {
                    path,
                    reason: io.to_string(),
                },
            };
        }
        source = e.source();
    }
    ConnectError::Other {
        path,
        reason: err.to_string(),
    }
}

/// True when `path` is a Unix socket (a regular file there refuses connections too).
fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_socket_says_no_such_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let err = connect(&path).await.unwrap_err();
        assert!(matches!(err, ConnectError::NotFound(_)), "{err:?}");
        assert!(
            err.to_string()
                .contains("no such file (is swarm-manager running?")
        );
    }

    #[tokio::test]
    async fn socket_without_listener_says_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let err = connect(&path).await.unwrap_err();
        assert!(matches!(err, ConnectError::Refused(_)), "{err:?}");
        assert!(err.to_string().contains("the manager is down"));
    }

    #[tokio::test]
    async fn regular_file_is_not_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        std::fs::write(&path, b"").unwrap();
        let err = connect(&path).await.unwrap_err();
        assert!(err.to_string().contains("not a socket"), "{err}");
    }
}
