//! Artifact references: what `swarmctl service create ... ARTIFACT` may name once the CLI
//! has pushed any local file.

use super::{Result, invalid};

/// A wasm artifact reference: `NAME[:TAG]` in the artifact store, `sha256:<64 hex>`, or a
/// registry reference (`registry.example.com:5000/team/app:1.2`, `repo@sha256:<64 hex>`).
pub fn artifact(reference: &str) -> Result {
    let bad = |why: &str| {
        invalid(format!(
            "invalid artifact {reference:?}: {why}; expected NAME[:TAG], sha256:<64 hex digits> \
             or a registry reference such as registry.example.com/team/app:1.0"
        ))
    };
    if reference.is_empty() {
        return invalid(
            "artifact is required: NAME[:TAG], sha256:<digest>, a registry reference or a local \
             .wasm file (swarmctl pushes it)",
        );
    }
    if let Some(hex) = reference.strip_prefix("sha256:") {
        return if is_sha256_hex(hex) {
            Ok(())
        } else {
            bad("a digest is sha256: followed by 64 lowercase hex digits")
        };
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, d)) => (rest, Some(d)),
        None => (reference, None),
    };
    if let Some(d) = digest
        && !d.strip_prefix("sha256:").is_some_and(is_sha256_hex)
    {
        return bad("a digest is sha256: followed by 64 lowercase hex digits");
    }
    // The tag is after the last ':' that follows the last '/' (a ':' before it is a port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return bad("a tag is up to 128 letters, digits, '_', '.' and '-'");
        }
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 && is_domain(components[0]) {
        components.remove(0);
    }
    for c in components {
        if c.is_empty() {
            return bad("the name has an empty path component");
        }
        if c.chars().any(|c| c.is_ascii_uppercase()) {
            return bad("the name must be lowercase");
        }
        let ok = c.starts_with(|c: char| c.is_ascii_alphanumeric())
            && c.ends_with(|c: char| c.is_ascii_alphanumeric())
            && c.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            });
        if !ok {
            return bad(
                "a name component is lowercase letters, digits, '.', '_' and '-', starting and \
                 ending with a letter or digit",
            );
        }
    }
    Ok(())
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, 'a'..='f'))
}

/// Docker's rule: the first component is a registry host when it has a '.' or a ':' (port)
/// or is `localhost`.
fn is_domain(component: &str) -> bool {
    let (host, port) = match component.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (component, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    host_ok && port_ok && (host.contains('.') || port.is_some() || host == "localhost")
}
