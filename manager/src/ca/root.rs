//! [`RootCa`]: the cluster's root certificate authority — made at `init` (ECDSA P-256),
//! replicated in the Cluster object, used by the leader to sign node certificates. The key
//! lives only there — in the raft store, encrypted under autolock — never in a file.
//!
//! A node certificate's subject is set here, never taken from the CSR: CN = node id,
//! OU = role, O = cluster id. Managers' certificates also carry the DNS name
//! [`SERVER_NAME`] that clients verify, and both TLS usages (a manager's in-process agent
//! dials with it too); workers' carry client authentication only. Validity starts one minute
//! in the past to absorb clock skew between nodes (SwarmKit backdates too).

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use sha2::{Digest, Sha256};
use swarm_agent::certs::{NodeCerts, NodeIdentity, SERVER_NAME, join};
use swarm_proto::{NodeRole, RootCa as RootCaProto};

/// Node certificates live this long unless the cluster says otherwise (Docker's 90 days).
pub const DEFAULT_NODE_CERT_EXPIRY: Duration = Duration::from_secs(90 * 24 * 3600);
/// The shortest expiry accepted (tests use it to watch renewals).
pub const MIN_NODE_CERT_EXPIRY: Duration = Duration::from_secs(60);
/// The root CA's own validity (SwarmKit: 20 years).
const ROOT_EXPIRY: Duration = Duration::from_secs(20 * 365 * 24 * 3600);
const BACKDATE: Duration = Duration::from_secs(60);

/// Why the CA could not do something.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("invalid certificate signing request: {0}")]
    BadCsr(String),
    #[error("the cluster's root CA is unusable: {0}")]
    Root(String),
}

/// Who a new certificate is for.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub node_id: &'a str,
    pub role: NodeRole,
    pub cluster_id: &'a str,
}

/// The root CA: certificate and key, PEM.
#[derive(Clone)]
pub struct RootCa {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for RootCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCa").finish_non_exhaustive()
    }
}

