//! [`TaskOutput`]: a guest's stdout and stderr, captured line by line into its task log.
//!
//! Both streams share one [`TaskLogWriter`] behind a mutex held only for the few
//! microseconds of an append. Writes are synchronous and always accepted (WASI's
//! `check-write` never blocks the guest); if the log cannot be written, the output is
//! dropped with one warning rather than failing the guest.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::tasklog::{LogStream, TaskLogWriter};

/// Bytes a guest may write in one `write` call (WASI's `check-write` answer).
const WRITE_BUDGET: usize = 64 * 1024;

/// The log sink of one task, shared by its two streams and its controller.
#[derive(Clone)]
pub(crate) struct TaskOutput {
    inner: Arc<Mutex<Sink>>,
}

struct Sink {
    writer: TaskLogWriter,
    warned: bool,
}

impl TaskOutput {
    pub(crate) fn new(writer: TaskLogWriter) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Sink {
                writer,
                warned: false,
            })),
        }
    }

    /// The stream a guest writes `stream` to.
    pub(crate) fn pipe(&self, stream: LogStream) -> LogPipe {
        LogPipe {
            output: self.clone(),
            stream,
        }
    }

    /// Flushes partial lines (the guest ended) and returns the last stderr line.
    pub(crate) fn finish(&self) -> Option<String> {
        let mut sink = self.lock();
        let result = sink.writer.finish();
        sink.warn_on(result);
        sink.writer.last_line(LogStream::Stderr).map(str::to_string)
    }

    fn write(&self, stream: LogStream, bytes: &[u8]) {
        let mut sink = self.lock();
        let result = sink.writer.write(stream, bytes);
        sink.warn_on(result);
    }

    fn lock(&self) -> MutexGuard<'_, Sink> {
        // A panic while appending leaves nothing half-done that matters: keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Sink {
    fn warn_on(&mut self, result: io::Result<()>) {
        if let Err(e) = result
            && !self.warned
        {
            self.warned = true;
            tracing::warn!(error = %e, "writing a task log failed; dropping its output");
        }
    }
}

/// One of a guest's output streams (stdout or stderr).
#[derive(Clone)]
pub(crate) struct LogPipe {
    output: TaskOutput,
    stream: LogStream,
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for LogPipe {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.output.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

impl AsyncWrite for LogPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.output.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
