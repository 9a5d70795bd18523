//! `swarmctl service create|ls|inspect|ps|scale|update|rollback|rm`.
//!
//! Commands that change a service (create, update, scale, rollback) then wait for it to
//! converge, as `docker service …` does, unless `-d`; see [`crate::progress`].

use std::io::Write;
use std::path::Path;

use clap::{Args, Subcommand};
use swarm_proto::{
    CreateServiceRequest, GetServiceRequest, ListServicesRequest, ListTasksRequest,
    RemoveServiceRequest, Service, ServiceSpec, UpdateServiceRequest,
};

use crate::client::{self, Client};
use crate::error::CtlError;
use crate::output::{InspectFormat, ListFormat, write_json};
use crate::pretty;

mod table;
use crate::progress::{self, Target, WaitFlags};
use crate::spec::{self, CreateFlags, UpdateFlags};
use crate::task::{self, TaskListFlags};
pub use table::service_table;

/// `swarmctl service …`
#[derive(Subcommand, Debug)]
pub enum ServiceCmd {
    /// Create a new service
    Create(CreateArgs),
    /// List services
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more services
    Inspect(InspectArgs),
    /// List the tasks of one or more services
    Ps(PsArgs),
    /// Scale one or more replicated services (NAME=REPLICAS)
    Scale(ScaleArgs),
    /// Update a service
    Update(UpdateArgs),
    /// Revert a service to its previous spec
    Rollback(RollbackArgs),
    /// Remove one or more services
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Fetch the logs of a service's tasks
    Logs(crate::logs::ServiceLogsArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub wait: WaitFlags,
    #[command(flatten)]
    pub flags: CreateFlags,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// Only display service ids
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Services (id, name or id prefix)
    #[arg(required = true, value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Output format (JSON, the default)
    #[arg(long, value_enum, conflicts_with = "pretty")]
    pub format: Option<InspectFormat>,
    /// Human-readable output
    #[arg(long)]
    pub pretty: bool,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Services (id, name or id prefix)
    #[arg(required = true, value_name = "SERVICE")]
    pub services: Vec<String>,
    #[command(flatten)]
    pub view: TaskListFlags,
}

#[derive(Args, Debug)]
pub struct ScaleArgs {
    /// NAME=REPLICAS pairs
    #[arg(required = true, value_name = "SERVICE=REPLICAS")]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub wait: WaitFlags,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub flags: UpdateFlags,
    /// Roll back to the previous spec
    #[arg(long)]
    pub rollback: bool,
    #[command(flatten)]
    pub wait: WaitFlags,
    /// Service (id, name or id prefix)
    #[arg(value_name = "SERVICE")]
    pub service: String,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub wait: WaitFlags,
    /// Service (id, name or id prefix)
    #[arg(value_name = "SERVICE")]
    pub service: String,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Services (id, name or id prefix)
    #[arg(required = true, value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// Runs a `service` subcommand. Flag values are checked before connecting.
pub async fn run(cmd: ServiceCmd, socket: &Path) -> Result<(), CtlError> {
    let mut out = std::io::stdout().lock();
    match cmd {
        ServiceCmd::Create(mut a) => {
            // Checks the flags before a local file is pushed.
            spec::create_spec(&a.flags, &|k| std::env::var(k).ok())?;
            // An OCI image is resolved on the node; only WASM artifacts are pushed.
            if a.flags.runtime == spec::RuntimeArg::Wasm {
                a.flags.artifact =
                    crate::artifact::resolve_local(socket, &a.flags.artifact).await?;
            }
            let spec = spec::create_spec(&a.flags, &|k| std::env::var(k).ok())?;
            let timeout = a.wait.timeout()?;
            let mut c = client::connect(socket).await?;
            let svc = c
                .create_service(CreateServiceRequest { spec: Some(spec) })
                .await?
                .into_inner()
                .service
                .ok_or_else(|| CtlError::Failed("the manager returned no service".into()))?;
            writeln!(out, "{}", svc.id)?;
            out.flush()?;
            if !a.wait.detach {
                let target = Target {
                    service: svc.id.clone(),
                    name: service_name(&svc).unwrap_or(&svc.id).to_owned(),
                    min_spec_version: 0,
                };
                progress::wait(&mut c, &target, timeout, a.wait.quiet).await?;
            }
            Ok(())
        }
        ServiceCmd::Ls(a) => {
            let mut c = client::connect(socket).await?;
            let mut services = c
                .list_services(ListServicesRequest {})
                .await?
                .into_inner()
                .services;
            services.sort_by(|a, b| service_name(a).cmp(&service_name(b)).then(a.id.cmp(&b.id)));
            if a.format == ListFormat::Json {
                return Ok(write_json(&mut out, &services)?);
            }
            if a.quiet {
                for s in &services {
                    writeln!(out, "{}", s.id)?;
                }
                return Ok(());
            }
            let tasks = c
                .list_tasks(ListTasksRequest::default())
                .await?
                .into_inner()
                .tasks;
            Ok(out.write_all(service_table(&services, &tasks).render().as_bytes())?)
        }
        ServiceCmd::Inspect(a) => {
            let mut c = client::connect(socket).await?;
            let mut found = Vec::new();
            let mut missing = Vec::new();
            for name in &a.services {
                match get(&mut c, name).await {
                    Ok(s) => found.push(s),
                    Err(e) => missing.push(e.to_string()),
                }
            }
            if a.pretty {
                let texts: Vec<String> = found.iter().map(pretty::service).collect();
                write!(out, "{}", texts.join("\n"))?;
            } else {
                write_json(&mut out, &found)?;
            }
            failed_if_any(missing)
        }
        ServiceCmd::Ps(a) => {
            let mut c = client::connect(socket).await?;
            let mut tasks = Vec::new();
            for name in &a.services {
                let id = task::resolve_service(&mut c, name).await?;
                let req = ListTasksRequest {
                    service_id: id,
                    node_id: String::new(),
                };
                tasks.extend(c.list_tasks(req).await?.into_inner().tasks);
            }
            task::print_tasks(&mut c, &mut out, &tasks, &a.view).await
        }
        ServiceCmd::Scale(a) => {
            let targets = a
                .targets
                .iter()
                .map(|t| parse_scale(t))
                .collect::<Result<Vec<_>, _>>()?;
            let timeout = a.wait.timeout()?;
            let mut c = client::connect(socket).await?;
            let mut errors = Vec::new();
            let mut scaled = Vec::new();
            for (name, replicas) in targets {
                match scale(&mut c, &name, replicas).await {
                    Ok(id) => {
                        writeln!(out, "{name} scaled to {replicas}")?;
                        scaled.push(Target {
                            service: id,
                            name,
                            min_spec_version: 0,
                        });
                    }
                    Err(e) => errors.push(format!("{name}: {e}")),
                }
            }
            out.flush()?;
            if !a.wait.detach {
                for t in &scaled {
                    if let Err(e) = progress::wait(&mut c, t, timeout, a.wait.quiet).await {
                        errors.push(e.to_string());
                    }
                }
            }
            failed_if_any(errors)
        }
        ServiceCmd::Update(mut a) => {
            let timeout = a.wait.timeout()?;
            if let Some(image) = a.flags.image.take() {
                a.flags.image = Some(crate::artifact::resolve_local(socket, &image).await?);
            }
            let mut c = client::connect(socket).await?;
            let svc = get(&mut c, &a.service).await?;
            let current = svc.spec.clone().unwrap_or_default();
            let new = spec::update_spec(&current, &a.flags, &|k| std::env::var(k).ok())?;
            if a.rollback && new != current {
                return Err(CtlError::Usage(
                    "--rollback cannot be combined with flags that change the service".into(),
                ));
            }
            let expected_task = if a.rollback {
                previous_task(&svc, &a.service)?
            } else {
                new.task.clone()
            };
            update(
                &mut c,
                &mut out,
                &svc,
                new,
                a.rollback,
                expected_task,
                &a.service,
                &a.wait,
                timeout,
            )
            .await
        }
        ServiceCmd::Rollback(a) => {
            let timeout = a.wait.timeout()?;
            let mut c = client::connect(socket).await?;
            let svc = get(&mut c, &a.service).await?;
            let expected_task = previous_task(&svc, &a.service)?;
            let current = svc.spec.clone().unwrap_or_default();
            update(
                &mut c,
                &mut out,
                &svc,
                current,
                true,
                expected_task,
                &a.service,
                &a.wait,
                timeout,
            )
            .await
        }
        ServiceCmd::Logs(a) => {
            // Log lines take the lock line by line (stdout and stderr interleave).
            drop(out);
            crate::logs::service(a, socket).await
        }
        ServiceCmd::Rm(a) => {
            let mut c = client::connect(socket).await?;
            let mut errors = Vec::new();
            for name in &a.services {
                let req = RemoveServiceRequest {
                    service_id: name.clone(),
                };
                match c.remove_service(req).await {
                    Ok(_) => writeln!(out, "{name}")?,
                    Err(s) => errors.push(CtlError::from(s).to_string()),
                }
            }
            failed_if_any(errors)
        }
    }
}

/// Sends an update (or rollback), prints the service as named, and waits.
#[allow(clippy::too_many_arguments)]
async fn update(
    c: &mut Client,
    out: &mut dyn Write,
    svc: &Service,
    spec: ServiceSpec,
    rollback: bool,
    expected_task: Option<swarm_proto::TaskSpec>,
    name: &str,
    wait: &WaitFlags,
    timeout: std::time::Duration,
) -> Result<(), CtlError> {
    let updated = c
        .update_service(UpdateServiceRequest {
            service_id: svc.id.clone(),
            service_version: svc.meta.map_or(0, |m| m.version),
            spec: Some(spec),
            rollback,
        })
        .await?
        .into_inner()
        .service;
    writeln!(out, "{name}")?;
    out.flush()?;
    if wait.detach {
        return Ok(());
    }
    let old_task = svc.spec.as_ref().and_then(|s| s.task.clone());
    // Tasks must be recreated only when the task spec changed; then only tasks created
    // from the new version count.
    let min_spec_version = if expected_task != old_task {
        updated
            .as_ref()
            .and_then(|s| s.meta)
            .map_or(0, |m| m.version)
    } else {
        0
    };
    let target = Target {
        service: svc.id.clone(),
        name: name.to_owned(),
        min_spec_version,
    };
    progress::wait(c, &target, timeout, wait.quiet).await
}

/// The task spec a rollback returns to, or an error when there is nothing to roll back to.
fn previous_task(svc: &Service, name: &str) -> Result<Option<swarm_proto::TaskSpec>, CtlError> {
    match &svc.previous_spec {
        Some(p) => Ok(p.task.clone()),
        None => Err(CtlError::Failed(format!(
            "service {name} does not have a previous spec to roll back to"
        ))),
    }
}

/// Reads a service, sets its replica count, and updates it; returns its id.
async fn scale(c: &mut Client, name: &str, replicas: u64) -> Result<String, CtlError> {
    let svc = get(c, name).await?;
    let mut spec = svc.spec.clone().unwrap_or_default();
    if !spec::set_replicas(&mut spec, replicas) {
        return Err(CtlError::Failed(
            "scale can only be used with replicated or replicated-job mode".into(),
        ));
    }
    c.update_service(UpdateServiceRequest {
        service_id: svc.id.clone(),
        service_version: svc.meta.map_or(0, |m| m.version),
        spec: Some(spec),
        rollback: false,
    })
    .await?;
    Ok(svc.id)
}

/// Parses `NAME=REPLICAS`.
fn parse_scale(arg: &str) -> Result<(String, u64), CtlError> {
    let bad = || {
        CtlError::Usage(format!(
            "invalid scale specifier \"{arg}\": expected SERVICE=REPLICAS, as in web=5"
        ))
    };
    let (name, n) = arg.split_once('=').ok_or_else(bad)?;
    if name.is_empty() {
        return Err(bad());
    }
    let n = n.parse::<u64>().map_err(|_| {
        CtlError::Usage(format!(
            "invalid replicas value for service {name}: \"{n}\" is not a number"
        ))
    })?;
    Ok((name.to_owned(), n))
}

async fn get(c: &mut Client, name: &str) -> Result<Service, CtlError> {
    c.get_service(GetServiceRequest {
        service_id: name.to_owned(),
    })
    .await?
    .into_inner()
    .service
    .ok_or_else(|| CtlError::Failed(format!("service {name} not found")))
}

fn failed_if_any(errors: Vec<String>) -> Result<(), CtlError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CtlError::Failed(errors.join("\nerror: ")))
    }
}

fn service_name(s: &Service) -> Option<&str> {
    s.spec
        .as_ref()
        .and_then(|s| s.annotations.as_ref())
        .map(|a| a.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_specifiers() {
        assert_eq!(parse_scale("web=5").unwrap(), ("web".to_string(), 5));
        let e = parse_scale("web").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            "invalid scale specifier \"web\": expected SERVICE=REPLICAS, as in web=5"
        );
        assert!(
            parse_scale("web=x")
                .unwrap_err()
                .to_string()
                .contains("\"x\" is not a number")
        );
        assert!(parse_scale("=3").is_err());
    }
}
