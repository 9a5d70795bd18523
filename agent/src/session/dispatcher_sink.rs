//! The reporter's sink during a session: `UpdateTaskStatus` on the session's channel, with
//! the session id and a 5 s deadline.

use swarm_proto::dispatcher_client::DispatcherClient;
use swarm_proto::{TaskStatusUpdate, UpdateTaskStatusRequest};
use tonic::transport::Channel;

use super::RPC_TIMEOUT;
use crate::reporter::{ReportError, StatusSink};

/// Sends task statuses to the dispatcher of one session.
pub(crate) struct DispatcherSink {
    client: DispatcherClient<Channel>,
    session_id: String,
}

impl DispatcherSink {
    pub(crate) fn new(client: DispatcherClient<Channel>, session_id: String) -> Self {
        Self { client, session_id }
    }
}

#[async_trait::async_trait]
impl StatusSink for DispatcherSink {
    async fn send(&self, updates: Vec<TaskStatusUpdate>) -> Result<(), ReportError> {
        let mut client = self.client.clone();
        let mut request = tonic::Request::new(UpdateTaskStatusRequest {
            session_id: self.session_id.clone(),
            updates,
        });
        request.set_timeout(RPC_TIMEOUT);
        match tokio::time::timeout(RPC_TIMEOUT, client.update_task_status(request)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => Err(ReportError::Rpc(status)),
            Err(_) => Err(ReportError::Timeout(RPC_TIMEOUT)),
        }
    }
}
