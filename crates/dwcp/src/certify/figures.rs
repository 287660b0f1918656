//! Criteria read from benchmark reports (DESIGN.md's JSON shape: `dwcp
//! bench NAME --json`, `dwcp sim planet --json`): the benchmarks' own
//! goals, the planet simulation's figures, the density of a `dwcp up`
//! node, and a chaos experiment's run. Pure: the runs that produce the
//! reports are `runs.rs`'s.

use certify::Measurement;
use serde_json::Value;

use crate::chaos::engine::{Resolution, Run};

/// Which statistic of a series a goal reads.
#[derive(Clone, Copy, Debug)]
enum Stat {
    P50,
    P99,
    Value,
}

impl Stat {
    fn of(self, series: &Value) -> Option<f64> {
        let key = match self {
            Stat::P50 => "p50",
            Stat::P99 => "p99",
            Stat::Value => "value",
        };
        series[key].as_f64()
    }
}

/// One goal of a benchmark, as its issue and its notes state it.
struct Goal {
    bench: &'static str,
    text: &'static str,
    series: &'static str,
    stat: Stat,
    /// A ratio goal: divided by this series' statistic.
    over: Option<(&'static str, Stat)>,
    /// Met when the figure is at most the limit (else at least).
    at_most: bool,
    limit: f64,
}

const fn goal(
    bench: &'static str,
    text: &'static str,
    series: &'static str,
    stat: Stat,
    at_most: bool,
    limit: f64,
) -> Goal {
    Goal {
        bench,
        text,
        series,
        stat,
        over: None,
        at_most,
        limit,
    }
}

const fn ratio(mut g: Goal, over: &'static str, stat: Stat) -> Goal {
    g.over = Some((over, stat));
    g
}

use Stat::{P50, P99, Value as V};

/// The goals the benchmarks state (docs/benchmarks.md), latencies in ns as
/// the reports hold them. A goal whose series a report lacks (a `--quick`
/// run, a lab variant) is not judged.
const GOALS: &[Goal] = &[
    goal(
        "scheduler",
        "placements-rate >= 100,000/s",
        "placements-rate",
        V,
        false,
        100_000.0,
    ),
    ratio(
        goal(
            "density",
            "bytes per sandbox >= 1.5x better than wasmtime like for like",
            "wasmtime-like-rss-per-sandbox",
            V,
            false,
            1.5,
        ),
        "rss-per-sandbox",
        V,
    ),
    ratio(
        goal(
            "gateway",
            "gateway-cold-rps >= 50 % of hyper-floor-rps",
            "gateway-cold-rps",
            V,
            false,
            0.5,
        ),
        "hyper-floor-rps",
        V,
    ),
    goal(
        "gateway",
        "gateway-sandbox-start-half p50 <= 2 µs",
        "gateway-sandbox-start-half",
        P50,
        true,
        2e3,
    ),
    goal(
        "gateway",
        "gateway-sandbox-start-half p99 <= 10 µs",
        "gateway-sandbox-start-half",
        P99,
        true,
        10e3,
    ),
    goal(
        "gateway",
        "gateway-sandbox-start-full p50 <= 2 µs",
        "gateway-sandbox-start-full",
        P50,
        true,
        2e3,
    ),
    goal(
        "gateway",
        "gateway-sandbox-start-full p99 <= 10 µs",
        "gateway-sandbox-start-full",
        P99,
        true,
        10e3,
    ),
    goal(
        "gateway",
        "gateway-cold-latency p99 <= 1 ms",
        "gateway-cold-latency",
        P99,
        true,
        1e6,
    ),
    ratio(
        goal(
            "gateway",
            "gateway-http-rps >= 1.5x wasmtime-serve-rps",
            "gateway-http-rps",
            V,
            false,
            1.5,
        ),
        "wasmtime-serve-rps",
        V,
    ),
    goal("rollout", "detect p99 <= 1 s", "detect", P99, true, 1e9),
    goal("rollout", "rollback p99 <= 1 s", "rollback", P99, true, 1e9),
    goal(
        "control",
        "commit-1client p99 <= 2 ms",
        "commit-1client",
        P99,
        true,
        2e6,
    ),
    goal(
        "control",
        "writes-64clients >= 20,000/s",
        "writes-64clients",
        V,
        false,
        20_000.0,
    ),
    goal("control", "failover p99 <= 1 s", "failover", P99, true, 1e9),
    goal(
        "control",
        "handoff p99 <= 50 ms",
        "handoff",
        P99,
        true,
        50e6,
    ),
    goal(
        "control",
        "handoff-failed-writes = 0",
        "handoff-failed-writes",
        V,
        true,
        0.0,
    ),
    ratio(
        goal(
            "sim-planet",
            "global-commit p99 <= 1.2x the modelled quorum round trip",
            "global-commit",
            P99,
            true,
            1.2,
        ),
        "global-model-rtt",
        V,
    ),
    goal(
        "sim-planet",
        "region-commit p99 <= 10 ms",
        "region-commit",
        P99,
        true,
        10e6,
    ),
    goal(
        "sim-planet",
        "crdt-convergence p99 <= 1 s",
        "crdt-convergence",
        P99,
        true,
        1e9,
    ),
    goal(
        "sim-planet",
        "region-failover p99 <= 5 s",
        "region-failover",
        P99,
        true,
        5e9,
    ),
];

/// A goal judged on a report.
#[derive(Clone, Debug, PartialEq)]
pub struct Judged {
    pub bench: String,
    pub goal: &'static str,
    /// The figure as the goal reads it (a latency in ms).
    pub shown: String,
    pub met: bool,
}

fn series<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["series"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
}

fn figure(report: &Value, g: &Goal) -> Option<f64> {
    let value = g.stat.of(series(report, g.series)?)?;
    match g.over {
        None => Some(value),
        Some((over, stat)) => {
            let base = stat.of(series(report, over)?)?;
            (base != 0.0).then(|| value / base)
        }
    }
}

/// Every goal of `report`'s benchmark whose series it holds, judged.
pub fn judge_goals(report: &Value) -> Vec<Judged> {
    let bench = report["bench"].as_str().unwrap_or_default();
    GOALS
        .iter()
        .filter(|g| g.bench == bench)
        .filter_map(|g| {
            let f = figure(report, g)?;
            let shown = match (g.stat, g.over) {
                (P50 | P99, None) => format!("{} ms", certify::criterion::number(f / 1e6)),
                _ => certify::criterion::number(f),
            };
            Some(Judged {
                bench: bench.to_string(),
                goal: g.text,
                shown,
                met: if g.at_most {
                    f <= g.limit
                } else {
                    f >= g.limit
                },
            })
        })
        .collect()
}

/// `performance.benchmarks.goals`: the goals missed over `reports`
/// (where each came from, its JSON).
pub fn goals_measurement(reports: &[(String, Value)]) -> Measurement {
    if reports.is_empty() {
        return Measurement::unmeasured(
            "no benchmark report: run the full certification, or give --bench-report FILE (dwcp bench NAME --json)",
        );
    }
    let (mut judged, mut missed, mut lines) = (0, Vec::new(), Vec::new());
    for (source, report) in reports {
        let goals = judge_goals(report);
        if goals.is_empty() {
            lines.push(format!("{source}: no goal judged"));
        }
        for g in goals {
            judged += 1;
            let figure = g.shown;
            if g.met {
                lines.push(format!("{}: {} ({figure}): met", g.bench, g.goal));
            } else {
                missed.push(format!("{}: {} ({figure})", g.bench, g.goal));
            }
        }
    }
    Measurement::of(
        missed.len() as f64,
        format!(
            "{judged} goals judged over {} reports; missed: {}; {}",
            reports.len(),
            if missed.is_empty() {
                "none".to_string()
            } else {
                missed.join("; ")
            },
            lines.join("; ")
        ),
    )
}

/// The planet simulation's figures (`dwcp sim planet --json`).
pub fn planet(report: &Value) -> Vec<(&'static str, Measurement)> {
    let regions = report["config"]["regions"].as_u64().unwrap_or(0);
    let seed = report["config"]["seed"].as_u64().unwrap_or(0);
    let about = format!("dwcp sim planet, {regions} regions, seed {seed} (virtual time)");
    let p99_ms = |name: &str| {
        series(report, name)
            .and_then(|s| P99.of(s))
            .map(|ns| ns / 1e6)
    };
    let or_missing = |id: &'static str, v: Option<f64>, what: String| {
        (
            id,
            v.map_or_else(
                || Measurement::unmeasured(format!("the simulation reported no {what}")),
                |v| Measurement::of(v, format!("{what}: {about}")),
            ),
        )
    };
    let model_ms = series(report, "global-model-rtt")
        .and_then(|s| V.of(s))
        .map(|ns| ns / 1e6);
    let global = p99_ms("global-commit");
    vec![
        or_missing(
            "scalability.planet.global_commit",
            global.zip(model_ms).map(|(g, m)| g / m),
            format!(
                "global-commit p99 {} ms over the modelled quorum round trip {} ms",
                global.map_or("?".into(), certify::criterion::number),
                model_ms.map_or("?".into(), certify::criterion::number)
            ),
        ),
        or_missing(
            "scalability.planet.region_commit_p99",
            p99_ms("region-commit"),
            "region-commit p99".into(),
        ),
        or_missing(
            "scalability.planet.crdt_p99",
            p99_ms("crdt-convergence"),
            "crdt-convergence p99".into(),
        ),
        or_missing(
            "scalability.planet.region_failover_p99",
            p99_ms("region-failover"),
            format!(
                "region-failover p99 over {} regions lost",
                series(report, "region-failover")
                    .and_then(|s| s["samples"].as_u64())
                    .unwrap_or(0)
            ),
        ),
    ]
}

