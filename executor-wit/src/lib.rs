//! The WIT package `swarm:task`: the worlds a swarm task's WebAssembly guest may target.
//!
//! The package lives in `executor-wit/wit/` (`world.wit` plus the WASI 0.2.12 packages it
//! uses, copied verbatim into `wit/deps/`). This crate only exposes where it is and what its
//! worlds are called, so the agent (for `wasmtime::component::bindgen!`-style tooling or to
//! check a component against a world) and guest authors (`wit-bindgen`, `cargo component`)
//! point at one copy. Its tests parse and resolve the package with `wit-parser`.
//!
//! | world                                  | guest contract                                  |
//! |----------------------------------------|-------------------------------------------------|
//! | [`COMMAND`] (`swarm:task/command`)        | `wasi:cli/command@0.2.12`: exports `wasi:cli/run` |
//! | [`HTTP_PROXY`] (`swarm:task/http-proxy`) | `wasi:http/proxy@0.2.12`: exports                |
//! |                                        | `wasi:http/incoming-handler`                    |

/// Absolute path of the `wit/` directory holding the package (`world.wit` and `deps/`).
pub const WIT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/wit");

/// The package name.
pub const PACKAGE: &str = "swarm:task";

/// The world of jobs and long-running programs (`wasi:cli/command`).
pub const COMMAND: &str = "swarm:task/command";

/// The world of HTTP services (`wasi:http/proxy`).
pub const HTTP_PROXY: &str = "swarm:task/http-proxy";

/// The WASI version the package's worlds include, the one wasmtime-wasi 48 implements.
pub const WASI_VERSION: &str = "0.2.12";

#[cfg(test)]
mod tests;
