//! The decisions behind each Control write, as pure functions from what was read (and the
//! request, the clock, the RNG) to the object to write — unit-testable without a store.

use std::cmp::Ordering;
use std::sync::Arc;

use rand::Rng;
use swarm_proto::{
    Cluster, CreateServiceRequest, Meta, Node, NodeRole, NodeState, Service, Task,
    UpdateClusterRequest, UpdateNodeRequest, UpdateServiceRequest,
};

use crate::keymanager::UnlockKey;

use super::ApiResult;
use crate::api::error::ApiError;
use crate::api::{token, validate};
use crate::store::{LookupError, Tables};

/// The meta an updated object is written with: the version the client read (the store
/// checks it) and a new `updated_at`; `created_at` is kept by the store.
fn update_meta(old: &Option<Meta>, read_version: u64, now: i64) -> Option<Meta> {
    Some(Meta {
        version: read_version,
        updated_at_ns: now,
        ..old.unwrap_or_default()
    })
}

fn require_version(version: u64, what: &str) -> ApiResult<()> {
    if version == 0 {
        return Err(ApiError::invalid(format!(
            "{what}_version is required: send the version of the {what} you read"
        )));
    }
    Ok(())
}

// ---- services ----

/// A new service from a validated spec.
pub(super) fn new_service(req: CreateServiceRequest, id: String, now: i64) -> ApiResult<Service> {
    let spec = req
        .spec
        .ok_or_else(|| ApiError::invalid("spec is required"))?;
    validate::service_spec(&spec)?;
    Ok(Service {
        id,
        meta: Some(Meta {
            version: 0,
            created_at_ns: now,
            updated_at_ns: now,
        }),
        spec: Some(spec),
        previous_spec: None,
    })
}

/// The service after an update (`previous_spec` = the old spec) or a rollback (spec and
/// previous spec swapped; the request's spec is ignored, as Docker sends the current one).
///
/// As in SwarmKit, a service keeps its name and its mode: both are refused with
/// `UNIMPLEMENTED` (remove and create the service instead), since the orchestrators do not
/// migrate tasks between modes and the name indexes the service.
pub(super) fn updated_service(
    old: &Service,
    req: UpdateServiceRequest,
    now: i64,
) -> ApiResult<Service> {
    require_version(req.service_version, "service")?;
    let mut new = old.clone();
    new.meta = update_meta(&old.meta, req.service_version, now);
    if req.rollback {
        let previous = old.previous_spec.clone().ok_or_else(|| {
            ApiError::FailedPrecondition(format!(
                "service {} has no previous spec to roll back to",
                display_name(old)
            ))
        })?;
        new.previous_spec = old.spec.clone();
        new.spec = Some(previous);
        return Ok(new);
    }
    let spec = req
        .spec
        .ok_or_else(|| ApiError::invalid("spec is required (or set rollback to roll back)"))?;
    validate::service_spec(&spec)?;
    if let Some(current) = &old.spec {
        let current_name = current.annotations.as_ref().map_or("", |a| a.name.as_str());
        let new_name = spec.annotations.as_ref().map_or("", |a| a.name.as_str());
        if current_name != new_name {
            return Err(ApiError::Unsupported(format!(
                "renaming services is not supported ({current_name:?} → {new_name:?}); remove \
                 the service and create it under the new name"
            )));
        }
        let kind =
            |m: &Option<swarm_proto::service_spec::Mode>| m.as_ref().map(std::mem::discriminant);
        if kind(&current.mode) != kind(&spec.mode) {
            return Err(ApiError::Unsupported(format!(
                "service {current_name}: changing the service mode (e.g. replicated → global) is \
                 not supported; remove the service and create it again"
            )));
        }
    }
    new.previous_spec = old.spec.clone();
    new.spec = Some(spec);
    Ok(new)
}

fn display_name(s: &Service) -> &str {
    s.spec
        .as_ref()
        .and_then(|s| s.annotations.as_ref())
        .map(|a| a.name.as_str())
        .filter(|n| !n.is_empty())
        .unwrap_or(&s.id)
}

// ---- nodes ----

/// "abc123 (worker-1)", or just the id when the node never reported a hostname.
fn node_label(n: &Node) -> String {
    match n.description.as_ref().map(|d| d.hostname.as_str()) {
        Some(h) if !h.is_empty() => format!("{} ({h})", n.id),
        _ => n.id.clone(),
    }
}

fn is_manager(n: &Node) -> bool {
    n.role == NodeRole::Manager as i32
        || n.spec
            .as_ref()
            .is_some_and(|s| s.desired_role == NodeRole::Manager as i32)
}

/// The node with a new, validated spec. Demoting the last manager is refused: the cluster
/// would have nobody to run raft.
pub(super) fn updated_node(
    view: &Tables,
    old: &Node,
    req: UpdateNodeRequest,
    now: i64,
) -> ApiResult<Node> {
    require_version(req.node_version, "node")?;
    let spec = req
        .spec
        .ok_or_else(|| ApiError::invalid("spec is required"))?;
    validate::node_spec(&spec)?;
    if is_manager(old)
        && spec.desired_role == NodeRole::Worker as i32
        && !view.nodes().any(|n| n.id != old.id && is_manager(n))
    {
        return Err(ApiError::FailedPrecondition(format!(
            "node {} is the last manager of the cluster and can't be demoted; promote another \
             node first",
            node_label(old)
        )));
    }
    let mut new = old.clone();
    new.meta = update_meta(&old.meta, req.node_version, now);
    new.spec = Some(spec);
    Ok(new)
}

