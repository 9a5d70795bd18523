//! The broker actor: owns the open subscriptions and the nodes listening for them.
//!
//! It never awaits a subscriber or an agent: log lines flow from each PublishLogs stream
//! straight into the subscriber's bounded channel (the actor only hands out that channel),
//! and subscription messages to agents are `try_send`s into the listener's bounded channel —
//! a listener too slow to take them is dropped, and its agent listens again and is re-sent
//! what is still active. So one slow client or agent never blocks another subscription.

use std::collections::{BTreeSet, HashMap};

use swarm_proto::{LogOptions, LogSelector, SubscribeLogsMessage, SubscriptionMessage};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::plan::{NodeState, Progress, Resolved};

/// The subscriber's end: batches of lines, or the error that ends the stream.
pub(super) type SubscriberTx = mpsc::Sender<Result<SubscribeLogsMessage, Status>>;
/// A node's listener: subscription messages for its agent.
pub(super) type ListenerTx = mpsc::Sender<Result<SubscriptionMessage, Status>>;

/// What the broker's gRPC handlers ask of the actor.
pub(super) enum Command {
    /// A new subscription; `tx` receives its lines, `done` is cancelled when it ends.
    Subscribe {
        id: String,
        resolved: Resolved,
        options: LogOptions,
        tx: SubscriberTx,
        done: CancellationToken,
    },
    /// A following service subscription's service has a (new) task on `node`.
    AddTask {
        id: String,
        node: String,
        task: String,
    },
    /// The subscriber left.
    Cancel { id: String },
    /// A node's agent listens for subscriptions; replaces its previous listener.
    Listen {
        node: String,
        listener: u64,
        tx: ListenerTx,
    },
    /// That listener ended (its session ended or the agent hung up).
    Unlisten { node: String, listener: u64 },
    /// A node opened its PublishLogs stream: where to send its lines, or `None` for a
    /// subscription that is over or not the node's.
    Publishing {
        id: String,
        node: String,
        reply: oneshot::Sender<Option<(SubscriberTx, CancellationToken)>>,
    },
    /// A node has sent everything for the subscription.
    Closed { id: String, node: String },
}

struct Subscription {
    service_ids: Vec<String>,
    options: LogOptions,
    tasks: HashMap<String, BTreeSet<String>>,
    progress: Progress,
    tx: SubscriberTx,
    done: CancellationToken,
}

impl Subscription {
    fn message(&self, id: &str, node: &str) -> SubscriptionMessage {
        SubscriptionMessage {
            id: id.to_string(),
            selector: Some(LogSelector {
                service_ids: self.service_ids.clone(),
                task_ids: self
                    .tasks
                    .get(node)
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect(),
                node_ids: Vec::new(),
            }),
            options: Some(self.options.clone()),
            close: false,
        }
    }
}

/// The actor's state.
pub(super) struct Broker {
    subs: HashMap<String, Subscription>,
    listeners: HashMap<String, (u64, ListenerTx)>,
    answer_timeout: Duration,
}

impl Broker {
    pub(super) fn new(answer_timeout: Duration) -> Self {
        Self {
            subs: HashMap::new(),
            listeners: HashMap::new(),
            answer_timeout,
        }
    }

