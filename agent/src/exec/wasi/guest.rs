//! Starting one guest: build its `Store` (WASI context from the [`RunSpec`], memory limiter,
//! CPU governor at every epoch deadline), instantiate the pre-linked artifact, and spawn the
//! run on its own tokio task, metered for CPU time. The task's output is the guest's end,
//! already classified (outcome.rs).

use std::sync::Arc;

use tokio::task::JoinHandle;
use wasmtime::{PoolConcurrencyLimitError, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, ResourceTable, WasiCtxBuilder};

use super::cache::Compiled;
use super::config::WasiLimits;
use super::cpu::{CpuAccount, CpuGovernor, Metered};
use super::engine::WasiEngine;
use super::host::{Host, P2Wasi};
use super::limits::MemoryLimiter;
use super::outcome::{Ended, Evidence, classify};
use super::output::TaskOutput;
use super::spec::RunSpec;
use crate::exec::{ExecError, ExitStatus};
use crate::tasklog::LogStream;

/// Epoch ticks an instantiation may run before it yields. Instantiation is normally far
/// shorter than one tick, but a deadline of one tick would make every start that happens to
/// straddle a tick yield, and a yielded start waits behind every other ready task of the
/// runtime (the p99 of a burst of starts). A start function that loops still yields and is
/// accounted after this many ticks; the run itself gets one tick per slice.
const INSTANTIATE_TICKS: u64 = 20;

/// The guest's run: resolves to how it ended.
pub(crate) type GuestHandle = JoinHandle<Result<ExitStatus, ExecError>>;

/// Checks that every mount source is an existing directory.
///
/// # Errors
/// [`ExecError::NotFound`] naming a missing source, [`ExecError::InvalidTask`] for a file.
pub(crate) fn check_mounts(spec: &RunSpec) -> Result<(), ExecError> {
    for m in &spec.mounts {
        match std::fs::metadata(&m.source) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(ExecError::InvalidTask(format!(
                    "mount source {} is not a directory",
                    m.source.display()
                )));
            }
            Err(e) => {
                return Err(ExecError::NotFound(format!(
                    "mount source {}: {e}",
                    m.source.display()
                )));
            }
        }
    }
    Ok(())
}

/// Instantiates `compiled` for `spec` and starts running it. Returns once it runs.
///
/// # Errors
/// [`ExecError::Temporary`] when the instance pool is full; [`ExecError::NotFound`] for a
/// missing mount source; [`ExecError::Workload`] when the memory limit is below what the
/// guest needs to start; [`ExecError::Runtime`] for other instantiation failures.
pub(crate) async fn start(
    engine: &WasiEngine,
    limits: &WasiLimits,
    compiled: &Compiled,
    spec: &RunSpec,
    output: &TaskOutput,
) -> Result<GuestHandle, ExecError> {
    let wasi = wasi_builder(spec, output)?;
    let account = CpuAccount::new();
    let cpu = CpuGovernor::new(
        Arc::clone(&account),
        spec.nano_cpus,
        limits.cpu_period,
        spec.cpu_limit_secs,
    );
    let memory = MemoryLimiter::new(spec.memory_bytes);
    let output = output.clone();
    match compiled {
        Compiled::Component(pre) => {
            let mut wasi = wasi;
            let host = Host {
                wasi: P2Wasi {
                    ctx: wasi.build(),
                    table: ResourceTable::new(),
                },
                memory,
                cpu,
            };
            let mut store = new_store(engine, host);
            let command = match pre.instantiate_async(&mut store).await {
                Ok(i) => i,
                Err(e) => return Err(instantiate_error(e, store.data().memory.exceeded())),
            };
            store.set_epoch_deadline(1);
            let run = async move {
                let end = match command.wasi_cli_run().call_run(&mut store).await {
                    Ok(result) => Ended::Returned(result.is_ok()),
                    Err(e) => Ended::Failed(e),
                };
                finish(end, store.data().memory.exceeded(), &output)
            };
            Ok(tokio::spawn(Metered::new(run, account)))
        }
        Compiled::Module(pre) => {
            let mut wasi = wasi;
            let host: Host<WasiP1Ctx> = Host {
                wasi: wasi.build_p1(),
                memory,
                cpu,
            };
            let mut store = new_store(engine, host);
            let instance = match pre.instantiate_async(&mut store).await {
                Ok(i) => i,
                Err(e) => return Err(instantiate_error(e, store.data().memory.exceeded())),
            };
            store.set_epoch_deadline(1);
            let start = instance
                .get_typed_func::<(), ()>(&mut store, "_start")
                .map_err(|e| ExecError::InvalidTask(format!("module `_start`: {e:#}")))?;
            let run = async move {
                let end = match start.call_async(&mut store, ()).await {
                    Ok(()) => Ended::Returned(true),
                    Err(e) => Ended::Failed(e),
                };
                finish(end, store.data().memory.exceeded(), &output)
            };
            Ok(tokio::spawn(Metered::new(run, account)))
        }
    }
}

fn new_store<W: Send + 'static>(engine: &WasiEngine, host: Host<W>) -> Store<Host<W>> {
    let mut store = Store::new(&engine.engine, host);
    store.limiter(|h| &mut h.memory);
    store.set_epoch_deadline(INSTANTIATE_TICKS);
    store.epoch_deadline_callback(|mut ctx| ctx.data_mut().cpu.on_epoch());
    store
}

fn finish(
    end: Ended,
    memory: Option<String>,
    output: &TaskOutput,
) -> Result<ExitStatus, ExecError> {
    let last_stderr = output.finish();
    classify(
        end,
        Evidence {
            memory,
            last_stderr,
        },
    )
}

/// argv, env, cwd, stdout/stderr into the task log, mounts as preopens; nothing else of the
/// host (no inherited env, empty stdin, no network).
fn wasi_builder(spec: &RunSpec, output: &TaskOutput) -> Result<WasiCtxBuilder, ExecError> {
    let mut b = WasiCtxBuilder::new();
    b.args(&spec.argv)
        .envs(&spec.env)
        .stdout(output.pipe(LogStream::Stdout))
        .stderr(output.pipe(LogStream::Stderr));
    if let Some(dir) = &spec.workdir {
        b.initial_cwd(dir);
    }
    for m in &spec.mounts {
        let perms = if m.readonly {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        b.preopened_dir(&m.source, &m.target, perms).map_err(|e| {
            ExecError::NotFound(format!("mount source {}: {e:#}", m.source.display()))
        })?;
    }
    Ok(b)
}

fn instantiate_error(e: wasmtime::Error, memory: Option<String>) -> ExecError {
    if let Some(pool) = e.downcast_ref::<PoolConcurrencyLimitError>() {
        return ExecError::Temporary(format!("no room for another WASM instance: {pool}"));
    }
    match memory {
        Some(limit) => ExecError::Workload(format!("{limit} (the guest needs more to start)")),
        None => ExecError::Runtime(format!("instantiate: {e:#}")),
    }
}
