//! SLOs, their evaluated status and incidents in the state machine. An SLO
//! belongs to an existing app (and goes with it); an incident is opened
//! by an alert and deduplicated by its fingerprint: while one with the
//! same fingerprint is unresolved, the alert firing again is a line on its
//! timeline, not a second incident. Acknowledge and resolve move it
//! forward only; timelines and the resolved incidents kept are bounded.

use super::{Change, Record, State};
use crate::slo::{
    IncidentEntry, IncidentStatus, MAX_SEALED_SLOS, MAX_SLOS_PER_APP, MAX_TIMELINE, RESOLVED_KEPT,
    check_incident_text, check_slo,
};
use crate::{Command, Incident, Name, Outcome, Rejection, Revision, Slo, SloStatus};

/// Most SLO statuses in one write.
const MAX_STATUSES: usize = 10_000;

impl State {
    /// Every SLO, by tenant, app and name.
    pub fn slos(&self) -> impl Iterator<Item = &Slo> {
        self.slos.values()
    }

    /// The SLOs of one app, by name.
    pub fn slos_of<'a>(&'a self, tenant: &'a Name, app: &'a Name) -> impl Iterator<Item = &'a Slo> {
        self.slos
            .values()
            .filter(move |s| &s.tenant == tenant && &s.app == app)
    }

    pub fn slo(&self, tenant: &Name, app: &Name, name: &Name) -> Option<&Slo> {
        self.slos.get(&(tenant.clone(), app.clone(), name.clone()))
    }

    /// The evaluator's latest reading of an SLO, once it made one.
    pub fn slo_status(&self, tenant: &Name, app: &Name, name: &Name) -> Option<&SloStatus> {
        self.slo_status
            .get(&(tenant.clone(), app.clone(), name.clone()))
    }

    /// Every incident kept, oldest first.
    pub fn incidents(&self) -> impl DoubleEndedIterator<Item = &Incident> {
        self.incidents.values()
    }

    pub fn incident(&self, id: u64) -> Option<&Incident> {
        self.incidents.get(&id)
    }

    /// The unresolved incident with `fingerprint`, if any.
    pub fn unresolved_incident(&self, fingerprint: &str) -> Option<&Incident> {
        self.incidents
            .values()
            .find(|i| i.unresolved() && i.fingerprint == fingerprint)
    }

    pub(super) fn plan_ops(&self, command: &Command) -> Result<(Outcome, Vec<Change>), Rejection> {
        let change = |record, key: String, deleted| Change {
            record,
            key,
            deleted,
        };
        match command {
            Command::PutSlo { slo } => {
                super::revalidate(&slo.name, "name")?;
                self.app(&slo.tenant, &slo.app).ok_or_else(|| {
                    Rejection::not_found("app", format!("{}/{}", slo.tenant, slo.app))
                })?;
                check_slo(slo)?;
                let exists = self.slo(&slo.tenant, &slo.app, &slo.name).is_some();
                if !exists && self.slos_of(&slo.tenant, &slo.app).count() >= MAX_SLOS_PER_APP {
                    return Err(Rejection::invalid(
                        "name",
                        &slo.name,
                        format!("a new SLO past the limit of {MAX_SLOS_PER_APP} per app"),
                    ));
                }
                Ok((
                    Outcome::Applied,
                    vec![change(
                        Record::Slo,
                        format!("{}/{}/{}", slo.tenant, slo.app, slo.name),
                        false,
                    )],
                ))
            }
            Command::DeleteSlo { tenant, app, name } => {
                self.slo(tenant, app, name)
                    .ok_or_else(|| Rejection::not_found("slo", format!("{tenant}/{app}/{name}")))?;
                Ok((
                    Outcome::Applied,
                    vec![change(Record::Slo, format!("{tenant}/{app}/{name}"), true)],
                ))
            }
            Command::SealSloTargets { slos } => {
                if slos.len() > MAX_SEALED_SLOS {
                    return Err(Rejection::invalid(
                        "slos",
                        slos.len(),
                        format!("at most {MAX_SEALED_SLOS}"),
                    ));
                }
                let mut changes = Vec::with_capacity(slos.len());
                for (i, slo) in slos.iter().enumerate() {
                    let key = format!("{}/{}/{}", slo.tenant, slo.app, slo.name);
                    let stored = self
                        .slo(&slo.tenant, &slo.app, &slo.name)
                        .ok_or_else(|| Rejection::not_found("slo", key.clone()))?;
                    let same_but_targets = Slo {
                        notify: stored.notify.clone(),
                        ..slo.clone()
                    };
                    if &same_but_targets != stored {
                        return Err(Rejection::invalid(
                            &format!("slos[{i}]"),
                            &key,
                            "an SLO unchanged since it was read (it was written meanwhile: read it again)",
                        ));
                    }
                    let kinds_kept = slo.notify.len() == stored.notify.len()
                        && slo
                            .notify
                            .iter()
                            .zip(&stored.notify)
                            .all(|(new, old)| new.kind == old.kind);
                    if !kinds_kept || slo.notify.iter().any(|t| t.sealed.is_none()) {
                        return Err(Rejection::invalid(
                            &format!("slos[{i}].notify"),
                            &key,
                            "the stored targets, in order and of the same kinds, each with its secrets sealed",
                        ));
                    }
                    check_slo(slo)?;
                    changes.push(change(Record::Slo, key, false));
                }
                Ok((Outcome::Applied, changes))
            }
            Command::SetSloStatus { statuses } => {
                if statuses.len() > MAX_STATUSES {
                    return Err(Rejection::invalid(
                        "statuses",
                        statuses.len(),
                        format!("at most {MAX_STATUSES}"),
                    ));
                }
                // Statuses of SLOs deleted meanwhile are left out at commit.
                let changes = statuses
                    .iter()
                    .filter(|s| self.slo(&s.tenant, &s.app, &s.slo).is_some())
                    .map(|s| {
                        change(
                            Record::SloStatus,
                            format!("{}/{}/{}", s.tenant, s.app, s.slo),
                            false,
                        )
                    })
                    .collect();
                Ok((Outcome::Applied, changes))
            }
            Command::OpenIncident {
                fingerprint,
                alert,
                text,
                by,
                ..
            } => {
                if fingerprint.is_empty() || fingerprint.len() > 300 {
                    return Err(Rejection::invalid(
                        "fingerprint",
                        fingerprint,
                        "1 to 300 bytes",
                    ));
                }
                if alert.is_empty() || alert.len() > 100 {
                    return Err(Rejection::invalid("alert", alert, "1 to 100 bytes"));
                }
                check_incident_text("text", text)?;
                check_by(by)?;
                let id = match self.unresolved_incident(fingerprint) {
                    Some(found) => {
                        return Ok((
                            Outcome::Incident {
                                id: found.id,
                                opened: false,
                            },
                            vec![change(Record::Incident, found.id.to_string(), false)],
                        ));
                    }
                    None => self.next_incident.max(1),
                };
                Ok((
                    Outcome::Incident { id, opened: true },
                    vec![change(Record::Incident, id.to_string(), false)],
                ))
            }
            Command::AcknowledgeIncident { id, by, .. } => {
                check_by(by)?;
                let found = self.found_incident(*id)?;
                if found.status != IncidentStatus::Open {
                    return Err(Rejection::invalid(
                        "status",
                        found.status.as_str(),
                        "an open incident (this one was acknowledged or resolved already)",
                    ));
                }
                Ok((
                    Outcome::Incident {
                        id: *id,
                        opened: false,
                    },
                    vec![change(Record::Incident, id.to_string(), false)],
                ))
            }
            Command::ResolveIncident { id, by, text, .. } => {
                check_by(by)?;
                if let Some(text) = text {
                    check_incident_text("text", text)?;
                }
                let found = self.found_incident(*id)?;
                if !found.unresolved() {
                    return Err(Rejection::invalid(
                        "status",
                        found.status.as_str(),
                        "an open or acknowledged incident (this one is resolved already)",
                    ));
                }
                let mut changes = vec![change(Record::Incident, id.to_string(), false)];
                if let Some(old) = self.resolved_to_drop() {
                    changes.push(change(Record::Incident, old.to_string(), true));
                }
                Ok((
                    Outcome::Incident {
                        id: *id,
                        opened: false,
                    },
                    changes,
                ))
            }
            Command::NoteIncident { id, by, text, .. } => {
                check_by(by)?;
                check_incident_text("text", text)?;
                self.found_incident(*id)?;
                Ok((
                    Outcome::Incident {
                        id: *id,
                        opened: false,
                    },
                    vec![change(Record::Incident, id.to_string(), false)],
                ))
            }
            _ => Err(Rejection::invalid(
                "command",
                "other",
                "an SLO or incident command",
            )),
        }
    }

    pub(super) fn commit_ops(&mut self, command: &Command, revision: Revision) {
        match command {
            Command::PutSlo { slo } => {
                let key = (slo.tenant.clone(), slo.app.clone(), slo.name.clone());
                self.slos.insert(
                    key,
                    Slo {
                        updated: revision,
                        ..slo.clone()
                    },
                );
            }
            Command::SealSloTargets { slos } => {
                for slo in slos {
                    let key = (slo.tenant.clone(), slo.app.clone(), slo.name.clone());
                    if let Some(stored) = self.slos.get_mut(&key) {
                        stored.notify = slo.notify.clone();
                        stored.updated = revision;
                    }
                }
            }
            Command::DeleteSlo { tenant, app, name } => {
                let key = (tenant.clone(), app.clone(), name.clone());
                self.slos.remove(&key);
                self.slo_status.remove(&key);
            }
            Command::SetSloStatus { statuses } => {
                for s in statuses {
                    let key = (s.tenant.clone(), s.app.clone(), s.slo.clone());
                    if self.slos.contains_key(&key) {
                        self.slo_status.insert(key, s.clone());
                    }
                }
            }
            Command::OpenIncident {
                fingerprint,
                alert,
                tenant,
                app,
                slo,
                severity,
                text,
                by,
                now_unix_ms,
            } => {
                if let Some(id) = self.unresolved_incident(fingerprint).map(|i| i.id) {
                    if let Some(found) = self.incidents.get_mut(&id) {
                        push_entry(
                            found,
                            *now_unix_ms,
                            by,
                            format!("fired again: {text}"),
                            revision,
                        );
                    }
                    return;
                }
                let id = self.next_incident.max(1);
                self.next_incident = id + 1;
                self.incidents.insert(
                    id,
                    Incident {
                        id,
                        fingerprint: fingerprint.clone(),
                        alert: alert.clone(),
                        tenant: tenant.clone(),
                        app: app.clone(),
                        slo: slo.clone(),
                        severity: *severity,
                        status: IncidentStatus::Open,
                        opened_unix_ms: *now_unix_ms,
                        acknowledged_unix_ms: None,
                        resolved_unix_ms: None,
                        acknowledged_by: None,
                        resolved_by: None,
                        timeline: vec![IncidentEntry {
                            unix_ms: *now_unix_ms,
                            who: by.clone(),
                            text: format!("opened: {text}"),
                        }],
                        timeline_dropped: 0,
                        updated: revision,
                    },
                );
            }
            Command::AcknowledgeIncident {
                id,
                by,
                now_unix_ms,
            } => {
                if let Some(found) = self.incidents.get_mut(id) {
                    found.status = IncidentStatus::Acknowledged;
                    found.acknowledged_unix_ms = Some(*now_unix_ms);
                    found.acknowledged_by = Some(by.clone());
                    push_entry(found, *now_unix_ms, by, "acknowledged".into(), revision);
                }
            }
            Command::ResolveIncident {
                id,
                by,
                text,
                now_unix_ms,
            } => {
                if let Some(old) = self.resolved_to_drop() {
                    self.incidents.remove(&old);
                }
                if let Some(found) = self.incidents.get_mut(id) {
                    found.status = IncidentStatus::Resolved;
                    found.resolved_unix_ms = Some(*now_unix_ms);
                    found.resolved_by = Some(by.clone());
                    let line = match text {
                        Some(t) => format!("resolved: {t}"),
                        None => "resolved".into(),
                    };
                    push_entry(found, *now_unix_ms, by, line, revision);
                }
            }
            Command::NoteIncident {
                id,
                by,
                text,
                now_unix_ms,
            } => {
                if let Some(found) = self.incidents.get_mut(id) {
                    push_entry(found, *now_unix_ms, by, text.clone(), revision);
                }
            }
            _ => {}
        }
    }

    fn found_incident(&self, id: u64) -> Result<&Incident, Rejection> {
        self.incidents
            .get(&id)
            .ok_or_else(|| Rejection::not_found("incident", id))
    }

    /// The oldest resolved incident, when resolving one more would put
    /// the resolved ones kept past [`RESOLVED_KEPT`].
    fn resolved_to_drop(&self) -> Option<u64> {
        let mut resolved = self.incidents.values().filter(|i| !i.unresolved());
        let oldest = resolved.next()?.id;
        (resolved.count() + 1 >= RESOLVED_KEPT).then_some(oldest)
    }
}

/// Appends to a timeline, dropping the oldest entries after the first
/// past [`MAX_TIMELINE`].
fn push_entry(incident: &mut Incident, unix_ms: u64, who: &str, text: String, revision: Revision) {
    incident.timeline.push(IncidentEntry {
        unix_ms,
        who: who.to_string(),
        text,
    });
    while incident.timeline.len() > MAX_TIMELINE {
        incident.timeline.remove(1);
        incident.timeline_dropped += 1;
    }
    incident.updated = revision;
}

fn check_by(by: &str) -> Result<(), Rejection> {
    if by.is_empty() || by.len() > 100 {
        return Err(Rejection::invalid("by", by, "1 to 100 bytes"));
    }
    Ok(())
}
