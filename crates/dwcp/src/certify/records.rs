//! The cluster's shape and its operational records, judged: pure. The
//! probe (`probes::cluster_and_records`) reads the API; this turns what it
//! read into one measurement per criterion, so each can be shown failing
//! on a cluster's answers that violate it (the tests below).

use std::collections::BTreeSet;

use certify::Measurement;
use serde_json::Value;

use super::probes::Found;

/// What one member answered.
pub struct MemberView {
    /// Its API address, to name it.
    pub api: String,
    /// `GET /api/v1/cluster`'s `leader` as JSON text (`null` when it knows
    /// none); `None` when it did not answer with JSON.
    pub leader: Option<String>,
    /// `GET /api/v1/health`'s status; `None` when it did not answer.
    pub health: Option<u16>,
    /// This machine's clock less the member's `Date` header, in ms.
    pub skew_ms: Option<f64>,
}

/// What the probe read: each field the JSON of one API answer.
pub struct Records {
    /// `GET /api/v1/cluster` from the API the run talks to.
    pub status: Value,
    pub members: Vec<MemberView>,
    /// `GET /metrics`: status and text.
    pub metrics: (u16, String),
    /// `GET /`: status and text.
    pub page: (u16, String),
    pub nodes: Value,
    pub capacity: Value,
    pub apps: Value,
    pub slos: Value,
    pub runbooks: Value,
    pub incidents: Value,
    pub tokens: Value,
    pub users: Value,
    pub backups: Value,
}

fn list(v: &Value, field: &str) -> Vec<Value> {
    v[field].as_array().cloned().unwrap_or_default()
}

/// An SLO record, listed bare or under `slo`.
fn slo_of(s: &Value) -> &Value {
    if s["slo"].is_object() { &s["slo"] } else { s }
}

