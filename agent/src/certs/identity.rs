//! [`NodeIdentity`]: who a certificate says its holder is — read from our own certificate
//! (when to renew) and from a peer's (what a caller may do).

use std::time::{Duration, SystemTime};

use swarm_proto::NodeRole;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::CertError;

/// The organizational unit of a manager's certificate.
pub const OU_MANAGER: &str = "swarm-manager";
/// The organizational unit of a worker's certificate.
pub const OU_WORKER: &str = "swarm-worker";

/// The subject of a node certificate and its validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// CN.
    pub node_id: String,
    /// From OU.
    pub role: NodeRole,
    /// O.
    pub cluster_id: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl NodeIdentity {
    /// Parses a DER certificate. It must carry exactly our subject shape.
    ///
    /// # Errors
    /// [`CertError::Invalid`] when it does not parse or lacks CN, OU or O.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let invalid = |why: String| CertError::Invalid(why);
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| invalid(format!("not an X.509 certificate: {e}")))?;
        let subject = cert.subject();
        let one = |field: &str, mut it: Box<dyn Iterator<Item = _> + '_>| {
            it.next()
                .and_then(|a: &x509_parser::x509::AttributeTypeAndValue<'_>| {
                    a.as_str().ok().map(str::to_string)
                })
                .ok_or_else(|| invalid(format!("the certificate's subject has no {field}")))
        };
        let node_id = one("CN (node id)", Box::new(subject.iter_common_name()))?;
        let ou = one("OU (role)", Box::new(subject.iter_organizational_unit()))?;
        let cluster_id = one("O (cluster id)", Box::new(subject.iter_organization()))?;
        let role = match ou.as_str() {
            OU_MANAGER => NodeRole::Manager,
            OU_WORKER => NodeRole::Worker,
            other => return Err(invalid(format!("unknown role OU {other:?}"))),
        };
        let time = |t: x509_parser::time::ASN1Time| {
            SystemTime::UNIX_EPOCH + Duration::from_secs(t.timestamp().max(0) as u64)
        };
        Ok(Self {
            node_id,
            role,
            cluster_id,
            not_before: time(cert.validity().not_before),
            not_after: time(cert.validity().not_after),
        })
    }

    /// The OU naming `role`.
    pub fn ou(role: NodeRole) -> &'static str {
        match role {
            NodeRole::Manager => OU_MANAGER,
            NodeRole::Worker => OU_WORKER,
        }
    }
}
