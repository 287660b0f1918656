//! The autopilot's findings, as the store keeps them: detections
//! (anomalies with their evidence), predictions (a failure named by what,
//! where, when and why) and diagnoses (the causes ranked for an alert, an
//! anomaly or a prediction). Plain data and the checks that need no state;
//! the `autopilot` crate makes them (and re-exports these types), the
//! leader's autopilot loop writes them in one [`crate::Command::RecordAutopilot`]
//! a round, and the state machine keeps them bounded
//! (`state/autopilot.rs`). What is replicated is what must survive a change
//! of leader: the findings an operator (and the autopilot's second part,
//! which acts on them) reads. The detectors' state is not: it is the
//! leader's memory.
//!
//! Every type here is stored in snapshots (postcard): enums are externally
//! tagged, and no field is skipped when serialized.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Name;
use crate::command::Rejection;

/// Detections kept: past it the oldest go.
pub const MAX_DETECTIONS: usize = 500;
/// Predictions kept: past it the oldest closed go first, then the oldest.
pub const MAX_PREDICTIONS: usize = 300;
/// Diagnoses kept: past it the oldest go.
pub const MAX_DIAGNOSES: usize = 100;
/// Most detections, predictions or diagnoses in one update.
pub const MAX_PER_UPDATE: usize = 100;
/// Causes a diagnosis ranks.
pub const MAX_CAUSES: usize = 5;
/// Evidence lines of one cause, detectors of one detection.
pub const MAX_EVIDENCE: usize = 8;
/// Longest text of a finding (a why, a line of evidence).
pub const MAX_FINDING_TEXT: usize = 500;

/// Where a signal is measured, or a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// The whole cluster.
    Cluster,
    Region {
        region: Name,
    },
    Node {
        node: Name,
    },
    Tenant {
        tenant: Name,
    },
    /// An app, all its versions on all nodes.
    App {
        tenant: Name,
        app: Name,
    },
    /// A version on all the nodes that serve it.
    Version {
        tenant: Name,
        app: Name,
        version: u64,
    },
    /// A version on one node.
    VersionOnNode {
        tenant: Name,
        app: Name,
        version: u64,
        node: Name,
    },
}

impl Subject {
    /// The tenant it belongs to, if it is a tenant's.
    pub fn tenant(&self) -> Option<&Name> {
        match self {
            Subject::Tenant { tenant }
            | Subject::App { tenant, .. }
            | Subject::Version { tenant, .. }
            | Subject::VersionOnNode { tenant, .. } => Some(tenant),
            _ => None,
        }
    }

    /// The app it belongs to, if it is an app's: `(tenant, app)`.
    pub fn app(&self) -> Option<(&Name, &Name)> {
        match self {
            Subject::App { tenant, app }
            | Subject::Version { tenant, app, .. }
            | Subject::VersionOnNode { tenant, app, .. } => Some((tenant, app)),
            _ => None,
        }
    }

    /// The node it is on, if one.
    pub fn node(&self) -> Option<&Name> {
        match self {
            Subject::Node { node } | Subject::VersionOnNode { node, .. } => Some(node),
            _ => None,
        }
    }

