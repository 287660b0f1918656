//! `dwcp scale APP N`: the deployed version's replicas changed, with no
//! new version (`PUT .../deployment` with the same version).

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::Serialize;
use state::{Deployment, Name};

use crate::cli::client::{self, ApiArgs, Client, app_path, plural};
use crate::cli::deploy::AppDetail;

/// Run N sandboxes of an app's deployed version, without a new version.
///
/// Changes one region's replicas: --region, or the deployment's one region
/// when it has only one. A version's module or limits are changed by
/// `dwcp deploy` (or rolled out with `dwcp rollout start`).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp scale hello 3\n  dwcp scale shop 0 --region eu-west --tenant team-a"
)]
pub struct ScaleArgs {
    /// The app's name.
    name: String,
    /// Sandboxes to run in the region (0 keeps the app deployed but runs none).
    replicas: String,
    /// The region to change [default: the deployment's region, when it has one].
    #[arg(long, value_name = "R")]
    region: Option<String>,
    /// The tenant that owns the app.
    #[arg(long, value_name = "T", default_value = "default")]
    tenant: String,
    /// Print the deployment as JSON instead of a summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// The body of `PUT /tenants/{tenant}/apps/{app}/deployment`.
#[derive(Debug, PartialEq, Serialize)]
struct SetDeployment {
    version: u64,
    regions: BTreeMap<Name, u32>,
}

pub fn run(args: ScaleArgs) -> Result<()> {
    let tenant = Name::new("--tenant", &args.tenant)?;
    let name = Name::new("NAME", &args.name)?;
    let replicas: u32 = args.replicas.trim().parse().map_err(|_| {
        anyhow::anyhow!(
            "N `{}` is not a number of sandboxes; use 0 or more, e.g. 3",
            args.replicas
        )
    })?;
    state::check_replicas(replicas).map_err(|e| anyhow::anyhow!("N: {e}"))?;
    let region = args
        .region
        .as_deref()
        .map(|r| Name::new("--region", r))
        .transpose()?;
    let client = Client::new(&args.api)?;
    let path = app_path(&tenant, &name);
    client::block_on(async {
        let detail: AppDetail = client.get(&path).await?;
        let body = scaled(&detail, region.as_ref(), replicas)?;
        let deployment: Deployment = client.put(&format!("{path}/deployment"), &body).await?;
        client::print_outcome(args.json, &deployment, || {
            let regions: Vec<String> = deployment
                .regions
                .iter()
                .map(|(r, &n)| format!("{} in {r}", plural(u64::from(n), "replica")))
                .collect();
            format!(
                "scaled {tenant}/{name} version {}: {}",
                deployment.version,
                regions.join(", ")
            )
        });
        Ok(())
    })
}

/// The deployment `detail`'s app gets: its version, with `region` (or its
/// only region) at `replicas` and its other regions as they are.
fn scaled(detail: &AppDetail, region: Option<&Name>, replicas: u32) -> Result<SetDeployment> {
    let app = &detail.app;
    let Some(current) = &detail.deployment else {
        bail!(
            "app {}/{} has no deployed version to scale; deploy one first: dwcp deploy FILE --name {} --replicas {replicas}",
            app.tenant,
            app.name,
            app.name
        );
    };
    let region = match region {
        Some(region) => region.clone(),
        None => match current.regions.keys().collect::<Vec<_>>()[..] {
            [only] => only.clone(),
            ref several => {
                let names: Vec<String> = several.iter().map(|r| r.to_string()).collect();
                bail!(
                    "app {}/{} runs in {} regions ({}); name one with --region",
                    app.tenant,
                    app.name,
                    names.len(),
                    names.join(", ")
                );
            }
        },
    };
    let mut regions = current.regions.clone();
    regions.insert(region, replicas);
    Ok(SetDeployment {
        version: current.version,
        regions,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn detail(regions: serde_json::Value) -> AppDetail {
        serde_json::from_value(json!({
            "app": {"tenant": "default", "name": "shop", "route": "/shop", "next_version": 3, "created": 1},
            "versions": [],
            "deployment": if regions.is_null() { regions } else {
                json!({"tenant": "default", "app": "shop", "version": 2, "regions": regions, "updated": 5})
            },
        }))
        .unwrap()
    }

    #[test]
    fn scaling_keeps_the_version_and_the_other_regions() {
        let one = detail(json!({"local": 1}));
        assert_eq!(
            serde_json::to_value(scaled(&one, None, 3).unwrap()).unwrap(),
            json!({"version": 2, "regions": {"local": 3}})
        );
        let two = detail(json!({"eu": 1, "us": 2}));
        let eu = Name::new("r", "eu").unwrap();
        assert_eq!(
            serde_json::to_value(scaled(&two, Some(&eu), 0).unwrap()).unwrap(),
            json!({"version": 2, "regions": {"eu": 0, "us": 2}})
        );
        let err = scaled(&two, None, 3).unwrap_err().to_string();
        assert!(
            err.ends_with("runs in 2 regions (eu, us); name one with --region"),
            "{err}"
        );
        let err = scaled(&detail(serde_json::Value::Null), None, 3)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no deployed version to scale"), "{err}");
    }
}
