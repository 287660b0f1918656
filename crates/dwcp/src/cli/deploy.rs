//! `dwcp deploy`: upload a module, make it a new version of an app (creating
//! the app when it is missing) and deploy that version, in four API calls.
//!
//! Every flag is checked before the first call (against the same rules the
//! API applies), and the app, the tenant's quotas and the region's nodes
//! are looked up before the upload (admission: `scheduler::admit` over the
//! nodes and their placements), so that a typo, a route conflict, a deploy
//! over quota or past the region's capacity costs no upload and leaves
//! nothing half-made. Should a later step still be refused (a write that
//! raced this one), an app this deploy created is deleted again; a version
//! added to an app that existed stays, and the error says so.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use state::{
    App, Deployment, Name, Node, Placement, Rejection, Tenant, Tier, Version, VersionConfig,
};

use crate::cli::app::NewApp;
use crate::cli::client::{self, ApiArgs, Client, app_path, plural};
use crate::units::{parse_duration, parse_size};

/// Files at least this large get a progress line on stderr.
const LARGE_UPLOAD: usize = 1 << 20;

/// Deploy a WebAssembly module (or, with --tier microvm, a static x86-64
/// Linux program) as a new version of an app.
///
/// Uploads FILE, creates the app NAME when it does not exist yet (served at
/// --route, by default /NAME), adds a version with the given limits and
/// deploys it with --replicas sandboxes in --region.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp deploy hello.wasm --name hello\n  dwcp deploy api.wasm --name billing-api --route /billing --replicas 3 --memory 32MiB --timeout 2s --warm\n  dwcp deploy app.wasm --name app --tenant team-a --region eu-west\n  dwcp deploy examples/build/microvm/wagi.musl --name native --tier microvm"
)]
pub struct DeployArgs {
    /// The module: a WebAssembly file (or a static ELF with --tier microvm).
    file: PathBuf,
    /// The app's name: 1-63 of a-z, 0-9 and '-', starting with a letter.
    #[arg(long, value_name = "NAME")]
    name: String,
    /// The HTTP path prefix a new app is served at [default: /NAME]; an existing app must already have it.
    #[arg(long, value_name = "PATH")]
    route: Option<String>,
    /// Serve a new app only to requests for this host, e.g. shop.example.com [default: any host]; an existing app must already have it.
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// The tenant that owns the app.
    #[arg(long, value_name = "T", default_value = "default")]
    tenant: String,
    /// Sandboxes to run in the region.
    #[arg(long, value_name = "N", default_value = "1")]
    replicas: String,
    /// The region to run them in [default: the region of the node the API
    /// is on, when its cluster has one region or the node is one of them].
    #[arg(long, value_name = "R")]
    region: Option<String>,
    /// Memory limit per sandbox, e.g. 32MiB [default: the server's, 64MiB].
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// Deadline per request, e.g. 500ms or 2s [default: the server's, 10s].
    #[arg(long, value_name = "DUR")]
    timeout: Option<String>,
    /// Serve from a pool of warm sandboxes instead of a fresh one per request.
    #[arg(long)]
    warm: bool,
    /// The isolation tier: wasm (a WebAssembly module) or microvm (a static
    /// x86-64 Linux program in a KVM microVM, see docs/microvm.md).
    #[arg(long, value_name = "TIER", default_value = "wasm")]
    tier: String,
    /// Requests a gateway serves at once; more are answered 503 [default: the server's, 64].
    #[arg(long, value_name = "N")]
    concurrency: Option<String>,
    /// Largest request body, e.g. 4MiB; larger ones are answered 413 [default: the server's, 1MiB].
    #[arg(long, value_name = "SIZE")]
    max_request: Option<String>,
    /// Largest response body the app may send, e.g. 4MiB; larger ones are answered 500 [default: the server's, 1MiB].
    #[arg(long, value_name = "SIZE")]
    max_response: Option<String>,
    /// Only add the version (uploading the module, creating the app if
    /// needed); the deployment stays as it is. Roll it out with
    /// `dwcp rollout start NAME --to VERSION`.
    #[arg(long)]
    version_only: bool,
    /// Print one JSON object (tenant, app, route, digest, version, and the
    /// deployment, `null` with --version-only) instead of a summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// The version's settings that were given; the server fills in the rest.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
struct ConfigPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warm: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_concurrency: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_request_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_response_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<Tier>,
}

/// The body of `POST /tenants/{tenant}/apps/{app}/versions`.
#[derive(Debug, Serialize)]
struct NewVersion<'a> {
    digest: &'a str,
    config: &'a ConfigPatch,
}

/// The body of `PUT /tenants/{tenant}/apps/{app}/deployment`.
#[derive(Debug, Serialize)]
struct SetDeployment {
    version: u64,
    regions: BTreeMap<Name, u32>,
}

