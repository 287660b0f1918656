//! `/tenants`: list, create (or replace quotas), delete.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use state::{Command, Quotas, Tenant};

use super::auth::Caller;
use super::body::read_json;
use super::error::ApiError;
use super::reply::{Reply, commit, json, no_content, with_revision};
use super::validate;
use crate::ControlPlane;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
    #[serde(default)]
    quotas: Option<QuotasBody>,
}

/// Quotas as a request gives them; a missing member keeps its default.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotasBody {
    // A member given holds a number (`null` refused, as the document says).
    #[serde(default, deserialize_with = "super::strict::present")]
    max_apps: Option<u32>,
    #[serde(default, deserialize_with = "super::strict::present")]
    max_replicas: Option<u32>,
    #[serde(default, deserialize_with = "super::strict::present")]
    max_memory_bytes: Option<u64>,
    #[serde(default, deserialize_with = "super::strict::present")]
    max_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "super::strict::present")]
    max_concurrency: Option<u32>,
    #[serde(default, deserialize_with = "super::strict::present")]
    max_body_bytes: Option<u64>,
}

#[derive(Serialize)]
struct List {
    tenants: Vec<Tenant>,
}

/// `GET /tenants` (the caller's, for a user limited to some).
pub(crate) async fn list<P: ControlPlane>(plane: &P, caller: &Caller) -> Result<Reply, ApiError> {
    let caller = caller.clone();
    let tenants = plane
        .read(move |state| {
            state
                .tenants()
                .filter(|t| caller.sees(t.name.as_str()))
                .cloned()
                .collect()
        })
        .await?;
    json(StatusCode::OK, &List { tenants })
}

/// `POST /tenants`: 201 with the tenant when it is new (made by this
/// write, or absent just before it), 200 when it existed and its quotas
/// were replaced.
pub(crate) async fn create<P: ControlPlane>(
    plane: &P,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let (parts, body) = req.into_parts();
    let new: NewTenant = read_json(&parts.headers, body).await?;
    let name = validate::name("name", &new.name)?;
    let defaults = Quotas::default();
    let quotas = match new.quotas {
        None => defaults,
        Some(q) => Quotas {
            max_apps: q.max_apps.unwrap_or(defaults.max_apps),
            max_replicas: q.max_replicas.unwrap_or(defaults.max_replicas),
            max_memory_bytes: q.max_memory_bytes.unwrap_or(defaults.max_memory_bytes),
            max_timeout_ms: q.max_timeout_ms.unwrap_or(defaults.max_timeout_ms),
            max_concurrency: q.max_concurrency.unwrap_or(defaults.max_concurrency),
            max_body_bytes: q.max_body_bytes.unwrap_or(defaults.max_body_bytes),
        },
    };
    // In a planet the global tier's mirror may copy the new tenant into
    // this cell before this request's own copy commits, so `created` then
    // names the mirror's revision, not this write's: what existed before
    // the write tells a new tenant too.
    let before = name.clone();
    let existed = plane
        .read(move |state| state.tenant(&before).is_some())
        .await?;
    let command = Command::PutTenant {
        name: name.clone(),
        quotas: quotas.clone(),
    };
    let (revision, _) = commit(plane, command).await?;
    let key = name.clone();
    let stored = plane
        .read(move |state| state.tenant(&key).cloned())
        .await?
        // Deleted again since the write: answer with what was written.
        .unwrap_or(Tenant {
            name,
            quotas,
            created: revision,
        });
    let status = if stored.created == revision || !existed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(with_revision(json(status, &stored)?, revision))
}

/// `DELETE /tenants/{tenant}`.
pub(crate) async fn delete<P: ControlPlane>(plane: &P, tenant: &str) -> Result<Reply, ApiError> {
    let name = validate::name("tenant", tenant)?;
    let (revision, _) = commit(plane, Command::DeleteTenant { name }).await?;
    Ok(with_revision(no_content(), revision))
}
