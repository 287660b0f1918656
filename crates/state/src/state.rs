//! The desired state and the deterministic state machine over it.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::command::{
    check_config, check_digest, check_host, check_prices, check_register, check_replicas,
    check_route, check_runbook,
};
use crate::model::{
    App, AuditEntry, Credential, Deployment, Node, NodeReport, Placement, Prices, Region, Rollout,
    Runbook, Tenant, Version,
};

mod autopilot;
mod certification;
mod incidents;
mod restore;
pub use restore::IDENTITY_REGISTERS;
pub(crate) mod join_tokens;
mod rollouts;
mod users;
mod visible;
use crate::claims::Authority;
use crate::{Command, Name, Outcome, Rejection};

/// A point in the history of the state: the number of changes applied.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Revision(pub u64);

/// The kind of record an [`Event`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    Tenant,
    App,
    Version,
    Deployment,
    Placement,
    Region,
    Node,
    /// A node's report ([`crate::NodeReport`]), keyed by node name.
    Report,
    Credential,
    Register,
    /// A rollout, keyed `tenant/app`.
    Rollout,
    Runbook,
    /// The prices, keyed `prices`.
    Prices,
    /// A user, keyed by name.
    User,
    /// A user's sessions, keyed by the user's name.
    Session,
    /// An SLO, keyed `tenant/app/name`.
    Slo,
    /// The evaluator's latest reading of an SLO, keyed like it.
    SloStatus,
    /// An incident, keyed by its id.
    Incident,
    /// The audit record of a change made outside the log
    /// ([`crate::Command::Happened`]), keyed `audit`.
    Audit,
    /// A region's failover, keyed by the region.
    Failover,
    /// The whole state replaced from a backup ([`crate::Command::Restore`]),
    /// keyed by the backup's revision: watchers read it all again.
    Restore,
    /// The autopilot's findings, keyed `detections`, `predictions` or
    /// `diagnoses`.
    Autopilot,
    /// The autopilot's acting, keyed `controls`, `policy`, `ledger`,
    /// `decision/ID`, `approval/ID` or `node/NAME`.
    Act,
    /// Certification, keyed `waiver/CRITERION`, `report/SHA256`,
    /// `sign_off/SHA256/ROLE` or `policy`.
    Certification,
}

/// One record created, replaced or deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub record: Record,
    /// The record's key, e.g. `acme/shop` for an app or `acme/shop/3` for
    /// a version.
    pub key: String,
    pub deleted: bool,
}

/// A change at a revision, as a watcher sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub revision: Revision,
    pub change: Change,
}

/// The watcher asked for changes older than the state still remembers; it
/// must read the whole state and watch from its revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("changes up to revision {} are compacted; read the state and watch from its revision", .floor.0)]
pub struct Compacted {
    /// Changes at or before this revision are gone.
    pub floor: Revision,
}

/// Most versions one node report may carry.
const MAX_REPORTED_VERSIONS: usize = 10_000;

/// Audit entries the state keeps (older ones go first).
pub const AUDIT_KEPT: usize = 10_000;

/// Most runbooks the state keeps.
const MAX_RUNBOOKS: usize = 1_000;

/// How many recent events the state keeps for watchers.
const HISTORY: usize = 10_000;

