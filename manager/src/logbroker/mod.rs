//! The log broker: streams task logs from the agents to `swarmctl service logs` (SwarmKit's
//! `manager/logbroker`).
//!
//! ```text
//!  swarmctl ─ Logs.SubscribeLogs(selector, options) ─▶ subscribe.rs ── resolve (plan.rs)
//!      ▲                                                   │ Subscribe
//!      │ lines (bounded channel per subscriber)            ▼
//!      │                                           actor.rs (Broker): subscriptions,
//!      │                                           node listeners, progress per node
//!      │                                                   │ SubscriptionMessage (try_send)
//!      │                                                   ▼
//!  agent.rs ◀──────────── LogBroker.ListenSubscriptions (per node session) ── agents.rs
//!      └──────────────── LogBroker.PublishLogs (per subscription) ──▶ agents.rs ──┘
//! ```
//!
//! Subscriptions are resolved to the tasks of each node (services, tasks and nodes given by
//! id, name or prefix), sent to the nodes that are connected, and — when following a
//! service — extended to tasks the service starts later (a store watch per service). One
//! that does not follow ends when every node has closed its stream; nodes that are down, or
//! do not answer within [`BrokerConfig::answer_timeout`], are reported in a final
//! `UNAVAILABLE` "incomplete log stream" error after the lines that did arrive. A subscriber
//! that hangs up cancels the subscription on the agents.
//!
//! Agents are authenticated by their dispatcher session id, so the broker only serves while
//! the dispatcher does (on the leader).

mod actor;
mod agents;
mod plan;
mod subscribe;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use swarm_proto::log_broker_server::LogBrokerServer;
use swarm_proto::logs_server::LogsServer;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use plan::{Resolved, SelectorError, resolve};

use crate::dispatcher::Dispatcher;
use crate::store::Store;

/// Broker timing and buffer sizes.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// How long a connected node may take to open its PublishLogs stream for a subscription
    /// that does not follow, before its logs are reported missing.
    pub answer_timeout: Duration,
    /// Batches of lines buffered per subscriber before publishers wait (backpressure).
    pub subscriber_buffer: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            answer_timeout: Duration::from_secs(10),
            subscriber_buffer: 64,
        }
    }
}

/// A handle to the broker; clone it into both gRPC services.
#[derive(Clone)]
pub struct LogBroker {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    dispatcher: Dispatcher,
    commands: mpsc::Sender<actor::Command>,
    config: BrokerConfig,
    next_listener: AtomicU64,
}

impl LogBroker {
    /// Starts the broker actor, which runs until `shutdown`.
    pub fn spawn(
        store: Store,
        dispatcher: Dispatcher,
        config: BrokerConfig,
        shutdown: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(actor::Broker::new(config.answer_timeout).run(rx, shutdown));
        Self {
            inner: Arc::new(Inner {
                store,
                dispatcher,
                commands: tx,
                config,
                next_listener: AtomicU64::new(1),
            }),
        }
    }

    /// The `Logs` service, for the control socket.
    pub fn logs_service(&self) -> LogsServer<Self> {
        LogsServer::new(self.clone())
    }

    /// The `LogBroker` service, for the agents' listener.
    pub fn broker_service(&self) -> LogBrokerServer<Self> {
        LogBrokerServer::new(self.clone())
    }

    async fn command(&self, cmd: actor::Command) -> Result<(), tonic::Status> {
        self.inner
            .commands
            .send(cmd)
            .await
            .map_err(|_| tonic::Status::unavailable("the log broker is shutting down"))
    }

    fn listener_id(&self) -> u64 {
        self.inner.next_listener.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
