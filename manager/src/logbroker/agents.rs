//! The `LogBroker` gRPC service (agents' listener): nodes listen for subscriptions and
//! publish their tasks' lines.

use std::pin::Pin;

use futures::Stream;
use swarm_proto::log_broker_server;
use swarm_proto::{
    ListenSubscriptionsRequest, LogContext, PublishLogsMessage, PublishLogsResponse,
    SubscribeLogsMessage, SubscriptionMessage,
};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::LogBroker;
use super::actor::Command;

type SubscriptionStream = Pin<Box<dyn Stream<Item = Result<SubscriptionMessage, Status>> + Send>>;

/// Subscription messages buffered per node before the node is considered stuck.
const LISTENER_BUFFER: usize = 64;

#[tonic::async_trait]
impl log_broker_server::LogBroker for LogBroker {
    type ListenSubscriptionsStream = SubscriptionStream;

    async fn listen_subscriptions(
        &self,
        request: Request<ListenSubscriptionsRequest>,
    ) -> Result<Response<SubscriptionStream>, Status> {
        let session_id = request.into_inner().session_id;
        let (node, ended) = self.inner.dispatcher.session(&session_id)?;
        let listener = self.listener_id();
        let (tx, rx) = mpsc::channel(LISTENER_BUFFER);
        self.command(Command::Listen {
            node: node.clone(),
            listener,
            tx: tx.clone(),
        })
        .await?;
        tracing::debug!(%node, "agent listening for log subscriptions");
        let broker = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = ended.cancelled() => {
                    let _ = tx.try_send(Err(Status::unavailable("session ended; open a new one")));
                }
                _ = tx.closed() => {}
            }
            drop(tx);
            let _ = broker.command(Command::Unlisten { node, listener }).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn publish_logs(
        &self,
        request: Request<Streaming<PublishLogsMessage>>,
    ) -> Result<Response<PublishLogsResponse>, Status> {
        let mut stream = request.into_inner();
        let Some(first) = stream.message().await? else {
            return Ok(Response::new(PublishLogsResponse {}));
        };
        let (node, _) = self.inner.dispatcher.session(&first.session_id)?;
        let id = first.subscription_id.clone();
        let (reply, answer) = oneshot::channel();
        self.command(Command::Publishing {
            id: id.clone(),
            node: node.clone(),
            reply,
        })
        .await?;
        let Some((tx, done)) = answer.await.ok().flatten() else {
            return Err(Status::not_found(format!(
                "log subscription {id} is not active for this node (it ended or was cancelled)"
            )));
        };
        let mut next = Some(first);
        let result = loop {
            let msg = match next.take() {
                Some(m) => m,
                None => tokio::select! {
                    _ = done.cancelled() => break Ok(()),
                    m = stream.message() => match m {
                        Ok(Some(m)) => m,
                        Ok(None) => break Ok(()),
                        Err(e) => break Err(e),
                    },
                },
            };
            if msg.subscription_id != id {
                break Err(Status::invalid_argument(format!(
                    "one PublishLogs stream carries one subscription: got {} after {id}",
                    msg.subscription_id
                )));
            }
            if !msg.messages.is_empty() {
                let messages = msg
                    .messages
                    .into_iter()
                    .map(|mut m| {
                        // The session says which node this is; the agent does not.
                        let c = m.context.get_or_insert_with(LogContext::default);
                        c.node_id = node.clone();
                        m
                    })
                    .collect();
                let batch = Ok(SubscribeLogsMessage { messages });
                tokio::select! {
                    _ = done.cancelled() => break Ok(()),
                    sent = tx.send(batch) => if sent.is_err() { break Ok(()) },
                }
            }
            if msg.close {
                break Ok(());
            }
        };
        // Lines sent above are queued ahead of whatever ends the subscriber's stream.
        drop(tx);
        let _ = self.command(Command::Closed { id, node }).await;
        result.map(|()| Response::new(PublishLogsResponse {}))
    }
}
