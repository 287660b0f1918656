//! Join tokens in the state machine: made with an expiry and a number of
//! uses, spent one join at a time, dropped once expired or used up. No
//! clock here — the time comes in the commands.

use super::{Change, Record, Revision, State, revalidate};
use crate::command::check_digest;
use crate::model::{Credential, JoinLimits};
use crate::{Command, Name, Outcome, Rejection, Role};

/// The longest a join token may live: 30 days.
pub const MAX_JOIN_TTL_MS: u64 = 30 * 24 * 3600 * 1000;

fn expired(c: &Credential, now_unix_ms: u64) -> bool {
    c.join
        .is_some_and(|l| now_unix_ms >= l.expires_unix_ms || l.uses_left == Some(0))
}

impl State {
    /// Every join token's credential (only hashes: the secrets are never
    /// stored), expired ones included until the next join-token command
    /// drops them.
    pub fn join_tokens(&self) -> impl Iterator<Item = &Credential> {
        self.credentials.values().filter(|c| c.role == Role::Join)
    }

    /// The join tokens that have expired or been used up by `now_unix_ms`.
    fn stale_join_tokens(&self, now_unix_ms: u64) -> Vec<Name> {
        self.join_tokens()
            .filter(|c| expired(c, now_unix_ms))
            .map(|c| c.name.clone())
            .collect()
    }

    pub(super) fn plan_join_token(
        &self,
        command: &Command,
    ) -> Result<(Outcome, Vec<Change>), Rejection> {
        let change = |key: &Name, deleted| Change {
            record: Record::Credential,
            key: key.to_string(),
            deleted,
        };
        let now = match command {
            Command::PutJoinToken { now_unix_ms, .. }
            | Command::UseJoinToken { now_unix_ms, .. } => *now_unix_ms,
            _ => unreachable!("only join-token commands come here"),
        };
        let mut changes: Vec<Change> = self
            .stale_join_tokens(now)
            .iter()
            .map(|n| change(n, true))
            .collect();
        match command {
            Command::PutJoinToken {
                name,
                sha256,
                ttl_ms,
                uses,
                ..
            } => {
                revalidate(name, "credential")?;
                check_digest(sha256).map_err(|_| {
                    Rejection::invalid("sha256", sha256, "64 lowercase hex digits (a sha256)")
                })?;
                if *ttl_ms == 0 || *ttl_ms > MAX_JOIN_TTL_MS {
                    return Err(Rejection::invalid(
                        "ttl_ms",
                        ttl_ms,
                        format!("from 1 to {MAX_JOIN_TTL_MS} (30 days)"),
                    ));
                }
                if *uses == Some(0) {
                    return Err(Rejection::invalid(
                        "uses",
                        0,
                        "at least 1, or none for any number",
                    ));
                }
                if self.credentials.contains_key(name) {
                    return Err(Rejection::AlreadyExists {
                        kind: "credential".into(),
                        name: name.to_string(),
                    });
                }
                changes.push(change(name, false));
            }
            Command::UseJoinToken { sha256, .. } => {
                let token = self
                    .credential_by_hash(sha256)
                    .filter(|c| c.role == Role::Join)
                    .ok_or_else(|| {
                        Rejection::not_found(
                            "join token",
                            "with this secret (revoked, or never made)",
                        )
                    })?;
                if let Some(limits) = token.join {
                    if now >= limits.expires_unix_ms {
                        return Err(Rejection::invalid(
                            "token",
                            &token.name,
                            format!(
                                "a join token that has not expired (this one expired at unix ms {}); make a new one with `dwcp cluster token`",
                                limits.expires_unix_ms
                            ),
                        ));
                    }
                    if limits.uses_left == Some(0) {
                        return Err(Rejection::invalid(
                            "token",
                            &token.name,
                            "a join token with uses left (this one is used up); make a new one with `dwcp cluster token`",
                        ));
                    }
                }
                let used_up = token.join.is_some_and(|l| l.uses_left == Some(1));
                changes.retain(|c| c.key != token.name.as_str());
                changes.push(change(&token.name, used_up));
            }
            _ => unreachable!("only join-token commands come here"),
        }
        Ok((Outcome::Applied, changes))
    }

    pub(super) fn commit_join_token(&mut self, command: &Command, revision: Revision) {
        match command {
            Command::PutJoinToken {
                name,
                sha256,
                now_unix_ms,
                ttl_ms,
                uses,
            } => {
                for stale in self.stale_join_tokens(*now_unix_ms) {
                    self.credentials.remove(&stale);
                }
                self.credentials.insert(
                    name.clone(),
                    Credential {
                        name: name.clone(),
                        role: Role::Join,
                        sha256: sha256.clone(),
                        created: revision,
                        join: Some(JoinLimits {
                            expires_unix_ms: now_unix_ms.saturating_add(*ttl_ms),
                            uses_left: *uses,
                        }),
                    },
                );
            }
            Command::UseJoinToken {
                sha256,
                now_unix_ms,
            } => {
                let used = self
                    .credentials
                    .values_mut()
                    .find(|c| c.sha256 == *sha256 && c.role == Role::Join);
                if let Some(used) = used
                    && let Some(limits) = used.join.as_mut()
                    && let Some(left) = limits.uses_left.as_mut()
                {
                    *left = left.saturating_sub(1);
                }
                for stale in self.stale_join_tokens(*now_unix_ms) {
                    self.credentials.remove(&stale);
                }
            }
            _ => unreachable!("only join-token commands come here"),
        }
    }
}
