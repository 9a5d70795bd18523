//! The bundle's `config.json`: an [`oci_spec::runtime::Spec`] built from the task spec and
//! the image config (pure; `bundle.rs` writes it).
//!
//! Docker's rules, so an image behaves as under `docker run`:
//! - **args**: `Entrypoint` + (task args if any, else `Cmd`); empty → the task is rejected;
//! - **env**: the image's `Env`, then the task's, a task key replacing the image's;
//! - **cwd**: task workdir, else the image's `WorkingDir`, else `/`;
//! - **user**: the image's `User` (`uid[:gid]` or a name looked up in the rootfs'
//!   `/etc/passwd` and `/etc/group`), else root;
//! - **capabilities**: Docker's default set (below), none inheritable or ambient;
//!   `noNewPrivileges` on; runc's default masked and read-only paths;
//! - **namespaces**: new pid, ipc, uts, mount and **network** namespaces: the container
//!   sees only its own loopback (runc brings `lo` up). Published ports and the routing
//!   mesh for containers are a later issue.
//! - **limits**: `resources.limits.memory_bytes` → memory cgroup limit; `nano_cpus` →
//!   CFS quota over a 100 ms period; ulimits → rlimits (`nofile` defaults to 1024:1024).
//! - **mounts**: runc's defaults (`/proc`, `/dev`, `/dev/pts`, `/dev/shm`, `/dev/mqueue`,
//!   `/sys` read-only) plus the task's bind mounts (`rbind`, `rprivate`, `ro` if readonly).
//!   The rootfs is the task's private copy, writable (there is no read-only-rootfs field
//!   in the task spec yet).

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
    LinuxMemoryBuilder, MountBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
    ProcessBuilder, RootBuilder, Spec, UserBuilder,
};

use super::spec::OciTaskSpec;
use crate::exec::ExecError;

/// Docker's default capabilities (moby `oci/caps/defaults.go`).
pub(crate) const DOCKER_CAPS: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// The CFS period a CPU limit is expressed over (Docker's default).
const CPU_PERIOD_US: u64 = 100_000;

/// Files of the rootfs that name users and groups (read by the caller; may be empty).
#[derive(Debug, Clone, Default)]
pub(crate) struct Accounts {
    pub(crate) passwd: String,
    pub(crate) group: String,
}

/// The runtime spec for one task.
///
/// # Errors
/// [`ExecError::InvalidTask`] when there is no command, the user is unknown, or a value does
/// not fit the spec.
pub(crate) fn build(
    task: &OciTaskSpec,
    image: &ImageConfiguration,
    hostname: &str,
    accounts: &Accounts,
) -> Result<Spec, ExecError> {
    let cfg = image.config().clone().unwrap_or_default();
    let args = merge_args(
        cfg.entrypoint().as_deref().unwrap_or_default(),
        cfg.cmd().as_deref().unwrap_or_default(),
        &task.args,
    )?;
    let env = merge_env(cfg.env().as_deref().unwrap_or_default(), &task.env);
    let cwd = task
        .workdir
        .clone()
        .or_else(|| cfg.working_dir().clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".to_string());
    let (uid, gid) = resolve_user(cfg.user().as_deref().unwrap_or_default(), accounts)?;

    let caps: Capabilities = DOCKER_CAPS.into_iter().collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()
        .map_err(spec_err)?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(uid)
                .gid(gid)
                .build()
                .map_err(spec_err)?,
        )
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(capabilities)
        .no_new_privileges(true)
        .rlimits(rlimits(task)?)
        .build()
        .map_err(spec_err)?;

    let mut spec = Spec::default();
    spec.set_hostname(Some(hostname.to_string()));
    spec.set_process(Some(process));
    spec.set_root(Some(
        RootBuilder::default()
            .path("rootfs")
            .readonly(task.read_only)
            .build()
            .map_err(spec_err)?,
    ));
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for m in &task.mounts {
        let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
        if m.readonly {
            options.push("ro".to_string());
        }
        mounts.push(
            MountBuilder::default()
                .destination(&m.target)
                .typ("bind")
                .source(&m.source)
                .options(options)
                .build()
                .map_err(spec_err)?,
        );
    }
    spec.set_mounts(Some(mounts));

    let linux = spec.linux_mut().get_or_insert_with(Default::default);
    let resources = linux.resources_mut().get_or_insert_with(Default::default);
    resources.set_devices(Some(vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .map_err(spec_err)?,
    ]));
    if task.memory_bytes > 0 {
        resources.set_memory(Some(
            LinuxMemoryBuilder::default()
                .limit(task.memory_bytes)
                .build()
                .map_err(spec_err)?,
        ));
    }
    if task.nano_cpus > 0 {
        let quota = (i128::from(task.nano_cpus) * i128::from(CPU_PERIOD_US) / 1_000_000_000)
            .max(1000) as i64;
        resources.set_cpu(Some(
            LinuxCpuBuilder::default()
                .quota(quota)
                .period(CPU_PERIOD_US)
                .build()
                .map_err(spec_err)?,
        ));
    }
    Ok(spec)
}

