//! How an action reaches the cluster: the store commands of the existing
//! machinery that carry it out (the scheduler, rollouts, the planet
//! tier's failover records, incidents). Pure: the leader's loop writes
//! them, then records the action finished. Each is idempotent — written
//! twice (a new leader resuming a running action) it changes nothing more.
//!
//! Cordon, uncordon, drain and a pool's restart need none: the state
//! machine sets the node's schedule (which the scheduler reads) or counts
//! the pool's restart (which the node's agent reads) when it begins them.
//! A throttle is the tenant's concurrency quota, which every gateway
//! applies to the tenant's routes.

use std::collections::BTreeMap;

use state::act::action::Action;
use state::{Command, Name, RegionFailover, Severity, State};

/// Who the autopilot's commands are by, in audit trails and timelines.
pub const BY: &str = "autopilot";
/// The alert name of incidents the autopilot opens.
pub const ALERT: &str = "autopilot";

/// The commands that carry `action` out on `state` as it is now (empty
/// when it is already carried out), or why it cannot be.
pub fn commands_for(action: &Action, state: &State, now_ms: u64) -> Result<Vec<Command>, String> {
    let name = |field: &'static str, v: &str| Name::new(field, v).map_err(|e| e.to_string());
    match action {
        Action::Cordon { .. }
        | Action::Uncordon { .. }
        | Action::Drain { .. }
        | Action::RestartPool { .. } => Ok(Vec::new()),
        Action::Scale {
            tenant, app, to, ..
        } => {
            let (tenant, app) = (name("tenant", tenant)?, name("app", app)?);
            let d = state
                .deployment(&tenant, &app)
                .ok_or_else(|| format!("{tenant}/{app} has no deployment"))?;
            let regions = rescale(&d.regions, *to);
            if regions == d.regions {
                return Ok(Vec::new());
            }
            Ok(vec![Command::SetDeployment {
                tenant,
                app,
                version: d.version,
                regions,
            }])
        }
        Action::Rollback {
            tenant,
            app,
            version,
            to_version,
        } => {
            let (tenant, app) = (name("tenant", tenant)?, name("app", app)?);
            if state
                .active_rollout(&tenant, &app)
                .is_some_and(|r| r.to == *version)
            {
                return Ok(vec![Command::AbortRollout {
                    tenant,
                    app,
                    reason: format!("the autopilot rolled version {version} back"),
                    by: BY.into(),
                    now_unix_ms: now_ms,
                }]);
            }
            redeploy(state, tenant, app, *version, *to_version)
        }
        Action::RollForward {
            tenant,
            app,
            version,
            from_version,
        } => {
            let (tenant, app) = (name("tenant", tenant)?, name("app", app)?);
            redeploy(state, tenant, app, *from_version, *version)
        }
        Action::Failover { region, to_region } => {
            let failover = RegionFailover {
                region: name("region", region)?,
                declared_ms: now_ms,
                targets: vec![(name("region", to_region)?, 1000)],
                approved: true,
                recovered_ms: None,
                earlier_ms: Vec::new(),
            };
            let region = failover.region.clone();
            if state
                .failovers()
                .any(|f| f.region == region && f.recovered_ms.is_none())
            {
                return Ok(Vec::new());
            }
            Ok(vec![Command::PutFailover { failover }])
        }
        Action::Failback { region, .. } => {
            let region = name("region", region)?;
            let Some(f) = state
                .failovers()
                .find(|f| f.region == region && f.recovered_ms.is_none())
            else {
                return Ok(Vec::new());
            };
            Ok(vec![Command::PutFailover {
                failover: RegionFailover {
                    recovered_ms: Some(now_ms),
                    ..f.clone()
                },
            }])
        }
        Action::OpenIncident { fingerprint, text } => {
            Ok(vec![incident(fingerprint, text, Severity::Ticket, now_ms)?])
        }
        Action::Escalate { fingerprint } => match state.unresolved_incident(fingerprint) {
            Some(i) => Ok(vec![Command::NoteIncident {
                id: i.id,
                by: BY.into(),
                text: "escalated by the autopilot: paging".into(),
                now_unix_ms: now_ms,
            }]),
            None => Ok(vec![incident(
                fingerprint,
                "escalated by the autopilot",
                Severity::Page,
                now_ms,
            )?]),
        },
        Action::Throttle { tenant, to, .. } => {
            let tenant = name("tenant", tenant)?;
            let t = state
                .tenant(&tenant)
                .ok_or_else(|| format!("tenant {tenant} does not exist"))?;
            if t.quotas.max_concurrency == *to {
                return Ok(Vec::new());
            }
            let mut quotas = t.quotas.clone();
            quotas.max_concurrency = *to;
            Ok(vec![Command::PutTenant {
                name: tenant,
                quotas,
            }])
        }
    }
}

/// The incident that tells people approval `id` waits: opened when it is
/// asked; reminders and pages join it while it is unresolved.
pub fn approval_incident(
    id: u64,
    text: &str,
    severity: Severity,
    now_ms: u64,
) -> Result<Command, String> {
    incident(&format!("autopilot:approval:{id}"), text, severity, now_ms)
}

/// An incident the autopilot opens; it belongs to no app, so it is filed
/// under `dwcp/autopilot`.
fn incident(
    fingerprint: &str,
    text: &str,
    severity: Severity,
    now_ms: u64,
) -> Result<Command, String> {
    let name = |field: &'static str, v: &str| Name::new(field, v).map_err(|e| e.to_string());
    Ok(Command::OpenIncident {
        fingerprint: fingerprint.chars().take(300).collect(),
        alert: ALERT.into(),
        tenant: name("tenant", "dwcp")?,
        app: name("app", "autopilot")?,
        slo: name("slo", "autopilot")?,
        severity,
        text: text.chars().take(1_000).collect(),
        by: BY.into(),
        now_unix_ms: now_ms,
    })
}

/// Deploys `to` in place of `from` with the same replicas, unless the app
/// already runs `to`.
fn redeploy(
    state: &State,
    tenant: Name,
    app: Name,
    from: u64,
    to: u64,
) -> Result<Vec<Command>, String> {
    let d = state
        .deployment(&tenant, &app)
        .ok_or_else(|| format!("{tenant}/{app} has no deployment"))?;
    if d.version == to {
        return Ok(Vec::new());
    }
    if d.version != from {
        return Err(format!(
            "{tenant}/{app} runs version {}, neither {from} nor {to}",
            d.version
        ));
    }
    Ok(vec![Command::SetDeployment {
        tenant,
        app,
        version: to,
        regions: d.regions.clone(),
    }])
}

/// Replicas per region summing to `to`: added to the region with the
/// most (ties by name), taken from the regions with the most first.
pub fn rescale(regions: &BTreeMap<Name, u32>, to: u32) -> BTreeMap<Name, u32> {
    let mut out = regions.clone();
    let total = |m: &BTreeMap<Name, u32>| m.values().map(|&r| u64::from(r)).sum::<u64>();
    while total(&out) != u64::from(to) {
        // The region with the most replicas, the first by name among equals.
        let Some(top) = out
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        let r = out.entry(top).or_default();
        if total(regions) < u64::from(to) {
            *r += 1;
        } else if *r == 0 {
            break;
        } else {
            *r -= 1;
        }
    }
    out
}
