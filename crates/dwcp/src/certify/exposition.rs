//! A node's Prometheus histograms as `/metrics` serves them: one family's
//! cumulative buckets, the difference between two scrapes (what a probe's
//! own requests added), and a quantile interpolated within its bucket (as
//! Prometheus's `histogram_quantile`). Pure.

/// Cumulative counts by upper bound in seconds, ascending, `+Inf` last.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Buckets(pub Vec<(f64, f64)>);

/// The buckets of `family` in `text`, summed over every series whose
/// labels hold each of `with` (e.g. `app="shop"`).
pub fn buckets(text: &str, family: &str, with: &[&str]) -> Buckets {
    let prefix = format!("{family}_bucket{{");
    let mut out: Vec<(f64, f64)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let Some((labels, value)) = rest.split_once('}') else {
            continue;
        };
        if !with.iter().all(|w| labels.contains(w)) {
            continue;
        }
        let Some(le) = labels
            .split("le=\"")
            .nth(1)
            .and_then(|l| l.split('"').next())
        else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            match le.parse::<f64>() {
                Ok(v) => v,
                Err(_) => continue,
            }
        };
        let Ok(count) = value.trim().parse::<f64>() else {
            continue;
        };
        match out.iter_mut().find(|(b, _)| *b == le) {
            Some((_, c)) => *c += count,
            None => out.push((le, count)),
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    Buckets(out)
}

impl Buckets {
    /// Observations in all (the `+Inf` bucket's count).
    pub fn count(&self) -> f64 {
        self.0.last().map_or(0.0, |(_, c)| *c)
    }

    /// What was observed since `before` (the same family scraped earlier).
    pub fn since(&self, before: &Buckets) -> Buckets {
        Buckets(
            self.0
                .iter()
                .map(|(le, c)| {
                    let was = before
                        .0
                        .iter()
                        .find(|(b, _)| b == le)
                        .map_or(0.0, |(_, c)| *c);
                    (*le, (c - was).max(0.0))
                })
                .collect(),
        )
    }

    /// The `q` quantile in seconds, linear within its bucket; the highest
    /// finite bound when it falls in `+Inf`; `None` with no observation.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for &(le, cum) in &self.0 {
            if cum >= rank {
                if le.is_infinite() {
                    return Some(lower);
                }
                let within = cum - below;
                let share = if within > 0.0 {
                    (rank - below) / within
                } else {
                    1.0
                };
                return Some(lower + (le - lower) * share);
            }
            (lower, below) = (le, cum);
        }
        Some(lower)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# TYPE dwcp_sandbox_start_seconds histogram
dwcp_sandbox_start_seconds_bucket{le=\"0.000001\"} 10
dwcp_sandbox_start_seconds_bucket{le=\"0.00001\"} 20
dwcp_sandbox_start_seconds_bucket{le=\"0.001\"} 20
dwcp_sandbox_start_seconds_bucket{le=\"+Inf\"} 20
dwcp_sandbox_start_seconds_count 20
dwcp_request_duration_seconds_bucket{tenant=\"default\",app=\"a\",version=\"1\",le=\"0.001\"} 5
dwcp_request_duration_seconds_bucket{tenant=\"default\",app=\"a\",version=\"1\",le=\"+Inf\"} 5
dwcp_request_duration_seconds_bucket{tenant=\"default\",app=\"b\",version=\"1\",le=\"0.001\"} 7
dwcp_request_duration_seconds_bucket{tenant=\"default\",app=\"b\",version=\"1\",le=\"+Inf\"} 9
";

    #[test]
    fn a_family_is_read_summed_over_matching_series_and_differenced() {
        let b = buckets(BEFORE, "dwcp_sandbox_start_seconds", &[]);
        assert_eq!(b.count(), 20.0);
        assert_eq!(b.0[0], (0.000001, 10.0));
        let a = buckets(BEFORE, "dwcp_request_duration_seconds", &["app=\"a\""]);
        assert_eq!(a.0, vec![(0.001, 5.0), (f64::INFINITY, 5.0)]);
        let all = buckets(BEFORE, "dwcp_request_duration_seconds", &[]);
        assert_eq!(all.count(), 14.0);
        // 100 more starts, 99 of them within 1 ms and 1 slower: the
        // difference holds only those, its p99 at the 1 ms bucket's top.
        let after = BEFORE
            .replace("le=\"0.001\"} 20", "le=\"0.001\"} 119")
            .replace("le=\"+Inf\"} 20", "le=\"+Inf\"} 120")
            .replace("le=\"0.00001\"} 20", "le=\"0.00001\"} 60");
        let d = buckets(&after, "dwcp_sandbox_start_seconds", &[]).since(&b);
        assert_eq!(d.count(), 100.0);
        // 40 starts within 10 µs, 59 within 1 ms: the median is the 10th
        // of the 59, interpolated in (10 µs, 1 ms].
        let p50 = d.quantile(0.5).unwrap();
        let want = 0.00001 + (0.001 - 0.00001) * 10.0 / 59.0;
        assert!((p50 - want).abs() < 1e-9, "{p50}");
        let p99 = d.quantile(0.99).unwrap();
        assert!((p99 - 0.001).abs() < 1e-9, "{p99}");
        assert_eq!(Buckets::default().quantile(0.5), None);
    }

    /// The histogram a node really serves (`cluster::exposition`, the
    /// gateway's bounds) reads back: starts of 2 µs and, at the tail,
    /// 400 µs.
    #[test]
    fn a_real_exposition_reads_back_its_quantiles() {
        let mut h = hdrhistogram::Histogram::<u64>::new(2).unwrap();
        for _ in 0..97 {
            h.record(2_000).unwrap();
        }
        for _ in 0..3 {
            h.record(400_000).unwrap();
        }
        let bounds = [1_000u64, 2_500, 10_000, 100_000, 500_000, 1_000_000];
        let mut running = 0;
        let snapshot = cluster::exposition::HistogramSnapshot {
            buckets: bounds
                .iter()
                .map(|&le| {
                    running = h.count_between(0, le).max(running);
                    (le, running)
                })
                .collect(),
            count: h.len(),
            sum_ns: 0,
        };
        let mut out = cluster::exposition::Exposition::default();
        out.family("dwcp_sandbox_start_seconds", "histogram", "starts");
        out.histogram("dwcp_sandbox_start_seconds", &[], &snapshot);
        let b = buckets(&out.into_text(), "dwcp_sandbox_start_seconds", &[]);
        assert_eq!(b.count(), 100.0);
        let p50 = b.quantile(0.5).unwrap();
        assert!((1e-6..=2.5e-6).contains(&p50), "{p50}");
        let p99 = b.quantile(0.99).unwrap();
        assert!((1e-4..=5e-4).contains(&p99), "{p99}");
    }
}
