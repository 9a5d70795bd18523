//! What a push must satisfy before any byte is replicated: a valid `NAME:TAG`, a size under
//! the limit, the digest it claims, and bytes that parse as a WebAssembly component or core
//! module. Pure functions; each error message says what was wrong and what is expected.

use swarm_proto::ArtifactKind;
use wasmparser::{Parser, Validator, WasmFeatures};

use crate::api::ValidationError;
use crate::api::validate;
use crate::store::DEFAULT_TAG;

/// The default largest artifact a manager accepts: 64 MiB (every manager keeps every blob,
/// and the raft log carries it once).
pub const DEFAULT_MAX_SIZE: u64 = 64 * 1024 * 1024;

type Result<T = ()> = std::result::Result<T, ValidationError>;

/// `NAME:TAG` for a push of `name` with `tag` (empty → `latest`), or why it is invalid.
pub fn name_tag(name: &str, tag: &str) -> Result<String> {
    if name.is_empty() {
        return Err(ValidationError::new(
            "artifact name is required: push FILE NAME[:TAG]",
        ));
    }
    if name.contains('/') {
        return Err(ValidationError::new(format!(
            "invalid artifact name {name:?}: the artifact store's names have no '/' (registry \
             references such as registry.example.com/app:1.0 are pulled, not pushed)"
        )));
    }
    if name.contains(':') || name.contains('@') {
        return Err(ValidationError::new(format!(
            "invalid artifact name {name:?}: give the tag separately (NAME:TAG), without a digest"
        )));
    }
    let tag = if tag.is_empty() { DEFAULT_TAG } else { tag };
    let reference = format!("{name}:{tag}");
    validate::artifact(&reference)?;
    Ok(reference)
}

/// The size is within `limit`.
pub fn size(size: u64, limit: u64) -> Result {
    if size > limit {
        return Err(ValidationError::new(format!(
            "artifact is {}; the limit is {}",
            human_size(size, true),
            human_size(limit, false)
        )));
    }
    Ok(())
}

/// The digest is `sha256:<64 lowercase hex>`.
pub fn digest(digest: &str) -> Result {
    let ok = digest.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if !ok {
        return Err(ValidationError::new(format!(
            "invalid digest {digest:?}: expected sha256: followed by 64 lowercase hex digits"
        )));
    }
    Ok(())
}

/// The received bytes are what the header announced.
pub fn received(bytes: &[u8], size: u64, digest: &str) -> Result {
    if bytes.len() as u64 != size {
        return Err(ValidationError::new(format!(
            "the push announced {size} bytes but sent {}; the upload was cut short or the file \
             changed while it was read",
            bytes.len()
        )));
    }
    let actual = swarm_agent::artifacts::digest_of(bytes);
    if actual != digest {
        return Err(ValidationError::new(format!(
            "digest mismatch: the push announced {digest} but the bytes received hash to \
             {actual}"
        )));
    }
    Ok(())
}

/// Whether `bytes` are a component or a core module, after full validation.
pub fn kind(bytes: &[u8]) -> Result<ArtifactKind> {
    let kind = if Parser::is_component(bytes) {
        ArtifactKind::ArtifactComponent
    } else if Parser::is_core_wasm(bytes) {
        ArtifactKind::ArtifactModule
    } else if bytes.starts_with(b"\0asm") {
        return Err(ValidationError::new(
            "not a WebAssembly module or component: unsupported version or layer in the header",
        ));
    } else {
        return Err(ValidationError::new(
            "not a WebAssembly module or component: bad magic number",
        ));
    };
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(bytes)
        .map_err(|e| {
            ValidationError::new(format!(
                "not a valid WebAssembly {}: {e}",
                match kind {
                    ArtifactKind::ArtifactComponent => "component",
                    _ => "module",
                }
            ))
        })?;
    Ok(kind)
}

/// A size in binary units: `80.0 MiB` (one decimal) or, for a round limit, `64 MiB`.
pub fn human_size(bytes: u64, decimals: bool) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || (!decimals && value.fract() == 0.0) {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
