//! The Prometheus text exposition format (version 0.0.4), written by every
//! part of a node that exposes metrics: the API's `/metrics` (`ops`)
//! writes the control plane's families and hands the same [`Exposition`]
//! to each [`Source`] it was given (the gateway, `node`), so neither knows
//! the other.

use std::fmt::Write as _;

/// Something on this node that adds metric families to `/metrics`.
pub trait Source: Send + Sync {
    /// Writes its families (each started with [`Exposition::family`]).
    fn expose(&self, out: &mut Exposition);
}

/// A histogram as cumulative buckets, the shape Prometheus takes, in
/// nanoseconds (fine enough for a sandbox start of 100 ns).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HistogramSnapshot {
    /// `(le_ns, count)`: how many values were at most `le_ns`, per bucket,
    /// cumulative.
    pub buckets: Vec<(u64, u64)>,
    pub count: u64,
    pub sum_ns: u64,
}

/// A Prometheus text exposition being written: each family's `# HELP` and
/// `# TYPE` once, then its samples.
#[derive(Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// The text written so far.
    pub fn into_text(self) -> String {
        self.text
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample of the family last started.
    pub fn sample<L: AsRef<str>>(
        &mut self,
        name: &str,
        labels: &[(&str, L)],
        value: impl std::fmt::Display,
    ) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape_label(v.as_ref()));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A one-sample gauge family.
    pub fn gauge(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: impl std::fmt::Display,
    ) {
        self.family(name, "gauge", help);
        self.sample(name, labels, value);
    }

    /// The samples of one histogram (its family already written).
    pub fn histogram(&mut self, name: &str, labels: &[(&str, String)], h: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        let with_le = |le: String| {
            let mut l: Vec<(&str, String)> = labels.to_vec();
            l.push(("le", le));
            l
        };
        for &(le_ns, count) in &h.buckets {
            self.sample(&bucket, &with_le(seconds(le_ns)), count);
        }
        self.sample(&bucket, &with_le("+Inf".into()), h.count);
        self.sample(&format!("{name}_sum"), labels, seconds(h.sum_ns));
        self.sample(&format!("{name}_count"), labels, h.count);
    }
}

/// Nanoseconds as seconds, exactly (`0.0000001`, `0.00025`, `2.5`).
fn seconds(ns: u64) -> String {
    let whole = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_histograms_and_escaping() {
        let mut e = Exposition::default();
        e.family("x_seconds", "histogram", "A \\ test.");
        let h = HistogramSnapshot {
            buckets: vec![(100, 1), (250_000, 1), (1_000_000_000, 3)],
            count: 4,
            sum_ns: 2_500_001_000,
        };
        e.histogram("x_seconds", &[("app", "a\"b".to_string())], &h);
        assert_eq!(
            e.text,
            "# HELP x_seconds A \\\\ test.\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{app=\"a\\\"b\",le=\"0.0000001\"} 1\n\
             x_seconds_bucket{app=\"a\\\"b\",le=\"0.00025\"} 1\n\
             x_seconds_bucket{app=\"a\\\"b\",le=\"1\"} 3\n\
             x_seconds_bucket{app=\"a\\\"b\",le=\"+Inf\"} 4\n\
             x_seconds_sum{app=\"a\\\"b\"} 2.500001\n\
             x_seconds_count{app=\"a\\\"b\"} 4\n"
        );
    }
}
