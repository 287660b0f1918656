//! Certification in the store (issue 17): the reports `dwcp certify`
//! recorded, waivers of criteria (who, why, until when) and the go-live
//! sign-offs of a report, with the policy naming the roles that must sign.
//!
//! The report itself is the `certify` crate's JSON; the state keeps it as
//! text beside the little it needs to decide (its sha256, when it ran,
//! whether it left criteria out, the criteria that did not pass), because this
//! crate depends on no other DWCP crate: the API parses and checks a
//! report's sha256 before it records one. The decisions here are pure
//! (the time comes in the commands): a sign-off is refused unless its
//! report is the latest recorded, a full run, no older than the policy
//! allows, and every criterion that did not pass is covered by a waiver
//! in force at the sign-off's time.

use serde::{Deserialize, Serialize};

use crate::{Rejection, Revision};

/// Waivers kept (lapsed ones included until replaced or deleted).
pub const MAX_WAIVERS: usize = 200;
/// Reports kept, newest last (older ones go first, with their sign-offs).
pub const MAX_REPORTS: usize = 10;
/// The largest report recorded, in bytes of JSON.
pub const MAX_REPORT_BYTES: usize = 512 * 1024;
/// The longest a waiver may last: 90 days.
pub const MAX_WAIVER_MS: u64 = 90 * 24 * 3600 * 1000;
/// A report older than this (by default) is stale: 7 days.
pub const DEFAULT_MAX_REPORT_AGE_MS: u64 = 7 * 24 * 3600 * 1000;
/// The roles that must sign by default: the launch document's four.
pub const DEFAULT_APPROVERS: [&str; 4] = ["engineering-manager", "vp-engineering", "cto", "ceo"];
/// Longest reason, in bytes.
pub const MAX_REASON_BYTES: usize = 1000;
/// Apps a policy may mark production one by one.
pub const MAX_PRODUCTION_APPS: usize = 1000;

/// A criterion waived: shown as `waived`, never as passed, until it
/// lapses at `expires_unix_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiver {
    /// The criterion's id, e.g. `security.webhooks.restricted`.
    pub criterion: String,
    pub reason: String,
    /// Who waived it (a token's name or `user:<name>`).
    pub by: String,
    pub created_unix_ms: u64,
    pub expires_unix_ms: u64,
    pub revision: Revision,
}

impl Waiver {
    /// Whether the waiver is in force at `now_unix_ms`.
    pub fn in_force(&self, now_unix_ms: u64) -> bool {
        now_unix_ms < self.expires_unix_ms
    }
}

/// A report `dwcp certify` produced, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedReport {
    /// The report's own sha256 (checked by the API before recording).
    pub sha256: String,
    /// What was certified (the report's `target`).
    pub target: String,
    /// Criteria were left out (`--quick` or `--only`).
    pub partial: bool,
    pub started_unix_ms: u64,
    /// The criteria whose status was neither `pass` nor `warn`.
    pub not_passed: Vec<String>,
    /// Who recorded it, and when.
    pub by: String,
    pub recorded_unix_ms: u64,
    pub revision: Revision,
    /// The report's JSON (schema 1, docs/certify.md).
    pub json: String,
}

/// An approver's go-live sign-off of one report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOff {
    /// The report signed (its sha256).
    pub sha256: String,
    /// The policy's role the approver signs as, e.g. `cto`.
    pub role: String,
    /// Who signed: `user:<name>` of a session that passed TOTP.
    pub by: String,
    pub unix_ms: u64,
    pub revision: Revision,
}

/// Who must sign, and how fresh a report must be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoLivePolicy {
    /// The roles that must each sign the latest report.
    pub approvers: Vec<String>,
    pub max_report_age_ms: u64,
    /// The cluster runs production: starting a rollout or setting a
    /// deployment through the API is refused while the cluster holds no
    /// current, signed certification ([`crate::State::go_live_refusal`]),
    /// unless an admin overrides it (audited with the reason).
    #[serde(default)]
    pub production: bool,
    /// Apps marked production one by one (`tenant/app`): a rollout to one
    /// of them or a change to its deployment is gated as every app's is
    /// on a production cluster; other apps are not. Kept in the policy,
    /// an admin's, so that whoever may change an app cannot unmark it.
    #[serde(default)]
    pub production_apps: Vec<String>,
}

impl GoLivePolicy {
    /// Whether a change to `tenant/app` is gated: the cluster is marked
    /// production, or the app is.
    pub fn gates(&self, tenant: &str, app: &str) -> bool {
        self.production
            || self
                .production_apps
                .iter()
                .any(|a| a.split_once('/') == Some((tenant, app)))
    }

    /// Whether anything is gated.
    pub fn gates_any(&self) -> bool {
        self.production || !self.production_apps.is_empty()
    }
}

