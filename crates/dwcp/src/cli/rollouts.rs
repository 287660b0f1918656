//! `dwcp rollout start|status|promote|abort|history`: progressive delivery
//! of a new version of an app, steered from the command line. The rollout
//! controller (run by `dwcp up`) does the stepping; these commands only
//! write the rollout's record and read it back.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use state::{Name, Rollout, Weights};

use crate::cli::client::{self, ApiArgs, Client, app_path};

use crate::cli::table;

/// Roll a new version of an app out in steps, judged against the stable
/// one, and steer it.
///
/// A rollout moves traffic from the deployed (stable) version to a new one
/// by its plan's steps: `set_weight`, `pause`, `analysis` (checks of error
/// rate, latency and the judge's verdicts against a baseline copy of
/// stable given the same share), `region_wave` and `blue_green`. A failed
/// analysis, a timeout or `dwcp rollout abort` puts all traffic back on
/// stable in one store write. See docs/rollouts.md for plans.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp rollout start hello --to 2\n  dwcp rollout start hello --to 2 --plan plan.toml\n  dwcp rollout start hello --to 2 --blue-green /preview/hello\n  dwcp rollout status hello --watch\n  dwcp rollout promote hello\n  dwcp rollout abort hello --reason 'bad checkout'\n  dwcp rollout history hello"
)]
pub struct RolloutArgs {
    #[command(subcommand)]
    command: RolloutCommand,
}

#[derive(clap::Subcommand)]
enum RolloutCommand {
    Start(StartArgs),
    Status(StatusArgs),
    Promote(SteerArgs),
    Abort(AbortArgs),
    History(HistoryArgs),
}

/// Start rolling version VERSION of APP out.
///
/// Without --plan the default plan runs: 1 %, 10 %, 50 %, 100 %, with an
/// analysis between steps (three measurements 10 s apart, judged against
/// the baseline on latency and errors).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp rollout start hello --to 2\n  dwcp rollout start hello --to 2 --plan plan.json\n  dwcp rollout start hello --to 2 --blue-green /preview/hello --hold 5m"
)]
struct StartArgs {
    /// The app.
    app: String,
    /// The version to roll out (`dwcp deploy FILE --name APP --version-only` adds one).
    #[arg(long, value_name = "VERSION")]
    to: u64,
    /// A plan file, TOML or JSON (docs/rollouts.md) [default: 1/10/50/100 % with analyses].
    #[arg(long, value_name = "FILE", conflicts_with = "blue_green")]
    plan: Option<PathBuf>,
    /// Blue-green instead: the new version answers at this path prefix
    /// until `dwcp rollout promote`, then takes all traffic at once.
    #[arg(long, value_name = "PATH")]
    blue_green: Option<String>,
    /// With --blue-green: how long stable stays ready after the switch, when
    /// an abort still switches back at once.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::units::parse_duration)]
    hold: Duration,
    /// The tenant that owns the app.
    #[arg(long, value_name = "T", default_value = "default")]
    tenant: String,
    /// Then follow it until it ends, as `dwcp rollout status --watch`
    /// (exit status 4 if it is aborted).
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this long (exit status 5).
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration, requires = "wait")]
    timeout: Option<Duration>,
    /// Start it though the go-live gate refuses (a production cluster
    /// without a current signed certification): an admin's reason, kept
    /// on the audit record.
    #[arg(long, value_name = "REASON")]
    override_certification: Option<String>,
    /// Print the API's JSON instead of a summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Show an app's latest rollout: step, weights per region, what each
/// version served, and the audit trail's latest entries.
///
/// Exit status: 0 when the rollout succeeded or is still running (without
/// --watch), 4 when it was aborted, 5 when --watch ran past --timeout.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp rollout status hello\n  dwcp rollout status hello --watch\n  dwcp rollout status hello --watch --timeout 10m && echo promoted"
)]
struct StatusArgs {
    /// The app.
    app: String,
    /// Follow it until it ends: on a terminal the status is redrawn in
    /// place every second; otherwise each new step and verdict is printed
    /// as a line (with --json, each new state as one JSON line).
    #[arg(long)]
    watch: bool,
    /// With --watch: give up after this long (exit status 5).
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration, requires = "watch")]
    timeout: Option<Duration>,
    /// The tenant that owns the app.
    #[arg(long, value_name = "T", default_value = "default")]
    tenant: String,
    /// Print the API's JSON instead of a summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// List an app's rollouts (the last 50), newest first, each with its whole