    /// Its names, checked again (a finding may come from an older peer's
    /// log entry).
    fn check(&self) -> Result<(), Rejection> {
        let names: Vec<(&Name, &'static str)> = match self {
            Subject::Cluster => vec![],
            Subject::Region { region } => vec![(region, "region")],
            Subject::Node { node } => vec![(node, "node")],
            Subject::Tenant { tenant } => vec![(tenant, "tenant")],
            Subject::App { tenant, app } | Subject::Version { tenant, app, .. } => {
                vec![(tenant, "tenant"), (app, "app")]
            }
            Subject::VersionOnNode {
                tenant, app, node, ..
            } => vec![(tenant, "tenant"), (app, "app"), (node, "node")],
        };
        for (name, field) in names {
            Name::new(field, name.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Cluster => write!(f, "the cluster"),
            Subject::Region { region } => write!(f, "region {region}"),
            Subject::Node { node } => write!(f, "node {node}"),
            Subject::Tenant { tenant } => write!(f, "tenant {tenant}"),
            Subject::App { tenant, app } => write!(f, "app {tenant}/{app}"),
            Subject::Version {
                tenant,
                app,
                version,
            } => write!(f, "version {tenant}/{app}@{version}"),
            Subject::VersionOnNode {
                tenant,
                app,
                version,
                node,
            } => write!(f, "version {tenant}/{app}@{version} on node {node}"),
        }
    }
}

/// What a signal measures. Each has one unit, in its name or below.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Requests answered per second.
    RequestRate,
    /// The share of requests answered with a server error (5xx), 0 to 1.
    ErrorRatio,
    /// The median request latency, ms.
    LatencyP50Ms,
    /// The 99th percentile request latency, ms.
    LatencyP99Ms,
    /// Sandbox-seconds busy per second: the mean number of requests in
    /// flight (Little's law).
    Concurrency,
    /// Sandboxes alive (running or warm).
    LiveSandboxes,
    /// Resident memory, bytes.
    MemoryBytes,
    /// Bytes in the data directory.
    DiskBytes,
    /// Seconds since the node's report last changed.
    SilenceS,
    /// Nodes of a region that report.
    ReportingNodes,
}

/// Every metric, in order.
pub const METRICS: [Metric; 10] = [
    Metric::RequestRate,
    Metric::ErrorRatio,
    Metric::LatencyP50Ms,
    Metric::LatencyP99Ms,
    Metric::Concurrency,
    Metric::LiveSandboxes,
    Metric::MemoryBytes,
    Metric::DiskBytes,
    Metric::SilenceS,
    Metric::ReportingNodes,
];

impl Metric {
    /// Its name in the API and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::RequestRate => "request_rate",
            Metric::ErrorRatio => "error_ratio",
            Metric::LatencyP50Ms => "latency_p50_ms",
            Metric::LatencyP99Ms => "latency_p99_ms",
            Metric::Concurrency => "concurrency",
            Metric::LiveSandboxes => "live_sandboxes",
            Metric::MemoryBytes => "memory_bytes",
            Metric::DiskBytes => "disk_bytes",
            Metric::SilenceS => "silence_s",
            Metric::ReportingNodes => "reporting_nodes",
        }
    }

    /// The metric named `name` (as [`Metric::as_str`] writes it).
    pub fn parse(name: &str) -> Option<Metric> {
        METRICS.into_iter().find(|m| m.as_str() == name)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One signal: a metric of a subject.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeriesKey {
    pub subject: Subject,
    pub metric: Metric,
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.metric, self.subject)
    }
}

/// A range of values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub low: f64,
    pub high: f64,
}

/// What one detector saw at a detection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectorView {
    /// `robust`, `forecast`, `change_point` or `discord`.
    pub detector: String,
    /// 1.0 is where it fires.
    pub strength: f64,
    pub fired: bool,
}

/// An anomaly on one signal, with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Given by the store: 1, 2, 3, ... (0 in an update).
    pub id: u64,
    pub series: SeriesKey,
    /// When the point was taken, ms since the Unix epoch (the autopilot's
    /// clock).
    pub t_ms: u64,
    pub observed: f64,
    pub expected: Option<f64>,
    /// Values inside it would not have been anomalous.
    pub band: Option<Band>,
    /// The ensemble's score, 0 to 1 (0.5 and up is anomalous).
    pub score: f64,
    /// What the point was compared with: `recent`, `daily` or `weekly`.
    pub baseline: Option<String>,
    pub detectors: Vec<DetectorView>,
}

/// A failure DWCP can have, as a prediction names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A node's sandboxes reach its engine's slots: new ones are refused.
    SlotExhaustion,
    /// A node's memory reaches its limit.
    MemoryExhaustion,
    /// A node's data directory reaches its disk limit.
    DiskFull,
    /// A version's errors reach the rate at which its SLO pages (or 5 %).
    VersionErrors,
    /// A version's latency reaches its SLO's threshold (or its timeout).
    VersionLatency,
    /// A node stops reporting (and is taken for dead).
    NodeSilent,
    /// A region's sandboxes reach what its reporting nodes can hold.
    RegionCapacity,
    /// An app's requests in flight reach its concurrency limit (more are
    /// answered 503).
    LoadPastCapacity,
}

