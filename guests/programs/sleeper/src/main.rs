//! `sleeper`: a long-running service guest that runs until it is killed.
//!
//! `sleeper` prints `sleeper tick N` (N = 0, 1, 2, …) once a second, the first line at once;
//! `sleeper --quiet` prints nothing. The density benchmark runs 10,000 of these, so the guest
//! makes no heap allocations in its loop and keeps nothing but a counter.

use std::io::Write;
use std::time::Duration;

fn main() {
    let quiet = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--quiet") => true,
        Some(other) => {
            eprintln!("sleeper: unknown argument {other:?}; usage: sleeper [--quiet]");
            std::process::exit(2);
        }
    };
    let mut stdout = std::io::stdout().lock();
    for tick in 0u64.. {
        if !quiet {
            // A closed stdout must not stop the sleeper: it runs until it is killed.
            let _ = writeln!(stdout, "sleeper tick {tick}");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