/// SwarmKit's rules for `node rm`: a manager must be demoted first (even with `--force`:
/// it is a raft member); a node that is up needs `--force`.
///
/// The node's tasks are left to the orchestrators, which see the node disappear.
pub(super) fn check_node_removable(node: &Node, force: bool) -> ApiResult<()> {
    if is_manager(node) {
        return Err(ApiError::FailedPrecondition(format!(
            "node {} is a manager; demote it first (swarmctl node demote)",
            node_label(node)
        )));
    }
    let ready = node
        .status
        .as_ref()
        .is_some_and(|s| s.state == NodeState::NodeReady as i32);
    if ready && !force {
        return Err(ApiError::FailedPrecondition(format!(
            "node {} is not down and can't be removed; stop it first or use --force",
            node_label(node)
        )));
    }
    Ok(())
}

// ---- tasks ----

/// `ListTasks` order: by service, then slot, then (for global tasks, slot 0) node, then
/// creation time, oldest first; the id breaks the remaining ties so the order is total.
pub(super) fn task_order(a: &Task, b: &Task) -> Ordering {
    let key = |t: &Task| {
        let node = if t.slot == 0 {
            t.node_id.clone()
        } else {
            String::new()
        };
        let created = t.meta.as_ref().map_or(0, |m| m.created_at_ns);
        (t.service_id.clone(), t.slot, node, created, t.id.clone())
    };
    key(a).cmp(&key(b))
}

// ---- cluster ----

/// The cluster named by id, name or unique id prefix; an empty reference means the only
/// cluster there is.
pub(super) fn find_cluster(view: &Tables, reference: &str) -> ApiResult<Arc<Cluster>> {
    if reference.is_empty() {
        let mut all = view.clusters();
        return match (all.next(), all.next()) {
            (Some(c), None) => Ok(c.clone()),
            (None, _) => Err(ApiError::NotFound(
                "this manager has no cluster yet; run `swarm-manager init` or join one".into(),
            )),
            (Some(_), Some(_)) => Err(ApiError::invalid(
                "there is more than one cluster; name one by id (swarmctl cluster inspect ID)",
            )),
        };
    }
    if let Some(c) = view.cluster(reference) {
        return Ok(c.clone());
    }
    let by_name = |c: &&Arc<Cluster>| {
        c.spec
            .as_ref()
            .and_then(|s| s.annotations.as_ref())
            .is_some_and(|a| a.name == reference)
    };
    let mut found: Vec<&Arc<Cluster>> = view.clusters().filter(by_name).collect();
    if found.is_empty() {
        found = view
            .clusters()
            .filter(|c| c.id.starts_with(reference))
            .collect();
    }
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(LookupError::NotFound {
            kind: "cluster",
            reference: reference.into(),
        }
        .into()),
        many => Err(LookupError::Ambiguous {
            kind: "cluster",
            reference: reference.into(),
            matches: many
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
        .into()),
    }
}

/// The unlock key after an update: a new one when autolock is turned on or rotated, none when
/// it is turned off (every manager's `keymanager::rewrap` follows it).
fn unlock_key(old: &Cluster, new: &Cluster, rotate: bool) -> ApiResult<String> {
    let autolock = |c: &Cluster| {
        c.spec
            .as_ref()
            .and_then(|s| s.encryption)
            .is_some_and(|e| e.auto_lock_managers)
    };
    Ok(match (autolock(old), autolock(new)) {
        (_, false) if rotate => {
            return Err(ApiError::FailedPrecondition(
                "the swarm is not autolocked, so there is no unlock key to rotate".into(),
            ));
        }
        (_, false) => String::new(),
        (false, true) => UnlockKey::generate().to_string(),
        (true, true) if rotate || old.unlock_key.is_empty() => UnlockKey::generate().to_string(),
        (true, true) => old.unlock_key.clone(),
    })
}

/// The cluster as the Control API shows it: the root CA key and the unlock key never leave
/// the managers' store this way (SwarmKit's `redactClusters`).
pub(super) fn redacted(cluster: &Cluster) -> Cluster {
    let mut c = cluster.clone();
    if let Some(root) = c.root_ca.as_mut() {
        root.ca_key.clear();
    }
    c.unlock_key.clear();
    c
}

/// The cluster with a new spec (an absent spec keeps the current one, so a token rotation
/// needs no spec) and the join tokens asked for rotated, each independently.
pub(super) fn updated_cluster(
    old: &Cluster,
    req: UpdateClusterRequest,
    now: i64,
    rng: &mut impl Rng,
) -> ApiResult<Cluster> {
    require_version(req.cluster_version, "cluster")?;
    if let Some(spec) = &req.spec {
        validate::cluster_spec(spec)?;
    }
    let mut new = old.clone();
    new.meta = update_meta(&old.meta, req.cluster_version, now);
    if let Some(spec) = req.spec {
        new.spec = Some(spec);
    }
    new.unlock_key = unlock_key(old, &new, req.rotate_unlock_key)?;
    if req.rotate_worker_token || req.rotate_manager_token {
        let tokens = new.join_tokens.get_or_insert_with(Default::default);
        if req.rotate_worker_token {
            tokens.worker = token::rotate(&tokens.worker, "worker", rng)?;
        }
        if req.rotate_manager_token {
            tokens.manager = token::rotate(&tokens.manager, "manager", rng)?;
        }
    }
    Ok(new)
}

/// A manager's status as this manager's raft sees it now: the leader is whoever raft names
/// (none while there is no leader), a learner is catching up, and the leader tells which
/// members answered within the last election timeout; a follower keeps the stored
/// reachability.
pub fn live_manager_status(s: &mut swarm_proto::ManagerStatus, raft: &crate::raft::RaftStatus) {
    s.leader = raft.leader_id != 0 && s.raft_id == raft.leader_id;
    s.catching_up = raft.learners.contains(&s.raft_id);
    if raft.is_leader {
        s.reachable = raft.active.contains(&s.raft_id);
    }
}