/// audit trail: every step, verdict with its evidence, weight change and
/// operator action, with when and by whom.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp rollout history hello\n  dwcp rollout history hello --json"
)]
struct HistoryArgs {
    /// The app.
    app: String,
    /// The tenant that owns the app.
    #[arg(long, value_name = "T", default_value = "default")]
    tenant: String,
    /// Print the API's JSON instead of the trails.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Skip the running rollout's current pause or analysis.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  dwcp rollout promote hello")]
struct SteerArgs {
    /// The app.
    app: String,
    /// The tenant that owns the app.
    #[arg(long, value_name = "T", default_value = "default")]
    tenant: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// Stop the running rollout at once: all traffic back to stable.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  dwcp rollout abort hello --reason 'checkout errors'")]
struct AbortArgs {
    /// The app.
    app: String,
    /// Why, for the audit trail.
    #[arg(long)]
    reason: Option<String>,
    /// The tenant that owns the app.
    #[arg(long, value_name = "T", default_value = "default")]
    tenant: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// `GET .../rollout` as the API sends it.
#[derive(Debug, Deserialize)]
pub struct Live {
    pub rollout: Rollout,
    pub weights: BTreeMap<String, Weights>,
    pub served: Vec<Served>,
}

#[derive(Debug, Deserialize)]
pub struct Served {
    pub version: u64,
    pub role: String,
    pub requests: u64,
    pub errors: u64,
    pub p99_us: u64,
}

#[derive(Debug, Deserialize)]
struct History {
    rollouts: Vec<Rollout>,
}

#[derive(Serialize)]
struct Start {
    to: u64,
    plan: rollout::Plan,
    #[serde(skip_serializing_if = "Option::is_none")]
    override_certification: Option<String>,
}

#[derive(Serialize)]
struct Abort<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

pub fn run(args: RolloutArgs) -> Result<()> {
    match args.command {
        RolloutCommand::Start(args) => start(args),
        RolloutCommand::Status(args) => status(args),
        RolloutCommand::Promote(args) => steer(&args.tenant, &args.app, &args.api, None),
        RolloutCommand::Abort(args) => {
            let body = Abort {
                reason: args.reason.as_deref(),
            };
            steer(&args.tenant, &args.app, &args.api, Some(body))
        }
        RolloutCommand::History(args) => history(args),
    }
}

/// `GET .../traffic`: the app's recent rate, as the API node sampled it.
#[derive(Debug, Deserialize)]
struct Traffic {
    requests_per_s: f64,
    over_ms: u64,
}

/// A rate measured over less than this is not trusted to size a plan.
const MIN_OBSERVED_MS: u64 = 10_000;

fn start(args: StartArgs) -> Result<()> {
    let tenant = Name::new("--tenant", &args.tenant)?;
    let app = Name::new("APP", &args.app)?;
    // A plan file is checked here, before anything is sent, and again by
    // the API: an invalid plan changes nothing.
    let given = match (&args.plan, &args.blue_green) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("--plan: cannot read {}", file.display()))?;
            Some(
                rollout::Plan::parse(&text)
                    .with_context(|| format!("--plan {}", file.display()))?,
            )
        }
        (None, Some(preview)) => {
            let plan = rollout::Plan::blue_green_plan(preview, args.hold.as_millis() as u64);
            plan.check().context("--blue-green")?;
            Some(plan)
        }
        (None, None) => None,
    };
    let client = Client::new(&args.api)?;
    let base = app_path(&tenant, &app);
    client::block_on(async {
        // The app's rate sizes the default plan and checks a given one;
        // an API that cannot say (an older node) leaves the plan as is.
        let rate = client
            .get::<Traffic>(&format!("{base}/traffic"))
            .await
            .ok()
            .filter(|t| t.over_ms >= MIN_OBSERVED_MS);
        let min_samples = rollout::Thresholds::default().min_samples as u64;
        let plan = match given {
            Some(plan) => {
                for line in sizing_notes(&plan, rate.as_ref(), min_samples) {
                    eprintln!("{line}");
                }
                plan
            }
            None => {
                let (plan, lines) = default_plan(rate.as_ref(), min_samples);
                for line in lines {
                    eprintln!("{line}");
                }
                plan
            }
        };
        let path = format!("{base}/rollouts");
        let live: serde_json::Value = client
            .post(
                &path,
                &Start {
                    to: args.to,
                    plan,
                    override_certification: args.override_certification.clone(),
                },
            )
            .await?;
        if client::json_output(args.json) {
            println!("{live}");
        } else {
            let live: Live = serde_json::from_value(live).context("the API's answer")?;
            let r = &live.rollout;
            println!(
                "started rollout {} of {tenant}/{app}: version {} -> {}{}",
                r.id,
                r.from,
                r.to,
                r.baseline
                    .map(|b| format!(
                        " (judged against baseline version {b}, a copy of {})",
                        r.from
                    ))
                    .unwrap_or_default()
            );
            if !args.wait {
                println!("follow it with: dwcp rollout status {app} --watch");
            }
        }
        if args.wait {
            return follow(
                &client,
                &tenant,
                &app,
                true,
                args.timeout,
                client::json_output(args.json),
            )
            .await;
        }
        Ok(())
    })
}

