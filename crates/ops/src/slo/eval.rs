//! The SLO evaluator's decisions, without I/O: each round reads the SLOs
//! and the nodes' reports from the state, adds what each app served since
//! the last round to its SLO's [`Series`], evaluates the burn-rate rules
//! and says what to write and send — a status per SLO, an
//! [`Command::OpenIncident`] per alert that started firing (the state
//! machine deduplicates it against an unresolved incident with the same
//! fingerprint), an "alert cleared" note per alert that stopped, and the
//! notifications to each SLO's targets. The caller (`dwcp up`'s alerting
//! loop) does the writing and sending.
//!
//! Alerts: one per SLO and severity. `SloBurnRateFast` pages (the 1 h and
//! 6 h rules); `SloErrorBudgetTicket` opens a ticket (the 3-day rule) and is
//! inhibited while the page fires, as Alertmanager's inhibit rules usually
//! are, so one burst opens one incident. A firing alert is sent again every
//! minute of the evaluator's clock ([`notify::RESEND_MS`]) to the SLO's
//! Alertmanager API targets only (as Prometheus does, so Alertmanager does
//! not resolve it by itself); webhook receivers hear of it once. The fingerprint of the incident is
//! `tenant/app/slo/severity`. An alert that stops firing is noted on its
//! incident but never resolves it: an operator does.
//!
//! Counting: per node, version and boot, the difference between a report
//! and the last one read (a new boot counts from zero). Availability: bad
//! requests are 5xx answers. Latency: the share of the report's latency
//! sample (up to 512 per report) over the threshold, times its requests —
//! an estimate, exact when the node served at most 512 requests between
//! two reports. The history lives in the leader's memory: a new leader
//! starts with none.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;
use state::{
    Command, Name, NotifyKind, NotifyTarget, Objective, RuleStatus, Severity, Slo as SloRecord,
    SloStatus, State,
};

use super::burn::{self, RULES, budget_remaining, burn_rate};
use super::notify::{self, Alert};
use super::objective::SloKind;
use super::series::Series;

/// Who the evaluator is on timelines.
pub const EVALUATOR: &str = "dwcp";

/// The alert that pages (what runbooks' `alerts` name).
pub const PAGE_ALERT: &str = "SloBurnRateFast";
/// The alert that opens a ticket.
pub const TICKET_ALERT: &str = "SloErrorBudgetTicket";

/// The name of the alert of `severity`.
pub fn alert_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Page => PAGE_ALERT,
        Severity::Ticket => TICKET_ALERT,
    }
}

/// The incident fingerprint of an SLO's alert: `tenant/app/slo/severity`.
pub fn fingerprint(slo: &SloRecord, severity: Severity) -> String {
    format!(
        "{}/{}/{}/{}",
        slo.tenant,
        slo.app,
        slo.name,
        severity.as_str()
    )
}

/// One notification to send: where, and the body (JSON).
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// As stored: its URL and routing key sealed (or, in a record stored
    /// before sealing, plain), opened by the delivery.
    pub target: NotifyTarget,
    /// What the target's secrets are sealed for (`notify_guard::context`).
    pub context: String,
    /// For PagerDuty, the routing key is the redacted one until the
    /// delivery puts in the opened key.
    pub body: Value,
}

/// An alert that started firing: the command that opens (or adds to) its
/// incident and the notifications to send once it is written.
#[derive(Clone, Debug, PartialEq)]
pub struct Opening {
    pub fingerprint: String,
    pub alert: String,
    pub command: Command,
    pub notifications: Vec<Notification>,
}

/// An alert that stopped firing: the note for its incident (when one is
/// unresolved) and the "resolved" notifications.
#[derive(Clone, Debug, PartialEq)]
pub struct Clearing {
    pub fingerprint: String,
    pub alert: String,
    /// A [`Command::NoteIncident`], when an unresolved incident has the
    /// fingerprint.
    pub note: Option<Command>,
    pub incident: Option<u64>,
    pub notifications: Vec<Notification>,
}

/// An alert still firing, sent again to the SLO's Alertmanager API
/// targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Resend {
    pub fingerprint: String,
    pub alert: String,
    pub notifications: Vec<Notification>,
}

/// What one round decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Round {
    pub now_ms: u64,
    pub statuses: Vec<SloStatus>,
    pub openings: Vec<Opening>,
    pub clearings: Vec<Clearing>,
    pub resends: Vec<Resend>,
}

