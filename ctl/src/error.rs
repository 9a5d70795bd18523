//! swarmctl's errors, and the exit code each one maps to.
//!
//! `main` prints every error as `error: <message>`; usage errors (a bad flag value, flags
//! that do not go together) exit with 2 as clap's own usage errors do, everything else
//! (the manager is unreachable, the server refused the request, a wait timed out) with 1.

use thiserror::Error;

use crate::client::ConnectError;
use crate::spec::SpecError;

/// Anything that can make a swarmctl command fail.
#[derive(Debug, Error)]
pub enum CtlError {
    /// The control socket could not be reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The manager answered with an error; its message is shown as is.
    #[error("{}", status_message(.0))]
    Server(#[from] tonic::Status),
    /// A flag value or a combination of flags is wrong.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Any other usage error (e.g. a malformed `NAME=REPLICAS`).
    #[error("{0}")]
    Usage(String),
    /// The command ran but did not achieve what it was asked (e.g. a convergence timeout).
    #[error("{0}")]
    Failed(String),
    /// Writing the output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl CtlError {
    /// The process exit code for this error: 2 for usage errors, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Spec(_) | CtlError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// True when stdout was closed under us (`swarmctl service ls | head -1`): not worth a
    /// message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CtlError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// The text of a server error: its message, or the code's description when it has none.
/// A lost connection says so (tonic's own words for it are terse).
fn status_message(status: &tonic::Status) -> String {
    let message = if status.message().is_empty() {
        status.code().description()
    } else {
        status.message()
    };
    if status.code() == tonic::Code::Unavailable {
        format!("the manager is unavailable: {message}")
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_show_their_message_and_exit_1() {
        let e = CtlError::from(tonic::Status::not_found("service web not found"));
        assert_eq!(e.to_string(), "service web not found");
        assert_eq!(e.exit_code(), 1);
        let e = CtlError::from(tonic::Status::new(tonic::Code::PermissionDenied, ""));
        assert_eq!(
            e.to_string(),
            "The caller does not have permission to execute the specified operation"
        );
        let e = CtlError::from(tonic::Status::unavailable("no leader elected yet"));
        assert_eq!(
            e.to_string(),
            "the manager is unavailable: no leader elected yet"
        );
        assert_eq!(CtlError::Usage("x".into()).exit_code(), 2);
    }
}
