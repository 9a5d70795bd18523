//! `swarm-oci-shim oci-shim TASK_DIR`: the OCI backend's container shim as a binary of its
//! own, for embedders of the agent library whose binary does not call
//! [`swarm_agent::exec::oci::shim::exit_if_invoked`] (and for this crate's tests). The node
//! binaries (`swarm-agent`, `swarm-manager`) start their shims as themselves.

fn main() {
    swarm_agent::exec::oci::shim::exit_if_invoked();
    eprintln!("usage: swarm-oci-shim oci-shim TASK_DIR");
    std::process::exit(2);
}
