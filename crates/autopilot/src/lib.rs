//! DWCP's autopilot, part 1: seeing trouble coming.
//!
//! Work in progress.

pub mod detect;
pub mod forecast;
pub mod holt_winters;
pub mod nab;
pub mod season;
pub mod stats;
pub mod synth;
pub mod time;
