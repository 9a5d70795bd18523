//! Applying a committed [`StoreBatch`] to the tables: deterministic, so every replica that
//! applies the same log reaches the same state and reports the same conflicts.

use std::sync::Arc;

use swarm_proto::{
    Meta, StoreAction, StoreActionKind, StoreBatch, Task, TaskPatch, TaskState,
    store_object::Object as O,
};

use super::tables::{Id, Object, Tables, service_name};
use super::watch::Event;

/// Why one action of a batch was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: &'static str, id: String },
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error(
        "{kind} {id} was changed by someone else (you read version {read}, it is now at {current}); read it again and retry"
    )]
    VersionMismatch {
        kind: &'static str,
        id: String,
        read: u64,
        current: u64,
    },
    #[error("a service named {name:?} already exists")]
    NameInUse { name: String },
    #[error("task {id}: nothing in this change moves the task forward")]
    NotForward { id: String },
    #[error("task {id} is already assigned to node {node}")]
    AlreadyAssigned { id: String, node: String },
    #[error("malformed store action: {0}")]
    Malformed(String),
}

/// The result of applying one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Raft index of the entry (the new `Meta.version` of everything it wrote).
    pub index: u64,
    /// Actions that were not applied, by position in the batch. For an atomic batch with
    /// any conflict, nothing was applied.
    pub rejected: Vec<(usize, Conflict)>,
}

impl ApplyOutcome {
    /// True when every action applied.
    pub fn is_clean(&self) -> bool {
        self.rejected.is_empty()
    }
}

impl Tables {
    /// Applies `batch`, committed at raft `index`, returning its outcome and the events to
    /// deliver to watchers. An atomic batch with a conflict leaves the tables untouched.
    pub fn apply(&mut self, index: u64, batch: &StoreBatch) -> (ApplyOutcome, Vec<Event>) {
        // An action changes nothing unless it applies (every check comes before the first
        // write), so only an atomic batch of several actions needs a copy to roll back to.
        // Taking one for every batch would be O(1) but not free: it shares every node of
        // the maps, so each write after it path-copies nodes that it could have changed in
        // place, and the copies are freed again when `before` drops.
        let before = (batch.atomic && batch.actions.len() > 1).then(|| self.clone());
        let mut outcome = ApplyOutcome {
            index,
            rejected: Vec::new(),
        };
        let mut events = Vec::with_capacity(batch.actions.len());
        for (i, action) in batch.actions.iter().enumerate() {
            match self.apply_action(index, action) {
                Ok(ev) => events.extend(ev),
                Err(c) => outcome.rejected.push((i, c)),
            }
        }
        if let Some(before) = before
            && !outcome.rejected.is_empty()
        {
            *self = before;
            events.clear();
        }
        self.index = index;
        (outcome, events)
    }

    /// Applies one action; `None` for an action with no in-memory effect (a blob chunk,
    /// which only the [`BlobSink`](super::BlobSink) stores).
    fn apply_action(
        &mut self,
        index: u64,
        action: &StoreAction,
    ) -> Result<Option<Event>, Conflict> {
        let kind = StoreActionKind::try_from(action.kind)
            .map_err(|_| Conflict::Malformed(format!("unknown action kind {}", action.kind)))?;
        if kind == StoreActionKind::StorePatchTask {
            let patch = action
                .task_patch
                .as_ref()
                .ok_or_else(|| Conflict::Malformed("task patch without a patch".into()))?;
            return self.patch_task(index, patch).map(Some);
        }
        let object = action
            .object
            .as_ref()
            .and_then(|o| o.object.as_ref())
            .ok_or_else(|| Conflict::Malformed("action without an object".into()))?;
        match (kind, object) {
            (StoreActionKind::StoreCreate, O::BlobChunk(_)) => Ok(None),
            (_, O::BlobChunk(_)) => Err(Conflict::Malformed(
                "a blob chunk can only be created".into(),
            )),
            (StoreActionKind::StoreCreate, _) => self.create(index, object).map(Some),
            (StoreActionKind::StoreUpdate, _) => self.update(index, object).map(Some),
            (StoreActionKind::StoreRemove, _) => self.remove(object).map(Some),
            (StoreActionKind::StorePatchTask, _) => unreachable!("handled above"),
        }
    }

