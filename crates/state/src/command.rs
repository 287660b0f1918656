//! Commands: every change to the desired state, as one entry of the log,
//! and the checks of their values that need no state (public, so the API
//! refuses bad input with the very same rules before it writes anything).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Node, NodeReport, Prices, Quotas, Region, Role, VersionConfig};
use crate::rollout;
use crate::slo::{Severity, Slo, SloStatus};
use crate::state::Revision;
use crate::{Name, NameError};

/// One change to the desired state. Applied whole or not at all.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Creates a tenant or replaces its quotas.
    PutTenant { name: Name, quotas: Quotas },
    /// Deletes a tenant that has no apps left.
    DeleteTenant { name: Name },
    /// Creates an app served at `route` (a path prefix no other app uses
    /// on the same `host`; `None`: any host).
    CreateApp {
        tenant: Name,
        name: Name,
        route: String,
        #[serde(default)]
        host: Option<String>,
    },
    /// Deletes an app with its versions and deployment.
    DeleteApp { tenant: Name, name: Name },
    /// Adds the next version of an app: an artifact digest and its config.
    AddVersion {
        tenant: Name,
        app: Name,
        digest: String,
        config: VersionConfig,
    },
    /// Sets how many replicas of which version run in each region.
    SetDeployment {
        tenant: Name,
        app: Name,
        version: u64,
        regions: BTreeMap<Name, u32>,
    },
    /// Replaces every placement of one app with `placements` (the
    /// scheduler's decision for it; empty removes them all). Each names a
    /// version of the app and an existing node.
    SetPlacements {
        tenant: Name,
        app: Name,
        placements: Vec<PlacementSpec>,
    },
    /// Creates or replaces a region.
    PutRegion { region: Region },
    /// Records a region's failover (declared, or seen recovered): the
    /// global tier's, mirrored into cells.
    PutFailover { failover: crate::RegionFailover },
    /// An operator approves a failover the guardrail held.
    ApproveFailover { region: Name },
    /// Creates or replaces a node (its region must exist).
    PutNode { node: Node },
    /// Removes a node (and its last report).
    RemoveNode { name: Name },
    /// A node's heartbeat and observed state, replacing its last report.
    /// Sent every second or so by the node's agent: never once per request.
    Report { report: NodeReport },
    /// Starts a rollout of version `to` of an app that has a deployment
    /// and no rollout running, with a checked plan. Unless the plan is
    /// blue-green, a copy of the stable version is added as the baseline.
    /// `by` and `now_unix_ms` go into the audit trail.
    StartRollout {
        tenant: Name,
        app: Name,
        to: u64,
        plan: rollout::Plan,
        by: String,
        now_unix_ms: u64,
    },
    /// The rollout controller's step: the progress it computed from rollout
    /// `id` as it stood at revision `expected` (refused if the rollout
    /// changed since, e.g. an operator aborted it), and the audit records.
    /// A rollout that succeeds makes `to` the deployed version.
    AdvanceRollout {
        tenant: Name,
        app: Name,
        id: u64,
        expected: Revision,
        progress: rollout::Progress,
        records: Vec<String>,
        now_unix_ms: u64,
    },
    /// Stops the running rollout of an app at once: all traffic to stable.
    AbortRollout {
        tenant: Name,
        app: Name,
        reason: String,
        by: String,
        now_unix_ms: u64,
    },
    /// Asks the running rollout to skip its current pause or analysis.
    PromoteRollout {
        tenant: Name,
        app: Name,
        by: String,
        now_unix_ms: u64,
    },
    /// Creates or replaces a runbook (its front matter already parsed by
    /// the API: `title` and `alerts`).
    PutRunbook {
        name: Name,
        title: String,
        alerts: Vec<String>,
        text: String,
    },
    /// Deletes a runbook.
    DeleteRunbook { name: Name },
    /// Sets what running apps costs (the ops center's cost figures).
    SetPrices { prices: Prices },
    /// `command`, recorded in the audit log with who asked, from where and
    /// for what, if and only if it is applied.
    Audited {
        who: String,
        from: String,
        what: String,
        unix_ms: u64,
        command: Box<Command>,
    },
    /// `command`, asked for by a caller whose roles are limited to
    /// `tenants` (a user without a role on every tenant): refused unless it
    /// acts in one of them, and held to what such a caller may claim (no
    /// app on a shared host: see `claims.rs`). The API sends it inside
    /// [`Command::Audited`]; an unscoped command is the cluster's own or
    /// that of a caller with a role on every tenant.
    Scoped {
        tenants: Vec<Name>,
        command: Box<Command>,
    },
    /// Nothing to apply: the audit record of a change made outside the
    /// log (an artifact stored, a member removed, a join token made), sent
    /// inside [`Command::Audited`] right after the change.
    Happened,
    /// Creates or replaces a credential: a token's sha256 and its role.
    PutCredential {
        name: Name,
        role: Role,
        sha256: String,
    },
    /// Deletes a credential: its token stops working.
    DeleteCredential { name: Name },
    /// Creates a join token's credential that expires at
    /// `now_unix_ms + ttl_ms` and admits `uses` joins (`None`: any number
    /// until then). Expired join tokens are dropped in the same step.
    PutJoinToken {
        name: Name,
        sha256: String,
        now_unix_ms: u64,
        ttl_ms: u64,
        uses: Option<u32>,
    },
    /// Spends one use of the join token whose secret hashes to `sha256`,
    /// refused when there is none, it expired or it is used up (so two
    /// joins racing for a single-use token: one wins). A token used up or
    /// expired is dropped.
    UseJoinToken { sha256: String, now_unix_ms: u64 },
    /// Creates a user or replaces their password hash and roles (keeping
    /// their TOTP); replacing ends the user's sessions. The hash is made by
    /// the API (argon2id), never by the state machine.
    PutUser {
        name: Name,
        password_hash: String,
        roles: BTreeMap<String, Role>,
    },
    /// Deletes a user and ends their sessions.
    DeleteUser { name: Name },
    /// Enrolls a user in TOTP with a new sealed secret, unconfirmed until
    /// [`Command::ConfirmUserTotp`]. With `code_sha256`, the user enrolls
    /// themself with the one-time code an admin made
    /// ([`Command::AllowTotpEnrollment`]): refused unless it matches and has
    /// not expired at `now_unix_ms`. Any pending code is used up.
    SetUserTotp {
        name: Name,
        sealed: String,
        #[serde(default)]
        code_sha256: Option<String>,
        #[serde(default)]
        now_unix_ms: u64,
    },
    /// Confirms a user's TOTP with the time step of a code they sent;
    /// refused as replayed unless `step` is after the last accepted one.
    /// Ends the user's sessions: none made before the second factor stays.
    ConfirmUserTotp { name: Name, step: u64 },
    /// An admin lets a user enroll a second factor on their own with a
    /// one-time code (kept as its sha256) until `expires_unix_ms`.
    AllowTotpEnrollment {
        name: Name,
        code_sha256: String,
        expires_unix_ms: u64,
    },
    /// Reserves a login attempt of user `name` before its password is
    /// checked: refused once the user has made
    /// [`crate::users::LOGIN_ATTEMPTS`] in the window (field `login`); a
    /// successful login ([`Command::CreateSession`]) clears the count. For
    /// a name that is no user it changes nothing.
    ReserveLogin { name: Name, now_unix_ms: u64 },
    /// Accepts a TOTP time step for a user: a compare-and-set, refused as
    /// replayed unless `step` is after the last accepted one, so two nodes
    /// cannot both accept one code.
    AcceptTotpStep { name: Name, step: u64 },
    /// Starts a session (a login), first ending expired ones as of
    /// `now_unix_ms`, and clears the user's login attempts. With
    /// `totp_step`, the login's TOTP step is accepted in the same entry, as
    /// [`Command::AcceptTotpStep`] would.
    CreateSession {
        session: crate::users::Session,
        totp_step: Option<u64>,
        now_unix_ms: u64,
    },
    /// Ends a session (a logout), by the sha256 of its token.
    DeleteSession { sha256: String },
    /// Sets a register (a small key-value cell for controllers and tests).
    Put { key: String, value: Vec<u8> },
    /// Creates or replaces an SLO of an existing app (checked whole, see
    /// [`crate::check_slo`]).
    PutSlo { slo: Slo },
    /// Deletes an SLO (and its status).
    DeleteSlo { tenant: Name, app: Name, name: Name },
    /// Seals the notification secrets of SLOs stored before sealing (the
    /// leader's reseal): each of `slos` is a stored SLO, unchanged since
    /// its `updated` revision, with every target now holding `sealed`;
    /// only the targets are replaced. Refused whole when one changed
    /// meanwhile (the leader reads again and retries).
    SealSloTargets { slos: Vec<Slo> },
    /// The SLO evaluator's latest readings (burn rates, budget left),
    /// replacing those of the SLOs it names.
    SetSloStatus { statuses: Vec<SloStatus> },
    /// An alert fired: opens an incident — or, while an incident with the
    /// same `fingerprint` is unresolved, adds "fired again: `text`" to its
    /// timeline instead (the outcome says which, and the id).
    OpenIncident {
        fingerprint: String,
        alert: String,
        tenant: Name,
        app: Name,
        slo: Name,
        severity: Severity,
        text: String,
        by: String,
        now_unix_ms: u64,
    },
    /// Someone took an open incident.
    AcknowledgeIncident {
        id: u64,
        by: String,
        now_unix_ms: u64,
    },
    /// An open or acknowledged incident is over.
    ResolveIncident {
        id: u64,
        by: String,
        #[serde(default)]
        text: Option<String>,
        now_unix_ms: u64,
    },
    /// A line on an incident's timeline (a note, a notification's fate).
    NoteIncident {
        id: u64,
        by: String,
        text: String,
        now_unix_ms: u64,
    },
    /// The autopilot's findings of one round (its leader-only loop writes
    /// at most one a round): detections, predictions, diagnoses, and the
    /// incidents predictions open.
    RecordAutopilot {
        update: crate::autopilot::AutopilotUpdate,
    },
    /// The autopilot's acting (issue 20): its switches, policy,
    /// decisions, approvals and actions ([`crate::act::book::ActBook::step`]).
    Act { act: crate::act::book::ActCommand },
    /// Certification records (issue 17): waivers, reports, go-live
    /// sign-offs and the policy ([`crate::certification`]).
    Certify {
        certify: crate::certification::CertifyCommand,
    },
    /// Sets a register to `new` (or deletes it when `None`) only if it
    /// currently holds `expected` (`None`: absent).
    CompareAndSwap {
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    },
    /// Founds a restored cluster: the state becomes `backup`'s, except the
    /// new cluster's own identity (its nodes, join credentials and
    /// `cluster/` registers; `state/restore.rs` has the rules). Refused
    /// unless this cluster is new (no app yet). Sent once, by `dwcp
    /// restore`; in the log as base64 text ([`crate::snapshot`]). `by`
    /// and `now_unix_ms` go into the audit log.
    Restore {
        #[serde(
            serialize_with = "crate::snapshot::serialize",
            deserialize_with = "crate::snapshot::deserialize"
        )]
        backup: Box<crate::State>,
        by: String,
        now_unix_ms: u64,
    },
}

