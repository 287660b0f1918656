//! `POST /tenants/{tenant}/apps/{app}/versions`: a new version from an
//! uploaded artifact.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use state::{Command, Outcome, Tier, Version, VersionConfig};

use super::body::read_json;
use super::error::ApiError;
use super::reply::{Reply, commit, json, with_revision};
use super::validate;
use crate::ControlPlane;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewVersion {
    digest: String,
    #[serde(default)]
    config: Option<ConfigBody>,
}

/// A version's configuration as a request gives it; a missing member
/// keeps [`VersionConfig::default`]'s value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    memory_bytes: Option<u64>,
    timeout_ms: Option<u64>,
    warm: Option<bool>,
    max_concurrency: Option<u32>,
    max_request_bytes: Option<u64>,
    max_response_bytes: Option<u64>,
    tier: Option<Tier>,
}

impl ConfigBody {
    fn resolve(given: Option<ConfigBody>) -> VersionConfig {
        let defaults = VersionConfig::default();
        let Some(given) = given else {
            return defaults;
        };
        VersionConfig {
            memory_bytes: given.memory_bytes.unwrap_or(defaults.memory_bytes),
            timeout_ms: given.timeout_ms.unwrap_or(defaults.timeout_ms),
            warm: given.warm.unwrap_or(defaults.warm),
            max_concurrency: given.max_concurrency.unwrap_or(defaults.max_concurrency),
            max_request_bytes: given
                .max_request_bytes
                .unwrap_or(defaults.max_request_bytes),
            max_response_bytes: given
                .max_response_bytes
                .unwrap_or(defaults.max_response_bytes),
            tier: given.tier.unwrap_or(defaults.tier),
        }
    }
}

/// Adds the app's next version; the artifact must be stored already.
pub(crate) async fn add<P: ControlPlane>(
    plane: &P,
    tenant: &str,
    app: &str,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let tenant = validate::name("tenant", tenant)?;
    let app = validate::name("app", app)?;
    let (parts, body) = req.into_parts();
    let new: NewVersion = read_json(&parts.headers, body).await?;
    validate::digest(&new.digest)?;
    let config = ConfigBody::resolve(new.config);
    validate::config(&config)?;
    if !plane.has_blob(&new.digest) {
        return Err(ApiError::not_found_field(
            "digest",
            format!(
                "no artifact with digest `{}` is stored: upload the artifact first with POST /api/v1/blobs",
                new.digest
            ),
        ));
    }
    // Uploads were checked to be a module or a static program; the tier
    // named must be the artifact's.
    if let Some(is_elf) = plane.blob_is_elf(&new.digest) {
        let kind = if is_elf {
            "a static x86-64 Linux program (ELF)"
        } else {
            "a WebAssembly module"
        };
        if is_elf != (config.tier == Tier::Microvm) {
            return Err(ApiError::invalid(
                "config.tier",
                format!(
                    "the artifact `{}` is {kind}, which the `{}` tier does not run; use tier `{}`",
                    new.digest,
                    config.tier,
                    if is_elf { Tier::Microvm } else { Tier::Wasm }
                ),
            ));
        }
    }
    let command = Command::AddVersion {
        tenant: tenant.clone(),
        app: app.clone(),
        digest: new.digest.clone(),
        config: config.clone(),
    };
    let (revision, outcome) = commit(plane, command).await?;
    let Outcome::VersionAdded(number) = outcome else {
        return Err(ApiError::internal(format!(
            "adding a version answered {outcome:?} instead of its number"
        )));
    };
    let (t, a) = (tenant.clone(), app.clone());
    let stored = plane
        .read(move |state| state.versions(&t, &a).find(|v| v.number == number).cloned())
        .await?
        .unwrap_or(Version {
            tenant,
            app,
            number,
            digest: new.digest,
            config,
            created: revision,
            baseline_of: None,
        });
    Ok(with_revision(json(StatusCode::CREATED, &stored)?, revision))
}
