//! `dwcp bench NAME`: benchmarks that measure DWCP beside a baseline in the
//! same run and report percentiles from `hdrhistogram`.

mod autopilot;
pub(crate) mod backup;
mod connections;
mod control;
pub(crate) mod density;
pub(crate) mod gateway;
mod microvm;
mod microvm_gateway;
mod ops;
mod planet;
pub(crate) mod processes;
pub(crate) mod report;
pub(crate) mod rollout;
pub(crate) mod scheduler;
mod startup;

use anyhow::Result;

/// Run a benchmark with its baseline and print its figures.
///
/// Every benchmark measures its baseline in the same run and reports the
/// ratio (how many times better than the baseline). Latency percentiles come
/// from hdrhistogram; progress goes to stderr.
#[derive(clap::Args)]
#[command(
    after_help = "Benchmarks:\n  startup  the gateway's per-request cold start (ColdPool::invoke) and warm call,\n           fresh sandboxes per second per core with the preparation counted,\n           1 MiB data segments; baselines: wasmtime's default configuration\n           and wasmtime tuned by its documentation\n  density  live sandboxes one `dwcp up --profile dense` node holds for a\n           keep-alive app and the resident memory each costs; baselines:\n           wasmtime laid out like for like (same slots, a store each) and\n           wasmtime's default configuration\n  control  commit latency, throughput and failover (kill -9 of the leader, a\n           `dwcp up` process) of a 3-node Raft cluster over mutual TLS;\n           baseline: the same writes into one redb file, synced\n  scheduler  sandboxes placed per second on one core (10,000 nodes,\n             1,000,000 sandboxes) and a re-plan after a node failure;\n             baseline: a naive scheduler that scans every node per replica\n  gateway  HTTP requests per second through the node's gateway running\n           examples/wagi/hello.wat, a fresh sandbox per request (cold) and a\n           warm pool, and their latency at half that rate; load from a\n           separate process on 32 keep-alive connections (both share the\n           cores); baseline: a plain hyper server answering the same text.\n           Goals: cold >= 50 % of the baseline's rate, cold p99 <= 1 ms\n  rollout  a bad canary (10 %, every request fails) under HTTP load at the\n           gateways of 3 `dwcp up` processes: first bad request to the\n           rollout controller's abort verdict (`detect`), verdict to every\n           gateway on stable (`rollback`), failed requests per 10,000 in\n           between; baselines: the earliest verdict the plan allows, a\n           redeploy back to stable, and what the canary weight allows.\n           Goal: p99 <= 1 s\n  ops      API latency (GET /api/v1/apps) while 1,000 dashboard clients hold\n           live event streams, and the node's memory per stream; baselines:\n           the same requests with no stream, and memory per idle API\n           connection\n  failover  region failover on 3 one-node regions of `dwcp up --topology`\n           processes: Paris killed (SIGKILL) and restarted, cycle after cycle;\n           kill to its replicas running in Dublin and Frankfurt, and restart\n           to the load back; baseline: kill to gossip judging it down\n  nab      the autopilot's anomaly detector on the Numenta Anomaly Benchmark\n           (--nab DIR, every series there, point by point), scored by its\n           Rust NAB scorer: standard / low-FP / low-FN, points per second,\n           memory per series; baselines: Numenta HTM's stored results\n           re-scored, and NAB's windowed Gaussian run in the same run.\n           Goals on the shared series: 77 / 68 / 82\n  forecast  the autopilot's forecasts, 5 minutes to 24 hours ahead, on the\n           metric-like NAB series under --nab and seeded synthetic request\n           rate, live sandboxes and memory: rolling-origin MAE, interval\n           coverage; baseline: seasonal naive (same time yesterday) at the\n           same origins. Goal: MASE < 1 on every series\n  autopilot  the chaos suite (dwcp chaos: 23 kinds of fault) on 3 `dwcp up`\n           processes, each experiment with --seeds N (default 3; --quick:\n           4 experiments, 1 seed): autonomy, mttr, availability of a steady\n           client load, false detections; with the act loop also guardrail\n           breaches, harmful and false actions, approvals asked. Baseline:\n           the same faults with the autopilot paused (kill switch), same run.\n           Goals: autonomy >= 0.98, mttr p50 <= 8 s, p99 <= 30 s\n  predict  the autopilot's failure predictor (the leader's Predictor) on\n           simulated signals of 3 nodes in virtual time (lab variant): one\n           gradual fault a run (slots, memory, disk, a version's errors or\n           latency, a node slowing then dying, load past capacity), each\n           with several seeds, and as many healthy runs: recall, precision,\n           false alarms per node-day, lead time; baseline: a static alert\n           at 90 % of each limit on the same signals. Goals: recall and\n           precision >= 0.9, median lead >= 5 min, <= 1 false alarm per\n           node-day\n  rca      the autopilot's root-cause ranking on injected faults (the\n           fault classes of predict, several seeds each, a misleading store\n           change in every run) in a simulated 4-node cluster whose reports\n           go through the real store and sampler (lab variant): Avg@1,\n           Avg@3, Avg@5, early and at the failure; baseline: BARO-style\n           ranking by the largest robust shift since the same onset.\n           Goals: Avg@1 >= 0.8, Avg@5 >= 0.95\n  microvm  the microVM tier: a pooled VM reset and run to exit (cold), a VM\n           created from nothing, a system call through the host shim, and\n           a CPU-bound guest, and HTTP requests per second through the\n           gateway (examples/wagi/hello.c as a microvm app); baselines: the\n           same static ELF as a native process, getpid on the host, the\n           same C app on the wasm tier and a hyper floor. Goals: cold p50\n           <= 15 us, p99 <= 50 us; fresh VM p50 <= 1 ms; compute >= 0.95x\n           native\n  backup   the backup and restore drill on `dwcp up` processes: 100,000\n           registers and 1 GiB of artifacts backed up (`dwcp backup`) while a\n           client writes, restored (`dwcp restore`) and served: RTO, RPO;\n           baseline: copying the node's data directory. Goal: RTO <= 60 s\n\nExamples:\n  dwcp bench startup\n  dwcp bench startup --quick --json\n  dwcp bench density --target 200000\n  dwcp bench scheduler --quick\n  dwcp bench gateway --quick --json\n  dwcp bench rollout --quick\n  dwcp bench ops --json\n  dwcp bench nab --out /tmp/nab-results\n  dwcp bench forecast --json\n  dwcp bench autopilot --quick\n  dwcp bench predict --quick\n  dwcp bench rca --quick\n  dwcp bench microvm --quick\n  dwcp bench backup --json"
)]
pub struct BenchArgs {
    /// Which benchmark: startup, density, control, scheduler, gateway, rollout, ops, failover, nab, forecast, predict, rca, autopilot, microvm or backup.
    name: String,
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// A short run of a few seconds (fewer samples).
    #[arg(long)]
    quick: bool,
    /// density: how many live sandboxes to aim for [default: 1000000, --quick 20000].
    #[arg(long, value_name = "N")]
    target: Option<u32>,
    /// Internal: run one density measurement in this (fresh) process and
    /// print it as JSON, so that every measurement starts from a clean heap.
    #[arg(long, hide = true, value_name = "KIND")]
    worker: Option<String>,
    #[command(flatten)]
    load: gateway::LoadArgs,
    #[command(flatten)]
    autopilot: autopilot::AutopilotArgs,
}

