//! The syntax of a registry reference (pure), the same for container images and WASM
//! artifacts:
//!
//! ```text
//! HOST[:PORT]/REPO[:TAG|@sha256:HEX]     e.g. localhost:5000/hello:1, ghcr.io/org/app@sha256:…
//! ```
//!
//! REPO is one or more `/`-separated components of lowercase letters, digits, `.`, `_`, `-`;
//! a tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` as in the distribution spec. A reference is
//! kept as written; oci-client resolves it when pulling.

/// Checks that `s` is a registry reference.
///
/// # Errors
/// A text saying what is wrong (the caller adds the expected syntax).
pub fn check(s: &str) -> Result<(), String> {
    let name = match s.split_once('@') {
        Some((n, d)) => {
            let hex = d
                .strip_prefix("sha256:")
                .ok_or_else(|| format!("unsupported digest '{d}'"))?;
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!("invalid digest '{d}'"));
            }
            n
        }
        None => s,
    };
    let last_slash = name.rfind('/').unwrap_or(0);
    let repo = match name[last_slash..].find(':') {
        Some(i) => {
            check_tag(&name[last_slash + i + 1..])?;
            &name[..last_slash + i]
        }
        None => name,
    };
    let ok_component = |c: &str| {
        !c.is_empty()
            && c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
    };
    let mut parts = repo.split('/');
    let host = parts.next().unwrap_or_default();
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("invalid registry host".into());
    }
    if !parts.clone().all(ok_component) || repo.split('/').count() < 2 {
        return Err("invalid repository name".into());
    }
    Ok(())
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
///
/// # Errors
/// `invalid tag '…'`.
pub fn check_tag(t: &str) -> Result<(), String> {
    let ok = !t.is_empty()
        && t.len() <= 128
        && t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid tag '{t}'"))
    }
}

/// The last repository component, without tag or digest: `hello` of
/// `localhost:5000/team/hello:1`. A WASM task's argv[0].
pub fn short_name(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or_default();
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split(':').next().unwrap_or(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_references_with_tag_digest_or_neither() {
        for r in [
            "localhost:5000/busybox:1",
            "127.0.0.1:5000/lib/busybox",
            "registry.example.com/busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(check(r), Ok(()), "{r}");
        }
        let err = |s: &str| check(s).unwrap_err();
        assert_eq!(err("busybox"), "invalid repository name");
        assert_eq!(err("localhost:5000/Busy"), "invalid repository name");
        assert_eq!(err("localhost:5000/b:"), "invalid tag ''");
        assert_eq!(
            err("localhost:5000/b@md5:00"),
            "unsupported digest 'md5:00'"
        );
        assert_eq!(
            err("localhost:5000/b@sha256:00"),
            "invalid digest 'sha256:00'"
        );
    }

    #[test]
    fn the_short_name_is_the_last_component() {
        assert_eq!(short_name("localhost:5000/team/hello:1"), "hello");
        assert_eq!(short_name("127.0.0.1:5000/hello"), "hello");
        assert_eq!(
            short_name(&format!("ghcr.io/org/app@sha256:{}", "a".repeat(64))),
            "app"
        );
    }
}
