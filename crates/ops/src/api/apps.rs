//! `/apps` and `/tenants/{tenant}/apps[/{app}]`: list, create, show,
//! delete.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use state::{App, Command, Deployment, Name, Placement, State, Version};

use super::auth::Caller;
use super::body::read_json;
use super::error::ApiError;
use super::reply::{Reply, commit, json, no_content, with_revision};
use super::validate;
use crate::ControlPlane;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewApp {
    name: String,
    route: String,
    #[serde(default)]
    host: Option<String>,
}

/// One app in a listing.
#[derive(Serialize)]
struct Summary {
    tenant: Name,
    name: Name,
    route: String,
    host: Option<String>,
    /// How many versions it has, not counting rollouts' baseline copies.
    versions: usize,
    latest_version: Option<u64>,
    deployment: Option<Deployment>,
    /// The isolation tier of the deployed version.
    tier: Option<state::Tier>,
    /// Replicas of the deployed version the scheduler has placed on nodes.
    placed: u64,
    /// The rollout running now, if any.
    rollout: Option<Rolling>,
}

/// A running rollout in an app's summary.
#[derive(Serialize)]
struct Rolling {
    id: u64,
    from: u64,
    to: u64,
    /// The canary's share in the wave being rolled out to, in %.
    weight: u32,
    paused: bool,
}

#[derive(Serialize)]
struct List {
    apps: Vec<Summary>,
}

#[derive(Serialize)]
struct Detail {
    app: App,
    versions: Vec<Version>,
    deployment: Option<Deployment>,
    /// Where the scheduler placed its sandboxes, by version then node.
    placements: Vec<Placement>,
}

/// The `tenant` filter of `GET /apps?tenant=T`; other parameters are
/// refused so that a typo does not silently list everything.
fn tenant_filter(query: Option<&str>) -> Result<Option<Name>, ApiError> {
    let mut tenant = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "tenant" {
            return Err(ApiError::invalid(
                key.chars().take(80).collect::<String>(),
                "the only query parameter of GET /api/v1/apps is `tenant`",
            ));
        }
        tenant = Some(validate::name("tenant", value)?);
    }
    Ok(tenant)
}

fn summary(state: &State, app: &App) -> Summary {
    // A rollout's baseline copies of its stable version are not versions
    // anyone deployed: they are left out of the count.
    let versions: Vec<u64> = state
        .versions(&app.tenant, &app.name)
        .filter(|v| v.baseline_of.is_none())
        .map(|v| v.number)
        .collect();
    let deployment = state.deployment(&app.tenant, &app.name);
    Summary {
        tenant: app.tenant.clone(),
        name: app.name.clone(),
        route: app.route.clone(),
        host: app.host.clone(),
        versions: versions.len(),
        latest_version: versions.iter().copied().max(),
        placed: deployment.map_or(0, |d| {
            state
                .placements_of_app(&app.tenant, &app.name)
                .filter(|p| p.version == d.version)
                .map(|p| u64::from(p.count))
                .sum()
        }),
        tier: deployment.and_then(|d| {
            state
                .versions(&app.tenant, &app.name)
                .find(|v| v.number == d.version)
                .map(|v| v.config.tier)
        }),
        deployment: deployment.cloned(),
        rollout: state
            .active_rollout(&app.tenant, &app.name)
            .map(|r| Rolling {
                id: r.id,
                from: r.from,
                to: r.to,
                weight: r.progress.weight,
                paused: r.progress.status == state::rollout::Status::Paused,
            }),
    }
}

/// `GET /apps[?tenant=T]`; 404 when the tenant does not exist.
pub(crate) async fn list<P: ControlPlane>(
    plane: &P,
    caller: &Caller,
    query: Option<&str>,
) -> Result<Reply, ApiError> {
    let filter = tenant_filter(query)?;
    let caller = caller.clone();
    let listed = plane
        .read(move |state| {
            // A user limited to some tenants sees theirs only.
            let state = &*caller.view(state);
            if let Some(t) = &filter
                && state.tenant(t).is_none()
            {
                return Err(ApiError::not_found(format!("tenant `{t}` does not exist")));
            }
            Ok(state
                .apps()
                .filter(|a| filter.as_ref().is_none_or(|t| &a.tenant == t))
                .map(|a| summary(state, a))
                .collect())
        })
        .await??;
    json(StatusCode::OK, &List { apps: listed })
}

