//! The log publisher: answers the managers' log subscriptions with this node's task logs
//! (SwarmKit's `agent/worker.go` Subscribe + the log broker client).
//!
//! ```text
//!  SessionLinks ──(session up)──▶ LogBroker.ListenSubscriptions(session id)
//!                                     │ SubscriptionMessage{id, tasks, options}
//!                                     ▼
//!                         subscription.rs (one per id) ── TaskStream per task (task_stream.rs)
//!                                     │                     reads tasklog files (tail, follow)
//!                                     ▼
//!                         LogBroker.PublishLogs(subscription id, lines…, close)
//! ```
//!
//! It never opens a connection of its own: it uses the session's channel and id, and every
//! subscription ends with the session that brought it (the broker re-sends the active ones
//! on the next session). A listen that fails (e.g. the manager is not the leader) is retried
//! while the session lasts.

mod subscription;
mod task_stream;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use swarm_proto::ListenSubscriptionsRequest;
use swarm_proto::log_broker_client::LogBrokerClient;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::session::{Link, SessionLinks};
use crate::taskdb::TaskDb;
use subscription::Env;

/// Where the logs are and how often a followed file is checked for new lines.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// `<state-dir>/logs`.
    pub logs_dir: PathBuf,
    /// How often a followed log is polled when it has nothing new.
    pub poll_interval: Duration,
    /// Wait before listening again after a failed listen, within one session.
    pub retry: Duration,
}

impl PublisherConfig {
    /// Defaults for the logs in `logs_dir`: poll every 100 ms, retry every second.
    pub fn new(logs_dir: PathBuf) -> Self {
        Self {
            logs_dir,
            poll_interval: Duration::from_millis(100),
            retry: Duration::from_secs(1),
        }
    }
}

/// Runs until `shutdown`: for every session that comes up, listens for subscriptions and
/// serves them.
pub async fn run(
    links: SessionLinks,
    db: TaskDb,
    config: PublisherConfig,
    shutdown: CancellationToken,
) {
    let mut rx = links.subscribe();
    loop {
        let link = rx.borrow_and_update().clone();
        let session = shutdown.child_token();
        let serving = async {
            if let Some(link) = link {
                serve_session(link, &db, &config, &session).await;
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            _ = shutdown.cancelled() => { session.cancel(); return; }
            changed = rx.changed() => {
                session.cancel();
                if changed.is_err() { return; }
            }
            _ = serving => {}
        }
    }
}

/// Listens for subscriptions on one session until it is cancelled.
async fn serve_session(
    link: Link,
    db: &TaskDb,
    config: &PublisherConfig,
    session: &CancellationToken,
) {
    let env = Env {
        link: link.clone(),
        db: db.clone(),
        logs_dir: config.logs_dir.clone(),
        poll_interval: config.poll_interval,
    };
    loop {
        let mut client = LogBrokerClient::new(link.channel.clone());
        let request = ListenSubscriptionsRequest {
            session_id: link.session_id.clone(),
        };
        let listened = tokio::select! {
            _ = session.cancelled() => return,
            r = client.listen_subscriptions(request) => r,
        };
        match listened {
            Ok(stream) => listen(stream.into_inner(), &env, session).await,
            Err(status) => {
                tracing::debug!(error = %status, "cannot listen for log subscriptions yet");
            }
        }
        tokio::select! {
            _ = session.cancelled() => return,
            _ = tokio::time::sleep(config.retry) => {}
        }
    }
}

/// A subscription being served: how to stop it and how to give it more tasks.
struct Running {
    cancel: CancellationToken,
    more: mpsc::UnboundedSender<Vec<String>>,
}

/// Serves the subscriptions of one listen stream until it ends; they all end with it.
async fn listen(
    mut stream: tonic::Streaming<swarm_proto::SubscriptionMessage>,
    env: &Env,
    session: &CancellationToken,
) {
    let listening = session.child_token();
    let _stop_all = listening.clone().drop_guard();
    let mut running: HashMap<String, Running> = HashMap::new();
    loop {
        let msg = tokio::select! {
            _ = session.cancelled() => return,
            m = stream.message() => m,
        };
        let msg = match msg {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(status) => {
                tracing::debug!(error = %status, "log subscription stream ended");
                return;
            }
        };
        running.retain(|_, r| !r.cancel.is_cancelled());
        if msg.close {
            if let Some(r) = running.remove(&msg.id) {
                r.cancel.cancel();
            }
            continue;
        }
        if let Some(r) = running.get(&msg.id) {
            let ids = msg.selector.map(|s| s.task_ids).unwrap_or_default();
            let _ = r.more.send(ids);
            continue;
        }
        let cancel = listening.child_token();
        let (more, more_rx) = mpsc::unbounded_channel();
        running.insert(
            msg.id.clone(),
            Running {
                cancel: cancel.clone(),
                more,
            },
        );
        tokio::spawn(subscription::run(env.clone(), msg, more_rx, cancel));
    }
}