/// What `POST /blobs` answers.
#[derive(Debug, Deserialize)]
struct BlobReceipt {
    digest: String,
    size: u64,
    copies: u64,
}

/// What `GET /tenants/{tenant}/apps/{app}` answers.
#[derive(Debug, Deserialize)]
pub(crate) struct AppDetail {
    pub(crate) app: App,
    #[serde(default)]
    pub(crate) versions: Vec<Version>,
    #[serde(default)]
    pub(crate) deployment: Option<Deployment>,
    /// Where the scheduler placed its sandboxes.
    #[serde(default)]
    pub(crate) placements: Vec<Placement>,
}

/// What `GET /tenants` answers.
#[derive(Debug, Deserialize)]
struct TenantList {
    tenants: Vec<Tenant>,
}

/// What `GET /apps?tenant=T` answers; only names and deployments are needed.
#[derive(Debug, Deserialize)]
struct AppList {
    apps: Vec<AppUse>,
}

#[derive(Debug, Deserialize)]
struct AppUse {
    name: Name,
    deployment: Option<Deployment>,
}

/// What `GET /nodes` answers; the nodes and their placements are needed.
#[derive(Debug, Deserialize)]
pub(crate) struct NodeList {
    nodes: Vec<NodeEntry>,
}

#[derive(Debug, Deserialize)]
struct NodeEntry {
    node: Node,
    placements: Vec<Placement>,
}

/// What `GET /cluster` answers; only who answered is needed.
#[derive(Debug, Deserialize)]
struct Answerer {
    reported_by: u64,
    members: Vec<MemberApi>,
}

#[derive(Debug, Deserialize)]
struct MemberApi {
    id: u64,
    api: Option<String>,
}

impl NodeList {
    /// The region a deploy without `--region` runs in: the one region of
    /// the nodes listed (a single cluster, or a planet node's own cell),
    /// else the region of the node that answered (its API address, `api`),
    /// else `local`.
    pub(crate) fn default_region(&self, api: Option<&str>) -> String {
        let mut regions: Vec<&str> = self.nodes.iter().map(|e| e.node.region.as_str()).collect();
        regions.sort_unstable();
        regions.dedup();
        if let [only] = regions[..] {
            return only.to_string();
        }
        api.and_then(|api| {
            self.nodes
                .iter()
                .find(|e| e.node.api.as_deref() == Some(api))
        })
        .map_or_else(|| "local".to_string(), |e| e.node.region.to_string())
    }
}

/// The version of `detail` a deploy of `digest` with `config` can reuse
/// instead of adding one: the deployed version if it has both, else the
/// newest that has (never a rollout's baseline copy).
fn reusable(detail: &AppDetail, digest: &str, config: &VersionConfig) -> Option<u64> {
    let same = |v: &&Version| v.baseline_of.is_none() && v.digest == digest && v.config == *config;
    let deployed = detail.deployment.as_ref().map(|d| d.version);
    let matching: Vec<u64> = detail
        .versions
        .iter()
        .filter(same)
        .map(|v| v.number)
        .collect();
    deployed
        .filter(|d| matching.contains(d))
        .or_else(|| matching.iter().copied().max())
}

/// The flags, checked.
#[derive(Debug)]
struct Plan {
    tenant: Name,
    name: Name,
    /// As given; `None` means "/NAME" for a new app and "as it is" for an
    /// existing one.
    route: Option<String>,
    host: Option<String>,
    /// `None`: the API node's region (`NodeList::default_region`).
    region: Option<Name>,
    replicas: u32,
    config: ConfigPatch,
    /// What the server makes of `config`: the version's whole config.
    resolved: VersionConfig,
}

