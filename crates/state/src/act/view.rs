//! What the guardrails read: the cluster as the store has it now
//! ([`ClusterView`]), the actions taken lately ([`Ledger`]) and the
//! operator's switches ([`Controls`]). Callers build them from the store;
//! a decision keeps them as its evidence.

use serde::{Deserialize, Serialize};

use super::action::{Action, ActionKind, Target};

/// Milliseconds in a minute.
pub const MINUTE_MS: u64 = 60_000;
/// Milliseconds in an hour.
pub const HOUR_MS: u64 = 3_600_000;

/// A node as the guardrails see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    pub name: String,
    pub region: String,
    /// Up, reporting, not cordoned: takes new placements and serves.
    pub serving: bool,
    pub cordoned: bool,
    /// A voter of the store (its quorum is never the autopilot's to
    /// touch).
    pub voter: bool,
    /// Sandboxes live on it.
    pub sandboxes: u32,
}

/// A region as the guardrails see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegionView {
    pub name: String,
    /// Has serving nodes and is not failed over.
    pub serving: bool,
    /// The region serving its traffic, when it is failed over.
    pub failed_over_to: Option<String>,
}

/// A version of an app.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionView {
    pub version: u64,
    /// Its rollout finished and passed (rolling it back is critical).
    pub passed_rollout: bool,
    /// The version it replaced, which a rollback goes back to.
    pub previous: Option<u64>,
}

/// An app: its replicas and what they cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppView {
    pub tenant: String,
    pub app: String,
    pub replicas: u32,
    /// The most it may have (its quota).
    pub max_replicas: u32,
    /// What one more replica costs an hour, in the cluster's cost unit.
    pub replica_cost_per_hour: f64,
    pub versions: Vec<VersionView>,
}

/// A version's warm sandboxes on one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolView {
    pub tenant: String,
    pub app: String,
    pub version: u64,
    pub node: String,
    pub sandboxes: u32,
}

/// A tenant's concurrency limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TenantView {
    pub tenant: String,
    /// Requests in flight one of its apps may have now: its quota, or
    /// less where its deployed versions ask for less. A throttle keeps a
    /// share of it.
    pub concurrency: u32,
    /// Its concurrency quota (`quotas.max_concurrency`), which a throttle
    /// lowers and its undo gives back (0 in decisions stored before it was
    /// kept: the same as `concurrency`).
    #[serde(default)]
    pub quota: u32,
}

/// The cluster as the store has it now.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    pub nodes: Vec<NodeView>,
    pub regions: Vec<RegionView>,
    pub apps: Vec<AppView>,
    pub pools: Vec<PoolView>,
    pub tenants: Vec<TenantView>,
    /// What the cluster's replicas cost an hour now, in its cost unit.
    pub cost_per_hour: f64,
}

impl ClusterView {
    pub fn node(&self, name: &str) -> Option<&NodeView> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn region(&self, name: &str) -> Option<&RegionView> {
        self.regions.iter().find(|r| r.name == name)
    }

    pub fn app(&self, tenant: &str, app: &str) -> Option<&AppView> {
        self.apps
            .iter()
            .find(|a| a.tenant == tenant && a.app == app)
    }

    pub fn tenant(&self, tenant: &str) -> Option<&TenantView> {
        self.tenants.iter().find(|t| t.tenant == tenant)
    }

    pub fn pool(&self, tenant: &str, app: &str, version: u64, node: &str) -> Option<&PoolView> {
        self.pools
            .iter()
            .find(|p| p.tenant == tenant && p.app == app && p.version == version && p.node == node)
    }

    /// Nodes serving, of all nodes.
    pub fn serving_nodes(&self) -> (usize, usize) {
        let serving = self.nodes.iter().filter(|n| n.serving).count();
        (serving, self.nodes.len())
    }

    /// Regions serving, of all regions.
    pub fn serving_regions(&self) -> (usize, usize) {
        let serving = self.regions.iter().filter(|r| r.serving).count();
        (serving, self.regions.len())
    }

    /// Voters serving, of all voters.
    pub fn serving_voters(&self) -> (usize, usize) {
        let voters = self.nodes.iter().filter(|n| n.voter);
        let (mut serving, mut all) = (0, 0);
        for n in voters {
            all += 1;
            serving += usize::from(n.serving);
        }
        (serving, all)
    }