impl Round {
    /// The fingerprints of the alerts firing now (started this round or
    /// before), as the evaluator reports them to a test.
    pub fn firing(&self) -> Vec<String> {
        self.statuses
            .iter()
            .flat_map(|s| {
                let key = format!("{}/{}/{}", s.tenant, s.app, s.slo);
                let mut severities: Vec<Severity> = s
                    .rules
                    .iter()
                    .filter(|r| r.firing)
                    .map(|r| r.severity)
                    .collect();
                if severities.contains(&Severity::Page) {
                    severities.retain(|&sv| sv == Severity::Page);
                }
                severities.dedup();
                severities
                    .into_iter()
                    .map(move |sv| format!("{key}/{}", sv.as_str()))
            })
            .collect()
    }
}

/// What a node last reported for one version, as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    boot: u64,
    sequence: u64,
    requests: u64,
    errors: u64,
}

/// One SLO's history.
#[derive(Debug)]
struct Tracked {
    objective: Objective,
    target: f64,
    last: HashMap<(Name, u64), Seen>,
    good: u64,
    valid: u64,
    series: Series,
    firing: BTreeSet<Severity>,
    /// Per firing severity: when it started firing and when it was last
    /// sent (evaluator time).
    sent: BTreeMap<Severity, (u64, u64)>,
}

/// The evaluator: every SLO's history, between rounds.
#[derive(Debug, Default)]
pub struct Evaluator {
    tracked: BTreeMap<(Name, Name, Name), Tracked>,
    /// Where people reach the ops center, for links in notifications.
    external_url: String,
}

impl Evaluator {
    /// An evaluator whose notifications link to `external_url` (e.g. the
    /// API's `http://127.0.0.1:7070`).
    pub fn new(external_url: &str) -> Evaluator {
        Evaluator {
            tracked: BTreeMap::new(),
            external_url: external_url.trim_end_matches('/').to_string(),
        }
    }

    /// The fingerprints of the alerts firing after the last round.
    pub fn firing(&self) -> Vec<String> {
        self.tracked
            .iter()
            .flat_map(|((t, a, n), k)| {
                k.firing
                    .iter()
                    .map(move |s| format!("{t}/{a}/{n}/{}", s.as_str()))
            })
            .collect()
    }

    /// Forgets every history (this node stopped leading).
    pub fn clear(&mut self) {
        self.tracked.clear();
    }

    /// One round at `now_ms` over `state`.
    pub fn evaluate(&mut self, state: &State, now_ms: u64) -> Round {
        let links = Links {
            external_url: &self.external_url,
        };
        let mut round = Round {
            now_ms,
            ..Round::default()
        };
        // SLOs deleted, or whose objective changed, start over.
        self.tracked.retain(|(t, a, n), k| {
            state
                .slo(t, a, n)
                .is_some_and(|s| s.objective == k.objective && s.target == k.target)
        });
        for slo in state.slos() {
            let key = (slo.tenant.clone(), slo.app.clone(), slo.name.clone());
            let tracked = self.tracked.entry(key).or_insert_with(|| Tracked {
                objective: slo.objective,
                target: slo.target,
                last: HashMap::new(),
                good: 0,
                valid: 0,
                series: Series::new(),
                firing: BTreeSet::new(),
                sent: BTreeMap::new(),
            });
            absorb(state, slo, tracked);
            tracked.series.observe(now_ms, tracked.good, tracked.valid);
            let status = status_of(slo, &tracked.series, now_ms);
            let mut now_firing: BTreeMap<Severity, &RuleStatus> = BTreeMap::new();
            for rule in status.rules.iter().filter(|r| r.firing) {
                let strongest = now_firing.entry(rule.severity).or_insert(rule);
                if rule.long_burn > strongest.long_burn {
                    *strongest = rule;
                }
            }
            // The page inhibits the ticket.
            if now_firing.contains_key(&Severity::Page) {
                now_firing.remove(&Severity::Ticket);
            }
            for (&severity, rule) in &now_firing {
                if tracked.firing.contains(&severity) {
                    let (starts_ms, sent_ms) =
                        tracked.sent.entry(severity).or_insert((now_ms, now_ms));
                    if now_ms.saturating_sub(*sent_ms) >= notify::RESEND_MS {
                        *sent_ms = now_ms;
                        let resend = links.resend(slo, severity, rule, *starts_ms, now_ms);
                        if !resend.notifications.is_empty() {
                            round.resends.push(resend);
                        }
                    }
                    continue;
                }
                tracked.sent.insert(severity, (now_ms, now_ms));
                round
                    .openings
                    .push(links.opening(slo, severity, rule, now_ms));
            }
            for &severity in tracked.firing.iter() {
                if now_firing.contains_key(&severity) {
                    continue;
                }
                tracked.sent.remove(&severity);
                round
                    .clearings
                    .push(links.clearing(state, slo, severity, &status, now_ms));
            }
            tracked.firing = now_firing.keys().copied().collect();
            round.statuses.push(status);
        }
        round
    }
}

