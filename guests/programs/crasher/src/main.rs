//! `crasher`: prints `about to crash` and then traps (executes the wasm `unreachable`
//! instruction), so tests can check how the agent reports a guest that faults.

fn main() {
    println!("about to crash");
    core::arch::wasm32::unreachable();
}