impl RootCa {
    /// A new self-signed root for cluster `cluster_id`.
    ///
    /// # Errors
    /// Key generation or signing failed.
    pub fn generate(cluster_id: &str) -> Result<Self, CaError> {
        let err = |e: rcgen::Error| CaError::Root(e.to_string());
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "swarm-ca");
        params
            .distinguished_name
            .push(DnType::OrganizationName, cluster_id);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = SystemTime::now();
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + ROOT_EXPIRY).into();
        let cert = params.self_signed(&key).map_err(err)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The root as stored in the Cluster object.
    pub fn to_proto(&self) -> RootCaProto {
        RootCaProto {
            ca_cert: self.cert_pem.clone().into_bytes(),
            ca_key: self.key_pem.clone().into_bytes(),
            ca_cert_hash: hex::encode(Sha256::digest(self.cert_pem.as_bytes())),
        }
    }

    /// The root stored in a Cluster object.
    ///
    /// # Errors
    /// [`CaError::Root`] when it is missing or not UTF-8 PEM.
    pub fn from_proto(root: Option<&RootCaProto>) -> Result<Self, CaError> {
        let root = root.ok_or_else(|| CaError::Root("the cluster has no root CA".into()))?;
        let text = |b: &[u8], what: &str| {
            String::from_utf8(b.to_vec()).map_err(|_| CaError::Root(format!("{what} is not PEM")))
        };
        Ok(Self {
            cert_pem: text(&root.ca_cert, "the certificate")?,
            key_pem: text(&root.ca_key, "the key")?,
        })
    }

    /// Signs the public key of `csr_pem` into a certificate for `subject`, valid for
    /// `expiry` from now. The CSR's own subject and extensions are ignored.
    ///
    /// # Errors
    /// [`CaError::BadCsr`] for a CSR that does not parse or whose signature is wrong.
    pub fn sign(
        &self,
        csr_pem: &str,
        subject: &Subject<'_>,
        expiry: Duration,
    ) -> Result<String, CaError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| CaError::BadCsr(e.to_string()))?;
        self.sign_key(&csr.public_key, subject, SystemTime::now(), expiry)
    }

    /// Signs `public_key` for `subject`, valid from `start - 1 min` to `start + expiry`.
    /// (Tests use a start in the past to make an expired certificate.)
    ///
    /// # Errors
    /// [`CaError::Root`] when the root cannot sign.
    pub fn sign_key(
        &self,
        public_key: &impl rcgen::PublicKeyData,
        subject: &Subject<'_>,
        start: SystemTime,
        expiry: Duration,
    ) -> Result<String, CaError> {
        let root_err = |e: rcgen::Error| CaError::Root(e.to_string());
        let key = KeyPair::from_pem(&self.key_pem).map_err(root_err)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, key).map_err(root_err)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, subject.node_id);
        params.distinguished_name.push(
            DnType::OrganizationalUnitName,
            NodeIdentity::ou(subject.role),
        );
        params
            .distinguished_name
            .push(DnType::OrganizationName, subject.cluster_id);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if subject.role == NodeRole::Manager {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
            params.subject_alt_names = vec![SanType::DnsName(
                SERVER_NAME.try_into().expect("a valid DNS name"),
            )];
        }
        params.not_before = (start - BACKDATE).into();
        params.not_after = (start + expiry).into();
        Ok(params
            .signed_by(public_key, &issuer)
            .map_err(root_err)?
            .pem())
    }

    /// A key and certificate for this manager itself, signed locally.
    ///
    /// # Errors
    /// As [`RootCa::sign`].
    pub fn issue_local(
        &self,
        subject: &Subject<'_>,
        expiry: Duration,
    ) -> Result<NodeCerts, CaError> {
        let (key_pem, csr_pem) =
            join::new_key_and_csr().map_err(|e| CaError::Root(e.to_string()))?;
        let cert_pem = self.sign(&csr_pem, subject, expiry)?;
        Ok(NodeCerts {
            root_pem: self.cert_pem.clone().into_bytes(),
            cert_pem: cert_pem.into_bytes(),
            key_pem: key_pem.into_bytes(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_name_the_node_role_and_cluster() {
        let root = RootCa::generate("cluster-1").unwrap();
        for role in [NodeRole::Worker, NodeRole::Manager] {
            let subject = Subject {
                node_id: "node-a",
                role,
                cluster_id: "cluster-1",
            };
            let certs = root
                .issue_local(&subject, DEFAULT_NODE_CERT_EXPIRY)
                .unwrap();
            let id = certs.identity().unwrap();
            assert_eq!(id.node_id, "node-a");
            assert_eq!(id.role, role);
            assert_eq!(id.cluster_id, "cluster-1");
            let life = id.not_after.duration_since(id.not_before).unwrap();
            assert_eq!(life, DEFAULT_NODE_CERT_EXPIRY + BACKDATE);
        }
    }

    #[test]
    fn the_csr_subject_is_ignored_and_garbage_is_refused() {
        let root = RootCa::generate("c").unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "i-am-root");
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, "swarm-manager");
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        let subject = Subject {
            node_id: "n1",
            role: NodeRole::Worker,
            cluster_id: "c",
        };
        let pem = root.sign(&csr, &subject, MIN_NODE_CERT_EXPIRY).unwrap();
        let certs = NodeCerts {
            root_pem: vec![],
            cert_pem: pem.into_bytes(),
            key_pem: vec![],
        };
        let id = certs.identity().unwrap();
        assert_eq!((id.node_id.as_str(), id.role), ("n1", NodeRole::Worker));
        let err = root
            .sign("not a csr", &subject, MIN_NODE_CERT_EXPIRY)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid certificate signing request"),
            "{err}"
        );
    }

    #[test]
    fn the_root_round_trips_through_the_cluster_object() {
        let root = RootCa::generate("c").unwrap();
        let proto = root.to_proto();
        assert_eq!(proto.ca_cert_hash.len(), 64);
        let back = RootCa::from_proto(Some(&proto)).unwrap();
        assert_eq!(back.cert_pem, root.cert_pem);
        assert!(RootCa::from_proto(None).is_err());
    }
}
