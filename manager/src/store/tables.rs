//! The store's tables and indexes: immutable-by-sharing maps, cheap to clone as a read view.

use std::sync::Arc;

use imbl::{HashMap, OrdMap, OrdSet};
use swarm_proto::{Artifact, Cluster, Node, Service, StoreSnapshot, Task};

/// One stored object of any kind.
#[derive(Debug, Clone)]
pub enum Object {
    Node(Arc<Node>),
    Service(Arc<Service>),
    Task(Arc<Task>),
    Cluster(Arc<Cluster>),
    Artifact(Arc<Artifact>),
}

impl Object {
    /// The object's id.
    pub fn id(&self) -> &str {
        match self {
            Object::Node(n) => &n.id,
            Object::Service(s) => &s.id,
            Object::Task(t) => &t.id,
            Object::Cluster(c) => &c.id,
            Object::Artifact(a) => &a.id,
        }
    }

    /// The task, when this is one.
    pub fn as_task(&self) -> Option<&Arc<Task>> {
        match self {
            Object::Task(t) => Some(t),
            _ => None,
        }
    }
}

/// Ids (and names) are shared (`Arc<str>`) in every map: path-copying a persistent map
/// clones the keys and values of each node it copies (up to 64 per B-tree leaf), and a
/// refcount is far cheaper than a string allocation and its later free.
pub(super) type Id = Arc<str>;
type Ids = OrdSet<Id>;

/// All objects at one raft index, with their indexes.
///
/// Cloning is O(1) (structural sharing), so a read view is a consistent snapshot that a
/// reader may hold as long as it likes without blocking writers.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    /// Raft index of the last applied entry.
    pub index: u64,
    pub(super) clusters: OrdMap<Id, Arc<Cluster>>,
    pub(super) nodes: OrdMap<Id, Arc<Node>>,
    pub(super) services: OrdMap<Id, Arc<Service>>,
    pub(super) tasks: HashMap<Id, Arc<Task>>,
    /// Service id by service name.
    pub(super) service_names: HashMap<Id, Id>,
    pub(super) tasks_by_service: HashMap<Id, Ids>,
    pub(super) tasks_by_node: HashMap<Id, Ids>,
    /// A slot holds one task or a handful (its history), so a sorted vector is far cheaper
    /// than a tree set.
    pub(super) tasks_by_slot: HashMap<(Id, u64), Arc<Vec<Id>>>,
    /// Artifact metadata by id (the bytes are in the manager's blob store).
    pub(super) artifacts: OrdMap<Id, Arc<Artifact>>,
    /// Artifact id by digest: one artifact per digest.
    pub(super) artifact_digests: HashMap<Id, Id>,
    /// Tasks per observed state, kept as tasks are written (metrics read it in O(1)).
    task_states: std::collections::BTreeMap<i32, usize>,
}