impl Plan {
    fn new(args: &DeployArgs) -> Result<Plan> {
        let replicas = args.replicas.trim().parse().map_err(|_| {
            anyhow::anyhow!(
                "--replicas `{}` is not a number of sandboxes; use 0 or more, e.g. 3",
                args.replicas
            )
        })?;
        let memory_bytes = match &args.memory {
            Some(s) => Some(parse_size(s).map_err(|e| anyhow::anyhow!("--memory: {e}"))?),
            None => None,
        };
        let timeout_ms = match &args.timeout {
            Some(s) => {
                let d = parse_duration(s).map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
                match u64::try_from(d.as_millis()) {
                    Ok(0) => bail!("--timeout `{s}` is under a millisecond; use e.g. 500ms"),
                    Ok(ms) => Some(ms),
                    Err(_) => bail!("--timeout `{s}` is too long"),
                }
            }
            None => None,
        };
        let max_concurrency = match &args.concurrency {
            Some(s) => Some(s.trim().parse::<u32>().map_err(|_| {
                anyhow::anyhow!("--concurrency `{s}` is not a number of requests; use e.g. 100")
            })?),
            None => None,
        };
        let size = |flag: &str, given: &Option<String>| -> Result<Option<u64>> {
            given
                .as_deref()
                .map(|s| parse_size(s).map_err(|e| anyhow::anyhow!("{flag}: {e}")))
                .transpose()
        };
        let max_request_bytes = size("--max-request", &args.max_request)?;
        let max_response_bytes = size("--max-response", &args.max_response)?;
        state::check_replicas(replicas)
            .map_err(|e| flag_error("--replicas", &args.replicas, "", &e))?;
        if let Some(host) = &args.host {
            state::check_host(host).map_err(|e| flag_error("--host", host, "", &e))?;
        }
        let tier: Tier = args
            .tier
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("--tier: {e}"))?;
        let defaults = VersionConfig::default();
        let resolved = VersionConfig {
            memory_bytes: memory_bytes.unwrap_or(defaults.memory_bytes),
            timeout_ms: timeout_ms.unwrap_or(defaults.timeout_ms),
            warm: args.warm,
            max_concurrency: max_concurrency.unwrap_or(defaults.max_concurrency),
            max_request_bytes: max_request_bytes.unwrap_or(defaults.max_request_bytes),
            max_response_bytes: max_response_bytes.unwrap_or(defaults.max_response_bytes),
            tier,
        };
        state::check_config(&resolved).map_err(|e| {
            let (flag, given, unit) = match e.field() {
                Some("memory_bytes") => ("--memory", &args.memory, "bytes"),
                Some("timeout_ms") => ("--timeout", &args.timeout, "ms"),
                Some("max_concurrency") => ("--concurrency", &args.concurrency, ""),
                Some("max_request_bytes") => ("--max-request", &args.max_request, "bytes"),
                Some("max_response_bytes") => ("--max-response", &args.max_response, "bytes"),
                _ => return anyhow::anyhow!("{e}"),
            };
            match given {
                Some(given) => flag_error(flag, given, unit, &e),
                None => anyhow::anyhow!("{e}"),
            }
        })?;
        Ok(Plan {
            tenant: Name::new("--tenant", &args.tenant)?,
            name: Name::new("--name", &args.name)?,
            route: args.route.clone(),
            host: args.host.clone(),
            region: args
                .region
                .as_deref()
                .map(|r| Name::new("--region", r))
                .transpose()?,
            replicas,
            resolved,
            config: ConfigPatch {
                memory_bytes,
                timeout_ms,
                warm: args.warm.then_some(true),
                max_concurrency,
                max_request_bytes,
                max_response_bytes,
                tier: (tier != Tier::Wasm).then_some(tier),
            },
        })
    }

    /// The route a new app gets: --route, else `/NAME`.
    fn new_route(&self) -> String {
        self.route
            .clone()
            .unwrap_or_else(|| format!("/{}", self.name))
    }

    fn new_app<'a>(&'a self, route: &'a str) -> NewApp<'a> {
        NewApp {
            name: &self.name,
            route,
            host: self.host.as_deref(),
        }
    }

    fn new_version<'a>(&'a self, digest: &'a str) -> NewVersion<'a> {
        NewVersion {
            digest,
            config: &self.config,
        }
    }

    /// Why the tenant's quotas refuse this deploy, if they do: `tenant` with
    /// its `apps` as they are, `existing` whether the app is one of them.
    fn over_quota(&self, tenant: &Tenant, apps: &[AppUse], existing: bool) -> Option<String> {
        let quotas = &tenant.quotas;
        let over = |what: &str, quota: &str, wanted: u64, limit: u32, remedy: String| {
            format!(
                "tenant `{}` would have {wanted} {what}, over its quota of {limit} ({quota}); \
                 nothing was uploaded or changed. {remedy}, or raise the tenant's quotas \
                 (POST /api/v1/tenants, see docs/api.md)",
                tenant.name
            )
        };
        if !existing {
            let wanted = apps.len() as u64 + 1;
            if wanted > u64::from(quotas.max_apps) {
                return Some(over(
                    "apps",
                    "max_apps",
                    wanted,
                    quotas.max_apps,
                    format!(
                        "Delete one of its apps (dwcp app delete NAME --tenant {})",
                        tenant.name
                    ),
                ));
            }
        }
        let others: u64 = apps
            .iter()
            .filter(|a| a.name != self.name)
            .filter_map(|a| a.deployment.as_ref())
            .map(Deployment::replicas)
            .sum();
        let wanted = others + u64::from(self.replicas);
        if wanted > u64::from(quotas.max_replicas) {
            let room = u64::from(quotas.max_replicas).saturating_sub(others);
            return Some(over(
                "replicas",
                "max_replicas",
                wanted,
                quotas.max_replicas,
                format!(
                    "Its other apps run {}; ask for at most {room} with --replicas",
                    plural(others, "replica")
                ),
            ));
        }
        None
    }

    /// Why the region cannot take this deploy's replicas, if it cannot:
    /// the scheduler's admission over the region's nodes and what is placed
    /// on them, less the app's own placements (the new version replaces
    /// them). `version` is the number the new version will get.
    fn over_capacity(
        &self,
        tenant: &Tenant,
        nodes: &NodeList,
        region: &Name,
        version: u64,
    ) -> Option<String> {
        if self.replicas == 0 {
            return None;
        }
        if !nodes.nodes.iter().any(|e| e.node.region == *region) {
            let mut regions: Vec<&str> =
                nodes.nodes.iter().map(|e| e.node.region.as_str()).collect();
            regions.sort_unstable();
            regions.dedup();
            return Some(format!(
                "region `{region}` has no nodes to run the app (regions with nodes: {}); nothing was uploaded or changed. Choose one with --region",
                regions.join(", ")
            ));
        }
        let views: Vec<scheduler::NodeView> = nodes
            .nodes
            .iter()
            .map(|e| scheduler::NodeView::of(&e.node, true))
            .collect();
        let current: Vec<Placement> = nodes
            .nodes
            .iter()
            .flat_map(|e| &e.placements)
            .filter(|p| !(p.tenant == self.tenant && p.app == self.name))
            .cloned()
            .collect();
        let want = scheduler::Want {
            tenant: self.tenant.clone(),
            app: self.name.clone(),
            version,
            regions: BTreeMap::from([(region.clone(), self.replicas)]),
            constraints: scheduler::Constraints::default(),
        };
        // The quota was checked (with a more helpful message) already.
        let usage = scheduler::Usage::default();
        scheduler::admit(&tenant.quotas, &usage, &want, &views, &current)
            .err()
            .map(|rejection| {
                format!("{rejection}; nothing was uploaded or changed. Ask for fewer replicas with --replicas, or add nodes to region `{region}`")
            })
    }

    fn deployment(&self, region: &Name, version: u64) -> SetDeployment {
        SetDeployment {
            version,
            regions: BTreeMap::from([(region.clone(), self.replicas)]),
        }
    }
}

