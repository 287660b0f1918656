//! An alert, and what is sent about it: Alertmanager-style webhook JSON
//! (version 4, what Alertmanager's `webhook_config` posts, so receivers
//! written for it work unchanged), PagerDuty Events API v2 events, and
//! Slack-compatible incoming-webhook messages. Builders only: sending and
//! retrying belong to the caller (see [`super::webhook`]).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::burn::{Firing, Severity};
use super::objective::{Slo, SloKind};
use super::rfc3339::format_ms;

/// What Alertmanager writes as `endsAt` while an alert still fires: Go's
/// zero time.
const NOT_ENDED: &str = "0001-01-01T00:00:00Z";
/// How often a firing alert is sent again to an Alertmanager's API, as
/// Prometheus's `--rules.alert.resend-delay` (1 minute by default).
pub const RESEND_MS: u64 = 60_000;
/// How far past each send a firing alert's `endsAt` lies when pushed to an
/// Alertmanager's API: four resends, as Prometheus sets it, so Alertmanager
/// resolves the alert by itself only when several resends were missed (the
/// evaluator stopped, or lost the lead).
pub const PUSHED_ENDS_AFTER_MS: u64 = 4 * RESEND_MS;
/// PagerDuty truncates longer summaries; truncating here keeps the cut on a
/// character boundary.
const PAGERDUTY_SUMMARY_MAX: usize = 1024;

/// One alert about one objective of one app: firing while `ends_at_ms` is
/// `None`, resolved after.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The rule's name, e.g. `slo-burn-1h`.
    pub name: String,
    pub severity: Severity,
    pub tenant: String,
    pub app: String,
    pub kind: SloKind,
    pub summary: String,
    pub starts_at_ms: u64,
    pub ends_at_ms: Option<u64>,
    /// Identifies the alert across its notifications (Alertmanager's
    /// fingerprint, PagerDuty's `dedup_key`), so a resolve closes the
    /// incident its trigger opened.
    pub fingerprint: String,
    pub dashboard_url: String,
}

impl Alert {
    /// The alert for a rule firing on `slo` since `starts_at_ms`.
    pub fn firing(slo: &Slo, firing: &Firing, starts_at_ms: u64, dashboard_url: &str) -> Alert {
        let summary = format!(
            "{}/{}: {} error budget burning {:.1}x over the long window, {:.1}x now ({})",
            slo.tenant, slo.app, firing.kind, firing.long_burn, firing.short_burn, firing.rule
        );
        Alert {
            name: firing.rule.to_owned(),
            severity: firing.severity,
            tenant: slo.tenant.clone(),
            app: slo.app.clone(),
            kind: firing.kind,
            summary,
            starts_at_ms,
            ends_at_ms: None,
            fingerprint: fingerprint(&slo.tenant, &slo.app, firing.kind, firing.rule),
            dashboard_url: dashboard_url.to_owned(),
        }
    }

    pub fn is_firing(&self) -> bool {
        self.ends_at_ms.is_none()
    }

    fn status(&self) -> &'static str {
        if self.is_firing() {
            "firing"
        } else {
            "resolved"
        }
    }

    /// Alertmanager's labels: what identifies the alert and routes it.
    fn labels(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("alertname", self.name.clone()),
            ("severity", self.severity.as_str().to_owned()),
            ("tenant", self.tenant.clone()),
            ("app", self.app.clone()),
            ("slo", self.kind.as_str().to_owned()),
        ])
    }

    /// Alertmanager's annotations: what a human reads.
    fn annotations(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("summary", self.summary.clone()),
            ("dashboard", self.dashboard_url.clone()),
        ])
    }
}

