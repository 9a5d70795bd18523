//! One subscription on this node: a [`TaskStream`] per matching task, merged into one
//! PublishLogs stream to the manager, closed when done (not following) or cancelled.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use swarm_proto::log_broker_client::LogBrokerClient;
use swarm_proto::{LogContext, LogMessage, LogOptions, PublishLogsMessage, SubscriptionMessage};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::task_stream::TaskStream;
use crate::session::Link;
use crate::taskdb::TaskDb;
use crate::tasklog::{Tail, TaskLogReader};

/// Lines batched into one PublishLogs message at most.
const BATCH: usize = 256;

/// Everything a subscription needs from the publisher.
#[derive(Clone)]
pub(super) struct Env {
    pub link: Link,
    pub db: TaskDb,
    pub logs_dir: PathBuf,
    pub poll_interval: Duration,
}

/// Streams one subscription until it is done or `cancel`led. `more` brings task ids the
/// manager adds later (a followed service started new tasks here); they are read from
/// their first line.
pub(super) async fn run(
    env: Env,
    msg: SubscriptionMessage,
    mut more: mpsc::UnboundedReceiver<Vec<String>>,
    cancel: CancellationToken,
) {
    let id = msg.id.clone();
    let options = msg.options.unwrap_or_default();
    let selector = msg.selector.unwrap_or_default();
    let (pub_tx, pub_rx) = mpsc::channel::<PublishLogsMessage>(16);
    let message = |messages: Vec<LogMessage>, close: bool| PublishLogsMessage {
        session_id: env.link.session_id.clone(),
        subscription_id: id.clone(),
        messages,
        close,
    };
    // The first message names the subscription, before any line is read.
    if pub_tx.send(message(Vec::new(), false)).await.is_err() {
        return;
    }
    let mut client = LogBrokerClient::new(env.link.channel.clone());
    let call = tokio::spawn(async move { client.publish_logs(ReceiverStream::new(pub_rx)).await });

    let (line_tx, mut line_rx) = mpsc::channel::<LogMessage>(BATCH * 4);
    let mut started = HashSet::new();
    let mut tasks = selector.task_ids.clone();
    if !selector.service_ids.is_empty() {
        match env.db.list().await {
            Ok(stored) => tasks.extend(
                stored
                    .into_iter()
                    .filter(|s| selector.service_ids.contains(&s.task.service_id))
                    .map(|s| s.task.id),
            ),
            Err(e) => tracing::warn!(error = %e, "cannot list local tasks for a log subscription"),
        }
    }
    let tail = Tail::from_wire(options.tail);
    start(&env, &options, tail, tasks, &mut started, &line_tx, &cancel).await;
    // Only a follower takes more tasks; otherwise the stream ends when the readers do.
    let mut adder = options.follow.then_some(line_tx);
    let mut more_open = true;

    loop {
        let first = tokio::select! {
            _ = cancel.cancelled() => break,
            added = more.recv(), if adder.is_some() && more_open => {
                match (added, adder.as_ref()) {
                    (Some(ids), Some(tx)) => {
                        start(&env, &options, Tail::All, ids, &mut started, tx, &cancel).await;
                    }
                    _ => more_open = false,
                }
                continue;
            }
            line = line_rx.recv() => line,
        };
        let Some(first) = first else {
            // Every reader is done: this node has sent everything.
            let _ = pub_tx.send(message(Vec::new(), true)).await;
            break;
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match line_rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let sent = tokio::select! {
            _ = cancel.cancelled() => break,
            r = pub_tx.send(message(batch, false)) => r,
        };
        if sent.is_err() {
            break;
        }
    }
    adder.take();
    drop(pub_tx);
    cancel.cancel();
    match call.await {
        Ok(Ok(_)) => {}
        Ok(Err(status)) if status.code() == tonic::Code::NotFound => {
            tracing::debug!(subscription = %id, "log subscription already over: {}", status.message());
        }
        Ok(Err(status)) => {
            tracing::warn!(subscription = %id, error = %status, "publishing logs failed");
        }
        Err(e) => tracing::warn!(subscription = %id, error = %e, "log publisher panicked"),
    }
}

/// Starts a reader for each task not started yet.
async fn start(
    env: &Env,
    options: &LogOptions,
    tail: Tail,
    tasks: Vec<String>,
    started: &mut HashSet<String>,
    out: &mpsc::Sender<LogMessage>,
    cancel: &CancellationToken,
) {
    for task_id in tasks {
        if !started.insert(task_id.clone()) {
            continue;
        }
        // The service id is known for tasks still in the DB; swarmctl can look it up.
        let service_id = match env.db.get(&task_id).await {
            Ok(Some(s)) => s.task.service_id,
            _ => String::new(),
        };
        let stream = TaskStream {
            reader: TaskLogReader::new(&env.logs_dir, &task_id),
            context: LogContext {
                service_id,
                node_id: env.link.node_id.clone(),
                task_id,
            },
            tail,
            follow: options.follow,
            streams: options.streams().collect(),
            poll_interval: env.poll_interval,
        };
        tokio::spawn(stream.run(out.clone(), cancel.child_token()));
    }
}