/// What notifications link to.
struct Links<'a> {
    external_url: &'a str,
}

impl Links<'_> {
    fn alert(
        &self,
        slo: &SloRecord,
        severity: Severity,
        summary: String,
        starts_at_ms: u64,
    ) -> Alert {
        let name = alert_name(severity);
        Alert {
            name: name.to_string(),
            severity,
            tenant: slo.tenant.to_string(),
            app: slo.app.to_string(),
            kind: kind_of(slo.objective),
            summary,
            starts_at_ms,
            ends_at_ms: None,
            fingerprint: notify::fingerprint(
                slo.tenant.as_str(),
                slo.app.as_str(),
                kind_of(slo.objective),
                &format!("{}:{name}", slo.name),
            ),
            dashboard_url: format!(
                "{}/api/v1/tenants/{}/apps/{}/slos/{}",
                self.external_url, slo.tenant, slo.app, slo.name
            ),
        }
    }

    fn opening(
        &self,
        slo: &SloRecord,
        severity: Severity,
        rule: &RuleStatus,
        now_ms: u64,
    ) -> Opening {
        let text = burning(slo, rule);
        let alert = self.alert(slo, severity, text.clone(), now_ms);
        Opening {
            fingerprint: fingerprint(slo, severity),
            alert: alert.name.clone(),
            command: Command::OpenIncident {
                fingerprint: fingerprint(slo, severity),
                alert: alert.name.clone(),
                tenant: slo.tenant.clone(),
                app: slo.app.clone(),
                slo: slo.name.clone(),
                severity,
                text,
                by: EVALUATOR.into(),
                now_unix_ms: now_ms,
            },
            notifications: self.notifications(slo, &alert, now_ms),
        }
    }

    /// An alert firing since `starts_ms`, sent again to the Alertmanager
    /// API targets with the burn rates of now.
    fn resend(
        &self,
        slo: &SloRecord,
        severity: Severity,
        rule: &RuleStatus,
        starts_ms: u64,
        now_ms: u64,
    ) -> Resend {
        let alert = self.alert(slo, severity, burning(slo, rule), starts_ms);
        Resend {
            fingerprint: fingerprint(slo, severity),
            alert: alert.name.clone(),
            notifications: self
                .notifications(slo, &alert, now_ms)
                .into_iter()
                .filter(|n| n.target.kind == NotifyKind::AlertmanagerApi)
                .collect(),
        }
    }

    fn clearing(
        &self,
        state: &State,
        slo: &SloRecord,
        severity: Severity,
        status: &SloStatus,
        now_ms: u64,
    ) -> Clearing {
        let key = fingerprint(slo, severity);
        let incident = state.unresolved_incident(&key);
        let burns = status
            .rules
            .iter()
            .filter(|r| r.severity == severity)
            .map(|r| format!("{} {:.1}x/{:.1}x", r.rule, r.long_burn, r.short_burn))
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!(
            "alert cleared: burn rates back under their factors ({burns}); resolve the incident when it is over"
        );
        let starts = incident.map_or(now_ms, |i| i.opened_unix_ms);
        let mut alert = self.alert(slo, severity, text.clone(), starts);
        alert.ends_at_ms = Some(now_ms.max(starts));
        Clearing {
            fingerprint: key,
            alert: alert.name.clone(),
            note: incident.map(|i| Command::NoteIncident {
                id: i.id,
                by: EVALUATOR.into(),
                text,
                now_unix_ms: now_ms,
            }),
            incident: incident.map(|i| i.id),
            notifications: self.notifications(slo, &alert, now_ms),
        }
    }

    fn notifications(&self, slo: &SloRecord, alert: &Alert, now_ms: u64) -> Vec<Notification> {
        slo.notify
            .iter()
            .map(|target| Notification {
                target: target.clone(),
                context: crate::notify_guard::context(&slo.tenant, &slo.app, &slo.name),
                body: match target.kind {
                    NotifyKind::Alertmanager => {
                        notify::alertmanager(std::slice::from_ref(alert), "dwcp", self.external_url)
                    }
                    NotifyKind::PagerDuty => notify::pagerduty(
                        alert,
                        target.routing_key.as_deref().unwrap_or_default(),
                        self.external_url,
                    ),
                    NotifyKind::AlertmanagerApi => {
                        notify::alertmanager_api(alert, slo.name.as_str(), now_ms)
                    }
                    NotifyKind::Slack => notify::slack(alert),
                },
            })
            .collect()
    }
}

