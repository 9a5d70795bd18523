//! `hog MODE`: a misbehaving guest, for testing the agent's limits and sandbox.
//!
//! | MODE          | behaviour                                                              |
//! |---------------|------------------------------------------------------------------------|
//! | `loop`        | prints `hog: spinning`, then busy-loops forever with no host calls     |
//! | `memory`      | allocates and touches 1 MiB chunks forever, printing                   |
//! |               | `hog: allocated N MiB` every 16 MiB                                    |
//! | `recurse`     | prints `hog: recursing`, then recurses without bound (not a tail call) |
//! | `escape PATH` | tries to open PATH for reading: prints `ESCAPED` and exits 0 if it     |
//! |               | can, else prints `permission denied: path outside preopens: PATH       |
//! |               | (<error>)` to stderr and exits 1                                       |
//!
//! A missing or unknown MODE is a usage error (exit status 2, which a host sees as 1 through
//! WASI 0.2's ok/err `exit`).

use std::hint::black_box;
use std::process::ExitCode;

const USAGE: &str = "usage: hog loop | memory | recurse | escape PATH";
const MIB: usize = 1 << 20;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["loop"] => spin(),
        ["memory"] => grow(),
        ["recurse"] => {
            println!("hog: recursing");
            let depth = recurse(0);
            println!("hog: recursion ended at depth {depth}");
            ExitCode::SUCCESS
        }
        ["escape", path] => escape(path),
        other => {
            eprintln!("hog: bad arguments {other:?}; {USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Busy-loops forever; only epoch interruption (or fuel) can stop it.
fn spin() -> ! {
    println!("hog: spinning");
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Allocates and touches memory until the allocator fails (which aborts the guest).
fn grow() -> ! {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        // A non-zero fill makes every page really written, not just reserved.
        chunks.push(black_box(vec![0xA5; MIB]));
        if chunks.len().is_multiple_of(16) {
            println!("hog: allocated {} MiB", chunks.len());
        }
    }
}

/// Recurses until the wasm stack is exhausted; `black_box` keeps the optimizer from turning
/// the recursion into a loop, and the addition after the call keeps it from being a tail call.
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return depth;
    }
    recurse(black_box(depth + 1)).wrapping_add(black_box(1))
}

/// Tries to read a path the sandbox should not expose.
fn escape(path: &str) -> ExitCode {
    match std::fs::File::open(path) {
        Ok(_) => {
            println!("ESCAPED");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("permission denied: path outside preopens: {path} ({err})");
            ExitCode::FAILURE
        }
    }
}
