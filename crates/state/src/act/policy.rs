//! Policies: which actions answer which trouble, as data. A policy file
//! is TOML, read and checked whole (like plans and topologies): any error
//! names the rule and the field, and nothing of a bad file is used.
//!
//! ```toml
//! [[rule]]
//! name = "errors-roll-back"
//! on = "version_errors"        # a fault class
//! basis = "observed"           # observed | forecast
//! actions = ["rollback", "open_incident"]   # tried in order
//! min_score = 0.5              # optional; the trouble's score at least
//! cooldown_s = 300             # optional; at least 60
//! dry_run = false              # optional; propose only
//! ```
//!
//! A rule on forecasts may only prepare (scale out, cordon) or notify:
//! nothing is destroyed or scaled in on a forecast alone.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::action::{ActionClass, ActionKind};
use super::trouble::{Basis, FAULT_CLASSES, FaultClass};

/// Shortest cool-down a rule may ask for, seconds (the guardrails'
/// default).
pub const MIN_COOLDOWN_S: u64 = 60;
/// Longest cool-down, seconds (a day).
pub const MAX_COOLDOWN_S: u64 = 86_400;
/// Most rules in a policy file.
pub const MAX_RULES: usize = 200;
/// Most actions one rule tries.
pub const MAX_ACTIONS: usize = 5;

/// One rule: on this trouble, try these actions in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    pub on: FaultClass,
    pub basis: Basis,
    pub actions: Vec<ActionKind>,
    /// The trouble's score must reach it (0 to 1).
    pub min_score: f64,
    pub cooldown_s: u64,
    /// Propose, never apply.
    pub dry_run: bool,
    /// Replicas a scale step adds or removes.
    pub scale_step: u32,
    /// A throttle keeps this share of the tenant's concurrency, percent.
    pub throttle_percent: u32,
}

/// A whole policy: its rules, first match wins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub rules: Vec<Rule>,
}

/// A policy refused: the rule (by number from 1, and name when it has
/// one), the field and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    /// Counted from 1; `None` for the file as a whole.
    pub rule: Option<usize>,
    pub name: Option<String>,
    pub field: String,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.rule, &self.name) {
            (Some(n), Some(name)) => write!(f, "rule {n} ({name}): ")?,
            (Some(n), None) => write!(f, "rule {n}: ")?,
            _ => {}
        }
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The actions that can answer each fault class (others have nothing to
/// act on there).
pub fn applicable(class: FaultClass) -> &'static [ActionKind] {
    use ActionKind::*;
    match class {
        FaultClass::NodeSilent
        | FaultClass::NodeSlow
        | FaultClass::MemoryExhaustion
        | FaultClass::DiskFull => &[Drain, Cordon, OpenIncident, Escalate],
        FaultClass::SlotExhaustion => &[ScaleOut, Cordon, OpenIncident, Escalate],
        FaultClass::PoolUnhealthy => &[RestartPool, Drain, Cordon, OpenIncident, Escalate],
        FaultClass::VersionErrors | FaultClass::VersionLatency => {
            &[Rollback, ScaleOut, OpenIncident, Escalate]
        }
        FaultClass::LoadPastCapacity => &[ScaleOut, ScaleIn, Throttle, OpenIncident, Escalate],
        FaultClass::TenantFlood => &[Throttle, OpenIncident, Escalate],
        FaultClass::RegionLost | FaultClass::RegionCapacity => {
            &[Failover, Failback, OpenIncident, Escalate]
        }
    }
}

