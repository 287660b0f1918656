//! `GET/PUT /prices` and `GET /costs`: what running apps costs. Usage
//! comes from the nodes' last reports — requests, and the time requests
//! kept sandboxes busy (sandbox-seconds; times the version's memory limit
//! in GiB for GB-seconds) — so it covers what each node served since its
//! process started. The prices are the admin's (`PUT /prices`).

use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Serialize;
use state::{Command, Prices, State};

use super::auth::Caller;
use super::body::read_json;
use super::error::ApiError;
use super::reply::{Reply, commit, json, with_revision};
use crate::ControlPlane;

/// Usage and cost of one app or one tenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Usage {
    pub requests: u64,
    pub sandbox_seconds: f64,
    pub gb_seconds: f64,
    /// `null` until prices are set.
    pub cost: Option<f64>,
}

impl Usage {
    fn add(&mut self, other: &Usage) {
        self.requests += other.requests;
        self.sandbox_seconds += other.sandbox_seconds;
        self.gb_seconds += other.gb_seconds;
        if let Some(c) = other.cost {
            *self.cost.get_or_insert(0.0) += c;
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct AppCost {
    pub tenant: String,
    pub app: String,
    #[serde(flatten)]
    pub usage: Usage,
}

#[derive(Debug, Serialize)]
pub(crate) struct TenantCost {
    pub tenant: String,
    #[serde(flatten)]
    pub usage: Usage,
}

#[derive(Debug, Serialize)]
pub(crate) struct Costs {
    pub prices: Option<Prices>,
    pub apps: Vec<AppCost>,
    pub tenants: Vec<TenantCost>,
}

const GIB: f64 = (1u64 << 30) as f64;

/// Usage and cost per app and tenant over the nodes' last reports.
pub(crate) fn costs(state: &State) -> Costs {
    let prices = state.prices().cloned();
    let mut apps: BTreeMap<(String, String), Usage> = BTreeMap::new();
    for v in state.reports().flat_map(|r| &r.versions) {
        let memory = state
            .versions(&v.tenant, &v.app)
            .find(|x| x.number == v.version)
            .map_or(0, |x| x.config.memory_bytes);
        let seconds = v.busy_us as f64 / 1e6;
        let mut u = Usage {
            requests: v.requests,
            sandbox_seconds: seconds,
            gb_seconds: seconds * memory as f64 / GIB,
            cost: None,
        };
        u.cost = prices.as_ref().map(|p| {
            u.sandbox_seconds * p.per_sandbox_second
                + u.gb_seconds * p.per_gb_second
                + u.requests as f64 / 1e6 * p.per_million_requests
        });
        apps.entry((v.tenant.to_string(), v.app.to_string()))
            .or_default()
            .add(&u);
    }
    let mut tenants: BTreeMap<String, Usage> = BTreeMap::new();
    for ((tenant, _), u) in &apps {
        tenants.entry(tenant.clone()).or_default().add(u);
    }
    Costs {
        prices,
        apps: apps
            .into_iter()
            .map(|((tenant, app), usage)| AppCost { tenant, app, usage })
            .collect(),
        tenants: tenants
            .into_iter()
            .map(|(tenant, usage)| TenantCost { tenant, usage })
            .collect(),
    }
}

/// `GET /costs` (of the caller's tenants, for a user limited to some).
pub(crate) async fn show<P: ControlPlane>(plane: &P, caller: &Caller) -> Result<Reply, ApiError> {
    let caller = caller.clone();
    json(
        StatusCode::OK,
        &plane.read(move |s| costs(&caller.view(s))).await?,
    )
}

/// `GET /prices`.
pub(crate) async fn prices<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    let prices = plane.read(|s| s.prices().cloned()).await?;
    let prices = prices.ok_or_else(|| {
        ApiError::not_found("no prices are set; an admin sets them with PUT /api/v1/prices")
    })?;
    json(StatusCode::OK, &prices)
}

/// `PUT /prices`.
pub(crate) async fn set_prices<P: ControlPlane>(
    plane: &P,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let (parts, body) = req.into_parts();
    let prices: Prices = read_json(&parts.headers, body).await?;
    state::check_prices(&prices)?;
    let (revision, _) = commit(
        plane,
        Command::SetPrices {
            prices: prices.clone(),
        },
    )
    .await?;
    Ok(with_revision(json(StatusCode::OK, &prices)?, revision))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use state::{
        Command, LatencySummary, Name, Node, NodeReport, Quotas, Region, VersionConfig,
        VersionReport,
    };

    use super::*;

    fn n(s: &str) -> Name {
        Name::new("test", s).unwrap()
    }

    #[test]
    fn usage_times_prices_per_app_and_tenant() {
        let mut s = State::default();
        let mut commands = vec![
            Command::PutTenant {
                name: n("acme"),
                quotas: Quotas::default(),
            },
            Command::PutRegion {
                region: Region::named(n("eu")),
            },
            Command::CreateApp {
                tenant: n("acme"),
                name: n("shop"),
                route: "/shop".into(),
                host: None,
            },
            Command::AddVersion {
                tenant: n("acme"),
                app: n("shop"),
                digest: "a".repeat(64),
                config: VersionConfig {
                    memory_bytes: 512 << 20,
                    ..VersionConfig::default()
                },
            },
        ];
        for node in ["a", "b"] {
            commands.push(Command::PutNode {
                node: Node {
                    name: n(node),
                    region: n("eu"),
                    address: format!("{node}:7071"),
                    labels: BTreeMap::new(),
                    capacity: 10,
                    api: None,
                    gateway: None,
                    peer_key: None,
                },
            });
            commands.push(Command::Report {
                report: NodeReport {
                    node: n(node),
                    boot: 1,
                    sequence: 1,
                    templates_ready: 1,
                    live_sandboxes: 0,
                    sandbox_starts: 0,
                    usage: Default::default(),
                    versions: vec![VersionReport {
                        tenant: n("acme"),
                        app: n("shop"),
                        version: 1,
                        requests: 500_000,
                        errors: 0,
                        timeouts: 0,
                        latency_us: LatencySummary::default(),
                        // 100 s busy on each node.
                        busy_us: 100_000_000,
                        recent_latencies_us: vec![],
                        latency_histogram_us: Default::default(),
                    }],
                },
            });
        }
        for c in commands {
            s.apply(&c).unwrap();
        }
        let c = costs(&s);
        assert_eq!(c.apps[0].usage.cost, None, "no prices yet");
        s.apply(&Command::SetPrices {
            prices: Prices {
                currency: "EUR".into(),
                per_sandbox_second: 0.001,
                per_gb_second: 0.01,
                per_million_requests: 0.2,
            },
        })
        .unwrap();
        let c = costs(&s);
        let u = &c.apps[0].usage;
        assert_eq!(u.requests, 1_000_000);
        assert!((u.sandbox_seconds - 200.0).abs() < 1e-9);
        assert!((u.gb_seconds - 100.0).abs() < 1e-9, "200 s at half a GiB");
        // 200 x 0.001 + 100 x 0.01 + 1 x 0.2
        assert!((u.cost.unwrap() - 1.4).abs() < 1e-9, "{u:?}");
        assert_eq!(c.tenants[0].usage, *u);
        // Bad prices are refused, naming the field.
        let bad = Command::SetPrices {
            prices: Prices {
                currency: "eur".into(),
                per_sandbox_second: 0.0,
                per_gb_second: 0.0,
                per_million_requests: 0.0,
            },
        };
        assert_eq!(s.apply(&bad).unwrap_err().field(), Some("currency"));
        let bad = Command::SetPrices {
            prices: Prices {
                currency: "EUR".into(),
                per_sandbox_second: -1.0,
                per_gb_second: 0.0,
                per_million_requests: 0.0,
            },
        };
        assert_eq!(
            s.apply(&bad).unwrap_err().field(),
            Some("per_sandbox_second")
        );
    }
}
