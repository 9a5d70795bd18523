//! rustls client configurations and the one way this crate dials a manager: TCP, then TLS
//! with the server name [`SERVER_NAME`] (every manager certificate carries it, whatever
//! address it is reached at), then HTTP/2 for tonic.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

use super::files::first_der;
use super::{CertError, NodeCerts};

/// The DNS name in every manager certificate, verified by every client.
pub const SERVER_NAME: &str = "swarm-manager";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
}

fn roots(root_pem: &[u8]) -> Result<RootCertStore, CertError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(first_der(root_pem)?))
        .map_err(|e| CertError::Invalid(format!("root CA certificate: {e}")))?;
    Ok(roots)
}

fn finish(mut config: ClientConfig) -> Arc<ClientConfig> {
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

impl NodeCerts {
    fn chain_and_key(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), CertError> {
        let chain = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CertError::Invalid(format!("node certificate: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem)
            .map_err(|e| CertError::Invalid(format!("node key: {e}")))?;
        Ok((chain, key))
    }

    /// This node's certificate and key as a TLS server presents them.
    ///
    /// # Errors
    /// The certificate or key does not parse.
    pub fn certified_key(&self) -> Result<Arc<CertifiedKey>, CertError> {
        let (chain, key) = self.chain_and_key()?;
        let signer = provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| CertError::Invalid(format!("node key: {e}")))?;
        Ok(Arc::new(CertifiedKey::new(chain, signer)))
    }

    /// Mutual TLS: verify managers against the root, present this node's certificate.
    ///
    /// # Errors
    /// The root, certificate or key does not parse.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, CertError> {
        let (chain, key) = self.chain_and_key()?;
        let config = builder()
            .with_root_certificates(roots(&self.root_pem)?)
            .with_client_auth_cert(chain, key)
            .map_err(|e| CertError::Invalid(format!("node key and certificate: {e}")))?;
        Ok(finish(config))
    }
}

/// Mutual TLS presenting whatever `certs` resolves to at each handshake (a manager's
/// outgoing connections, which must follow its renewals), verifying managers against
/// `root_pem`.
///
/// # Errors
/// The root does not parse.
pub fn client_config_resolving(
    root_pem: &[u8],
    certs: Arc<dyn ResolvesClientCert>,
) -> Result<Arc<ClientConfig>, CertError> {
    Ok(finish(
        builder()
            .with_root_certificates(roots(root_pem)?)
            .with_client_cert_resolver(certs),
    ))
}

/// A manager's server side: presents whatever `certs` resolves to (so a renewed certificate
/// is served without a restart) and verifies client certificates against `root_pem` when
/// one is offered — a node fetching the root CA to join has none yet; each RPC then checks
/// its caller (`NodeAuth`).
///
/// # Errors
/// The root does not parse.
pub fn server_config(
    root_pem: &[u8],
    certs: Arc<dyn ResolvesServerCert>,
) -> Result<Arc<ServerConfig>, CertError> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(root_pem)?), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| CertError::Invalid(format!("client verifier: {e}")))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Verify managers against `root_pem`, present no certificate (asking for the first one).
///
/// # Errors
/// The root does not parse.
pub fn server_verified(root_pem: &[u8]) -> Result<Arc<ClientConfig>, CertError> {
    Ok(finish(
        builder()
            .with_root_certificates(roots(root_pem)?)
            .with_no_client_auth(),
    ))
}

/// Accept any manager certificate. Only for fetching the root CA, which the caller then
/// checks against the digest in its join token before trusting anything.
pub(crate) fn unverified() -> Arc<ClientConfig> {
    let verifier = AcceptAnyServer(provider().signature_verification_algorithms);
    finish(
        builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth(),
    )
}

/// How often a channel pings its peer (HTTP/2 PING), also while no call is open.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(3);

/// How long a ping may go unanswered before the connection is closed and its calls fail.
/// Generous: a peer busy for seconds (a debug build applying 100,000 task updates) is slow,
/// not gone, and closing its connections would fail calls that were about to succeed.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Dials `addr` (`host:port`) with `tls` and returns a connected channel.
///
/// The channel pings its peer every [`KEEPALIVE_INTERVAL`]: a peer cut off by a network
/// partition leaves the TCP connection open but silent, and without pings a call in flight
/// on it (a write forwarded to the leader, a raft stream) would wait forever. With them it
/// fails within [`KEEPALIVE_INTERVAL`] + [`KEEPALIVE_TIMEOUT`], and the caller redials.
///
/// # Errors
/// The address is not a valid URI authority, or TCP, TLS or HTTP/2 setup fails within
/// `timeout`.
pub async fn connect(
    addr: &str,
    tls: Arc<ClientConfig>,
    timeout: Duration,
) -> Result<Channel, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    let connector = tower::service_fn(move |uri: Uri| {
        let tls = Arc::clone(&tls);
        async move {
            let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
            let port = uri.port_u16().unwrap_or(4242);
            let tcp = TcpStream::connect((host, port)).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(SERVER_NAME).expect("a valid DNS name");
            let stream = TlsConnector::from(tls).connect(name, tcp).await?;
            Ok::<_, io::Error>(TokioIo::new(stream))
        }
    });
    endpoint.connect_with_connector(connector).await
}

#[derive(Debug)]
struct AcceptAnyServer(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