/// Every failure kind, in order.
pub const FAILURE_KINDS: [FailureKind; 8] = [
    FailureKind::SlotExhaustion,
    FailureKind::MemoryExhaustion,
    FailureKind::DiskFull,
    FailureKind::VersionErrors,
    FailureKind::VersionLatency,
    FailureKind::NodeSilent,
    FailureKind::RegionCapacity,
    FailureKind::LoadPastCapacity,
];

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::SlotExhaustion => "slot_exhaustion",
            FailureKind::MemoryExhaustion => "memory_exhaustion",
            FailureKind::DiskFull => "disk_full",
            FailureKind::VersionErrors => "version_errors",
            FailureKind::VersionLatency => "version_latency",
            FailureKind::NodeSilent => "node_silent",
            FailureKind::RegionCapacity => "region_capacity",
            FailureKind::LoadPastCapacity => "load_past_capacity",
        }
    }

    pub fn parse(name: &str) -> Option<FailureKind> {
        FAILURE_KINDS.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a prediction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictionStatus {
    /// The failure is expected.
    Open,
    /// The failure came (the signal reached its limit).
    Happened,
    /// The trend went away before the failure.
    Cleared,
}

impl PredictionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PredictionStatus::Open => "open",
            PredictionStatus::Happened => "happened",
            PredictionStatus::Cleared => "cleared",
        }
    }
}

/// When a failure is expected: a time and an interval around it, ms since
/// the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eta {
    pub at_ms: u64,
    pub earliest_ms: u64,
    pub latest_ms: u64,
}

/// A failure expected: what, where, when and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Given by the store (0 in an update). While a prediction is open,
    /// an update with the same kind and subject changes it.
    pub id: u64,
    /// What.
    pub kind: FailureKind,
    /// Where.
    pub subject: Subject,
    pub status: PredictionStatus,
    /// When it was first made (the autopilot's clock).
    pub first_ms: u64,
    /// When it was last updated.
    pub updated_ms: u64,
    /// When the failure is expected.
    pub eta: Eta,
    /// Why: the signal extrapolated.
    pub series: SeriesKey,
    /// Its value now, and the value at which the failure happens.
    pub value: f64,
    pub limit: f64,
    /// How fast it moves, per hour, with a 90 % interval.
    pub trend_per_hour: f64,
    pub trend_band: Band,
    /// One sentence an operator reads.
    pub why: String,
    /// The incident it opened, if it did.
    pub incident: Option<u64>,
    /// When it happened or cleared.
    pub closed_ms: Option<u64>,
}

/// What set a root-cause ranking off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// An SLO's alert opened (or fired into) an incident.
    SloAlert {
        incident: u64,
        tenant: Name,
        app: Name,
        slo: Name,
    },
    /// A detection strong enough on an app's signal.
    Anomaly { series: SeriesKey, t_ms: u64 },
    /// A prediction opened.
    Prediction { kind: FailureKind, subject: Subject },
}

/// As an operator reads it (the anomaly's time is the diagnosis's
/// neighbour, so it is left to the reader's own clock format).
impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::SloAlert {
                incident,
                tenant,
                app,
                slo,
            } => write!(f, "SLO alert {tenant}/{app}/{slo} (incident #{incident})"),
            Trigger::Anomaly { series, .. } => write!(f, "anomaly in {series}"),
            Trigger::Prediction { kind, subject } => write!(f, "predicted {kind} of {subject}"),
        }
    }
}