    /// Runs until `shutdown` or until every handle is gone.
    pub(super) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
                _ = tick.tick() => self.expire(Instant::now()),
            }
        }
        for (_, sub) in self.subs.drain() {
            sub.done.cancel();
        }
    }

    pub(super) fn handle(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Subscribe {
                id,
                resolved,
                options,
                tx,
                done,
            } => {
                let mut sub = Subscription {
                    service_ids: resolved.service_ids,
                    progress: Progress::new(options.follow),
                    options,
                    tasks: resolved.tasks_by_node.into_iter().collect(),
                    tx,
                    done,
                };
                let mut sends = Vec::new();
                for node in sub.tasks.keys() {
                    let connected = self.listeners.contains_key(node);
                    sub.progress.add(node, connected, now);
                    if connected {
                        sends.push((node.clone(), sub.message(&id, node)));
                    }
                }
                // Registered before sending: a send that drops a stuck listener updates
                // this subscription too.
                self.subs.insert(id.clone(), sub);
                for (node, msg) in sends {
                    self.send(&node, msg);
                }
                self.finish_if_complete(&id);
            }
            Command::AddTask { id, node, task } => {
                let connected = self.listeners.contains_key(&node);
                let Some(sub) = self.subs.get_mut(&id) else {
                    return;
                };
                if !sub.tasks.entry(node.clone()).or_default().insert(task) {
                    return;
                }
                sub.progress.add(&node, connected, now);
                if connected {
                    let msg = sub.message(&id, &node);
                    self.send(&node, msg);
                }
            }
            Command::Cancel { id } => self.end(&id),
            Command::Listen { node, listener, tx } => {
                self.listeners.insert(node.clone(), (listener, tx));
                let mut resend = Vec::new();
                for (id, sub) in &mut self.subs {
                    let again = match sub.progress.state(&node) {
                        Some(NodeState::Unreachable | NodeState::Sent(_)) => true,
                        // A follower's stream from the old session is gone with it.
                        Some(NodeState::Publishing) => sub.options.follow,
                        _ => false,
                    };
                    if again {
                        sub.progress.sent(&node, now);
                        resend.push(sub.message(id, &node));
                    }
                }
                for msg in resend {
                    self.send(&node, msg);
                }
            }
            Command::Unlisten { node, listener } => {
                if self
                    .listeners
                    .get(&node)
                    .is_some_and(|(l, _)| *l == listener)
                {
                    self.disconnected(&node);
                }
            }
            Command::Publishing { id, node, reply } => {
                let answer = self.subs.get_mut(&id).and_then(|sub| {
                    sub.progress.state(&node)?;
                    sub.progress.publishing(&node);
                    Some((sub.tx.clone(), sub.done.clone()))
                });
                let _ = reply.send(answer);
            }
            Command::Closed { id, node } => {
                if let Some(sub) = self.subs.get_mut(&id) {
                    sub.progress.closed(&node);
                    self.finish_if_complete(&id);
                }
            }
        }
    }

    /// Sends to a node's listener; a full or closed listener is dropped (its agent will
    /// listen again and be re-sent what is active).
    fn send(&mut self, node: &str, msg: SubscriptionMessage) {
        let Some((_, tx)) = self.listeners.get(node) else {
            return;
        };
        if tx.try_send(Ok(msg)).is_err() {
            tracing::warn!(
                node,
                "log subscription listener is not keeping up; dropping it"
            );
            self.disconnected(node);
        }
    }

    fn disconnected(&mut self, node: &str) {
        self.listeners.remove(node);
        let ids: Vec<String> = self.subs.keys().cloned().collect();
        for id in ids {
            if let Some(sub) = self.subs.get_mut(&id) {
                sub.progress.disconnected(node);
            }
            self.finish_if_complete(&id);
        }
    }

    fn expire(&mut self, now: Instant) {
        let ids: Vec<String> = self.subs.keys().cloned().collect();
        for id in ids {
            if let Some(sub) = self.subs.get_mut(&id) {
                sub.progress.expire(now, self.answer_timeout);
            }
            self.finish_if_complete(&id);
        }
    }

    fn finish_if_complete(&mut self, id: &str) {
        let Some(sub) = self.subs.get(id) else {
            return;
        };
        if !sub.progress.is_complete() {
            return;
        }
        let missing = sub.progress.missing().join(", ");
        let tx = sub.tx.clone();
        self.end(id);
        if !missing.is_empty() {
            // Sent after the lines already queued; never blocks the actor.
            tokio::spawn(async move {
                let msg = format!(
                    "incomplete log stream: the logs of node(s) {missing} could not be retrieved (down or not answering)"
                );
                let _ = tx.send(Err(Status::unavailable(msg))).await;
            });
        }
    }

    /// Removes a subscription, telling the nodes that may still be sending to stop.
    fn end(&mut self, id: &str) {
        let Some(sub) = self.subs.remove(id) else {
            return;
        };
        sub.done.cancel();
        for node in sub.progress.active() {
            let close = SubscriptionMessage {
                id: id.to_string(),
                close: true,
                ..Default::default()
            };
            if let Some((_, tx)) = self.listeners.get(node) {
                let _ = tx.try_send(Ok(close));
            }
        }
    }
}
