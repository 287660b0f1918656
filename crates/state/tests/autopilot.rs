//! The autopilot's findings in the state machine: one open prediction per
//! kind and subject (an update changes it, a closing one closes it), ids
//! given on commit, diagnoses replaced per trigger, incidents opened for
//! predictions and linked to them, everything bounded, and a bad update
//! refused whole, naming its field.

use state::autopilot::{
    AutopilotUpdate, Band, Candidate, Cause, Detection, Diagnosis, Eta, FailureKind,
    MAX_DETECTIONS, MAX_PREDICTIONS, Metric, Prediction, PredictionIncident, PredictionStatus,
    SeriesKey, Subject, Trigger,
};
use state::{Command, Name, Rejection, State};

fn n(s: &str) -> Name {
    Name::new("test", s).unwrap()
}

fn node(name: &str) -> Subject {
    Subject::Node { node: n(name) }
}

fn prediction(subject: Subject, status: PredictionStatus, at_ms: u64) -> Prediction {
    Prediction {
        id: 0,
        kind: FailureKind::DiskFull,
        series: SeriesKey {
            subject: subject.clone(),
            metric: Metric::DiskBytes,
        },
        subject,
        status,
        first_ms: at_ms,
        updated_ms: at_ms,
        eta: Eta {
            at_ms: at_ms + 600_000,
            earliest_ms: at_ms + 300_000,
            latest_ms: at_ms + 900_000,
        },
        value: 80.0,
        limit: 100.0,
        trend_per_hour: 120.0,
        trend_band: Band {
            low: 100.0,
            high: 140.0,
        },
        why: "the data directory grows 120 bytes an hour".into(),
        incident: None,
        closed_ms: None,
    }
}

fn record(s: &mut State, update: AutopilotUpdate) -> Result<(), Rejection> {
    s.apply(&Command::RecordAutopilot { update }).map(|_| ())
}

fn with_predictions(now_ms: u64, predictions: Vec<Prediction>) -> AutopilotUpdate {
    AutopilotUpdate {
        now_ms,
        predictions,
        ..AutopilotUpdate::default()
    }
}

#[test]
fn an_open_prediction_is_updated_then_closed_in_place() {
    let mut s = State::default();
    record(
        &mut s,
        with_predictions(
            1_000,
            vec![prediction(node("n1"), PredictionStatus::Open, 1_000)],
        ),
    )
    .unwrap();
    let first = s.predictions().next().unwrap().clone();
    assert_eq!((first.id, first.status), (1, PredictionStatus::Open));
    // The next round's estimate replaces it and keeps when it was first made.
    let mut later = prediction(node("n1"), PredictionStatus::Open, 61_000);
    later.value = 90.0;
    record(&mut s, with_predictions(61_000, vec![later])).unwrap();
    let updated: Vec<_> = s.predictions().collect();
    assert_eq!(updated.len(), 1);
    assert_eq!(
        (updated[0].id, updated[0].first_ms, updated[0].value),
        (1, 1_000, 90.0)
    );
    // Another node's is another prediction.
    record(
        &mut s,
        with_predictions(
            62_000,
            vec![prediction(node("n2"), PredictionStatus::Open, 62_000)],
        ),
    )
    .unwrap();
    assert_eq!(s.open_predictions().count(), 2);
    // Closing: it happened.
    record(
        &mut s,
        with_predictions(
            70_000,
            vec![prediction(node("n1"), PredictionStatus::Happened, 70_000)],
        ),
    )
    .unwrap();
    let closed = s.predictions().find(|p| p.id == 1).unwrap();
    assert_eq!(
        (closed.status, closed.closed_ms),
        (PredictionStatus::Happened, Some(70_000))
    );
    assert_eq!(s.open_predictions().count(), 1);
    // Closing one that is not open changes nothing; a new one gets a new id.
    record(
        &mut s,
        with_predictions(
            80_000,
            vec![prediction(node("n9"), PredictionStatus::Cleared, 80_000)],
        ),
    )
    .unwrap();
    assert_eq!(s.predictions().count(), 2);
    record(
        &mut s,
        with_predictions(
            90_000,
            vec![prediction(node("n1"), PredictionStatus::Open, 90_000)],
        ),
    )
    .unwrap();
    // Ids 1 and 2 went to n1's and n2's; the refused closing took none.
    assert_eq!(s.predictions().last().unwrap().id, 3);
}

