//! Certification records in the state machine ([`CertifyCommand`]):
//! waivers, recorded reports, go-live sign-offs and the policy. Pure: the
//! time comes in the commands (`crate::certification` has the rules).

use serde::{Deserialize, Serialize};

use super::{Change, Record, Revision, State};
use crate::certification::{
    CertifyCommand, GoLivePolicy, MAX_REPORT_BYTES, MAX_REPORTS, MAX_WAIVERS, RecordedReport,
    SignOff, Waiver, check_criterion_id, check_policy, check_role_name, check_waiver,
};
use crate::{Outcome, Rejection, check_digest};

/// What the store keeps of certification.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Certification {
    /// By criterion, lapsed ones included.
    waivers: std::collections::BTreeMap<String, Waiver>,
    /// Oldest first; the last is the latest.
    reports: Vec<RecordedReport>,
    /// Of the reports kept, in the order signed.
    sign_offs: Vec<SignOff>,
    /// `None`: [`GoLivePolicy::default`].
    policy: Option<GoLivePolicy>,
}

fn change(key: String, deleted: bool) -> Change {
    Change {
        record: Record::Certification,
        key,
        deleted,
    }
}

impl State {
    /// The waivers kept, by criterion (lapsed ones too: see
    /// [`Waiver::in_force`]).
    pub fn waivers(&self) -> impl Iterator<Item = &Waiver> {
        self.certification.waivers.values()
    }

    /// The reports kept, oldest first.
    pub fn certify_reports(&self) -> &[RecordedReport] {
        &self.certification.reports
    }

    /// The latest report recorded.
    pub fn latest_certify_report(&self) -> Option<&RecordedReport> {
        self.certification.reports.last()
    }

    /// The sign-offs of the reports kept, in the order signed.
    pub fn sign_offs(&self) -> &[SignOff] {
        &self.certification.sign_offs
    }

    /// The go-live policy in force.
    pub fn go_live_policy(&self) -> GoLivePolicy {
        self.certification.policy.clone().unwrap_or_default()
    }

    /// The policy's roles that have not signed the report `sha256`.
    pub fn missing_sign_offs(&self, sha256: &str) -> Vec<String> {
        self.go_live_policy()
            .approvers
            .into_iter()
            .filter(|role| {
                !self
                    .certification
                    .sign_offs
                    .iter()
                    .any(|s| s.sha256 == sha256 && &s.role == role)
            })
            .collect()
    }

    /// Why the report `sha256` may not be signed at `now_unix_ms`, if it
    /// may not: not the latest, a partial run (`--quick`, `--only`), older than the policy
    /// allows, or criteria not passed without a waiver in force.
    pub fn sign_off_refusal(&self, sha256: &str, now_unix_ms: u64) -> Option<Rejection> {
        let Some(report) = self
            .certification
            .reports
            .iter()
            .find(|r| r.sha256 == sha256)
        else {
            return Some(Rejection::not_found(
                "certification report",
                format!("{sha256} (record it first: POST /api/v1/certify/reports)"),
            ));
        };
        let latest = self.latest_certify_report().map(|r| r.sha256.as_str());
        if latest != Some(sha256) {
            return Some(Rejection::invalid(
                "sha256",
                sha256,
                format!(
                    "the latest report ({}): this one is stale, a newer one was recorded",
                    latest.unwrap_or("none")
                ),
            ));
        }
        if report.partial {
            return Some(Rejection::invalid(
                "sha256",
                sha256,
                "a report of a full run: this one left criteria out (`dwcp certify --quick` or `--only`)",
            ));
        }
        let max_age = self.go_live_policy().max_report_age_ms;
        let age = now_unix_ms.saturating_sub(report.started_unix_ms);
        if age > max_age {
            return Some(Rejection::invalid(
                "sha256",
                sha256,
                format!(
                    "a report at most {} h old: this one is stale, {} h old; run `dwcp certify` again",
                    max_age / 3_600_000,
                    age / 3_600_000
                ),
            ));
        }
        let unwaived: Vec<&str> = report
            .not_passed
            .iter()
            .filter(|id| {
                !self
                    .certification
                    .waivers
                    .get(*id)
                    .is_some_and(|w| w.in_force(now_unix_ms))
            })
            .map(String::as_str)
            .collect();
        if !unwaived.is_empty() {
            return Some(Rejection::invalid(
                "sha256",
                sha256,
                format!(
                    "a report whose every criterion passed or is waived: {} failed with no waiver in force ({}); fix them and certify again, or `dwcp certify waive`",
                    unwaived.len(),
                    unwaived.join(", ")
                ),
            ));
        }
        None
    }

