//! The verdict on one criterion: pure.

use serde::{Deserialize, Serialize};

use crate::criterion::{Category, Criterion, Direction, Measurement};

/// A criterion's status in a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    /// Passing, with the margin to the limit running out.
    Warn,
    Fail,
    /// Failing (or warning), under a waiver in force: never a pass.
    Waived,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Waived => "waived",
        }
    }
}

/// An admin's acceptance of a failing criterion, for a while.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiver {
    /// The criterion's id.
    pub criterion: String,
    /// Who waived it.
    pub by: String,
    /// Why it is accepted, and what will be done.
    pub reason: String,
    /// When it lapses.
    pub expires_unix_ms: u64,
}

impl Waiver {
    /// Whether it is in force at `now_unix_ms`.
    pub fn in_force(&self, now_unix_ms: u64) -> bool {
        now_unix_ms < self.expires_unix_ms
    }
}

/// One row of a report: the criterion, what was measured, the status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub id: String,
    pub category: Category,
    pub description: String,
    /// As text: `<= 50 ms`.
    pub threshold: String,
    pub unit: String,
    /// `null` when it could not be measured.
    pub value: Option<f64>,
    pub status: Status,
    pub detail: String,
    pub remediation: String,
    pub controls: Vec<String>,
    /// The waiver in force, when `status` is `waived`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver: Option<Waiver>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<f64>,
}

/// Pass, warn or fail from the value alone.
fn measured_status(criterion: &Criterion, value: Option<f64>) -> Status {
    let Some(v) = value.filter(|v| v.is_finite()) else {
        return Status::Fail;
    };
    let t = &criterion.threshold;
    let (within, beyond_warn) = match t.direction {
        Direction::AtMost => (v <= t.limit, t.warn.is_some_and(|w| v > w)),
        Direction::AtLeast => (v >= t.limit, t.warn.is_some_and(|w| v < w)),
    };
    match (within, beyond_warn) {
        (false, _) => Status::Fail,
        (true, true) => Status::Warn,
        (true, false) => Status::Pass,
    }
}

/// The verdict on `criterion` given what was measured and the waivers
/// (the first in force for this criterion applies to a fail or warn; an
/// expired one is ignored).
pub fn judge(
    criterion: &Criterion,
    measured: &Measurement,
    waivers: &[Waiver],
    now_unix_ms: u64,
) -> Verdict {
    let status = measured_status(criterion, measured.value);
    let waiver = match status {
        Status::Fail | Status::Warn => waivers
            .iter()
            .find(|w| w.criterion == criterion.id && w.in_force(now_unix_ms))
            .cloned(),
        _ => None,
    };
    Verdict {
        id: criterion.id.clone(),
        category: criterion.category,
        description: criterion.description.clone(),
        threshold: criterion.threshold.text(),
        unit: criterion.threshold.unit.clone(),
        value: measured.value.filter(|v| v.is_finite()),
        status: if waiver.is_some() {
            Status::Waived
        } else {
            status
        },
        detail: measured.detail.clone(),
        remediation: criterion.remediation.clone(),
        controls: criterion.controls.clone(),
        waiver,
        samples: measured.samples.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::criterion::Threshold;

    fn criterion(t: Threshold) -> Criterion {
        Criterion {
            id: "performance.commit.p99".into(),
            category: Category::Performance,
            description: "commit p99".into(),
            threshold: t,
            remediation: "faster disks".into(),
            controls: vec!["SOC2 A1.1".into()],
        }
    }

    fn status(t: Threshold, v: Option<f64>) -> Status {
        let m = match v {
            Some(v) => Measurement::of(v, ""),
            None => Measurement::unmeasured("no route"),
        };
        judge(&criterion(t), &m, &[], 0).status
    }

    #[test]
    fn values_pass_warn_or_fail_against_their_threshold() {
        let t = Threshold::at_most(50.0, "ms").warn_at(40.0);
        assert_eq!(status(t.clone(), Some(10.0)), Status::Pass);
        assert_eq!(status(t.clone(), Some(50.0)), Status::Warn);
        assert_eq!(status(t.clone(), Some(50.1)), Status::Fail);
        assert_eq!(status(t.clone(), Some(f64::NAN)), Status::Fail);
        assert_eq!(status(t, None), Status::Fail, "unmeasured fails");
        let t = Threshold::at_least(100.0, "req/s").warn_at(150.0);
        assert_eq!(status(t.clone(), Some(200.0)), Status::Pass);
        assert_eq!(status(t.clone(), Some(120.0)), Status::Warn);
        assert_eq!(status(t, Some(99.0)), Status::Fail);
        assert_eq!(status(Threshold::zero("count"), Some(0.0)), Status::Pass);
        assert_eq!(status(Threshold::zero("count"), Some(1.0)), Status::Fail);
    }

    #[test]
    fn waivers_make_failures_waived_never_passed_and_lapse() {
        let c = criterion(Threshold::at_most(50.0, "ms"));
        let waiver = Waiver {
            criterion: c.id.clone(),
            by: "ana".into(),
            reason: "new disks on order".into(),
            expires_unix_ms: 1_000,
        };
        let bad = Measurement::of(90.0, "");
        let w = std::slice::from_ref(&waiver);
        let v = judge(&c, &bad, w, 999);
        assert_eq!(v.status, Status::Waived);
        assert_eq!(v.waiver.as_ref(), Some(&waiver));
        assert_eq!(judge(&c, &bad, w, 1_000).status, Status::Fail, "expired");
        let good = judge(&c, &Measurement::of(1.0, ""), w, 0);
        assert_eq!((good.status, good.waiver), (Status::Pass, None));
        let other = Waiver {
            criterion: "security.x".into(),
            ..waiver
        };
        assert_eq!(judge(&c, &bad, &[other], 0).status, Status::Fail);
    }
}