pub fn run(args: DeployArgs) -> Result<()> {
    let plan = Plan::new(&args)?;
    let client = Client::new(&args.api)?;
    let file = args.file.display();
    let bytes =
        std::fs::read(&args.file).map_err(|e| anyhow::anyhow!("cannot read {file}: {e}"))?;
    if bytes.is_empty() {
        bail!("{file} is empty; expected a WebAssembly module");
    }
    let media = check_kind(&bytes, plan.config.tier.unwrap_or_default())
        .map_err(|why| anyhow::anyhow!("{file}: {why}; nothing was uploaded"))?;
    let digest = state::digest_of(&bytes);
    client::block_on(async {
        let path = app_path(&plan.tenant, &plan.name);
        let existing = match client.get::<AppDetail>(&path).await {
            Ok(detail) => Some(detail),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(app) = existing.as_ref().map(|d| &d.app) {
            check_same_place(&plan, app)?;
        }
        // A module and limits an app has already make no new version: the
        // deploy sets that version's deployment (`dwcp scale` does too).
        let reuse = existing
            .as_ref()
            .and_then(|d| reusable(d, &digest, &plan.resolved));

        // The quotas, before anything is uploaded or written: the API would
        // refuse the deployment only after the app and its version exist.
        let tenants: TenantList = client.get("/tenants").await?;
        let Some(tenant) = tenants.tenants.iter().find(|t| t.name == plan.tenant) else {
            bail!(
                "tenant `{}` does not exist; create it first (POST /api/v1/tenants, see docs/api.md)",
                plan.tenant
            );
        };
        // A version alone takes no replicas: only a deployment is admitted.
        let mut region = None;
        if !args.version_only {
            let apps: AppList = client.get(&format!("/apps?tenant={}", plan.tenant)).await?;
            if let Some(refusal) = plan.over_quota(tenant, &apps.apps, existing.is_some()) {
                bail!(refusal);
            }
            let nodes: NodeList = client.get("/nodes").await?;
            let chosen = match &plan.region {
                Some(region) => region.clone(),
                None => Name::new(
                    "--region",
                    &nodes.default_region(answering_api(&client).await.as_deref()),
                )?,
            };
            let version =
                reuse.unwrap_or_else(|| existing.as_ref().map_or(1, |d| d.app.next_version));
            if let Some(refusal) = plan.over_capacity(tenant, &nodes, &chosen, version) {
                bail!(refusal);
            }
            region = Some(chosen);
        }

        if let Some(number) = reuse {
            let outcome = |deployment: Option<&Deployment>| {
                serde_json::json!({
                    "tenant": plan.tenant,
                    "app": plan.name,
                    "route": existing.as_ref().map(|d| &d.app.route),
                    "digest": digest,
                    "version": number,
                    "new_version": false,
                    "deployment": deployment,
                })
            };
            let Some(region) = region else {
                client::print_outcome(args.json, &outcome(None), || {
                    format!(
                        "version {number} of {}/{} has this module and these limits already: no version added; roll it out with: dwcp rollout start {} --to {number} --tenant {}",
                        plan.tenant, plan.name, plan.name, plan.tenant
                    )
                });
                return Ok(());
            };
            let deployment: Deployment = client
                .put(
                    &format!("{path}/deployment"),
                    &plan.deployment(&region, number),
                )
                .await?;
            let route = existing.as_ref().map_or("", |d| d.app.route.as_str());
            client::print_outcome(args.json, &outcome(Some(&deployment)), || {
                summary(&deployment, &digest, None, route)
            });
            return Ok(());
        }

        // A large upload: a byte bar on a terminal, a line otherwise.
        let large = bytes.len() >= LARGE_UPLOAD;
        let bar = large.then(|| {
            crate::cli::progress::Progress::bytes(
                "uploading",
                bytes.len() as u64,
                client::json_output(args.json),
            )
        });
        if large && !bar.as_ref().is_some_and(|b| b.drawn()) {
            eprintln!(
                "uploading {file} ({:.1} MiB)...",
                bytes.len() as f64 / f64::from(1 << 20)
            );
        }
        let sent = bar.as_ref().and_then(|b| b.teller());
        let blob: BlobReceipt = client
            .upload_telling("/blobs", media, bytes.into(), sent)
            .await
            .map_err(|e| anyhow::anyhow!("{file} was refused: {e}"))?;
        drop(bar);
        if blob.size >= LARGE_UPLOAD as u64 {
            eprintln!("uploaded, stored on {}", plural(blob.copies, "node"));
        }

        let (route, created) = match existing {
            Some(detail) => (detail.app.route, false),
            None => {
                let route = plan.new_route();
                let app: App = client
                    .post(
                        &format!("/tenants/{}/apps", plan.tenant),
                        &plan.new_app(&route),
                    )
                    .await?;
                (app.route, true)
            }
        };
        let version: Version = match client
            .post(&format!("{path}/versions"), &plan.new_version(&blob.digest))
            .await
        {
            Ok(version) => version,
            Err(e) if created => return Err(undo(&client, &plan, &path, e.into()).await),
            Err(e) => return Err(e.into()),
        };
        let outcome = |deployment: Option<&Deployment>| {
            serde_json::json!({
                "tenant": plan.tenant,
                "app": plan.name,
                "route": route,
                "digest": blob.digest,
                "version": version.number,
                "new_version": true,
                "deployment": deployment,
            })
        };
        let Some(region) = region else {
            client::print_outcome(args.json, &outcome(None), || {
                format!(
                    "added version {} of {}/{} (not deployed); roll it out with: dwcp rollout start {} --to {} --tenant {}",
                    version.number, plan.tenant, plan.name, plan.name, version.number, plan.tenant
                )
            });
            return Ok(());
        };
        let deployment: Deployment = match client
            .put(
                &format!("{path}/deployment"),
                &plan.deployment(&region, version.number),
            )
            .await
        {
            Ok(deployment) => deployment,
            Err(e) if created => return Err(undo(&client, &plan, &path, e.into()).await),
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "{e}\nversion {} was added to {}/{} but is not deployed; the app's deployment is as it was",
                    version.number,
                    plan.tenant,
                    plan.name
                ));
            }
        };
        client::print_outcome(args.json, &outcome(Some(&deployment)), || {
            summary(&deployment, &blob.digest, Some(blob.copies), &route)
        });
        Ok(())
    })
}

