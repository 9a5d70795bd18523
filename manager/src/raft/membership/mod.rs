//! Raft membership: managers joining and leaving the raft group ([`MembershipApi`], with
//! its decisions in [`decide`]). A manager's certificate comes first (a manager join token
//! at the CA); joining raft then records its address in its Node and adds it as a voter.

pub mod decide;
mod service;

pub use service::MembershipApi;