/// Docker's merge: `Entrypoint` + (task args, else `Cmd`).
pub(crate) fn merge_args(
    entrypoint: &[String],
    cmd: &[String],
    task_args: &[String],
) -> Result<Vec<String>, ExecError> {
    let tail = if task_args.is_empty() { cmd } else { task_args };
    let args: Vec<String> = entrypoint.iter().chain(tail).cloned().collect();
    if args.is_empty() || args[0].is_empty() {
        return Err(ExecError::InvalidTask(
            "no command: the image has no Entrypoint or Cmd and the task gives no args".into(),
        ));
    }
    Ok(args)
}

/// The image's env, then the task's; a task key replaces the image's value in place.
pub(crate) fn merge_env(image: &[String], task: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = image.to_vec();
    for (k, v) in task {
        let entry = format!("{k}={v}");
        match out
            .iter_mut()
            .find(|e| e.split_once('=').is_some_and(|(ek, _)| ek == k))
        {
            Some(slot) => *slot = entry,
            None => out.push(entry),
        }
    }
    out
}

/// `""` → root; `uid[:gid]`, `name[:group]` looked up in the rootfs' files.
pub(crate) fn resolve_user(user: &str, accounts: &Accounts) -> Result<(u32, u32), ExecError> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let lookup = |file: &str, name: &str, field: usize| -> Option<u32> {
        file.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name))
            .and_then(|f| f.get(field)?.parse().ok())
    };
    let unknown = |what: &str, name: &str| {
        ExecError::InvalidTask(format!(
            "the image's user '{user}': {what} '{name}' is not in the image's /etc/{}",
            if what == "user" { "passwd" } else { "group" }
        ))
    };
    let uid = match u.parse::<u32>() {
        Ok(n) => n,
        Err(_) => lookup(&accounts.passwd, u, 2).ok_or_else(|| unknown("user", u))?,
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(&accounts.group, g, 2).ok_or_else(|| unknown("group", g))?,
        },
        // The user's primary group from passwd, else the uid's own number (Docker uses 0
        // when the user is not in passwd; we do the same).
        None => lookup_gid_by_uid(&accounts.passwd, uid).unwrap_or(0),
    };
    Ok((uid, gid))
}

fn lookup_gid_by_uid(passwd: &str, uid: u32) -> Option<u32> {
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.get(2).and_then(|s| s.parse::<u32>().ok()) == Some(uid))
        .and_then(|f| f.get(3)?.parse().ok())
}

fn rlimits(task: &OciTaskSpec) -> Result<Vec<PosixRlimit>, ExecError> {
    let mut out = Vec::new();
    if !task.rlimits.iter().any(|r| r.name == "RLIMIT_NOFILE") {
        out.push(rlimit("RLIMIT_NOFILE", 1024, 1024)?);
    }
    for r in &task.rlimits {
        out.push(rlimit(r.name, r.soft, r.hard)?);
    }
    Ok(out)
}

fn rlimit(name: &str, soft: u64, hard: u64) -> Result<PosixRlimit, ExecError> {
    let typ: PosixRlimitType = serde_json::from_value(serde_json::Value::String(name.into()))
        .map_err(|e| ExecError::InvalidTask(format!("ulimit {name}: {e}")))?;
    PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft)
        .hard(hard)
        .build()
        .map_err(spec_err)
}

fn spec_err(e: impl std::fmt::Display) -> ExecError {
    ExecError::InvalidTask(format!("cannot build the container's config.json: {e}"))
}

#[cfg(test)]
mod tests {
    use oci_spec::image::{ConfigBuilder, ImageConfigurationBuilder};
    use oci_spec::runtime::LinuxNamespaceType;