/// What an alert says while `rule` fires on `slo`.
fn burning(slo: &SloRecord, rule: &RuleStatus) -> String {
    format!(
        "{}/{} SLO {} ({} {}): error budget burning {:.1}x over {} and {:.1}x over {} (rule {}, above {}x)",
        slo.tenant,
        slo.app,
        slo.name,
        slo.objective.kind(),
        slo.target,
        rule.long_burn,
        window(rule.long_window_ms),
        rule.short_burn,
        window(rule.short_window_ms),
        rule.rule,
        rule.factor
    )
}

/// The burn rates of every rule and the budget left, at `now_ms`.
pub fn status_of(slo: &SloRecord, series: &Series, now_ms: u64) -> SloStatus {
    let window_ms = u64::from(slo.window_days) * 86_400_000;
    let burn = |window_ms| {
        burn_rate(
            series.ratio_bad(window_ms, now_ms).unwrap_or(0.0),
            slo.target,
        )
    };
    let firing: Vec<&str> = burn::evaluate(kind_of(slo.objective), slo.target, series, now_ms)
        .into_iter()
        .map(|f| f.rule)
        .collect();
    SloStatus {
        tenant: slo.tenant.clone(),
        app: slo.app.clone(),
        slo: slo.name.clone(),
        unix_ms: now_ms,
        budget_remaining: budget_remaining(slo.target, series, window_ms, now_ms),
        history_ms: series.history_ms(now_ms).min(window_ms),
        rules: RULES
            .iter()
            .map(|r| RuleStatus {
                rule: r.name.to_string(),
                severity: r.severity,
                long_window_ms: r.long_ms,
                short_window_ms: r.short_ms,
                factor: r.factor,
                long_burn: burn(r.long_ms),
                short_burn: burn(r.short_ms),
                firing: firing.contains(&r.name),
            })
            .collect(),
    }
}

fn kind_of(objective: Objective) -> SloKind {
    match objective {
        Objective::Availability => SloKind::Availability,
        Objective::Latency { .. } => SloKind::Latency,
    }
}

/// `1h`, `5m`, `3d`.
fn window(ms: u64) -> String {
    const MIN: u64 = 60_000;
    match ms {
        m if m % (24 * 60 * MIN) == 0 => format!("{}d", m / (24 * 60 * MIN)),
        m if m % (60 * MIN) == 0 => format!("{}h", m / (60 * MIN)),
        m => format!("{}m", m / MIN),
    }
}

