//! The report every benchmark prints: DESIGN.md's JSON shape and a table.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in picoseconds so that batched sub-nanosecond
/// averages keep their precision; they are reported in nanoseconds.
const PS_PER_NS: f64 = 1000.0;

#[derive(Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
}

impl Machine {
    pub fn this() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
        }
    }
}

#[derive(Serialize)]
pub struct Series {
    pub name: String,
    pub unit: &'static str,
    pub samples: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p90: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p999: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    pub baseline: Option<String>,
    pub ratio: Option<f64>,
    /// A value series where less is better (failures), whatever its unit.
    #[serde(skip)]
    fewer_is_better: bool,
}

impl Series {
    /// A latency series from a histogram of picoseconds.
    pub fn latency(name: &str, hist: &Histogram<u64>, baseline: Option<&str>) -> Series {
        let q = |q: f64| Some(hist.value_at_quantile(q) as f64 / PS_PER_NS);
        Series {
            name: name.into(),
            unit: "ns",
            samples: hist.len(),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: Some(hist.max() as f64 / PS_PER_NS),
            value: None,
            baseline: baseline.map(Into::into),
            ratio: None,
            fewer_is_better: false,
        }
    }

    /// A throughput, count or size series.
    pub fn value(
        name: &str,
        unit: &'static str,
        value: f64,
        samples: u64,
        baseline: Option<&str>,
    ) -> Series {
        Series {
            name: name.into(),
            unit,
            samples,
            p50: None,
            p90: None,
            p99: None,
            p999: None,
            max: None,
            value: Some(value),
            baseline: baseline.map(Into::into),
            ratio: None,
            fewer_is_better: false,
        }
    }

    /// Marks a value series where less is better (failed requests), so
    /// that its ratio is the baseline's value ÷ this value.
    pub fn fewer_is_better(mut self) -> Series {
        self.fewer_is_better = true;
        self
    }

    fn lower_is_better(&self) -> bool {
        self.fewer_is_better || matches!(self.unit, "ns" | "bytes")
    }

    fn figure(&self) -> Option<f64> {
        self.p50.or(self.value)
    }
}