    fn create(&mut self, index: u64, object: &O) -> Result<Event, Conflict> {
        if self.contains(object) {
            let (kind, id) = kind_and_id(object);
            return Err(Conflict::AlreadyExists { kind, id });
        }
        if let O::Service(s) = object {
            let name = service_name(s);
            if self.service_names.contains_key(name) {
                return Err(Conflict::NameInUse { name: name.into() });
            }
        }
        if let O::Artifact(a) = object
            && self.artifact_by_digest(&a.digest).is_some()
        {
            return Err(Conflict::AlreadyExists {
                kind: "artifact",
                id: a.digest.clone(),
            });
        }
        let stored = self.put(index, object, None);
        Ok(Event::Created(stored))
    }

    fn update(&mut self, index: u64, object: &O) -> Result<Event, Conflict> {
        let (kind, id) = kind_and_id(object);
        let old = self.get(object).ok_or_else(|| Conflict::NotFound {
            kind,
            id: id.clone(),
        })?;
        let (read, current) = (version_of(object), version_of_stored(&old));
        if read != current {
            return Err(Conflict::VersionMismatch {
                kind,
                id,
                read,
                current,
            });
        }
        if let (O::Service(new), Object::Service(prev)) = (object, &old) {
            let name = service_name(new);
            if name != service_name(prev) && self.service_by_name(name).is_some() {
                return Err(Conflict::NameInUse { name: name.into() });
            }
        }
        if let (O::Artifact(new), Object::Artifact(prev)) = (object, &old)
            && new.digest != prev.digest
        {
            return Err(Conflict::Malformed(format!(
                "artifact {id}: the digest of an artifact never changes"
            )));
        }
        let created = created_of_stored(&old);
        let new = self.put(index, object, Some(created));
        Ok(Event::Updated { old, new })
    }

    fn remove(&mut self, object: &O) -> Result<Event, Conflict> {
        let (kind, id) = kind_and_id(object);
        let removed = match object {
            O::Node(n) => self.nodes.remove(n.id.as_str()).map(Object::Node),
            O::Service(s) => self.delete_service(&s.id).map(Object::Service),
            O::Task(t) => self.delete_task(&t.id).map(Object::Task),
            O::Cluster(c) => self.clusters.remove(c.id.as_str()).map(Object::Cluster),
            O::Artifact(a) => self.delete_artifact(&a.id).map(Object::Artifact),
            O::BlobChunk(_) => None,
        };
        removed
            .map(Event::Removed)
            .ok_or(Conflict::NotFound { kind, id })
    }

    fn patch_task(&mut self, index: u64, patch: &TaskPatch) -> Result<Event, Conflict> {
        let old = self
            .tasks
            .get(patch.task_id.as_str())
            .cloned()
            .ok_or_else(|| Conflict::NotFound {
                kind: "task",
                id: patch.task_id.clone(),
            })?;
        let mut task: Task = (*old).clone();
        let mut moved = false;
        if !patch.node_id.is_empty() && !task.node_id.is_empty() && task.node_id != patch.node_id {
            return Err(Conflict::AlreadyAssigned {
                id: task.id,
                node: task.node_id,
            });
        }
        if let Some(status) = &patch.status {
            let current = task.status.as_ref().map_or(0, |s| s.state);
            // A repeated report of the stored status (an agent re-reporting after a
            // reconnect) changes nothing, so it must not bump the version either.
            // A finished task stays finished: an agent that lost track after a crash may
            // report FAILED after COMPLETE, which is a larger number but not progress.
            let finished = current >= TaskState::Complete as i32;
            if !finished
                && (status.state > current
                    || (status.state == current && task.status.as_ref() != Some(status)))
            {
                if !patch.node_id.is_empty() {
                    task.node_id = patch.node_id.clone();
                }
                task.status = Some(status.clone());
                moved = true;
            }
        }
        if let Some(desired) = patch.desired_state
            && desired > task.desired_state
        {
            task.desired_state = desired;
            moved = true;
        }
        if !moved {
            return Err(Conflict::NotForward { id: task.id });
        }
        let meta = task.meta.get_or_insert_with(Meta::default);
        meta.version = index;
        if let Some(s) = &task.status {
            meta.updated_at_ns = meta.updated_at_ns.max(s.timestamp_ns);
        }
        let new = Arc::new(task);
        self.put_task(new.clone());
        Ok(Event::Updated {
            old: Object::Task(old),
            new: Object::Task(new),
        })
    }

