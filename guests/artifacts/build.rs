//! Builds the guest programs in `guests/programs` (a separate cargo workspace) for
//! wasm32-wasip2, and `hello` and `exit-code` also for wasm32-wasip1, then writes `$OUT_DIR/guests.rs` with one
//! `pub const NAME: &str = "<absolute path>";` per guest and an `all()` listing.
//!
//! The inner cargo gets its own target dir, `<outer target dir>/guests`: the outer cargo holds
//! the lock on its own profile dirs for the whole build. The outer build's `CARGO_*`, `RUSTFLAGS`
//! and wrapper variables are cleared so host-only flags, clippy's wrapper or the outer
//! jobserver do not leak into the wasm build (the pattern of wasmtime's
//! `crates/test-programs/artifacts/build.rs`).

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (const name, binary name, target) of every guest artifact.
const GUESTS: &[(&str, &str, &str)] = &[
    ("HELLO", "hello", P2),
    ("SLEEPER", "sleeper", P2),
    ("ECHO_ENV", "echo-env", P2),
    ("EXIT_CODE", "exit-code", P2),
    ("CRASHER", "crasher", P2),
    ("HOG", "hog", P2),
    ("HELLO_P1", "hello", P1),
    ("EXIT_CODE_P1", "exit-code", P1),
];
const P2: &str = "wasm32-wasip2";
const P1: &str = "wasm32-wasip1";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let programs = manifest_dir.join("../programs");
    let programs = programs
        .canonicalize()
        .unwrap_or_else(|e| panic!("guest sources not found at {}: {e}", programs.display()));
    let target_dir = guest_target_dir(&manifest_dir);

    // Only the sources: not `guests/programs/target`, which a hand-run build may create.
    for file in ["Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", programs.join(file).display());
    }
    let mut crates: Vec<&str> = GUESTS.iter().map(|(_, bin, _)| *bin).collect();
    crates.sort_unstable();
    crates.dedup();
    for krate in &crates {
        println!("cargo:rerun-if-changed={}", programs.join(krate).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    for target in [P2, P1] {
        let packages: Vec<&str> = GUESTS
            .iter()
            .filter(|(_, _, t)| *t == target)
            .map(|(_, bin, _)| *bin)
            .collect();
        cargo_build(&programs, &target_dir, target, &packages);
    }

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("guests.rs");
    std::fs::write(&out, generate(&target_dir))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

/// `<outer target dir>/guests`: `$CARGO_TARGET_DIR` if set, else `<workspace root>/target`.
fn guest_target_dir(manifest_dir: &Path) -> PathBuf {
    let outer = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => manifest_dir.join("../../target"),
    };
    std::fs::create_dir_all(&outer)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", outer.display()));
    outer
        .canonicalize()
        .unwrap_or_else(|e| panic!("cannot resolve {}: {e}", outer.display()))
        .join("guests")
}

/// Runs `cargo build --release --target <target>` on `packages` of the guest workspace,
/// panicking with the inner cargo's output if it fails.
fn cargo_build(programs: &Path, target_dir: &Path, target: &str, packages: &[&str]) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(programs)
        .args(["build", "--release", "--offline", "--target", target])
        .arg("--manifest-path")
        .arg(programs.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    for package in packages {
        cmd.args(["--package", package]);
    }
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        let leaks = (key.starts_with("CARGO_") && key != "CARGO_HOME")
            || key.starts_with("CLIPPY_")
            || matches!(
                key.as_ref(),
                "RUSTFLAGS"
                    | "RUSTDOCFLAGS"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "MAKEFLAGS"
                    | "MFLAGS"
            );
        if leaks {
            cmd.env_remove(key.as_ref());
        }
    }
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the guests: {e}"));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("may not be installed") || stderr.contains("can't find crate")
        {
            format!("\nhint: install the target with `rustup target add {target}`")
        } else {
            String::new()
        };
        panic!(
            "building the guests for {target} failed ({}):\n{stderr}{hint}",
            output.status
        );
    }
}

/// The generated Rust source: one const per guest and `all()`.
fn generate(target_dir: &Path) -> String {
    let mut src = String::new();
    let mut all = String::new();
    for (name, bin, target) in GUESTS {
        let path = target_dir
            .join(target)
            .join("release")
            .join(format!("{bin}.wasm"));
        assert!(
            path.is_file(),
            "guest build did not produce {}",
            path.display()
        );
        let path = path.to_str().expect("guest paths are UTF-8");
        writeln!(src, "/// `{bin}` built for {target}: `{path}`.").unwrap();
        writeln!(src, "pub const {name}: &str = {path:?};").unwrap();
        writeln!(all, "        ({:?}, {name}),", name.to_lowercase()).unwrap();
    }
    writeln!(
        src,
        "/// Every guest as (name, absolute path); names are the consts' names in lower case.\n\
         pub fn all() -> &'static [(&'static str, &'static str)] {{\n    &[\n{all}    ]\n}}"
    )
    .unwrap();
    src
}
