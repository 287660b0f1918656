//! The ops center's records: service level objectives (SLOs) per app, with
//! where their alerts are sent, and the incidents their alerts open (with
//! a timeline, acknowledgement and resolution). Plain data and the checks
//! that need no state; the state machine's rules are in
//! `state/incidents.rs`, the burn-rate engine that fires alerts in
//! `ops::slo`.

use serde::{Deserialize, Serialize};

use crate::Name;
use crate::command::Rejection;
use crate::state::Revision;

/// The window when none is given: 30 days, the SRE workbook's default.
pub const DEFAULT_SLO_WINDOW_DAYS: u32 = 30;
/// The longest window (the evaluator keeps 90 days of history).
pub const MAX_SLO_WINDOW_DAYS: u32 = 90;
/// Most notification targets of one SLO.
pub const MAX_NOTIFY_TARGETS: usize = 10;
/// Most SLOs of one app.
pub const MAX_SLOS_PER_APP: usize = 20;
/// Most SLOs resealed in one `Command::SealSloTargets`.
pub const MAX_SEALED_SLOS: usize = 1_000;
/// Most entries of one incident's timeline; past it the oldest go (the
/// first, "opened", stays).
pub const MAX_TIMELINE: usize = 200;
/// Resolved incidents kept; past it the oldest resolved go.
pub const RESOLVED_KEPT: usize = 1_000;
/// Longest text of one timeline entry.
pub const MAX_INCIDENT_TEXT: usize = 2_000;

/// What an SLO measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// The share of requests answered without a server error (5xx).
    Availability,
    /// The share of requests answered within `threshold_ms`.
    Latency { threshold_ms: u64 },
}

impl Objective {
    /// `availability` or `latency`, as alerts label it.
    pub fn kind(&self) -> &'static str {
        match self {
            Objective::Availability => "availability",
            Objective::Latency { .. } => "latency",
        }
    }
}

/// A notification target's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    /// Alertmanager's webhook JSON (version 4), for a receiver written for
    /// what Alertmanager's `webhook_config` posts (not Alertmanager itself).
    Alertmanager,
    /// Alerts pushed into an Alertmanager's `POST /api/v2/alerts`, as
    /// Prometheus does: the URL is the Alertmanager's (e.g.
    /// `http://alertmanager:9093`), re-sent while firing.
    #[serde(rename = "alertmanager_api")]
    AlertmanagerApi,
    /// PagerDuty Events API v2 (needs a `routing_key`).
    PagerDuty,
    /// A Slack-compatible incoming webhook.
    Slack,
}

/// Where an SLO's alerts are sent.
///
/// A webhook URL (a Slack URL is its own credential) and a PagerDuty
/// routing key are secrets: the API seals them (AES-256-GCM under the
/// cluster's at-rest key, `ops::slo::secret`) into `sealed` and keeps only
/// their redacted forms in `url` and `routing_key`, so the state, the log,
/// snapshots, the audit trail and every view hold no secret. A record
/// without `sealed` was stored before sealing (or by a test): its `url`
/// and `routing_key` are the plain values, shown redacted all the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyTarget {
    pub kind: NotifyKind,
    /// The URL redacted to `scheme://host[:port]/…` ([`redact_url`]); the
    /// plain http(s) URL only in a record without `sealed`.
    pub url: String,
    /// PagerDuty's integration key (only for `pagerduty`), redacted to its
    /// last four characters ([`redact_key`]) when `sealed` holds it.
    #[serde(default)]
    pub routing_key: Option<String>,
    /// The plain URL and routing key, sealed (`v1:<nonce>:<ciphertext>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
}

/// Longest sealed form of a target's secrets.
pub const MAX_SEALED_TARGET: usize = 8_192;

/// A webhook URL as it may be shown: its scheme, host and port, never its
/// user information, path or query (where webhook services keep the
/// secret), e.g. `https://hooks.slack.com/…`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "…".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    format!("{}://{host_port}/…", scheme.to_ascii_lowercase())
}

/// A routing key as it may be shown: `…` and its last four characters
/// (none of a key shorter than 12).
pub fn redact_key(key: &str) -> String {
    let n = key.chars().count();
    if n < 12 {
        return "…".into();
    }
    let last: String = key.chars().skip(n - 4).collect();
    format!("…{last}")
}

impl NotifyTarget {
    /// The target as views show it: URL and key redacted (also for a
    /// record stored before sealing), the sealed form left out.
    pub fn shown(&self) -> NotifyTarget {
        NotifyTarget {
            kind: self.kind,
            url: if self.sealed.is_some() {
                self.url.clone()
            } else {
                redact_url(&self.url)
            },
            routing_key: self.routing_key.as_deref().map(|k| {
                if self.sealed.is_some() {
                    k.to_string()
                } else {
                    redact_key(k)
                }
            }),
            sealed: None,
        }
    }
}

