//! The clap definitions of the `service create` / `service update` flags. Values stay
//! strings here where Docker's syntax needs more than clap offers (sizes, durations,
//! constraints…); [`super::create_spec`] and [`super::update_spec`] parse them so that
//! every error names the flag.

use clap::{Args, ValueEnum};

/// `--runtime`: what kind of workload the service runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum RuntimeArg {
    /// A WebAssembly component or module (ARTIFACT names it)
    #[default]
    Wasm,
    /// An OCI container (ARTIFACT is an image: oci-layout:/DIR[:TAG] on the node, or a
    /// registry reference)
    Oci,
}

/// `--mode`: how many tasks the service runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// `--replicas` tasks (default 1)
    #[default]
    Replicated,
    /// One task on every eligible node
    Global,
    /// Run `--replicas` completions, `--max-concurrent` at a time
    ReplicatedJob,
    /// Run once to completion on every eligible node
    GlobalJob,
}

/// `--restart-condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RestartConditionArg {
    Any,
    OnFailure,
    None,
}

/// `--update-failure-action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UpdateFailureArg {
    Pause,
    Continue,
    Rollback,
}

/// `--rollback-failure-action` (a rollback cannot roll back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RollbackFailureArg {
    Pause,
    Continue,
}

/// `--update-order` / `--rollback-order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrderArg {
    StopFirst,
    StartFirst,
}

/// Flags `service create` and `service update` share: each one, when given, sets one
/// field of the spec.
#[derive(Args, Debug, Clone, Default)]
pub struct SpecFlags {
    /// Working directory inside the workload
    #[arg(long, short = 'w', value_name = "DIR")]
    pub workdir: Option<String>,
    /// Memory limit (e.g. 64MiB, 512m, 1g)
    #[arg(long, value_name = "BYTES")]
    pub limit_memory: Option<String>,
    /// CPU limit (e.g. 0.5)
    #[arg(long, value_name = "CPUS")]
    pub limit_cpu: Option<String>,
    /// Memory reserved on the node (e.g. 32MiB)
    #[arg(long, value_name = "BYTES")]
    pub reserve_memory: Option<String>,
    /// CPUs reserved on the node (e.g. 0.25)
    #[arg(long, value_name = "CPUS")]
    pub reserve_cpu: Option<String>,
    /// Restart when a task exits
    #[arg(long, value_enum, value_name = "CONDITION")]
    pub restart_condition: Option<RestartConditionArg>,
    /// Delay between restart attempts (e.g. 5s, 500ms, 1m30s)
    #[arg(long, value_name = "DURATION")]
    pub restart_delay: Option<String>,
    /// Maximum number of restarts before giving up (0 = unlimited)
    #[arg(long, value_name = "N")]
    pub restart_max_attempts: Option<u64>,
    /// Window used to evaluate the restart policy (e.g. 1m)
    #[arg(long, value_name = "DURATION")]
    pub restart_window: Option<String>,
    /// Maximum number of tasks updated simultaneously (0 = all at once)
    #[arg(long, value_name = "N")]
    pub update_parallelism: Option<u64>,
    /// Delay between updates
    #[arg(long, value_name = "DURATION")]
    pub update_delay: Option<String>,
    /// Action on update failure
    #[arg(long, value_enum, value_name = "ACTION")]
    pub update_failure_action: Option<UpdateFailureArg>,
    /// Duration after each task update to monitor for failure
    #[arg(long, value_name = "DURATION")]
    pub update_monitor: Option<String>,
    /// Failure rate to tolerate during an update (0 to 1)
    #[arg(long, value_name = "RATIO")]
    pub update_max_failure_ratio: Option<String>,
    /// Update order
    #[arg(long, value_enum, value_name = "ORDER")]
    pub update_order: Option<OrderArg>,
    /// Maximum number of tasks rolled back simultaneously (0 = all at once)
    #[arg(long, value_name = "N")]
    pub rollback_parallelism: Option<u64>,
    /// Delay between task rollbacks
    #[arg(long, value_name = "DURATION")]
    pub rollback_delay: Option<String>,
    /// Action on rollback failure
    #[arg(long, value_enum, value_name = "ACTION")]
    pub rollback_failure_action: Option<RollbackFailureArg>,
    /// Duration after each task rollback to monitor for failure
    #[arg(long, value_name = "DURATION")]
    pub rollback_monitor: Option<String>,
    /// Failure rate to tolerate during a rollback (0 to 1)
    #[arg(long, value_name = "RATIO")]
    pub rollback_max_failure_ratio: Option<String>,
    /// Rollback order
    #[arg(long, value_enum, value_name = "ORDER")]
    pub rollback_order: Option<OrderArg>,
    /// Number of job tasks run at once (replicated-job only; default = --replicas)
    #[arg(long, value_name = "N")]
    pub max_concurrent: Option<u64>,
    /// Maximum number of tasks per node (0 = unlimited)
    #[arg(long, visible_alias = "replicas-max-per-node", value_name = "N")]
    pub max_replicas: Option<u64>,
}

