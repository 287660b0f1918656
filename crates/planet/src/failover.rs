//! Region failover, decided: pure functions the global tier's leader and
//! every cell's leader run once a second (and the tests run alike).
//!
//! - [`plan`] (the global tier's leader): a region gossip holds down, with
//!   no open failover, is failed over to targets the caller chooses
//!   ([`targets`]: `topology::routing::failover_targets` in thousandths),
//!   automatically while the guardrail's hourly budget lasts and otherwise
//!   held for an operator's approval; a failed region gossip sees healthy
//!   again is marked recovered.
//! - [`extra_replicas`] (each cell's leader): the replicas its region takes
//!   on per app for the failed regions it is a target of — its share of
//!   what the failed region wanted, all of it while the region is down,
//!   then less step by step after it recovers (`guard::share_back`).
//! - [`resize`]: the cell's own replica count of an app from its base (the
//!   count before any failover) and the extra; [`cell_resizes`]: those of
//!   every app of a cell, with the commands that make them (the base is
//!   kept in the register [`base_key`] while a failover adds replicas).
//!
//! Invariant: a failover's load only moves once the global tier has
//! committed it (and its approval): gossip alone never moves anything.

use std::collections::BTreeMap;

use crate::summary::{AppKey, Health};
use crate::topology::guard::{FailoverGuard, HOUR_MS, Verdict, share_back};
use crate::topology::routing::failover_targets;
use crate::topology::{RttModel, Topology};
use state::{Command, Deployment, Name, RegionFailover, State};

/// How load moves back after a region recovers: `steps` equal steps,
/// `step_ms` apart, the first at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failback {
    pub steps: u32,
    pub step_ms: u64,
}

/// The global tier leader's decisions at `now_ms`, from each region's
/// judgement by gossip and the failover records. `choose(failed,
/// healthy)` gives the targets and their shares in thousandths (empty:
/// nowhere to go, and the region is not failed over).
pub fn plan(
    now_ms: u64,
    judged: &BTreeMap<Name, Health>,
    records: &[RegionFailover],
    per_hour: u32,
    choose: impl Fn(&Name, &[Name]) -> Vec<(Name, u32)>,
) -> Vec<Command> {
    let mut guard = FailoverGuard::new(per_hour);
    let mut past: Vec<u64> = records
        .iter()
        .flat_map(|r| {
            let latest = r.approved.then_some(r.declared_ms);
            r.earlier_ms.iter().copied().chain(latest)
        })
        .collect();
    past.sort_unstable();
    for at in past {
        guard.approved(at);
    }
    let latest = |region: &Name| records.iter().find(|r| &r.region == region);
    let open = |region: &Name| latest(region).filter(|r| r.recovered_ms.is_none());
    let healthy: Vec<Name> = judged
        .iter()
        .filter(|(_, h)| **h == Health::Healthy)
        .map(|(name, _)| name.clone())
        .collect();
    let mut commands = Vec::new();
    for (region, health) in judged {
        match (health, open(region)) {
            (Health::Down, None) => {
                let targets = choose(region, &healthy);
                if targets.is_empty() {
                    continue;
                }
                let approved = guard.judge(now_ms) == Verdict::Proceed;
                // The region's earlier failovers of the last hour still
                // count once this record replaces theirs.
                let earlier_ms = latest(region)
                    .map(|old| {
                        let mut times = old.earlier_ms.clone();
                        times.extend(old.approved.then_some(old.declared_ms));
                        times.retain(|&t| now_ms.saturating_sub(t) < HOUR_MS);
                        times
                    })
                    .unwrap_or_default();
                commands.push(Command::PutFailover {
                    failover: RegionFailover {
                        region: region.clone(),
                        declared_ms: now_ms,
                        targets,
                        approved,
                        recovered_ms: None,
                        earlier_ms,
                    },
                });
            }
            (Health::Healthy, Some(record)) => commands.push(Command::PutFailover {
                failover: RegionFailover {
                    recovered_ms: Some(now_ms),
                    ..record.clone()
                },
            }),
            _ => {}
        }
    }
    commands
}

/// The replicas region `me` adds per app at `now_ms` for the approved
/// failovers that name it a target; `wanted_in(failed)` is what each app
/// wanted in the failed region (from the summaries it last gossiped).
pub fn extra_replicas(
    now_ms: u64,
    me: &Name,
    records: &[RegionFailover],
    wanted_in: impl Fn(&Name) -> Vec<(AppKey, u32)>,
    failback: Failback,
) -> BTreeMap<AppKey, u32> {
    let mut extra: BTreeMap<AppKey, u32> = BTreeMap::new();
    for record in records.iter().filter(|r| r.approved) {
        let Some((_, share)) = record.targets.iter().find(|(t, _)| t == me) else {
            continue;
        };
        let still_here = match record.recovered_ms {
            None => 1.0,
            Some(at) => {
                1.0 - share_back(now_ms.saturating_sub(at), failback.steps, failback.step_ms)
            }
        };
        for (app, wanted) in wanted_in(&record.region) {
            let mine = f64::from(wanted) * f64::from(*share) / 1000.0 * still_here;
            // At most `wanted`, so the cast cannot overflow.
            let mine = mine.ceil().clamp(0.0, f64::from(wanted)) as u32;
            if mine > 0 {
                *extra.entry(app).or_default() += mine;
            }
        }
    }
    extra
}