impl Command {
    /// What a [`Command::Scoped`] caller may ask for: the tenant a
    /// tenant's change acts in (`Ok(Some)`), `Ok(None)` for the changes a
    /// caller makes to their own session and second factor (and the audit
    /// record of an upload), and `Err` for every other change.
    pub(crate) fn scope(&self) -> Result<Option<&Name>, ()> {
        match self {
            Command::CreateApp { tenant, .. }
            | Command::DeleteApp { tenant, .. }
            | Command::AddVersion { tenant, .. }
            | Command::SetDeployment { tenant, .. }
            | Command::StartRollout { tenant, .. }
            | Command::AbortRollout { tenant, .. }
            | Command::PromoteRollout { tenant, .. }
            | Command::DeleteSlo { tenant, .. } => Ok(Some(tenant)),
            Command::PutSlo { slo } => Ok(Some(&slo.tenant)),
            Command::DeleteSession { .. }
            | Command::SetUserTotp { .. }
            | Command::ConfirmUserTotp { .. }
            | Command::Happened => Ok(None),
            _ => Err(()),
        }
    }
}

/// One node's share of an app version, in [`Command::SetPlacements`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementSpec {
    pub version: u64,
    pub node: Name,
    pub count: u32,
}

/// What an applied command produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The change was made.
    Applied,
    /// The version was added with this number.
    VersionAdded(u64),
    /// A compare-and-swap: whether it swapped, and the value it found.
    Swapped {
        swapped: bool,
        previous: Option<Vec<u8>>,
    },
    /// An incident command: the incident's id, and whether it was opened
    /// now (`false`: an existing one was changed).
    Incident { id: u64, opened: bool },
}

