//! One task's lines for one subscription: the backlog, then (when following) new lines as
//! they are written, converted to wire messages and sent in order.

use std::time::Duration;

use swarm_proto::{LogContext, LogMessage, LogStreamKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::tasklog::{LogRecord, LogStream, Tail, TaskLogReader};

/// What to read of one task and where to send it.
pub(super) struct TaskStream {
    pub reader: TaskLogReader,
    pub context: LogContext,
    pub tail: Tail,
    pub follow: bool,
    /// Streams to send; empty = both.
    pub streams: Vec<LogStreamKind>,
    pub poll_interval: Duration,
}

impl TaskStream {
    /// Sends the task's lines to `out` until done (not following), `cancel`, or `out`
    /// closes. A read error ends this task's stream with a warning (the others go on).
    pub(super) async fn run(self, out: mpsc::Sender<LogMessage>, cancel: CancellationToken) {
        let Self {
            reader,
            context,
            tail,
            follow,
            streams,
            poll_interval,
        } = self;
        let task = context.task_id.clone();
        let send = |records: Vec<LogRecord>| {
            let out = out.clone();
            let messages: Vec<LogMessage> = records
                .into_iter()
                .map(|r| to_message(r, &context))
                .filter(|m| streams.is_empty() || streams.contains(&m.stream()))
                .collect();
            async move {
                for m in messages {
                    if out.send(m).await.is_err() {
                        return false;
                    }
                }
                true
            }
        };
        let (mut reader, backlog) = match blocking(reader, move |r| r.backlog(tail)).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(%task, error = %e, "cannot read the task's logs");
                return;
            }
        };
        let sent = tokio::select! {
            _ = cancel.cancelled() => return,
            ok = send(backlog) => ok,
        };
        if !sent || !follow {
            return;
        }
        loop {
            let records;
            (reader, records) = match blocking(reader, TaskLogReader::poll).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(%task, error = %e, "stopped following the task's logs");
                    return;
                }
            };
            let idle = records.is_empty();
            let sent = tokio::select! {
                _ = cancel.cancelled() => return,
                ok = send(records) => ok,
            };
            if !sent {
                return;
            }
            if idle {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(poll_interval) => {}
                }
            }
        }
    }
}

/// Runs a blocking read on the blocking pool, handing the reader back.
async fn blocking<T: Send + 'static>(
    mut reader: TaskLogReader,
    f: impl FnOnce(&mut TaskLogReader) -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<(TaskLogReader, T)> {
    tokio::task::spawn_blocking(move || f(&mut reader).map(|v| (reader, v)))
        .await
        .map_err(std::io::Error::other)?
}

/// A stored record as a wire message (an unparsable time becomes 0).
pub(super) fn to_message(r: LogRecord, context: &LogContext) -> LogMessage {
    LogMessage {
        context: Some(context.clone()),
        timestamp: r.time.parse().unwrap_or(0),
        stream: match r.stream {
            LogStream::Stdout => LogStreamKind::LogStreamStdout,
            LogStream::Stderr => LogStreamKind::LogStreamStderr,
        } as i32,
        data: r.log.into_bytes(),
    }
}
