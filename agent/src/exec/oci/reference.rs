//! [`ImageRef`]: where an OCI task's image comes from, parsed from `OciRuntime.image` (pure).
//!
//! Syntax (chosen for this project; documented in the README):
//!
//! ```text
//! oci-layout:/abs/path/to/layout            the only image of an OCI image layout dir
//! oci-layout:/abs/path/to/layout:TAG        the image whose index.json entry carries the
//!                                           annotation org.opencontainers.image.ref.name=TAG
//! HOST[:PORT]/REPO[:TAG|@sha256:HEX]        an image in an OCI registry (pulled by
//!                                           crate::registry; plain HTTP on loopback only)
//! ```
//!
//! A layout path must be absolute and free of `..`; tags and registry references follow
//! [`crate::registry::reference`].

use std::fmt;
use std::path::PathBuf;

use crate::registry::{self, reference::check_tag};

/// The scheme prefix of an image in an OCI image layout directory on the agent's disk.
pub const LAYOUT_SCHEME: &str = "oci-layout:";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// An OCI image layout directory on the agent's disk.
    Layout {
        /// The layout directory (holds `oci-layout`, `index.json`, `blobs/`).
        dir: PathBuf,
        /// The `org.opencontainers.image.ref.name` to pick; `None` = the index's only image.
        tag: Option<String>,
    },
    /// An image in a registry (`host[:port]/repo[:tag|@digest]`), kept as written.
    Registry(String),
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Layout { dir, tag: None } => write!(f, "{LAYOUT_SCHEME}{}", dir.display()),
            ImageRef::Layout { dir, tag: Some(t) } => {
                write!(f, "{LAYOUT_SCHEME}{}:{t}", dir.display())
            }
            ImageRef::Registry(r) => f.write_str(r),
        }
    }
}

impl ImageRef {
    /// Parses `OciRuntime.image`.
    ///
    /// # Errors
    /// A text saying what is wrong with the reference and what the syntax is.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("the task names no image".into());
        }
        if let Some(rest) = s.strip_prefix(LAYOUT_SCHEME) {
            return parse_layout(rest).map_err(|e| {
                format!("image '{s}': {e} (expected {LAYOUT_SCHEME}/ABSOLUTE/DIR[:TAG])")
            });
        }
        registry::reference::check(s)
            .map(|()| ImageRef::Registry(s.to_string()))
            .map_err(|e| {
            format!(
                "image '{s}': {e} (expected HOST[:PORT]/REPO[:TAG] or {LAYOUT_SCHEME}/DIR[:TAG])"
            )
        })
    }
}

fn parse_layout(rest: &str) -> Result<ImageRef, String> {
    if !rest.starts_with('/') {
        return Err("the layout path must be absolute".into());
    }
    let last_slash = rest.rfind('/').unwrap_or(0);
    let (path, tag) = match rest[last_slash..].find(':') {
        Some(i) => {
            let at = last_slash + i;
            (&rest[..at], Some(&rest[at + 1..]))
        }
        None => (rest, None),
    };
    if path.split('/').any(|c| c == "..") {
        return Err("the layout path may not contain '..'".into());
    }
    if let Some(t) = tag {
        check_tag(t)?;
    }
    Ok(ImageRef::Layout {
        dir: PathBuf::from(path),
        tag: tag.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(dir: &str, tag: Option<&str>) -> ImageRef {
        ImageRef::Layout {
            dir: dir.into(),
            tag: tag.map(str::to_string),
        }
    }

    #[test]
    fn layout_references_with_and_without_tag() {
        assert_eq!(
            ImageRef::parse("oci-layout:/srv/img"),
            Ok(layout("/srv/img", None))
        );
        assert_eq!(
            ImageRef::parse("oci-layout:/srv/img:1.0"),
            Ok(layout("/srv/img", Some("1.0")))
        );
        // A colon in a directory name is not a tag separator.
        assert_eq!(
            ImageRef::parse("oci-layout:/a:b/img"),
            Ok(layout("/a:b/img", None))
        );
        assert_eq!(
            ImageRef::parse("oci-layout:/srv/img:1")
                .unwrap()
                .to_string(),
            "oci-layout:/srv/img:1"
        );
    }

    #[test]
    fn bad_references_are_explained() {
        let err = |s: &str| ImageRef::parse(s).unwrap_err();
        assert_eq!(err(""), "the task names no image");
        assert!(err("oci-layout:rel/img").contains("must be absolute"));
        assert!(err("oci-layout:/srv/../etc").contains("'..'"));
        assert!(err("oci-layout:/srv/img:").contains("invalid tag ''"));
        assert!(err("oci-layout:/srv/img:a b").contains("invalid tag"));
        assert!(err("busybox").contains("invalid repository name"));
        assert!(err("localhost:5000/Busy").contains("invalid repository name"));
        assert!(err("localhost:5000/b@md5:00").contains("unsupported digest"));
        assert!(err("localhost:5000/b@sha256:00").contains("invalid digest"));
    }
}