/// A stable 16-hex id for one rule on one objective of one app, in the shape
/// of Alertmanager's fingerprints: the same alert keeps it across restarts
/// and nodes.
pub fn fingerprint(tenant: &str, app: &str, kind: SloKind, rule: &str) -> String {
    let mut hash = Sha256::new();
    // NUL cannot occur in names, so the fields cannot run into each other.
    for part in [tenant, app, kind.as_str(), rule] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An Alertmanager webhook body (version 4) for one group of alerts, grouped
/// by tenant and app (the group's labels are taken from the first alert).
/// The group fires while any of its alerts does.
pub fn alertmanager(alerts: &[Alert], receiver: &str, external_url: &str) -> Value {
    let group_labels: BTreeMap<&str, String> = alerts
        .first()
        .map(|a| BTreeMap::from([("tenant", a.tenant.clone()), ("app", a.app.clone())]))
        .unwrap_or_default();
    let group_key = format!(
        "{{}}:{{{}}}",
        group_labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let status = if alerts.iter().any(Alert::is_firing) {
        "firing"
    } else {
        "resolved"
    };
    let common = |of: fn(&Alert) -> BTreeMap<&'static str, String>| {
        let mut maps = alerts.iter().map(of);
        let mut shared = maps.next().unwrap_or_default();
        for map in maps {
            shared.retain(|k, v| map.get(k) == Some(v));
        }
        shared
    };
    let items: Vec<Value> = alerts
        .iter()
        .map(|a| {
            json!({
                "status": a.status(),
                "labels": a.labels(),
                "annotations": a.annotations(),
                "startsAt": format_ms(a.starts_at_ms),
                "endsAt": a.ends_at_ms.map_or_else(|| NOT_ENDED.to_owned(), format_ms),
                "generatorURL": a.dashboard_url,
                "fingerprint": a.fingerprint,
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common(Alert::labels),
        "commonAnnotations": common(Alert::annotations),
        "externalURL": external_url,
        "alerts": items,
    })
}

/// The body of a push into an Alertmanager's `POST /api/v2/alerts`
/// (`postableAlerts`: labels, annotations, startsAt, endsAt,
/// generatorURL), as Prometheus sends it: while the alert fires, `endsAt`
/// is [`PUSHED_ENDS_AFTER_MS`] past `now_ms` (renewed by each resend);
/// once resolved, when it ended. The labels are the webhook's, plus
/// `slo_name`, so two objectives of one kind on one app stay two alerts.
pub fn alertmanager_api(alert: &Alert, slo_name: &str, now_ms: u64) -> Value {
    let mut labels = alert.labels();
    labels.insert("slo_name", slo_name.to_owned());
    let ends_at_ms = alert
        .ends_at_ms
        .unwrap_or_else(|| now_ms.saturating_add(PUSHED_ENDS_AFTER_MS));
    json!([{
        "labels": labels,
        "annotations": alert.annotations(),
        "startsAt": format_ms(alert.starts_at_ms),
        "endsAt": format_ms(ends_at_ms.max(alert.starts_at_ms)),
        "generatorURL": alert.dashboard_url,
    }])
}

/// A PagerDuty Events API v2 event: `trigger` while the alert fires,
/// `resolve` after, tied together by the fingerprint as `dedup_key`. A
/// resolve carries no payload: PagerDuty needs only the key to close it.
pub fn pagerduty(alert: &Alert, routing_key: &str, source: &str) -> Value {
    if !alert.is_firing() {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": alert.fingerprint,
        });
    }
    let severity = match alert.severity {
        Severity::Page => "critical",
        Severity::Ticket => "warning",
    };
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.fingerprint,
        "payload": {
            "summary": truncate(&alert.summary, PAGERDUTY_SUMMARY_MAX),
            "source": source,
            "severity": severity,
            "timestamp": format_ms(alert.starts_at_ms),
            "component": alert.app,
            "group": alert.tenant,
            "class": alert.name,
            "custom_details": {
                "tenant": alert.tenant,
                "app": alert.app,
                "slo": alert.kind.as_str(),
                "rule": alert.name,
                "severity": alert.severity.as_str(),
            },
        },
        "client": "DWCP",
        "client_url": alert.dashboard_url,
        "links": [{ "href": alert.dashboard_url, "text": "Dashboard" }],
    })
}

