//! The topology file: its TOML shape and its validation.
//!
//! ```toml
//! [global]                 # optional
//! voters = 5               # global-tier voters, one per region (default 5)
//!
//! [network]                # optional
//! intra_region_ms = 1.0    # RTT between two nodes of a region (default 1)
//!
//! [[country]]
//! name = "ie"
//! continent = "europe"
//!
//! [[metro]]
//! name = "dublin"
//! country = "ie"
//!
//! [[region]]
//! name = "eu-west-1"
//! metro = "dublin"
//! lat = 53.3
//! lon = -6.3
//! nodes = ["euw1-a", "euw1-b", "euw1-c"]
//!
//! [[rtt]]                  # optional measured pairs, override the model
//! a = "eu-west-1"
//! b = "eu-central-1"
//! ms = 19.56
//! ```
//!
//! Each level names its parent, so the tree is written flat; an entry
//! declared again under another parent is refused ([`TopologyError::TwoParents`]),
//! as are duplicate names, coordinates out of range, regions without nodes,
//! a global tier larger than the regions, and measured RTTs below the
//! physical floor. Validation stops at the first error, in file order.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::error::TopologyError;
use super::geo::{LatLon, distance_km, floor_rtt_ms};
use super::tree::{DEFAULT_INTRA_REGION_MS, DEFAULT_VOTERS, RegionSpec, RttOverride, Topology};
use state::Name;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    #[serde(default)]
    global: RawGlobal,
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    country: Vec<RawCountry>,
    #[serde(default)]
    metro: Vec<RawMetro>,
    #[serde(default)]
    region: Vec<RawRegion>,
    #[serde(default)]
    rtt: Vec<RawRtt>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    #[serde(default = "default_voters")]
    voters: usize,
}

impl Default for RawGlobal {
    fn default() -> Self {
        RawGlobal {
            voters: DEFAULT_VOTERS,
        }
    }
}

fn default_voters() -> usize {
    DEFAULT_VOTERS
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default = "default_intra")]
    intra_region_ms: f64,
}

impl Default for RawNetwork {
    fn default() -> Self {
        RawNetwork {
            intra_region_ms: DEFAULT_INTRA_REGION_MS,
        }
    }
}

