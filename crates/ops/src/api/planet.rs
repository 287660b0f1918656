//! `GET /planet`: the planet as this node's gossip member sees it — each
//! region's members known and alive, its own latest report and the
//! judgement drawn from them, and each app's status per region. Answered
//! only by a node running in a planet (`dwcp up --topology`).

use std::collections::BTreeMap;

use hyper::StatusCode;
use planet::summary::{AppStatus, Health};
use serde::Serialize;

use super::error::ApiError;
use super::reply::{Reply, json};
use crate::ControlPlane;

#[derive(Debug, Serialize)]
struct Planet {
    /// The member answering: node id in the global tier, region, address.
    me: String,
    regions: Vec<RegionView>,
    /// `tenant/app` → region → status.
    apps: BTreeMap<String, BTreeMap<String, AppStatus>>,
    /// Gossip packets dropped because they were not sealed by a member.
    refused_packets: u64,
    /// Gossip packets dropped as replays or as sent over a minute away
    /// from this node's clock.
    replayed_packets: u64,
}

#[derive(Debug, Serialize)]
struct RegionView {
    region: String,
    judged: &'static str,
    known: usize,
    alive: usize,
    /// The region's own report: `health`, `capacity`, `load`.
    report: Option<planet::summary::RegionStatus>,
}

fn word(health: Health) -> &'static str {
    match health {
        Health::Healthy => "healthy",
        Health::Degraded => "degraded",
        Health::Down => "down",
    }
}

/// `GET /planet`.
pub(crate) async fn show<P: ControlPlane>(plane: &P) -> Result<Reply, ApiError> {
    let Some(view) = plane.planet() else {
        return Err(ApiError::not_found(
            "this node does not run in a planet (start it with dwcp up --topology FILE --node NAME)",
        ));
    };
    let mut apps: BTreeMap<String, BTreeMap<String, AppStatus>> = BTreeMap::new();
    for (key, regions) in view.summary.apps() {
        let entry = apps.entry(key.to_string()).or_default();
        for (region, status) in regions {
            entry.insert(region.to_string(), *status);
        }
    }
    let planet = Planet {
        me: view.me.to_string(),
        regions: view
            .regions()
            .into_iter()
            .map(|r| RegionView {
                region: r.region.to_string(),
                judged: word(r.judged),
                known: r.known,
                alive: r.alive,
                report: r.report,
            })
            .collect(),
        apps,
        refused_packets: view.refused,
        replayed_packets: view.replayed,
    };
    json(StatusCode::OK, &planet)
}

/// `GET /route?lat=L&lon=L`: the region a client at that place should
/// send its requests to — the nearest (by the topology's model) that this
/// node's gossip does not hold down — with its gateways.
pub(crate) async fn route<P: ControlPlane>(
    plane: &P,
    query: Option<&str>,
) -> Result<Reply, ApiError> {
    let (mut lat, mut lon) = (None, None);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "lat" => &mut lat,
            "lon" => &mut lon,
            other => {
                return Err(ApiError::invalid(
                    other.chars().take(80).collect::<String>(),
                    "the query parameters of GET /api/v1/route are `lat` and `lon`",
                ));
            }
        };
        *slot = Some(
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    ApiError::invalid(
                        name,
                        format!(
                            "a number of degrees, not `{}`",
                            value.chars().take(40).collect::<String>()
                        ),
                    )
                })?,
        );
    }
    let lat = lat
        .filter(|v| (-90.0..=90.0).contains(v))
        .ok_or_else(|| ApiError::invalid("lat", "a latitude from -90 to 90, e.g. lat=48.9"))?;
    let lon = lon
        .filter(|v| (-180.0..=180.0).contains(v))
        .ok_or_else(|| ApiError::invalid("lon", "a longitude from -180 to 180, e.g. lon=2.4"))?;
    if plane.planet().is_none() {
        return Err(ApiError::not_found(
            "this node does not run in a planet (start it with dwcp up --topology FILE --node NAME)",
        ));
    }
    let at = planet::topology::geo::LatLon { lat, lon };
    match plane.route(at) {
        Some(route) => json(StatusCode::OK, &route),
        None => Err(ApiError::unavailable(
            "no region is up as this node's gossip sees it",
        )),
    }
}