#[derive(Serialize)]
pub struct Report {
    pub bench: String,
    pub machine: Machine,
    pub config: serde_json::Value,
    pub series: Vec<Series>,
    /// What the figures mean and where they fall short; also printed.
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(bench: &str, config: serde_json::Value) -> Report {
        Report {
            bench: bench.into(),
            machine: Machine::this(),
            config,
            series: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Ratio of `name` against `other` (how many times better), if both exist.
    pub fn ratio(&self, name: &str, other: &str) -> Option<f64> {
        let this = self.series.iter().find(|s| s.name == name)?;
        let base = self.series.iter().find(|s| s.name == other)?;
        let (t, b) = (this.figure()?, base.figure()?);
        if t == 0.0 || b == 0.0 {
            return None;
        }
        Some(if this.lower_is_better() { b / t } else { t / b })
    }

    /// Fills every series' `ratio` from its baseline.
    pub fn finish(mut self) -> Report {
        let ratios: Vec<Option<f64>> = self
            .series
            .iter()
            .map(|s| s.baseline.as_deref().and_then(|b| self.ratio(&s.name, b)))
            .collect();
        for (s, r) in self.series.iter_mut().zip(ratios) {
            s.ratio = r.map(round3);
        }
        self
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} on {} ({} cores)\n",
            self.bench, self.machine.cpu, self.machine.cores
        );
        let _ = writeln!(
            out,
            "{:<28} {:>6} {:>9} {:>11} {:>11} {:>11} {:>11} {:>11}  {:<22} {:>7}",
            "series", "unit", "samples", "p50", "p90", "p99", "p99.9", "max", "baseline", "ratio"
        );
        let num = |v: Option<f64>| v.map_or(String::new(), fmt_num);
        for s in &self.series {
            let ratio = s.ratio.map_or(String::new(), ratio_cell);
            let base = s.baseline.clone().unwrap_or_default();
            if s.value.is_some() {
                let _ = writeln!(
                    out,
                    "{:<28} {:>6} {:>9} {:>11}  {:<58} {:<22} {:>7}",
                    s.name,
                    s.unit,
                    s.samples,
                    num(s.value),
                    "",
                    base,
                    ratio
                );
            } else {
                let _ = writeln!(
                    out,
                    "{:<28} {:>6} {:>9} {:>11} {:>11} {:>11} {:>11} {:>11}  {:<22} {:>7}",
                    s.name,
                    s.unit,
                    s.samples,
                    num(s.p50),
                    num(s.p90),
                    num(s.p99),
                    num(s.p999),
                    num(s.max),
                    base,
                    ratio
                );
            }
        }
        if self.series.iter().any(|s| s.ratio.is_some()) {
            out.push_str("\nratio: how many times better than the baseline (its p50 ÷ this p50; this value ÷ its value for rates); below 1 it reads `N x worse`\n");
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        out
    }
}

/// A ratio as the table shows it: `5x` (better), `7.69x worse` below 1,
/// so that a result worse than its baseline never reads as a small win.
fn ratio_cell(r: f64) -> String {
    if r > 0.0 && r < 1.0 {
        format!("{}x worse", round3(1.0 / r))
    } else {
        format!("{r}x")
    }
}

/// Rounds to three significant digits, so that small ratios keep meaning.
fn round3(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(2 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

fn fmt_num(v: f64) -> String {
    if v >= 1e6 {
        format!("{v:.0}")
    } else if v >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// A histogram for latencies in picoseconds, up to an hour.
pub fn histogram() -> Histogram<u64> {
    // 3 significant digits over 1 ps .. 3.6e15 ps cannot fail to construct.
    Histogram::new_with_bounds(1, 3_600_000_000_000_000, 3).expect("valid histogram bounds")
}

/// Records `d` in picoseconds.
pub fn record(hist: &mut Histogram<u64>, d: Duration) {
    let ps = u64::try_from(d.as_nanos().saturating_mul(1000)).unwrap_or(u64::MAX);
    hist.saturating_record(ps.max(1));
}

/// Records an average of `d` over `n` operations, in picoseconds.
pub fn record_avg(hist: &mut Histogram<u64>, d: Duration, n: u32) {
    let ps = d.as_nanos().saturating_mul(1000) / u128::from(n.max(1));
    hist.saturating_record(u64::try_from(ps).unwrap_or(u64::MAX).max(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_below_one_reads_worse() {
        assert_eq!(ratio_cell(5.0), "5x");
        assert_eq!(ratio_cell(0.13), "7.69x worse");
        assert_eq!(ratio_cell(1.0), "1x");
    }

    #[test]
    fn ratios_follow_the_direction_of_the_unit() {
        let mut fast = histogram();
        let mut slow = histogram();
        record(&mut fast, Duration::from_micros(2));
        record(&mut slow, Duration::from_micros(10));
        let mut r = Report::new("t", serde_json::json!({}));
        r.series.push(Series::latency("slow", &slow, None));
        r.series.push(Series::latency("fast", &fast, Some("slow")));
        r.series.push(Series::value("few", "ops/s", 100.0, 1, None));
        r.series
            .push(Series::value("many", "ops/s", 400.0, 1, Some("few")));
        r.series
            .push(Series::value("bound", "count", 1000.0, 1, None));
        r.series
            .push(Series::value("failed", "count", 250.0, 1, Some("bound")).fewer_is_better());
        let r = r.finish();
        let ratio = |n: &str| r.series.iter().find(|s| s.name == n).unwrap().ratio;
        assert!((ratio("fast").unwrap() - 5.0).abs() < 0.05);
        assert_eq!(ratio("many"), Some(4.0));
        assert_eq!(ratio("failed"), Some(4.0));
        assert_eq!(ratio("slow"), None);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["series"][0]["baseline"], serde_json::Value::Null);
        assert!(json["series"][2].get("p50").is_none());
    }
}
