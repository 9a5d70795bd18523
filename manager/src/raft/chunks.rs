//! Raft messages on the wire: a message is split into [`RaftMessageChunk`]s of at most
//! [`CHUNK_SIZE`] bytes (only snapshots are that large), and [`Assembler`] puts them back
//! together on the receiving side. Pure.

use protobuf::Message as _;
use raft::prelude::Message;
use swarm_proto::RaftMessageChunk;

/// The largest piece sent in one gRPC message (well under tonic's 4 MiB default limit).
pub const CHUNK_SIZE: usize = 1024 * 1024;

/// The most a reassembled message may hold (a store snapshot of several 100k tasks).
pub const MAX_MESSAGE: usize = 1024 * 1024 * 1024;

/// Encodes `message` as one or more chunks, in order.
pub fn split(message: &Message) -> Vec<RaftMessageChunk> {
    let bytes = message
        .write_to_bytes()
        .expect("a raft message always encodes");
    if bytes.len() <= CHUNK_SIZE {
        return vec![RaftMessageChunk {
            data: bytes,
            more: false,
        }];
    }
    let pieces = bytes.chunks(CHUNK_SIZE).count();
    bytes
        .chunks(CHUNK_SIZE)
        .enumerate()
        .map(|(i, piece)| RaftMessageChunk {
            data: piece.to_vec(),
            more: i + 1 < pieces,
        })
        .collect()
}

/// Collects chunks until a message is complete.
#[derive(Debug, Default)]
pub struct Assembler {
    pending: Vec<u8>,
}

/// Why a stream of chunks is refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ChunkError {
    #[error("raft message larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("raft message does not decode: {0}")]
    Decode(String),
}

impl Assembler {
    /// Adds `chunk`; returns the message it completes, if any.
    pub fn push(&mut self, chunk: RaftMessageChunk) -> Result<Option<Message>, ChunkError> {
        if self.pending.len() + chunk.data.len() > MAX_MESSAGE {
            self.pending.clear();
            return Err(ChunkError::TooLarge);
        }
        if self.pending.is_empty() && !chunk.more {
            return decode(&chunk.data).map(Some);
        }
        self.pending.extend_from_slice(&chunk.data);
        if chunk.more {
            return Ok(None);
        }
        let bytes = std::mem::take(&mut self.pending);
        decode(&bytes).map(Some)
    }
}

fn decode(bytes: &[u8]) -> Result<Message, ChunkError> {
    Message::parse_from_bytes(bytes).map_err(|e| ChunkError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use raft::prelude::{MessageType, Snapshot};

    use super::*;

    fn snapshot_message(size: usize) -> Message {
        let snapshot = Snapshot {
            data: (0..size)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<_>>()
                .into(),
            ..Default::default()
        };
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgSnapshot);
        m.to = 2;
        m.from = 1;
        m.set_snapshot(snapshot);
        m
    }

    #[test]
    fn small_messages_travel_in_one_chunk() {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgHeartbeat);
        m.commit = 7;
        let chunks = split(&m);
        assert_eq!(chunks.len(), 1);
        assert!(!chunks[0].more);
        assert_eq!(
            Assembler::default().push(chunks[0].clone()).unwrap(),
            Some(m)
        );
    }

    #[test]
    fn a_large_snapshot_is_split_and_reassembled() {
        let m = snapshot_message(3 * CHUNK_SIZE + 17);
        let chunks = split(&m);
        assert_eq!(chunks.len(), 4);
        assert!(chunks.iter().all(|c| c.data.len() <= CHUNK_SIZE));
        let mut a = Assembler::default();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(a.push(c).unwrap());
        }
        assert_eq!(out, vec![m]);
        // The assembler is ready for the next message.
        let small = snapshot_message(10);
        assert_eq!(a.push(split(&small).remove(0)).unwrap(), Some(small));
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let e = Assembler::default()
            .push(RaftMessageChunk {
                data: vec![0xff; 9],
                more: false,
            })
            .unwrap_err();
        assert!(matches!(e, ChunkError::Decode(_)), "{e:?}");
    }
}
