//! Policy files: read whole, every error naming the rule and the field.

use autopilot::act::{ActionKind, Basis, FaultClass, Policy};

const GOOD: &str = r#"
[[rule]]
name = "errors-roll-back"
on = "version_errors"
basis = "observed"
actions = ["rollback", "open_incident"]
cooldown_s = 600

[[rule]]
name = "slots-prepare"
on = "slot_exhaustion"
basis = "forecast"
actions = ["scale_out"]
min_score = 0.7
scale_step = 2
dry_run = true
"#;

#[test]
fn a_good_policy_is_read_with_its_defaults_filled_in() {
    let p = Policy::parse(GOOD).expect("valid");
    assert_eq!(p.rules.len(), 2);
    let r = &p.rules[0];
    assert_eq!(r.on, FaultClass::VersionErrors);
    assert_eq!(
        r.actions,
        vec![ActionKind::Rollback, ActionKind::OpenIncident]
    );
    assert_eq!((r.cooldown_s, r.min_score, r.dry_run), (600, 0.5, false));
    let r = &p.rules[1];
    assert_eq!(
        (r.basis, r.scale_step, r.dry_run, r.throttle_percent),
        (Basis::Forecast, 2, true, 50)
    );
    assert!(
        p.rule_for(FaultClass::SlotExhaustion, Basis::Forecast, 0.6)
            .is_none()
    );
    assert!(
        p.rule_for(FaultClass::SlotExhaustion, Basis::Forecast, 0.7)
            .is_some()
    );
}

fn refused(text: &str) -> String {
    Policy::parse(text)
        .map(|p| panic!("accepted: {p:?}"))
        .unwrap_err()
        .to_string()
}

fn one_rule(body: &str) -> String {
    format!("[[rule]]\n{body}\n")
}

#[test]
fn bad_policies_are_refused_naming_the_rule_and_field() {
    let base = r#"name = "r1"
on = "node_silent"
basis = "observed"
actions = ["drain"]"#;
    let cases: Vec<(String, &str)> = vec![
        ("rule = 3".into(), "rule: required: at least one [[rule]]"),
        (
            format!("{}\n[other]\nx = 1", one_rule(base)),
            "other: unknown field; a policy has only [[rule]] tables",
        ),
        (
            one_rule(&format!("{base}\nspeed = 3")),
            "rule 1 (r1): speed: unknown field; a rule has name, on, basis, actions, min_score, cooldown_s, dry_run, scale_step, throttle_percent",
        ),
        (
            one_rule(&base.replace("node_silent", "node_sad")),
            "rule 1 (r1): on: unknown fault class \"node_sad\"; allowed: node_silent, node_slow, slot_exhaustion, memory_exhaustion, disk_full, pool_unhealthy, version_errors, version_latency, load_past_capacity, tenant_flood, region_lost, region_capacity",
        ),
        (
            one_rule(&base.replace("\"observed\"", "\"hoped\"")),
            "rule 1 (r1): basis: unknown basis \"hoped\"; allowed: observed, forecast",
        ),
        (
            one_rule(&base.replace("[\"drain\"]", "[\"drain\", \"reboot\"]")),
            "rule 1 (r1): actions[1]: unknown action \"reboot\"; allowed: restart_pool, drain, cordon, uncordon, scale_out, scale_in, rollback, roll_forward, throttle, failover, failback, open_incident, escalate",
        ),
        (
            one_rule(&base.replace("[\"drain\"]", "[\"cordon\", \"rollback\"]")),
            "rule 1 (r1): actions[1]: rollback cannot answer node_silent; allowed: drain, cordon, open_incident, escalate",
        ),
        (
            one_rule(&base.replace("\"observed\"", "\"forecast\"")),
            "rule 1 (r1): actions[0]: drain destroys or takes away; on a forecast alone a rule may only prepare or notify (scale_out, cordon, uncordon, open_incident, escalate)",
        ),
        (
            one_rule(&format!("{base}\ncooldown_s = 5")),
            "rule 1 (r1): cooldown_s: 60 to 86400 seconds",
        ),
        (
            one_rule(&format!("{base}\nmin_score = 1.5")),
            "rule 1 (r1): min_score: 0 to 1",
        ),
        (
            one_rule(&format!("{base}\ndry_run = \"yes\"")),
            "rule 1 (r1): dry_run: must be true or false",
        ),
        (
            one_rule(&base.replace("[\"drain\"]", "[]")),
            "rule 1 (r1): actions: 1 to 5 actions",
        ),
        (
            one_rule(&base.replace("\"r1\"", "\"R 1\"")),
            "rule 1 (R 1): name: 1 to 63 characters: lowercase letters, digits and '-'",
        ),
        (
            format!("{}{}", one_rule(base), one_rule(base)),
            "rule 2 (r1): name: used by an earlier rule; names are unique",
        ),
        (
            one_rule("on = \"node_silent\"\nbasis = \"observed\"\nactions = [\"drain\"]"),
            "rule 1: name: required",
        ),
        (
            one_rule(&format!("{base}\nthrottle_percent = 100")),
            "rule 1 (r1): throttle_percent: 1 to 99 percent",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(refused(&text), want, "for:\n{text}");
    }
    assert!(refused("[[rule]\n").starts_with("policy: not TOML"));
}

#[test]
fn a_bad_rule_anywhere_refuses_the_whole_file() {
    let text = format!(
        "{GOOD}\n[[rule]]\nname = \"bad\"\non = \"disk_full\"\nbasis = \"observed\"\nactions = [\"failover\"]\n"
    );
    assert_eq!(
        refused(&text),
        "rule 3 (bad): actions[0]: failover cannot answer disk_full; allowed: drain, cordon, open_incident, escalate"
    );
}
