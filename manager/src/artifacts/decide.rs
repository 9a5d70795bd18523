//! The decisions of the artifact store as pure functions of one store view: what a push's
//! commit writes, what `artifact rm` writes (or why it is refused), and how a service's
//! artifact reference is pinned to a digest.

use std::sync::Arc;

use swarm_proto::{Artifact, ArtifactKind, Meta, ServiceSpec, StoreAction, task_spec::Runtime};

use crate::api::ApiError;
use crate::store::{self, Tables, name_with_tag};

/// What a push of `digest` as `name_tag` writes once its bytes are replicated: the artifact
/// created, or its names extended, and the name taken from the artifact that held it
/// before (a name points at one digest, as a Docker tag does). Empty when nothing changes.
pub fn commit(
    view: &Tables,
    digest: &str,
    size: u64,
    kind: ArtifactKind,
    name_tag: &str,
    now: i64,
    new_id: impl FnOnce() -> String,
) -> Vec<StoreAction> {
    let mut actions = Vec::new();
    if let Some(previous) = view.artifact_by_name(name_tag)
        && previous.digest != digest
    {
        let mut moved = (**previous).clone();
        moved.names.retain(|n| n != name_tag);
        touch(&mut moved, now);
        actions.push(store::update(moved));
    }
    match view.artifact_by_digest(digest) {
        Some(existing) if existing.names.iter().any(|n| n == name_tag) => {}
        Some(existing) => {
            let mut named = (**existing).clone();
            named.names.push(name_tag.to_string());
            named.names.sort();
            touch(&mut named, now);
            actions.push(store::update(named));
        }
        None => actions.push(store::create(Artifact {
            id: new_id(),
            meta: Some(Meta {
                version: 0,
                created_at_ns: now,
                updated_at_ns: now,
            }),
            digest: digest.to_string(),
            size,
            kind: kind as i32,
            names: vec![name_tag.to_string()],
        })),
    }
    actions
}

/// The meta of an update: the version read (the store checks it) and a new `updated_at`.
fn touch(a: &mut Artifact, now: i64) {
    let meta = a.meta.get_or_insert_with(Meta::default);
    meta.updated_at_ns = now;
}

/// What `artifact rm REFERENCE` does.
#[derive(Debug, Clone, PartialEq)]
pub enum Removal {
    /// Only the name goes (the artifact has others), as `docker rmi` untags.
    Untag(Artifact),
    /// The artifact and its bytes go.
    Delete(Arc<Artifact>),
}

/// Resolves `reference` and decides the removal. Deleting is refused while a service's spec
/// or previous spec (the rollback target) runs the digest.
pub fn removal(view: &Tables, reference: &str, now: i64) -> Result<Removal, ApiError> {
    let artifact = view.find_artifact(reference)?;
    let name = name_with_tag(reference);
    if artifact.names.len() > 1 && artifact.names.contains(&name) {
        let mut untagged = (*artifact).clone();
        untagged.names.retain(|n| *n != name);
        touch(&mut untagged, now);
        return Ok(Removal::Untag(untagged));
    }
    if let Some(service) = user_of(view, &artifact.digest) {
        return Err(ApiError::FailedPrecondition(format!(
            "artifact {} is in use by service {service}; remove the service (or update it to \
             another artifact and let it converge) first",
            display(&artifact)
        )));
    }
    Ok(Removal::Delete(artifact))
}

/// The first service (by name) whose spec or previous spec runs `digest`.
fn user_of(view: &Tables, digest: &str) -> Option<String> {
    let uses = |spec: &Option<ServiceSpec>| {
        wasm_artifact(spec.as_ref()).is_some_and(|r| {
            swarm_agent::artifacts::digest_of_reference(r).is_ok_and(|d| d == digest)
        })
    };
    let mut users: Vec<String> = view
        .services()
        .filter(|s| uses(&s.spec) || uses(&s.previous_spec))
        .map(|s| {
            s.spec
                .as_ref()
                .and_then(|s| s.annotations.as_ref())
                .map_or_else(|| s.id.clone(), |a| a.name.clone())
        })
        .collect();
    users.sort();
    users.into_iter().next()
}

fn wasm_artifact(spec: Option<&ServiceSpec>) -> Option<&str> {
    match spec?.task.as_ref()?.runtime.as_ref()? {
        Runtime::Wasm(w) => Some(&w.artifact),
        Runtime::Oci(_) => None,
    }
}

/// How an artifact is named to users: its first name, else its digest.
pub fn display(a: &Artifact) -> &str {
    a.names.first().map_or(a.digest.as_str(), String::as_str)
}

/// Pins a wasm runtime's artifact reference to a digest, as Docker pins image references:
/// `NAME[:TAG]` → `NAME:TAG@sha256:<hex>`; `sha256:<hex>` and already pinned references are
/// checked to exist. Registry references (with a '/'; the store's names have none) are left
/// as written: their syntax was checked with the spec (`api::validate::artifact`) and the
/// agent pulls them from the registry when it prepares the task. (Resolving a tag to its
/// manifest digest here, as `docker service create --resolve-image` does, would need the
/// manager to reach the registry; it does not.)
pub fn pin_spec(view: &Tables, spec: &mut ServiceSpec) -> Result<(), ApiError> {
    let Some(Runtime::Wasm(w)) = spec.task.as_mut().and_then(|t| t.runtime.as_mut()) else {
        return Ok(());
    };
    w.artifact = pin(view, &w.artifact)?;
    Ok(())
}

/// See [`pin_spec`].
pub fn pin(view: &Tables, reference: &str) -> Result<String, ApiError> {
    if reference.contains('/') {
        return Ok(reference.to_string());
    }
    let (name, digest) = match reference.rsplit_once('@') {
        Some((name, digest)) => (Some(name), Some(digest)),
        None if reference.starts_with("sha256:") => (None, Some(reference)),
        None => (Some(reference), None),
    };
    if let Some(digest) = digest {
        if view.artifact_by_digest(digest).is_none() {
            return Err(ApiError::NotFound(format!(
                "artifact {digest} not found: push the file with `swarmctl artifact push FILE \
                 NAME[:TAG]`{}",
                name.map(|n| format!(" (it was pinned as {n})"))
                    .unwrap_or_default()
            )));
        }
        return Ok(reference.to_string());
    }
    let name = name_with_tag(name.unwrap_or_default());
    match view.artifact_by_name(&name) {
        Some(a) => Ok(format!("{name}@{}", a.digest)),
        None => Err(ApiError::NotFound(format!(
            "artifact '{name}' not found: push it with `swarmctl artifact push FILE {name}`"
        ))),
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
