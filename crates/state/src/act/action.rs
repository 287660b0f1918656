//! The actions the autopilot can take, each with the undo DWCP runs to
//! take it back, its class (what harm it can do) and the target it holds
//! while it runs (one action per target at a time).

use std::fmt;

use serde::{Deserialize, Serialize};

/// One thing the autopilot does to the cluster. Each is one store command
/// or a short sequence the leader's loop resumes after a restart; each
/// names everything it needs, so that its undo is an action too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Stop a version's warm sandboxes on a node and start fresh ones
    /// (`terminations` of them). Its undo is nothing: a fresh pool is
    /// what was there before, new.
    RestartPool {
        tenant: String,
        app: String,
        version: u64,
        node: String,
        terminations: u32,
    },
    /// Stop placing on a node and move its placements (`terminations`
    /// sandboxes stop there and start elsewhere).
    Drain { node: String, terminations: u32 },
    /// Stop placing on a node; what runs there stays.
    Cordon { node: String },
    /// Place on a node again.
    Uncordon { node: String },
    /// Change an app's replicas (out when `to > from`, in otherwise).
    Scale {
        tenant: String,
        app: String,
        from: u32,
        to: u32,
    },
    /// Abort a version's rollout or move the app's traffic back to
    /// `to_version` (through the rollout machinery).
    Rollback {
        tenant: String,
        app: String,
        version: u64,
        to_version: u64,
    },
    /// Roll an app forward to `version` again (a rollback's undo).
    RollForward {
        tenant: String,
        app: String,
        version: u64,
        from_version: u64,
    },
    /// Change a tenant's concurrency limit (requests in flight).
    Throttle { tenant: String, from: u32, to: u32 },
    /// Move a region's traffic and placements to `to_region`.
    Failover { region: String, to_region: String },
    /// Give a region its traffic back.
    Failback { region: String, from_region: String },
    /// Open an incident (or join the unresolved one with this
    /// fingerprint) so that people hear of it.
    OpenIncident { fingerprint: String, text: String },
    /// Page about an incident already open.
    Escalate { fingerprint: String },
}

/// What harm an action can do, which decides what a forecast may start
/// and what must wait for a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionClass {
    /// Tells people; changes nothing that serves.
    Notify,
    /// Adds capacity or keeps things as they are (scale out, cordon,
    /// uncordon): a forecast alone may start it.
    Prepare,
    /// Stops, moves or takes away something that serves (restart, drain,
    /// scale in, rollback, throttle, failover): only what is observed may
    /// start it.
    Destructive,
}

/// The kinds of [`Action`], as policies name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    RestartPool,
    Drain,
    Cordon,
    Uncordon,
    ScaleOut,
    ScaleIn,
    Rollback,
    RollForward,
    Throttle,
    Failover,
    Failback,
    OpenIncident,
    Escalate,
}

/// Every kind, in order.
pub const ACTION_KINDS: [ActionKind; 13] = [
    ActionKind::RestartPool,
    ActionKind::Drain,
    ActionKind::Cordon,
    ActionKind::Uncordon,
    ActionKind::ScaleOut,
    ActionKind::ScaleIn,
    ActionKind::Rollback,
    ActionKind::RollForward,
    ActionKind::Throttle,
    ActionKind::Failover,
    ActionKind::Failback,
    ActionKind::OpenIncident,
    ActionKind::Escalate,
];

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::RestartPool => "restart_pool",
            ActionKind::Drain => "drain",
            ActionKind::Cordon => "cordon",
            ActionKind::Uncordon => "uncordon",
            ActionKind::ScaleOut => "scale_out",
            ActionKind::ScaleIn => "scale_in",
            ActionKind::Rollback => "rollback",
            ActionKind::RollForward => "roll_forward",
            ActionKind::Throttle => "throttle",
            ActionKind::Failover => "failover",
            ActionKind::Failback => "failback",
            ActionKind::OpenIncident => "open_incident",
            ActionKind::Escalate => "escalate",
        }
    }

    pub fn parse(name: &str) -> Option<ActionKind> {
        ACTION_KINDS.into_iter().find(|k| k.as_str() == name)
    }

    /// What harm an action of this kind can do.
    pub fn class(self) -> ActionClass {
        match self {
            ActionKind::OpenIncident | ActionKind::Escalate => ActionClass::Notify,
            ActionKind::Cordon | ActionKind::Uncordon | ActionKind::ScaleOut => {
                ActionClass::Prepare
            }
            ActionKind::RestartPool
            | ActionKind::Drain
            | ActionKind::ScaleIn
            | ActionKind::Rollback
            | ActionKind::RollForward
            | ActionKind::Throttle
            | ActionKind::Failover
            | ActionKind::Failback => ActionClass::Destructive,
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an action holds while it runs: two actions on one target never
/// overlap, and a target rests for a cool-down after each.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Node { node: String },
    App { tenant: String, app: String },
    Tenant { tenant: String },
    Region { region: String },
    Incident { fingerprint: String },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Node { node } => write!(f, "node {node}"),
            Target::App { tenant, app } => write!(f, "app {tenant}/{app}"),
            Target::Tenant { tenant } => write!(f, "tenant {tenant}"),
            Target::Region { region } => write!(f, "region {region}"),
            Target::Incident { fingerprint } => write!(f, "incident {fingerprint}"),
        }
    }
}

