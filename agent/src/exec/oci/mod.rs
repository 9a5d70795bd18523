//! The OCI backend: runs container tasks (`OciRuntime`) through an OCI runtime CLI (runc;
//! crun and youki take the same commands), one detached shim per container.
//!
//! ```text
//!  OciBackend ── controller(task) ──▶ OciController (one per task; state on disk)
//!    │ spec.rs          validates the task (pure)       reference.rs  image reference syntax
//!    │ layout.rs        reads an OCI image layout, verifies digests
//!    │ crate::registry  pulls from a registry with oci-client (blobs kept by digest;
//!    │                  shared with the WASI backend)
//!    │ unpack.rs        applies layers (tar/tar+gzip) with whiteouts
//!    │ images.rs        unpacked image rootfs, once per manifest digest, shared read-only
//!    │ runtime_spec.rs  config.json from task + image config (pure, Docker's rules)
//!    │ bundle.rs        <state>/oci/tasks/<task>/bundle = rootfs copy + config.json
//!    │ shim.rs          `oci-shim`: runs `runtime run`, task log, exit.json
//!    └ runc.rs          runtime state / kill / delete (`--root <state>/oci/runc`)
//! ```
//!
//! Images: `oci-layout:/DIR[:TAG]` on the node (DIR may also be a tar of a layout:
//! `layout_tar.rs`), or `HOST[:PORT]/REPO[:TAG]` pulled from a
//! registry (see [`reference`](self::reference) for the syntax and [`crate::registry`] for
//! the pull and the plain-HTTP-on-loopback rule).
//! `LayoutWriter` writes small layouts for tests and benchmarks.

mod backend;
mod bundle;
mod config;
mod controller;
mod images;
mod layout;
mod layout_tar;
mod layout_writer;
pub mod reference;
mod runc;
mod runtime_spec;
pub mod shim;
mod spec;
mod unpack;

pub use backend::OciBackend;
pub use config::{KNOWN_RUNTIMES, OciConfig, ShimCommand, resolve_runtime};
pub use layout_writer::{LayerEntry, LayoutWriter};
