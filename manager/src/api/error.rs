//! The Control API's errors and their one mapping to gRPC status codes.
//!
//! Every handler returns [`ApiError`]; `From<ApiError> for tonic::Status` is the only place
//! that picks a code, so the same failure always reaches a client the same way:
//!
//! | error                                     | code                 |
//! |-------------------------------------------|----------------------|
//! | not the leader / write dropped            | `UNAVAILABLE`        |
//! | no such object (store, lookup, no cluster)| `NOT_FOUND`          |
//! | id or service name taken                  | `ALREADY_EXISTS`     |
//! | stale `*_version` ("update out of sequence") | `INVALID_ARGUMENT` |
//! | ambiguous reference, invalid spec/request | `INVALID_ARGUMENT`   |
//! | object in the wrong state, other conflicts| `FAILED_PRECONDITION`|
//! | not supported (rename, mode change)       | `UNIMPLEMENTED`      |
//! | raft failure, this manager's disk         | `INTERNAL`           |

use tonic::{Code, Status};

use crate::store::{Conflict, LookupError, StoreError};

/// A spec or request that breaks a rule; the message says which and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

impl ValidationError {
    /// A validation error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Why a Control call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The store refused or could not replicate the write.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A reference named no object, or several.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// The request or its spec is invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Nothing matches, in a case a [`LookupError`] can't phrase (no cluster yet).
    #[error("{0}")]
    NotFound(String),
    /// The object is not in a state that allows this call.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The change is valid but not supported (as in SwarmKit: renames, mode changes).
    #[error("{0}")]
    Unsupported(String),
    /// This manager failed (its disk, a broken invariant); the message says what to check.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// An [`ApiError::Invalid`] with this message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(ValidationError::new(message))
    }
}

impl From<Conflict> for ApiError {
    fn from(c: Conflict) -> Self {
        Self::Store(StoreError::Conflict(c))
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let message = e.to_string();
        match e {
            ApiError::Store(StoreError::NotLeader { .. }) => Status::unavailable(format!(
                "{message}; retry, or send the request to the leader's control address"
            )),
            ApiError::Store(StoreError::Dropped(_)) => {
                Status::unavailable(format!("{message}; retry once a leader is elected"))
            }
            ApiError::Store(StoreError::Raft(_)) => Status::internal(message),
            ApiError::Store(StoreError::Conflict(c)) => conflict_status(&c),
            ApiError::Lookup(LookupError::NotFound { .. }) => Status::not_found(message),
            ApiError::Lookup(LookupError::Ambiguous { .. }) => Status::invalid_argument(message),
            ApiError::Invalid(_) => Status::invalid_argument(message),
            ApiError::NotFound(_) => Status::not_found(message),
            ApiError::FailedPrecondition(_) => Status::failed_precondition(message),
            ApiError::Unsupported(_) => Status::new(Code::Unimplemented, message),
            ApiError::Internal(_) => Status::internal(message),
        }
    }
}

fn conflict_status(c: &Conflict) -> Status {
    let message = c.to_string();
    match c {
        Conflict::NotFound { .. } => Status::not_found(message),
        Conflict::AlreadyExists { .. } | Conflict::NameInUse { .. } => {
            Status::already_exists(message)
        }
        // Docker's wording first: scripts and users grep for "update out of sequence".
        Conflict::VersionMismatch { .. } => {
            Status::invalid_argument(format!("update out of sequence: {message}"))
        }
        Conflict::NotForward { .. } | Conflict::AlreadyAssigned { .. } | Conflict::Malformed(_) => {
            Status::failed_precondition(message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(e: impl Into<ApiError>) -> Status {
        Status::from(e.into())
    }

    #[test]
    fn store_errors_map_to_codes() {
        let s = status(StoreError::NotLeader {
            leader: Some("10.0.0.2:4242".into()),
        });
        assert_eq!(s.code(), Code::Unavailable);
        assert!(
            s.message()
                .starts_with("this manager is not the leader (the leader is 10.0.0.2:4242); "),
            "{}",
            s.message()
        );
        assert_eq!(
            status(StoreError::Dropped("x".into())).code(),
            Code::Unavailable
        );
        assert_eq!(status(StoreError::Raft("x".into())).code(), Code::Internal);
    }

    #[test]
    fn conflicts_map_to_codes() {
        let nf = Conflict::NotFound {
            kind: "service",
            id: "s1".into(),
        };
        assert_eq!(status(nf).code(), Code::NotFound);
        let ae = Conflict::AlreadyExists {
            kind: "service",
            id: "s1".into(),
        };
        assert_eq!(status(ae).code(), Code::AlreadyExists);
        let name = status(Conflict::NameInUse { name: "web".into() });
        assert_eq!(name.code(), Code::AlreadyExists);
        assert_eq!(name.message(), "a service named \"web\" already exists");
        let vm = status(Conflict::VersionMismatch {
            kind: "service",
            id: "s1".into(),
            read: 3,
            current: 5,
        });
        assert_eq!(vm.code(), Code::InvalidArgument);
        assert!(
            vm.message()
                .starts_with("update out of sequence: service s1 was changed")
        );
        let nfw = status(Conflict::NotForward { id: "t1".into() });
        assert_eq!(nfw.code(), Code::FailedPrecondition);
    }

    #[test]
    fn lookup_and_validation_errors_map_to_codes() {
        let nf = LookupError::NotFound {
            kind: "node",
            reference: "n9".into(),
        };
        assert_eq!(status(nf).code(), Code::NotFound);
        let amb = LookupError::Ambiguous {
            kind: "task",
            reference: "a".into(),
            matches: "a1, a2".into(),
        };
        assert_eq!(status(amb).code(), Code::InvalidArgument);
        let inv = status(ValidationError::new("service name is required"));
        assert_eq!(inv.code(), Code::InvalidArgument);
        assert_eq!(inv.message(), "service name is required");
        let fp = status(ApiError::FailedPrecondition("no".into()));
        assert_eq!(fp.code(), Code::FailedPrecondition);
        let un = status(ApiError::Unsupported("no".into()));
        assert_eq!(un.code(), Code::Unimplemented);
    }
}