/// The default plan sized to the app's rate (the classic one when the
/// rate is unknown), and what to tell the operator about it.
fn default_plan(rate: Option<&Traffic>, min_samples: u64) -> (rollout::Plan, Vec<String>) {
    let Some(t) = rate else {
        let plan = rollout::Plan::default_plan();
        let needs = rollout::sizing::min_rate_per_s(&plan, min_samples);
        return (
            plan,
            vec![format!(
                "note: the app's recent traffic is not known yet (the API node samples it each second); the default plan's analyses need about {needs:.0} requests/s to decide"
            )],
        );
    };
    let fit = rollout::sizing::fit_default(t.requests_per_s, min_samples);
    let [a, b, c] = fit.windows_ms.map(|ms| ms / 1000);
    let mut lines = vec![format!(
        "plan: {} %, then 10 %, 50 %, 100 %, with analysis windows of {a} s, {b} s and {c} s, sized for the app's ~{:.1} requests/s over the last {} s (the judge needs {min_samples} requests per side)",
        fit.first_weight,
        t.requests_per_s,
        t.over_ms / 1000
    )];
    if !fit.fed {
        lines.extend(shortfall_lines(&fit.plan, t.requests_per_s, min_samples));
    }
    (fit.plan, lines)
}

/// What a given plan needs of the app's traffic, and warnings for the
/// analysis steps the recent rate cannot feed.
fn sizing_notes(plan: &rollout::Plan, rate: Option<&Traffic>, min_samples: u64) -> Vec<String> {
    let needs = rollout::sizing::min_rate_per_s(plan, min_samples);
    if needs == 0.0 {
        return Vec::new();
    }
    let mut lines = vec![if needs.is_finite() {
        format!("this plan's analyses need at least {needs:.1} requests/s to the app to decide")
    } else {
        "warning: an analysis of this plan runs at weight 0: the canary gets no traffic and the judge cannot decide".to_string()
    }];
    if let Some(t) = rate {
        lines.extend(shortfall_lines(plan, t.requests_per_s, min_samples));
    }
    lines
}

/// One warning per analysis step `rate` cannot feed.
fn shortfall_lines(plan: &rollout::Plan, rate: f64, min_samples: u64) -> Vec<String> {
    rollout::sizing::shortfalls(plan, rate, min_samples)
        .iter()
        .map(|n| {
            let fix = match n.window_needed_ms(rate) {
                Some(ms) => format!("set its interval_ms to {ms} or more, raise its weight, or send more traffic"),
                None => "send traffic to the app, or give the step a weight".into(),
            };
            format!(
                "warning: at the app's ~{rate:.1} requests/s, step {} (analysis at {} %, {} s windows) gets ~{:.1} requests per side per window, {:.1} over the {} windows it may take; the judge needs {}, so it will end inconclusive and abort the rollout: {fix}",
                n.step,
                n.weight,
                n.window_ms / 1000,
                n.per_side,
                n.per_side * f64::from(n.windows),
                n.windows,
                n.needed
            )
        })
        .collect()
}

fn status(args: StatusArgs) -> Result<()> {
    let tenant = Name::new("--tenant", &args.tenant)?;
    let app = Name::new("APP", &args.app)?;
    let client = Client::new(&args.api)?;
    let json = client::json_output(args.json);
    client::block_on(follow(
        &client,
        &tenant,
        &app,
        args.watch,
        args.timeout,
        json,
    ))
}