/// The desired state of the fleet.
///
/// ```
/// use state::{Command, Name, Outcome, Quotas, State};
/// let mut state = State::default();
/// let acme = Name::new("tenant", "acme").unwrap();
/// state.apply(&Command::PutTenant { name: acme.clone(), quotas: Quotas::default() }).unwrap();
/// let created = state.apply(&Command::CreateApp {
///     tenant: acme.clone(),
///     name: Name::new("app", "shop").unwrap(),
///     route: "/shop".into(),
///     host: None,
/// });
/// assert_eq!(created, Ok(Outcome::Applied));
/// assert_eq!(state.revision().0, 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    revision: Revision,
    tenants: BTreeMap<Name, Tenant>,
    apps: BTreeMap<(Name, Name), App>,
    versions: BTreeMap<(Name, Name, u64), Version>,
    deployments: BTreeMap<(Name, Name), Deployment>,
    /// By (tenant, app, version, node).
    #[serde(default)]
    placements: BTreeMap<(Name, Name, u64, Name), Placement>,
    regions: BTreeMap<Name, Region>,
    /// Regions failed over (and recovered), by region.
    #[serde(default)]
    failovers: BTreeMap<Name, crate::RegionFailover>,
    nodes: BTreeMap<Name, Node>,
    /// The last report of each node.
    #[serde(default)]
    reports: BTreeMap<Name, NodeReport>,
    #[serde(default)]
    credentials: BTreeMap<Name, Credential>,
    /// By (tenant, app, id).
    #[serde(default)]
    rollouts: BTreeMap<(Name, Name, u64), Rollout>,
    #[serde(default)]
    runbooks: BTreeMap<Name, Runbook>,
    #[serde(default)]
    prices: Option<Prices>,
    /// The latest changes made through the API, oldest first.
    #[serde(default)]
    audit: VecDeque<AuditEntry>,
    registers: BTreeMap<String, Vec<u8>>,
    /// People who log in, by name.
    #[serde(default)]
    users: BTreeMap<Name, crate::users::User>,
    /// Sessions, by the sha256 of their token.
    #[serde(default)]
    sessions: BTreeMap<String, crate::users::Session>,
    /// By (tenant, app, name).
    #[serde(default)]
    slos: BTreeMap<(Name, Name, Name), crate::Slo>,
    #[serde(default)]
    slo_status: BTreeMap<(Name, Name, Name), crate::SloStatus>,
    /// By id; unresolved ones and the latest resolved ones.
    #[serde(default)]
    incidents: BTreeMap<u64, crate::Incident>,
    /// The id the next incident gets (0 before the first: it gets 1).
    #[serde(default)]
    next_incident: u64,
    /// The autopilot's detections, predictions and diagnoses.
    #[serde(default)]
    autopilot: autopilot::Findings,
    /// The autopilot's acting: switches, policy, ledger, decisions,
    /// approvals, node schedules.
    #[serde(default)]
    acts: crate::act::book::ActBook,
    /// Certification: waivers, recorded reports, sign-offs, the policy.
    #[serde(default)]
    certification: certification::Certification,
    /// Recent events, oldest first; not part of snapshots.
    #[serde(skip)]
    history: VecDeque<Event>,
    /// Changes at or before this revision are no longer in `history`.
    #[serde(skip)]
    floor: Revision,
}

impl State {
    /// The autopilot's acting (`act::book::ActBook`).
    pub fn acts(&self) -> &crate::act::book::ActBook {
        &self.acts
    }

