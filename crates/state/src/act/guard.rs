//! The guardrails: a pure function of an action, the cluster, the
//! actions taken lately and the operator's switches, run before every
//! action (by the decision) and again when it is applied (so that an
//! approval given late, or a second leader, cannot slip past them).
//!
//! Each guardrail gives a [`Check`] with the value it measured and its
//! limits: past the hard limit the action is refused ([`Verdict::Breach`]);
//! past the soft limit it needs a person's approval ([`Verdict::Soft`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::action::{Action, ActionClass};
use super::view::{ClusterView, Controls, Ledger};

/// The guardrails' limits. [`Limits::default`] is issue 20's; an operator
/// may tighten them, never loosen them ([`Limits::check`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Sandboxes the autopilot may stop on one node in a minute.
    pub terminations_per_node_minute: u64,
    /// Past this many a minute, a person approves.
    pub terminations_soft: u64,
    /// Region failovers in an hour.
    pub failovers_per_hour: u64,
    /// Past this many an hour, a person approves.
    pub failovers_soft: u64,
    /// Share of nodes, and of regions, that must stay serving.
    pub min_serving_share: f64,
    /// Below this share, a person approves.
    pub serving_soft_share: f64,
    /// Cost an hour scaling may add in an hour, as a share of the cost an
    /// hour ago.
    pub max_cost_growth_hour: f64,
    /// Past this share, a person approves.
    pub cost_growth_soft: f64,
    /// Time a target rests after an action, unless its policy rule says
    /// longer.
    pub cooldown_ms: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            terminations_per_node_minute: 100,
            terminations_soft: 80,
            failovers_per_hour: 3,
            failovers_soft: 2,
            min_serving_share: 0.5,
            serving_soft_share: 0.6,
            max_cost_growth_hour: 0.20,
            cost_growth_soft: 0.15,
            cooldown_ms: 60_000,
        }
    }
}

impl Limits {
    /// Refuses limits looser than the defaults, or soft limits past their
    /// hard ones, naming the field.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let d = Limits::default();
        let looser = |field: &'static str, allowed: String| Err((field, allowed));
        if self.terminations_per_node_minute > d.terminations_per_node_minute {
            return looser("terminations_per_node_minute", "at most 100".into());
        }
        if self.terminations_soft > self.terminations_per_node_minute {
            return looser(
                "terminations_soft",
                "at most terminations_per_node_minute".into(),
            );
        }
        if self.failovers_per_hour > d.failovers_per_hour {
            return looser("failovers_per_hour", "at most 3".into());
        }
        if self.failovers_soft > self.failovers_per_hour {
            return looser("failovers_soft", "at most failovers_per_hour".into());
        }
        if !(d.min_serving_share..=1.0).contains(&self.min_serving_share) {
            return looser("min_serving_share", "0.5 to 1".into());
        }
        if !(self.min_serving_share..=1.0).contains(&self.serving_soft_share) {
            return looser("serving_soft_share", "min_serving_share to 1".into());
        }
        if !(0.0..=d.max_cost_growth_hour).contains(&self.max_cost_growth_hour) {
            return looser("max_cost_growth_hour", "0 to 0.2".into());
        }
        if !(0.0..=self.max_cost_growth_hour).contains(&self.cost_growth_soft) {
            return looser("cost_growth_soft", "0 to max_cost_growth_hour".into());
        }
        if self.cooldown_ms < d.cooldown_ms {
            return looser("cooldown_ms", "at least 60000".into());
        }
        Ok(())
    }
}

/// The guardrails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guardrail {
    /// `dwcp autopilot pause`: nothing at all.
    KillSwitch,
    /// Sandboxes stopped on one node in a minute.
    Terminations,
    /// Region failovers in an hour.
    Failovers,
    /// Share of nodes serving afterwards.
    NodesServing,
    /// Share of regions serving afterwards.
    RegionsServing,
    /// Cost an hour added by scaling in an hour, as a share.
    CostGrowth,
    /// Voters of the store serving afterwards: a majority, always.
    Quorum,
    /// Another action runs on the same target.
    TargetBusy,
    /// The target rests after its last action.
    Cooldown,
}

