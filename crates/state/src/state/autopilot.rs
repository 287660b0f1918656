//! The autopilot's findings in the state machine: one
//! `RecordAutopilot` a round adds detections, makes, updates or closes
//! predictions (one open prediction per kind and subject), replaces or
//! adds diagnoses (one per trigger) and opens the incidents predictions
//! ask for — each kept bounded ([`MAX_DETECTIONS`], [`MAX_PREDICTIONS`],
//! [`MAX_DIAGNOSES`]).

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::{Change, Record, State};
use crate::autopilot::{
    AutopilotUpdate, Detection, Diagnosis, MAX_DETECTIONS, MAX_DIAGNOSES, MAX_PREDICTIONS,
    Prediction, PredictionStatus, check_update,
};
use crate::slo::check_incident_text;
use crate::{Command, Outcome, Rejection, Revision, Severity};

/// Who the autopilot is on incident timelines.
pub const AUTOPILOT: &str = "autopilot";

/// What the store keeps of the autopilot's findings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Findings {
    /// Oldest first.
    detections: VecDeque<Detection>,
    /// By id.
    predictions: BTreeMap<u64, Prediction>,
    /// Oldest first.
    diagnoses: VecDeque<Diagnosis>,
    /// The last id given (ids are shared by the three kinds).
    last_id: u64,
}

impl State {
    /// The detections kept, oldest first.
    pub fn detections(&self) -> impl DoubleEndedIterator<Item = &Detection> {
        self.autopilot.detections.iter()
    }

    /// The predictions kept, by id (oldest first).
    pub fn predictions(&self) -> impl DoubleEndedIterator<Item = &Prediction> {
        self.autopilot.predictions.values()
    }

    /// The open predictions.
    pub fn open_predictions(&self) -> impl Iterator<Item = &Prediction> {
        self.predictions()
            .filter(|p| p.status == PredictionStatus::Open)
    }

    /// The diagnoses kept, oldest first.
    pub fn diagnoses(&self) -> impl DoubleEndedIterator<Item = &Diagnosis> {
        self.autopilot.diagnoses.iter()
    }

    pub(super) fn plan_autopilot(
        &self,
        update: &AutopilotUpdate,
    ) -> Result<(Outcome, Vec<Change>), Rejection> {
        check_update(update)?;
        for (i, inc) in update.incidents.iter().enumerate() {
            check_incident_text(&format!("incidents[{i}].text"), &inc.text)?;
        }
        let change = |key: String| Change {
            record: Record::Autopilot,
            key,
            deleted: false,
        };
        let mut changes = Vec::new();
        if !update.detections.is_empty() {
            changes.push(change("detections".into()));
        }
        if !update.predictions.is_empty() {
            changes.push(change("predictions".into()));
        }
        if !update.diagnoses.is_empty() {
            changes.push(change("diagnoses".into()));
        }
        if !update.incidents.is_empty() {
            changes.push(Change {
                record: Record::Incident,
                key: "autopilot".into(),
                deleted: false,
            });
        }
        Ok((Outcome::Applied, changes))
    }

    pub(super) fn commit_autopilot(&mut self, update: &AutopilotUpdate, revision: Revision) {
        let now = update.now_ms;
        for d in &update.detections {
            let id = self.next_finding_id();
            self.autopilot
                .detections
                .push_back(Detection { id, ..d.clone() });
        }
        while self.autopilot.detections.len() > MAX_DETECTIONS {
            self.autopilot.detections.pop_front();
        }
        for p in &update.predictions {
            self.upsert_prediction(p, now);
        }
        for d in &update.diagnoses {
            let same = self
                .autopilot
                .diagnoses
                .iter_mut()
                .find(|old| old.trigger == d.trigger);
            match same {
                Some(old) => {
                    *old = Diagnosis {
                        id: old.id,
                        ..d.clone()
                    }
                }
                None => {
                    let id = self.next_finding_id();
                    self.autopilot
                        .diagnoses
                        .push_back(Diagnosis { id, ..d.clone() });
                }
            }
        }
        while self.autopilot.diagnoses.len() > MAX_DIAGNOSES {
            self.autopilot.diagnoses.pop_front();
        }
        for inc in &update.incidents {
            let opening = Command::OpenIncident {
                fingerprint: inc.fingerprint.clone(),
                alert: inc.alert.clone(),
                tenant: inc.tenant.clone(),
                app: inc.app.clone(),
                slo: inc.slo.clone(),
                severity: Severity::Page,
                text: inc.text.clone(),
                by: AUTOPILOT.into(),
                now_unix_ms: now,
            };
            self.commit_ops(&opening, revision);
            let id = self.unresolved_incident(&inc.fingerprint).map(|i| i.id);
            if let Some(p) = self.autopilot.predictions.values_mut().find(|p| {
                p.status == PredictionStatus::Open && p.kind == inc.kind && p.subject == inc.subject
            }) {
                p.incident = p.incident.or(id);
            }
        }
    }

    fn next_finding_id(&mut self) -> u64 {
        self.autopilot.last_id += 1;
        self.autopilot.last_id
    }

    /// Makes, updates or closes the open prediction of `p`'s kind and
    /// subject; a closing one with no open prediction changes nothing.
    fn upsert_prediction(&mut self, p: &Prediction, now: u64) {
        let open = self.autopilot.predictions.values_mut().find(|o| {
            o.status == PredictionStatus::Open && o.kind == p.kind && o.subject == p.subject
        });
        match open {
            Some(o) => {
                let closed = p.status != PredictionStatus::Open;
                *o = Prediction {
                    id: o.id,
                    first_ms: o.first_ms,
                    incident: o.incident.or(p.incident),
                    closed_ms: closed.then_some(now),
                    ..p.clone()
                };
            }
            None if p.status == PredictionStatus::Open => {
                let id = self.next_finding_id();
                self.autopilot.predictions.insert(
                    id,
                    Prediction {
                        id,
                        closed_ms: None,
                        ..p.clone()
                    },
                );
                while self.autopilot.predictions.len() > MAX_PREDICTIONS {
                    let oldest = self
                        .autopilot
                        .predictions
                        .values()
                        .find(|o| o.status != PredictionStatus::Open)
                        .or_else(|| self.autopilot.predictions.values().next())
                        .map(|o| o.id);
                    match oldest {
                        Some(old) => {
                            self.autopilot.predictions.remove(&old);
                        }
                        None => break,
                    }
                }
            }
            None => {}
        }
    }
}