    use super::*;
    use crate::exec::oci::spec::{BindMount, Rlimit};

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn task() -> OciTaskSpec {
        OciTaskSpec {
            image: crate::exec::oci::reference::ImageRef::Registry("localhost:5000/b".into()),
            args: vec![],
            env: vec![("B".into(), "task".into()), ("C".into(), "3".into())],
            workdir: None,
            mounts: vec![BindMount {
                source: "/srv/data".into(),
                target: "/data".into(),
                readonly: true,
            }],
            rlimits: vec![Rlimit {
                name: "RLIMIT_NPROC",
                soft: 10,
                hard: 20,
            }],
            memory_bytes: 64 << 20,
            nano_cpus: 500_000_000,
            read_only: false,
        }
    }

    fn image(user: &str) -> ImageConfiguration {
        ImageConfigurationBuilder::default()
            .config(
                ConfigBuilder::default()
                    .entrypoint(s(&["/bin/sh", "-c"]))
                    .cmd(s(&["echo hi"]))
                    .env(s(&["PATH=/bin", "B=image"]))
                    .working_dir("/work")
                    .user(user)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn args_env_and_cwd_merge_like_docker() {
        assert_eq!(
            merge_args(&s(&["/e"]), &s(&["c1"]), &[]).unwrap(),
            s(&["/e", "c1"])
        );
        assert_eq!(
            merge_args(&s(&["/e"]), &s(&["c1"]), &s(&["a1", "a2"])).unwrap(),
            s(&["/e", "a1", "a2"])
        );
        assert_eq!(
            merge_args(&[], &s(&["c1"]), &s(&["a1"])).unwrap(),
            s(&["a1"])
        );
        assert!(
            merge_args(&[], &[], &[])
                .unwrap_err()
                .to_string()
                .contains("no command")
        );
        assert_eq!(
            merge_env(&s(&["PATH=/bin", "B=image"]), &[("B".into(), "t".into())]),
            s(&["PATH=/bin", "B=t"])
        );
    }

    #[test]
    fn users_resolve_by_number_or_name() {
        let acc = Accounts {
            passwd: "root:x:0:0::/:/bin/sh\napp:x:1000:1001::/:/bin/sh\n".into(),
            group: "root:x:0:\nstaff:x:50:\n".into(),
        };
        assert_eq!(resolve_user("", &acc).unwrap(), (0, 0));
        assert_eq!(resolve_user("app", &acc).unwrap(), (1000, 1001));
        assert_eq!(resolve_user("1000", &acc).unwrap(), (1000, 1001));
        assert_eq!(resolve_user("app:staff", &acc).unwrap(), (1000, 50));
        assert_eq!(resolve_user("7:8", &acc).unwrap(), (7, 8));
        assert!(
            resolve_user("ghost", &acc)
                .unwrap_err()
                .to_string()
                .contains("'ghost'")
        );
        assert!(resolve_user("app:nogrp", &acc).is_err());
    }

    #[test]
    fn the_spec_carries_the_task_and_docker_defaults() {
        let spec = build(&task(), &image("1000"), "abc", &Accounts::default()).unwrap();
        let p = spec.process().as_ref().unwrap();
        assert_eq!(
            p.args().as_ref().unwrap(),
            &s(&["/bin/sh", "-c", "echo hi"])
        );
        assert_eq!(
            p.env().as_ref().unwrap(),
            &s(&["PATH=/bin", "B=task", "C=3"])
        );
        assert_eq!(p.cwd(), &std::path::PathBuf::from("/work"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 0));
        assert_eq!(p.no_new_privileges(), Some(true));
        let caps = p.capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 14);
        assert!(
            !caps
                .bounding()
                .as_ref()
                .unwrap()
                .contains(&Capability::SysAdmin)
        );
        assert!(caps.ambient().as_ref().unwrap().is_empty());
        let rl = p.rlimits().as_ref().unwrap();
        assert_eq!(rl.len(), 2, "default nofile + the task's nproc");
        let linux = spec.linux().as_ref().unwrap();
        let ns: Vec<_> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        assert!(
            ns.contains(&LinuxNamespaceType::Network),
            "own network namespace"
        );
        let res = linux.resources().as_ref().unwrap();
        assert_eq!(res.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(50_000));
        let bind = spec.mounts().as_ref().unwrap().last().unwrap().clone();
        assert_eq!(bind.destination(), &std::path::PathBuf::from("/data"));
        assert!(bind.options().as_ref().unwrap().contains(&"ro".to_string()));
        assert_eq!(spec.hostname().as_deref(), Some("abc"));
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(false));
    }

    #[test]
    fn read_only_mounts_the_root_read_only() {
        let t = OciTaskSpec {
            read_only: true,
            ..task()
        };
        let spec = build(&t, &image("0"), "abc", &Accounts::default()).unwrap();
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    }
}
