//! Runs one guest in real wasmtime + wasmtime-wasi (synchronously, one `Engine` per run so
//! that one run's epoch deadline never interrupts another test's guest), capturing its output.
//!
//! Every run has a deadline: a watchdog thread bumps the engine's epoch after
//! [`Options::deadline`], which traps a guest that is still running with `Trap::Interrupt`.

use std::sync::mpsc;
use std::time::Duration;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Module, Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// How a guest ended.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// It returned or called exit with this status (`wasi:cli/run` returning `err` is 1).
    Exit(i32),
    /// It trapped.
    Trap(Trap),
}

/// What a run produced.
#[derive(Debug)]
pub struct Run {
    pub outcome: Outcome,
    pub stdout: String,
    pub stderr: String,
}

/// Per-run settings.
pub struct Options {
    /// argv[1..]; argv[0] is the guest's name.
    pub args: Vec<String>,
    /// Trap the guest with `Trap::Interrupt` if it is still running after this long.
    pub deadline: Duration,
    /// Cap on the guest's linear memory.
    pub max_memory: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            args: Vec::new(),
            deadline: Duration::from_secs(20),
            max_memory: 256 << 20,
        }
    }
}

struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Runs the wasip2 component at `path` with `opts`; `configure` adds env vars and preopens.
pub fn run_component(
    path: &str,
    opts: Options,
    configure: impl FnOnce(&mut WasiCtxBuilder),
) -> Run {
    let engine = engine();
    let component = Component::from_file(&engine, path)
        .unwrap_or_else(|e| panic!("cannot compile {path}: {e:?}"));
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi links");
    let (stdout, stderr) = (
        MemoryOutputPipe::new(1 << 20),
        MemoryOutputPipe::new(1 << 20),
    );
    let mut builder = WasiCtxBuilder::new();
    builder
        .args(&argv(path, &opts.args))
        .stdout(stdout.clone())
        .stderr(stderr.clone());
    configure(&mut builder);
    let host = Host {
        wasi: builder.build(),
        table: ResourceTable::new(),
        limits: limits(&opts),
    };
    let mut store = Store::new(&engine, host);
    store.limiter(|host| &mut host.limits);
    let result = with_deadline(&engine, &mut store, opts.deadline, |store| {
        let command = Command::instantiate(&mut *store, &component, &linker)?;
        command.wasi_cli_run().call_run(store)
    });
    let outcome = match result {
        Ok(Ok(())) => Outcome::Exit(0),
        Ok(Err(())) => Outcome::Exit(1),
        Err(err) => failure(err),
    };
    finish(outcome, &stdout, &stderr)
}

/// Runs the wasip1 core module at `path` (its `_start` export).
pub fn run_core_module(path: &str, opts: Options) -> Run {
    let engine = engine();
    let module =
        Module::from_file(&engine, path).unwrap_or_else(|e| panic!("cannot compile {path}: {e:?}"));
    let mut linker = wasmtime::Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx).expect("wasi links");
    let (stdout, stderr) = (
        MemoryOutputPipe::new(1 << 20),
        MemoryOutputPipe::new(1 << 20),
    );
    let ctx = WasiCtxBuilder::new()
        .args(&argv(path, &opts.args))
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .build_p1();
    let mut store = Store::new(&engine, ctx);
    let result = with_deadline(&engine, &mut store, opts.deadline, |store| {
        let instance = linker.instantiate(&mut *store, &module)?;
        instance
            .get_typed_func::<(), ()>(&mut *store, "_start")?
            .call(store, ())
    });
    let outcome = match result {
        Ok(()) => Outcome::Exit(0),
        Err(err) => failure(err),
    };
    finish(outcome, &stdout, &stderr)
}

fn engine() -> Engine {
    let mut config = Config::new();
    config.epoch_interruption(true);
    Engine::new(&config).expect("engine config is valid")
}

fn argv(path: &str, args: &[String]) -> Vec<String> {
    let name = std::path::Path::new(path)
        .file_stem()
        .expect("guest file name");
    let mut argv = vec![name.to_string_lossy().into_owned()];
    argv.extend(args.iter().cloned());
    argv
}

fn limits(opts: &Options) -> StoreLimits {
    StoreLimitsBuilder::new()
        .memory_size(opts.max_memory)
        .build()
}

/// Calls `f` with the store's epoch deadline armed: a watchdog thread bumps the epoch once
/// `deadline` passes, unless `f` finishes first (dropping the channel wakes the watchdog).
fn with_deadline<T, R>(
    engine: &Engine,
    store: &mut Store<T>,
    deadline: Duration,
    f: impl FnOnce(&mut Store<T>) -> R,
) -> R {
    store.set_epoch_deadline(1);
    let (done, wait) = mpsc::channel::<()>();
    let watchdog = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            if wait.recv_timeout(deadline) == Err(mpsc::RecvTimeoutError::Timeout) {
                engine.increment_epoch();
            }
        })
    };
    let result = f(store);
    drop(done);
    watchdog.join().expect("watchdog thread");
    result
}

fn failure(err: wasmtime::Error) -> Outcome {
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        Outcome::Exit(exit.0)
    } else if let Some(trap) = err.downcast_ref::<Trap>() {
        Outcome::Trap(*trap)
    } else {
        panic!("guest failed without a trap or exit: {err:?}")
    }
}

fn finish(outcome: Outcome, stdout: &MemoryOutputPipe, stderr: &MemoryOutputPipe) -> Run {
    let text = |pipe: &MemoryOutputPipe| String::from_utf8_lossy(&pipe.contents()).into_owned();
    Run {
        outcome,
        stdout: text(stdout),
        stderr: text(stderr),
    }
}