pub fn run(args: BenchArgs) -> Result<()> {
    // A spinner with the elapsed time on a terminal (benches take minutes),
    // the progress lines above it; none in a worker process, which shares
    // its parent's terminal.
    let worker =
        args.worker.is_some() || args.load.worker_url().is_some() || args.load.hold_url().is_some();
    let spinner = (!worker).then(|| {
        crate::cli::progress::Progress::spinner(
            &format!("bench {}", args.name),
            crate::cli::client::json_output(args.json),
        )
    });
    let report = match args.name.as_str() {
        "startup" => startup::run(args.quick)?,
        "control" => control::run(args.quick)?,
        "scheduler" => scheduler::run(args.quick)?,
        "rollout" => rollout::run(args.quick)?,
        "ops" => ops::run(args.quick)?,
        "failover" => planet::run(args.quick)?,
        "nab" => autopilot::nab::run(&args.autopilot)?,
        "forecast" => autopilot::forecast::run(&args.autopilot)?,
        "autopilot" => autopilot::suite::run(
            args.quick,
            if args.quick { 1 } else { args.autopilot.seeds },
            args.autopilot.hold,
        )?,
        "predict" => autopilot::predict::run(args.quick)?,
        "rca" => autopilot::rca::run(args.quick)?,
        "microvm" => microvm::run(args.quick)?,
        "backup" => backup::run(args.quick)?,
        "gateway" => match (args.load.worker_url(), args.load.hold_url()) {
            (Some(url), _) => return gateway::worker(url, &args.load),
            (None, Some(url)) => return connections::worker(url, args.load.connections()),
            (None, None) => gateway::run(args.quick)?,
        },
        "density" => match &args.worker {
            Some(kind) => return density::worker(kind, args.target.unwrap_or(1)),
            None => density::run(args.quick, args.target)?,
        },
        other => anyhow::bail!(
            "unknown benchmark `{other}`; available: startup, density, control, scheduler, gateway, rollout, ops, failover, nab, forecast, predict, rca, autopilot, microvm, backup"
        ),
    };
    drop(spinner);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// Runs `measure` on a two-worker runtime (as many workers as the
/// project's machine has cores), for the benches that drive processes and
/// sockets.
pub(crate) fn on_runtime<T, F: std::future::Future<Output = Result<T>>>(measure: F) -> Result<T> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(measure)
}

/// A progress line on stderr (above the spinner, on a terminal).
pub(crate) fn progress(bench: &str, what: &str) {
    crate::cli::progress::line(format!("[{bench}] {what}"));
}
