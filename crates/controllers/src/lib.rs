//! The controllers: every leader-only reconcile loop of a node, in one
//! place and of one shape. Each loop acts only while its node leads its
//! cluster (or its tier); each round it reads the state (in a block, no
//! guard held across an `await`), calls one pure decision of its domain
//! crate, and writes what that returns as commands — then waits for the
//! next change or tick. A new leader starts afresh from the state.
//!
//! | loop | decides with | writes |
//! | --- | --- | --- |
//! | [`scheduling`] | `scheduler::placement_commands`, `scheduler::Liveness` | `SetPlacements` |
//! | [`delivery`] (rollouts) | `rollout::advance`, `rollout::measure` | `AdvanceRollout` |
//! | [`failover`] | `planet::failover::{plan, extra_replicas, resize}` | `PutFailover`, `SetDeployment` |
//! | [`mirror`] (global tier → cell) | `planet::tier::mirror` | the global records that differ |
//! | [`cell_report`] | `planet::summary::cell_report` | the gossip member's summary (no command) |
//! | [`alerting`] (SLO evaluation) | `ops::slo::Evaluator` | `SetSloStatus`, `OpenIncident`, notes |
//! | [`reseal`] (SLOs stored before sealing) | `ops::notify_guard::reseal` | `SealSloTargets` |
//! | [`webhooks`] (alert delivery) | `ops::slo::webhook` (retry schedule) | the POST, then a note |
//! | [`autopilot`] (signals, detection, prediction, root cause) | `autopilot::pilot::{Observer, Pilot}` | `RecordAutopilot` |
//! | [`act`] (the autopilot's acting) | `autopilot::act::{observe, sense, decide, apply}` | `Act` (tick, record, finish), the actions' commands, `OpenIncident` for approvals |
//!
//! `dwcp up` starts them (`crates/dwcp/src/up/`); nothing else does.
//!
//! Invariants:
//! - No decision is made here: what to write is a pure function in the
//!   domain crate, unit-tested there; a loop only reads, calls and writes.
//! - Only the leader writes; a loop on a follower reads nothing but the
//!   leadership, so a cluster has one writer per loop.
//! - Controllers never call each other: they meet only in the state.
//!
//! It depends on `state`, `cluster` (the node handle: leadership, reads,
//! writes, watch) and the domain crates
//! `scheduler`, `rollout`, `planet`, `autopilot` and `ops` (the SLO
//! engine, `ops::slo`);
//! never on `node`, `sandbox` or the binary.

pub mod act;
pub mod alert_lanes;
pub mod alerting;
pub mod autopilot;
pub mod cell_report;
pub mod delivery;
pub mod failover;
pub mod mirror;
pub mod reseal;
pub mod scheduling;
pub mod webhooks;
