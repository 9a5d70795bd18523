//! `hello`: the smallest guest. Prints `hello from swarm`, followed by its arguments after
//! argv[0] (space-separated, on the same line) if there are any, and exits 0.
//!
//! Built for wasm32-wasip2 (a `wasi:cli/command` component) and wasm32-wasip1 (a core module),
//! so the agent's both load paths have a guest.

fn main() {
    let mut line = String::from("hello from swarm");
    for arg in std::env::args().skip(1) {
        line.push(' ');
        line.push_str(&arg);
    }
    println!("{line}");
}