impl Guardrail {
    pub fn as_str(self) -> &'static str {
        match self {
            Guardrail::KillSwitch => "kill_switch",
            Guardrail::Terminations => "terminations",
            Guardrail::Failovers => "failovers",
            Guardrail::NodesServing => "nodes_serving",
            Guardrail::RegionsServing => "regions_serving",
            Guardrail::CostGrowth => "cost_growth",
            Guardrail::Quorum => "quorum",
            Guardrail::TargetBusy => "target_busy",
            Guardrail::Cooldown => "cooldown",
        }
    }
}

impl fmt::Display for Guardrail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// Past the soft limit: a person approves.
    Soft,
    /// Past the hard limit: refused.
    Breach,
}

/// One guardrail's check of one action, with the values it compared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub guardrail: Guardrail,
    /// What it measured, counting the action (after it, for floors).
    pub value: f64,
    pub soft: f64,
    pub limit: f64,
    pub verdict: Verdict,
}

/// Every guardrail's check of one action.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardReport {
    pub checks: Vec<Check>,
}

impl GuardReport {
    /// The worst verdict.
    pub fn verdict(&self) -> Verdict {
        self.checks
            .iter()
            .map(|c| c.verdict)
            .max()
            .unwrap_or(Verdict::Pass)
    }

    /// The first check that refused, if one did.
    pub fn breach(&self) -> Option<&Check> {
        self.checks.iter().find(|c| c.verdict == Verdict::Breach)
    }

    /// The checks past their soft limit.
    pub fn soft(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.verdict == Verdict::Soft)
    }
}

/// Everything a guardrail reads besides the action.
#[derive(Clone, Copy, Debug)]
pub struct GuardInput<'a> {
    pub view: &'a ClusterView,
    pub ledger: &'a Ledger,
    pub controls: &'a Controls,
    pub limits: &'a Limits,
    /// The cool-down of the rule that chose the action (at least the
    /// limits' own).
    pub cooldown_ms: u64,
    pub now_ms: u64,
}