/// Refuses a deploy whose `--host` or `--route` differ from the existing
/// `app`'s: a deploy never moves an app.
fn check_same_place(plan: &Plan, app: &App) -> Result<()> {
    if let Some(host) = &plan.host
        && app.host.as_ref() != Some(host)
    {
        bail!(
            "app {}/{} is served on {}, not {host}; omit --host, or delete the app (dwcp app delete {}) to move it",
            plan.tenant,
            plan.name,
            app.host.as_deref().unwrap_or("any host"),
            plan.name
        );
    }
    if let Some(route) = &plan.route
        && app.route != *route
    {
        bail!(
            "app {}/{} is served at {}, not {route}; omit --route, or delete the app (dwcp app delete {}) to move it",
            plan.tenant,
            plan.name,
            app.route,
            plan.name
        );
    }
    Ok(())
}

/// The API address (`host:port`) of the node that answers this client, as
/// its cluster knows it; `None` when it cannot be told (then the default
/// region falls back to `local`).
pub(crate) async fn answering_api(client: &Client) -> Option<String> {
    let status: Answerer = client.get("/cluster").await.ok()?;
    status
        .members
        .into_iter()
        .find(|m| m.id == status.reported_by)
        .and_then(|m| m.api)
}

/// Checks, before anything is uploaded, that `bytes` are what `tier`
/// runs (the node checks again at upload); answers the upload's media type.
fn check_kind(bytes: &[u8], tier: Tier) -> Result<&'static str, String> {
    let elf = sandbox::microvm::is_elf(bytes);
    match tier {
        Tier::Microvm => {
            sandbox::microvm::check_artifact(bytes).map_err(|e| e.to_string())?;
            Ok("application/octet-stream")
        }
        Tier::Wasm if elf => Err(
            "this is an ELF executable, not a WebAssembly module; deploy it with --tier microvm"
                .into(),
        ),
        Tier::Wasm => match sandbox::wasm::not_webassembly(bytes) {
            Some(why) => Err(why),
            None => Ok("application/wasm"),
        },
    }
}