#[derive(Serialize)]
struct Conflicts {
    conflicts: Vec<state::claims::RouteConflict>,
}

/// `GET /route-conflicts`: the claims of different tenants that break the
/// routing rules (`state::claims`); only a state written before they were
/// checked has any, and `dwcp up` warns of them at start.
pub(crate) async fn conflicts<P: ControlPlane>(
    plane: &P,
    caller: &Caller,
) -> Result<Reply, ApiError> {
    let limited = caller.limited_to();
    let conflicts = plane
        .read(move |state| {
            let mut all = state.route_conflicts();
            // A limited user sees the pairs their tenants are part of.
            if let Some(tenants) = limited {
                all.retain(|c| {
                    tenants
                        .iter()
                        .any(|t| c.first.tenant == *t || c.second.tenant == *t)
                });
            }
            all
        })
        .await?;
    json(StatusCode::OK, &Conflicts { conflicts })
}

/// `POST /tenants/{tenant}/apps`.
pub(crate) async fn create<P: ControlPlane>(
    plane: &P,
    tenant: &str,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let tenant = validate::name("tenant", tenant)?;
    let (parts, body) = req.into_parts();
    let new: NewApp = read_json(&parts.headers, body).await?;
    let name = validate::name("name", &new.name)?;
    validate::route(&new.route)?;
    if let Some(host) = &new.host {
        validate::host(host)?;
    }
    let command = Command::CreateApp {
        tenant: tenant.clone(),
        name: name.clone(),
        route: new.route.clone(),
        host: new.host.clone(),
    };
    let (revision, _) = commit(plane, command).await?;
    let (t, n) = (tenant.clone(), name.clone());
    let stored = plane
        .read(move |state| state.app(&t, &n).cloned())
        .await?
        .unwrap_or(App {
            tenant,
            name,
            route: new.route,
            host: new.host,
            next_version: 1,
            created: revision,
        });
    Ok(with_revision(json(StatusCode::CREATED, &stored)?, revision))
}

/// `GET /tenants/{tenant}/apps/{app}`.
pub(crate) async fn show<P: ControlPlane>(
    plane: &P,
    tenant: &str,
    app: &str,
) -> Result<Reply, ApiError> {
    let tenant = validate::name("tenant", tenant)?;
    let app = validate::name("app", app)?;
    let label = format!("{tenant}/{app}");
    let detail = plane
        .read(move |state| {
            let found = state.app(&tenant, &app)?.clone();
            Some(Detail {
                versions: state.versions(&tenant, &app).cloned().collect(),
                deployment: state.deployment(&tenant, &app).cloned(),
                placements: state.placements_of_app(&tenant, &app).cloned().collect(),
                app: found,
            })
        })
        .await?;
    match detail {
        Some(detail) => json(StatusCode::OK, &detail),
        None => Err(ApiError::not_found(format!(
            "app `{label}` does not exist; GET /api/v1/apps lists the apps there are"
        ))),
    }
}

/// `DELETE /tenants/{tenant}/apps/{app}`: the app with its versions and
/// deployment.
pub(crate) async fn delete<P: ControlPlane>(
    plane: &P,
    tenant: &str,
    app: &str,
) -> Result<Reply, ApiError> {
    let tenant = validate::name("tenant", tenant)?;
    let name = validate::name("app", app)?;
    let (revision, _) = commit(plane, Command::DeleteApp { tenant, name }).await?;
    Ok(with_revision(no_content(), revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_tenant_filter() {
        assert_eq!(tenant_filter(None).unwrap(), None);
        assert_eq!(tenant_filter(Some("")).unwrap(), None);
        assert_eq!(
            tenant_filter(Some("tenant=acme"))
                .unwrap()
                .unwrap()
                .as_str(),
            "acme"
        );
        let e = tenant_filter(Some("tenant=Bad")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("tenant"));
        let e = tenant_filter(Some("tennant=acme")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("tennant"));
    }
}
