//! The store's changes that may explain trouble — a version added, a
//! deployment or rollout moved, a region failed over, a node added or
//! removed, an app or SLO changed — read from the state's event history,
//! and nodes going silent or coming back (seen by the sampler). Each is
//! stamped with the autopilot's time when it was first seen (the store's
//! events carry a revision, not a time), so its timing can be set against
//! when a signal changed. Kept in a bounded log, oldest first.

use std::collections::VecDeque;

use serde::Serialize;
use state::{Name, Record, Revision, State};

use super::Subject;

/// Changes kept.
pub const MAX_CHANGES: usize = 512;

/// One change, as root-cause ranking weighs it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoreChange {
    /// When it was first seen (the autopilot's clock).
    pub t_ms: u64,
    /// The store's revision (0 for what the sampler saw: a node going
    /// silent or coming back).
    pub revision: u64,
    /// `version`, `deployment`, `rollout`, `failover`, `node`, `app`,
    /// `slo`, `region`, `node_silent` or `node_back`.
    pub record: String,
    /// The record's key, e.g. `acme/shop/2` for a version.
    pub key: String,
    pub deleted: bool,
    /// What it concerns: for a deployment or rollout, the version it
    /// moves traffic to.
    pub subject: Option<Subject>,
}

/// The changes seen, and where the store's history was last read.
#[derive(Clone, Debug, Default)]
pub struct ChangeLog {
    changes: VecDeque<StoreChange>,
    /// The revision read up to; `None` before the first read.
    revision: Option<Revision>,
}

impl ChangeLog {
    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &StoreChange> {
        self.changes.iter()
    }

    /// Reads the state's events since the last read; returns how many
    /// changes were added. The first read starts at the state's revision
    /// (what came before has no time); events compacted away are skipped.
    pub fn read(&mut self, state: &State, now_ms: u64) -> usize {
        let Some(since) = self.revision else {
            self.revision = Some(state.revision());
            return 0;
        };
        self.revision = Some(state.revision());
        let events = match state.events_since(since) {
            Ok(events) => events,
            Err(_) => return 0,
        };
        let before = self.changes.len();
        for e in events {
            let Some(record) = record_name(e.change.record) else {
                continue;
            };
            let subject = subject_of(state, e.change.record, &e.change.key);
            self.push(StoreChange {
                t_ms: now_ms,
                revision: e.revision.0,
                record: record.into(),
                key: e.change.key,
                deleted: e.change.deleted,
                subject,
            });
        }
        self.changes.len().saturating_sub(before)
    }

    /// Adds a change the caller saw (a node going silent or back).
    pub fn push(&mut self, change: StoreChange) {
        self.changes.push_back(change);
        while self.changes.len() > MAX_CHANGES {
            self.changes.pop_front();
        }
    }
}

/// The records whose changes may explain trouble, by name.
fn record_name(record: Record) -> Option<&'static str> {
    Some(match record {
        Record::Version => "version",
        Record::Deployment => "deployment",
        Record::Rollout => "rollout",
        Record::Failover => "failover",
        Record::Node => "node",
        Record::App => "app",
        Record::Slo => "slo",
        Record::Region => "region",
        _ => return None,
    })
}

/// What a change concerns, from its record and key.
fn subject_of(state: &State, record: Record, key: &str) -> Option<Subject> {
    let parts: Vec<&str> = key.split('/').collect();
    let name = |field: &'static str, s: &str| Name::new(field, s).ok();
    match (record, parts.as_slice()) {
        (Record::Version, [t, a, v]) => Some(Subject::Version {
            tenant: name("tenant", t)?,
            app: name("app", a)?,
            version: v.parse().ok()?,
        }),
        (Record::Deployment | Record::Rollout | Record::App | Record::Slo, [t, a, ..]) => {
            let (tenant, app) = (name("tenant", t)?, name("app", a)?);
            let version = match record {
                Record::Deployment => state.deployment(&tenant, &app).map(|d| d.version),
                Record::Rollout => state.rollouts_of(&tenant, &app).next_back().map(|r| r.to),
                _ => None,
            };
            Some(match version {
                Some(version) => Subject::Version {
                    tenant,
                    app,
                    version,
                },
                None => Subject::App { tenant, app },
            })
        }
        (Record::Node, [n]) => Some(Subject::Node {
            node: name("node", n)?,
        }),
        (Record::Failover | Record::Region, [r]) => Some(Subject::Region {
            region: name("region", r)?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::{Command, Quotas, VersionConfig};

    fn n(s: &str) -> Name {
        Name::new("test", s).unwrap()
    }

    #[test]
    fn changes_are_stamped_when_first_seen_and_name_their_version() {
        let mut s = State::default();
        let mut log = ChangeLog::default();
        s.apply(&Command::PutTenant {
            name: n("acme"),
            quotas: Quotas::default(),
        })
        .unwrap();
        assert_eq!(
            log.read(&s, 1_000),
            0,
            "the first read only marks where it is"
        );
        for c in [
            Command::CreateApp {
                tenant: n("acme"),
                name: n("shop"),
                route: "/shop".into(),
                host: None,
            },
            Command::AddVersion {
                tenant: n("acme"),
                app: n("shop"),
                digest: "a".repeat(64),
                config: VersionConfig::default(),
            },
        ] {
            s.apply(&c).unwrap();
        }
        // The app made, then the version added (which also changes its
        // app's record: the next version number).
        assert_eq!(log.read(&s, 2_000), 3);
        let version = log.iter().find(|c| c.record == "version").unwrap();
        assert_eq!((version.record.as_str(), version.t_ms), ("version", 2_000));
        assert_eq!(
            version.subject,
            Some(Subject::Version {
                tenant: n("acme"),
                app: n("shop"),
                version: 1
            })
        );
        // A tenant's change explains nothing: not kept.
        s.apply(&Command::PutTenant {
            name: n("other"),
            quotas: Quotas::default(),
        })
        .unwrap();
        assert_eq!(log.read(&s, 3_000), 0);
    }
}