/// A Slack-compatible incoming-webhook message: `text` for notifications
/// and clients without blocks, and blocks for the rest.
pub fn slack(alert: &Alert) -> Value {
    let (icon, state) = match (alert.is_firing(), alert.severity) {
        (true, Severity::Page) => (":rotating_light:", "FIRING, page"),
        (true, Severity::Ticket) => (":warning:", "FIRING, ticket"),
        (false, _) => (":white_check_mark:", "RESOLVED"),
    };
    let text = format!("[{state}] {}", alert.summary);
    let mut facts = vec![
        format!("*App:* {}/{}", escape(&alert.tenant), escape(&alert.app)),
        format!("*SLO:* {}", alert.kind),
        format!("*Rule:* {}", escape(&alert.name)),
        format!("*Since:* {}", format_ms(alert.starts_at_ms)),
    ];
    if let Some(ends) = alert.ends_at_ms {
        facts.push(format!("*Until:* {}", format_ms(ends)));
    }
    json!({
        "text": text,
        "blocks": [
            {
                "type": "section",
                "text": { "type": "mrkdwn", "text": format!("{icon} *[{state}]* {}", escape(&alert.summary)) },
            },
            {
                "type": "section",
                "fields": facts.into_iter().map(|f| json!({ "type": "mrkdwn", "text": f })).collect::<Vec<_>>(),
            },
            {
                "type": "context",
                "elements": [{
                    "type": "mrkdwn",
                    "text": format!("<{}|Dashboard> · {}", escape(&alert.dashboard_url), alert.fingerprint),
                }],
            },
        ],
    })
}