fn default_intra() -> f64 {
    DEFAULT_INTRA_REGION_MS
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCountry {
    name: String,
    continent: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetro {
    name: String,
    country: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegion {
    name: String,
    metro: String,
    lat: f64,
    lon: f64,
    nodes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRtt {
    a: String,
    b: String,
    ms: f64,
}

fn name(
    entry: impl FnOnce() -> String,
    field: &'static str,
    v: &str,
) -> Result<Name, TopologyError> {
    Name::new(field, v).map_err(|source| TopologyError::BadName {
        entry: entry(),
        source,
    })
}

/// Records `child` under `parent`, refusing a second declaration: under
/// another parent as [`TopologyError::TwoParents`], else as a duplicate.
fn insert_parent(
    map: &mut BTreeMap<Name, Name>,
    kind: &'static str,
    field: &'static str,
    child: Name,
    parent: Name,
) -> Result<(), TopologyError> {
    match map.get(&child) {
        Some(first) if *first != parent => Err(TopologyError::TwoParents {
            kind,
            name: child.to_string(),
            field,
            first: first.to_string(),
            second: parent.to_string(),
        }),
        Some(_) => Err(TopologyError::Duplicate {
            kind,
            name: child.to_string(),
            context: String::new(),
        }),
        None => {
            map.insert(child, parent);
            Ok(())
        }
    }
}

impl Topology {
    /// Parses and validates a topology file's text. No I/O: the caller reads
    /// the file.
    pub fn parse(text: &str) -> Result<Topology, TopologyError> {
        let raw: RawTopology =
            toml::from_str(text).map_err(|e| TopologyError::Syntax(e.to_string()))?;
        build(raw)
    }
}

fn build(raw: RawTopology) -> Result<Topology, TopologyError> {
    let mut country_of_continent = BTreeMap::new();
    for (i, c) in raw.country.iter().enumerate() {
        let n = name(|| format!("country[{i}].name"), "country", &c.name)?;
        let parent = name(
            || format!("country `{}`.continent", c.name),
            "continent",
            &c.continent,
        )?;
        insert_parent(&mut country_of_continent, "country", "continent", n, parent)?;
    }
    let mut metro_country = BTreeMap::new();
    for (i, m) in raw.metro.iter().enumerate() {
        let n = name(|| format!("metro[{i}].name"), "metro", &m.name)?;
        let parent = name(
            || format!("metro `{}`.country", m.name),
            "country",
            &m.country,
        )?;
        if !country_of_continent.contains_key(&parent) {
            return Err(TopologyError::UnknownParent {
                kind: "metro",
                name: n.to_string(),
                field: "country",
                value: parent.to_string(),
            });
        }
        insert_parent(&mut metro_country, "metro", "country", n, parent)?;
    }

    let mut region_metro = BTreeMap::new();
    let mut nodes_seen: BTreeMap<Name, Name> = BTreeMap::new();
    let mut regions = Vec::with_capacity(raw.region.len());
    for (i, r) in raw.region.iter().enumerate() {
        let n = name(|| format!("region[{i}].name"), "region", &r.name)?;
        let metro = name(|| format!("region `{}`.metro", r.name), "metro", &r.metro)?;
        let Some(country) = metro_country.get(&metro).cloned() else {
            return Err(TopologyError::UnknownParent {
                kind: "region",
                name: n.to_string(),
                field: "metro",
                value: metro.to_string(),
            });
        };
        insert_parent(
            &mut region_metro,
            "region",
            "metro",
            n.clone(),
            metro.clone(),
        )?;
        let coordinate = |field, value: f64, limit: f64, allowed| {
            if value.is_finite() && (-limit..=limit).contains(&value) {
                Ok(())
            } else {
                Err(TopologyError::Coordinate {
                    region: n.to_string(),
                    field,
                    value,
                    allowed,
                })
            }
        };
        coordinate("lat", r.lat, 90.0, "-90 to 90")?;
        coordinate("lon", r.lon, 180.0, "-180 to 180")?;
        if r.nodes.is_empty() {
            return Err(TopologyError::NoNodes {
                region: n.to_string(),
            });
        }
        let mut nodes = Vec::with_capacity(r.nodes.len());
        for (j, node) in r.nodes.iter().enumerate() {
            let node = name(|| format!("region `{}`.nodes[{j}]", r.name), "node", node)?;
            if let Some(first) = nodes_seen.insert(node.clone(), n.clone()) {
                return Err(TopologyError::Duplicate {
                    kind: "node",
                    name: node.to_string(),
                    context: format!(" (in region `{first}` and in region `{n}`)"),
                });
            }
            nodes.push(node);
        }
        let continent = country_of_continent
            .get(&country)
            .cloned()
            // Every metro's country was checked to be declared above.
            .unwrap_or_else(|| country.clone());
        regions.push(RegionSpec {
            name: n,
            metro,
            country,
            continent,
            at: LatLon::new(r.lat, r.lon),
            nodes,
        });
    }

    let voters = raw.global.voters;
    if voters == 0 || voters > regions.len() {
        return Err(TopologyError::Voters {
            voters,
            regions: regions.len(),
        });
    }
    let intra = raw.network.intra_region_ms;
    if !(intra.is_finite() && intra > 0.0) {
        return Err(TopologyError::Number {
            entry: "network.intra_region_ms".into(),
            value: intra,
            allowed: "a positive number of milliseconds",
        });
    }

    let index: BTreeMap<&str, usize> = regions
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.as_str(), i))
        .collect();
    let mut pairs = BTreeSet::new();
    let mut overrides = Vec::with_capacity(raw.rtt.len());
    for o in &raw.rtt {
        let find = |v: &str, other: &str| {
            index
                .get(v)
                .copied()
                .ok_or_else(|| TopologyError::UnknownParent {
                    kind: "rtt",
                    name: format!("{}-{}", v, other),
                    field: "region",
                    value: v.to_string(),
                })
        };
        let (a, b) = (find(&o.a, &o.b)?, find(&o.b, &o.a)?);
        if a == b {
            return Err(TopologyError::SelfPair {
                region: o.a.clone(),
            });
        }
        let (a, b) = (a.min(b), a.max(b));
        if !pairs.insert((a, b)) {
            return Err(TopologyError::Duplicate {
                kind: "rtt",
                name: format!("{}-{}", o.a, o.b),
                context: " (one override per pair)".into(),
            });
        }
        let km = distance_km(regions[a].at, regions[b].at);
        let floor_ms = floor_rtt_ms(km);
        if !o.ms.is_finite() || o.ms < floor_ms {
            return Err(TopologyError::BelowFloor {
                a: o.a.clone(),
                b: o.b.clone(),
                ms: o.ms,
                floor_ms,
                km,
            });
        }
        overrides.push(RttOverride { a, b, ms: o.ms });
    }

    Ok(Topology {
        regions,
        voters,
        intra_region_ms: intra,
        overrides,
    })
}
