//! The autopilot's benchmarks: `dwcp bench nab` (detection, scored by
//! NAB's rules) and `dwcp bench forecast` (forecasts against seasonal
//! naive), both on a directory laid out like NAB's repository, and `dwcp
//! bench autopilot` (`suite.rs`: the chaos suite on real processes), and
//! `dwcp bench predict` (`predict.rs`: the failure predictor on simulated
//! faults), and `dwcp bench rca` (`rca.rs`: root-cause ranking on
//! injected faults).

mod corpus;
pub mod forecast;
pub mod nab;
pub mod predict;
pub mod rca;
pub mod suite;

use std::path::{Path, PathBuf};

/// The flags `dwcp bench nab` and `dwcp bench forecast` take.
#[derive(clap::Args)]
pub struct AutopilotArgs {
    /// nab, forecast: a directory laid out like NAB's repository
    /// (data/<category>/*.csv, labels/combined_windows.json, optionally
    /// profiles.json, reference-scores.json and results/numenta/)
    /// [default: ../shared/data/nab from the repository root]
    #[arg(long = "nab", value_name = "DIR", env = "DWCP_NAB")]
    dir: Option<PathBuf>,
    /// nab: also write the results in NAB's layout, <DIR>/dwcp/<category>/dwcp_<file>.csv.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// autopilot: runs of each experiment, with seeds 1..=N.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub seeds: u32,
    /// autopilot: how long each fault stays in force [default: 20s, --quick 10s].
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub hold: Option<std::time::Duration>,
}

impl AutopilotArgs {
    /// `--nab`, or `../shared/data/nab` from the repository root this
    /// binary was built in; made absolute when it exists (errors name it
    /// as given otherwise).
    fn nab_dir(&self) -> PathBuf {
        let dir = self.dir.clone().unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nab")
        });
        dir.canonicalize().unwrap_or(dir)
    }
}