/// Deletes the app this deploy created, after `error` refused a later step,
/// so that a failed deploy leaves no app behind; returns the error to report.
async fn undo(client: &Client, plan: &Plan, path: &str, error: anyhow::Error) -> anyhow::Error {
    match client.delete(path).await {
        Ok(()) => anyhow::anyhow!(
            "{error}\nthe app {}/{} this deploy had created was deleted again",
            plan.tenant,
            plan.name
        ),
        Err(e) => anyhow::anyhow!(
            "{error}\nthe app {}/{} this deploy created is left without a deployment, and deleting it failed: {e}; delete it with `dwcp app delete {} --tenant {}`",
            plan.tenant,
            plan.name,
            plan.name,
            plan.tenant
        ),
    }
}

/// A flag's value, `given` on the command line, that the API's rules
/// refuse; `unit` is what the API counts it in ("" when it is as given).
fn flag_error(flag: &str, given: &str, unit: &str, rejection: &Rejection) -> anyhow::Error {
    match rejection {
        Rejection::Invalid { value, allowed, .. } if unit.is_empty() => {
            anyhow::anyhow!("{flag} `{value}` is not allowed: {allowed}")
        }
        Rejection::Invalid { value, allowed, .. } => {
            anyhow::anyhow!("{flag} `{given}` ({value} {unit}) is not allowed: {allowed}")
        }
        other => anyhow::anyhow!("{flag} `{given}`: {other}"),
    }
}