/// Slack's mrkdwn reserves `&`, `<` and `>` for entities and links.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-02-29T12:00:00.000Z
    const T0: u64 = 1_709_208_000_000;

    fn slo() -> Slo {
        crate::slo::objective::example()
    }

    fn alert(severity: Severity, rule: &'static str) -> Alert {
        let firing = Firing {
            rule,
            severity,
            kind: SloKind::Availability,
            long_burn: 15.2,
            short_burn: 200.0,
        };
        Alert::firing(
            &slo(),
            &firing,
            T0,
            "https://ops.example.com/apps/acme/shop",
        )
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        let a = fingerprint("acme", "shop", SloKind::Availability, "slo-burn-1h");
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            a,
            fingerprint("acme", "shop", SloKind::Availability, "slo-burn-1h")
        );
        assert_ne!(
            a,
            fingerprint("acme", "shop", SloKind::Latency, "slo-burn-1h")
        );
        assert_ne!(
            a,
            fingerprint("acmes", "hop", SloKind::Availability, "slo-burn-1h")
        );
        assert_eq!(alert(Severity::Page, "slo-burn-1h").fingerprint, a);
    }

    #[test]
    fn alertmanager_payload_has_the_version_4_shape() {
        let page = alert(Severity::Page, "slo-burn-1h");
        let mut ticket = alert(Severity::Ticket, "slo-burn-3d");
        ticket.ends_at_ms = Some(T0 + 60_000);
        let body = alertmanager(&[page.clone(), ticket], "dwcp", "https://ops.example.com");
        assert_eq!(body["version"], "4");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["receiver"], "dwcp");
        assert_eq!(body["externalURL"], "https://ops.example.com");
        assert_eq!(body["truncatedAlerts"], 0);
        assert_eq!(body["groupKey"], r#"{}:{app="shop", tenant="acme"}"#);
        assert_eq!(
            body["groupLabels"],
            json!({"app": "shop", "tenant": "acme"})
        );
        // Labels both alerts share; alertname and severity differ.
        assert_eq!(
            body["commonLabels"],
            json!({"app": "shop", "slo": "availability", "tenant": "acme"})
        );
        assert_eq!(
            body["commonAnnotations"]["dashboard"],
            "https://ops.example.com/apps/acme/shop"
        );
        assert!(body["commonAnnotations"].get("summary").is_none());

        let first = &body["alerts"][0];
        assert_eq!(first["status"], "firing");
        assert_eq!(first["labels"]["alertname"], "slo-burn-1h");
        assert_eq!(first["labels"]["severity"], "page");
        assert_eq!(first["startsAt"], "2024-02-29T12:00:00.000Z");
        assert_eq!(first["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(first["fingerprint"], page.fingerprint);
        assert_eq!(
            first["generatorURL"],
            "https://ops.example.com/apps/acme/shop"
        );
        assert!(
            first["annotations"]["summary"]
                .as_str()
                .unwrap()
                .contains("200.0x now")
        );
        let second = &body["alerts"][1];
        assert_eq!(second["status"], "resolved");
        assert_eq!(second["endsAt"], "2024-02-29T12:01:00.000Z");

        let mut resolved = page;
        resolved.ends_at_ms = Some(T0 + 1);
        let body = alertmanager(&[resolved], "dwcp", "https://ops.example.com");
        assert_eq!(body["status"], "resolved");
        assert_eq!(body["commonLabels"]["alertname"], "slo-burn-1h");
    }

    #[test]
    fn alertmanager_api_alerts_end_four_resends_ahead_until_resolved() {
        let mut page = alert(Severity::Page, "slo-burn-1h");
        let body = alertmanager_api(&page, "availability", T0 + 30_000);
        let alerts = body.as_array().unwrap();
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(
            a["labels"],
            json!({"alertname": "slo-burn-1h", "severity": "page", "tenant": "acme", "app": "shop", "slo": "availability", "slo_name": "availability"})
        );
        assert_eq!(a["startsAt"], "2024-02-29T12:00:00.000Z");
        // 30 s after the start, plus four minutes.
        assert_eq!(a["endsAt"], "2024-02-29T12:04:30.000Z");
        assert_eq!(a["generatorURL"], "https://ops.example.com/apps/acme/shop");
        assert!(
            a["annotations"]["summary"]
                .as_str()
                .unwrap()
                .contains("200.0x now")
        );
        assert!(a.get("status").is_none() && a.get("fingerprint").is_none());
        page.ends_at_ms = Some(T0 + 90_000);
        let body = alertmanager_api(&page, "availability", T0 + 95_000);
        assert_eq!(body[0]["endsAt"], "2024-02-29T12:01:30.000Z");
    }

    #[test]
    fn pagerduty_triggers_and_resolves_with_one_dedup_key() {
        let page = alert(Severity::Page, "slo-burn-1h");
        let event = pagerduty(&page, "R0UTINGKEY", "dwcp.example.com");
        assert_eq!(event["routing_key"], "R0UTINGKEY");
        assert_eq!(event["event_action"], "trigger");
        assert_eq!(event["dedup_key"], page.fingerprint);
        let payload = &event["payload"];
        assert_eq!(payload["severity"], "critical");
        assert_eq!(payload["source"], "dwcp.example.com");
        assert_eq!(payload["component"], "shop");
        assert_eq!(payload["timestamp"], "2024-02-29T12:00:00.000Z");
        assert_eq!(payload["summary"], page.summary.as_str());
        assert_eq!(payload["custom_details"]["slo"], "availability");
        assert_eq!(
            event["links"][0]["href"],
            "https://ops.example.com/apps/acme/shop"
        );

        let ticket = alert(Severity::Ticket, "slo-burn-3d");
        assert_eq!(
            pagerduty(&ticket, "k", "s")["payload"]["severity"],
            "warning"
        );

        let mut resolved = page.clone();
        resolved.ends_at_ms = Some(T0 + 1);
        let event = pagerduty(&resolved, "R0UTINGKEY", "dwcp.example.com");
        assert_eq!(
            event,
            json!({"routing_key": "R0UTINGKEY", "event_action": "resolve", "dedup_key": page.fingerprint})
        );

        let mut long = alert(Severity::Page, "slo-burn-1h");
        long.summary = "é".repeat(2000);
        let summary = pagerduty(&long, "k", "s")["payload"]["summary"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(summary.chars().count(), 1024);
    }

    #[test]
    fn slack_message_has_text_and_blocks_and_escapes_mrkdwn() {
        let mut page = alert(Severity::Page, "slo-burn-1h");
        page.summary = "errors <b> & co".into();
        let msg = slack(&page);
        assert_eq!(msg["text"], "[FIRING, page] errors <b> & co");
        let blocks = msg["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "section");
        assert_eq!(blocks[0]["text"]["type"], "mrkdwn");
        assert!(
            blocks[0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("errors &lt;b&gt; &amp; co")
        );
        assert_eq!(blocks[1]["fields"][0]["text"], "*App:* acme/shop");
        assert!(
            blocks[2]["elements"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("<https://ops.example.com/apps/acme/shop|Dashboard>")
        );

        page.ends_at_ms = Some(T0 + 60_000);
        let msg = slack(&page);
        assert!(msg["text"].as_str().unwrap().starts_with("[RESOLVED]"));
        let fields = msg["blocks"][1]["fields"].as_array().unwrap();
        assert_eq!(
            fields.last().unwrap()["text"],
            "*Until:* 2024-02-29T12:01:00.000Z"
        );
    }
}
