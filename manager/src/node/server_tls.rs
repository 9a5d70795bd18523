//! The manager's TLS, with a certificate that follows renewals. Tonic's own TLS setting
//! fixes the certificate at start, so a long-running manager would present its first
//! certificate until it expired. [`ReloadingCert`] re-reads `certificates/` when the node's
//! renewer has replaced the files, and answers both sides: the listener's rustls acceptor
//! (server) and the manager's outgoing connections to its peers (client). Handshakes run one task per connection (a slow client never holds
//! up the others) and feed tonic the finished TLS streams, which carry the peer certificate
//! exactly as tonic's own TLS does.

use std::io;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use swarm_agent::certs::{CertFiles, NodeCerts};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// How often the certificate files are checked for a renewal.
const RELOAD: Duration = Duration::from_secs(5);
/// How long a client may take over its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The certificate this manager presents: the latest one in its certificates dir.
#[derive(Debug)]
pub(crate) struct ReloadingCert {
    files: CertFiles,
    /// The cluster's root CA (PEM): what peers' certificates are verified against.
    pub root_pem: Vec<u8>,
    current: RwLock<(Vec<u8>, Arc<CertifiedKey>)>,
}

impl ReloadingCert {
    /// Starts from `certs`, which were loaded from `files` (whose key protection it reads
    /// renewals with).
    pub fn new(files: CertFiles, certs: &NodeCerts) -> Result<Arc<Self>, String> {
        let key = certs.certified_key().map_err(|e| e.to_string())?;
        Ok(Arc::new(Self {
            files,
            root_pem: certs.root_pem.clone(),
            current: RwLock::new((certs.cert_pem.clone(), key)),
        }))
    }

    /// Re-reads the files; whether the certificate changed.
    fn reload(&self) -> Result<bool, String> {
        let Some(certs) = self.files.load().map_err(|e| e.to_string())? else {
            return Ok(false);
        };
        if self
            .current
            .read()
            .map(|c| c.0 == certs.cert_pem)
            .unwrap_or(false)
        {
            return Ok(false);
        }
        let key = certs.certified_key().map_err(|e| e.to_string())?;
        if let Ok(mut c) = self.current.write() {
            *c = (certs.cert_pem, key);
        }
        Ok(true)
    }

    /// Checks for a renewed certificate every [`RELOAD`] until `token` is cancelled.
    pub async fn follow(self: Arc<Self>, token: CancellationToken) {
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(RELOAD) => {}
            }
            match self.reload() {
                Ok(true) => tracing::info!("serving the renewed node certificate"),
                Ok(false) => {}
                // A half-written renewal: the next check sees the whole files.
                Err(e) => tracing::debug!(error = %e, "certificate files not reloaded"),
            }
        }
    }
}

impl ReloadingCert {
    fn key(&self) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.1.clone())
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.key()
    }
}

impl ResolvesClientCert for ReloadingCert {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.key()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The TLS connections of `tcp`, handshaken with `acceptor`, until `token` is cancelled.
pub fn incoming(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    token: CancellationToken,
) -> ReceiverStream<io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = token.cancelled() => return,
                a = tcp.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
