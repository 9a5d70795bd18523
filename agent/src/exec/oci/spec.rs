//! [`OciTaskSpec`]: a task's `OciRuntime` and resource limits, validated once when the
//! controller is made (pure, no I/O), in the form the bundle builder needs.
//!
//! Rules: `env` entries are `KEY=VALUE` with a non-empty key; `workdir` and mount targets are
//! absolute container paths; mount sources are absolute host paths (their existence is checked
//! in `prepare`); ulimits are Docker's `--ulimit` names (`nofile`, `nproc`, `core`, `cpu`, …)
//! with soft ≤ hard (-1 = unlimited); limits are non-negative.

use std::path::PathBuf;

use swarm_proto::task_spec::Runtime;
use swarm_proto::{OciRuntime, Task};

use super::reference::ImageRef;
use crate::exec::ExecError;

/// A host directory bind-mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BindMount {
    pub(crate) source: PathBuf,
    pub(crate) target: String,
    pub(crate) readonly: bool,
}

/// One `--ulimit`: the RLIMIT name runc wants (`RLIMIT_NOFILE`) and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rlimit {
    pub(crate) name: &'static str,
    pub(crate) soft: u64,
    pub(crate) hard: u64,
}

/// Everything needed to build one task's bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OciTaskSpec {
    pub(crate) image: ImageRef,
    /// The task's args: they replace the image's `Cmd` (Docker's `IMAGE ARGS...`).
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) workdir: Option<String>,
    pub(crate) mounts: Vec<BindMount>,
    pub(crate) rlimits: Vec<Rlimit>,
    /// Bytes; 0 = unlimited.
    pub(crate) memory_bytes: i64,
    /// Billionths of a CPU; 0 = unlimited.
    pub(crate) nano_cpus: i64,
    /// The root filesystem is mounted read-only.
    pub(crate) read_only: bool,
}

impl OciTaskSpec {
    /// Validates `task` for the OCI backend.
    ///
    /// # Errors
    /// [`ExecError::InvalidTask`] naming the offending field.
    pub(crate) fn from_task(task: &Task) -> Result<Self, ExecError> {
        let spec = task.spec.as_ref();
        let oci: &OciRuntime = match spec.and_then(|s| s.runtime.as_ref()) {
            Some(Runtime::Oci(o)) => o,
            Some(Runtime::Wasm(_)) => {
                return Err(invalid("the OCI backend runs containers, not WASM tasks"));
            }
            None => return Err(invalid("task spec has no runtime")),
        };
        let limits = spec
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.limits.as_ref());
        let memory_bytes = limits.map_or(0, |l| l.memory_bytes);
        let nano_cpus = limits.map_or(0, |l| l.nano_cpus);
        if memory_bytes < 0 {
            return Err(invalid(format!("memory limit {memory_bytes} is negative")));
        }
        if nano_cpus < 0 {
            return Err(invalid(format!(
                "cpu limit {nano_cpus} nano-CPUs is negative"
            )));
        }
        Ok(Self {
            read_only: oci.read_only,
            image: ImageRef::parse(&oci.image).map_err(invalid)?,
            args: oci.args.clone(),
            env: oci
                .env
                .iter()
                .map(|e| parse_env(e))
                .collect::<Result<_, _>>()?,
            workdir: match oci.workdir.as_str() {
                "" => None,
                w if w.starts_with('/') => Some(w.to_string()),
                w => return Err(invalid(format!("workdir '{w}' must be an absolute path"))),
            },
            mounts: oci
                .mounts
                .iter()
                .map(|m| {
                    if !m.source.starts_with('/') {
                        return Err(invalid(format!(
                            "mount source '{}' must be an absolute host path",
                            m.source
                        )));
                    }
                    if !m.target.starts_with('/') || m.target.split('/').any(|c| c == "..") {
                        return Err(invalid(format!(
                            "mount target '{}' must be an absolute container path without '..'",
                            m.target
                        )));
                    }
                    Ok(BindMount {
                        source: PathBuf::from(&m.source),
                        target: m.target.clone(),
                        readonly: m.readonly,
                    })
                })
                .collect::<Result<_, _>>()?,
            rlimits: oci
                .ulimits
                .iter()
                .map(|u| rlimit(&u.name, u.soft, u.hard))
                .collect::<Result<_, _>>()?,
            memory_bytes,
            nano_cpus,
        })
    }
}

fn invalid(msg: impl Into<String>) -> ExecError {
    ExecError::InvalidTask(msg.into())
}

/// `KEY=VALUE` → (KEY, VALUE).
pub(crate) fn parse_env(e: &str) -> Result<(String, String), ExecError> {
    match e.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains('\0') && !v.contains('\0') => {
            Ok((k.to_string(), v.to_string()))
        }
        _ => Err(invalid(format!("env entry '{e}' is not KEY=VALUE"))),
    }
}

