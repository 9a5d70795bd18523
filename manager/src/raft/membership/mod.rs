//! Raft membership: managers joining and leaving the raft group ([`MembershipApi`], with
//! its decisions in [`decide`]). A manager's certificate comes first (a manager join token
//! at the CA); joining raft then records its address in its Node and adds it as a raft
//! learner, which the leader's driver promotes to voter once it has caught up ([`promote`]).

pub mod decide;
pub mod promote;
mod service;

pub use service::MembershipApi;
