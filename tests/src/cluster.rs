//! Several managers as one swarm: forming it, asking who leads, and comparing the managers'
//! own copies of the store (`--local-read`).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::{Host, ManagerProc, wait_for};

/// `n` managers on loopback: the first made by init, each next one joined through the one
/// before (from the third on, a follower: its join is forwarded to the leader).
pub fn managers(dir: &Path, n: usize, extra: &[&str]) -> Vec<ManagerProc> {
    managers_on(dir, &vec![Host::loopback(); n], extra)
}

/// One manager per host, in `dir/m0`, `dir/m1`…, formed as [`managers`] does.
pub fn managers_on(dir: &Path, hosts: &[Host], extra: &[&str]) -> Vec<ManagerProc> {
    let mut ms: Vec<ManagerProc> = Vec::with_capacity(hosts.len());
    for (i, host) in hosts.iter().enumerate() {
        let state_dir = dir.join(format!("m{i}"));
        let m = match ms.last() {
            None => ManagerProc::init_on(host, &state_dir, extra),
            Some(previous) => ManagerProc::join_on(host, &state_dir, previous, extra),
        };
        ms.push(m.unwrap_or_else(|e| panic!("manager {i} on {}: {e:#}", host.ip)));
    }
    ms
}

/// Service names in `m`'s own copy of the store, with their versions (empty if `m` does not
/// answer).
pub fn local_services(m: &ManagerProc) -> BTreeSet<(String, u64)> {
    let out = m.ctl(&["service", "ls", "--local-read", "--format", "json"]);
    if !out.status.success() {
        return BTreeSet::new();
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["spec"]["annotations"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                s["meta"]["version"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// The service names alone of [`local_services`].
pub fn local_service_names(m: &ManagerProc) -> BTreeSet<String> {
    local_services(m).into_iter().map(|(n, _)| n).collect()
}

/// The node id the managers' Nodes name as leader, asked through `m` (`None` if `m` cannot
/// say, or names no single leader).
pub fn leader_node(m: &ManagerProc) -> Option<String> {
    let out = m.ctl(&["node", "ls", "--format", "json"]);
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    let leaders: Vec<String> = v
        .as_array()?
        .iter()
        .filter(|n| n["manager_status"]["leader"].as_bool() == Some(true))
        .map(|n| n["id"].as_str().unwrap_or("").to_string())
        .collect();
    (leaders.len() == 1).then(|| leaders[0].clone())
}

/// Waits until every manager in `ms` holds exactly the same services (and versions), and
/// returns them.
pub fn wait_identical(ms: &[&ManagerProc], deadline: Duration) -> BTreeSet<(String, u64)> {
    wait_for(
        "every manager's store to hold the same services",
        deadline,
        || {
            let first = local_services(ms[0]);
            ms[1..]
                .iter()
                .all(|m| local_services(m) == first)
                .then_some(first)
        },
    )
}