/// Why a command was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Rejection {
    #[error("{kind} `{name}` does not exist")]
    NotFound { kind: String, name: String },
    #[error("{kind} `{name}` already exists")]
    AlreadyExists { kind: String, name: String },
    #[error("{field} `{value}` is not allowed: {allowed}")]
    Invalid {
        field: String,
        value: String,
        allowed: String,
    },
    #[error(
        "tenant `{tenant}` would have {wanted} {what}, over its quota of {limit}{}",
        quota_hint(what)
    )]
    Quota {
        tenant: String,
        what: String,
        limit: u64,
        wanted: u64,
    },
    #[error("{kind} `{name}` is still used by {by}")]
    InUse {
        kind: String,
        name: String,
        by: String,
    },
    /// A well-formed value that another record of the state holds (a
    /// host or route prefix another tenant claims): the same request may
    /// pass on another state, so it is no bad input (the API's 409).
    #[error("{field} `{value}` is not allowed: {reason}")]
    Conflict {
        field: String,
        value: String,
        reason: String,
    },
}

impl Rejection {
    pub(crate) fn not_found(kind: &str, name: impl ToString) -> Rejection {
        Rejection::NotFound {
            kind: kind.into(),
            name: name.to_string(),
        }
    }

    pub(crate) fn invalid(field: &str, value: impl ToString, allowed: impl ToString) -> Rejection {
        Rejection::Invalid {
            field: field.into(),
            value: value.to_string().chars().take(200).collect(),
            allowed: allowed.to_string(),
        }
    }

