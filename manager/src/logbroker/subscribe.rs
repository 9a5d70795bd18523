//! The `Logs` gRPC service (control socket): a subscriber's side of the broker.

use std::pin::Pin;

use futures::Stream;
use swarm_proto::logs_server::Logs;
use swarm_proto::{SubscribeLogsMessage, SubscribeLogsRequest, ext};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::LogBroker;
use super::actor::Command;
use super::plan::{SelectorError, resolve};
use crate::store::{LookupError, WatchFilter};

type LogStream = Pin<Box<dyn Stream<Item = Result<SubscribeLogsMessage, Status>> + Send>>;

fn selector_status(e: SelectorError) -> Status {
    match e {
        SelectorError::Empty => Status::invalid_argument(e.to_string()),
        SelectorError::Lookup(LookupError::NotFound { .. }) => Status::not_found(e.to_string()),
        SelectorError::Lookup(LookupError::Ambiguous { .. }) => {
            Status::invalid_argument(e.to_string())
        }
    }
}

#[tonic::async_trait]
impl Logs for LogBroker {
    type SubscribeLogsStream = LogStream;

    async fn subscribe_logs(
        &self,
        request: Request<SubscribeLogsRequest>,
    ) -> Result<Response<LogStream>, Status> {
        let req = request.into_inner();
        let selector = req.selector.unwrap_or_default();
        let options = req.options.unwrap_or_default();
        let store = &self.inner.store;
        let resolved = resolve(&store.view(), &selector).map_err(selector_status)?;
        let id = ext::new_id();
        let done = CancellationToken::new();
        let (tx, rx) = mpsc::channel(self.inner.config.subscriber_buffer);

        // A followed service's tasks placed later: watched from a view at least as new as
        // the one resolved above (its tasks are re-announced; the actor ignores known ones),
        // and announced only after the subscription is queued.
        let watches: Vec<_> = if options.follow {
            resolved
                .service_ids
                .iter()
                .map(|service| {
                    let (view, watcher) = store.watch(WatchFilter::Service(service.clone()));
                    let current: Vec<_> = view
                        .tasks_by_service(service)
                        .map(|t| (t.node_id.clone(), t.id.clone()))
                        .collect();
                    (current, watcher)
                })
                .collect()
        } else {
            Vec::new()
        };
        self.command(Command::Subscribe {
            id: id.clone(),
            resolved,
            options,
            tx: tx.clone(),
            done: done.clone(),
        })
        .await?;
        for (current, watcher) in watches {
            let follow = follow_service(self.clone(), id.clone(), current, watcher, done.clone());
            tokio::spawn(follow);
        }
        // The subscriber hanging up cancels the subscription on the agents.
        let broker = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = done.cancelled() => {}
                _ = tx.closed() => { let _ = broker.command(Command::Cancel { id }).await; }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Tells the actor about the service's tasks placed on a node, now and later, until the
/// subscription is done.
async fn follow_service(
    broker: LogBroker,
    id: String,
    current: Vec<(String, String)>,
    mut watcher: crate::store::Watcher,
    done: CancellationToken,
) {
    let add = |node: String, task: String| Command::AddTask {
        id: id.clone(),
        node,
        task,
    };
    for (node, task) in current {
        if !node.is_empty() && broker.command(add(node, task)).await.is_err() {
            return;
        }
    }
    loop {
        let batch = tokio::select! {
            _ = done.cancelled() => return,
            b = watcher.recv() => match b {
                Some(b) => b,
                // The store was restored from a snapshot: stop following new tasks.
                None => return,
            },
        };
        for event in &batch.events {
            let Some(t) = event.object().as_task() else {
                continue;
            };
            if !t.node_id.is_empty()
                && broker
                    .command(add(t.node_id.clone(), t.id.clone()))
                    .await
                    .is_err()
            {
                return;
            }
        }
    }
}