    /// The revision of the last change.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    pub fn tenant(&self, name: &Name) -> Option<&Tenant> {
        self.tenants.get(name)
    }

    pub fn tenants(&self) -> impl Iterator<Item = &Tenant> {
        self.tenants.values()
    }

    pub fn app(&self, tenant: &Name, name: &Name) -> Option<&App> {
        self.apps.get(&(tenant.clone(), name.clone()))
    }

    /// All apps, by tenant then name.
    pub fn apps(&self) -> impl Iterator<Item = &App> {
        self.apps.values()
    }

    /// The versions of one app, oldest first.
    pub fn versions(&self, tenant: &Name, app: &Name) -> impl Iterator<Item = &Version> {
        let from = (tenant.clone(), app.clone(), 0);
        let to = (tenant.clone(), app.clone(), u64::MAX);
        self.versions.range(from..=to).map(|(_, v)| v)
    }

    pub fn deployment(&self, tenant: &Name, app: &Name) -> Option<&Deployment> {
        self.deployments.get(&(tenant.clone(), app.clone()))
    }

    pub fn deployments(&self) -> impl Iterator<Item = &Deployment> {
        self.deployments.values()
    }

    /// Every placement, by tenant, app, version and node.
    pub fn placements(&self) -> impl Iterator<Item = &Placement> {
        self.placements.values()
    }

    /// The placements of one app, by version then node.
    pub fn placements_of_app<'a>(
        &'a self,
        tenant: &'a Name,
        app: &'a Name,
    ) -> impl Iterator<Item = &'a Placement> + 'a {
        // Versions count from 1, so version 0 (with any node name) sorts
        // before every placement of the app: a range, not a scan.
        let from = (tenant.clone(), app.clone(), 0, app.clone());
        self.placements
            .range(from..)
            .map(|(_, p)| p)
            .take_while(move |p| &p.tenant == tenant && &p.app == app)
    }

    /// What one node should hold.
    pub fn placements_on<'a>(&'a self, node: &'a Name) -> impl Iterator<Item = &'a Placement> + 'a {
        self.placements.values().filter(move |p| &p.node == node)
    }

    pub fn regions(&self) -> impl Iterator<Item = &Region> {
        self.regions.values()
    }

    /// Every region's latest failover, by region.
    pub fn failovers(&self) -> impl Iterator<Item = &crate::RegionFailover> {
        self.failovers.values()
    }

    pub fn node(&self, name: &Name) -> Option<&Node> {
        self.nodes.get(name)
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// The last report of every node that sent one, by node name.
    pub fn reports(&self) -> impl Iterator<Item = &NodeReport> {
        self.reports.values()
    }

    /// The last report of `node`.
    pub fn report(&self, node: &Name) -> Option<&NodeReport> {
        self.reports.get(node)
    }

    /// The audit log's entries after `since`, oldest first (the log keeps
    /// the latest [`AUDIT_KEPT`]).
    pub fn audit_since(&self, since: Revision) -> impl Iterator<Item = &AuditEntry> {
        self.audit.iter().filter(move |e| e.revision > since)
    }

    /// What running apps costs, once an admin has set it.
    pub fn prices(&self) -> Option<&Prices> {
        self.prices.as_ref()
    }

    /// Every runbook, by name.
    pub fn runbooks(&self) -> impl Iterator<Item = &Runbook> {
        self.runbooks.values()
    }

    pub fn runbook(&self, name: &Name) -> Option<&Runbook> {
        self.runbooks.get(name)
    }

    pub fn credentials(&self) -> impl Iterator<Item = &Credential> {
        self.credentials.values()
    }

    /// The credential whose token hashes to `sha256`, if any.
    pub fn credential_by_hash(&self, sha256: &str) -> Option<&Credential> {
        self.credentials.values().find(|c| c.sha256 == sha256)
    }

    pub fn register(&self, key: &str) -> Option<&[u8]> {
        self.registers.get(key).map(Vec::as_slice)
    }

    /// The registers whose keys are `from` or after it, in key order (take
    /// those with a prefix by filtering on it).
    pub fn registers_from<'a>(
        &'a self,
        from: &str,
    ) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        self.registers
            .range::<str, _>((std::ops::Bound::Included(from), std::ops::Bound::Unbounded))
            .map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// How many registers there are.
    pub fn register_count(&self) -> usize {
        self.registers.len()
    }

    /// The events after `since`, oldest first, or [`Compacted`] when some of
    /// them are no longer kept.
    pub fn events_since(&self, since: Revision) -> Result<Vec<Event>, Compacted> {
        if since < self.floor {
            return Err(Compacted { floor: self.floor });
        }
        // A state restored from a snapshot starts with no history.
        if self.history.is_empty() && since < self.revision {
            return Err(Compacted {
                floor: self.revision,
            });
        }
        Ok(self
            .history
            .iter()
            .filter(|e| e.revision > since)
            .cloned()
            .collect())
    }

    /// Applies `command`: validates it against the state, then makes the
    /// whole change at a new revision, or refuses it and changes nothing. A
    /// compare-and-swap that does not match changes nothing and keeps the
    /// revision.
    pub fn apply(&mut self, command: &Command) -> Result<Outcome, Rejection> {
        let (outcome, changes) = self.plan(command)?;
        if !changes.is_empty() {
            self.commit(command, changes);
        }
        Ok(outcome)
    }

    /// Decides what `command` would change, without changing anything.
    fn plan(&self, command: &Command) -> Result<(Outcome, Vec<Change>), Rejection> {
        self.plan_as(command, Authority::Cluster)
    }

    /// [`State::plan`] for a command asked for with `authority`.
    fn plan_as(
        &self,
        command: &Command,
        authority: Authority,
    ) -> Result<(Outcome, Vec<Change>), Rejection> {
        let change = |record, key: String, deleted| Change {
            record,
            key,
            deleted,
        };
        let one = |record, key| Ok((Outcome::Applied, vec![change(record, key, false)]));
        match command {
            Command::PutTenant { name, quotas } => {
                revalidate(name, "tenant")?;
                crate::command::check_quotas(quotas)?;
                let apps = self.apps_of(name).count() as u64;
                if u64::from(quotas.max_apps) < apps {
                    return Err(Rejection::invalid(
                        "quotas.max_apps",
                        quotas.max_apps,
                        format!("at least the {apps} apps the tenant has"),
                    ));
                }
                let replicas = self.replicas_of(name, None);
                if u64::from(quotas.max_replicas) < replicas {
                    return Err(Rejection::invalid(
                        "quotas.max_replicas",
                        quotas.max_replicas,
                        format!("at least the {replicas} replicas the tenant runs"),
                    ));
                }
                one(Record::Tenant, name.to_string())
            }
            Command::DeleteTenant { name } => {
                self.tenants
                    .get(name)
                    .ok_or_else(|| Rejection::not_found("tenant", name))?;
                if let Some(app) = self.apps_of(name).next() {
                    return Err(Rejection::InUse {
                        kind: "tenant".into(),
                        name: name.to_string(),
                        by: format!("app `{}` (delete its apps first)", app.name),
                    });
                }
                Ok((
                    Outcome::Applied,
                    vec![change(Record::Tenant, name.to_string(), true)],
                ))
            }
            Command::CreateApp {
                tenant,
                name,
                route,
                host,
            } => {
                revalidate(name, "app")?;
                let owner = self
                    .tenants
                    .get(tenant)
                    .ok_or_else(|| Rejection::not_found("tenant", tenant))?;
                check_route(route)?;
                if let Some(host) = host {
                    check_host(host)?;
                }
                self.check_claim(tenant, host.as_deref(), route, "route", authority)?;
                if self.app(tenant, name).is_some() {
                    return Err(Rejection::AlreadyExists {
                        kind: "app".into(),
                        name: format!("{tenant}/{name}"),
                    });
                }
                if let Some(other) = self
                    .apps
                    .values()
                    .find(|a| &a.route == route && &a.host == host)
                {
                    let on = host.as_ref().map_or(String::new(), |h| format!(" on {h}"));
                    return Err(Rejection::AlreadyExists {
                        kind: "route".into(),
                        name: format!(
                            "{route}{on} (served by app {}/{})",
                            other.tenant, other.name
                        ),
                    });
                }
                if let Some(r) = self.active_rollouts().find(|r| {
                    r.plan.preview_route() == Some(route.as_str())
                        && self.app(&r.tenant, &r.app).is_some_and(|a| &a.host == host)
                }) {
                    return Err(Rejection::AlreadyExists {
                        kind: "route".into(),
                        name: format!(
                            "{route} (the blue-green preview of app {}/{}'s rollout {})",
                            r.tenant, r.app, r.id
                        ),
                    });
                }
                let wanted = self.apps_of(tenant).count() as u64 + 1;
                within_quota(owner, "apps", owner.quotas.max_apps, wanted)?;
                one(Record::App, format!("{tenant}/{name}"))
            }
            Command::DeleteApp { tenant, name } => {
                self.app(tenant, name)
                    .ok_or_else(|| Rejection::not_found("app", format!("{tenant}/{name}")))?;
                let mut changes: Vec<Change> = self
                    .versions(tenant, name)
                    .map(|v| {
                        change(
                            Record::Version,
                            format!("{tenant}/{name}/{}", v.number),
                            true,
                        )
                    })
                    .collect();
                if self.deployment(tenant, name).is_some() {
                    changes.push(change(Record::Deployment, format!("{tenant}/{name}"), true));
                }
                if self.placements_of_app(tenant, name).next().is_some() {
                    changes.push(change(Record::Placement, format!("{tenant}/{name}"), true));
                }
                if self.rollouts_of(tenant, name).next().is_some() {
                    changes.push(change(Record::Rollout, format!("{tenant}/{name}"), true));
                }
                for slo in self.slos_of(tenant, name) {
                    changes.push(change(
                        Record::Slo,
                        format!("{tenant}/{name}/{}", slo.name),
                        true,
                    ));
                }
                changes.push(change(Record::App, format!("{tenant}/{name}"), true));
                Ok((Outcome::Applied, changes))
            }
            Command::AddVersion {
                tenant,
                app,
                digest,
                config,
            } => {
                let found = self
                    .app(tenant, app)
                    .ok_or_else(|| Rejection::not_found("app", format!("{tenant}/{app}")))?;
                check_digest(digest)?;
                check_config(config)?;
                // The tenant's quotas hold on every version, whoever adds
                // it (a version over them is never stored, so never run).
                if let Some(owner) = self.tenants.get(tenant) {
                    crate::command::check_config_quotas(tenant, &owner.quotas, config)?;
                }
                let number = found.next_version;
                Ok((
                    Outcome::VersionAdded(number),
                    vec![
                        change(Record::Version, format!("{tenant}/{app}/{number}"), false),
                        change(Record::App, format!("{tenant}/{app}"), false),
                    ],
                ))
            }
            Command::SetDeployment {
                tenant,
                app,
                version,
                regions,
            } => {
                let owner = self
                    .tenants
                    .get(tenant)
                    .ok_or_else(|| Rejection::not_found("tenant", tenant))?;
                self.app(tenant, app)
                    .ok_or_else(|| Rejection::not_found("app", format!("{tenant}/{app}")))?;
                if !self
                    .versions
                    .contains_key(&(tenant.clone(), app.clone(), *version))
                {
                    return Err(Rejection::not_found(
                        "version",
                        format!("{tenant}/{app}/{version}"),
                    ));
                }
                for (region, &replicas) in regions {
                    if !self.regions.contains_key(region) {
                        return Err(Rejection::not_found("region", region));
                    }
                    check_replicas(replicas)?;
                }
                if let Some(running) = self.active_rollout(tenant, app)
                    && self
                        .deployment(tenant, app)
                        .is_some_and(|d| d.version != *version)
                {
                    return Err(Rejection::invalid(
                        "version",
                        version,
                        format!(
                            "the deployed version while rollout {} (to version {}) runs; promote it to the end or abort it first",
                            running.id, running.to
                        ),
                    ));
                }
                let others = self.replicas_of(tenant, Some(app));
                let wanted = others + regions.values().map(|&r| u64::from(r)).sum::<u64>();
                within_quota(owner, "replicas", owner.quotas.max_replicas, wanted)?;
                one(Record::Deployment, format!("{tenant}/{app}"))
            }
            Command::SetPlacements {
                tenant,
                app,
                placements,
            } => {
                self.app(tenant, app)
                    .ok_or_else(|| Rejection::not_found("app", format!("{tenant}/{app}")))?;
                let mut seen = std::collections::BTreeSet::new();
                for p in placements {
                    if !self
                        .versions
                        .contains_key(&(tenant.clone(), app.clone(), p.version))
                    {
                        return Err(Rejection::not_found(
                            "version",
                            format!("{tenant}/{app}/{}", p.version),
                        ));
                    }
                    if !self.nodes.contains_key(&p.node) {
                        return Err(Rejection::not_found("node", &p.node));
                    }
                    check_replicas(p.count)?;
                    if !seen.insert((p.version, p.node.clone())) {
                        return Err(Rejection::invalid(
                            "placements",
                            format!("version {} on node {}", p.version, p.node),
                            "each version and node at most once",
                        ));
                    }
                }
                one(Record::Placement, format!("{tenant}/{app}"))
            }
            Command::PutRegion { region } => {
                revalidate(&region.name, "region")?;
                one(Record::Region, region.name.to_string())
            }
            Command::PutFailover { failover } => {
                revalidate(&failover.region, "region")?;
                if !self.regions.contains_key(&failover.region) {
                    return Err(Rejection::not_found("region", &failover.region));
                }
                let total: u64 = failover.targets.iter().map(|(_, s)| u64::from(*s)).sum();
                if failover.targets.is_empty() || total != 1000 {
                    return Err(Rejection::invalid(
                        "targets",
                        total,
                        "shares in thousandths summing to 1000",
                    ));
                }
                if let Some((target, _)) = failover
                    .targets
                    .iter()
                    .find(|(t, _)| t == &failover.region || !self.regions.contains_key(t))
                {
                    return Err(Rejection::invalid(
                        "targets",
                        target,
                        "regions that exist, other than the failed one",
                    ));
                }
                one(Record::Failover, failover.region.to_string())
            }
            Command::ApproveFailover { region } => {
                let failover = self
                    .failovers
                    .get(region)
                    .ok_or_else(|| Rejection::not_found("failover", region))?;
                if failover.approved {
                    return Err(Rejection::invalid(
                        "region",
                        region,
                        "a region whose failover waits for approval (this one is approved)",
                    ));
                }
                one(Record::Failover, region.to_string())
            }
            Command::PutNode { node } => {
                revalidate(&node.name, "node")?;
                if !self.regions.contains_key(&node.region) {
                    return Err(Rejection::not_found("region", &node.region));
                }
                if node.address.is_empty() || node.address.len() > 255 {
                    return Err(Rejection::invalid(
                        "address",
                        &node.address,
                        "host:port, 1 to 255 characters",
                    ));
                }
                if let Some(key) = &node.peer_key
                    && !crate::is_sha256_hex(key)
                {
                    return Err(Rejection::invalid(
                        "peer_key",
                        key,
                        "the lowercase hex sha256 of the node's public key",
                    ));
                }
                one(Record::Node, node.name.to_string())
            }
            Command::RemoveNode { name } => {
                self.nodes
                    .get(name)
                    .ok_or_else(|| Rejection::not_found("node", name))?;
                let mut changes = vec![change(Record::Node, name.to_string(), true)];
                if self.reports.contains_key(name) {
                    changes.push(change(Record::Report, name.to_string(), true));
                }
                Ok((Outcome::Applied, changes))
            }
            Command::Report { report } => {
                if !self.nodes.contains_key(&report.node) {
                    return Err(Rejection::not_found("node", &report.node));
                }
                if report.versions.len() > MAX_REPORTED_VERSIONS {
                    return Err(Rejection::invalid(
                        "versions",
                        report.versions.len().to_string(),
                        format!("at most {MAX_REPORTED_VERSIONS} versions per report"),
                    ));
                }
                one(Record::Report, report.node.to_string())
            }
            Command::StartRollout { .. }
            | Command::AdvanceRollout { .. }
            | Command::AbortRollout { .. }
            | Command::PromoteRollout { .. } => self.plan_rollout(command, authority),
            Command::PutRunbook {
                name,
                title,
                alerts,
                text,
            } => {
                revalidate(name, "runbook")?;
                check_runbook(title, alerts, text)?;
                if !self.runbooks.contains_key(name) && self.runbooks.len() >= MAX_RUNBOOKS {
                    return Err(Rejection::invalid(
                        "name",
                        name,
                        format!("a new runbook past the limit of {MAX_RUNBOOKS}; delete one first"),
                    ));
                }
                one(Record::Runbook, name.to_string())
            }
            Command::Audited {
                who,
                from,
                what,
                command,
                ..
            } => {
                if matches!(**command, Command::Audited { .. }) {
                    return Err(Rejection::invalid(
                        "command",
                        "audited",
                        "a change audited once, not an audit of an audit",
                    ));
                }
                for (field, value) in [("who", who), ("from", from), ("what", what)] {
                    if value.len() > 500 {
                        return Err(Rejection::invalid(field, value, "at most 500 bytes"));
                    }
                }
                self.plan_as(command, authority)
            }
            Command::Scoped { tenants, command } => {
                self.check_scope(tenants, command)?;
                self.plan_as(command, Authority::Tenant)
            }
            Command::SetPrices { prices } => {
                check_prices(prices)?;
                one(Record::Prices, "prices".into())
            }
            // A change, so that the entry takes a revision of its own.
            Command::Happened => one(Record::Audit, "audit".into()),
            Command::PutSlo { .. }
            | Command::DeleteSlo { .. }
            | Command::SealSloTargets { .. }
            | Command::SetSloStatus { .. }
            | Command::OpenIncident { .. }
            | Command::AcknowledgeIncident { .. }
            | Command::ResolveIncident { .. }
            | Command::NoteIncident { .. } => self.plan_ops(command),
            Command::RecordAutopilot { update } => self.plan_autopilot(update),
            Command::Certify { certify } => self.plan_certify(certify),
            Command::Act { act } => {
                let (_, stepped) = self.acts.step(act)?;
                Ok((
                    Outcome::Applied,
                    stepped
                        .keys
                        .into_iter()
                        .map(|key| change(Record::Act, key, false))
                        .collect(),
                ))
            }
            Command::DeleteRunbook { name } => {
                self.runbooks
                    .get(name)
                    .ok_or_else(|| Rejection::not_found("runbook", name))?;
                Ok((
                    Outcome::Applied,
                    vec![change(Record::Runbook, name.to_string(), true)],
                ))
            }
            Command::PutCredential { name, sha256, .. } => {
                revalidate(name, "credential")?;
                check_digest(sha256).map_err(|_| {
                    Rejection::invalid("sha256", sha256, "64 lowercase hex digits (a sha256)")
                })?;
                one(Record::Credential, name.to_string())
            }
            Command::DeleteCredential { name } => {
                self.credentials
                    .get(name)
                    .ok_or_else(|| Rejection::not_found("credential", name))?;
                Ok((
                    Outcome::Applied,
                    vec![change(Record::Credential, name.to_string(), true)],
                ))
            }
            Command::PutJoinToken { .. } | Command::UseJoinToken { .. } => {
                self.plan_join_token(command)
            }
            Command::PutUser { .. }
            | Command::DeleteUser { .. }
            | Command::SetUserTotp { .. }
            | Command::AllowTotpEnrollment { .. }
            | Command::ReserveLogin { .. }
            | Command::ConfirmUserTotp { .. }
            | Command::AcceptTotpStep { .. }
            | Command::CreateSession { .. }
            | Command::DeleteSession { .. } => self.plan_user(command),
            Command::Restore { backup, .. } => self.plan_restore(backup),
            Command::Put { key, value } => {
                check_register(key, Some(value))?;
                one(Record::Register, key.clone())
            }
            Command::CompareAndSwap { key, expected, new } => {
                check_register(key, new.as_deref())?;
                let previous = self.registers.get(key).cloned();
                if previous != *expected {
                    return Ok((
                        Outcome::Swapped {
                            swapped: false,
                            previous,
                        },
                        Vec::new(),
                    ));
                }
                Ok((
                    Outcome::Swapped {
                        swapped: true,
                        previous,
                    },
                    vec![change(Record::Register, key.clone(), new.is_none())],
                ))
            }
        }
    }

    /// Makes a planned change: cannot fail, so a change is never half made.
    fn commit(&mut self, command: &Command, changes: Vec<Change>) {
        let revision = Revision(self.revision.0 + 1);
        match command {
            Command::PutTenant { name, quotas } => {
                let created = self.tenants.get(name).map_or(revision, |t| t.created);
                self.tenants.insert(
                    name.clone(),
                    Tenant {
                        name: name.clone(),
                        quotas: quotas.clone(),
                        created,
                    },
                );
            }
            Command::DeleteTenant { name } => {
                self.tenants.remove(name);
            }
            Command::CreateApp {
                tenant,
                name,
                route,
                host,
            } => {
                self.apps.insert(
                    (tenant.clone(), name.clone()),
                    App {
                        tenant: tenant.clone(),
                        name: name.clone(),
                        route: route.clone(),
                        host: host.clone(),
                        next_version: 1,
                        created: revision,
                    },
                );
            }
            Command::DeleteApp { tenant, name } => {
                let key = (tenant.clone(), name.clone());
                self.versions
                    .retain(|(t, a, _), _| !(t == tenant && a == name));
                self.deployments.remove(&key);
                self.placements
                    .retain(|(t, a, _, _), _| !(t == tenant && a == name));
                self.rollouts
                    .retain(|(t, a, _), _| !(t == tenant && a == name));
                self.slos.retain(|(t, a, _), _| !(t == tenant && a == name));
                self.slo_status
                    .retain(|(t, a, _), _| !(t == tenant && a == name));
                self.apps.remove(&key);
            }
            Command::AddVersion {
                tenant,
                app,
                digest,
                config,
            } => {
                if let Some(found) = self.apps.get_mut(&(tenant.clone(), app.clone())) {
                    let number = found.next_version;
                    found.next_version += 1;
                    self.versions.insert(
                        (tenant.clone(), app.clone(), number),
                        Version {
                            tenant: tenant.clone(),
                            app: app.clone(),
                            number,
                            digest: digest.clone(),
                            config: config.clone(),
                            created: revision,
                            baseline_of: None,
                        },
                    );
                }
            }
            Command::SetDeployment {
                tenant,
                app,
                version,
                regions,
            } => {
                self.deployments.insert(
                    (tenant.clone(), app.clone()),
                    Deployment {
                        tenant: tenant.clone(),
                        app: app.clone(),
                        version: *version,
                        regions: regions.clone(),
                        updated: revision,
                    },
                );
            }
            Command::SetPlacements {
                tenant,
                app,
                placements,
            } => {
                self.placements
                    .retain(|(t, a, _, _), _| !(t == tenant && a == app));
                for p in placements.iter().filter(|p| p.count > 0) {
                    self.placements.insert(
                        (tenant.clone(), app.clone(), p.version, p.node.clone()),
                        Placement {
                            tenant: tenant.clone(),
                            app: app.clone(),
                            version: p.version,
                            node: p.node.clone(),
                            count: p.count,
                        },
                    );
                }
            }
            Command::PutRegion { region } => {
                self.regions.insert(region.name.clone(), region.clone());
            }
            Command::PutFailover { failover } => {
                self.failovers
                    .insert(failover.region.clone(), failover.clone());
            }
            Command::ApproveFailover { region } => {
                if let Some(failover) = self.failovers.get_mut(region) {
                    failover.approved = true;
                }
            }
            Command::PutNode { node } => {
                let mut node = node.clone();
                // A writer that does not know of pins (the agent, the
                // scheduler, the API's labels) keeps the one there is.
                if node.peer_key.is_none() {
                    node.peer_key = self.nodes.get(&node.name).and_then(|n| n.peer_key.clone());
                }
                self.nodes.insert(node.name.clone(), node);
            }
            Command::RemoveNode { name } => {
                self.nodes.remove(name);
                self.reports.remove(name);
            }
            Command::Report { report } => {
                self.reports.insert(report.node.clone(), report.clone());
            }
            Command::StartRollout { .. }
            | Command::AdvanceRollout { .. }
            | Command::AbortRollout { .. }
            | Command::PromoteRollout { .. } => self.commit_rollout(command, revision),
            Command::PutRunbook {
                name,
                title,
                alerts,
                text,
            } => {
                self.runbooks.insert(
                    name.clone(),
                    Runbook {
                        name: name.clone(),
                        title: title.clone(),
                        alerts: alerts.clone(),
                        text: text.clone(),
                        updated: revision,
                    },
                );
            }
            Command::DeleteRunbook { name } => {
                self.runbooks.remove(name);
            }
            Command::PutSlo { .. }
            | Command::DeleteSlo { .. }
            | Command::SealSloTargets { .. }
            | Command::SetSloStatus { .. }
            | Command::OpenIncident { .. }
            | Command::AcknowledgeIncident { .. }
            | Command::ResolveIncident { .. }
            | Command::NoteIncident { .. } => self.commit_ops(command, revision),
            Command::RecordAutopilot { update } => self.commit_autopilot(update, revision),
            Command::Certify { certify } => self.commit_certify(certify, revision),
            Command::Act { act } => {
                // Planned on this very state: it cannot be refused now.
                if let Ok((book, _)) = self.acts.step(act) {
                    self.acts = book;
                }
            }
            Command::SetPrices { prices } => {
                self.prices = Some(prices.clone());
            }
            Command::Happened => {}
            Command::Scoped { command, .. } => {
                // As for `Audited` below: the inner commit does the
                // bookkeeping.
                self.commit(command, changes);
                return;
            }
            Command::Audited {
                who,
                from,
                what,
                unix_ms,
                command,
            } => {
                // The inner change takes this revision; its own commit
                // below does the bookkeeping, so return before doing it
                // twice.
                self.commit(command, changes);
                self.audit.push_back(AuditEntry {
                    revision,
                    unix_ms: *unix_ms,
                    who: who.clone(),
                    from: from.clone(),
                    what: what.clone(),
                });
                while self.audit.len() > AUDIT_KEPT {
                    self.audit.pop_front();
                }
                return;
            }
            Command::PutCredential { name, role, sha256 } => {
                let created = self.credentials.get(name).map_or(revision, |c| c.created);
                self.credentials.insert(
                    name.clone(),
                    Credential {
                        name: name.clone(),
                        role: *role,
                        sha256: sha256.clone(),
                        created,
                        join: None,
                    },
                );
            }
            Command::DeleteCredential { name } => {
                self.credentials.remove(name);
            }
            Command::PutJoinToken { .. } | Command::UseJoinToken { .. } => {
                self.commit_join_token(command, revision)
            }
            Command::PutUser { .. }
            | Command::DeleteUser { .. }
            | Command::SetUserTotp { .. }
            | Command::AllowTotpEnrollment { .. }
            | Command::ReserveLogin { .. }
            | Command::ConfirmUserTotp { .. }
            | Command::AcceptTotpStep { .. }
            | Command::CreateSession { .. }
            | Command::DeleteSession { .. } => self.commit_user(command, revision),
            Command::Restore {
                backup,
                by,
                now_unix_ms,
            } => {
                // A restore sets its own revision and history.
                self.commit_restore(backup, by, *now_unix_ms);
                return;
            }
            Command::Put { key, value } => {
                self.registers.insert(key.clone(), value.clone());
            }
            Command::CompareAndSwap { key, new, .. } => match new {
                Some(v) => {
                    self.registers.insert(key.clone(), v.clone());
                }
                None => {
                    self.registers.remove(key);
                }
            },
        }
        self.revision = revision;
        for change in changes {
            self.history.push_back(Event { revision, change });
        }
        while self.history.len() > HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.floor = old.revision;
            }
        }
    }

    /// Replicas the tenant's deployments want, leaving out one app's.
    fn replicas_of(&self, tenant: &Name, except: Option<&Name>) -> u64 {
        self.deployments
            .values()
            .filter(|d| &d.tenant == tenant && Some(&d.app) != except)
            .map(Deployment::replicas)
            .sum()
    }

    fn apps_of<'a>(&'a self, tenant: &'a Name) -> impl Iterator<Item = &'a App> + 'a {
        self.apps.values().filter(move |a| &a.tenant == tenant)
    }

    /// Refuses a [`Command::Scoped`] command that acts outside `tenants`
    /// (or is not one a scoped caller makes at all).
    fn check_scope(&self, tenants: &[Name], command: &Command) -> Result<(), Rejection> {
        let tenant = match command {
            Command::AcknowledgeIncident { id, .. }
            | Command::ResolveIncident { id, .. }
            | Command::NoteIncident { id, .. } => Some(
                &self
                    .incident(*id)
                    .ok_or_else(|| Rejection::not_found("incident", id))?
                    .tenant,
            ),
            Command::Scoped { .. } | Command::Audited { .. } => {
                return Err(Rejection::invalid(
                    "command",
                    "scoped",
                    "one change, scoped once and audited outside the scope",
                ));
            }
            other => other.scope().map_err(|()| {
                Rejection::invalid(
                    "command",
                    "a change outside any tenant",
                    "a change to an app of the caller's tenants, or to the caller's own session",
                )
            })?,
        };
        match tenant {
            Some(t) if !tenants.contains(t) => Err(Rejection::invalid(
                "tenant",
                t,
                format!(
                    "one of the caller's tenants ({})",
                    tenants
                        .iter()
                        .map(Name::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            _ => Ok(()),
        }
    }
}

fn within_quota(tenant: &Tenant, what: &str, limit: u32, wanted: u64) -> Result<(), Rejection> {
    if wanted > u64::from(limit) {
        return Err(Rejection::Quota {
            tenant: tenant.name.to_string(),
            what: what.into(),
            limit: limit.into(),
            wanted,
        });
    }
    Ok(())
}

/// Names in commands are validated when built, but a command may come from
/// an older or hostile peer's log entry: check again.
fn revalidate(name: &Name, field: &'static str) -> Result<(), Rejection> {
    Name::new(field, name.as_str())
        .map(|_| ())
        .map_err(Into::into)
}
