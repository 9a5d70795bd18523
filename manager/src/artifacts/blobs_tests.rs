//! The blob store against a real redb file: chunks, seal, read at offsets, delete, replay.

use swarm_proto::BlobChunk;

use super::*;

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn chunks(bytes: &[u8], size: usize) -> Vec<BlobChunk> {
    let d = digest(bytes);
    bytes
        .chunks(size)
        .enumerate()
        .map(|(i, c)| BlobChunk {
            digest: d.clone(),
            offset: (i * size) as u64,
            data: c.to_vec(),
            total_size: bytes.len() as u64,
        })
        .collect()
}

fn write_all(store: &BlobStore, bytes: &[u8], chunk: usize) -> String {
    let d = digest(bytes);
    let cs = chunks(bytes, chunk);
    let mut ops: Vec<BlobOp<'_>> = cs.iter().map(BlobOp::Chunk).collect();
    ops.push(BlobOp::Seal {
        digest: &d,
        size: bytes.len() as u64,
    });
    store.write_ops(&ops).unwrap();
    d
}

#[test]
fn sealed_blob_reads_back_at_any_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&dir.path().join("a.redb")).unwrap();
    let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let d = write_all(&store, &bytes, 3000);
    assert_eq!(store.sealed_size(&d).unwrap(), Some(10_000));
    assert_eq!(store.read(&d, 0, 100_000).unwrap().unwrap(), bytes);
    for (offset, len) in [(0, 10), (2999, 2), (3000, 3000), (4500, 5000), (9999, 10)] {
        let got = store.read(&d, offset, len).unwrap().unwrap();
        let end = (offset as usize + len).min(bytes.len());
        assert_eq!(
            got,
            bytes[offset as usize..end],
            "offset {offset} len {len}"
        );
    }
    assert!(store.read(&d, 10_000, 10).unwrap().unwrap().is_empty());
}

#[test]
fn incomplete_or_wrong_bytes_are_never_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&dir.path().join("a.redb")).unwrap();
    let bytes = vec![7u8; 5000];
    let d = digest(&bytes);
    let cs = chunks(&bytes, 2000);
    // The middle chunk is missing.
    store
        .write_ops(&[
            BlobOp::Chunk(&cs[0]),
            BlobOp::Chunk(&cs[2]),
            BlobOp::Seal {
                digest: &d,
                size: 5000,
            },
        ])
        .unwrap();
    assert_eq!(store.sealed_size(&d).unwrap(), None);
    assert_eq!(
        store.read(&d, 0, 10).unwrap(),
        None,
        "unsealed is not served"
    );
    // Complete, but the claimed size is wrong.
    store
        .write_ops(&[
            BlobOp::Chunk(&cs[1]),
            BlobOp::Seal {
                digest: &d,
                size: 4999,
            },
        ])
        .unwrap();
    assert_eq!(store.sealed_size(&d).unwrap(), None);
    store
        .write_ops(&[BlobOp::Seal {
            digest: &d,
            size: 5000,
        }])
        .unwrap();
    assert_eq!(store.sealed_size(&d).unwrap(), Some(5000));
}

#[test]
fn replay_is_harmless_and_delete_removes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.redb");
    let bytes = b"\0asm\x01\0\0\0".to_vec();
    let d = {
        let store = BlobStore::open(&path).unwrap();
        write_all(&store, &bytes, 3)
    };
    // Reopen (a restart) and replay the same entries.
    let store = BlobStore::open(&path).unwrap();
    assert_eq!(store.sealed_size(&d).unwrap(), Some(8));
    write_all(&store, &bytes, 3);
    assert_eq!(store.read(&d, 0, 100).unwrap().unwrap(), bytes);
    store.write_ops(&[BlobOp::Delete { digest: &d }]).unwrap();
    assert_eq!(store.sealed_size(&d).unwrap(), None);
    // A seal replayed after the delete finds no chunks and seals nothing.
    store
        .write_ops(&[BlobOp::Seal {
            digest: &d,
            size: 8,
        }])
        .unwrap();
    assert_eq!(store.sealed_size(&d).unwrap(), None);
}