#[test]
fn findings_stay_bounded() {
    let mut s = State::default();
    for round in 0..(MAX_DETECTIONS as u64 / 50 + 2) {
        let detections = (0..50)
            .map(|i| Detection {
                id: 0,
                series: SeriesKey {
                    subject: Subject::Cluster,
                    metric: Metric::RequestRate,
                },
                t_ms: round * 50 + i,
                observed: 1.0,
                expected: Some(0.5),
                band: None,
                score: 0.6,
                baseline: Some("recent".into()),
                detectors: vec![],
            })
            .collect();
        record(
            &mut s,
            AutopilotUpdate {
                now_ms: round,
                detections,
                ..AutopilotUpdate::default()
            },
        )
        .unwrap();
    }
    assert_eq!(s.detections().count(), MAX_DETECTIONS);
    // The oldest went.
    assert_eq!(s.detections().next().unwrap().t_ms, 100);
    for i in 0..(MAX_PREDICTIONS as u64 + 20) {
        let name = format!("n{i}");
        record(
            &mut s,
            with_predictions(i, vec![prediction(node(&name), PredictionStatus::Open, i)]),
        )
        .unwrap();
    }
    assert_eq!(s.predictions().count(), MAX_PREDICTIONS);
}

#[test]
fn a_diagnosis_is_replaced_for_the_same_trigger() {
    let mut s = State::default();
    let diagnosis = |score: f64| Diagnosis {
        id: 0,
        trigger: Trigger::SloAlert {
            incident: 4,
            tenant: n("acme"),
            app: n("shop"),
            slo: n("availability"),
        },
        subject: Subject::App {
            tenant: n("acme"),
            app: n("shop"),
        },
        t_ms: 5,
        onset_ms: Some(1),
        causes: vec![Cause {
            rank: 1,
            candidate: Candidate::Version {
                tenant: n("acme"),
                app: n("shop"),
                version: 2,
            },
            score,
            evidence: vec!["errors on version 2 only".into()],
        }],
    };
    for score in [0.5, 0.9] {
        record(
            &mut s,
            AutopilotUpdate {
                now_ms: 5,
                diagnoses: vec![diagnosis(score)],
                ..AutopilotUpdate::default()
            },
        )
        .unwrap();
    }
    let kept: Vec<_> = s.diagnoses().collect();
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].id, kept[0].causes[0].score), (1, 0.9));
}

#[test]
fn a_prediction_opens_an_incident_and_names_it() {
    let mut s = State::default();
    let subject = Subject::Version {
        tenant: n("acme"),
        app: n("shop"),
        version: 2,
    };
    let mut p = prediction(subject.clone(), PredictionStatus::Open, 1_000);
    p.kind = FailureKind::VersionErrors;
    let incident = PredictionIncident {
        kind: FailureKind::VersionErrors,
        subject,
        fingerprint: "acme/shop/availability/page".into(),
        alert: "AutopilotPrediction".into(),
        tenant: n("acme"),
        app: n("shop"),
        slo: n("availability"),
        text: "errors of version 2 reach the SLO's page rate in 10 minutes".into(),
    };
    record(
        &mut s,
        AutopilotUpdate {
            now_ms: 1_000,
            predictions: vec![p],
            incidents: vec![incident],
            ..AutopilotUpdate::default()
        },
    )
    .unwrap();
    let opened = s.incidents().next().unwrap();
    assert_eq!(
        (opened.alert.as_str(), opened.opened_unix_ms),
        ("AutopilotPrediction", 1_000)
    );
    assert_eq!(opened.timeline[0].who, "autopilot");
    assert_eq!(s.predictions().next().unwrap().incident, Some(opened.id));
    // The SLO's alert later fires into the same incident.
    assert!(
        s.unresolved_incident("acme/shop/availability/page")
            .is_some()
    );
}

#[test]
fn a_bad_update_is_refused_whole() {
    let mut s = State::default();
    let mut bad = prediction(node("n1"), PredictionStatus::Open, 1_000);
    bad.eta.earliest_ms = bad.eta.at_ms + 1;
    let good = prediction(node("n2"), PredictionStatus::Open, 1_000);
    let before = s.clone();
    let err = record(&mut s, with_predictions(1_000, vec![good, bad])).unwrap_err();
    assert_eq!(err.field(), Some("predictions[1].eta"));
    assert_eq!(s, before);
    let mut long = prediction(node("n1"), PredictionStatus::Open, 1_000);
    long.why = "x".repeat(600);
    let err = record(&mut s, with_predictions(1_000, vec![long])).unwrap_err();
    assert_eq!(err.field(), Some("predictions[0].why"));
}
