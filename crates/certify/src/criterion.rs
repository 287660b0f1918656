//! What is checked and what was measured.

use serde::{Deserialize, Serialize};

/// The six areas a report scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Performance,
    Security,
    Reliability,
    Scalability,
    Operations,
    Compliance,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::Performance,
        Category::Security,
        Category::Reliability,
        Category::Scalability,
        Category::Operations,
        Category::Compliance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Performance => "performance",
            Category::Security => "security",
            Category::Reliability => "reliability",
            Category::Scalability => "scalability",
            Category::Operations => "operations",
            Category::Compliance => "compliance",
        }
    }
}

/// Which side of the threshold passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The value must be at most the threshold (latencies, failures).
    AtMost,
    /// The value must be at least the threshold (rates, counts of good).
    AtLeast,
}

/// The line a value must hold, and an optional earlier line that warns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub direction: Direction,
    /// Pass at or within this.
    pub limit: f64,
    /// Within the limit but beyond this: `warn` (a margin running out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<f64>,
    /// The value's unit (`ms`, `count`, `req/s`, …).
    pub unit: String,
}

impl Threshold {
    /// At most `limit` `unit`.
    pub fn at_most(limit: f64, unit: &str) -> Threshold {
        Threshold {
            direction: Direction::AtMost,
            limit,
            warn: None,
            unit: unit.into(),
        }
    }

    /// At least `limit` `unit`.
    pub fn at_least(limit: f64, unit: &str) -> Threshold {
        Threshold {
            direction: Direction::AtLeast,
            limit,
            warn: None,
            unit: unit.into(),
        }
    }

    /// None at all: a count of failures that must be 0.
    pub fn zero(unit: &str) -> Threshold {
        Threshold::at_most(0.0, unit)
    }

    /// Warns beyond `warn` (still passing until `limit`).
    pub fn warn_at(mut self, warn: f64) -> Threshold {
        self.warn = Some(warn);
        self
    }

    /// `<= 50 ms`, `>= 200 req/s`.
    pub fn text(&self) -> String {
        let op = match self.direction {
            Direction::AtMost => "<=",
            Direction::AtLeast => ">=",
        };
        format!("{op} {} {}", number(self.limit), self.unit)
    }
}

/// A number as people read it: no trailing `.0`, at most 3 decimals.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// One thing a certification checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    /// Stable, dotted: `security.routes.no_credential`.
    pub id: String,
    pub category: Category,
    pub description: String,
    pub threshold: Threshold,
    /// What to do when it fails.
    pub remediation: String,
    /// SOC 2 criteria and ISO 27001:2022 Annex A controls this gives
    /// evidence for (`SOC2 CC6.1`, `ISO A.8.5`).
    pub controls: Vec<String>,
}

/// What one probe measured for one criterion in this run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// `None`: it could not be measured (`detail` says why): a failure.
    pub value: Option<f64>,
    /// How it was measured, what was seen.
    pub detail: String,
    /// Samples behind the value (latency distributions), in the unit of
    /// the threshold, for the report's plots; may be empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<f64>,
}

impl Measurement {
    pub fn of(value: f64, detail: impl Into<String>) -> Measurement {
        Measurement {
            value: Some(value),
            detail: detail.into(),
            samples: Vec::new(),
        }
    }

    /// A value and the samples it was taken from.
    pub fn with_samples(value: f64, samples: Vec<f64>, detail: impl Into<String>) -> Measurement {
        Measurement {
            value: Some(value),
            detail: detail.into(),
            samples,
        }
    }

    /// Could not be measured, and why.
    pub fn unmeasured(why: impl Into<String>) -> Measurement {
        Measurement {
            value: None,
            detail: why.into(),
            samples: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_read_as_people_write_them() {
        assert_eq!(Threshold::at_most(50.0, "ms").text(), "<= 50 ms");
        assert_eq!(Threshold::at_least(0.5, "ratio").text(), ">= 0.5 ratio");
        assert_eq!(number(1.23456), "1.235");
        assert_eq!(number(-0.0), "-0");
    }
}