/// One service level objective of an app: `target` of its requests (in
/// (0, 1)) are good over a rolling `window_days`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    pub tenant: Name,
    pub app: Name,
    /// Unique per app.
    pub name: Name,
    pub objective: Objective,
    /// Strictly between 0 and 1, e.g. 0.999.
    pub target: f64,
    pub window_days: u32,
    pub notify: Vec<NotifyTarget>,
    pub updated: Revision,
}

/// Who an incident is for: a page wakes someone up, a ticket waits for
/// working hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Page,
    Ticket,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// Where an incident stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    Open,
    Acknowledged,
    Resolved,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Resolved => "resolved",
        }
    }
}

/// One line of an incident's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentEntry {
    pub unix_ms: u64,
    /// `dwcp` for the evaluator, else the operator's credential.
    pub who: String,
    pub text: String,
}

/// Something that needs people: opened by an alert, acknowledged by
/// whoever took it, resolved when it is over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// 1, 2, 3, ...
    pub id: u64,
    /// The alert key, `tenant/app/slo/severity`: while an incident with it
    /// is unresolved, the alert firing again adds to its timeline instead
    /// of opening another.
    pub fingerprint: String,
    /// The alert's name (what runbooks' `alerts` name).
    pub alert: String,
    pub tenant: Name,
    pub app: Name,
    pub slo: Name,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub opened_unix_ms: u64,
    pub acknowledged_unix_ms: Option<u64>,
    pub resolved_unix_ms: Option<u64>,
    pub acknowledged_by: Option<String>,
    pub resolved_by: Option<String>,
    /// Oldest first, at most [`MAX_TIMELINE`].
    pub timeline: Vec<IncidentEntry>,
    /// Timeline entries dropped to keep it bounded.
    pub timeline_dropped: u64,
    pub updated: Revision,
}

impl Incident {
    /// Time to acknowledge: from opened to acknowledged (or to resolved,
    /// when it was resolved without an acknowledgement).
    pub fn time_to_acknowledge_ms(&self) -> Option<u64> {
        self.acknowledged_unix_ms
            .or(self.resolved_unix_ms)
            .map(|t| t.saturating_sub(self.opened_unix_ms))
    }

    /// Time to resolve: from opened to resolved.
    pub fn time_to_resolve_ms(&self) -> Option<u64> {
        self.resolved_unix_ms
            .map(|t| t.saturating_sub(self.opened_unix_ms))
    }

    /// Whether it is open or acknowledged.
    pub fn unresolved(&self) -> bool {
        self.status != IncidentStatus::Resolved
    }
}

/// The evaluator's latest reading of one SLO (burn rates per rule, budget
/// left), stored by the leader so that any node's API can show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloStatus {
    pub tenant: Name,
    pub app: Name,
    pub slo: Name,
    /// When it was evaluated (the evaluator's clock).
    pub unix_ms: u64,
    /// Share of the window's error budget left: 1 nothing spent, below 0
    /// the objective is missed. While `history_ms` is shorter than the
    /// window, the window's budget is projected from the traffic seen.
    pub budget_remaining: f64,
    /// How much of the window the evaluator's history covers (at most the
    /// window): a new SLO's budget is judged on this much.
    #[serde(default)]
    pub history_ms: u64,
    pub rules: Vec<RuleStatus>,
}

/// One alert rule's burn rates at the last evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleStatus {
    /// e.g. `slo-burn-1h`.
    pub rule: String,
    pub severity: Severity,
    pub long_window_ms: u64,
    pub short_window_ms: u64,
    pub factor: f64,
    pub long_burn: f64,
    pub short_burn: f64,
    pub firing: bool,
}