impl Default for GoLivePolicy {
    fn default() -> Self {
        GoLivePolicy {
            approvers: DEFAULT_APPROVERS.iter().map(|r| r.to_string()).collect(),
            max_report_age_ms: DEFAULT_MAX_REPORT_AGE_MS,
            production: false,
            production_apps: Vec::new(),
        }
    }
}

/// A change to the certification records ([`crate::Command::Certify`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CertifyCommand {
    /// Waives a criterion (replacing its waiver, if any).
    PutWaiver {
        criterion: String,
        reason: String,
        by: String,
        expires_unix_ms: u64,
        now_unix_ms: u64,
    },
    /// Ends a criterion's waiver.
    DeleteWaiver { criterion: String },
    /// Records a report (again: nothing changes).
    RecordReport {
        sha256: String,
        target: String,
        partial: bool,
        started_unix_ms: u64,
        not_passed: Vec<String>,
        by: String,
        now_unix_ms: u64,
        json: String,
    },
    /// An approver signs the latest report as `role`.
    SignOff {
        sha256: String,
        role: String,
        by: String,
        now_unix_ms: u64,
    },
    /// Replaces the go-live policy.
    SetPolicy { policy: GoLivePolicy },
}

/// Checks a criterion id: 3 to 100 of a-z, 0-9, '.', '_' and '-', with a
/// dot (a category and a name).
pub fn check_criterion_id(id: &str) -> Result<(), Rejection> {
    let ok = (3..=100).contains(&id.len())
        && id.contains('.')
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        return Ok(());
    }
    Err(Rejection::invalid(
        "criterion",
        id,
        "a criterion's id, e.g. `security.webhooks.restricted` (3-100 of a-z, 0-9, '.', '_', '-'; `dwcp certify list`)",
    ))
}

/// Checks an approver role's name: 1-63 of a-z, 0-9 and '-'.
pub fn check_role_name(field: &str, role: &str) -> Result<(), Rejection> {
    let ok = (1..=63).contains(&role.len())
        && role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        return Ok(());
    }
    Err(Rejection::invalid(
        field,
        role,
        "a role's name, 1-63 of a-z, 0-9 and '-', e.g. `cto`",
    ))
}

/// Checks a waiver's reason and expiry at `now_unix_ms`.
pub fn check_waiver(reason: &str, expires_unix_ms: u64, now_unix_ms: u64) -> Result<(), Rejection> {
    if reason.trim().is_empty() || reason.len() > MAX_REASON_BYTES {
        return Err(Rejection::invalid(
            "reason",
            reason,
            format!("why the criterion is waived: 1 to {MAX_REASON_BYTES} bytes"),
        ));
    }
    if expires_unix_ms <= now_unix_ms || expires_unix_ms - now_unix_ms > MAX_WAIVER_MS {
        return Err(Rejection::invalid(
            "expires_unix_ms",
            expires_unix_ms,
            format!("a time after now ({now_unix_ms}) and at most 90 days after it"),
        ));
    }
    Ok(())
}

/// Checks a go-live policy.
pub fn check_policy(policy: &GoLivePolicy) -> Result<(), Rejection> {
    if policy.approvers.is_empty() || policy.approvers.len() > 20 {
        return Err(Rejection::invalid(
            "approvers",
            policy.approvers.len(),
            "1 to 20 roles",
        ));
    }
    for (i, role) in policy.approvers.iter().enumerate() {
        check_role_name(&format!("approvers[{i}]"), role)?;
        if policy.approvers[..i].contains(role) {
            return Err(Rejection::invalid(
                &format!("approvers[{i}]"),
                role,
                "each role once",
            ));
        }
    }
    if policy.max_report_age_ms == 0 || policy.max_report_age_ms > MAX_WAIVER_MS {
        return Err(Rejection::invalid(
            "max_report_age_ms",
            policy.max_report_age_ms,
            "from 1 ms to 90 days",
        ));
    }
    if policy.production_apps.len() > MAX_PRODUCTION_APPS {
        return Err(Rejection::invalid(
            "production_apps",
            policy.production_apps.len(),
            format!("at most {MAX_PRODUCTION_APPS} apps"),
        ));
    }
    for (i, app) in policy.production_apps.iter().enumerate() {
        let field = format!("production_apps[{i}]");
        let Some((tenant, name)) = app.split_once('/') else {
            return Err(Rejection::invalid(&field, app, "an app as tenant/app"));
        };
        for part in [tenant, name] {
            crate::Name::new("production_apps", part).map_err(|e| {
                Rejection::invalid(
                    &field,
                    app,
                    format!("an app as tenant/app, each a name: {}", e.reason),
                )
            })?;
        }
        if policy.production_apps[..i].contains(app) {
            return Err(Rejection::invalid(&field, app, "each app once"));
        }
    }
    Ok(())
}
