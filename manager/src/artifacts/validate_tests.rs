use super::*;

#[test]
fn names_and_tags() {
    assert_eq!(name_tag("hello", "").unwrap(), "hello:latest");
    assert_eq!(name_tag("hello", "1.0").unwrap(), "hello:1.0");
    let err = |n: &str, t: &str| name_tag(n, t).unwrap_err().to_string();
    assert!(err("", "").contains("artifact name is required"));
    assert!(err("team/hello", "").contains("have no '/'"));
    assert!(
        err("Hello", "").contains("must be lowercase"),
        "{}",
        err("Hello", "")
    );
    assert!(err("hello", "bad tag").contains("a tag is up to 128"));
    assert!(err("hello:1", "").contains("give the tag separately"));
}

#[test]
fn size_limit_message() {
    assert!(size(DEFAULT_MAX_SIZE, DEFAULT_MAX_SIZE).is_ok());
    assert_eq!(
        size(80 * 1024 * 1024, DEFAULT_MAX_SIZE)
            .unwrap_err()
            .to_string(),
        "artifact is 80.0 MiB; the limit is 64 MiB"
    );
    assert_eq!(human_size(512, true), "512 B");
    assert_eq!(human_size(1536, false), "1.5 KiB");
}

#[test]
fn digests_and_received_bytes() {
    let bytes = b"\0asm\x01\0\0\0";
    let d = swarm_agent::artifacts::digest_of(bytes);
    assert!(digest(&d).is_ok());
    assert!(
        digest("sha256:abc")
            .unwrap_err()
            .to_string()
            .contains("64 lowercase hex")
    );
    assert!(received(bytes, 8, &d).is_ok());
    assert!(
        received(bytes, 9, &d)
            .unwrap_err()
            .to_string()
            .contains("announced 9 bytes but sent 8")
    );
    let other = swarm_agent::artifacts::digest_of(b"x");
    let msg = received(bytes, 8, &other).unwrap_err().to_string();
    assert!(msg.starts_with("digest mismatch"), "{msg}");
}

#[test]
fn kinds() {
    assert_eq!(
        kind(b"\0asm\x01\0\0\0").unwrap(),
        ArtifactKind::ArtifactModule
    );
    let module = wat::parse_str("(module (func (export \"f\") (result i32) i32.const 1))").unwrap();
    assert_eq!(kind(&module).unwrap(), ArtifactKind::ArtifactModule);
    let component = wat::parse_str("(component)").unwrap();
    assert_eq!(kind(&component).unwrap(), ArtifactKind::ArtifactComponent);
    assert_eq!(
        kind(b"#!/bin/sh\necho hi\n").unwrap_err().to_string(),
        "not a WebAssembly module or component: bad magic number"
    );
    // A header followed by garbage.
    let mut broken = b"\0asm\x01\0\0\0".to_vec();
    broken.extend_from_slice(&[0x01, 0xff, 0xff]);
    let msg = kind(&broken).unwrap_err().to_string();
    assert!(msg.starts_with("not a valid WebAssembly module: "), "{msg}");
}
