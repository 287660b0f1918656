//! The report: a stable JSON schema, signed by the sha256 of its content.
//!
//! Schema 1 (`docs/certify.md` documents it):
//! `{"schema": 1, "target", "quick", "started_unix_ms", "duration_ms",
//! "dwcp_version", "criteria": [Verdict…], "scores": Scores, "sha256"}`.
//! `sha256` is the hex sha256 of the report's JSON with `sha256` set to
//! the empty string (serde_json's compact form, fields in this order), so
//! anyone can check it and sign-offs name exactly what they approve.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::criterion::{Criterion, Measurement};
use crate::score::Scores;
use crate::verdict::{Status, Verdict, Waiver, judge};

/// The schema this code writes.
pub const SCHEMA: u32 = 1;

/// Why a report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("not a certification report: {0}")]
    Json(#[from] serde_json::Error),
    #[error("report schema {found} is not read by this dwcp (it reads schema {SCHEMA})")]
    Schema { found: u32 },
    #[error("the report's sha256 is {claimed} but its content hashes to {actual}: it was changed")]
    Tampered { claimed: String, actual: String },
}

/// One certification run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: u32,
    /// What was certified: `scratch 3-node cluster` or the API URL.
    pub target: String,
    pub quick: bool,
    pub started_unix_ms: u64,
    pub duration_ms: u64,
    pub dwcp_version: String,
    pub criteria: Vec<Verdict>,
    pub scores: Scores,
    /// `dwcp certify --only`'s prefixes: only the criteria starting with
    /// one are in the report (absent: every criterion of the run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    /// The identity of the cluster measured (the sha256 of its CA
    /// certificate, `GET /api/v1/cluster`'s `cluster_id`): a cluster
    /// records only a report of itself. Absent in reports made before
    /// it existed, which no cluster records.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    pub sha256: String,
}

impl Report {
    /// Judges every criterion by its measurement, scores, and signs.
    pub fn new(
        target: &str,
        quick: bool,
        started_unix_ms: u64,
        duration_ms: u64,
        dwcp_version: &str,
        measured: &[(Criterion, Measurement)],
        waivers: &[Waiver],
    ) -> Report {
        let now = started_unix_ms + duration_ms;
        let criteria: Vec<Verdict> = measured
            .iter()
            .map(|(c, m)| judge(c, m, waivers, now))
            .collect();
        let mut report = Report {
            schema: SCHEMA,
            target: target.into(),
            quick,
            started_unix_ms,
            duration_ms,
            dwcp_version: dwcp_version.into(),
            scores: Scores::of(&criteria),
            criteria,
            only: Vec::new(),
            cluster: String::new(),
            sha256: String::new(),
        };
        report.sha256 = report.content_sha256();
        report
    }

    /// The report limited to `--only` prefixes, signed again.
    pub fn limited_to(mut self, only: Vec<String>) -> Report {
        self.only = only;
        self.sha256 = self.content_sha256();
        self
    }

    /// The report of the cluster `id` measured, signed again.
    pub fn for_cluster(mut self, id: &str) -> Report {
        self.cluster = id.into();
        self.sha256 = self.content_sha256();
        self
    }

    /// Whether criteria were left out (`--quick` or `--only`): such a
    /// report cannot be signed for go-live.
    pub fn is_partial(&self) -> bool {
        self.quick || !self.only.is_empty()
    }

    /// The sha256 of the report with an empty `sha256`.
    pub fn content_sha256(&self) -> String {
        let mut unsigned = self.clone();
        unsigned.sha256 = String::new();
        // A report is plain data: serializing it cannot fail.
        let bytes = serde_json::to_vec(&unsigned).unwrap_or_default();
        Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Reads a report and checks its schema and sha256.
    pub fn parse(json: &[u8]) -> Result<Report, ReportError> {
        let loose: serde_json::Value = serde_json::from_slice(json)?;
        let found = loose
            .get("schema")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0) as u32;
        if found != SCHEMA {
            return Err(ReportError::Schema { found });
        }
        let report: Report = serde_json::from_value(loose)?;
        let actual = report.content_sha256();
        if actual != report.sha256 {
            return Err(ReportError::Tampered {
                claimed: report.sha256,
                actual,
            });
        }
        Ok(report)
    }

    /// The verdicts with `status`.
    pub fn with_status(&self, status: Status) -> impl Iterator<Item = &Verdict> {
        self.criteria.iter().filter(move |v| v.status == status)
    }
}

/// What changed from report `a` to report `b`: one line per criterion
/// whose status changed, appeared or went, then the overall scores.
pub fn diff(a: &Report, b: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    for v in &b.criteria {
        match a.criteria.iter().find(|o| o.id == v.id) {
            None => lines.push(format!("+ {} {} (new)", v.id, v.status.as_str())),
            Some(o) if o.status != v.status => lines.push(format!(
                "~ {} {} -> {} ({} -> {})",
                v.id,
                o.status.as_str(),
                v.status.as_str(),
                value_text(o.value),
                value_text(v.value)
            )),
            Some(_) => {}
        }
    }
    for o in &a.criteria {
        if !b.criteria.iter().any(|v| v.id == o.id) {
            lines.push(format!("- {} (no longer checked)", o.id));
        }
    }
    lines.push(format!(
        "overall score {} -> {}",
        value_text(a.scores.overall.score),
        value_text(b.scores.overall.score)
    ));
    lines
}

fn value_text(v: Option<f64>) -> String {
    v.map_or_else(|| "unmeasured".into(), crate::criterion::number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::criterion::{Category, Threshold};

    fn measured(v: f64) -> Vec<(Criterion, Measurement)> {
        vec![(
            Criterion {
                id: "reliability.failover_ms".into(),
                category: Category::Reliability,
                description: "leader failover".into(),
                threshold: Threshold::at_most(5000.0, "ms"),
                remediation: "check election timeouts".into(),
                controls: vec!["SOC2 A1.2".into()],
            },
            Measurement::of(v, "kill -9 of the leader"),
        )]
    }

    #[test]
    fn reports_are_signed_and_changes_are_caught() {
        let r = Report::new("scratch", true, 1, 2, "0.1.0", &measured(700.0), &[]);
        let json = serde_json::to_vec(&r).unwrap();
        assert_eq!(Report::parse(&json).unwrap(), r);
        let text = String::from_utf8(json).unwrap();
        for field in [
            "\"criteria\"",
            "\"scores\"",
            "\"threshold\"",
            "\"status\"",
            "\"value\"",
        ] {
            assert!(text.contains(field), "{field}");
        }
        let tampered = text.replace("\"value\":700.0", "\"value\":7.0");
        assert_ne!(tampered, text);
        let e = Report::parse(tampered.as_bytes()).unwrap_err();
        assert!(matches!(e, ReportError::Tampered { .. }), "{e}");
        let future = text.replace("\"schema\":1", "\"schema\":2");
        assert!(matches!(
            Report::parse(future.as_bytes()),
            Err(ReportError::Schema { found: 2 })
        ));
    }

    #[test]
    fn a_diff_names_what_changed() {
        let a = Report::new("scratch", true, 1, 2, "0.1.0", &measured(700.0), &[]);
        let b = Report::new("scratch", true, 1, 2, "0.1.0", &measured(9000.0), &[]);
        let d = diff(&a, &b);
        assert_eq!(d[0], "~ reliability.failover_ms pass -> fail (700 -> 9000)");
        assert_eq!(d[1], "overall score 100 -> 0");
        assert_eq!(diff(&a, &a), vec!["overall score 100 -> 100".to_string()]);
    }
}