/// Something that may have caused trouble.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Candidate {
    Version {
        tenant: Name,
        app: Name,
        version: u64,
    },
    Node {
        node: Name,
    },
    Region {
        region: Name,
    },
    Tenant {
        tenant: Name,
    },
    /// A change in the store: its revision, record kind and key.
    Change {
        revision: u64,
        record: String,
        key: String,
    },
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Candidate::Version {
                tenant,
                app,
                version,
            } => write!(f, "version {tenant}/{app}@{version}"),
            Candidate::Node { node } => write!(f, "node {node}"),
            Candidate::Region { region } => write!(f, "region {region}"),
            Candidate::Tenant { tenant } => write!(f, "tenant {tenant}"),
            Candidate::Change {
                revision,
                record,
                key,
            } => write!(f, "change {record} {key} (revision {revision})"),
        }
    }
}

/// One ranked cause with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    /// 1 is the likeliest.
    pub rank: u32,
    pub candidate: Candidate,
    /// Higher is likelier; comparable within one diagnosis only.
    pub score: f64,
    /// Why, one line each, at most [`MAX_EVIDENCE`].
    pub evidence: Vec<String>,
}

/// The causes ranked for one trigger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// Given by the store (0 in an update). A later update for the same
    /// trigger replaces it.
    pub id: u64,
    pub trigger: Trigger,
    /// Where the trouble shows.
    pub subject: Subject,
    /// When it was ranked (the autopilot's clock).
    pub t_ms: u64,
    /// When the trouble began, as the change-point detector places it.
    pub onset_ms: Option<u64>,
    /// At most [`MAX_CAUSES`], likeliest first.
    pub causes: Vec<Cause>,
}

/// An incident a prediction opens (or joins, when one with the same
/// fingerprint is unresolved): so that people hear of it before the SLO's
/// alert would fire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionIncident {
    /// The prediction's kind and subject, to link the incident to it.
    pub kind: FailureKind,
    pub subject: Subject,
    pub fingerprint: String,
    pub alert: String,
    pub tenant: Name,
    pub app: Name,
    pub slo: Name,
    pub text: String,
}

/// One round's findings, written as one command.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AutopilotUpdate {
    /// The autopilot's clock when it made them, ms since the Unix epoch.
    pub now_ms: u64,
    /// New detections (ids are given on commit).
    pub detections: Vec<Detection>,
    /// Predictions made, updated or closed.
    pub predictions: Vec<Prediction>,
    /// Diagnoses made or remade.
    pub diagnoses: Vec<Diagnosis>,
    /// Incidents to open for predictions.
    pub incidents: Vec<PredictionIncident>,
}

impl AutopilotUpdate {
    /// Whether it carries nothing to write.
    pub fn is_empty(&self) -> bool {
        self.detections.is_empty()
            && self.predictions.is_empty()
            && self.diagnoses.is_empty()
            && self.incidents.is_empty()
    }
}

