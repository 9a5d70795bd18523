//! Raft: the consensus layer. A raft-rs `RawNode` driven by one loop ([`driver`]), its log
//! in redb ([`storage`]), messages to peers through a [`transport::Transport`].

mod driver;
mod handle;
pub mod logger;
mod options;
mod sealer;
pub mod storage;
pub mod transport;

pub use driver::{DriverError, start};
pub use handle::{RaftHandle, RaftStatus};
pub use options::RaftOptions;