/// The targets of region `failed` and their shares in thousandths
/// (summing to 1000), for [`plan`]'s `choose`: its `count` nearest regions
/// among `healthy` by the model, weighted by spare capacity (`spare[r]`
/// for the topology's region `r`; see
/// [`failover_targets`](crate::topology::routing::failover_targets)).
/// Empty when the topology does not know the region or there is nowhere
/// to go.
pub fn targets(
    topology: &Topology,
    model: &RttModel,
    spare: &[f64],
    failed: &Name,
    healthy: &[Name],
    count: usize,
) -> Vec<(Name, u32)> {
    let Some(failed) = topology.region(failed.as_str()) else {
        return Vec::new();
    };
    let healthy: Vec<usize> = healthy
        .iter()
        .filter_map(|h| topology.region(h.as_str()))
        .collect();
    match failover_targets(model, failed, &healthy, spare, count) {
        Ok(shares) => thousandths(
            shares
                .into_iter()
                .map(|s| (topology.regions[s.region].name.clone(), s.share))
                .collect(),
        ),
        Err(_) => Vec::new(),
    }
}

/// Shares as thousandths summing to exactly 1000 (the last takes the
/// rounding): what a [`RegionFailover`]'s targets hold.
pub fn thousandths(shares: Vec<(Name, f64)>) -> Vec<(Name, u32)> {
    let mut out: Vec<(Name, u32)> = shares
        .into_iter()
        .map(|(name, share)| (name, (share * 1000.0).round().clamp(0.0, 1000.0) as u32))
        .collect();
    let others: u32 = out.iter().rev().skip(1).map(|(_, s)| *s).sum();
    if let Some(last) = out.last_mut() {
        last.1 = 1000u32.saturating_sub(others);
    }
    out
}

/// The register of a cell that keeps an app's replica count from before
/// the failovers that resized it.
pub fn base_key(app: &AppKey) -> String {
    format!("failover-base/{app}")
}

/// One app's deployment in a cell, resized for the failovers that name
/// the cell's region ([`cell_resizes`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Resize {
    pub app: AppKey,
    /// The replicas the cell's region runs now.
    pub count: u32,
    /// The commands, in order: keep the base (when it is new), set the
    /// deployment, and drop the base once it is restored.
    pub commands: Vec<Command>,
}

/// A cell leader's decisions for region `me`: every deployment of the
/// cell's `state` (deployed in `me`) whose count differs from what
/// `extra` (from [`extra_replicas`]) and its kept base call for
/// ([`resize`]), with the commands that get it there.
pub fn cell_resizes(state: &State, me: &Name, extra: &BTreeMap<AppKey, u32>) -> Vec<Resize> {
    state
        .deployments()
        .filter_map(|d| {
            let current = *d.regions.get(me)?;
            let app = AppKey {
                tenant: d.tenant.clone(),
                app: d.app.clone(),
            };
            let base = state
                .register(&base_key(&app))
                .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok());
            let (count, kept) = resize(current, base, extra.get(&app).copied().unwrap_or(0));
            (count != current || kept != base).then(|| Resize {
                commands: resize_commands(d, me, &app, base, count, kept),
                app,
                count,
            })
        })
        .collect()
}

fn resize_commands(
    deployment: &Deployment,
    me: &Name,
    app: &AppKey,
    base: Option<u32>,
    count: u32,
    kept: Option<u32>,
) -> Vec<Command> {
    let mut commands = Vec::new();
    if let Some(kept) = kept
        && base != Some(kept)
    {
        commands.push(Command::Put {
            key: base_key(app),
            value: kept.to_string().into_bytes(),
        });
    }
    let mut regions = deployment.regions.clone();
    regions.insert(me.clone(), count);
    commands.push(Command::SetDeployment {
        tenant: deployment.tenant.clone(),
        app: deployment.app.clone(),
        version: deployment.version,
        regions,
    });
    if kept.is_none()
        && let Some(base) = base
    {
        commands.push(Command::CompareAndSwap {
            key: base_key(app),
            expected: Some(base.to_string().into_bytes()),
            new: None,
        });
    }
    commands
}

