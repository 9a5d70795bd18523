//! `exit-code N`: prints `exiting with N` and exits with status N, so tests can check how the
//! agent reports a guest's exit status. A missing or non-numeric N is a usage error (status 2).
//!
//! Built for wasm32-wasip2 and wasm32-wasip1. WASI 0.2's `wasi:cli/exit.exit` carries only
//! ok/err, so the wasip2 build's host sees every non-zero N as 1; the wasip1 build's
//! `proc_exit(N)` keeps N.

fn main() {
    let arg = std::env::args().nth(1);
    let Some(code) = arg.as_deref().and_then(|s| s.parse::<i32>().ok()) else {
        eprintln!("exit-code: expected one integer argument, got {arg:?}; usage: exit-code N");
        std::process::exit(2);
    };
    println!("exiting with {code}");
    std::process::exit(code);
}