/// `service create` flags and positionals.
#[derive(Args, Debug, Clone)]
pub struct CreateFlags {
    /// Service name
    #[arg(long)]
    pub name: Option<String>,
    /// Service mode
    #[arg(long, value_enum, default_value_t)]
    pub mode: ModeArg,
    /// Workload kind: wasm (default) or oci
    #[arg(long, value_enum, default_value_t)]
    pub runtime: RuntimeArg,
    /// Number of tasks (replicated) or of completions (replicated-job)
    #[arg(long, value_name = "N")]
    pub replicas: Option<u64>,
    /// Set an environment variable (KEY=VALUE, or KEY to copy it from here)
    #[arg(long, short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Attach a bind mount (type=bind,source=/host/dir,target=/dir[,readonly])
    #[arg(long, value_name = "MOUNT")]
    pub mount: Vec<String>,
    /// Ulimit, as Docker's NAME=SOFT[:HARD] (WASM tasks support cpu=SECONDS)
    #[arg(long, value_name = "ULIMIT")]
    pub ulimit: Vec<String>,
    /// Placement constraint (e.g. node.role==manager, node.labels.zone!=a)
    #[arg(long, value_name = "EXPR")]
    pub constraint: Vec<String>,
    /// Publish a port through the routing mesh ([PUBLISHED:]TARGET[/tcp])
    #[arg(long, short = 'p', value_name = "PORT")]
    pub publish: Vec<String>,
    /// Service label (KEY=VALUE)
    #[arg(long, short = 'l', value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Mount the container's root filesystem as read only (`--runtime oci`)
    #[arg(long)]
    pub read_only: bool,
    #[command(flatten)]
    pub spec: SpecFlags,
    /// Artifact to run: NAME[:TAG] in the artifact store, or sha256:DIGEST; with
    /// `--runtime oci`, an image (oci-layout:/DIR[:TAG])
    #[arg(value_name = "ARTIFACT")]
    pub artifact: String,
    /// Arguments passed to the workload
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

/// `service update` flags (the service name is a positional of the command).
#[derive(Args, Debug, Clone, Default)]
pub struct UpdateFlags {
    /// Number of tasks (replicated) or of completions (replicated-job)
    #[arg(long, value_name = "N")]
    pub replicas: Option<u64>,
    /// Add or replace an environment variable
    #[arg(long, visible_alias = "env", value_name = "KEY=VALUE")]
    pub env_add: Vec<String>,
    /// Remove an environment variable
    #[arg(long, value_name = "KEY")]
    pub env_rm: Vec<String>,
    /// Add or replace (by target) a bind mount
    #[arg(long, visible_alias = "mount", value_name = "MOUNT")]
    pub mount_add: Vec<String>,
    /// Remove a mount by its target path
    #[arg(long, value_name = "TARGET")]
    pub mount_rm: Vec<String>,
    /// Add or replace a ulimit (NAME=SOFT[:HARD])
    #[arg(long, value_name = "ULIMIT")]
    pub ulimit_add: Vec<String>,
    /// Remove a ulimit by name
    #[arg(long, value_name = "NAME")]
    pub ulimit_rm: Vec<String>,
    /// Add a placement constraint
    #[arg(long, visible_alias = "constraint", value_name = "EXPR")]
    pub constraint_add: Vec<String>,
    /// Remove a placement constraint
    #[arg(long, value_name = "EXPR")]
    pub constraint_rm: Vec<String>,
    /// Add or replace a published port
    #[arg(long, visible_alias = "publish", value_name = "PORT")]
    pub publish_add: Vec<String>,
    /// Remove a published port by its target port (TARGET[/tcp])
    #[arg(long, value_name = "PORT")]
    pub publish_rm: Vec<String>,
    /// Add or replace a service label
    #[arg(long, visible_alias = "label", value_name = "KEY=VALUE")]
    pub label_add: Vec<String>,
    /// Remove a service label
    #[arg(long, value_name = "KEY")]
    pub label_rm: Vec<String>,
    /// New artifact to run
    #[arg(long, visible_alias = "artifact", value_name = "ARTIFACT")]
    pub image: Option<String>,
    /// New workload arguments, one shell-quoted string (e.g. --args "--port 80")
    #[arg(long, allow_hyphen_values = true, value_name = "ARGS")]
    pub args: Option<String>,
    /// Redeploy the tasks even if nothing changed
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub spec: SpecFlags,
}
