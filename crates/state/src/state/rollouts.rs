//! Rollouts in the state machine: starting one (with its baseline),
//! the controller's steps, an operator's abort and promotion. Kept apart
//! from the other records because a rollout's rules read several of them
//! (the app, its deployment, its versions, the regions, other apps' routes).

use super::{Change, Record, Revision, State};
use crate::claims::Authority;
use crate::command::check_route;
use crate::model::{Rollout, TrailEntry, Version};
use crate::rollout;
use crate::{Command, Name, Outcome, Rejection};

/// Most entries of one rollout's audit trail; past it the oldest go (the
/// trail says how many).
const MAX_TRAIL: usize = 2_000;

/// Finished rollouts kept per app, for `history`.
const KEPT_PER_APP: usize = 50;

/// Longest text of one trail entry.
const MAX_TEXT: usize = 2_000;

impl State {
    /// The rollouts of one app, oldest first.
    pub fn rollouts_of<'a>(
        &'a self,
        tenant: &Name,
        app: &Name,
    ) -> impl DoubleEndedIterator<Item = &'a Rollout> + use<'a> {
        let from = (tenant.clone(), app.clone(), 0);
        let to = (tenant.clone(), app.clone(), u64::MAX);
        self.rollouts.range(from..=to).map(|(_, r)| r)
    }

    /// The app's rollout that is still running, if any.
    pub fn active_rollout(&self, tenant: &Name, app: &Name) -> Option<&Rollout> {
        self.rollouts_of(tenant, app)
            .next_back()
            .filter(|r| r.active())
    }

    /// Every rollout still running.
    pub fn active_rollouts(&self) -> impl Iterator<Item = &Rollout> {
        self.rollouts.values().filter(|r| r.active())
    }

    pub(super) fn plan_rollout(
        &self,
        command: &Command,
        authority: Authority,
    ) -> Result<(Outcome, Vec<Change>), Rejection> {
        let change = |record, key: String| Change {
            record,
            key,
            deleted: false,
        };
        let changed = |tenant: &Name, app: &Name| {
            Ok((
                Outcome::Applied,
                vec![change(Record::Rollout, format!("{tenant}/{app}"))],
            ))
        };
        match command {
            Command::StartRollout {
                tenant,
                app,
                to,
                plan,
                by,
                ..
            } => {
                let found = self
                    .app(tenant, app)
                    .ok_or_else(|| Rejection::not_found("app", format!("{tenant}/{app}")))?;
                // Refusals below that depend on the app's state (not the
                // request's shape) are conflicts: the API's 409.
                let deployment = self.deployment(tenant, app).ok_or_else(|| {
                    Rejection::conflict(
                        "app",
                        format!("{tenant}/{app}"),
                        "an app with a deployed version (deploy one first; a rollout moves from it)",
                    )
                })?;
                if let Some(running) = self.active_rollout(tenant, app) {
                    return Err(Rejection::conflict(
                        "app",
                        format!("{tenant}/{app}"),
                        format!(
                            "one rollout at a time; rollout {} (to version {}) is running: promote it to the end or abort it",
                            running.id, running.to
                        ),
                    ));
                }
                let target = self
                    .versions
                    .get(&(tenant.clone(), app.clone(), *to))
                    .ok_or_else(|| {
                        Rejection::not_found("version", format!("{tenant}/{app}/{to}"))
                    })?;
                if target.baseline_of.is_some() {
                    return Err(Rejection::conflict(
                        "to",
                        to,
                        "a version of the app that is not a rollout's baseline copy",
                    ));
                }
                if *to == deployment.version {
                    return Err(Rejection::conflict(
                        "to",
                        to,
                        format!(
                            "a version other than the deployed one ({})",
                            deployment.version
                        ),
                    ));
                }
                check_by(by)?;
                plan.check()
                    .map_err(|e| Rejection::invalid("plan", e.to_string(), "a valid plan"))?;
                if let Some(waves) = plan.waves() {
                    for region in waves.iter().flatten() {
                        let deployed = deployment
                            .regions
                            .iter()
                            .any(|(r, &n)| r.as_str() == region && n > 0);
                        if !deployed {
                            return Err(Rejection::conflict(
                                "plan",
                                format!("step 1: region_wave.waves: region `{region}`"),
                                format!(
                                    "regions the app is deployed in: {}",
                                    deployment
                                        .regions
                                        .keys()
                                        .map(Name::as_str)
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            ));
                        }
                    }
                }
                if let Some(preview) = plan.preview_route() {
                    check_route(preview).map_err(|_| {
                        Rejection::invalid(
                            "plan",
                            format!("blue_green.preview_route `{preview}`"),
                            "a path prefix like /preview/shop",
                        )
                    })?;
                    if let Some(other) = self
                        .apps
                        .values()
                        .find(|a| a.route == preview && a.host == found.host)
                    {
                        return Err(Rejection::invalid(
                            "plan",
                            format!("blue_green.preview_route `{preview}`"),
                            format!(
                                "a route no app serves (app {}/{} is at it)",
                                other.tenant, other.name
                            ),
                        ));
                    }
                    self.check_claim(tenant, found.host.as_deref(), preview, "plan", authority)?;
                }
                let mut changes = changed(tenant, app)?.1;
                if plan.preview_route().is_none() {
                    let number = found.next_version;
                    changes.push(change(Record::Version, format!("{tenant}/{app}/{number}")));
                    changes.push(change(Record::App, format!("{tenant}/{app}")));
                }
                Ok((Outcome::Applied, changes))
            }
            Command::AdvanceRollout {
                tenant,
                app,
                id,
                expected,
                progress,
                records,
                ..
            } => {
                let running = self.running(tenant, app)?;
                if running.id != *id || running.updated != *expected {
                    return Err(Rejection::invalid(
                        "expected",
                        expected.0,
                        format!(
                            "the revision of rollout {}'s last change ({}); it changed since it was read",
                            running.id, running.updated.0
                        ),
                    ));
                }
                if records.len() > 100 {
                    return Err(Rejection::invalid(
                        "records",
                        records.len(),
                        "at most 100 per step",
                    ));
                }
                let mut changes = changed(tenant, app)?.1;
                // Success deploys the new version in the same command.
                if progress.status == rollout::Status::Succeeded {
                    changes.push(change(Record::Deployment, format!("{tenant}/{app}")));
                }
                Ok((Outcome::Applied, changes))
            }
            Command::AbortRollout {
                tenant,
                app,
                reason,
                by,
                ..
            } => {
                self.running(tenant, app)?;
                check_by(by)?;
                if reason.len() > MAX_TEXT {
                    return Err(Rejection::invalid(
                        "reason",
                        reason,
                        format!("at most {MAX_TEXT} bytes"),
                    ));
                }
                changed(tenant, app)
            }
            Command::PromoteRollout {
                tenant, app, by, ..
            } => {
                self.running(tenant, app)?;
                check_by(by)?;
                changed(tenant, app)
            }
            _ => unreachable!("only rollout commands come here"),
        }
    }

    fn running(&self, tenant: &Name, app: &Name) -> Result<&Rollout, Rejection> {
        self.app(tenant, app)
            .ok_or_else(|| Rejection::not_found("app", format!("{tenant}/{app}")))?;
        self.active_rollout(tenant, app).ok_or_else(|| {
            Rejection::not_found("running rollout of app", format!("{tenant}/{app}"))
        })
    }

    /// Makes a change [`State::plan_rollout`] allowed.
    pub(super) fn commit_rollout(&mut self, command: &Command, revision: Revision) {
        match command {
            Command::StartRollout {
                tenant,
                app,
                to,
                plan,
                by,
                now_unix_ms,
            } => {
                let Some(from) = self.deployment(tenant, app).map(|d| d.version) else {
                    return;
                };
                let baseline = if plan.preview_route().is_none() {
                    self.add_baseline(tenant, app, from, revision)
                } else {
                    None
                };
                let id = self
                    .rollouts_of(tenant, app)
                    .next_back()
                    .map_or(1, |r| r.id + 1);
                let mut text = format!("started: version {from} -> {to}");
                if let Some(b) = baseline {
                    text.push_str(&format!("; baseline version {b} (a copy of {from})"));
                }
                let rollout = Rollout {
                    tenant: tenant.clone(),
                    app: app.clone(),
                    id,
                    from,
                    to: *to,
                    baseline,
                    plan: plan.clone(),
                    progress: rollout::start(*now_unix_ms),
                    promote: false,
                    started_unix_ms: *now_unix_ms,
                    finished_unix_ms: None,
                    trail: vec![TrailEntry {
                        unix_ms: *now_unix_ms,
                        by: by.clone(),
                        text,
                    }],
                    updated: revision,
                };
                self.rollouts
                    .insert((tenant.clone(), app.clone(), id), rollout);
                self.forget_old_rollouts(tenant, app);
            }
            Command::AdvanceRollout {
                tenant,
                app,
                progress,
                records,
                now_unix_ms,
                ..
            } => {
                let succeeded = matches!(progress.status, rollout::Status::Succeeded);
                let Some(r) = self.active_mut(tenant, app) else {
                    return;
                };
                r.progress = progress.clone();
                r.promote = false;
                r.updated = revision;
                for text in records {
                    push_trail(r, *now_unix_ms, "controller", text);
                }
                if !matches!(
                    progress.status,
                    rollout::Status::Progressing | rollout::Status::Paused
                ) {
                    r.finished_unix_ms = Some(*now_unix_ms);
                }
                let to = r.to;
                if succeeded
                    && let Some(d) = self.deployments.get_mut(&(tenant.clone(), app.clone()))
                {
                    d.version = to;
                    d.updated = revision;
                }
            }
            Command::AbortRollout {
                tenant,
                app,
                reason,
                by,
                now_unix_ms,
            } => {
                let Some(r) = self.active_mut(tenant, app) else {
                    return;
                };
                let reason = if reason.is_empty() {
                    "aborted by an operator"
                } else {
                    reason
                };
                r.progress.weight = 0;
                r.progress.status = rollout::Status::Aborted {
                    reason: reason.to_string(),
                };
                r.finished_unix_ms = Some(*now_unix_ms);
                r.updated = revision;
                let text = format!(
                    "aborted at step {}: {reason}; all traffic to stable",
                    r.progress.step + 1
                );
                push_trail(r, *now_unix_ms, by, &text);
            }
            Command::PromoteRollout {
                tenant,
                app,
                by,
                now_unix_ms,
            } => {
                let Some(r) = self.active_mut(tenant, app) else {
                    return;
                };
                r.promote = true;
                r.updated = revision;
                push_trail(r, *now_unix_ms, by, "promotion asked");
            }
            _ => {}
        }
    }

    fn active_mut(&mut self, tenant: &Name, app: &Name) -> Option<&mut Rollout> {
        let from = (tenant.clone(), app.clone(), 0);
        let to = (tenant.clone(), app.clone(), u64::MAX);
        self.rollouts
            .range_mut(from..=to)
            .next_back()
            .map(|(_, r)| r)
            .filter(|r| r.active())
    }

    /// Adds a copy of version `of` as a rollout's baseline; its number.
    fn add_baseline(
        &mut self,
        tenant: &Name,
        app: &Name,
        of: u64,
        revision: Revision,
    ) -> Option<u64> {
        let stable = self
            .versions
            .get(&(tenant.clone(), app.clone(), of))?
            .clone();
        let found = self.apps.get_mut(&(tenant.clone(), app.clone()))?;
        let number = found.next_version;
        found.next_version += 1;
        self.versions.insert(
            (tenant.clone(), app.clone(), number),
            Version {
                number,
                created: revision,
                baseline_of: Some(of),
                ..stable
            },
        );
        Some(number)
    }

    fn forget_old_rollouts(&mut self, tenant: &Name, app: &Name) {
        let ids: Vec<u64> = self.rollouts_of(tenant, app).map(|r| r.id).collect();
        for id in ids.iter().take(ids.len().saturating_sub(KEPT_PER_APP)) {
            self.rollouts.remove(&(tenant.clone(), app.clone(), *id));
        }
    }
}

fn check_by(by: &str) -> Result<(), Rejection> {
    if by.is_empty() || by.len() > 200 {
        return Err(Rejection::invalid(
            "by",
            by,
            "1 to 200 bytes naming who acts",
        ));
    }
    Ok(())
}

fn push_trail(r: &mut Rollout, unix_ms: u64, by: &str, text: &str) {
    if r.trail.len() >= MAX_TRAIL {
        r.trail.drain(1..MAX_TRAIL / 10);
        r.trail.insert(
            1,
            TrailEntry {
                unix_ms,
                by: "store".into(),
                text: "older entries dropped (the trail keeps its first and latest entries)".into(),
            },
        );
    }
    let text: String = text.chars().take(MAX_TEXT).collect();
    r.trail.push(TrailEntry {
        unix_ms,
        by: by.to_string(),
        text,
    });
}
