//! [`GrpcTransport`]: raft messages to other managers over mutual TLS, one long-lived
//! client stream (`Raft.StreamRaftMessage`) per peer.
//!
//! ```text
//!  driver ── send(msgs) ──▶ per-peer queue (bounded) ──▶ peer task: dial (mTLS) → stream
//!                                │ full: dropped,                │ chunks in order
//!                                ▼ peer reported unreachable     ▼ error: unreachable, redial
//! ```
//! Sending never blocks the driver: raft resends what is lost. A peer that cannot be reached
//! is reported to raft (it probes instead of streaming); a snapshot's outcome is reported
//! too, so raft retries a failed one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use raft::prelude::{Message, MessageType};
use swarm_agent::certs::ClientConfig;
use swarm_proto::raft_client::RaftClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::RaftHandle;
use super::chunks::split;
use super::peers::PeerAddrs;
use super::transport::Transport;
use crate::metrics;

/// Messages queued per peer before new ones are dropped.
const QUEUE: usize = 4096;
/// How long dialling a peer may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between attempts to reach a peer that failed.
const REDIAL_PAUSE: Duration = Duration::from_millis(100);

/// The raft transport between managers.
#[derive(Clone)]
pub struct GrpcTransport {
    inner: Arc<Inner>,
}

struct Inner {
    addrs: PeerAddrs,
    tls: Arc<ClientConfig>,
    raft: OnceLock<RaftHandle>,
    queues: Mutex<HashMap<u64, mpsc::Sender<Message>>>,
    shutdown: CancellationToken,
}

impl GrpcTransport {
    /// A transport dialling peers found in `addrs` with `tls` (this manager's certificate).
    pub fn new(addrs: PeerAddrs, tls: Arc<ClientConfig>, shutdown: CancellationToken) -> Self {
        Self {
            inner: Arc::new(Inner {
                addrs,
                tls,
                raft: OnceLock::new(),
                queues: Mutex::default(),
                shutdown,
            }),
        }
    }

    /// Connects the transport to the driver it reports to (once the driver runs).
    pub fn attach(&self, raft: RaftHandle) {
        let _ = self.inner.raft.set(raft);
    }

    fn queue(&self, to: u64) -> mpsc::Sender<Message> {
        let mut queues = self.inner.queues.lock().expect("queues lock");
        if let Some(q) = queues.get(&to).filter(|q| !q.is_closed()) {
            return q.clone();
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(peer_loop(to, rx, Arc::clone(&self.inner)));
        queues.insert(to, tx.clone());
        tx
    }
}

impl Transport for GrpcTransport {
    fn send(&self, messages: Vec<Message>) {
        for m in messages {
            let to = m.to;
            if self.queue(to).try_send(m).is_err() {
                self.inner.unreachable(to);
            }
        }
    }
}

impl Inner {
    fn unreachable(&self, to: u64) {
        if let Some(raft) = self.raft.get() {
            raft.report_unreachable(to);
        }
    }

    fn snapshot_sent(&self, to: u64, ok: bool) {
        if let Some(raft) = self.raft.get() {
            raft.report_snapshot(to, ok);
        }
    }
}

/// Delivers the messages for peer `to`, dialling again whenever the stream breaks.
async fn peer_loop(to: u64, mut rx: mpsc::Receiver<Message>, inner: Arc<Inner>) {
    let mut first = None;
    loop {
        if first.is_none() {
            first = tokio::select! {
                _ = inner.shutdown.cancelled() => return,
                m = rx.recv() => match m { Some(m) => Some(m), None => return },
            };
        }
        let Some(addr) = inner.addrs.get(to) else {
            tracing::debug!(
                to = format_args!("{to:x}"),
                "no address for raft peer; message dropped"
            );
            drop_message(&inner, to, first.take());
            continue;
        };
        let channel = match swarm_agent::certs::connect(&addr, inner.tls.clone(), DIAL_TIMEOUT)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(to = format_args!("{to:x}"), %addr, error = %e, "raft peer unreachable");
                drop_message(&inner, to, first.take());
                pause(&inner, &mut rx).await;
                continue;
            }
        };
        let (chunks, chunk_rx) = mpsc::channel(64);
        let mut call = tokio::spawn(async move {
            RaftClient::new(channel)
                .stream_raft_message(ReceiverStream::new(chunk_rx))
                .await
        });
        loop {
            let m = match first.take() {
                Some(m) => m,
                None => tokio::select! {
                    _ = inner.shutdown.cancelled() => { call.abort(); return }
                    m = rx.recv() => match m { Some(m) => m, None => { call.abort(); return } },
                    ended = &mut call => {
                        tracing::debug!(to = format_args!("{to:x}"), %addr, outcome = ?ended.map(|r| r.map(|_| ())), "raft stream ended");
                        break;
                    }
                },
            };
            let snapshot = m.get_msg_type() == MessageType::MsgSnapshot;
            let pieces = split(&m);
            let (count, bytes) = (pieces.len(), pieces.iter().map(|c| c.data.len()).sum());
            let mut sent = true;
            for chunk in pieces {
                if chunks.send(chunk).await.is_err() {
                    sent = false;
                    break;
                }
            }
            if snapshot {
                if sent {
                    snapshot_metrics(to, &m, count, bytes);
                }
                inner.snapshot_sent(to, sent);
            }
            if !sent {
                break;
            }
        }
        call.abort();
        inner.unreachable(to);
        pause(&inner, &mut rx).await;
    }
}

/// Counts and logs a snapshot handed to the stream in `chunks` pieces of `bytes` in all.
fn snapshot_metrics(to: u64, m: &Message, chunks: usize, bytes: usize) {
    metrics::RAFT_SNAPSHOTS.with_label_values(&["sent"]).inc();
    metrics::RAFT_SNAPSHOT_CHUNKS_SENT.inc_by(chunks as u64);
    metrics::RAFT_SNAPSHOT_BYTES_SENT.inc_by(bytes as u64);
    tracing::info!(
        to = format_args!("{to:x}"),
        index = m.get_snapshot().get_metadata().index,
        bytes,
        chunks,
        "raft snapshot sent"
    );
}

/// Reports a message that could not be sent.
fn drop_message(inner: &Inner, to: u64, m: Option<Message>) {
    if let Some(m) = m
        && m.get_msg_type() == MessageType::MsgSnapshot
    {
        inner.snapshot_sent(to, false);
    }
    inner.unreachable(to);
}

/// Waits before redialling, dropping what raft sends meanwhile (it resends).
async fn pause(inner: &Inner, rx: &mut mpsc::Receiver<Message>) {
    let until = tokio::time::Instant::now() + REDIAL_PAUSE;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return,
            _ = inner.shutdown.cancelled() => return,
            m = rx.recv() => match m {
                Some(m) if m.get_msg_type() == MessageType::MsgSnapshot => {
                    inner.snapshot_sent(m.to, false);
                }
                Some(_) => {}
                None => return,
            },
        }
    }
}