/// Checks `action` against every guardrail.
pub fn check(action: &Action, input: &GuardInput<'_>) -> GuardReport {
    let limits = input.limits;
    let mut checks = Vec::with_capacity(9);
    let flag = |on: bool| if on { 1.0 } else { 0.0 };

    // The kill switch.
    checks.push(ceiling(
        Guardrail::KillSwitch,
        flag(input.controls.paused),
        0.0,
        0.0,
    ));

    // One action per target, then its cool-down.
    let target = action.target();
    checks.push(ceiling(
        Guardrail::TargetBusy,
        flag(input.ledger.running_on(&target).is_some()),
        0.0,
        0.0,
    ));
    let cooldown_ms = input.cooldown_ms.max(limits.cooldown_ms);
    let rested_ms = input
        .ledger
        .last_on(&target)
        .map_or(u64::MAX, |at| input.now_ms.saturating_sub(at));
    checks.push(Check {
        guardrail: Guardrail::Cooldown,
        value: rested_ms.min(cooldown_ms.saturating_mul(10)) as f64,
        soft: cooldown_ms as f64,
        limit: cooldown_ms as f64,
        verdict: if rested_ms < cooldown_ms {
            Verdict::Breach
        } else {
            Verdict::Pass
        },
    });

    // Terminations on the node it stops sandboxes on.
    if let Some(node) = terminated_node(action) {
        let value = input.ledger.terminations_last_minute(node, input.now_ms)
            + u64::from(action.terminations_on(node));
        checks.push(ceiling(
            Guardrail::Terminations,
            value as f64,
            limits.terminations_soft as f64,
            limits.terminations_per_node_minute as f64,
        ));
    }

    if matches!(action, Action::Failover { .. }) {
        let value = input.ledger.failovers_last_hour(input.now_ms) + 1;
        checks.push(ceiling(
            Guardrail::Failovers,
            value as f64,
            limits.failovers_soft as f64,
            limits.failovers_per_hour as f64,
        ));
    }

    // Floors: only an action that takes something out of service is held
    // to them (moving work off a dead node must stay possible however few
    // are left).
    let after = input.view.after(action);
    let (now_nodes, _) = input.view.serving_nodes();
    let (after_nodes, all_nodes) = after.serving_nodes();
    if after_nodes < now_nodes {
        checks.push(floor(
            Guardrail::NodesServing,
            share(after_nodes, all_nodes),
            limits.serving_soft_share,
            limits.min_serving_share,
        ));
        let (voters_serving, voters) = after.serving_voters();
        let (voters_now, _) = input.view.serving_voters();
        if voters_serving < voters_now {
            // A majority of voters must stay untouched; below it is a
            // breach whatever the soft limits say.
            let majority = (voters / 2 + 1) as f64;
            checks.push(floor(
                Guardrail::Quorum,
                voters_serving as f64,
                majority,
                majority,
            ));
        }
    }
    let (now_regions, _) = input.view.serving_regions();
    let (after_regions, all_regions) = after.serving_regions();
    if after_regions < now_regions {
        checks.push(floor(
            Guardrail::RegionsServing,
            share(after_regions, all_regions),
            limits.serving_soft_share,
            limits.min_serving_share,
        ));
    }

    // Cost: what scaling added in the hour, this included, over the cost
    // an hour ago.
    let added_now = after.cost_per_hour - input.view.cost_per_hour;
    if added_now > 0.0 {
        let added_hour = input.ledger.cost_added_last_hour(input.now_ms);
        let base = (input.view.cost_per_hour - added_hour).max(f64::MIN_POSITIVE);
        checks.push(ceiling(
            Guardrail::CostGrowth,
            (added_hour + added_now) / base,
            limits.cost_growth_soft,
            limits.max_cost_growth_hour,
        ));
    }

    // Notifying is never refused for a floor or a rate it cannot move;
    // the checks above do not apply to it but the switch and target do.
    if action.class() == ActionClass::Notify {
        checks.retain(|c| {
            matches!(
                c.guardrail,
                Guardrail::KillSwitch | Guardrail::TargetBusy | Guardrail::Cooldown
            )
        });
    }
    GuardReport { checks }
}

fn terminated_node(action: &Action) -> Option<&str> {
    match action {
        Action::RestartPool { node, .. } | Action::Drain { node, .. } => Some(node),
        _ => None,
    }
}

fn share(part: usize, all: usize) -> f64 {
    if all == 0 {
        1.0
    } else {
        part as f64 / all as f64
    }
}

/// A check where more is worse.
fn ceiling(guardrail: Guardrail, value: f64, soft: f64, limit: f64) -> Check {
    judged(guardrail, value, soft, limit, |value, bound| value > bound)
}

/// A check where less is worse.
fn floor(guardrail: Guardrail, value: f64, soft: f64, limit: f64) -> Check {
    judged(guardrail, value, soft, limit, |value, bound| value < bound)
}

/// A check whose value is judged against its limit, then its soft limit,
/// by `worse` (the one thing a ceiling and a floor differ in).
fn judged(
    guardrail: Guardrail,
    value: f64,
    soft: f64,
    limit: f64,
    worse: fn(f64, f64) -> bool,
) -> Check {
    let verdict = if worse(value, limit) {
        Verdict::Breach
    } else if worse(value, soft) {
        Verdict::Soft
    } else {
        Verdict::Pass
    };
    Check {
        guardrail,
        value,
        soft,
        limit,
        verdict,
    }
}
