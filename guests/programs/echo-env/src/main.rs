//! `echo-env`: reports what the host gave the guest, one fact per line, so tests can check the
//! agent's args, env, working directory and mounts (preopens).
//!
//! Output (stdout), in this order:
//! ```text
//! arg[0]=echo-env            one line per argument, argv[0] included
//! env KEY=VALUE              one line per environment variable, sorted by key
//! cwd /                      the working directory (or `cwd <unavailable: error>`)
//! ls DIR: NAME               one line per entry of each directory in ECHO_LIST (':'-separated),
//!                            entries sorted; `ls DIR: (empty)` for an empty directory
//! wrote PATH                 if ECHO_WRITE=PATH is set, after writing "written by echo-env\n"
//! ```
//! A directory that cannot be listed or a file that cannot be written is reported on stderr
//! and the guest exits 1; otherwise it exits 0.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    for (i, arg) in std::env::args().enumerate() {
        println!("arg[{i}]={arg}");
    }
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    for (key, value) in &vars {
        println!("env {key}={value}");
    }
    match std::env::current_dir() {
        Ok(dir) => println!("cwd {}", dir.display()),
        Err(err) => println!("cwd <unavailable: {err}>"),
    }
    let list = std::env::var("ECHO_LIST").unwrap_or_default();
    for dir in list.split(':').filter(|d| !d.is_empty()) {
        if let Err(err) = print_listing(dir) {
            eprintln!("echo-env: cannot list directory {dir}: {err}");
            return ExitCode::FAILURE;
        }
    }
    if let Ok(path) = std::env::var("ECHO_WRITE") {
        if let Err(err) = std::fs::write(&path, "written by echo-env\n") {
            eprintln!("echo-env: cannot write {path}: {err}");
            return ExitCode::FAILURE;
        }
        println!("wrote {path}");
    }
    ExitCode::SUCCESS
}

/// Prints `ls DIR: NAME` for each entry of `dir`, sorted by name.
fn print_listing(dir: &str) -> std::io::Result<()> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(Path::new(dir))? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    if names.is_empty() {
        println!("ls {dir}: (empty)");
    }
    for name in names {
        println!("ls {dir}: {name}");
    }
    Ok(())
}
