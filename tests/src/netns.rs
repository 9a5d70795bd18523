//! A private network for partition tests, made of Linux network namespaces:
//!
//! ```text
//!            hub namespace: bridge br0
//!          ┌───────┼───────┬─ …
//!          m0      m1      m2        hub-side veth ends (cut = set down)
//!          │       │       │
//!        eth0    eth0    eth0        one namespace per member, 10.213.0.(i+1)/24
//! ```
//! Nothing is configured in the test's own namespace (the veth pairs are created directly
//! inside the namespaces), so several runs, or tests running at once, cannot collide: every
//! [`Lan`] has namespaces named after the process id and a counter, and deletes them when
//! dropped, also when the test panics. Needs root and iproute2's `ip`.
//!
//! Processes run in a member's namespace through [`Lan::host`] (`ip netns exec NS …`); a
//! manager's control socket is a file, so swarmctl reaches it from the test's namespace.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, bail};

use crate::Host;

/// Namespaces made by this process so far (part of every name).
static MADE: AtomicUsize = AtomicUsize::new(0);

/// A hub namespace with a bridge, and member namespaces linked to it. Deleted on drop.
pub struct Lan {
    name: String,
    /// Namespaces created, deleted in reverse order on drop.
    created: Vec<String>,
    members: usize,
}

impl Lan {
    /// A network of `members` namespaces (at most 250), each reachable from the others.
    pub fn new(members: usize) -> anyhow::Result<Self> {
        assert!(members <= 250, "10.213.0.0/24 holds at most 250 members");
        let mut lan = Self {
            name: format!(
                "swarm{}n{}",
                std::process::id(),
                MADE.fetch_add(1, Ordering::Relaxed)
            ),
            created: Vec::new(),
            members,
        };
        let hub = lan.hub();
        lan.add_namespace(&hub)?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for i in 0..members {
            let ns = lan.namespace(i);
            lan.add_namespace(&ns)?;
            let port = port_name(i);
            ip(&[
                "link", "add", &port, "netns", &hub, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0", "up"])?;
            let cidr = format!("{}/24", address(i));
            ip(&["-n", &ns, "addr", "add", &cidr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(lan)
    }

    /// Where member `i` runs: its address, and `ip netns exec` into its namespace.
    pub fn host(&self, i: usize) -> Host {
        assert!(i < self.members, "member {i} of {}", self.members);
        Host {
            ip: address(i),
            prefix: ["ip", "netns", "exec", &self.namespace(i)]
                .map(String::from)
                .to_vec(),
        }
    }

    /// Every member's host, in order.
    pub fn hosts(&self) -> Vec<Host> {
        (0..self.members).map(|i| self.host(i)).collect()
    }

    /// Cuts member `i` off the others: its port on the bridge goes down (its own interface
    /// loses carrier, so its packets go nowhere and nothing reaches it).
    pub fn cut(&self, i: usize) -> anyhow::Result<()> {
        ip(&["-n", &self.hub(), "link", "set", &port_name(i), "down"])
    }

    /// Connects member `i` again after [`cut`](Self::cut).
    pub fn heal(&self, i: usize) -> anyhow::Result<()> {
        ip(&["-n", &self.hub(), "link", "set", &port_name(i), "up"])
    }

    fn hub(&self) -> String {
        format!("{}-hub", self.name)
    }

    fn namespace(&self, i: usize) -> String {
        format!("{}-m{i}", self.name)
    }

    fn add_namespace(&mut self, ns: &str) -> anyhow::Result<()> {
        ip(&["netns", "add", ns]).context(
            "creating a network namespace (partition tests need root and iproute2's `ip`)",
        )?;
        self.created.push(ns.to_string());
        Ok(())
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Members first: deleting a namespace removes its veth end and the bridge port with it.
        for ns in self.created.drain(..).rev() {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                eprintln!("leaving network namespace {ns} behind: {e:#}");
            }
        }
    }
}

/// Member `i`'s address.
fn address(i: usize) -> String {
    format!("10.213.0.{}", i + 1)
}

/// The hub-side end of member `i`'s veth pair.
fn port_name(i: usize) -> String {
    format!("m{i}")
}

/// Runs `ip args…`, failing with its stderr.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (install iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