    pub(crate) fn conflict(field: &str, value: impl ToString, reason: impl ToString) -> Rejection {
        Rejection::Conflict {
            field: field.into(),
            value: value.to_string().chars().take(200).collect(),
            reason: reason.to_string(),
        }
    }

    /// The field a client got wrong, or that conflicts with the state,
    /// when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Rejection::Invalid { field, .. } | Rejection::Conflict { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl From<NameError> for Rejection {
    fn from(e: NameError) -> Self {
        Rejection::Invalid {
            field: e.field.into(),
            value: e.value,
            allowed: "1-63 of a-z, 0-9 and '-', starting with a letter, not ending with '-'".into(),
        }
    }
}

/// Checks a route: a path prefix like `/hello` or `/api/v2`.
pub fn check_route(route: &str) -> Result<(), Rejection> {
    let allowed = "a path starting with '/', at most 256 characters of A-Z a-z 0-9 - . _ ~ /, no empty segment, no trailing '/' (except \"/\" itself)";
    let ok = route.starts_with('/')
        && route.len() <= 256
        && (route == "/" || (!route.ends_with('/') && !route.contains("//")))
        && route
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
        && !route.split('/').any(|seg| seg == "." || seg == "..");
    if ok {
        Ok(())
    } else {
        Err(Rejection::invalid("route", route, allowed))
    }
}

/// Checks an app's host: a DNS name, lowercase, without a port.
pub fn check_host(host: &str) -> Result<(), Rejection> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(Rejection::invalid(
            "host",
            host,
            "a DNS name in lowercase (labels of a-z, 0-9 and '-', joined by '.'), without a port",
        ))
    }
}

/// Checks a sha256 digest in lowercase hex.
pub fn check_digest(digest: &str) -> Result<(), Rejection> {
    if crate::is_sha256_hex(digest) {
        Ok(())
    } else {
        Err(Rejection::invalid(
            "digest",
            digest,
            "64 lowercase hex digits (a sha256)",
        ))
    }
}

/// How to read a quota refusal of a version's limit.
fn quota_hint(what: &str) -> &'static str {
    if what.starts_with("config.") {
        " (an admin sets the tenant's quotas: POST /api/v1/tenants)"
    } else {
        ""
    }
}

/// Checks a tenant's quotas of a version's limits: each from its least
/// useful value to the global maximum.
pub fn check_quotas(q: &Quotas) -> Result<(), Rejection> {
    if !(64 << 10..=Quotas::MEMORY_BYTES_LIMIT).contains(&q.max_memory_bytes) {
        return Err(Rejection::invalid(
            "quotas.max_memory_bytes",
            q.max_memory_bytes,
            "65536 (64 KiB) to 4294967296 (4 GiB)",
        ));
    }
    if !(1..=Quotas::TIMEOUT_MS_LIMIT).contains(&q.max_timeout_ms) {
        return Err(Rejection::invalid(
            "quotas.max_timeout_ms",
            q.max_timeout_ms,
            "1 to 600000 (10 minutes)",
        ));
    }
    if !(1..=Quotas::CONCURRENCY_LIMIT).contains(&q.max_concurrency) {
        return Err(Rejection::invalid(
            "quotas.max_concurrency",
            q.max_concurrency,
            "1 to 100000 requests at once",
        ));
    }
    if !(1..=Quotas::BODY_BYTES_LIMIT).contains(&q.max_body_bytes) {
        return Err(Rejection::invalid(
            "quotas.max_body_bytes",
            q.max_body_bytes,
            "1 to 67108864 (64 MiB)",
        ));
    }
    Ok(())
}