/// Checks an update's sizes, texts, numbers and names (not whether its
/// subjects exist: a finding may outlive what it names).
pub fn check_update(update: &AutopilotUpdate) -> Result<(), Rejection> {
    for (field, len) in [
        ("detections", update.detections.len()),
        ("predictions", update.predictions.len()),
        ("diagnoses", update.diagnoses.len()),
        ("incidents", update.incidents.len()),
    ] {
        if len > MAX_PER_UPDATE {
            return Err(Rejection::invalid(
                field,
                len,
                format!("at most {MAX_PER_UPDATE} per update"),
            ));
        }
    }
    for (i, d) in update.detections.iter().enumerate() {
        let at = |f: &str| format!("detections[{i}].{f}");
        d.series.subject.check()?;
        finite(&at("observed"), d.observed)?;
        finite(&at("score"), d.score)?;
        if let Some(e) = d.expected {
            finite(&at("expected"), e)?;
        }
        if let Some(b) = d.band {
            finite(&at("band"), b.low)?;
            finite(&at("band"), b.high)?;
        }
        if d.detectors.len() > MAX_EVIDENCE {
            return Err(Rejection::invalid(
                &at("detectors"),
                d.detectors.len(),
                format!("at most {MAX_EVIDENCE}"),
            ));
        }
        for v in &d.detectors {
            text(&at("detectors"), &v.detector)?;
            finite(&at("detectors"), v.strength)?;
        }
        if let Some(b) = &d.baseline {
            text(&at("baseline"), b)?;
        }
    }
    for (i, p) in update.predictions.iter().enumerate() {
        let at = |f: &str| format!("predictions[{i}].{f}");
        p.subject.check()?;
        p.series.subject.check()?;
        for (f, x) in [
            ("value", p.value),
            ("limit", p.limit),
            ("trend_per_hour", p.trend_per_hour),
            ("trend_band", p.trend_band.low),
            ("trend_band", p.trend_band.high),
        ] {
            finite(&at(f), x)?;
        }
        if !(p.eta.earliest_ms <= p.eta.at_ms && p.eta.at_ms <= p.eta.latest_ms) {
            return Err(Rejection::invalid(
                &at("eta"),
                format!(
                    "{} .. {} .. {}",
                    p.eta.earliest_ms, p.eta.at_ms, p.eta.latest_ms
                ),
                "earliest_ms <= at_ms <= latest_ms",
            ));
        }
        text(&at("why"), &p.why)?;
    }
    for (i, d) in update.diagnoses.iter().enumerate() {
        let at = |f: &str| format!("diagnoses[{i}].{f}");
        d.subject.check()?;
        if d.causes.len() > MAX_CAUSES {
            return Err(Rejection::invalid(
                &at("causes"),
                d.causes.len(),
                format!("at most {MAX_CAUSES}"),
            ));
        }
        for c in &d.causes {
            finite(&at("causes.score"), c.score)?;
            if c.evidence.len() > MAX_EVIDENCE {
                return Err(Rejection::invalid(
                    &at("causes.evidence"),
                    c.evidence.len(),
                    format!("at most {MAX_EVIDENCE} lines"),
                ));
            }
            for line in &c.evidence {
                text(&at("causes.evidence"), line)?;
            }
        }
    }
    for (i, inc) in update.incidents.iter().enumerate() {
        let at = |f: &str| format!("incidents[{i}].{f}");
        inc.subject.check()?;
        if inc.fingerprint.is_empty() || inc.fingerprint.len() > 300 {
            return Err(Rejection::invalid(
                &at("fingerprint"),
                &inc.fingerprint,
                "1 to 300 bytes",
            ));
        }
        if inc.alert.is_empty() || inc.alert.len() > 100 {
            return Err(Rejection::invalid(
                &at("alert"),
                &inc.alert,
                "1 to 100 bytes",
            ));
        }
        text(&at("text"), &inc.text)?;
    }
    Ok(())
}

fn finite(field: &str, x: f64) -> Result<(), Rejection> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(Rejection::invalid(field, x, "a finite number"))
    }
}

fn text(field: &str, s: &str) -> Result<(), Rejection> {
    if s.len() > MAX_FINDING_TEXT {
        return Err(Rejection::invalid(
            field,
            s,
            format!("at most {MAX_FINDING_TEXT} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::new("test", s).unwrap()
    }

    #[test]
    fn subjects_say_where_they_are() {
        let s = Subject::VersionOnNode {
            tenant: n("acme"),
            app: n("shop"),
            version: 3,
            node: n("node-2"),
        };
        assert_eq!(s.to_string(), "version acme/shop@3 on node node-2");
        assert_eq!(s.tenant(), Some(&n("acme")));
        assert_eq!(s.node(), Some(&n("node-2")));
        assert_eq!(Subject::Node { node: n("a") }.app(), None);
    }

    #[test]
    fn names_parse_back() {
        for m in METRICS {
            assert_eq!(Metric::parse(m.as_str()), Some(m));
        }
        for k in FAILURE_KINDS {
            assert_eq!(FailureKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Metric::parse("nope"), None);
    }

    #[test]
    fn an_update_with_a_bad_number_names_the_field() {
        let mut u = AutopilotUpdate::default();
        u.detections.push(Detection {
            id: 0,
            series: SeriesKey {
                subject: Subject::Cluster,
                metric: Metric::RequestRate,
            },
            t_ms: 1,
            observed: f64::NAN,
            expected: None,
            band: None,
            score: 0.9,
            baseline: None,
            detectors: vec![],
        });
        let err = check_update(&u).unwrap_err();
        assert_eq!(err.field(), Some("detections[0].observed"));
    }
}
