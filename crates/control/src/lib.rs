//! Being split (the layout issue): the pure state moved to `state`; what
//! is still here moves to `replica`, `planet` and `cluster` next. Until
//! then this crate re-exports `state`, so its users are unchanged.

pub use state::*;

pub mod blobs;
pub mod cluster;
mod durable;
pub mod failover;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub use ::replica;
pub mod serving;
pub mod summary;
pub mod tier;
pub mod tls;
pub mod topology;
pub mod transport;