    /// Why the cluster's certification would not open the go-live gate
    /// at `now_unix_ms`, if it would not: unless its latest recorded
    /// report is current — a full run, no older than the policy allows,
    /// every criterion passed or waived by a waiver still in force (a
    /// lapsed waiver no longer counts) — and signed by every role the
    /// policy names.
    pub fn certification_gap(&self, now_unix_ms: u64) -> Option<String> {
        let Some(latest) = self.latest_certify_report() else {
            return Some(
                "the cluster holds no certification report: run `dwcp certify --api …` and have it signed off".into(),
            );
        };
        if let Some(refusal) = self.sign_off_refusal(&latest.sha256, now_unix_ms) {
            return Some(format!(
                "the cluster's latest certification ({}) is no longer current: {refusal}",
                latest.sha256
            ));
        }
        let missing = self.missing_sign_offs(&latest.sha256);
        if !missing.is_empty() {
            return Some(format!(
                "the cluster's latest certification ({}) is not signed off: missing {} (`dwcp certify status`)",
                latest.sha256,
                missing.join(", ")
            ));
        }
        None
    }

    /// Why the go-live gate refuses a change to what runs of
    /// `tenant/app` (a rollout started, a deployment set) at
    /// `now_unix_ms`, if it does: only when the policy marks the cluster
    /// or this app production ([`GoLivePolicy::gates`]), and then unless
    /// the cluster's certification is current and signed
    /// ([`Self::certification_gap`]).
    pub fn go_live_refusal(&self, tenant: &str, app: &str, now_unix_ms: u64) -> Option<String> {
        let policy = self.go_live_policy();
        if !policy.gates(tenant, app) {
            return None;
        }
        let subject = if policy.production {
            "this cluster is marked production".to_string()
        } else {
            format!("app {tenant}/{app} is marked production")
        };
        self.certification_gap(now_unix_ms)
            .map(|gap| format!("{subject} and {gap}"))
    }

    /// Why the go-live gate is closed at `now_unix_ms` for what it gates
    /// (the whole cluster, or the apps marked production), if it is.
    pub fn go_live_gate(&self, now_unix_ms: u64) -> Option<String> {
        let policy = self.go_live_policy();
        if !policy.gates_any() {
            return None;
        }
        let subject = if policy.production {
            "this cluster is marked production".to_string()
        } else {
            format!(
                "{} marked production ({})",
                if policy.production_apps.len() == 1 {
                    "1 app is".to_string()
                } else {
                    format!("{} apps are", policy.production_apps.len())
                },
                policy.production_apps.join(", ")
            )
        };
        self.certification_gap(now_unix_ms)
            .map(|gap| format!("{subject} and {gap}"))
    }