impl Action {
    /// Its kind.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::RestartPool { .. } => ActionKind::RestartPool,
            Action::Drain { .. } => ActionKind::Drain,
            Action::Cordon { .. } => ActionKind::Cordon,
            Action::Uncordon { .. } => ActionKind::Uncordon,
            Action::Scale { from, to, .. } if to > from => ActionKind::ScaleOut,
            Action::Scale { .. } => ActionKind::ScaleIn,
            Action::Rollback { .. } => ActionKind::Rollback,
            Action::RollForward { .. } => ActionKind::RollForward,
            Action::Throttle { .. } => ActionKind::Throttle,
            Action::Failover { .. } => ActionKind::Failover,
            Action::Failback { .. } => ActionKind::Failback,
            Action::OpenIncident { .. } => ActionKind::OpenIncident,
            Action::Escalate { .. } => ActionKind::Escalate,
        }
    }

    /// What harm it can do.
    pub fn class(&self) -> ActionClass {
        self.kind().class()
    }

    /// What it holds while it runs.
    pub fn target(&self) -> Target {
        match self {
            Action::RestartPool { node, .. }
            | Action::Drain { node, .. }
            | Action::Cordon { node }
            | Action::Uncordon { node } => Target::Node { node: node.clone() },
            Action::Scale { tenant, app, .. }
            | Action::Rollback { tenant, app, .. }
            | Action::RollForward { tenant, app, .. } => Target::App {
                tenant: tenant.clone(),
                app: app.clone(),
            },
            Action::Throttle { tenant, .. } => Target::Tenant {
                tenant: tenant.clone(),
            },
            Action::Failover { region, .. } | Action::Failback { region, .. } => Target::Region {
                region: region.clone(),
            },
            Action::OpenIncident { fingerprint, .. } | Action::Escalate { fingerprint } => {
                Target::Incident {
                    fingerprint: fingerprint.clone(),
                }
            }
        }
    }

    /// The action that takes it back, or `None` when there is nothing to
    /// take back (a restarted pool is the same pool, fresh; an incident
    /// is resolved by people). Undoing twice gives the action back.
    pub fn undo(&self) -> Option<Action> {
        Some(match self {
            Action::RestartPool { .. } | Action::OpenIncident { .. } | Action::Escalate { .. } => {
                return None;
            }
            Action::Drain { node, .. } | Action::Cordon { node } => {
                Action::Uncordon { node: node.clone() }
            }
            Action::Uncordon { node } => Action::Cordon { node: node.clone() },
            Action::Scale {
                tenant,
                app,
                from,
                to,
            } => Action::Scale {
                tenant: tenant.clone(),
                app: app.clone(),
                from: *to,
                to: *from,
            },
            Action::Rollback {
                tenant,
                app,
                version,
                to_version,
            } => Action::RollForward {
                tenant: tenant.clone(),
                app: app.clone(),
                version: *version,
                from_version: *to_version,
            },
            Action::RollForward {
                tenant,
                app,
                version,
                from_version,
            } => Action::Rollback {
                tenant: tenant.clone(),
                app: app.clone(),
                version: *version,
                to_version: *from_version,
            },
            Action::Throttle { tenant, from, to } => Action::Throttle {
                tenant: tenant.clone(),
                from: *to,
                to: *from,
            },
            Action::Failover { region, to_region } => Action::Failback {
                region: region.clone(),
                from_region: to_region.clone(),
            },
            Action::Failback {
                region,
                from_region,
            } => Action::Failover {
                region: region.clone(),
                to_region: from_region.clone(),
            },
        })
    }

    /// Sandboxes it stops on `node` (counted against the per-node rate).
    pub fn terminations_on(&self, on: &str) -> u32 {
        match self {
            Action::RestartPool {
                node, terminations, ..
            }
            | Action::Drain {
                node, terminations, ..
            } if node == on => *terminations,
            _ => 0,
        }
    }

    /// Replicas it adds (negative: removes).
    pub fn replica_delta(&self) -> i64 {
        match self {
            Action::Scale { from, to, .. } => i64::from(*to) - i64::from(*from),
            _ => 0,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::RestartPool {
                tenant,
                app,
                version,
                node,
                terminations,
            } => write!(
                f,
                "restart the warm pool of {tenant}/{app}@{version} on {node} ({terminations} sandboxes)"
            ),
            Action::Drain { node, terminations } => {
                write!(f, "drain node {node} ({terminations} sandboxes move)")
            }
            Action::Cordon { node } => write!(f, "cordon node {node}"),
            Action::Uncordon { node } => write!(f, "uncordon node {node}"),
            Action::Scale {
                tenant,
                app,
                from,
                to,
            } => write!(f, "scale {tenant}/{app} from {from} to {to} replicas"),
            Action::Rollback {
                tenant,
                app,
                version,
                to_version,
            } => write!(f, "roll {tenant}/{app} back from {version} to {to_version}"),
            Action::RollForward {
                tenant,
                app,
                version,
                from_version,
            } => write!(
                f,
                "roll {tenant}/{app} forward from {from_version} to {version}"
            ),
            Action::Throttle { tenant, from, to } => write!(
                f,
                "set tenant {tenant}'s concurrency from {from} to {to} requests"
            ),
            Action::Failover { region, to_region } => {
                write!(f, "fail region {region} over to {to_region}")
            }
            Action::Failback {
                region,
                from_region,
            } => write!(f, "fail region {region} back from {from_region}"),
            Action::OpenIncident { fingerprint, .. } => {
                write!(f, "open incident {fingerprint}")
            }
            Action::Escalate { fingerprint } => write!(f, "page about incident {fingerprint}"),
        }
    }
}