impl Tables {
    pub fn cluster(&self, id: &str) -> Option<&Arc<Cluster>> {
        self.clusters.get(id)
    }
    /// The cluster object (there is exactly one once `init` has run).
    pub fn the_cluster(&self) -> Option<&Arc<Cluster>> {
        self.clusters.values().next()
    }
    pub fn clusters(&self) -> impl Iterator<Item = &Arc<Cluster>> {
        self.clusters.values()
    }
    pub fn node(&self, id: &str) -> Option<&Arc<Node>> {
        self.nodes.get(id)
    }
    /// Nodes in id order.
    pub fn nodes(&self) -> impl Iterator<Item = &Arc<Node>> {
        self.nodes.values()
    }
    /// How many nodes there are, in O(1).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
    pub fn service(&self, id: &str) -> Option<&Arc<Service>> {
        self.services.get(id)
    }
    pub fn service_by_name(&self, name: &str) -> Option<&Arc<Service>> {
        self.service_names
            .get(name)
            .and_then(|id| self.services.get(&**id))
    }
    /// Services in id order.
    pub fn services(&self) -> impl Iterator<Item = &Arc<Service>> {
        self.services.values()
    }
    /// How many services there are, in O(1).
    pub fn service_count(&self) -> usize {
        self.services.len()
    }
    pub fn task(&self, id: &str) -> Option<&Arc<Task>> {
        self.tasks.get(id)
    }
    pub fn tasks(&self) -> impl Iterator<Item = &Arc<Task>> {
        self.tasks.values()
    }
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }
    /// Tasks of a service, in id order.
    pub fn tasks_by_service<'a>(&'a self, service_id: &str) -> impl Iterator<Item = &'a Arc<Task>> {
        self.indexed(self.tasks_by_service.get(service_id))
    }
    /// Tasks assigned to a node, in id order.
    pub fn tasks_by_node<'a>(&'a self, node_id: &str) -> impl Iterator<Item = &'a Arc<Task>> {
        self.indexed(self.tasks_by_node.get(node_id))
    }
    /// How many tasks are assigned to a node (any state).
    pub fn node_task_count(&self, node_id: &str) -> usize {
        self.tasks_by_node.get(node_id).map_or(0, |s| s.len())
    }
    /// Tasks of one slot of a replicated service, in id order.
    pub fn tasks_by_slot<'a>(
        &'a self,
        service_id: &str,
        slot: u64,
    ) -> impl Iterator<Item = &'a Arc<Task>> {
        let ids = self
            .tasks_by_service
            .get_key_value(service_id)
            .and_then(|(service, _)| self.tasks_by_slot.get(&(service.clone(), slot)));
        ids.into_iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| self.tasks.get(id))
    }

    fn indexed<'a>(&'a self, ids: Option<&'a Ids>) -> impl Iterator<Item = &'a Arc<Task>> {
        ids.into_iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| self.tasks.get(id))
    }

    /// How many tasks are in each observed state (state number → count).
    pub fn task_state_counts(&self) -> &std::collections::BTreeMap<i32, usize> {
        &self.task_states
    }

    /// Every object, for a raft snapshot.
    pub fn to_snapshot(&self) -> StoreSnapshot {
        StoreSnapshot {
            clusters: self.clusters.values().map(|c| (**c).clone()).collect(),
            nodes: self.nodes.values().map(|n| (**n).clone()).collect(),
            services: self.services.values().map(|s| (**s).clone()).collect(),
            tasks: self.tasks.values().map(|t| (**t).clone()).collect(),
            artifacts: self.artifacts.values().map(|a| (**a).clone()).collect(),
        }
    }

    /// Every object, encoded as a [`StoreSnapshot`] (the same bytes as
    /// `to_snapshot().encode_to_vec()`) straight from the shared objects, without copying them
    /// first: a raft snapshot of a large store is taken every few seconds under heavy writes.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        use prost::encoding::message::encode;
        let mut buf = Vec::new();
        self.clusters
            .values()
            .for_each(|c| encode(1, &**c, &mut buf));
        self.nodes.values().for_each(|n| encode(2, &**n, &mut buf));
        self.services
            .values()
            .for_each(|s| encode(3, &**s, &mut buf));
        self.tasks.values().for_each(|t| encode(4, &**t, &mut buf));
        self.artifacts
            .values()
            .for_each(|a| encode(5, &**a, &mut buf));
        buf
    }

    /// Rebuilds the tables (and every index) from a snapshot taken at `index`.
    pub fn from_snapshot(snapshot: StoreSnapshot, index: u64) -> Self {
        let mut t = Tables {
            index,
            ..Default::default()
        };
        for c in snapshot.clusters {
            t.clusters.insert(Id::from(c.id.as_str()), Arc::new(c));
        }
        for n in snapshot.nodes {
            t.nodes.insert(Id::from(n.id.as_str()), Arc::new(n));
        }
        for s in snapshot.services {
            t.put_service(Arc::new(s));
        }
        for task in snapshot.tasks {
            t.put_task(Arc::new(task));
        }
        for a in snapshot.artifacts {
            t.put_artifact(Arc::new(a));
        }
        t
    }

    // ---- index maintenance (used by apply) ----

    pub(super) fn put_service(&mut self, s: Arc<Service>) {
        let id = match self.services.get_key_value(s.id.as_str()) {
            Some((id, old)) => {
                let id = id.clone();
                if service_name(old) != service_name(&s) {
                    let old_name = service_name(old).to_string();
                    self.service_names.remove(old_name.as_str());
                }
                id
            }
            None => Id::from(s.id.as_str()),
        };
        if self.service_names.get(service_name(&s)) != Some(&id) {
            self.service_names
                .insert(Id::from(service_name(&s)), id.clone());
        }
        self.services.insert(id, s);
    }

    /// Adds a service whose id and name are known to be free (a create, after its checks):
    /// one traversal of each map fewer than [`Self::put_service`].
    pub(super) fn insert_service(&mut self, s: Arc<Service>) {
        let id = Id::from(s.id.as_str());
        self.service_names
            .insert(Id::from(service_name(&s)), id.clone());
        self.services.insert(id, s);
    }

    pub(super) fn delete_service(&mut self, id: &str) -> Option<Arc<Service>> {
        let old = self.services.remove(id)?;
        self.service_names.remove(service_name(&old));
        Some(old)
    }

    pub(super) fn put_task(&mut self, t: Arc<Task>) {
        let old = self.tasks.get(t.id.as_str()).cloned();
        // Reuse the stored id: no allocation for an update.
        let id: Id = match self.tasks.get_key_value(t.id.as_str()) {
            Some((k, _)) => k.clone(),
            None => Id::from(t.id.as_str()),
        };
        match old {
            Some(old) => {
                self.count_state(&old, -1);
                // Only the indexes whose key changed are touched: a status or desired-state
                // change touches none, an assignment only the node index.
                if old.service_id != t.service_id || old.slot != t.slot {
                    self.unindex_service_and_slot(&old);
                    self.index_service_and_slot(&t, &id);
                }
                if old.node_id != t.node_id {
                    if !old.node_id.is_empty() {
                        index_remove(&mut self.tasks_by_node, old.node_id.as_str(), &old.id);
                    }
                    if !t.node_id.is_empty() {
                        index_add(&mut self.tasks_by_node, &t.node_id, &id);
                    }
                }
            }
            None => {
                self.index_service_and_slot(&t, &id);
                if !t.node_id.is_empty() {
                    index_add(&mut self.tasks_by_node, &t.node_id, &id);
                }
            }
        }
        self.count_state(&t, 1);
        self.tasks.insert(id, t);
    }

    pub(super) fn delete_task(&mut self, id: &str) -> Option<Arc<Task>> {
        let old = self.tasks.remove(id)?;
        self.count_state(&old, -1);
        self.unindex_service_and_slot(&old);
        if !old.node_id.is_empty() {
            index_remove(&mut self.tasks_by_node, old.node_id.as_str(), &old.id);
        }
        Some(old)
    }

    fn count_state(&mut self, t: &Task, delta: isize) {
        let state = t.status.as_ref().map_or(0, |s| s.state);
        let n = self.task_states.entry(state).or_default();
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            self.task_states.remove(&state);
        }
    }

    fn index_service_and_slot(&mut self, t: &Task, id: &Id) {
        let service = index_add(&mut self.tasks_by_service, &t.service_id, id);
        let slot = self.tasks_by_slot.entry((service, t.slot)).or_default();
        let ids = Arc::make_mut(slot);
        if let Err(at) = ids.binary_search(id) {
            ids.insert(at, id.clone());
        }
    }

    fn unindex_service_and_slot(&mut self, t: &Task) {
        let Some((service, _)) = self.tasks_by_service.get_key_value(t.service_id.as_str()) else {
            return;
        };
        let slot_key = (service.clone(), t.slot);
        index_remove(&mut self.tasks_by_service, t.service_id.as_str(), &t.id);
        if let Some(slot) = self.tasks_by_slot.get_mut(&slot_key) {
            if let Ok(at) = slot.binary_search_by(|i| (**i).cmp(t.id.as_str())) {
                Arc::make_mut(slot).remove(at);
            }
            if slot.is_empty() {
                self.tasks_by_slot.remove(&slot_key);
            }
        }
    }
}

/// A service's name ("" when it has no annotations).
pub fn service_name(s: &Service) -> &str {
    s.spec
        .as_ref()
        .and_then(|s| s.annotations.as_ref())
        .map_or("", |a| a.name.as_str())
}

/// Adds `id` under `key`, reusing the stored key when there is one (no allocation); returns
/// the stored key.
fn index_add(idx: &mut HashMap<Id, Ids>, key: &str, id: &Id) -> Id {
    if let Some((k, _)) = idx.get_key_value(key) {
        let k = k.clone();
        if let Some(set) = idx.get_mut(key) {
            set.insert(id.clone());
        }
        return k;
    }
    let k = Id::from(key);
    idx.insert(k.clone(), Ids::unit(id.clone()));
    k
}

fn index_remove(idx: &mut HashMap<Id, Ids>, key: &str, id: &str) {
    if let Some(set) = idx.get_mut(key) {
        set.remove(id);
        if set.is_empty() {
            idx.remove(key);
        }
    }
}
