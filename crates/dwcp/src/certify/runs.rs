//! The runs a full certification makes of DWCP's own benchmarks and
//! experiments, judged by `figures.rs`: the planet simulation, the density
//! of a dense `dwcp up` node, and one chaos experiment of the autopilot's
//! suite on the scratch cluster.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use super::figures;
use super::probes::Found;
use crate::chaos::{catalog, engine, live::Live, verdict::Objective};

/// Regions of the planet simulation a certification runs: the first 20 of
/// topologies/planet-120.toml (`dwcp sim planet --quick --regions 20`,
/// seconds in a release build; the 120 take minutes).
pub const PLANET_REGIONS: usize = 20;

/// The chaos experiment a certification runs: a failing canary at 10 %,
/// which the rollout's own analysis must abort without anyone's help.
pub const CHAOS_EXPERIMENT: &str = "bad-canary";

/// `dwcp sim planet --quick --regions 20 --seed 1`: its report.
pub async fn planet(found: &mut Found, reports: &mut Vec<(String, Value)>) -> Result<()> {
    crate::cli::progress::line(format!(
        "[certify] the planet simulation ({PLANET_REGIONS} regions, virtual time)"
    ));
    let report =
        tokio::task::spawn_blocking(|| crate::sim::planet_quick(PLANET_REGIONS, 1)).await??;
    let json = serde_json::to_value(&report)?;
    found.extend(figures::planet(&json));
    reports.push((
        format!("dwcp sim planet --quick --regions {PLANET_REGIONS}, run now"),
        json,
    ));
    Ok(())
}

/// `dwcp bench density --quick`: its report.
pub async fn density(found: &mut Found, reports: &mut Vec<(String, Value)>) -> Result<()> {
    crate::cli::progress::line("[certify] density: a dwcp up --profile dense node filled");
    let report = tokio::task::spawn_blocking(|| crate::bench::density::run(true, None)).await??;
    let json = serde_json::to_value(&report)?;
    found.extend(figures::density(&json));
    reports.push(("dwcp bench density --quick, run now".into(), json));
    Ok(())
}

/// [`CHAOS_EXPERIMENT`] once against the cluster at `api` (its load, the
/// fault held 10 s, the way back watched).
pub async fn chaos(api: &str, admin: &str, found: &mut Found) -> Result<()> {
    crate::cli::progress::line(format!(
        "[certify] chaos: {CHAOS_EXPERIMENT} under a steady load"
    ));
    let say = |what: &str| crate::cli::progress::line(format!("[certify] chaos: {what}"));
    let experiment = catalog::select(&[CHAOS_EXPERIMENT.to_string()])
        .map_err(anyhow::Error::msg)?
        .into_iter()
        .next()
        .context("the chaos catalog has no bad-canary")?;
    let mut live = Live::attach(api, admin, 1, &say).await?;
    let run = engine::run(
        &mut live,
        &experiment,
        1,
        &Objective::DEFAULT,
        &engine::Timing::new(Duration::from_secs(10)),
        &say,
    )
    .await;
    live.finish();
    found.insert("reliability.chaos.bad_canary", figures::chaos(&run?));
    Ok(())
}

/// The benchmark reports given with `--bench-report`.
pub fn read_reports(files: &[std::path::PathBuf]) -> Result<Vec<(String, Value)>> {
    files
        .iter()
        .map(|f| {
            let bytes =
                std::fs::read(f).with_context(|| format!("--bench-report {}", f.display()))?;
            let json: Value = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "--bench-report {}: not a benchmark's JSON (dwcp bench NAME --json)",
                    f.display()
                )
            })?;
            anyhow::ensure!(
                json["bench"].is_string() && json["series"].is_array(),
                "--bench-report {}: no `bench` and `series` (dwcp bench NAME --json writes them)",
                f.display()
            );
            Ok((f.display().to_string(), json))
        })
        .collect()
}
