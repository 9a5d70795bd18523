//! [`Runc`]: the OCI runtime CLI (`runc`, `crun`, `youki` share it) for the calls the
//! controller makes itself: `state`, `kill`, `delete`, `list`. `run` is started by the shim.
//!
//! Every call passes `--root <state-dir>/oci/runc`, so the agent's containers live apart from
//! any other user of the runtime (`runc --root … list` shows them).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::exec::ExecError;

/// One runtime binary and its state root.
#[derive(Debug, Clone)]
pub(crate) struct Runc {
    pub(crate) binary: PathBuf,
    pub(crate) root: PathBuf,
}

/// A container's status as `state` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Runc {
    fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root);
        cmd.stdin(Stdio::null()).kill_on_drop(false);
        cmd
    }

    /// The argv of `run --bundle B ID` (for the shim).
    pub(crate) fn run_argv(&self, bundle: &Path, id: &str) -> Vec<String> {
        vec![
            self.binary.display().to_string(),
            "--root".into(),
            self.root.display().to_string(),
            "run".into(),
            "--bundle".into(),
            bundle.display().to_string(),
            id.into(),
        ]
    }

    /// The container's status, `None` when the runtime does not know it.
    pub(crate) async fn state(&self, id: &str) -> Result<Option<Status>, ExecError> {
        let out = self.output(&["state", id]).await?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("does not exist") || err.contains("not exist") {
                return Ok(None);
            }
            return Err(ExecError::Temporary(format!(
                "runtime state {id}: {}",
                err.trim()
            )));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            ExecError::Runtime(format!("runtime state {id}: unreadable answer: {e}"))
        })?;
        Ok(Some(match v.get("status").and_then(|s| s.as_str()) {
            Some("creating") => Status::Creating,
            Some("created") => Status::Created,
            Some("running") => Status::Running,
            Some("paused") => Status::Paused,
            _ => Status::Stopped,
        }))
    }

    /// Sends `signal` (`TERM`, `KILL`) to every process of the container. A container that is
    /// gone or no longer running is not an error.
    pub(crate) async fn kill(&self, id: &str, signal: &str) -> Result<(), ExecError> {
        let out = self.output(&["kill", "--all", id, signal]).await?;
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || err.contains("not exist") || err.contains("not running") {
            return Ok(());
        }
        Err(ExecError::Temporary(format!(
            "runtime kill {id} {signal}: {}",
            err.trim()
        )))
    }

    /// Deletes the container (forcibly); a container that is gone is not an error.
    pub(crate) async fn delete(&self, id: &str) -> Result<(), ExecError> {
        let out = self.output(&["delete", "--force", id]).await?;
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || err.contains("not exist") {
            return Ok(());
        }
        Err(ExecError::Temporary(format!(
            "runtime delete {id}: {}",
            err.trim()
        )))
    }

    async fn output(&self, args: &[&str]) -> Result<std::process::Output, ExecError> {
        self.command()
            .args(args)
            .output()
            .await
            .map_err(|e| ExecError::Io {
                context: format!("run {} {}", self.binary.display(), args.join(" ")),
                source: e,
            })
    }
}
