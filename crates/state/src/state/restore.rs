//! A backup restored into a new cluster ([`Command::Restore`]).
//!
//! `dwcp restore` founds a cluster with a new identity (its own CA, node
//! certificates and join token) and then sends one `Restore` with the
//! backup's state. The state becomes the backup's, with these exceptions,
//! which belong to the new cluster and not to the one backed up:
//!
//! - nodes, their reports and their placements: the backed-up cluster's
//!   nodes are not members here; the scheduler places the restored
//!   deployments on the new nodes;
//! - join credentials (a join token names the CA it trusts) and the
//!   registers under [`IDENTITY_REGISTERS`] (the node-id counter);
//! - regions: the backup's, plus the new cluster's own;
//! - TOTP enrolments are cleared (their secrets were sealed under a key
//!   derived from the old cluster's secrets, which a backup never holds)
//!   and sessions are ended: users sign in again and re-enrol;
//! - certification (reports, waivers, sign-offs, the go-live policy) is
//!   cleared: it judged the backed-up cluster, not this one — certify
//!   the restored cluster again;
//! - the revision continues after both the backup's and this state's, and
//!   the event history starts afresh (a watcher reads the state again).
//!
//! Everything else — tenants, apps, versions, deployments, rollouts, API
//! credentials, users and their passwords, SLOs, incidents, runbooks,
//! prices, registers, the audit log — is the backup's. The restore itself is
//! the audit log's newest entry.

use std::collections::VecDeque;

use super::{Change, Record, Revision, State};
use crate::model::{AuditEntry, Role};
use crate::{Outcome, Rejection};

/// Registers whose keys start with this belong to the cluster that holds
/// them (e.g. the next node id) and are not taken from a backup.
pub const IDENTITY_REGISTERS: &str = "cluster/";

impl State {
    pub(super) fn plan_restore(&self, backup: &State) -> Result<(Outcome, Vec<Change>), Rejection> {
        let apps = self.apps.len();
        if apps > 0 {
            return Err(Rejection::invalid(
                "restore",
                format!("a cluster with {apps} apps"),
                "a new cluster with no app: a restore founds a cluster, it never overwrites one",
            ));
        }
        Ok((
            Outcome::Applied,
            vec![Change {
                record: Record::Restore,
                key: backup.revision.0.to_string(),
                deleted: false,
            }],
        ))
    }

    /// Becomes `backup`, keeping this cluster's identity (see the module
    /// doc). Sets the revision and history itself.
    pub(super) fn commit_restore(&mut self, backup: &State, by: &str, now_unix_ms: u64) {
        let mut restored = backup.clone();
        restored.nodes = std::mem::take(&mut self.nodes);
        restored.reports = std::mem::take(&mut self.reports);
        restored.placements = std::mem::take(&mut self.placements);
        restored.credentials.retain(|_, c| c.role != Role::Join);
        restored.credentials.extend(
            std::mem::take(&mut self.credentials)
                .into_iter()
                .filter(|(_, c)| c.role == Role::Join),
        );
        restored
            .registers
            .retain(|key, _| !key.starts_with(IDENTITY_REGISTERS));
        restored.registers.extend(
            std::mem::take(&mut self.registers)
                .into_iter()
                .filter(|(key, _)| key.starts_with(IDENTITY_REGISTERS)),
        );
        for (name, region) in std::mem::take(&mut self.regions) {
            restored.regions.entry(name).or_insert(region);
        }
        for user in restored.users.values_mut() {
            user.totp_sealed = None;
            user.totp_confirmed = false;
        }
        restored.sessions.clear();
        restored.forget_certification();
        let revision = Revision(self.revision.0.max(backup.revision.0) + 1);
        restored.revision = revision;
        restored.audit.push_back(AuditEntry {
            revision,
            unix_ms: now_unix_ms,
            who: by.to_string(),
            from: "dwcp restore".into(),
            what: format!("restore the backup taken at revision {}", backup.revision.0),
        });
        while restored.audit.len() > super::AUDIT_KEPT {
            restored.audit.pop_front();
        }
        restored.history = VecDeque::new();
        restored.floor = revision;
        *self = restored;
    }
}