    fn contains(&self, object: &O) -> bool {
        match object {
            O::Node(n) => self.nodes.contains_key(n.id.as_str()),
            O::Service(s) => self.services.contains_key(s.id.as_str()),
            O::Task(t) => self.tasks.contains_key(t.id.as_str()),
            O::Cluster(c) => self.clusters.contains_key(c.id.as_str()),
            O::Artifact(a) => self.artifacts.contains_key(a.id.as_str()),
            O::BlobChunk(_) => false,
        }
    }

    fn get(&self, object: &O) -> Option<Object> {
        match object {
            O::Node(n) => self.nodes.get(n.id.as_str()).cloned().map(Object::Node),
            O::Service(s) => self
                .services
                .get(s.id.as_str())
                .cloned()
                .map(Object::Service),
            O::Task(t) => self.tasks.get(t.id.as_str()).cloned().map(Object::Task),
            O::Cluster(c) => self
                .clusters
                .get(c.id.as_str())
                .cloned()
                .map(Object::Cluster),
            O::Artifact(a) => self
                .artifacts
                .get(a.id.as_str())
                .cloned()
                .map(Object::Artifact),
            O::BlobChunk(_) => None,
        }
    }

    /// Stores `object` with `meta.version = index`: a new object when `created` is `None`
    /// (its id and name checked free), else a replacement keeping `created`.
    fn put(&mut self, index: u64, object: &O, created: Option<i64>) -> Object {
        fn stamp(meta: &mut Option<Meta>, index: u64, created: Option<i64>) {
            let m = meta.get_or_insert_with(Meta::default);
            m.version = index;
            if let Some(c) = created {
                m.created_at_ns = c;
            }
        }
        match object {
            O::Node(n) => {
                let mut n = n.clone();
                stamp(&mut n.meta, index, created);
                let n = Arc::new(n);
                self.nodes.insert(Id::from(n.id.as_str()), n.clone());
                Object::Node(n)
            }
            O::Service(s) => {
                let mut s = s.clone();
                stamp(&mut s.meta, index, created);
                let s = Arc::new(s);
                match created {
                    Some(_) => self.put_service(s.clone()),
                    None => self.insert_service(s.clone()),
                }
                Object::Service(s)
            }
            O::Task(t) => {
                let mut t = t.clone();
                stamp(&mut t.meta, index, created);
                let t = Arc::new(t);
                self.put_task(t.clone());
                Object::Task(t)
            }
            O::Cluster(c) => {
                let mut c = c.clone();
                stamp(&mut c.meta, index, created);
                let c = Arc::new(c);
                self.clusters.insert(Id::from(c.id.as_str()), c.clone());
                Object::Cluster(c)
            }
            O::Artifact(a) => {
                let mut a = a.clone();
                stamp(&mut a.meta, index, created);
                let a = Arc::new(a);
                self.put_artifact(a.clone());
                Object::Artifact(a)
            }
            O::BlobChunk(_) => unreachable!("blob chunks never reach the tables"),
        }
    }
}

fn kind_and_id(object: &O) -> (&'static str, String) {
    match object {
        O::Node(n) => ("node", n.id.clone()),
        O::Service(s) => ("service", s.id.clone()),
        O::Task(t) => ("task", t.id.clone()),
        O::Cluster(c) => ("cluster", c.id.clone()),
        O::Artifact(a) => ("artifact", a.id.clone()),
        O::BlobChunk(b) => ("blob chunk", b.digest.clone()),
    }
}

fn meta_of(object: &O) -> Option<&Meta> {
    match object {
        O::Node(n) => n.meta.as_ref(),
        O::Service(s) => s.meta.as_ref(),
        O::Task(t) => t.meta.as_ref(),
        O::Cluster(c) => c.meta.as_ref(),
        O::Artifact(a) => a.meta.as_ref(),
        O::BlobChunk(_) => None,
    }
}

fn stored_meta(object: &Object) -> Option<&Meta> {
    match object {
        Object::Node(n) => n.meta.as_ref(),
        Object::Service(s) => s.meta.as_ref(),
        Object::Task(t) => t.meta.as_ref(),
        Object::Cluster(c) => c.meta.as_ref(),
        Object::Artifact(a) => a.meta.as_ref(),
    }
}

fn version_of(object: &O) -> u64 {
    meta_of(object).map_or(0, |m| m.version)
}

fn version_of_stored(object: &Object) -> u64 {
    stored_meta(object).map_or(0, |m| m.version)
}

fn created_of_stored(object: &Object) -> i64 {
    stored_meta(object).map_or(0, |m| m.created_at_ns)
}
