//! What an app promises: an availability objective, a latency objective, or
//! both, over a rolling period — and the checks that refuse a promise that
//! cannot be measured (an objective of 0 or 1 leaves no error budget, or
//! no room for anything but errors).

use serde::{Deserialize, Serialize};

/// The period when none is given: 30 days, the SRE workbook's default.
pub const DEFAULT_PERIOD_DAYS: u32 = 30;
/// The longest period: the series keeps history this far back (see
/// [`super::series`]), so a longer one could not be measured.
pub const MAX_PERIOD_DAYS: u32 = 90;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// One app's service level objectives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    pub tenant: String,
    pub app: String,
    /// Share of valid requests that must succeed, strictly between 0 and 1
    /// (e.g. 0.999).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyObjective>,
    /// The rolling period the error budget is counted over, 1 to 90 days.
    #[serde(default = "default_period_days")]
    pub period_days: u32,
}

/// "`target` of requests are answered within `threshold_ms`".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyObjective {
    pub threshold_ms: u64,
    /// Share of valid requests under the threshold, strictly between 0 and 1.
    pub target: f64,
}

/// Which indicator an objective is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SloKind {
    Availability,
    Latency,
}

impl SloKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SloKind::Availability => "availability",
            SloKind::Latency => "latency",
        }
    }
}

impl std::fmt::Display for SloKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an [`Slo`] is refused; every message starts with the field it is
/// about and says what is allowed, so the API can pass it on as is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SloError {
    #[error("{field}: must not be empty: the name of an existing {field}")]
    Empty { field: &'static str },
    #[error("availability, latency: neither is set: at least one objective is required")]
    NoObjective,
    #[error("{field}: {value:?} is not allowed: an objective strictly between 0 and 1, e.g. 0.999")]
    Objective { field: &'static str, value: f64 },
    #[error("latency.threshold_ms: 0 is not allowed: a threshold of at least 1 ms, e.g. 300")]
    Threshold,
    #[error(
        "period_days: {value} is not allowed: a whole number of days from 1 to {MAX_PERIOD_DAYS}, e.g. {DEFAULT_PERIOD_DAYS}"
    )]
    Period { value: u32 },
}

impl SloError {
    /// The field the error is about, for the API's `{"error": {"field"}}`.
    pub fn field(&self) -> &'static str {
        match self {
            SloError::Empty { field } | SloError::Objective { field, .. } => field,
            SloError::NoObjective => "availability",
            SloError::Threshold => "latency.threshold_ms",
            SloError::Period { .. } => "period_days",
        }
    }
}

fn default_period_days() -> u32 {
    DEFAULT_PERIOD_DAYS
}

/// In (0, 1) exclusive; NaN is refused too (every comparison with it is false).
fn is_objective(value: f64) -> bool {
    value > 0.0 && value < 1.0
}

impl Slo {
    /// Refuses the first field that is not allowed.
    pub fn check(&self) -> Result<(), SloError> {
        if self.tenant.is_empty() {
            return Err(SloError::Empty { field: "tenant" });
        }
        if self.app.is_empty() {
            return Err(SloError::Empty { field: "app" });
        }
        if self.availability.is_none() && self.latency.is_none() {
            return Err(SloError::NoObjective);
        }
        if let Some(value) = self.availability
            && !is_objective(value)
        {
            return Err(SloError::Objective {
                field: "availability",
                value,
            });
        }
        if let Some(latency) = self.latency {
            if !is_objective(latency.target) {
                return Err(SloError::Objective {
                    field: "latency.target",
                    value: latency.target,
                });
            }
            if latency.threshold_ms == 0 {
                return Err(SloError::Threshold);
            }
        }
        if !(1..=MAX_PERIOD_DAYS).contains(&self.period_days) {
            return Err(SloError::Period {
                value: self.period_days,
            });
        }
        Ok(())
    }

    /// Each objective set, with its target.
    pub fn objectives(&self) -> Vec<(SloKind, f64)> {
        let mut out = Vec::with_capacity(2);
        if let Some(target) = self.availability {
            out.push((SloKind::Availability, target));
        }
        if let Some(latency) = self.latency {
            out.push((SloKind::Latency, latency.target));
        }
        out
    }

