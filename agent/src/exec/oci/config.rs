//! [`OciConfig`]: what the OCI backend needs (state dir, the runtime binary, how to start a
//! shim) and its timings, plus [`resolve_runtime`] for `--oci-runtime runc|crun|youki|PATH`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::tasklog::{DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES};

/// The runtimes `--oci-runtime` knows by name (looked up in `PATH`).
pub const KNOWN_RUNTIMES: [&str; 3] = ["runc", "crun", "youki"];

/// How the agent starts a container's shim: `program args... <task dir>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimCommand {
    /// The executable (by default this process's own binary).
    pub program: PathBuf,
    /// Arguments before the task dir (by default the hidden subcommand `oci-shim`).
    pub args: Vec<String>,
}

impl ShimCommand {
    /// This process's binary with the hidden `oci-shim` subcommand: `swarm-agent`,
    /// `swarm-manager` and `swarm-bench` all dispatch it first
    /// ([`super::shim::exit_if_invoked`]).
    ///
    /// # Errors
    /// The path of the running binary is unknown.
    pub fn current_exe() -> std::io::Result<Self> {
        Ok(Self {
            program: std::env::current_exe()?,
            args: vec![super::shim::SUBCOMMAND.to_string()],
        })
    }
}

/// Configuration of an [`OciBackend`](super::OciBackend).
#[derive(Debug, Clone)]
pub struct OciConfig {
    /// The agent's state dir: images, bundles and runc state under `oci/`, logs in `logs/`.
    pub state_dir: PathBuf,
    /// The OCI runtime binary (see [`resolve_runtime`]).
    pub runtime: PathBuf,
    /// How to start a shim.
    pub shim: ShimCommand,
    /// SIGTERM → SIGKILL delay of `shutdown` (the task spec has no stop grace period yet;
    /// Docker's default is 10 s).
    pub stop_grace: Duration,
    /// The longest `start` waits for the container to show up in the runtime's state.
    pub start_timeout: Duration,
    /// Size of one task log file before it rotates.
    pub log_max_bytes: u64,
    /// Task log files kept per task.
    pub log_max_files: u32,
}

impl OciConfig {
    /// Defaults: 10 s stop grace, 30 s start timeout, the default log sizes.
    pub fn new(state_dir: PathBuf, runtime: PathBuf, shim: ShimCommand) -> Self {
        Self {
            state_dir,
            runtime,
            shim,
            stop_grace: Duration::from_secs(10),
            start_timeout: Duration::from_secs(30),
            log_max_bytes: DEFAULT_MAX_BYTES,
            log_max_files: DEFAULT_MAX_FILES,
        }
    }
}

/// The runtime binary for `--oci-runtime`: a known name found in `PATH`, or a path.
///
/// # Errors
/// A text for the operator: unknown name, not installed, or not an executable file.
pub fn resolve_runtime(name: &str) -> Result<PathBuf, String> {
    if name.contains('/') {
        let path = Path::new(name);
        return if is_executable(path) {
            Ok(path.to_path_buf())
        } else {
            Err(format!("OCI runtime '{name}' is not an executable file"))
        };
    }
    if !KNOWN_RUNTIMES.contains(&name) {
        return Err(format!(
            "unknown OCI runtime '{name}': use one of {} or a path to the binary",
            KNOWN_RUNTIMES.join(", ")
        ));
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
        .ok_or_else(|| format!("OCI runtime '{name}' is not installed (not found in PATH)"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_resolve_by_name_or_path_and_errors_say_why() {
        assert!(
            resolve_runtime("dockerd")
                .unwrap_err()
                .contains("unknown OCI runtime")
        );
        assert!(
            resolve_runtime("/nonexistent/runc")
                .unwrap_err()
                .contains("not an executable")
        );
        let plain = tempfile::NamedTempFile::new().unwrap();
        let plain = plain.path().to_str().unwrap();
        assert!(
            resolve_runtime(plain)
                .unwrap_err()
                .contains("not an executable")
        );
        // `sh` stands in for an installed runtime given by path.
        assert_eq!(resolve_runtime("/bin/sh"), Ok(PathBuf::from("/bin/sh")));
    }
}