/// The line printed once the deployment is set: `copies` the nodes that
/// hold the module just uploaded, `None` when an existing version was
/// deployed again.
fn summary(deployment: &Deployment, digest: &str, copies: Option<u64>, route: &str) -> String {
    let short: String = digest.chars().take(8).collect();
    let placement = deployment
        .regions
        .iter()
        .map(|(region, &n)| format!("{} in {region}", plural(u64::from(n), "replica")))
        .collect::<Vec<_>>()
        .join(", ");
    let stored = match copies {
        Some(copies) => format!("stored on {}", plural(copies, "node")),
        None => "unchanged: no new version".to_string(),
    };
    format!(
        "deployed {}/{} version {} (sha256 {short}…, {stored}) at {route}, {placement}",
        deployment.tenant, deployment.app, deployment.version,
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::json;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        deploy: DeployArgs,
    }

    fn plan(args: &[&str]) -> Result<Plan> {
        let mut argv = vec!["deploy", "hello.wasm"];
        argv.extend_from_slice(args);
        Plan::new(&Cli::try_parse_from(argv).expect("flags parse").deploy)
    }

    #[test]
    fn bodies_from_the_defaults() {
        let p = plan(&["--name", "hello"]).unwrap();
        assert_eq!(
            serde_json::to_value(p.new_app(&p.new_route())).unwrap(),
            json!({"name": "hello", "route": "/hello"})
        );
        assert_eq!(
            serde_json::to_value(p.new_version("ab12")).unwrap(),
            json!({"digest": "ab12", "config": {}})
        );
        assert_eq!(
            serde_json::to_value(p.deployment(&Name::new("r", "local").unwrap(), 1)).unwrap(),
            json!({"version": 1, "regions": {"local": 1}})
        );
        assert_eq!(p.tenant.as_str(), "default");
    }

    #[test]
    fn the_tier_and_the_artifact_kind() {
        let p = plan(&["--name", "native", "--tier", "microvm"]).unwrap();
        assert_eq!(
            serde_json::to_value(p.new_version("ab12")).unwrap(),
            json!({"digest": "ab12", "config": {"tier": "microvm"}})
        );
        let err = plan(&["--name", "n", "--tier", "ebpf"]).unwrap_err();
        assert!(err.to_string().contains("--tier"), "{err}");
        // A microVM's memory goes in 2 MiB steps.
        let err = plan(&["--name", "n", "--tier", "microvm", "--memory", "9MiB"]).unwrap_err();
        assert!(err.to_string().contains("--memory"), "{err}");
        let elf = sandbox::microvm::tiny_elf(0x40_1000, &[0x0f, 0x05]);
        assert_eq!(
            check_kind(&elf, Tier::Microvm),
            Ok("application/octet-stream")
        );
        assert!(
            check_kind(&elf, Tier::Wasm)
                .unwrap_err()
                .contains("--tier microvm")
        );
        let wasm = b"\0asm\x01\0\0\0";
        assert_eq!(check_kind(wasm, Tier::Wasm), Ok("application/wasm"));
        assert!(
            check_kind(wasm, Tier::Microvm)
                .unwrap_err()
                .contains("WebAssembly")
        );
    }

    #[test]
    fn bodies_from_every_flag() {
        let p = plan(&[
            "--name",
            "billing-api",
            "--route",
            "/billing",
            "--tenant",
            "team-a",
            "--replicas",
            "3",
            "--region",
            "eu-west",
            "--memory",
            "32MiB",
            "--timeout",
            "1.5s",
            "--warm",
            "--concurrency",
            "8",
            "--max-request",
            "4KiB",
            "--max-response",
            "2MiB",
        ])
        .unwrap();
        assert_eq!(p.tenant.as_str(), "team-a");
        assert_eq!(
            serde_json::to_value(p.new_app(&p.new_route())).unwrap(),
            json!({"name": "billing-api", "route": "/billing"})
        );
        assert_eq!(
            serde_json::to_value(p.new_version("ab12")).unwrap(),
            json!({"digest": "ab12", "config": {
                "memory_bytes": 32 << 20, "timeout_ms": 1500, "warm": true,
                "max_concurrency": 8, "max_request_bytes": 4096, "max_response_bytes": 2 << 20
            }})
        );
        assert_eq!(
            serde_json::to_value(p.deployment(p.region.as_ref().unwrap(), 7)).unwrap(),
            json!({"version": 7, "regions": {"eu-west": 3}})
        );
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let err = |args: &[&str]| plan(args).unwrap_err().to_string();
        assert!(err(&["--name", "Hello"]).starts_with("--name `Hello` is not a valid name"));
        assert!(err(&["--name", "a", "--tenant", "x_y"]).starts_with("--tenant `x_y`"));
        assert!(err(&["--name", "a", "--region", "EU"]).starts_with("--region `EU`"));
        assert!(err(&["--name", "a", "--replicas=-1"]).starts_with("--replicas `-1`"));
        assert!(err(&["--name", "a", "--memory", "lots"]).starts_with("--memory: "));
        assert!(err(&["--name", "a", "--timeout", "5 fortnights"]).starts_with("--timeout: "));
        assert!(err(&["--name", "a", "--timeout", "10us"]).contains("under a millisecond"));
        // The API's own rules, checked before anything is uploaded.
        assert_eq!(
            err(&["--name", "a", "--timeout", "20m"]),
            "--timeout `20m` (1200000 ms) is not allowed: 1 to 600000 (10 minutes)"
        );
        assert_eq!(
            err(&["--name", "a", "--memory", "100KiB"]),
            "--memory `100KiB` (102400 bytes) is not allowed: a multiple of 64 KiB from 64 KiB to 4 GiB"
        );
        assert_eq!(
            err(&["--name", "a", "--replicas", "100001"]),
            "--replicas `100001` is not allowed: at most 100000 per region"
        );
        assert_eq!(
            err(&["--name", "a", "--concurrency", "0"]),
            "--concurrency `0` is not allowed: 1 to 100000 requests at once"
        );
        assert!(err(&["--name", "a", "--concurrency", "many"]).starts_with("--concurrency `many`"));
        assert_eq!(
            err(&["--name", "a", "--max-response", "1GiB"]),
            "--max-response `1GiB` (1073741824 bytes) is not allowed: 1 to 67108864 (64 MiB)"
        );
        assert!(err(&["--name", "a", "--max-request", "big"]).starts_with("--max-request: "));
        assert!(plan(&["--name", "a", "--replicas", "100000", "--timeout", "10m"]).is_ok());
    }

    #[test]
    fn quotas_refuse_a_deploy_up_front() {
        let tenant: Tenant = serde_json::from_value(json!({
            "name": "tight", "quotas": {"max_apps": 2, "max_replicas": 4}, "created": 3
        }))
        .unwrap();
        let app = |name: &str, replicas: Option<u32>| -> AppUse {
            serde_json::from_value(json!({
                "name": name,
                "deployment": replicas.map(|r| json!({
                    "tenant": "tight", "app": name, "version": 1,
                    "regions": {"local": r}, "updated": 5
                })),
            }))
            .unwrap()
        };
        let p = plan(&["--name", "web", "--tenant", "tight", "--replicas", "3"]).unwrap();
        assert_eq!(p.over_quota(&tenant, &[], false), None);
        assert_eq!(p.over_quota(&tenant, &[app("other", None)], false), None);
        // Its own deployment is replaced, so it does not count.
        assert_eq!(p.over_quota(&tenant, &[app("web", Some(4))], true), None);

        let refusal = p
            .over_quota(&tenant, &[app("other", Some(2))], false)
            .unwrap();
        assert!(
            refusal.starts_with(
                "tenant `tight` would have 5 replicas, over its quota of 4 (max_replicas); nothing was uploaded or changed."
            ),
            "{refusal}"
        );
        assert!(
            refusal.contains("Its other apps run 2 replicas; ask for at most 2 with --replicas"),
            "{refusal}"
        );

        let two = [app("a", None), app("b", None)];
        let refusal = p.over_quota(&tenant, &two, false).unwrap();
        assert!(
            refusal.starts_with(
                "tenant `tight` would have 3 apps, over its quota of 2 (max_apps); nothing was uploaded or changed."
            ),
            "{refusal}"
        );
        assert!(
            refusal.contains("dwcp app delete NAME --tenant tight"),
            "{refusal}"
        );
        // An app that exists already is not one more.
        let with_web = [app("web", None), app("b", None)];
        assert_eq!(p.over_quota(&tenant, &with_web, true), None);
    }

    #[test]
    fn the_summary_line() {
        let deployment: Deployment = serde_json::from_value(json!({
            "tenant": "default", "app": "hello", "version": 2,
            "regions": {"local": 1}, "updated": 9
        }))
        .unwrap();
        assert_eq!(
            summary(&deployment, "1a2b3c4d5e6f", Some(3), "/hello"),
            "deployed default/hello version 2 (sha256 1a2b3c4d…, stored on 3 nodes) at /hello, 1 replica in local"
        );
        let deployment = Deployment {
            regions: BTreeMap::from([(Name::new("r", "eu").unwrap(), 4)]),
            ..deployment
        };
        assert!(
            summary(&deployment, "1a2b", Some(1), "/x")
                .ends_with("stored on 1 node) at /x, 4 replicas in eu")
        );
        assert!(
            summary(&deployment, "1a2b", None, "/x")
                .ends_with("(sha256 1a2b…, unchanged: no new version) at /x, 4 replicas in eu")
        );
    }

    #[test]
    fn an_unchanged_module_and_config_reuse_a_version() {
        let version = |number: u64, digest: &str, memory: u64, baseline_of: Option<u64>| {
            json!({"tenant": "default", "app": "a", "number": number, "digest": digest,
                "config": serde_json::to_value(VersionConfig { memory_bytes: memory, ..VersionConfig::default() }).unwrap(),
                "created": 1, "baseline_of": baseline_of})
        };
        let detail = |deployed: u64| -> AppDetail {
            serde_json::from_value(json!({
                "app": {"tenant": "default", "name": "a", "route": "/a", "next_version": 5, "created": 1},
                "versions": [version(1, "aa", 64 << 20, None), version(2, "aa", 64 << 20, None),
                    version(3, "bb", 64 << 20, None), version(4, "aa", 32 << 20, Some(1))],
                "deployment": {"tenant": "default", "app": "a", "version": deployed,
                    "regions": {"local": 1}, "updated": 2},
            }))
            .unwrap()
        };
        let defaults = VersionConfig::default();
        // The deployed version when it matches, else the newest that does.
        assert_eq!(reusable(&detail(1), "aa", &defaults), Some(1));
        assert_eq!(reusable(&detail(3), "aa", &defaults), Some(2));
        assert_eq!(reusable(&detail(3), "bb", &defaults), Some(3));
        // Other limits, another module, or only a rollout's baseline copy: a new version.
        let small = VersionConfig {
            memory_bytes: 32 << 20,
            ..defaults.clone()
        };
        assert_eq!(reusable(&detail(1), "aa", &small), None);
        assert_eq!(reusable(&detail(1), "cc", &defaults), None);
    }

    #[test]
    fn the_default_region_is_the_answering_nodes() {
        let nodes = |regions: &[(&str, &str)]| -> NodeList {
            serde_json::from_value(
                json!({"nodes": regions.iter().enumerate().map(|(i, (region, api))| json!({
                "node": {"name": format!("node-{i}"), "region": region, "address": "127.0.0.1:1",
                    "labels": {}, "capacity": 10, "api": api},
                "placements": [],
            })).collect::<Vec<_>>()}),
            )
            .unwrap()
        };
        let one = nodes(&[("eu-west", "127.0.0.1:7070"), ("eu-west", "127.0.0.2:7070")]);
        assert_eq!(one.default_region(None), "eu-west");
        let two = nodes(&[("eu-west", "127.0.0.1:7070"), ("us-east", "127.0.0.2:7070")]);
        assert_eq!(two.default_region(Some("127.0.0.2:7070")), "us-east");
        assert_eq!(two.default_region(None), "local");
    }
}
