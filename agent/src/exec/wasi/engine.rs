//! [`WasiEngine`]: the one wasmtime [`Engine`] of a backend, its two linkers (built once),
//! and the epoch ticker thread that lets every running guest yield and be accounted.
//!
//! Pool sizing: a Rust `wasm32-wasip2` component has several core instances (the program, a
//! shim and a fixup module), one or two memories and a few tables, so the pool holds 4 core
//! instances, 2 memories and 4 tables per guest. Each memory slot reserves
//! `max_memory_bytes` of address space (plus a guard) instead of wasmtime's 4 GiB: 24,000
//! slots of 4 GiB would not fit in a 47-bit address space. Bounds checks are then explicit,
//! which costs a little speed for the density the 10,000-sleeper benchmark needs.

use std::sync::mpsc;
use std::time::Duration;

use wasmtime::component::Linker as ComponentLinker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Linker, PoolingAllocationConfig};
use wasmtime_wasi::p1::WasiP1Ctx;

use super::config::WasiLimits;
use super::host::{Host, P2Wasi};

/// Guard region after each linear memory in the pool.
const MEMORY_GUARD: u64 = 32 << 20;

/// The engine, the linkers and the ticker. Dropping it stops the ticker thread.
pub(crate) struct WasiEngine {
    pub(crate) engine: Engine,
    pub(crate) components: ComponentLinker<Host<P2Wasi>>,
    pub(crate) modules: Linker<Host<WasiP1Ctx>>,
    _ticker: EpochTicker,
}

impl WasiEngine {
    /// Builds the engine and linkers and starts the ticker.
    ///
    /// # Errors
    /// The configuration is rejected by wasmtime (e.g. the pool cannot be reserved).
    pub(crate) fn new(limits: &WasiLimits) -> anyhow::Result<Self> {
        let engine = Engine::new(&engine_config(limits))?;
        let mut components = ComponentLinker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut components)?;
        let mut modules = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut modules, |h: &mut Host<WasiP1Ctx>| {
            &mut h.wasi
        })?;
        let ticker = EpochTicker::start(engine.clone(), limits.epoch_tick)?;
        Ok(Self {
            engine,
            components,
            modules,
            _ticker: ticker,
        })
    }
}

fn engine_config(limits: &WasiLimits) -> Config {
    let n = limits.max_instances;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(4))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(4))
        .total_stacks(n)
        .max_memory_size(usize::try_from(limits.max_memory_bytes).unwrap_or(usize::MAX));
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .memory_reservation(limits.max_memory_bytes)
        .memory_guard_size(MEMORY_GUARD)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// One thread that increments the engine's epoch every `tick` until dropped.
struct EpochTicker {
    _stop: mpsc::Sender<()>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                // Disconnected (the backend was dropped) ends the loop; nothing is ever sent.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
                }
            })?;
        Ok(Self { _stop: stop })
    }
}