    pub(super) fn plan_certify(
        &self,
        command: &CertifyCommand,
    ) -> Result<(Outcome, Vec<Change>), Rejection> {
        let c = &self.certification;
        match command {
            CertifyCommand::PutWaiver {
                criterion,
                reason,
                by,
                expires_unix_ms,
                now_unix_ms,
            } => {
                check_criterion_id(criterion)?;
                check_waiver(reason, *expires_unix_ms, *now_unix_ms)?;
                check_by(by)?;
                if !c.waivers.contains_key(criterion) && c.waivers.len() >= MAX_WAIVERS {
                    return Err(Rejection::invalid(
                        "criterion",
                        criterion,
                        format!("a new waiver past the limit of {MAX_WAIVERS}; delete one first"),
                    ));
                }
                Ok((
                    Outcome::Applied,
                    vec![change(format!("waiver/{criterion}"), false)],
                ))
            }
            CertifyCommand::DeleteWaiver { criterion } => {
                if !c.waivers.contains_key(criterion) {
                    return Err(Rejection::not_found("waiver of criterion", criterion));
                }
                Ok((
                    Outcome::Applied,
                    vec![change(format!("waiver/{criterion}"), true)],
                ))
            }
            CertifyCommand::RecordReport {
                sha256,
                target,
                not_passed,
                by,
                json,
                ..
            } => {
                check_digest(sha256).map_err(|_| {
                    Rejection::invalid("sha256", sha256, "64 lowercase hex digits (a sha256)")
                })?;
                check_by(by)?;
                if json.len() > MAX_REPORT_BYTES || target.len() > 500 {
                    return Err(Rejection::invalid(
                        "report",
                        format!("{} bytes", json.len()),
                        format!(
                            "a report of at most {MAX_REPORT_BYTES} bytes, its target at most 500"
                        ),
                    ));
                }
                for id in not_passed {
                    check_criterion_id(id)?;
                }
                if c.reports.iter().any(|r| r.sha256 == *sha256) {
                    return Ok((Outcome::Applied, Vec::new()));
                }
                let mut changes = vec![change(format!("report/{sha256}"), false)];
                if c.reports.len() >= MAX_REPORTS {
                    changes.push(change(format!("report/{}", c.reports[0].sha256), true));
                }
                Ok((Outcome::Applied, changes))
            }
            CertifyCommand::SignOff {
                sha256,
                role,
                by,
                now_unix_ms,
            } => {
                check_role_name("role", role)?;
                check_by(by)?;
                if let Some(refusal) = self.sign_off_refusal(sha256, *now_unix_ms) {
                    return Err(refusal);
                }
                let policy = self.go_live_policy();
                if !policy.approvers.contains(role) {
                    return Err(Rejection::invalid(
                        "role",
                        role,
                        format!(
                            "one of the go-live policy's approvers: {}",
                            policy.approvers.join(", ")
                        ),
                    ));
                }
                if let Some(s) = c
                    .sign_offs
                    .iter()
                    .find(|s| s.sha256 == *sha256 && (s.role == *role || s.by == *by))
                {
                    return Err(Rejection::AlreadyExists {
                        kind: "sign-off".into(),
                        name: format!("of report {sha256} as {} by {}", s.role, s.by),
                    });
                }
                Ok((
                    Outcome::Applied,
                    vec![change(format!("sign_off/{sha256}/{role}"), false)],
                ))
            }
            CertifyCommand::SetPolicy { policy } => {
                check_policy(policy)?;
                // An app newly marked production must exist (a typo would
                // leave the app it meant ungated); one marked before may
                // have been deleted since and stays harmless.
                let before = self.go_live_policy().production_apps;
                for (i, id) in policy.production_apps.iter().enumerate() {
                    if before.contains(id) {
                        continue;
                    }
                    let exists = id.split_once('/').is_some_and(|(t, a)| {
                        self.apps()
                            .any(|x| x.tenant.as_str() == t && x.name.as_str() == a)
                    });
                    if !exists {
                        return Err(Rejection::conflict(
                            &format!("production_apps[{i}]"),
                            id,
                            "an existing app (tenant/app)",
                        ));
                    }
                }
                Ok((Outcome::Applied, vec![change("policy".into(), false)]))
            }
        }
    }

    pub(super) fn commit_certify(&mut self, command: &CertifyCommand, revision: Revision) {
        let c = &mut self.certification;
        match command {
            CertifyCommand::PutWaiver {
                criterion,
                reason,
                by,
                expires_unix_ms,
                now_unix_ms,
            } => {
                c.waivers.insert(
                    criterion.clone(),
                    Waiver {
                        criterion: criterion.clone(),
                        reason: reason.clone(),
                        by: by.clone(),
                        created_unix_ms: *now_unix_ms,
                        expires_unix_ms: *expires_unix_ms,
                        revision,
                    },
                );
            }
            CertifyCommand::DeleteWaiver { criterion } => {
                c.waivers.remove(criterion);
            }
            CertifyCommand::RecordReport {
                sha256,
                target,
                partial,
                started_unix_ms,
                not_passed,
                by,
                now_unix_ms,
                json,
            } => {
                c.reports.push(RecordedReport {
                    sha256: sha256.clone(),
                    target: target.clone(),
                    partial: *partial,
                    started_unix_ms: *started_unix_ms,
                    not_passed: not_passed.clone(),
                    by: by.clone(),
                    recorded_unix_ms: *now_unix_ms,
                    revision,
                    json: json.clone(),
                });
                while c.reports.len() > MAX_REPORTS {
                    let gone = c.reports.remove(0);
                    c.sign_offs.retain(|s| s.sha256 != gone.sha256);
                }
            }
            CertifyCommand::SignOff {
                sha256,
                role,
                by,
                now_unix_ms,
            } => c.sign_offs.push(SignOff {
                sha256: sha256.clone(),
                role: role.clone(),
                by: by.clone(),
                unix_ms: *now_unix_ms,
                revision,
            }),
            CertifyCommand::SetPolicy { policy } => c.policy = Some(policy.clone()),
        }
    }

    /// A restored cluster is a new one: its certification starts afresh.
    pub(super) fn forget_certification(&mut self) {
        self.certification = Certification::default();
    }
}

fn check_by(by: &str) -> Result<(), Rejection> {
    if by.is_empty() || by.len() > 200 {
        return Err(Rejection::invalid("by", by, "who did it: 1 to 200 bytes"));
    }
    Ok(())
}
