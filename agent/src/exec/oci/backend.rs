//! [`OciBackend`]: runs container tasks through an OCI runtime. Owns the image store and
//! the runtime handle its controllers share; describes the node as `linux/<arch>` with the
//! `oci` runtime.

use std::path::PathBuf;
use std::sync::Arc;

use swarm_proto::{NodeDescription, Platform, Resources, Task};

use super::config::OciConfig;
use super::controller::OciController;
use super::images::ImageStore;
use super::runc::Runc;
use super::spec::OciTaskSpec;
use crate::exec::null::total_memory_bytes;
use crate::exec::{Backend, Controller, ExecError};
use crate::tasklog::logs_dir;

/// Runs OCI container tasks. See the module docs of `exec::oci`.
pub struct OciBackend {
    shared: Arc<Shared>,
    resources: Resources,
}

/// What every controller of one backend shares.
pub(crate) struct Shared {
    pub(crate) config: OciConfig,
    pub(crate) runc: Runc,
    pub(crate) images: ImageStore,
    pub(crate) tasks_dir: PathBuf,
    /// Layer blobs pulled from registries (`…/blobs/sha256`).
    pub(crate) blobs_dir: PathBuf,
    /// Image layouts unpacked from tar files, by the tar's sha256.
    pub(crate) layouts_dir: PathBuf,
    pub(crate) logs_dir: PathBuf,
}

impl OciBackend {
    /// A backend on `config.state_dir/oci`. Creates its directories.
    ///
    /// # Errors
    /// The directories cannot be created.
    pub fn new(config: OciConfig) -> std::io::Result<Self> {
        let root = config.state_dir.join("oci");
        for d in ["images", "tasks", "runc"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
        Ok(Self {
            shared: Arc::new(Shared {
                runc: Runc {
                    binary: config.runtime.clone(),
                    root: root.join("runc"),
                },
                images: ImageStore::new(root.join("images")),
                tasks_dir: root.join("tasks"),
                layouts_dir: root.join("layouts"),
                blobs_dir: crate::registry::blobs_dir(&config.state_dir),
                logs_dir: logs_dir(&config.state_dir),
                config,
            }),
            resources: Resources {
                nano_cpus: cpus * 1_000_000_000,
                memory_bytes: total_memory_bytes().unwrap_or(1 << 30),
            },
        })
    }

    /// The `--root` the runtime keeps this backend's containers under.
    pub fn runtime_root(&self) -> PathBuf {
        self.shared.runc.root.clone()
    }
}

impl Backend for OciBackend {
    fn describe(&self) -> NodeDescription {
        NodeDescription {
            platform: Some(Platform {
                os: std::env::consts::OS.to_string(),
                architecture: std::env::consts::ARCH.to_string(),
            }),
            resources: Some(self.resources),
            runtimes: vec!["oci".to_string()],
            ..Default::default()
        }
    }

    fn controller(&self, task: &Task) -> Result<Box<dyn Controller>, ExecError> {
        check_task_id(&task.id)?;
        let spec = OciTaskSpec::from_task(task)?;
        Ok(Box::new(OciController::new(
            Arc::clone(&self.shared),
            task.id.clone(),
            spec,
        )))
    }
}

/// The task id names the container and its dir: `[A-Za-z0-9_.-]{1,64}`, not starting with
/// a dot.
fn check_task_id(id: &str) -> Result<(), ExecError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ExecError::InvalidTask(format!(
            "task id '{id}' cannot name a container"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_that_would_leave_the_tasks_dir_are_refused() {
        assert!(check_task_id("abc123XYZ").is_ok());
        for bad in ["", "..", "../x", "a/b", ".hidden", &"x".repeat(65)] {
            assert!(check_task_id(bad).is_err(), "{bad}");
        }
    }
}