impl Policy {
    /// A rule for every fault class, observed and forecast: what DWCP
    /// does when no policy file says otherwise.
    pub fn defaults() -> Policy {
        use ActionKind::*;
        use Basis::{Forecast, Observed};
        let table: [(FaultClass, Basis, &[ActionKind]); 20] = [
            (FaultClass::NodeSilent, Observed, &[Drain, OpenIncident]),
            (FaultClass::NodeSilent, Forecast, &[Cordon, OpenIncident]),
            (FaultClass::NodeSlow, Observed, &[Cordon, OpenIncident]),
            (
                FaultClass::SlotExhaustion,
                Observed,
                &[ScaleOut, OpenIncident],
            ),
            (FaultClass::SlotExhaustion, Forecast, &[ScaleOut]),
            (FaultClass::MemoryExhaustion, Observed, &[Drain, Cordon]),
            (FaultClass::MemoryExhaustion, Forecast, &[Cordon]),
            (FaultClass::DiskFull, Observed, &[Cordon, OpenIncident]),
            (FaultClass::DiskFull, Forecast, &[Cordon, OpenIncident]),
            (FaultClass::PoolUnhealthy, Observed, &[RestartPool, Drain]),
            (
                FaultClass::VersionErrors,
                Observed,
                &[Rollback, OpenIncident],
            ),
            (FaultClass::VersionErrors, Forecast, &[OpenIncident]),
            (FaultClass::VersionLatency, Observed, &[Rollback, ScaleOut]),
            (FaultClass::VersionLatency, Forecast, &[ScaleOut]),
            (
                FaultClass::LoadPastCapacity,
                Observed,
                &[ScaleOut, Throttle],
            ),
            (FaultClass::LoadPastCapacity, Forecast, &[ScaleOut]),
            (FaultClass::TenantFlood, Observed, &[Throttle, OpenIncident]),
            (FaultClass::RegionLost, Observed, &[Failover, OpenIncident]),
            (FaultClass::RegionCapacity, Observed, &[OpenIncident]),
            (FaultClass::RegionCapacity, Forecast, &[OpenIncident]),
        ];
        let rules = table
            .into_iter()
            .map(|(on, basis, actions)| Rule {
                name: format!(
                    "{}-{}",
                    on.as_str().replace('_', "-"),
                    match basis {
                        Observed => "observed",
                        Forecast => "forecast",
                    }
                ),
                on,
                basis,
                actions: actions.to_vec(),
                min_score: 0.5,
                cooldown_s: 300,
                dry_run: false,
                scale_step: 1,
                throttle_percent: 50,
            })
            .collect();
        Policy { rules }
    }

    /// The rule that answers a trouble: the first whose class and basis
    /// match and whose score it reaches.
    pub fn rule_for(&self, class: FaultClass, basis: Basis, score: f64) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.on == class && r.basis == basis && score >= r.min_score)
    }

    /// Reads and checks a policy file (TOML), whole.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let value: toml::Value = toml::from_str(text)
            .map_err(|e| file_error("policy", format!("not TOML: {}", e.message())))?;
        let toml::Value::Table(mut top) = value else {
            return Err(file_error("policy", "a table of [[rule]]s"));
        };
        if let Some(unknown) = top.keys().find(|k| *k != "rule") {
            return Err(file_error(
                unknown,
                "unknown field; a policy has only [[rule]] tables",
            ));
        }
        let Some(toml::Value::Array(raw)) = top.remove("rule") else {
            return Err(file_error("rule", "required: at least one [[rule]]"));
        };
        if raw.len() > MAX_RULES {
            return Err(file_error("rule", format!("at most {MAX_RULES} rules")));
        }
        let mut rules = Vec::with_capacity(raw.len());
        for (i, value) in raw.into_iter().enumerate() {
            rules.push(parse_rule(i + 1, value)?);
        }
        let policy = Policy { rules };
        policy.check()?;
        Ok(policy)
    }

    /// Checks the rules together: unique names, nothing a forecast may
    /// not do, actions that fit their trouble.
    pub fn check(&self) -> Result<(), PolicyError> {
        if self.rules.is_empty() {
            return Err(file_error("rule", "required: at least one [[rule]]"));
        }
        let mut names = BTreeSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let err = |field: &str, message: String| PolicyError {
                rule: Some(i + 1),
                name: Some(rule.name.clone()),
                field: field.to_string(),
                message,
            };
            if !names.insert(rule.name.as_str()) {
                return Err(err(
                    "name",
                    "used by an earlier rule; names are unique".into(),
                ));
            }
            if rule.actions.is_empty() || rule.actions.len() > MAX_ACTIONS {
                return Err(err("actions", format!("1 to {MAX_ACTIONS} actions")));
            }
            let fits = applicable(rule.on);
            for (j, kind) in rule.actions.iter().enumerate() {
                let field = format!("actions[{j}]");
                if !fits.contains(kind) {
                    return Err(err(
                        &field,
                        format!("{kind} cannot answer {}; allowed: {}", rule.on, join(fits)),
                    ));
                }
                if rule.basis == Basis::Forecast && kind.class() == ActionClass::Destructive {
                    return Err(err(
                        &field,
                        format!(
                            "{kind} destroys or takes away; on a forecast alone a rule may only prepare or notify (scale_out, cordon, uncordon, open_incident, escalate)"
                        ),
                    ));
                }
            }
            if !(0.0..=1.0).contains(&rule.min_score) {
                return Err(err("min_score", "0 to 1".into()));
            }
            if !(MIN_COOLDOWN_S..=MAX_COOLDOWN_S).contains(&rule.cooldown_s) {
                return Err(err(
                    "cooldown_s",
                    format!("{MIN_COOLDOWN_S} to {MAX_COOLDOWN_S} seconds"),
                ));
            }
            if !(1..=100).contains(&rule.scale_step) {
                return Err(err("scale_step", "1 to 100 replicas".into()));
            }
            if !(1..=99).contains(&rule.throttle_percent) {
                return Err(err("throttle_percent", "1 to 99 percent".into()));
            }
        }
        Ok(())
    }
}