/// Docker's `--ulimit` names and the RLIMIT each sets.
const RLIMITS: [(&str, &str); 15] = [
    ("as", "RLIMIT_AS"),
    ("core", "RLIMIT_CORE"),
    ("cpu", "RLIMIT_CPU"),
    ("data", "RLIMIT_DATA"),
    ("fsize", "RLIMIT_FSIZE"),
    ("locks", "RLIMIT_LOCKS"),
    ("memlock", "RLIMIT_MEMLOCK"),
    ("msgqueue", "RLIMIT_MSGQUEUE"),
    ("nice", "RLIMIT_NICE"),
    ("nofile", "RLIMIT_NOFILE"),
    ("nproc", "RLIMIT_NPROC"),
    ("rss", "RLIMIT_RSS"),
    ("rtprio", "RLIMIT_RTPRIO"),
    ("rttime", "RLIMIT_RTTIME"),
    ("sigpending", "RLIMIT_SIGPENDING"),
];

fn rlimit(name: &str, soft: i64, hard: i64) -> Result<Rlimit, ExecError> {
    let (_, rl) = RLIMITS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
        let names: Vec<&str> = RLIMITS.iter().map(|(n, _)| *n).collect();
        invalid(format!(
            "unknown ulimit '{name}' (known: {})",
            names.join(", ")
        ))
    })?;
    let value = |v: i64| -> Result<u64, ExecError> {
        match v {
            -1 => Ok(u64::MAX),
            v if v >= 0 => Ok(v as u64),
            v => Err(invalid(format!("ulimit {name}: value {v} is negative"))),
        }
    };
    let (soft, hard) = (value(soft)?, value(hard)?);
    if soft > hard {
        return Err(invalid(format!(
            "ulimit {name}: soft limit is above the hard limit"
        )));
    }
    Ok(Rlimit {
        name: rl,
        soft,
        hard,
    })
}

#[cfg(test)]
mod tests {
    use swarm_proto::{Mount, ResourceRequirements, Resources, TaskSpec, Ulimit, WasmRuntime};

    use super::*;

    fn task(oci: OciRuntime) -> Task {
        Task {
            id: "t1".into(),
            spec: Some(TaskSpec {
                runtime: Some(Runtime::Oci(oci)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn base() -> OciRuntime {
        OciRuntime {
            image: "oci-layout:/srv/busybox".into(),
            ..Default::default()
        }
    }

    fn err(oci: OciRuntime) -> String {
        OciTaskSpec::from_task(&task(oci)).unwrap_err().to_string()
    }

    #[test]
    fn a_full_spec_is_validated_into_bundle_inputs() {
        let mut t = task(OciRuntime {
            args: vec!["sh".into(), "-c".into(), "true".into()],
            env: vec!["A=1".into(), "B=x=y".into()],
            workdir: "/tmp".into(),
            mounts: vec![Mount {
                source: "/srv/data".into(),
                target: "/data".into(),
                readonly: true,
            }],
            ulimits: vec![Ulimit {
                name: "nofile".into(),
                soft: 100,
                hard: -1,
            }],
            ..base()
        });
        t.spec.as_mut().unwrap().resources = Some(ResourceRequirements {
            limits: Some(Resources {
                nano_cpus: 500_000_000,
                memory_bytes: 64 << 20,
            }),
            reservations: None,
        });
        let s = OciTaskSpec::from_task(&t).unwrap();
        assert_eq!(s.env[1], ("B".into(), "x=y".into()));
        assert_eq!(s.workdir.as_deref(), Some("/tmp"));
        assert!(s.mounts[0].readonly);
        assert_eq!(
            s.rlimits,
            vec![Rlimit {
                name: "RLIMIT_NOFILE",
                soft: 100,
                hard: u64::MAX
            }]
        );
        assert_eq!((s.memory_bytes, s.nano_cpus), (64 << 20, 500_000_000));
    }

    #[test]
    fn every_bad_field_is_named() {
        let wasm = Task {
            spec: Some(TaskSpec {
                runtime: Some(Runtime::Wasm(WasmRuntime::default())),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(
            OciTaskSpec::from_task(&wasm)
                .unwrap_err()
                .to_string()
                .contains("not WASM tasks")
        );
        assert!(
            err(OciRuntime {
                image: "nope".into(),
                ..base()
            })
            .contains("image 'nope'")
        );
        assert!(
            err(OciRuntime {
                env: vec!["=x".into()],
                ..base()
            })
            .contains("KEY=VALUE")
        );
        assert!(
            err(OciRuntime {
                workdir: "rel".into(),
                ..base()
            })
            .contains("workdir")
        );
        let mount = |s: &str, t: &str| Mount {
            source: s.into(),
            target: t.into(),
            readonly: false,
        };
        assert!(
            err(OciRuntime {
                mounts: vec![mount("rel", "/d")],
                ..base()
            })
            .contains("mount source")
        );
        assert!(
            err(OciRuntime {
                mounts: vec![mount("/s", "/d/../..")],
                ..base()
            })
            .contains("mount target")
        );
        let ulimit = |n: &str, s, h| Ulimit {
            name: n.into(),
            soft: s,
            hard: h,
        };
        assert!(
            err(OciRuntime {
                ulimits: vec![ulimit("files", 1, 1)],
                ..base()
            })
            .contains("unknown ulimit 'files'")
        );
        assert!(
            err(OciRuntime {
                ulimits: vec![ulimit("nofile", 9, 1)],
                ..base()
            })
            .contains("soft limit is above")
        );
        assert!(
            err(OciRuntime {
                ulimits: vec![ulimit("nofile", -5, 1)],
                ..base()
            })
            .contains("negative")
        );
    }
}
