//! Being split (the layout issue): the pure state moved to `state`; what
//! is still here moves to `replica`, `planet` and `cluster` next. Until
//! then this crate re-exports `state`, so its users are unchanged.

pub use state::*;

pub mod blobs;
pub mod cluster;
mod durable;
pub use planet::failover;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub use ::replica;
pub mod serving;
pub use planet::{summary, tier};
pub mod tls;
pub use planet::topology;
pub mod transport;