/// Refuses a version's configuration over its tenant's quotas, naming the
/// configuration's field (`config.memory_bytes`, …).
pub fn check_config_quotas(
    tenant: &Name,
    q: &Quotas,
    config: &VersionConfig,
) -> Result<(), Rejection> {
    let over = |what: &str, limit: u64, wanted: u64| {
        (wanted > limit).then(|| Rejection::Quota {
            tenant: tenant.to_string(),
            what: what.into(),
            limit,
            wanted,
        })
    };
    let checks = [
        over(
            "config.memory_bytes",
            q.max_memory_bytes,
            config.memory_bytes,
        ),
        over("config.timeout_ms", q.max_timeout_ms, config.timeout_ms),
        over(
            "config.max_concurrency",
            q.max_concurrency.into(),
            config.max_concurrency.into(),
        ),
        over(
            "config.max_request_bytes",
            q.max_body_bytes,
            config.max_request_bytes,
        ),
        over(
            "config.max_response_bytes",
            q.max_body_bytes,
            config.max_response_bytes,
        ),
    ];
    match checks.into_iter().flatten().next() {
        Some(rejection) => Err(rejection),
        None => Ok(()),
    }
}

/// Checks a version's configuration.
pub fn check_config(config: &VersionConfig) -> Result<(), Rejection> {
    if config.memory_bytes < 64 << 10
        || config.memory_bytes > 4 << 30
        || !config.memory_bytes.is_multiple_of(64 << 10)
    {
        return Err(Rejection::invalid(
            "memory_bytes",
            config.memory_bytes,
            "a multiple of 64 KiB from 64 KiB to 4 GiB",
        ));
    }
    if config.timeout_ms == 0 || config.timeout_ms > 600_000 {
        return Err(Rejection::invalid(
            "timeout_ms",
            config.timeout_ms,
            "1 to 600000 (10 minutes)",
        ));
    }
    if config.max_concurrency == 0 || config.max_concurrency > 100_000 {
        return Err(Rejection::invalid(
            "max_concurrency",
            config.max_concurrency,
            "1 to 100000 requests at once",
        ));
    }
    const MAX_BODY: u64 = 64 << 20;
    if config.max_request_bytes > MAX_BODY {
        return Err(Rejection::invalid(
            "max_request_bytes",
            config.max_request_bytes,
            "0 to 67108864 (64 MiB)",
        ));
    }
    if config.max_response_bytes == 0 || config.max_response_bytes > MAX_BODY {
        return Err(Rejection::invalid(
            "max_response_bytes",
            config.max_response_bytes,
            "1 to 67108864 (64 MiB)",
        ));
    }
    // A microVM's memory is its whole guest-physical space, mapped in
    // 2 MiB pages of page tables (see docs/microvm.md).
    if config.tier == crate::Tier::Microvm
        && (config.memory_bytes < 8 << 20
            || config.memory_bytes > 1 << 30
            || !config.memory_bytes.is_multiple_of(2 << 20))
    {
        return Err(Rejection::invalid(
            "memory_bytes",
            config.memory_bytes,
            "for the microvm tier, a multiple of 2 MiB from 8 MiB to 1 GiB",
        ));
    }
    Ok(())
}

/// Checks the replicas wanted in one region.
pub fn check_replicas(replicas: u32) -> Result<(), Rejection> {
    if replicas > 100_000 {
        return Err(Rejection::invalid(
            "replicas",
            replicas,
            "at most 100000 per region",
        ));
    }
    Ok(())
}

/// Checks prices: a currency code of three capital letters and amounts
/// that are finite, not negative and below a million.
pub fn check_prices(p: &Prices) -> Result<(), Rejection> {
    if p.currency.len() != 3 || !p.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Rejection::invalid(
            "currency",
            &p.currency,
            "an ISO 4217 code of three capital letters, e.g. USD or EUR",
        ));
    }
    for (field, v) in [
        ("per_sandbox_second", p.per_sandbox_second),
        ("per_gb_second", p.per_gb_second),
        ("per_million_requests", p.per_million_requests),
    ] {
        if !(v.is_finite() && (0.0..1e6).contains(&v)) {
            return Err(Rejection::invalid(
                field,
                v,
                "an amount from 0 up to 1000000 (exclusive)",
            ));
        }
    }
    Ok(())
}