/// A cell's replica count of an app: `current` now, `base` the count
/// before the failovers (if any are under way), `extra` what they add.
/// Returns the count to deploy and the base to keep (`None` once no
/// failover adds anything and the base is restored).
pub fn resize(current: u32, base: Option<u32>, extra: u32) -> (u32, Option<u32>) {
    match (extra, base) {
        (0, Some(base)) => (base, None),
        (0, None) => (current, None),
        (extra, base) => {
            let base = base.unwrap_or(current);
            (base.saturating_add(extra), Some(base))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::new("region", s).unwrap()
    }

    fn key(app: &str) -> AppKey {
        AppKey {
            tenant: Name::new("tenant", "default").unwrap(),
            app: Name::new("app", app).unwrap(),
        }
    }

    fn judged(states: &[(&str, Health)]) -> BTreeMap<Name, Health> {
        states.iter().map(|(r, h)| (n(r), *h)).collect()
    }

    fn halves(failed: &Name, healthy: &[Name]) -> Vec<(Name, u32)> {
        let others: Vec<&Name> = healthy.iter().filter(|h| *h != failed).take(2).collect();
        match others.as_slice() {
            [a, b] => vec![((*a).clone(), 500), ((*b).clone(), 500)],
            [a] => vec![((*a).clone(), 1000)],
            _ => vec![],
        }
    }

    fn failovers(commands: Vec<Command>) -> Vec<RegionFailover> {
        commands
            .into_iter()
            .map(|c| match c {
                Command::PutFailover { failover } => failover,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_down_region_fails_over_once_and_recovers_when_healthy() {
        use Health::*;
        let view = judged(&[("a", Healthy), ("b", Healthy), ("c", Down)]);
        let first = failovers(plan(1_000, &view, &[], 2, halves));
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].region, n("c"));
        assert_eq!(first[0].targets, vec![(n("a"), 500), (n("b"), 500)]);
        assert!(first[0].approved);
        // Still down: nothing more. Degraded: not recovered yet.
        assert!(plan(2_000, &view, &first, 2, halves).is_empty());
        let view = judged(&[("a", Healthy), ("b", Healthy), ("c", Degraded)]);
        assert!(plan(3_000, &view, &first, 2, halves).is_empty());
        let view = judged(&[("a", Healthy), ("b", Healthy), ("c", Healthy)]);
        let back = failovers(plan(4_000, &view, &first, 2, halves));
        assert_eq!(back[0].recovered_ms, Some(4_000));
        assert!(plan(5_000, &view, &back, 2, halves).is_empty());
    }

    #[test]
    fn past_the_hourly_budget_a_failover_waits_for_approval() {
        use Health::*;
        let earlier = |region: &str, at: u64| RegionFailover {
            region: n(region),
            declared_ms: at,
            targets: vec![(n("a"), 1000)],
            approved: true,
            recovered_ms: Some(at + 1),
            earlier_ms: vec![],
        };
        let records = [earlier("b", 0), earlier("c", 10)];
        let view = judged(&[("a", Healthy), ("d", Down), ("e", Healthy)]);
        let held = failovers(plan(20, &view, &records, 2, halves));
        assert!(!held[0].approved);
        // An hour after the first, the budget has room again.
        let later = failovers(plan(3_600_000, &view, &records, 2, halves));
        assert!(later[0].approved);
        // Nowhere to go: nothing is declared.
        let alone = judged(&[("d", Down)]);
        assert!(plan(20, &alone, &[], 2, halves).is_empty());
    }

    #[test]
    fn a_region_lost_twice_counts_twice_against_the_hour() {
        use Health::*;
        let view = judged(&[("a", Healthy), ("b", Healthy), ("c", Down)]);
        let first = failovers(plan(1_000, &view, &[], 2, halves));
        let back = RegionFailover {
            recovered_ms: Some(2_000),
            ..first[0].clone()
        };
        // c is lost again: its new record replaces the first but keeps its time.
        let second = failovers(plan(3_000, &view, &[back], 2, halves));
        assert!(second[0].approved);
        assert_eq!(second[0].earlier_ms, vec![1_000]);
        // A third loss in the hour, elsewhere: the budget of two is spent.
        let view = judged(&[("a", Healthy), ("b", Healthy), ("c", Down), ("d", Down)]);
        let third = failovers(plan(4_000, &view, &second, 2, halves));
        assert_eq!(third.len(), 1);
        assert_eq!(third[0].region, n("d"));
        assert!(!third[0].approved);
    }

    #[test]
    fn a_target_takes_its_share_then_gives_it_back_step_by_step() {
        let record = RegionFailover {
            region: n("c"),
            declared_ms: 0,
            targets: vec![(n("a"), 500), (n("b"), 500)],
            approved: true,
            recovered_ms: None,
            earlier_ms: vec![],
        };
        let wanted = |r: &Name| {
            assert_eq!(r, &n("c"));
            vec![(key("shop"), 4), (key("hello"), 1)]
        };
        let back = Failback {
            steps: 2,
            step_ms: 1_000,
        };
        let down = extra_replicas(100, &n("a"), std::slice::from_ref(&record), wanted, back);
        assert_eq!(down[&key("shop")], 2);
        assert_eq!(down[&key("hello")], 1, "a share of one replica rounds up");
        assert!(
            extra_replicas(100, &n("z"), std::slice::from_ref(&record), wanted, back).is_empty()
        );
        let recovered = RegionFailover {
            recovered_ms: Some(10_000),
            ..record.clone()
        };
        let step1 = extra_replicas(
            10_000,
            &n("a"),
            std::slice::from_ref(&recovered),
            wanted,
            back,
        );
        assert_eq!(step1[&key("shop")], 1);
        let done = extra_replicas(11_000, &n("a"), &[recovered], wanted, back);
        assert!(done.is_empty());
        let held = RegionFailover {
            approved: false,
            ..record
        };
        assert!(extra_replicas(100, &n("a"), &[held], wanted, back).is_empty());
    }

    #[test]
    fn shares_in_thousandths_sum_to_a_thousand() {
        let shares = thousandths(vec![
            (n("a"), 1.0 / 3.0),
            (n("b"), 1.0 / 3.0),
            (n("c"), 1.0 / 3.0),
        ]);
        assert_eq!(shares.iter().map(|(_, s)| s).sum::<u32>(), 1000);
        assert_eq!(shares[0].1, 333);
        assert_eq!(shares[2].1, 334);
    }

    #[test]
    fn a_cell_keeps_its_base_while_resized_and_restores_it_after() {
        use state::{Quotas, Region, VersionConfig};
        let (eu, us) = (n("eu"), n("us"));
        let shop = key("shop");
        let mut cell = State::default();
        let setup = [
            Command::PutTenant {
                name: shop.tenant.clone(),
                quotas: Quotas::default(),
            },
            Command::PutRegion {
                region: Region::named(eu.clone()),
            },
            Command::PutRegion {
                region: Region::named(us.clone()),
            },
            Command::CreateApp {
                tenant: shop.tenant.clone(),
                name: shop.app.clone(),
                route: "/shop".into(),
                host: None,
            },
            Command::AddVersion {
                tenant: shop.tenant.clone(),
                app: shop.app.clone(),
                digest: "a".repeat(64),
                config: VersionConfig::default(),
            },
            Command::SetDeployment {
                tenant: shop.tenant.clone(),
                app: shop.app.clone(),
                version: 1,
                regions: BTreeMap::from([(eu.clone(), 2), (us.clone(), 1)]),
            },
        ];
        for c in &setup {
            cell.apply(c).unwrap();
        }
        let apply = |cell: &mut State, resizes: &[Resize]| {
            for c in resizes.iter().flat_map(|r| &r.commands) {
                cell.apply(c).unwrap();
            }
        };
        // Nothing to add: nothing to do.
        assert!(cell_resizes(&cell, &eu, &BTreeMap::new()).is_empty());
        // Three more: the base (2) is kept first, then 5 deployed in eu only.
        let up = cell_resizes(&cell, &eu, &BTreeMap::from([(shop.clone(), 3)]));
        assert_eq!((up.len(), up[0].count), (1, 5));
        assert!(matches!(&up[0].commands[0], Command::Put { key, value }
            if key == &base_key(&shop) && value == b"2"));
        apply(&mut cell, &up);
        let deployed = cell.deployments().next().unwrap().regions.clone();
        assert_eq!(deployed, BTreeMap::from([(eu.clone(), 5), (us.clone(), 1)]));
        // One less: resized from the kept base, which stays as it is.
        let less = cell_resizes(&cell, &eu, &BTreeMap::from([(shop.clone(), 1)]));
        assert_eq!(less[0].count, 3);
        assert_eq!(less[0].commands.len(), 1, "{:?}", less[0].commands);
        apply(&mut cell, &less);
        // Given back: the base is restored and its register dropped.
        let back = cell_resizes(&cell, &eu, &BTreeMap::new());
        assert_eq!(back[0].count, 2);
        apply(&mut cell, &back);
        assert_eq!(cell.register(&base_key(&shop)), None);
        assert!(cell_resizes(&cell, &eu, &BTreeMap::new()).is_empty());
    }

    #[test]
    fn resizing_keeps_the_base_and_restores_it() {
        assert_eq!(resize(1, None, 2), (3, Some(1)));
        assert_eq!(resize(3, Some(1), 1), (2, Some(1)));
        assert_eq!(resize(2, Some(1), 0), (1, None));
        assert_eq!(resize(5, None, 0), (5, None));
    }
}
