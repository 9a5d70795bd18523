//! [`Host`]: the data of one guest's `Store`: its WASI context, memory limiter and CPU
//! governor. Generic over the WASI flavour: [`P2Wasi`] for components, `WasiP1Ctx` for
//! core modules (each has its own linker in engine.rs).

use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use super::cpu::CpuGovernor;
use super::limits::MemoryLimiter;

/// Store data of one guest.
pub(crate) struct Host<W> {
    pub(crate) wasi: W,
    pub(crate) memory: MemoryLimiter,
    pub(crate) cpu: CpuGovernor,
}

/// WASI state of a component: the context and its resource table.
pub(crate) struct P2Wasi {
    pub(crate) ctx: WasiCtx,
    pub(crate) table: ResourceTable,
}

impl WasiView for Host<P2Wasi> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi.ctx,
            table: &mut self.wasi.table,
        }
    }
}