/// How often a watched rollout is read again.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Shows the app's latest rollout once, or (`watch`) until it ends: on a
/// terminal redrawn in place, otherwise its new trail entries as lines
/// (with `json`, each new state as a JSON line). Ends in an [`Outcome`]
/// when the rollout was aborted or the wait timed out.
async fn follow(
    client: &Client,
    tenant: &Name,
    app: &Name,
    watch: bool,
    timeout: Option<Duration>,
    json: bool,
) -> Result<()> {
    use std::io::{IsTerminal, Write};
    let path = format!("{}/rollout", app_path(tenant, app));
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    let terminal = std::io::stdout().is_terminal();
    let (mut drawn, mut trail_seen, mut last_raw) = (0usize, None::<usize>, None);
    loop {
        let raw = client.get_raw(&path).await?;
        let live: Live = serde_json::from_slice(&raw).context("the API's answer")?;
        let r = &live.rollout;
        let mut out = std::io::stdout().lock();
        if json {
            if last_raw.as_ref() != Some(&raw) {
                writeln!(out, "{}", String::from_utf8_lossy(&raw).trim_end())?;
            }
            last_raw = Some(raw);
        } else if !watch || terminal {
            let text = render(tenant, app, &live);
            if drawn > 0 {
                // Up to where the last frame began, and clear below.
                write!(out, "\x1b[{drawn}A\x1b[J")?;
            }
            write!(out, "{text}")?;
            drawn = text.lines().count();
        } else {
            let seen = trail_seen.unwrap_or_else(|| {
                let _ = writeln!(out, "{}", headline(tenant, app, r));
                0
            });
            for e in r.trail.iter().skip(seen) {
                writeln!(out, "{}  {:<12} {}", clock(e.unix_ms), e.by, e.text)?;
            }
            trail_seen = Some(r.trail.len());
            if !r.active() {
                writeln!(out, "state: {}", state(r))?;
            }
        }
        out.flush()?;
        drop(out);
        if let rollout::Status::Aborted { reason } = &r.progress.status {
            return Err(client::Outcome {
                code: client::EXIT_ABORTED,
                message: format!("rollout {} of {tenant}/{app} was aborted: {reason}", r.id),
            }
            .into());
        }
        if !watch || !r.active() {
            return Ok(());
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Err(client::Outcome {
                code: client::EXIT_TIMED_OUT,
                message: format!(
                    "rollout {} of {tenant}/{app} is still running after {:.0} s; it goes on (dwcp rollout abort {app} stops it)",
                    r.id,
                    timeout.unwrap_or_default().as_secs_f64()
                ),
            }
            .into());
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

fn steer(tenant: &str, app: &str, api: &ApiArgs, abort: Option<Abort<'_>>) -> Result<()> {
    let tenant = Name::new("--tenant", tenant)?;
    let app = Name::new("APP", app)?;
    let client = Client::new(api)?;
    let base = app_path(&tenant, &app);
    let live: Live = client::block_on(async {
        match &abort {
            Some(body) => client.post(&format!("{base}/rollout/abort"), body).await,
            None => client.post(&format!("{base}/rollout/promote"), &()).await,
        }
    })?;
    let r = &live.rollout;
    match abort {
        Some(_) => println!(
            "aborted rollout {} of {tenant}/{app}: all traffic is back on version {}",
            r.id, r.from
        ),
        None => println!(
            "asked rollout {} of {tenant}/{app} to skip its current step ({})",
            r.id,
            step_name(r)
        ),
    }
    Ok(())
}

fn history(args: HistoryArgs) -> Result<()> {
    let tenant = Name::new("--tenant", &args.tenant)?;
    let app = Name::new("APP", &args.app)?;
    let client = Client::new(&args.api)?;
    let path = format!("{}/rollouts", app_path(&tenant, &app));
    Ok(client::block_on(client.print(
        &path,
        args.json,
        |h: &History| {
            let mut out = String::new();
            for r in &h.rollouts {
                out.push_str(&format!(
                    "rollout {}: version {} -> {}: {}\n",
                    r.id,
                    r.from,
                    r.to,
                    state(r)
                ));
                for e in &r.trail {
                    out.push_str(&format!(
                        "  {}  {:<12} {}\n",
                        clock(e.unix_ms),
                        e.by,
                        e.text
                    ));
                }
            }
            if out.is_empty() {
                out = format!("{tenant}/{app} has had no rollout\n");
            }
            out
        },
    ))?)
}

/// `rollout N of T/A: version F -> T (baseline B)`.
fn headline(tenant: &Name, app: &Name, r: &Rollout) -> String {
    format!(
        "rollout {} of {tenant}/{app}: version {} -> {}{}",
        r.id,
        r.from,
        r.to,
        r.baseline
            .map(|b| format!(" (baseline {b})"))
            .unwrap_or_default()
    )
}

/// The latest rollout as `status` prints it.
fn render(tenant: &Name, app: &Name, live: &Live) -> String {
    let r = &live.rollout;
    let mut out = format!("{}\n", headline(tenant, app, r));
    out.push_str(&format!("state: {}\n", state(r)));
    out.push_str(&format!(
        "{} {} of {} ({}){}\n",
        if r.active() {
            "step: "
        } else {
            "ended at step"
        },
        r.progress.shown_step(&r.plan),
        r.plan.steps.len(),
        step_name(r),
        r.plan
            .waves()
            .map(|w| format!(", wave {} of {}", r.progress.wave + 1, w.len()))
            .unwrap_or_default()
    ));
    let elapsed = r
        .finished_unix_ms
        .unwrap_or_else(cluster::unix_now_ms)
        .saturating_sub(r.started_unix_ms);
    out.push_str(&format!("time:  {:.1} s\n\n", elapsed as f64 / 1000.0));
    let rows: Vec<Vec<String>> = live
        .weights
        .iter()
        .map(|(region, w)| {
            vec![
                region.clone(),
                format!("{} %", w.stable),
                format!("{} %", w.baseline),
                format!("{} %", w.canary),
            ]
        })
        .collect();
    out.push_str(&table::render(
        &["REGION", "STABLE", "BASELINE", "CANARY"],
        &rows,
    ));
    out.push('\n');
    let rows: Vec<Vec<String>> = live
        .served
        .iter()
        .map(|s| {
            vec![
                s.version.to_string(),
                s.role.clone(),
                s.requests.to_string(),
                s.errors.to_string(),
                format!("{:.2} ms", s.p99_us as f64 / 1000.0),
            ]
        })
        .collect();
    out.push_str(&table::render(
        &["VERSION", "ROLE", "REQUESTS", "ERRORS", "P99"],
        &rows,
    ));
    out.push_str("\nlatest of the audit trail (dwcp rollout history for all):\n");
    for e in r.trail.iter().rev().take(8).rev() {
        out.push_str(&format!(
            "  {}  {:<12} {}\n",
            clock(e.unix_ms),
            e.by,
            e.text
        ));
    }
    out
}

fn state(r: &Rollout) -> String {
    match &r.progress.status {
        rollout::Status::Progressing => "progressing".into(),
        rollout::Status::Paused => "paused until promoted (dwcp rollout promote)".into(),
        rollout::Status::Succeeded => format!("succeeded: version {} is deployed", r.to),
        rollout::Status::Aborted { reason } => format!("aborted: {reason}"),
    }
}

fn step_name(r: &Rollout) -> String {
    match r.plan.steps.get(r.progress.step) {
        None => "done".into(),
        Some(rollout::Step::SetWeight { weight }) => format!("set_weight {weight}"),
        Some(rollout::Step::Pause { duration_ms: None }) => "pause until promoted".into(),
        Some(rollout::Step::Pause {
            duration_ms: Some(ms),
        }) => format!("pause {:.1} s", *ms as f64 / 1000.0),
        Some(rollout::Step::Analysis(a)) => format!(
            "analysis, measurement {} of {}",
            r.progress.shown_measurement(a.count),
            a.count
        ),
        Some(rollout::Step::RegionWave { .. }) => "region_wave".into(),
        Some(rollout::Step::BlueGreen { preview_route }) => {
            format!("blue_green preview at {preview_route}")
        }
    }
}

/// `HH:MM:SS.mmm` UTC of a Unix time in ms.
pub fn clock(unix_ms: u64) -> String {
    let s = unix_ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        unix_ms % 1000
    )
}
