//! DWCP's HTTP API: JSON under `/api/v1/...`, every route except health
//! and the OpenAPI document behind a bearer token.
//!
//! Invariants:
//! - A request changes the desired state through exactly one
//!   [`state::Command`] or not at all; bad input is refused before any
//!   write with `{"error": {"code", "message", "field"}}` and a 4xx status.
//! - Tokens are never stored: only their sha256 is, in the replicated state.
//!
//! This crate depends on `state`, `replica`, `cluster`, `planet` and
//! `autopilot` (its findings' types and forecasts, to serve them), and
//! reaches the cluster through the [`ControlPlane`] trait; it must not
//! depend on `node`, `sandbox` or the controllers (what a gateway measures
//! comes in as a `cluster::exposition::Source`). The entry point is
//! [`api::serve`] ([`api::serve_node`] with more metrics).
//!
//! [`slo`] is the ops center's SLO and alerting engine: pure functions of
//! readings and time (the evaluator's rounds included); the API serves SLOs
//! and incidents, and `dwcp up` runs the evaluator on the leader.

// The OpenAPI document is one `json!` literal deeper than the default
// macro recursion limit allows.
#![recursion_limit = "256"]

pub mod api;
mod cluster_plane;
pub mod dashboard;
pub mod forecasts;
pub mod metrics;
pub mod notify_guard;
pub mod plane;
pub mod runbook;
pub mod slo;
pub mod totp;

pub use api::{serve, serve_node};
pub use plane::{BlobReceipt, ControlPlane, PlaneError};