/// Checks an SLO's values (not whether its app exists): the target in
/// (0, 1), the window, the latency threshold, the notification targets.
pub fn check_slo(slo: &Slo) -> Result<(), Rejection> {
    if !(slo.target > 0.0 && slo.target < 1.0) {
        return Err(Rejection::invalid(
            "target",
            slo.target,
            "an objective strictly between 0 and 1, e.g. 0.999",
        ));
    }
    if let Objective::Latency { threshold_ms } = slo.objective
        && !(1..=600_000).contains(&threshold_ms)
    {
        return Err(Rejection::invalid(
            "objective.latency.threshold_ms",
            threshold_ms,
            "1 to 600000 ms, e.g. 300",
        ));
    }
    if !(1..=MAX_SLO_WINDOW_DAYS).contains(&slo.window_days) {
        return Err(Rejection::invalid(
            "window_days",
            slo.window_days,
            format!(
                "a whole number of days from 1 to {MAX_SLO_WINDOW_DAYS}, e.g. {DEFAULT_SLO_WINDOW_DAYS}"
            ),
        ));
    }
    if slo.notify.len() > MAX_NOTIFY_TARGETS {
        return Err(Rejection::invalid(
            "notify",
            slo.notify.len(),
            format!("at most {MAX_NOTIFY_TARGETS} targets"),
        ));
    }
    for (i, target) in slo.notify.iter().enumerate() {
        if let Some(sealed) = &target.sealed {
            check_sealed_target(i, target, sealed)?;
            continue;
        }
        check_url(&target.url).map_err(|reason| {
            Rejection::invalid(
                &format!("notify[{i}].url"),
                &target.url,
                format!("an http or https URL with a host ({reason})"),
            )
        })?;
        match (target.kind, &target.routing_key) {
            (NotifyKind::PagerDuty, None) => {
                return Err(Rejection::invalid(
                    &format!("notify[{i}].routing_key"),
                    "(none)",
                    "PagerDuty's integration key (32 characters) for a pagerduty target",
                ));
            }
            (NotifyKind::PagerDuty, Some(key))
                if key.is_empty()
                    || key.len() > 64
                    || !key.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                return Err(Rejection::invalid(
                    &format!("notify[{i}].routing_key"),
                    key,
                    "1 to 64 letters and digits",
                ));
            }
            (
                NotifyKind::Alertmanager | NotifyKind::AlertmanagerApi | NotifyKind::Slack,
                Some(_),
            ) => {
                return Err(Rejection::invalid(
                    &format!("notify[{i}].routing_key"),
                    "(set)",
                    "a routing key only for pagerduty targets",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A sealed target's shape: the state machine cannot open it (it holds no
/// key), so it checks what it can — a bounded `v1:` seal, the redacted URL
/// of an http(s) host, a redacted key only for `pagerduty` (and there
/// always).
fn check_sealed_target(i: usize, target: &NotifyTarget, sealed: &str) -> Result<(), Rejection> {
    if !sealed.starts_with("v1:")
        || sealed.len() > MAX_SEALED_TARGET
        || !sealed
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'v')
    {
        return Err(Rejection::invalid(
            &format!("notify[{i}].sealed"),
            "(malformed)",
            format!("`v1:<nonce hex>:<ciphertext hex>`, at most {MAX_SEALED_TARGET} bytes"),
        ));
    }
    let shown_ok = target
        .url
        .strip_suffix("/…")
        .is_some_and(|u| check_url(u).is_ok() && !u.contains('@'));
    if !shown_ok {
        return Err(Rejection::invalid(
            &format!("notify[{i}].url"),
            &target.url,
            "the redacted URL of a sealed target, `scheme://host[:port]/…`",
        ));
    }
    let key_ok = match (target.kind, &target.routing_key) {
        (NotifyKind::PagerDuty, Some(k)) => k.starts_with('…') && k.chars().count() <= 5,
        (NotifyKind::PagerDuty, None) => false,
        (_, key) => key.is_none(),
    };
    if !key_ok {
        return Err(Rejection::invalid(
            &format!("notify[{i}].routing_key"),
            "(set)",
            "a redacted routing key for a sealed pagerduty target, and none for others",
        ));
    }
    Ok(())
}

/// Checks a note on an incident.
pub fn check_incident_text(field: &str, text: &str) -> Result<(), Rejection> {
    if text.trim().is_empty() || text.len() > MAX_INCIDENT_TEXT {
        return Err(Rejection::invalid(
            field,
            text,
            format!("1 to {MAX_INCIDENT_TEXT} bytes of text"),
        ));
    }
    Ok(())
}

/// Whether `url` parses as an absolute http or https URL with a host (and,
/// if given, a port from 1 to 65535): the grammar of RFC 3986 narrowed to
/// what a webhook needs. Why not, when it does not.
pub fn check_url(url: &str) -> Result<(), &'static str> {
    if url.is_empty() {
        return Err("it is empty");
    }
    if url.len() > 2048 {
        return Err("it is longer than 2048 characters");
    }
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
    {
        return Err("it holds spaces, control or non-ASCII characters (percent-encode them)");
    }
    let (scheme, rest) = url.split_once("://").ok_or("it has no scheme")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err("only http and https are allowed");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or("its IPv6 host has no closing bracket")?;
        if addr.is_empty()
            || !addr
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err("its IPv6 host is not an address");
        }
        match after {
            "" => (addr, None),
            _ => (
                addr,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or("something follows its IPv6 host")?,
                ),
            ),
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err("it has no host");
    }
    let host_char = |c: char| c.is_ascii_alphanumeric() || "-._~%:".contains(c);
    if !host.chars().all(host_char) {
        return Err("its host has characters a host name cannot hold");
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => return Err("its port is not a number from 1 to 65535"),
        }
    }
    Ok(())
}