/// One measurement per criterion of the records probe.
pub fn measure(r: &Records) -> Found {
    let mut found = Found::new();
    let members = list(&r.status, "members");
    let voters = members.iter().filter(|m| m["voter"] == true).count();
    found.insert(
        "reliability.quorum.voters",
        Measurement::of(voters as f64, format!("{} members", members.len())),
    );
    let max_lag = members
        .iter()
        .filter_map(|m| m["lag"].as_u64())
        .max()
        .unwrap_or(0);
    found.insert(
        "reliability.quorum.max_lag",
        Measurement::of(max_lag as f64, "the leader's view (GET /api/v1/cluster)"),
    );
    // A member that does not answer does not agree.
    let leaders: BTreeSet<String> = r
        .members
        .iter()
        .map(|m| {
            m.leader
                .clone()
                .unwrap_or_else(|| format!("no answer from {}", m.api))
        })
        .collect();
    let agreed = leaders.len() == 1 && !leaders.contains("null");
    found.insert(
        "reliability.quorum.leader",
        Measurement::of(
            f64::from(u8::from(agreed)),
            format!(
                "leaders named by the {} members: {leaders:?}",
                r.members.len()
            ),
        ),
    );
    let healthy = r.members.iter().filter(|m| m.health == Some(200)).count();
    found.insert(
        "operations.health",
        Measurement::of(
            (r.members.len() - healthy) as f64,
            format!("{healthy} of {} members answered 200", r.members.len()),
        ),
    );
    // Date has whole seconds: up to 1 s of the gap is its rounding.
    let skew_ms = r
        .members
        .iter()
        .filter_map(|m| m.skew_ms)
        .map(|s| (s.abs() - 1000.0).max(0.0))
        .fold(0.0, f64::max);
    found.insert(
        "operations.clocks.skew",
        Measurement::of(
            skew_ms,
            "each API's Date header against this machine's clock, less the header's 1 s resolution",
        ),
    );
    let families = r
        .metrics
        .1
        .lines()
        .filter(|l| l.starts_with("# TYPE"))
        .count();
    found.insert(
        "operations.metrics",
        Measurement::of(
            families as f64,
            format!("GET /metrics answered {}", r.metrics.0),
        ),
    );
    let html = r.page.0 == 200 && r.page.1.to_ascii_lowercase().contains("<html");
    found.insert(
        "operations.dashboard",
        Measurement::of(
            f64::from(u8::from(html)),
            format!("GET / answered {}", r.page.0),
        ),
    );

    let nodes = list(&r.nodes, "nodes");
    let silent = nodes.iter().filter(|n| n["report"].is_null()).count();
    found.insert(
        "operations.nodes.reporting",
        Measurement::of(silent as f64, format!("of {} nodes", nodes.len())),
    );
    let (mut cap, mut placed) = (0u64, 0u64);
    for n in list(&r.capacity, "nodes") {
        cap += n["capacity"].as_u64().unwrap_or(0);
        placed += n["placed"].as_u64().unwrap_or(0);
    }
    found.insert(
        "scalability.capacity.headroom",
        if cap == 0 {
            Measurement::unmeasured("no capacity reported")
        } else {
            Measurement::of(
                1.0 - placed as f64 / cap as f64,
                format!("{placed} of {cap} sandboxes placed"),
            )
        },
    );

    let apps: Vec<String> = list(&r.apps, "apps")
        .iter()
        .map(|a| {
            format!(
                "{}/{}",
                a["tenant"].as_str().unwrap_or(""),
                a["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    let slos = list(&r.slos, "slos");
    let with_slo: BTreeSet<String> = slos
        .iter()
        .map(|s| {
            let s = slo_of(s);
            format!(
                "{}/{}",
                s["tenant"].as_str().unwrap_or(""),
                s["app"].as_str().unwrap_or("")
            )
        })
        .collect();
    let bare: Vec<&String> = apps.iter().filter(|a| !with_slo.contains(*a)).collect();
    found.insert(
        "operations.slos.every_app",
        Measurement::of(
            bare.len() as f64,
            format!("{} apps; without an SLO: {bare:?}", apps.len()),
        ),
    );
    let unrouted = slos
        .iter()
        .filter(|s| slo_of(s)["notify"].as_array().is_none_or(Vec::is_empty))
        .count();
    found.insert(
        "operations.alerts.routed",
        Measurement::of(unrouted as f64, format!("of {} SLOs", slos.len())),
    );
    let answered: BTreeSet<String> = list(&r.runbooks, "runbooks")
        .iter()
        .flat_map(|r| r["alerts"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let alerts: Vec<&str> = if slos.is_empty() {
        vec![]
    } else {
        vec![ops::slo::eval::PAGE_ALERT, ops::slo::eval::TICKET_ALERT]
    };
    let unanswered: Vec<&&str> = alerts.iter().filter(|a| !answered.contains(**a)).collect();
    found.insert(
        "operations.alerts.runbooks",
        Measurement::of(
            unanswered.len() as f64,
            format!(
                "alerts the {} SLOs can fire: {alerts:?}; without a runbook: {unanswered:?}",
                slos.len()
            ),
        ),
    );
    let open = list(&r.incidents, "incidents")
        .iter()
        .filter(|i| i["state"].as_str() == Some("open"))
        .count();
    found.insert(
        "operations.incidents.open",
        Measurement::of(open as f64, "GET /api/v1/incidents"),
    );

    let users = list(&r.users, "users");
    let admins = list(&r.tokens, "tokens")
        .iter()
        .filter(|x| x["role"] == "admin")
        .count()
        + users
            .iter()
            .filter(|u| {
                u["roles"]
                    .as_object()
                    .is_some_and(|r| r.values().any(|v| v == "admin"))
            })
            .count();
    found.insert(
        "compliance.access.admins",
        Measurement::of(admins as f64, "admin tokens and users with an admin role"),
    );
    let no_mfa = users.iter().filter(|u| u["totp"] != "confirmed").count();
    found.insert(
        "compliance.access.mfa",
        Measurement::of(no_mfa as f64, format!("of {} users", users.len())),
    );
    let nodes_backing_up: BTreeSet<String> = list(&r.backups, "backups")
        .iter()
        .filter_map(|b| b["node"].as_str().map(str::to_string))
        .collect();
    found.insert(
        "reliability.backup.scheduled",
        Measurement::of(
            nodes_backing_up.len() as f64,
            format!("nodes recording scheduled backups: {nodes_backing_up:?}"),
        ),
    );
    found
}

/// The audit log (`GET /api/v1/audit`) after this run made `made`
/// changes recorded as `what`, each after revision `floor`: the changes
/// missing (no entry, or one without an author), and the entries out of
/// revision order or without an author.
pub fn audit(log: &Value, floor: u64, what: &str, made: usize) -> Found {
    let entries = list(log, "entries");
    let authored = |e: &Value| e["who"].as_str().is_some_and(|w| !w.is_empty());
    let recorded = entries
        .iter()
        .filter(|e| {
            e["revision"].as_u64().is_some_and(|r| r > floor)
                && e["what"].as_str() == Some(what)
                && authored(e)
        })
        .count();
    let mut found = Found::new();
    found.insert(
        "compliance.audit.records_changes",
        Measurement::of(
            made.saturating_sub(recorded) as f64,
            format!("this run made {made} changes; GET /api/v1/audit has {recorded} `{what}` entries with an author after revision {floor}"),
        ),
    );
    let mut disorder = 0;
    let mut last = 0;
    for e in &entries {
        let r = e["revision"].as_u64().unwrap_or(0);
        if r < last || !authored(e) {
            disorder += 1;
        }
        last = r;
    }
    found.insert(
        "compliance.audit.ordered",
        Measurement::of(
            f64::from(disorder),
            format!("{} audit entries checked", entries.len()),
        ),
    );
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::certify::catalog::CATALOG;

    /// A healthy cluster's answers: every criterion of this probe passes.
    fn healthy() -> Records {
        let member = |n: u16| MemberView {
            api: format!("127.0.0.1:{n}"),
            leader: Some("1".into()),
            health: Some(200),
            skew_ms: Some(300.0),
        };
        let metrics: String = (0..12)
            .map(|i| format!("# TYPE dwcp_family_{i} counter\ndwcp_family_{i} 1\n"))
            .collect();
        Records {
            status: json!({"members": [
                {"voter": true, "lag": 0}, {"voter": true, "lag": 3}, {"voter": true, "lag": 0}
            ]}),
            members: vec![member(1), member(2), member(3)],
            metrics: (200, metrics),
            page: (
                200,
                "<!doctype html><html><body>dashboard</body></html>".into(),
            ),
            nodes: json!({"nodes": [{"report": {"sandboxes": 1}}, {"report": {"sandboxes": 0}}]}),
            capacity: json!({"nodes": [{"capacity": 100, "placed": 10}, {"capacity": 100, "placed": 0}]}),
            apps: json!({"apps": [{"tenant": "default", "name": "hello"}]}),
            slos: json!({"slos": [{"slo": {"tenant": "default", "app": "hello",
                "notify": [{"kind": "alertmanager", "url": "https://alerts.example.com/"}]}}]}),
            runbooks: json!({"runbooks": [{"alerts": [ops::slo::eval::PAGE_ALERT, ops::slo::eval::TICKET_ALERT]}]}),
            incidents: json!({"incidents": [{"state": "acknowledged"}, {"state": "resolved"}]}),
            tokens: json!({"tokens": [{"role": "admin"}, {"role": "viewer"}]}),
            users: json!({"users": [{"roles": {"default": "operator"}, "totp": "confirmed"}]}),
            backups: json!({"backups": [{"node": "node-1"}]}),
        }
    }

    fn verdict(r: &Records, id: &str) -> certify::Verdict {
        let def = CATALOG.iter().find(|d| d.id == id).expect("in the catalog");
        let found = measure(r);
        let m = found.get(id).unwrap_or_else(|| panic!("{id} not measured"));
        certify::judge(&def.criterion(), m, &[], 0)
    }

    #[test]
    fn a_healthy_clusters_records_pass_every_criterion() {
        let r = healthy();
        let found = measure(&r);
        assert_eq!(found.len(), 16);
        for id in found.keys() {
            let v = verdict(&r, id);
            assert_eq!(v.status, certify::Status::Pass, "{id}: {}", v.detail);
        }
    }

    /// Each criterion of the records probe, fed a cluster's answers that
    /// violate it, fails with the catalog's remediation; the others hold.
    #[test]
    fn each_record_criterion_fails_on_answers_that_violate_it() {
        type Break = fn(&mut Records);
        let cases: Vec<(&str, Break)> = vec![
            ("reliability.quorum.voters", |r| {
                r.status["members"][2]["voter"] = json!(false)
            }),
            ("reliability.quorum.max_lag", |r| {
                r.status["members"][1]["lag"] = json!(5000)
            }),
            ("reliability.quorum.leader", |r| {
                r.members[2].leader = Some("2".into())
            }),
            ("reliability.quorum.leader", |r| r.members[1].leader = None),
            ("reliability.quorum.leader", |r| {
                for m in &mut r.members {
                    m.leader = Some("null".into());
                }
            }),
            ("operations.health", |r| r.members[0].health = None),
            ("operations.health", |r| r.members[2].health = Some(503)),
            ("operations.clocks.skew", |r| {
                r.members[1].skew_ms = Some(-3500.0)
            }),
            ("operations.metrics", |r| {
                r.metrics.1 = "# TYPE a counter\na 1\n".into()
            }),
            ("operations.dashboard", |r| r.page = (404, String::new())),
            ("operations.dashboard", |r| r.page.1 = "{}".into()),
            ("operations.nodes.reporting", |r| {
                r.nodes["nodes"][1]["report"] = Value::Null
            }),
            ("scalability.capacity.headroom", |r| {
                r.capacity["nodes"][0]["placed"] = json!(100);
                r.capacity["nodes"][1]["placed"] = json!(95);
            }),
            ("scalability.capacity.headroom", |r| {
                r.capacity = json!({"nodes": []})
            }),
            ("operations.slos.every_app", |r| {
                r.apps["apps"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"tenant": "default", "name": "shop"}))
            }),
            ("operations.alerts.routed", |r| {
                r.slos["slos"][0]["slo"]["notify"] = json!([])
            }),
            (
                "operations.alerts.runbooks",
                |r| r.runbooks = json!({"runbooks": [{"alerts": [ops::slo::eval::PAGE_ALERT]}]}),
            ),
            ("operations.incidents.open", |r| {
                r.incidents = json!({"incidents": vec![json!({"state": "open"}); 6]})
            }),
            ("compliance.access.admins", |r| {
                r.tokens = json!({"tokens": vec![json!({"role": "admin"}); 6]})
            }),
            ("compliance.access.mfa", |r| {
                r.users["users"][0]["totp"] = json!("none")
            }),
            ("reliability.backup.scheduled", |r| {
                r.backups = json!({"backups": []})
            }),
        ];
        let ids: BTreeSet<&str> = cases.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), 16, "a case for every criterion of the probe");
        for (id, break_it) in cases {
            let mut r = healthy();
            break_it(&mut r);
            let v = verdict(&r, id);
            let def = CATALOG.iter().find(|d| d.id == id).unwrap();
            assert_eq!(v.status, certify::Status::Fail, "{id}: {}", v.detail);
            assert_eq!(v.remediation, def.remediation, "{id}");
            for other in measure(&r).keys().filter(|o| **o != id) {
                let v = verdict(&r, other);
                assert_eq!(v.status, certify::Status::Pass, "{other} (breaking {id})");
            }
        }
    }

    fn judged(found: &Found, id: &str) -> certify::Status {
        let def = CATALOG.iter().find(|d| d.id == id).unwrap();
        certify::judge(&def.criterion(), &found[id], &[], 0).status
    }

    /// The audit criteria: a log with both of the run's changes, in order
    /// and authored, passes; a change missing, a change without an author,
    /// an entry out of order each fail.
    #[test]
    fn the_audit_criteria_fail_on_a_missing_unauthored_or_reordered_entry() {
        use certify::Status::{Fail, Pass};
        let entry = |revision: u64, who: &str, what: &str| json!({"revision": revision, "who": who, "what": what});
        let tokens = "POST /api/v1/tokens";
        let log = |entries: Vec<Value>| json!({ "entries": entries });
        let statuses = |log: &Value| {
            let found = audit(log, 10, tokens, 2);
            (
                judged(&found, "compliance.audit.records_changes"),
                judged(&found, "compliance.audit.ordered"),
            )
        };
        let good = vec![
            entry(9, "admin", tokens),
            entry(11, "token:admin", tokens),
            entry(12, "token:admin", tokens),
        ];
        assert_eq!(statuses(&log(good.clone())), (Pass, Pass));
        let mut missing = good.clone();
        missing.pop();
        assert_eq!(statuses(&log(missing)), (Fail, Pass), "one change missing");
        let mut older = good.clone();
        older[2]["revision"] = json!(8);
        assert_eq!(
            statuses(&log(older)),
            (Fail, Fail),
            "a change at an old revision, out of order"
        );
        let mut anonymous = good.clone();
        anonymous[1]["who"] = json!("");
        assert_eq!(statuses(&log(anonymous)), (Fail, Fail), "no author");
        let mut reordered = good;
        reordered.swap(0, 2);
        assert_eq!(statuses(&log(reordered)), (Pass, Fail), "out of order");
    }
}
