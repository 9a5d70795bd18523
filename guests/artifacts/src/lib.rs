//! Paths of the example and test guests, built at compile time.
//!
//! The guests live in `guests/programs`, a separate cargo workspace with one std-only binary
//! crate per guest. This crate's `build.rs` runs `cargo build --release --target wasm32-wasip2`
//! on it (and builds `hello` and `exit-code` for wasm32-wasip1 as well) with its own target
//! dir, `<target dir>/guests`, and generates one `&str` const per guest holding the absolute
//! path of the `.wasm` file. Tests and benchmarks depend on this
//! crate (usually as a dev-dependency) and read the files at run time:
//!
//! ```no_run
//! let component = std::fs::read(swarm_guests::HELLO).unwrap();
//! ```
//!
//! This is wasmtime's `test-programs` / `test-programs-artifacts` pattern: the guests compile
//! with the normal toolchain and no extra tools, and a change to a guest's source re-runs the
//! build script. The wasip2 binaries are components that export `wasi:cli/run`
//! (`wasi:cli/command`); [`HELLO_P1`] and [`EXIT_CODE_P1`] are core modules for the agent's
//! preview-1 path.
//!
//! Exit statuses: WASI 0.2's `wasi:cli/exit.exit` carries only ok/err, and Rust's wasip2 std
//! uses it, so a wasip2 guest exiting with any non-zero status N is seen by the host as
//! status 1. A wasip1 module's `proc_exit(N)` keeps N: use [`EXIT_CODE_P1`] to test that the
//! exact status is reported.
//!
//! - [`HELLO`]: `hello [ARGS…]` prints `hello from swarm ARGS…` and exits 0.
//! - [`SLEEPER`]: `sleeper [--quiet]` prints `sleeper tick N` each second until killed.
//! - [`ECHO_ENV`]: `echo-env [ARGS…]` prints its args, env, cwd and the entries of the
//!   `ECHO_LIST` dirs, and writes the file `ECHO_WRITE`.
//! - [`EXIT_CODE`]: `exit-code N` prints `exiting with N` and exits N (the host sees 1).
//! - [`CRASHER`]: `crasher` prints `about to crash` and traps.
//! - [`HOG`]: `hog loop|memory|recurse|escape PATH` burns CPU, memory or stack, or tries to
//!   read outside its preopens.
//! - [`HELLO_P1`], [`EXIT_CODE_P1`]: `hello` and `exit-code` as wasip1 core modules (the host
//!   sees `exit-code`'s N itself).
//!
//! Each program's `//!` header documents its exact output. See `guests/README.md` for building
//! them by hand for scripts.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// A valid core module of about `size` bytes (at least 18): the header and one custom
/// section of patterned padding, so a chunk written at a wrong offset changes the bytes.
/// For tests of artifact transfer and size limits, where the workload does not matter.
pub fn padded_module(size: usize) -> Vec<u8> {
    let mut body = vec![1u8, b'p'];
    body.extend((0..size.saturating_sub(16).max(1)).map(|i| (i % 251) as u8));
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    bytes.push(0);
    // The section length, unsigned LEB128.
    let mut len = body.len() as u64;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    bytes.extend(body);
    bytes
}

#[cfg(test)]
mod tests;
