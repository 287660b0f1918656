//! DWCP's autopilot, part 1: seeing trouble coming — streaming anomaly
//! detection with its evidence, forecasts with intervals, and NAB's
//! scoring to measure the detection by.
//!
//! What goes in is plain data: a series' points, `(t_ms, value)`, one at
//! a time, in order. What comes out:
//! - [`detect`]: per point, an [`detect::Assessment`] — an anomaly score in
//!   [0, 1], the value expected and the band around it, and what each
//!   detector saw (robust median/MAD on seasonal residuals, robust
//!   Holt-Winters forecast residuals, CUSUM change points, novelty of the
//!   recent shape) and how strongly.
//! - [`forecast`]: a [`forecast::Forecaster`] per series answers 5 minutes
//!   to 24 hours ahead with a value, a 90 % band and the model it used;
//!   [`forecast::backtest`] replays a series against seasonal naive.
//! - [`nab`]: the Numenta Anomaly Benchmark's files parsed from text and
//!   its scorer (windows, scaled sigmoid, profiles, per-profile threshold,
//!   normalisation), checked against the official scorer in
//!   `tests/nab_scorer.rs`.
//! - [`act`] (part 2): what to do about trouble — actions with their undo,
//!   policies as TOML, the guardrails, decisions with their evidence, and
//!   the wait for a person's approval.
//!
//! Invariants:
//! - Pure: no I/O, no clock (time is the points' `t_ms`), no threads, no
//!   async, no global state. Reading files and the wall clock is the
//!   caller's (`dwcp bench nab`, and later the autopilot controller).
//! - Streaming: a detector or forecaster reads each point once, in order,
//!   and never looks ahead; feeding a prefix gives exactly the prefix of
//!   the whole run's output (`tests/detect.rs`).
//! - Deterministic: the same points give the same output on every
//!   machine; nothing draws random numbers except [`synth`], from a seed.
//! - Bounded: every detector's and forecaster's state has a fixed size
//!   (windows and rings sized by its configuration), whatever the length
//!   of the series; `memory_bytes` reports it.
//!
//! This crate depends on one DWCP crate, `state` (the model it reads
//! signals from, and the findings' types, which are replicated), and on
//! `serde`, `serde_json`, `thiserror` and `toml`; it does no I/O and reads
//! no clock: `controllers::autopilot` hands it the state and the time.

pub mod act;
pub mod detect;
pub mod forecast;
pub mod signal;

/// The findings the autopilot makes and the store keeps — detections,
/// predictions, diagnoses — defined in `state` (they are replicated) and
/// re-exported here for its users.
pub use state::autopilot as findings;
pub mod holt_winters;
pub mod nab;
pub mod pilot;
pub mod predict;
pub mod rca;
pub mod season;
pub mod stats;
pub mod synth;
pub mod time;
