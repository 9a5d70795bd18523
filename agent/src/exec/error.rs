//! Errors a backend or controller returns. The driver only asks one question of them:
//! fatal (the task ends REJECTED/FAILED with the error text) or temporary (retry the step).

/// An executor error. Its `Display` text becomes the task's `status.err`, so it should tell
/// the user what went wrong and, where possible, what to do.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The task's spec cannot run on this backend (wrong runtime kind, bad arguments). Fatal.
    #[error("invalid task: {0}")]
    InvalidTask(String),
    /// Something the task needs does not exist (artifact, image, mount source). Fatal.
    #[error("not found: {0}")]
    NotFound(String),
    /// The runtime failed doing what was asked. Fatal.
    #[error("runtime error: {0}")]
    Runtime(String),
    /// The workload itself failed: a WASM trap ("wasm trap: …") or a resource limit it ran
    /// into ("memory limit of 64 MiB exceeded"). The text is shown as is. Fatal.
    #[error("{0}")]
    Workload(String),
    /// A failure that may pass (busy runtime, network hiccup). The step is retried with backoff.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// An I/O error with what was being done. Fatal.
    #[error("{context}")]
    Io {
        /// What the backend was doing ("create bundle dir /var/lib/…").
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl ExecError {
    /// True when retrying cannot help: the task ends REJECTED (before STARTING) or FAILED.
    pub fn is_fatal(&self) -> bool {
        !self.is_temporary()
    }

    /// True when the same step should be retried after a backoff.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Temporary(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_temporary_errors_are_retried() {
        assert!(ExecError::Temporary("busy".into()).is_temporary());
        assert!(!ExecError::Temporary("busy".into()).is_fatal());
        assert!(ExecError::NotFound("artifact x".into()).is_fatal());
        let io = ExecError::Io {
            context: "open bundle".into(),
            source: std::io::Error::other("boom"),
        };
        assert!(io.is_fatal());
        assert_eq!(crate::errors::chain(&io), "open bundle: boom");
    }
}
