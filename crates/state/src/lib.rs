//! The control plane's source of truth: the desired state of the fleet and
//! the only way to change it.
//!
//! Every change is a [`Command`]; [`State::apply`] is the deterministic state
//! machine that every replica runs over the same log, so replicas that
//! applied the same commands hold the same state. A command either applies
//! whole — one new [`Revision`], one [`Event`] per record changed — or is
//! refused with a [`Rejection`] that names the field and what is allowed,
//! changing nothing. Controllers follow changes with [`State::events_since`],
//! like etcd's watch, and re-read the whole state when their revision has
//! been compacted away.
//!
//! Invariants:
//! - [`State::apply`] is pure: no clock, no randomness, no I/O. Anything
//!   time- or node-dependent is part of the command.
//! - Names are validated when commands are built *and* when applied, so a
//!   replica never stores a name the API would refuse.
//!
//! - A rollout's plan and progress are data of its record
//!   ([`rollout`](mod@rollout)); deciding its next step is the `rollout`
//!   crate's job, not this one's.
//!
//! This crate must not depend on any other DWCP crate, and does no I/O:
//! consensus and storage (`replica`), the running node (`cluster`) and
//! everything else build on it. What is here is what they replicate.

pub mod act;
pub mod autopilot;
pub mod certification;
pub mod claims;
mod command;
mod digest;
mod histogram;
mod model;
mod name;
pub mod rollout;
mod slo;
pub mod snapshot;
mod state;
pub mod users;

pub use command::{
    Command, MAX_RUNBOOK_BYTES, Outcome, PlacementSpec, Rejection, check_config, check_digest,
    check_host, check_prices, check_quotas, check_register, check_replicas, check_route,
    check_runbook,
};
pub use digest::{digest_of, is_sha256_hex};
pub use histogram::{LogHistogram, MAX_BUCKET, bucket_bounds, bucket_of};
pub use model::{
    App, AuditEntry, Credential, Deployment, JoinLimits, LatencySummary, Node, NodeReport,
    NodeUsage, Placement, Prices, Quotas, Region, RegionFailover, Role, Rollout, Runbook, Tenant,
    Tier, TrailEntry, Version, VersionConfig, VersionReport, Weights,
};
pub use name::{Name, NameError};
pub use slo::{
    DEFAULT_SLO_WINDOW_DAYS, Incident, IncidentEntry, IncidentStatus, MAX_INCIDENT_TEXT,
    MAX_NOTIFY_TARGETS, MAX_SEALED_SLOS, MAX_SLO_WINDOW_DAYS, MAX_TIMELINE, NotifyKind,
    NotifyTarget, Objective, RESOLVED_KEPT, RuleStatus, Severity, Slo, SloStatus,
    check_incident_text, check_slo, check_url, redact_key, redact_url,
};
pub use state::join_tokens::MAX_JOIN_TTL_MS;
pub use state::{Change, Compacted, Event, IDENTITY_REGISTERS, Record, Revision, State};
pub use users::{Session, User};
