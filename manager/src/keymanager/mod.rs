//! Encryption of raft data at rest and autolock (SwarmKit's `manager/encryption` and
//! `keymanager`, simplified).
//!
//! Every manager encrypts its raft log entries and snapshots with its own data key
//! ([`DataKey`], the DEK) kept in [`DekFile`]. With autolock the DEK is stored wrapped by the
//! swarm's [`UnlockKey`] (the KEK, `SWMKEY-1-…`), which lives only in the replicated store
//! and in the operator's hands: a restarted manager starts only with `--unlock-key`.
//! [`rewrap`] follows the key through autolock changes and rotations, and keeps the node's
//! TLS key ([`NodeKeyCodec`]) sealed while the swarm is autolocked.

mod data_key;
mod dek_file;
mod node_key;
pub mod rewrap;
mod unlock_key;

pub use data_key::{DataKey, OpenError};
pub use dek_file::{DekFile, LockError};
pub use node_key::NodeKeyCodec;
pub use unlock_key::{UnlockKey, UnlockKeyError};