fn join(kinds: &[ActionKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn file_error(field: &str, message: impl Into<String>) -> PolicyError {
    PolicyError {
        rule: None,
        name: None,
        field: field.to_string(),
        message: message.into(),
    }
}

const RULE_FIELDS: &str =
    "name, on, basis, actions, min_score, cooldown_s, dry_run, scale_step, throttle_percent";

fn parse_rule(n: usize, value: toml::Value) -> Result<Rule, PolicyError> {
    let toml::Value::Table(table) = value else {
        return Err(PolicyError {
            rule: Some(n),
            name: None,
            field: "rule".into(),
            message: "a table".into(),
        });
    };
    let name = table
        .get("name")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let err = |field: &str, message: String| PolicyError {
        rule: Some(n),
        name: name.clone(),
        field: field.to_string(),
        message,
    };
    if let Some(unknown) = table
        .keys()
        .find(|k| !RULE_FIELDS.split(", ").any(|f| f == k.as_str()))
    {
        return Err(err(
            unknown,
            format!("unknown field; a rule has {RULE_FIELDS}"),
        ));
    }
    let text = |field: &str| -> Result<&str, PolicyError> {
        match table.get(field) {
            Some(toml::Value::String(s)) => Ok(s.as_str()),
            Some(_) => Err(err(field, "must be a string".into())),
            None => Err(err(field, "required".into())),
        }
    };
    let number = |field: &str, default: u64| -> Result<u64, PolicyError> {
        match table.get(field) {
            None => Ok(default),
            Some(toml::Value::Integer(i)) if *i >= 0 => Ok(*i as u64),
            Some(_) => Err(err(field, "must be a whole number, 0 or more".into())),
        }
    };
    let rule_name = text("name")?;
    let valid_name = !rule_name.is_empty()
        && rule_name.len() <= 63
        && rule_name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid_name {
        return Err(err(
            "name",
            "1 to 63 characters: lowercase letters, digits and '-'".into(),
        ));
    }
    let on_text = text("on")?;
    let on = FaultClass::parse(on_text).ok_or_else(|| {
        err(
            "on",
            format!(
                "unknown fault class {on_text:?}; allowed: {}",
                FAULT_CLASSES.map(|c| c.as_str()).join(", ")
            ),
        )
    })?;
    let basis = match text("basis")? {
        "observed" => Basis::Observed,
        "forecast" => Basis::Forecast,
        other => {
            return Err(err(
                "basis",
                format!("unknown basis {other:?}; allowed: observed, forecast"),
            ));
        }
    };
    let Some(toml::Value::Array(raw_actions)) = table.get("actions") else {
        return Err(err("actions", "required: a list of action kinds".into()));
    };
    let mut actions = Vec::with_capacity(raw_actions.len());
    for (j, a) in raw_actions.iter().enumerate() {
        let field = format!("actions[{j}]");
        let kind = a.as_str().and_then(ActionKind::parse).ok_or_else(|| {
            err(
                &field,
                format!(
                    "unknown action {}; allowed: {}",
                    a.as_str()
                        .map_or("(not a string)".into(), |t| format!("{t:?}")),
                    join(&super::action::ACTION_KINDS)
                ),
            )
        })?;
        actions.push(kind);
    }
    let min_score = match table.get("min_score") {
        None => 0.5,
        Some(toml::Value::Float(f)) => *f,
        Some(toml::Value::Integer(i)) => *i as f64,
        Some(_) => return Err(err("min_score", "must be a number, 0 to 1".into())),
    };
    let dry_run = match table.get("dry_run") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => return Err(err("dry_run", "must be true or false".into())),
    };
    let small = |field: &str, default: u64| -> Result<u32, PolicyError> {
        u32::try_from(number(field, default)?).map_err(|_| err(field, "too large".into()))
    };
    Ok(Rule {
        name: rule_name.to_string(),
        on,
        basis,
        actions,
        min_score,
        cooldown_s: number("cooldown_s", 300)?,
        dry_run,
        scale_step: small("scale_step", 1)?,
        throttle_percent: small("throttle_percent", 50)?,
    })
}