    /// The view once `action` has been applied: what the guardrails
    /// compare against their floors, and what a simulation steps to.
    pub fn after(&self, action: &Action) -> ClusterView {
        let mut next = self.clone();
        match action {
            Action::Drain { node, .. } | Action::Cordon { node } => {
                if let Some(n) = next.nodes.iter_mut().find(|n| &n.name == node) {
                    n.cordoned = true;
                    n.serving = false;
                    if action.kind() == ActionKind::Drain {
                        n.sandboxes = 0;
                    }
                }
            }
            Action::Uncordon { node } => {
                if let Some(n) = next.nodes.iter_mut().find(|n| &n.name == node) {
                    n.cordoned = false;
                }
            }
            Action::Scale {
                tenant, app, to, ..
            } => {
                if let Some(a) = next
                    .apps
                    .iter_mut()
                    .find(|a| &a.tenant == tenant && &a.app == app)
                {
                    next.cost_per_hour += action.replica_delta() as f64 * a.replica_cost_per_hour;
                    a.replicas = *to;
                }
            }
            Action::Throttle { tenant, to, .. } => {
                if let Some(t) = next.tenants.iter_mut().find(|t| &t.tenant == tenant) {
                    t.concurrency = *to;
                    t.quota = *to;
                }
            }
            Action::Failover { region, to_region } => {
                if let Some(r) = next.regions.iter_mut().find(|r| &r.name == region) {
                    r.serving = false;
                    r.failed_over_to = Some(to_region.clone());
                }
            }
            Action::Failback { region, .. } => {
                if let Some(r) = next.regions.iter_mut().find(|r| &r.name == region) {
                    r.failed_over_to = None;
                }
            }
            Action::RestartPool { .. }
            | Action::Rollback { .. }
            | Action::RollForward { .. }
            | Action::OpenIncident { .. }
            | Action::Escalate { .. } => {}
        }
        next
    }
}

/// Where a taken action stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Being applied: its target is held.
    Running,
    /// Applied.
    Done,
    /// Applied, then undone.
    Undone,
    /// Failed part-way (the loop undoes what it did).
    Failed,
}

/// One action taken.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The decision that took it.
    pub decision: u64,
    /// When it started, ms since the Unix epoch.
    pub at_ms: u64,
    pub action: Action,
    pub state: EntryState,
    /// What it added to the cluster's cost an hour (0 for all but scale
    /// out).
    pub cost_per_hour_added: f64,
}

/// The actions taken in the last hour (older ones matter to no
/// guardrail), oldest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub entries: Vec<Entry>,
}

impl Ledger {
    /// Sandboxes stopped on `node` in the minute up to `now_ms`.
    pub fn terminations_last_minute(&self, node: &str, now_ms: u64) -> u64 {
        self.since(now_ms, MINUTE_MS)
            .map(|e| u64::from(e.action.terminations_on(node)))
            .sum()
    }

    /// Region failovers in the hour up to `now_ms`.
    pub fn failovers_last_hour(&self, now_ms: u64) -> u64 {
        self.since(now_ms, HOUR_MS)
            .filter(|e| e.action.kind() == ActionKind::Failover)
            .count() as u64
    }

    /// Cost an hour added by scaling in the hour up to `now_ms`.
    pub fn cost_added_last_hour(&self, now_ms: u64) -> f64 {
        self.since(now_ms, HOUR_MS)
            .map(|e| e.cost_per_hour_added.max(0.0))
            .sum()
    }

    /// The action running on `target`, if one.
    pub fn running_on(&self, target: &Target) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.state == EntryState::Running && &e.action.target() == target)
    }

    /// When the last action on `target` started.
    pub fn last_on(&self, target: &Target) -> Option<u64> {
        self.entries
            .iter()
            .filter(|e| &e.action.target() == target)
            .map(|e| e.at_ms)
            .max()
    }

    /// Nodes drained by the autopilot and not yet given back.
    pub fn drained_nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = Vec::new();
        for e in &self.entries {
            match &e.action {
                Action::Drain { node, .. }
                    if matches!(e.state, EntryState::Running | EntryState::Done)
                        && !nodes.contains(node) =>
                {
                    nodes.push(node.clone());
                }
                Action::Uncordon { node } if e.state == EntryState::Done => {
                    nodes.retain(|n| n != node);
                }
                _ => {}
            }
        }
        nodes
    }

    /// Drops entries older than an hour before `now_ms` that no longer
    /// run (nothing reads them), keeping it bounded.
    pub fn trim(&mut self, now_ms: u64) {
        self.entries
            .retain(|e| e.state == EntryState::Running || now_ms.saturating_sub(e.at_ms) < HOUR_MS);
    }

    /// Entries that started in the `window_ms` up to `now_ms`, failed
    /// ones included (what they stopped, they stopped).
    fn since(&self, now_ms: u64, window_ms: u64) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(move |e| e.at_ms <= now_ms && now_ms - e.at_ms < window_ms)
    }
}

/// The operator's switches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controls {
    /// The kill switch (`dwcp autopilot pause`): nothing is applied.
    pub paused: bool,
    /// Destructive actions are applied; until an operator enables them
    /// for the cluster they are only proposed (a dry run).
    pub destructive_enabled: bool,
}
