//! `PUT /tenants/{tenant}/apps/{app}/deployment`: how many replicas of
//! which version run in each region.

use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use state::{Command, Deployment};

use super::auth::Caller;
use super::body::read_json;
use super::error::ApiError;
use super::reply::{Reply, commit, json, noted, with_revision};
use super::validate;
use crate::ControlPlane;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetDeployment {
    version: u64,
    regions: BTreeMap<String, u32>,
    /// An admin's reason to set it though the go-live gate refuses.
    #[serde(default)]
    override_certification: Option<String>,
}

/// Sets (replaces) the app's deployment.
pub(crate) async fn set<P: ControlPlane>(
    plane: &P,
    tenant: &str,
    app: &str,
    caller: &Caller,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let tenant = validate::name("tenant", tenant)?;
    let app = validate::name("app", app)?;
    let (parts, body) = req.into_parts();
    let wanted: SetDeployment = read_json(&parts.headers, body).await?;
    let mut regions = BTreeMap::new();
    for (region, replicas) in wanted.regions {
        let name = state::Name::new("regions", &region).map_err(|e| {
            ApiError::invalid(
                "regions",
                format!(
                    "region `{}` is not a valid name: {}; use 1-63 of a-z, 0-9 and '-', starting with a letter",
                    e.value, e.reason
                ),
            )
        })?;
        validate::replicas(&region, replicas)?;
        regions.insert(name, replicas);
    }
    let note = super::certify::gate(
        plane,
        caller,
        (tenant.as_str(), app.as_str()),
        wanted.override_certification.as_deref(),
    )
    .await?;
    let command = Command::SetDeployment {
        tenant: tenant.clone(),
        app: app.clone(),
        version: wanted.version,
        regions: regions.clone(),
    };
    let (revision, _) = noted(note, commit(plane, command)).await?;
    let (t, a) = (tenant.clone(), app.clone());
    let stored = plane
        .read(move |state| state.deployment(&t, &a).cloned())
        .await?
        .unwrap_or(Deployment {
            tenant,
            app,
            version: wanted.version,
            regions,
            updated: revision,
        });
    Ok(with_revision(json(StatusCode::OK, &stored)?, revision))
}