/// Adds what the app's versions served since the reports last read.
fn absorb(state: &State, slo: &SloRecord, t: &mut Tracked) {
    for report in state.reports() {
        for v in report
            .versions
            .iter()
            .filter(|v| v.tenant == slo.tenant && v.app == slo.app)
        {
            let now = Seen {
                boot: report.boot,
                sequence: report.sequence,
                requests: v.requests,
                errors: v.errors,
            };
            let before = t.last.insert((report.node.clone(), v.version), now);
            let (requests, errors) = match before {
                Some(b) if b.boot == now.boot && b.sequence == now.sequence => continue,
                Some(b) if b.boot == now.boot => (
                    now.requests.saturating_sub(b.requests),
                    now.errors.saturating_sub(b.errors),
                ),
                // A node, version or boot first seen: all it counted.
                _ => (now.requests, now.errors),
            };
            let bad = match slo.objective {
                Objective::Availability => errors.min(requests),
                Objective::Latency { threshold_ms } => {
                    let sample = &v.recent_latencies_us;
                    if sample.is_empty() {
                        0
                    } else {
                        let limit = threshold_ms.saturating_mul(1000);
                        let slow = sample.iter().filter(|&&us| u64::from(us) > limit).count();
                        // Rounded up: one slow request in the sample is
                        // never estimated away.
                        (requests * slow as u64).div_ceil(sample.len() as u64)
                    }
                }
            };
            t.valid += requests;
            t.good += requests - bad.min(requests);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::{NodeReport, Quotas, Region, VersionReport};

    const T0: u64 = 1_700_000_000_000;
    const MIN: u64 = 60_000;

    fn n(s: &str) -> Name {
        Name::new("test", s).unwrap()
    }

    /// Tenant `acme`, app `shop`, node `n1`, an availability SLO of 99.9 %
    /// with an Alertmanager target.
    fn state() -> State {
        let mut s = State::default();
        for c in [
            Command::PutTenant {
                name: n("acme"),
                quotas: Quotas::default(),
            },
            Command::CreateApp {
                tenant: n("acme"),
                name: n("shop"),
                route: "/shop".into(),
                host: None,
            },
            Command::PutRegion {
                region: Region::named(n("local")),
            },
            Command::PutNode {
                node: state::Node {
                    name: n("n1"),
                    region: n("local"),
                    address: "127.0.0.1:7071".into(),
                    labels: Default::default(),
                    capacity: 10,
                    api: None,
                    gateway: None,
                    peer_key: None,
                },
            },
            Command::PutSlo {
                slo: SloRecord {
                    tenant: n("acme"),
                    app: n("shop"),
                    name: n("availability"),
                    objective: Objective::Availability,
                    target: 0.999,
                    window_days: 30,
                    notify: vec![NotifyTarget {
                        kind: NotifyKind::Alertmanager,
                        url: "http://127.0.0.1:9/hook".into(),
                        routing_key: None,
                        sealed: None,
                    }],
                    updated: Default::default(),
                },
            },
        ] {
            s.apply(&c).unwrap();
        }
        s
    }

    fn report(s: &mut State, boot: u64, sequence: u64, requests: u64, errors: u64) {
        s.apply(&Command::Report {
            report: NodeReport {
                node: n("n1"),
                boot,
                sequence,
                templates_ready: 1,
                live_sandboxes: 0,
                sandbox_starts: 0,
                usage: Default::default(),
                versions: vec![VersionReport {
                    tenant: n("acme"),
                    app: n("shop"),
                    version: 1,
                    requests,
                    errors,
                    timeouts: 0,
                    latency_us: Default::default(),
                    busy_us: 0,
                    recent_latencies_us: vec![],
                    latency_histogram_us: Default::default(),
                }],
            },
        })
        .unwrap();
    }

    /// Applies what a round decided, as the alerting loop does.
    fn apply(s: &mut State, round: &Round) {
        for o in &round.openings {
            s.apply(&o.command).unwrap();
        }
        for c in round.clearings.iter().filter_map(|c| c.note.as_ref()) {
            s.apply(c).unwrap();
        }
    }

    #[test]
    fn a_burst_of_errors_opens_one_page_incident_notes_when_it_clears_and_never_resolves() {
        let mut s = state();
        let mut e = Evaluator::new("http://127.0.0.1:7070/");
        report(&mut s, 7, 1, 1_000, 0);
        let first = e.evaluate(&s, T0);
        assert!(first.openings.is_empty());
        assert_eq!(first.statuses[0].budget_remaining, 1.0);
        // Half the requests fail: burn 500 on every window.
        report(&mut s, 7, 2, 2_000, 500);
        let fired = e.evaluate(&s, T0 + MIN);
        assert_eq!(fired.openings.len(), 1, "the ticket is inhibited");
        let o = &fired.openings[0];
        assert_eq!(o.fingerprint, "acme/shop/availability/page");
        assert_eq!(o.alert, PAGE_ALERT);
        assert_eq!(fired.firing(), vec!["acme/shop/availability/page"]);
        let body = &o.notifications[0].body;
        assert_eq!(body["version"], "4");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["alerts"][0]["labels"]["alertname"], PAGE_ALERT);
        assert_eq!(body["alerts"][0]["labels"]["severity"], "page");
        assert_eq!(body["externalURL"], "http://127.0.0.1:7070");
        let status = &fired.statuses[0];
        assert!((status.rules[0].long_burn - 500.0).abs() < 1e-6);
        assert!(status.rules.iter().all(|r| r.firing));
        // A minute of history: half of a minute's requests failing spends
        // 500 minutes' worth of budget, of 30 days'.
        assert_eq!(status.history_ms, MIN);
        let spent = 500.0 * MIN as f64 / (30.0 * 86_400_000.0);
        assert!(
            (status.budget_remaining - (1.0 - spent)).abs() < 1e-9,
            "{status:?}"
        );
        apply(&mut s, &fired);
        // Rounds while it keeps firing write nothing new.
        for i in 2..5 {
            report(&mut s, 7, i + 1, 1_000 * (i + 1), 500 * i);
            let again = e.evaluate(&s, T0 + i * MIN);
            assert!(again.openings.is_empty() && again.clearings.is_empty());
        }
        assert_eq!(s.incidents().count(), 1);
        // A restarted node counts from zero; good requests for long enough
        // clear the 5-minute window.
        let mut t = T0 + 5 * MIN;
        let mut cleared = None;
        for i in 1..=20u64 {
            report(&mut s, 8, i, 100_000 * i, 0);
            t += MIN;
            let r = e.evaluate(&s, t);
            if !r.clearings.is_empty() {
                cleared = Some(r);
                break;
            }
        }
        let cleared = cleared.expect("the page clears");
        let c = &cleared.clearings[0];
        assert_eq!(c.incident, Some(1));
        // The 3-day budget is still burning: uninhibited, the ticket opens.
        assert_eq!(cleared.openings.len(), 1);
        assert_eq!(cleared.openings[0].alert, TICKET_ALERT);
        assert_eq!(c.notifications[0].body["status"], "resolved");
        apply(&mut s, &cleared);
        assert_eq!(s.incidents().count(), 2);
        let incident = s.incident(1).unwrap();
        assert_eq!(incident.status, state::IncidentStatus::Open);
        assert!(
            incident
                .timeline
                .last()
                .unwrap()
                .text
                .starts_with("alert cleared")
        );
    }

    /// An Alertmanager API target hears of a firing alert at once, again
    /// every minute while it fires (a webhook receiver only once), and
    /// of its end with `endsAt` the time it cleared.
    #[test]
    fn alertmanager_api_targets_get_the_alert_every_minute_while_it_fires() {
        let mut s = state();
        let mut slo = s
            .slo(&n("acme"), &n("shop"), &n("availability"))
            .unwrap()
            .clone();
        slo.notify.push(NotifyTarget {
            kind: NotifyKind::AlertmanagerApi,
            url: "http://127.0.0.1:9093".into(),
            routing_key: None,
            sealed: None,
        });
        s.apply(&Command::PutSlo { slo }).unwrap();
        let mut e = Evaluator::new("http://x");
        report(&mut s, 7, 1, 1_000, 0);
        e.evaluate(&s, T0);
        report(&mut s, 7, 2, 2_000, 500);
        let fired = e.evaluate(&s, T0 + MIN);
        let kinds: Vec<NotifyKind> = fired.openings[0]
            .notifications
            .iter()
            .map(|n| n.target.kind)
            .collect();
        assert_eq!(
            kinds,
            [NotifyKind::Alertmanager, NotifyKind::AlertmanagerApi]
        );
        let pushed = &fired.openings[0].notifications[1].body[0];
        assert_eq!(pushed["labels"]["alertname"], PAGE_ALERT);
        assert_eq!(pushed["labels"]["slo_name"], "availability");
        assert_eq!(
            pushed["startsAt"],
            ops_time(T0 + MIN),
            "starts when it fired"
        );
        assert_eq!(pushed["endsAt"], ops_time(T0 + 5 * MIN));
        apply(&mut s, &fired);
        // Rounds every 10 s while it fires: a resend each minute.
        let mut resent = Vec::new();
        for i in 1..=18u64 {
            report(&mut s, 7, 2 + i, 2_000 + 100 * i, 500 + 50 * i);
            let t = T0 + MIN + i * 10_000;
            let r = e.evaluate(&s, t);
            assert!(r.openings.is_empty() && r.clearings.is_empty());
            for resend in &r.resends {
                assert_eq!(resend.alert, PAGE_ALERT);
                assert_eq!(resend.notifications.len(), 1, "the API target only");
                let body = &resend.notifications[0].body[0];
                assert_eq!(body["startsAt"], ops_time(T0 + MIN));
                assert_eq!(body["endsAt"], ops_time(t + 4 * MIN));
                resent.push(t - T0 - MIN);
            }
        }
        assert_eq!(resent, [MIN, 2 * MIN, 3 * MIN]);
        // Good requests only, until it clears: endsAt is when it did.
        let mut cleared = None;
        for i in 1..=30u64 {
            report(&mut s, 8, i, 100_000 * i, 0);
            let t = T0 + 4 * MIN + i * MIN;
            let r = e.evaluate(&s, t);
            if !r.clearings.is_empty() {
                cleared = Some((t, r));
                break;
            }
        }
        let (t, cleared) = cleared.expect("the page clears");
        let pushed = &cleared.clearings[0].notifications[1].body[0];
        assert_eq!(pushed["endsAt"], ops_time(t));
        assert_eq!(pushed["labels"]["severity"], "page");
    }

    fn ops_time(ms: u64) -> String {
        crate::slo::rfc3339::format_ms(ms)
    }

    #[test]
    fn a_new_evaluator_refires_into_the_same_incident() {
        let mut s = state();
        report(&mut s, 7, 1, 0, 0);
        let mut e = Evaluator::new("http://x");
        e.evaluate(&s, T0);
        report(&mut s, 7, 2, 1_000, 1_000);
        let r = e.evaluate(&s, T0 + MIN);
        apply(&mut s, &r);
        // A new leader: no history, fires again when it sees the burst.
        let mut e = Evaluator::new("http://x");
        e.evaluate(&s, T0 + 2 * MIN);
        report(&mut s, 7, 3, 2_000, 2_000);
        let r = e.evaluate(&s, T0 + 3 * MIN);
        assert_eq!(r.openings.len(), 1);
        apply(&mut s, &r);
        assert_eq!(s.incidents().count(), 1);
        assert!(
            s.incident(1).unwrap().timeline[1]
                .text
                .starts_with("fired again")
        );
    }

    #[test]
    fn latency_counts_the_sampled_share_over_the_threshold() {
        let mut s = state();
        let mut slo = s
            .slo(&n("acme"), &n("shop"), &n("availability"))
            .unwrap()
            .clone();
        slo.name = n("fast");
        slo.objective = Objective::Latency { threshold_ms: 100 };
        slo.target = 0.99;
        s.apply(&Command::PutSlo { slo: slo.clone() }).unwrap();
        let mut t = Tracked {
            objective: slo.objective,
            target: slo.target,
            last: HashMap::new(),
            good: 0,
            valid: 0,
            series: Series::new(),
            firing: BTreeSet::new(),
            sent: BTreeMap::new(),
        };
        let mut r = s.report(&n("n1")).cloned().unwrap_or(NodeReport {
            node: n("n1"),
            boot: 1,
            sequence: 1,
            templates_ready: 0,
            live_sandboxes: 0,
            sandbox_starts: 0,
            usage: Default::default(),
            versions: vec![],
        });
        r.versions = vec![VersionReport {
            tenant: n("acme"),
            app: n("shop"),
            version: 1,
            requests: 1_000,
            errors: 0,
            timeouts: 0,
            latency_us: Default::default(),
            busy_us: 0,
            // 1 in 4 over 100 ms.
            recent_latencies_us: vec![50_000, 60_000, 250_000, 70_000],
            latency_histogram_us: Default::default(),
        }];
        s.apply(&Command::Report { report: r }).unwrap();
        absorb(&s, &slo, &mut t);
        assert_eq!((t.good, t.valid), (750, 1_000));
        // The same report again counts nothing.
        absorb(&s, &slo, &mut t);
        assert_eq!((t.good, t.valid), (750, 1_000));
    }

    #[test]
    fn window_names() {
        assert_eq!(window(5 * MIN), "5m");
        assert_eq!(window(60 * MIN), "1h");
        assert_eq!(window(3 * 24 * 60 * MIN), "3d");
    }
}
