//! DWCP's autopilot, part 1: seeing trouble coming.
//!
//! Work in progress.

pub mod nab;
pub mod time;
