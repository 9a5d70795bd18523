//! The leader proxy: calls a follower cannot answer itself are forwarded to the leader
//! ([`route`] decides, [`LeaderProxy`] forwards).

mod forwarder;
pub mod route;

pub use forwarder::{FORWARDED_HOP, Forwarder, LeaderProxy, READ_LOCAL};