/// The density of one `dwcp up --profile dense` node (`dwcp bench density
/// --json`).
pub fn density(report: &Value) -> Vec<(&'static str, Measurement)> {
    let target = report["config"]["target"].as_f64().unwrap_or(0.0);
    let value = |name: &str| series(report, name).and_then(|s| V.of(s));
    let live = value("live-sandboxes");
    let (ours, like) = (
        value("rss-per-sandbox"),
        value("wasmtime-like-rss-per-sandbox"),
    );
    vec![
        (
            "scalability.density.live_sandboxes",
            live.map_or_else(
                || Measurement::unmeasured("the density run reported no live-sandboxes"),
                |l| {
                    Measurement::of(
                        l,
                        format!("a dwcp up --profile dense node aiming for {target:.0}, as it reported through GET /api/v1/nodes"),
                    )
                },
            ),
        ),
        (
            "scalability.density.vs_wasmtime",
            match (ours, like) {
                (Some(o), Some(w)) if o > 0.0 => Measurement::of(
                    w / o,
                    format!("resident bytes per live sandbox: dwcp up {o:.0}, wasmtime like for like {w:.0} (same run)"),
                ),
                _ => Measurement::unmeasured("the density run reported no resident bytes per sandbox"),
            },
        ),
    ]
}

/// A chaos experiment's run: 0 when the cluster kept or brought back its
/// objective on its own (no impact, or autonomous), 1 otherwise.
pub fn chaos(run: &Run) -> Measurement {
    let own = matches!(
        run.resolution,
        Resolution::NoImpact | Resolution::Autonomous
    );
    Measurement::of(
        f64::from(u8::from(!own)),
        format!(
            "dwcp chaos run {} (seed {}): {:?}{}; {} of {} requests failed{}",
            run.experiment,
            run.seed,
            run.resolution,
            run.mttr_ms
                .map_or(String::new(), |m| format!(", back in {m} ms")),
            run.failed,
            run.requests,
            run.stopped
                .as_deref()
                .or(run.error.as_deref())
                .map_or(String::new(), |why| format!("; {why}"))
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lat(name: &str, p50: f64, p99: f64) -> Value {
        json!({"name": name, "unit": "ns", "samples": 10, "p50": p50, "p99": p99})
    }

    fn val(name: &str, v: f64) -> Value {
        json!({"name": name, "unit": "count", "samples": 1, "value": v})
    }

    fn verdict(id: &str, m: &Measurement) -> certify::Verdict {
        let def = super::super::catalog::CATALOG
            .iter()
            .find(|d| d.id == id)
            .unwrap();
        certify::judge(&def.criterion(), m, &[], 0)
    }

    /// A report of a scheduler below its goal and of a gateway whose
    /// sandbox starts miss theirs: each missed goal is counted and named;
    /// the criterion fails with its remediation; met goals pass.
    #[test]
    fn a_benchmark_missing_its_goal_fails_the_goals_criterion() {
        let fast = json!({"bench": "scheduler", "series": [val("placements-rate", 1.1e6)]});
        let m = goals_measurement(&[("scheduler run now".into(), fast.clone())]);
        assert_eq!(m.value, Some(0.0), "{}", m.detail);
        let v = verdict("performance.benchmarks.goals", &m);
        assert_eq!(v.status, certify::Status::Pass);

        let slow = json!({"bench": "scheduler", "series": [val("placements-rate", 80_000.0)]});
        let gateway = json!({"bench": "gateway", "series": [
            val("gateway-cold-rps", 20_000.0), val("hyper-floor-rps", 30_000.0),
            lat("gateway-sandbox-start-half", 1.9e3, 82e3),
        ]});
        let m = goals_measurement(&[
            ("a.json".into(), slow),
            ("b.json".into(), gateway),
            ("c.json".into(), json!({"bench": "startup", "series": []})),
        ]);
        assert_eq!(m.value, Some(2.0), "{}", m.detail);
        assert!(
            m.detail.contains("placements-rate >= 100,000/s"),
            "{}",
            m.detail
        );
        assert!(m.detail.contains("sandbox-start-half p99"), "{}", m.detail);
        assert!(m.detail.contains("c.json: no goal judged"), "{}", m.detail);
        let v = verdict("performance.benchmarks.goals", &m);
        assert_eq!(v.status, certify::Status::Fail);
        assert!(
            v.remediation.contains("docs/benchmarks.md"),
            "{}",
            v.remediation
        );
        assert_eq!(goals_measurement(&[]).value, None);
    }

    /// The planet simulation's report: within its goals every planet
    /// criterion passes; a failover past 5 s and a global commit far
    /// beyond its modelled round trip fail theirs.
    #[test]
    fn the_planet_figures_fail_past_their_goals() {
        let report = |failover_p99: f64, global_p99: f64| {
            json!({"bench": "sim-planet", "config": {"regions": 20, "seed": 1}, "series": [
                val("global-model-rtt", 23.5e6),
                lat("global-commit", 26e6, global_p99),
                lat("region-commit", 2e6, 2e6),
                lat("crdt-convergence", 342e6, 646e6),
                lat("region-failover", 4e9, failover_p99),
            ]})
        };
        let status = |r: &Value| -> Vec<(&str, certify::Status)> {
            planet(r)
                .iter()
                .map(|(id, m)| (*id, verdict(id, m).status))
                .collect()
        };
        assert!(
            status(&report(4.5e9, 28e6))
                .iter()
                .all(|(_, s)| *s == certify::Status::Pass),
            "{:?}",
            status(&report(4.5e9, 28e6))
        );
        let failing: Vec<&str> = status(&report(8.6e9, 60e6))
            .into_iter()
            .filter(|(_, s)| *s == certify::Status::Fail)
            .map(|(id, _)| id)
            .collect();
        assert_eq!(
            failing,
            [
                "scalability.planet.global_commit",
                "scalability.planet.region_failover_p99"
            ]
        );
        assert_eq!(planet(&json!({"series": []}))[0].1.value, None);
    }

    /// A dense node that stopped short of its target, or costs more per
    /// sandbox than 1/1.5 of wasmtime's, fails the density criteria.
    #[test]
    fn a_node_packing_too_few_sandboxes_fails_density() {
        let report = |live: f64, ours: f64| {
            json!({"bench": "density", "config": {"target": 20000}, "series": [
                val("live-sandboxes", live),
                val("rss-per-sandbox", ours),
                val("wasmtime-like-rss-per-sandbox", 9037.0),
            ]})
        };
        for (id, m) in density(&report(20_000.0, 5288.0)) {
            assert_eq!(verdict(id, &m).status, certify::Status::Pass, "{id}");
        }
        let statuses: Vec<certify::Status> = density(&report(12_000.0, 7000.0))
            .iter()
            .map(|(id, m)| verdict(id, m).status)
            .collect();
        assert_eq!(statuses, [certify::Status::Fail, certify::Status::Fail]);
    }

    /// A chaos run the cluster did not bring back itself fails.
    #[test]
    fn a_chaos_run_brought_back_only_by_the_restore_fails() {
        let mut run = Run::failed_with("bad-canary", 1, &anyhow::anyhow!("x"), true);
        assert_eq!(chaos(&run).value, Some(1.0));
        run.resolution = Resolution::Autonomous;
        run.mttr_ms = Some(1500);
        let m = chaos(&run);
        assert_eq!(m.value, Some(0.0), "{}", m.detail);
        run.resolution = Resolution::AfterRestore;
        let m = chaos(&run);
        assert_eq!(
            verdict("reliability.chaos.bad_canary", &m).status,
            certify::Status::Fail
        );
    }
}