/// Largest runbook text, in bytes.
pub const MAX_RUNBOOK_BYTES: usize = 64 << 10;

/// Checks a runbook's parts: a title, at least one alert, each a name of
/// letters, digits, `_`, `:` and `-`, and the text's size.
pub fn check_runbook(title: &str, alerts: &[String], text: &str) -> Result<(), Rejection> {
    if title.trim().is_empty() || title.len() > 200 {
        return Err(Rejection::invalid("title", title, "1 to 200 characters"));
    }
    if alerts.is_empty() || alerts.len() > 100 {
        return Err(Rejection::invalid(
            "alerts",
            alerts.len(),
            "1 to 100 alert names",
        ));
    }
    for alert in alerts {
        let ok = !alert.is_empty()
            && alert.len() <= 100
            && alert
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_:-".contains(&b));
        if !ok {
            return Err(Rejection::invalid(
                "alerts",
                alert,
                "alert names of 1 to 100 letters, digits, '_', ':' and '-'",
            ));
        }
    }
    if text.len() > MAX_RUNBOOK_BYTES {
        return Err(Rejection::invalid(
            "text",
            format!("{} bytes", text.len()),
            format!("at most {MAX_RUNBOOK_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Checks a register key and value.
pub fn check_register(key: &str, value: Option<&[u8]>) -> Result<(), Rejection> {
    if key.is_empty() || key.len() > 256 {
        return Err(Rejection::invalid("key", key, "1 to 256 bytes"));
    }
    if let Some(v) = value
        && v.len() > 64 << 10
    {
        return Err(Rejection::invalid(
            "value",
            format!("{} bytes", v.len()),
            "at most 64 KiB",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        for ok in ["/", "/hello", "/api/v2", "/a-b_c.d~e"] {
            assert!(check_route(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "hello", "/hello/", "//x", "/a//b", "/a b", "/../etc", "/x?y",
        ] {
            let err = check_route(bad).unwrap_err();
            assert_eq!(err.field(), Some("route"), "{bad}");
        }
    }

    #[test]
    fn digests_and_configs() {
        assert!(check_digest(&"ab".repeat(32)).is_ok());
        assert!(check_digest(&"AB".repeat(32)).is_err());
        assert!(check_digest("abc").is_err());
        assert!(check_config(&VersionConfig::default()).is_ok());
        let bad = VersionConfig {
            memory_bytes: 1000,
            ..VersionConfig::default()
        };
        assert_eq!(
            check_config(&bad).unwrap_err().field(),
            Some("memory_bytes")
        );
        // A microVM's memory is 8 MiB to 1 GiB in 2 MiB steps; 64 KiB steps
        // are a wasm tier's.
        let microvm = |memory_bytes| VersionConfig {
            memory_bytes,
            tier: crate::Tier::Microvm,
            ..VersionConfig::default()
        };
        assert!(check_config(&microvm(64 << 20)).is_ok());
        for bad in [4 << 20, (8 << 20) + (64 << 10), 2 << 30] {
            assert_eq!(
                check_config(&microvm(bad)).unwrap_err().field(),
                Some("memory_bytes"),
                "{bad}"
            );
        }
        assert_eq!("microvm".parse(), Ok(crate::Tier::Microvm));
        assert!("ebpf".parse::<crate::Tier>().is_err());
        // Versions written before tiers existed are wasm.
        let old: VersionConfig =
            serde_json::from_str(r#"{"memory_bytes":65536,"timeout_ms":1,"warm":false}"#).unwrap();
        assert_eq!(old.tier, crate::Tier::Wasm);
    }

    #[test]
    fn commands_round_trip_as_json() {
        let cmd = Command::CreateApp {
            tenant: Name::new("tenant", "acme").unwrap(),
            name: Name::new("app", "shop").unwrap(),
            route: "/shop".into(),
            host: Some("shop.example.com".into()),
        };
        let json = serde_json::to_string(&cmd).unwrap();
        assert!(json.contains("\"op\":\"create_app\""));
        assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), cmd);
        // An entry written before apps had hosts reads as "any host".
        let old = r#"{"op":"create_app","tenant":"acme","name":"shop","route":"/shop"}"#;
        let Command::CreateApp { host, .. } = serde_json::from_str(old).unwrap() else {
            panic!("not a create_app")
        };
        assert_eq!(host, None);
    }
}