    /// The period in milliseconds, for [`super::burn::budget_remaining`].
    pub fn period_ms(&self) -> u64 {
        u64::from(self.period_days) * DAY_MS
    }
}

/// An SLO of both kinds for tests: 99.9 % available, 99 % under 300 ms.
#[cfg(test)]
pub(crate) fn example() -> Slo {
    Slo {
        tenant: "acme".into(),
        app: "shop".into(),
        availability: Some(0.999),
        latency: Some(LatencyObjective {
            threshold_ms: 300,
            target: 0.99,
        }),
        period_days: 30,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo() -> Slo {
        example()
    }

    #[test]
    fn a_valid_slo_passes_and_lists_its_objectives() {
        let s = slo();
        assert_eq!(s.check(), Ok(()));
        assert_eq!(
            s.objectives(),
            vec![(SloKind::Availability, 0.999), (SloKind::Latency, 0.99)]
        );
        assert_eq!(s.period_ms(), 30 * 86_400_000);
    }

    #[test]
    fn availability_outside_the_open_interval_is_refused_naming_the_field() {
        for bad in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
            let s = Slo {
                availability: Some(bad),
                ..slo()
            };
            let err = s.check().unwrap_err();
            assert_eq!(err.field(), "availability");
            assert!(matches!(
                err,
                SloError::Objective {
                    field: "availability",
                    ..
                }
            ));
        }
        let err = Slo {
            availability: Some(1.0),
            ..slo()
        }
        .check()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "availability: 1.0 is not allowed: an objective strictly between 0 and 1, e.g. 0.999"
        );
    }

    #[test]
    fn a_latency_target_outside_the_open_interval_is_refused_naming_the_field() {
        let s = Slo {
            latency: Some(LatencyObjective {
                threshold_ms: 300,
                target: 0.0,
            }),
            ..slo()
        };
        let err = s.check().unwrap_err();
        assert_eq!(err.field(), "latency.target");
        assert!(
            err.to_string()
                .starts_with("latency.target: 0.0 is not allowed"),
            "{err}"
        );

        let s = Slo {
            latency: Some(LatencyObjective {
                threshold_ms: 0,
                target: 0.99,
            }),
            ..slo()
        };
        assert_eq!(s.check(), Err(SloError::Threshold));
        assert_eq!(SloError::Threshold.field(), "latency.threshold_ms");
    }

    #[test]
    fn a_period_outside_one_to_ninety_days_is_refused() {
        for bad in [0, 91, 365] {
            let err = Slo {
                period_days: bad,
                ..slo()
            }
            .check()
            .unwrap_err();
            assert_eq!(err, SloError::Period { value: bad });
            assert_eq!(err.field(), "period_days");
            assert!(err.to_string().contains("from 1 to 90"), "{err}");
        }
        for good in [1, 30, 90] {
            assert_eq!(
                Slo {
                    period_days: good,
                    ..slo()
                }
                .check(),
                Ok(())
            );
        }
    }

    #[test]
    fn at_least_one_objective_and_names_are_required() {
        let err = Slo {
            availability: None,
            latency: None,
            ..slo()
        }
        .check()
        .unwrap_err();
        assert_eq!(err, SloError::NoObjective);
        assert!(err.to_string().contains("at least one objective"));
        let err = Slo {
            app: String::new(),
            ..slo()
        }
        .check()
        .unwrap_err();
        assert_eq!(err.field(), "app");
    }

    #[test]
    fn json_defaults_the_period_and_refuses_unknown_fields() {
        let s: Slo =
            serde_json::from_str(r#"{"tenant":"acme","app":"shop","availability":0.995}"#).unwrap();
        assert_eq!(s.period_days, DEFAULT_PERIOD_DAYS);
        assert_eq!(s.latency, None);
        assert_eq!(s.check(), Ok(()));
        let back: Slo = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert!(
            serde_json::from_str::<Slo>(r#"{"tenant":"a","app":"b","availabilty":0.9}"#).is_err()
        );
    }
}
