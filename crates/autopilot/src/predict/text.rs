//! Numbers as an operator reads them in a prediction's why: a metric's
//! value in its unit, a duration in hours and minutes.

use crate::signal::Metric;

/// `value` of `metric` with its unit: `48.0 MiB`, `2.5 %`, `310 ms`.
pub fn quantity(metric: Metric, value: f64) -> String {
    match metric {
        Metric::MemoryBytes | Metric::DiskBytes => {
            let mib = value / f64::from(1u32 << 20);
            if mib.abs() >= 1024.0 {
                format!("{:.2} GiB", mib / 1024.0)
            } else {
                format!("{mib:.1} MiB")
            }
        }
        Metric::ErrorRatio => format!("{:.2} %", value * 100.0),
        Metric::LatencyP50Ms | Metric::LatencyP99Ms => format!("{value:.0} ms"),
        Metric::RequestRate => format!("{value:.1} requests/s"),
        Metric::Concurrency => format!("{value:.1} in flight"),
        Metric::SilenceS => format!("{value:.0} s"),
        Metric::LiveSandboxes => format!("{value:.0} sandboxes"),
        Metric::ReportingNodes => format!("{value:.0} nodes"),
    }
}

/// `text` cut to at most [`MAX_FINDING_TEXT`] bytes, at a character's
/// boundary: what the store accepts in a finding.
///
/// [`MAX_FINDING_TEXT`]: state::autopilot::MAX_FINDING_TEXT
pub fn clip(mut text: String) -> String {
    let max = state::autopilot::MAX_FINDING_TEXT;
    if text.len() > max {
        let mut at = max;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
    }
    text
}

/// `ms` as `45 s`, `12 min`, `1 h 20 min`, `3 d 4 h`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3_600 => format!("{} min", s / 60),
        3_600..86_400 => match (s / 3_600, s % 3_600 / 60) {
            (h, 0) => format!("{h} h"),
            (h, m) => format!("{h} h {m} min"),
        },
        _ => match (s / 86_400, s % 86_400 / 3_600) {
            (d, 0) => format!("{d} d"),
            (d, h) => format!("{d} d {h} h"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_naturally() {
        assert_eq!(quantity(Metric::DiskBytes, 48.0 * 1048576.0), "48.0 MiB");
        assert_eq!(
            quantity(Metric::MemoryBytes, 3.0 * 1073741824.0),
            "3.00 GiB"
        );
        assert_eq!(quantity(Metric::ErrorRatio, 0.025), "2.50 %");
        assert_eq!(duration(45_000), "45 s");
        assert_eq!(duration(12 * 60_000 + 5_000), "12 min");
        assert_eq!(duration(80 * 60_000), "1 h 20 min");
        assert_eq!(duration(2 * 86_400_000), "2 d");
    }
}
