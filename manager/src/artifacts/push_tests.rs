//! Pushes end to end inside one manager: the store applies at once (no raft), the blob
//! store is a real redb file attached as the store's blob sink.

use std::sync::Arc;

use futures::stream;
use swarm_proto::{
    ArtifactKind, PushArtifactHeader, PushArtifactRequest, push_artifact_request::Msg,
};
use tonic::{Code, Status};

use super::*;
use crate::artifacts::BlobStore;
use crate::store::{Tables, testing};

use swarm_guests::padded_module;

fn pusher(dir: &std::path::Path) -> Pusher {
    let store = testing::store();
    let blobs = Arc::new(BlobStore::open(&dir.join("artifacts.redb")).unwrap());
    store.memory().set_blob_sink(blobs.clone());
    Pusher {
        store,
        blobs,
        max_size: 4 * 1024 * 1024,
    }
}

fn messages(
    name: &str,
    bytes: &[u8],
    size: u64,
    digest: &str,
) -> Vec<Result<PushArtifactRequest, Status>> {
    let header = PushArtifactRequest {
        msg: Some(Msg::Header(PushArtifactHeader {
            name: name.into(),
            tag: String::new(),
            size,
            digest: digest.into(),
        })),
    };
    let data = bytes.chunks(100_000).map(|c| {
        Ok(PushArtifactRequest {
            msg: Some(Msg::Data(c.to_vec())),
        })
    });
    std::iter::once(Ok(header)).chain(data).collect()
}

async fn push(p: &Pusher, name: &str, bytes: &[u8]) -> Result<Artifact, Status> {
    let digest = swarm_agent::artifacts::digest_of(bytes);
    let msgs = messages(name, bytes, bytes.len() as u64, &digest);
    p.push(stream::iter(msgs)).await.map_err(Status::from)
}

#[tokio::test]
async fn a_push_is_chunked_sealed_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let p = pusher(dir.path());
    let bytes = padded_module(2 * CHUNK_SIZE + 12_345);
    let before = p.store.view().index;
    let a = push(&p, "big", &bytes).await.unwrap();
    assert_eq!(a.names, ["big:latest"]);
    assert_eq!(a.kind, ArtifactKind::ArtifactModule as i32);
    assert_eq!(a.size, bytes.len() as u64);
    assert_eq!(
        p.store.view().index - before,
        4,
        "three chunk entries and one commit"
    );
    let read = p.blobs.read(&a.digest, 0, usize::MAX).unwrap().unwrap();
    assert_eq!(read, bytes);

    // The same bytes again under another name: no chunk is replicated twice.
    let before = p.store.view().index;
    let again = push(&p, "alias", &bytes).await.unwrap();
    assert_eq!(again.names, ["alias:latest", "big:latest"]);
    assert_eq!(p.store.view().index - before, 1);

    // The artifact table survives a snapshot (the bytes are in the blob store).
    let snap = p.store.view().to_snapshot();
    let restored = Tables::from_snapshot(snap, 9);
    assert_eq!(restored.find_artifact("alias").unwrap().digest, a.digest);

    // Removal deletes the bytes.
    p.store
        .write_atomic(vec![store::remove(again)])
        .await
        .unwrap();
    assert_eq!(p.blobs.sealed_size(&a.digest).unwrap(), None);
}

#[tokio::test]
async fn bad_pushes_are_refused_with_clear_messages_and_replicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = pusher(dir.path());
    let script = b"#!/bin/sh\necho hi\n";
    let e = push(&p, "script", script).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        e.message(),
        "not a WebAssembly module or component: bad magic number"
    );

    let big = 5 * 1024 * 1024;
    let e = p
        .push(stream::iter(messages(
            "big",
            &[],
            big,
            &swarm_agent::artifacts::digest_of(b""),
        )))
        .await
        .map_err(Status::from)
        .unwrap_err();
    assert_eq!(e.message(), "artifact is 5.0 MiB; the limit is 4 MiB");

    let module = b"\0asm\x01\0\0\0";
    let wrong = swarm_agent::artifacts::digest_of(b"other");
    let e = p
        .push(stream::iter(messages("m", module, 8, &wrong)))
        .await
        .map_err(Status::from)
        .unwrap_err();
    assert!(
        e.message().starts_with("digest mismatch"),
        "{}",
        e.message()
    );

    let e = p
        .push(stream::iter(messages(
            "m",
            module,
            4,
            &swarm_agent::artifacts::digest_of(module),
        )))
        .await
        .map_err(Status::from)
        .unwrap_err();
    assert!(
        e.message().contains("announced 4 bytes but sent more"),
        "{}",
        e.message()
    );

    let e = p
        .push(stream::iter(messages(
            "Bad Name",
            module,
            8,
            &swarm_agent::artifacts::digest_of(module),
        )))
        .await
        .map_err(Status::from)
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(p.store.view().index, 0, "nothing was written");
}
