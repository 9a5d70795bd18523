//! Watch events and their delivery by node, by service, or to everyone.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::tables::Object;

/// One change to one object.
#[derive(Debug, Clone)]
pub enum Event {
    Created(Object),
    Updated { old: Object, new: Object },
    Removed(Object),
}

impl Event {
    /// The object as it is after the event (as it was, for a removal).
    pub fn object(&self) -> &Object {
        match self {
            Event::Created(o) | Event::Removed(o) => o,
            Event::Updated { new, .. } => new,
        }
    }

    /// The object before the event, for an update.
    pub fn old(&self) -> Option<&Object> {
        match self {
            Event::Updated { old, .. } => Some(old),
            _ => None,
        }
    }

    /// Calls `f` with each node id this event concerns (a node, or a task's old/new node).
    fn for_each_node(&self, f: &mut dyn FnMut(&str)) {
        fn node_of(o: &Object) -> Option<&str> {
            match o {
                Object::Node(n) => Some(n.id.as_str()),
                Object::Task(t) if !t.node_id.is_empty() => Some(t.node_id.as_str()),
                _ => None,
            }
        }
        let new = node_of(self.object());
        let old = self.old().and_then(node_of);
        if let Some(n) = new {
            f(n);
        }
        if let Some(o) = old
            && Some(o) != new
        {
            f(o);
        }
    }

    /// Calls `f` with each service id this event concerns (a service, or a task's service).
    fn for_each_service(&self, f: &mut dyn FnMut(&str)) {
        match self.object() {
            Object::Service(s) => f(&s.id),
            Object::Task(t) => f(&t.service_id),
            _ => {}
        }
    }
}

/// The events of one applied raft entry (or of several, applied together).
#[derive(Debug, Clone)]
pub struct EventBatch {
    /// Raft index after these events.
    pub index: u64,
    pub events: Vec<Event>,
}

/// What a watcher wants to see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchFilter {
    /// Every event (leader components).
    All,
    /// The node and the tasks assigned to it (before or after the change).
    Node(String),
    /// The service and its tasks.
    Service(String),
}

/// The receiving end of a watch. It closes when the store is restored from a snapshot or
/// shut down; the watcher should then take a new view and watch again.
pub type Watcher = mpsc::UnboundedReceiver<Arc<EventBatch>>;
type Sink = mpsc::UnboundedSender<Arc<EventBatch>>;
/// Calls back with each key (node or service id) an event concerns.
type KeysOf = fn(&Event, &mut dyn FnMut(&str));

/// Subscribers, indexed so that delivering an event touches only those it concerns.
#[derive(Default)]
pub(super) struct Watchers {
    all: Vec<Sink>,
    by_node: HashMap<String, Vec<Sink>>,
    by_service: HashMap<String, Vec<Sink>>,
}

impl Watchers {
    pub(super) fn add(&mut self, filter: WatchFilter) -> Watcher {
        let (tx, rx) = mpsc::unbounded_channel();
        match filter {
            WatchFilter::All => self.all.push(tx),
            WatchFilter::Node(id) => self.by_node.entry(id).or_default().push(tx),
            WatchFilter::Service(id) => self.by_service.entry(id).or_default().push(tx),
        }
        rx
    }

    /// Drops every subscription (their receivers see the channel close).
    pub(super) fn clear(&mut self) {
        *self = Watchers::default();
    }

    pub(super) fn count(&self) -> usize {
        self.all.len()
            + self.by_node.values().map(Vec::len).sum::<usize>()
            + self.by_service.values().map(Vec::len).sum::<usize>()
    }

    pub(super) fn dispatch(&mut self, index: u64, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let keyed =
            |subs: &HashMap<String, Vec<Sink>>, each: KeysOf| -> HashMap<String, Vec<Event>> {
                let mut out: HashMap<String, Vec<Event>> = HashMap::new();
                if subs.is_empty() {
                    return out;
                }
                for ev in &events {
                    each(ev, &mut |key: &str| {
                        if subs.contains_key(key) {
                            out.entry(key.to_string()).or_default().push(ev.clone());
                        }
                    });
                }
                out
            };
        let per_node = keyed(&self.by_node, |e, f| e.for_each_node(f));
        let per_service = keyed(&self.by_service, |e, f| e.for_each_service(f));
        send_keyed(&mut self.by_node, index, per_node);
        send_keyed(&mut self.by_service, index, per_service);
        if !self.all.is_empty() {
            let batch = Arc::new(EventBatch { index, events });
            self.all.retain(|tx| tx.send(batch.clone()).is_ok());
        }
    }
}

fn send_keyed(
    subs: &mut HashMap<String, Vec<Sink>>,
    index: u64,
    batches: HashMap<String, Vec<Event>>,
) {
    for (key, events) in batches {
        let batch = Arc::new(EventBatch { index, events });
        if let Some(sinks) = subs.get_mut(&key) {
            sinks.retain(|tx| tx.send(batch.clone()).is_ok());
            if sinks.is_empty() {
                subs.remove(&key);
            }
        }
    }
}
