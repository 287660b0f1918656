//! `dwcp up --topology`: this node's place in a planet. Its own cluster
//! is its region's cell; beside it the node runs a member of the global
//! tier — a second cluster, in `DATA/global` on its own peer port — as a
//! voter when the topology's placement picks its region (the region's
//! first node) and as a learner otherwise, and a gossip member on that
//! member's peer address. The loops that run on top (the mirror of the
//! global tier, the cell's report, failover) are `controllers`'.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use cluster::{ClusterNode, DataDir, GossipMember, JoinToken, StartOptions, Started};
use planet::summary::{GossipConfig, Peer};
use planet::topology::{Calibration, GlobalTier, RttModel, Topology};
use replica::Timing;
use state::{Command, Name, Region};

/// The planet flags of `dwcp up`.
#[derive(Args, Debug)]
pub struct PlanetArgs {
    /// The planet's topology (TOML: continents, countries, metros, regions
    /// and their nodes; see topologies/planet-120.toml). Checked whole at
    /// start — a bad file, or a --region or --node it does not name, stops
    /// the node before it does anything. With it, this node's cluster is
    /// its region's cell and the node also runs a member of the global
    /// tier (see --node, --global-listen, --global-join).
    #[arg(long, value_name = "FILE")]
    pub topology: Option<PathBuf>,
    /// This node's name in the topology (one of its region's `nodes`); its
    /// region follows. The first node of each region the global tier's
    /// placement picks is a global voter; every other node a learner.
    #[arg(long, value_name = "NAME", requires = "topology")]
    pub node: Option<String>,
    /// The peer address of this node's member of the global tier (a new
    /// node; another port than --listen).
    #[arg(long, value_name = "IP:PORT", requires = "topology")]
    pub global_listen: Option<SocketAddr>,
    /// Join the global tier through the member whose global peer address
    /// this is. Without it a new node founds the global tier, which only a
    /// global voter may do.
    #[arg(long, value_name = "ADDR", requires_all = ["topology", "global_token"])]
    pub global_join: Option<String>,
    /// The global tier's join token (printed by its founder as `global
    /// join token:`).
    #[arg(
        long,
        value_name = "TOKEN",
        requires = "global_join",
        hide_env_values = true
    )]
    pub global_token: Option<String>,
    /// Region failovers that proceed by themselves in any hour; past
    /// that, each waits for an operator (`dwcp failover approve REGION`).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub failovers_per_hour: u32,
    /// A recovered region takes its load back in this many equal steps...
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub failback_steps: u32,
    /// ...this far apart (the first at once).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::units::parse_duration)]
    pub failback_step: Duration,
}

/// Where this node sits in the topology, checked before anything is made.
pub struct Place {
    pub node: String,
    /// The node's region record, placed in the tree.
    pub region: Region,
    /// Whether this node is one of the global tier's voters.
    pub voter: bool,
    /// The global tier's voters, by node name.
    pub voters: Vec<String>,
    /// The largest modelled round trip between two voters' regions, ms.
    pub widest_ms: f64,
    pub topology: Arc<Topology>,
    /// The topology's round-trip model (no jitter): placement, failover
    /// targets and routing all use this one.
    pub model: Arc<RttModel>,
}

/// Reads and checks `--topology`, that it names `--region` (if given) and
/// `--node`, and says where the global tier's voters go.
pub fn place(args: &PlanetArgs, region: Option<&str>) -> Result<Option<Place>> {
    let Some(path) = &args.topology else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--topology {}: cannot read it", path.display()))?;
    let topology =
        Topology::parse(&text).with_context(|| format!("--topology {}", path.display()))?;
    if let Some(region) = region
        && topology.region(region).is_none()
    {
        anyhow::bail!(
            "--region {region}: the topology {} has no such region (it has {}: {})",
            path.display(),
            topology.regions.len(),
            some(topology.regions.iter().map(|r| r.name.as_str()))
        );
    }
    let all_nodes = || topology.regions.iter().flat_map(|r| &r.nodes);
    let Some(node) = &args.node else {
        anyhow::bail!(
            "--node: required with --topology: this node's name in it (one of {})",
            some(all_nodes().map(Name::as_str))
        );
    };
    let Some(home) = topology
        .regions
        .iter()
        .position(|r| r.nodes.iter().any(|n| n.as_str() == node))
    else {
        anyhow::bail!(
            "--node {node}: the topology {} has no such node (it has {})",
            path.display(),
            some(all_nodes().map(Name::as_str))
        );
    };
    let spec = &topology.regions[home];
    if let Some(region) = region
        && region != spec.name.as_str()
    {
        anyhow::bail!(
            "--region {region}: node {node} is in region {} of the topology (leave --region out, or name that one)",
            spec.name
        );
    }
    let model = RttModel::new(&topology, Calibration::aws_2017(), 0);
    let tier = GlobalTier::of(&topology, &model).context("placing the global tier")?;
    let (floor, widest_ms) = (&tier.floor, tier.widest_ms);
    let voter_regions = &floor.placement.voters;
    let voters: Vec<String> = tier.voters.iter().map(Name::to_string).collect();
    cluster::say!(
        "",
        "topology {}: {} regions; the global tier's voters are {} in {} (leader's region {}, quorum round trip {:.1} ms modelled, {:.1} ms physical floor)",
        path.display(),
        topology.regions.len(),
        voters.join(", "),
        voter_regions
            .iter()
            .map(|&v| topology.regions[v].name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        topology.regions[floor.placement.leader].name,
        floor.model_ms,
        floor.physical_ms
    );
    Ok(Some(Place {
        voter: voters.iter().any(|v| v == node),
        node: node.clone(),
        region: Region {
            name: spec.name.clone(),
            metro: spec.metro.to_string(),
            country: spec.country.to_string(),
            continent: spec.continent.to_string(),
        },
        voters,
        widest_ms,
        topology: Arc::new(topology),
        model: Arc::new(model),
    }))
}

/// The first few of `names`, for an error message.
fn some<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    let shown = names.iter().take(8).copied().collect::<Vec<_>>().join(", ");
    if names.len() > 8 {
        format!("{shown}, … ({} in all)", names.len())
    } else {
        shown
    }
}

/// The global tier's timing: the cell's, spanning the widest round trip
/// between its voters ([`Timing::spanning`]).
pub fn timing(cell: &Timing, place: &Place) -> Timing {
    cell.spanning(Duration::from_secs_f64(place.widest_ms / 1000.0))
}

/// Checks, before anything is made, that this node can start its member
/// of the global tier in `data_dir/global`: a new one needs
/// `--global-listen`, and `--global-join` unless it is a voter. Returns
/// the join, if any.
pub fn preflight(
    args: &PlanetArgs,
    place: &Place,
    data_dir: &Path,
) -> Result<Option<(String, JoinToken)>> {
    let join = match (&args.global_join, &args.global_token) {
        (Some(addr), Some(token)) => Some((
            addr.clone(),
            JoinToken::parse(token).context("--global-token")?,
        )),
        _ => None,
    };
    if !data_dir.join("global").join("node.json").exists() {
        if args.global_listen.is_none() {
            anyhow::bail!(
                "--global-listen: required for a new node with --topology: the peer address of its member of the global tier (e.g. 10.0.0.5:7072, another port than --listen)"
            );
        }
        if join.is_none() && !place.voter {
            anyhow::bail!(
                "--global-join: node {} is not one of the global tier's voters ({}), so it cannot found the global tier; join it through a member with --global-join ADDR --global-token TOKEN",
                place.node,
                place.voters.join(", ")
            );
        }
    }
    Ok(join)
}

/// Starts (founds, joins or resumes) this node's member of the global
/// tier in `data_dir/global`, with the join [`preflight`] returned.
pub async fn start(
    place: &Place,
    join: Option<(String, JoinToken)>,
    listen: Option<SocketAddr>,
    data_dir: &Path,
    api_address: &str,
    timing: Timing,
    keys: cluster::sealed::KeyRing,
) -> Result<(Arc<ClusterNode>, Started)> {
    let dir = DataDir::sealed(data_dir.join("global"), keys);
    let options = StartOptions {
        region: place.region.name.to_string(),
        peer_address: listen,
        api_address: api_address.to_string(),
        join,
        timing,
        artifact_check: None,
        voter: place.voter,
    };
    ClusterNode::start(&dir, options).await.with_context(|| {
        format!(
            "starting the global tier's member in {}",
            dir.root().display()
        )
    })
}

/// Records this node's region, placed in the topology's tree, in the
/// global tier (and so in every cell); retried until it is done.
pub async fn record_region(cell: Arc<ClusterNode>, region: Region) {
    let what = format!("recording region {} in the global tier", region.name);
    super::until_done(&what, || async {
        let command = Command::PutRegion {
            region: region.clone(),
        };
        match cell.write(command).await?.result {
            Ok(_) => Ok(()),
            // Refused: retrying would not help; say so and stop.
            Err(rejection) => {
                cluster::say!("", "{what}: {rejection}");
                Ok(())
            }
        }
    })
    .await;
}

/// Says how the global tier's member came up; a founder's tokens go to
/// stdout after the cell's, as `global admin token:` and `global join
/// token:`.
pub fn announce(global: &ClusterNode, started: &Started, place: &Place) {
    let config = global.config();
    let what = match started {
        Started::Founded { .. } => "founded the global tier",
        Started::Joined { .. } => "joined the global tier",
        Started::Resumed { .. } => "resumed in the global tier",
    };
    cluster::say!(
        "",
        "{what} {} as its node {} ({}; its peers reach it at {})",
        config.cluster,
        config.id,
        if place.voter { "a voter" } else { "a learner" },
        config.peer_address
    );
    if let Started::Founded {
        admin_token,
        join_token,
    } = started
    {
        println!("global admin token: {admin_token}");
        println!("global join token: {join_token}");
        // No API serves the global tier: without this, a user tries the
        // global admin token on a region's API and is refused.
        cluster::say!(
            "",
            "the global admin token is the global tier's own (no API takes it yet); use each region's API with that region's admin token, printed by the node that founded its cell (docs/planet.md)"
        );
        cluster::say!(
            "",
            "other nodes join the global tier with: --global-join {} --global-token <the global join token above>",
            config.peer_address
        );
    }
}

/// Starts this node's gossip member on the global tier's peer address
/// (UDP, the same ip:port), packets sealed under a key derived from the
/// global tier's CA, its identity the node's id in the global tier (unique
/// on the planet) with a bump from the wall clock, so a restarted node
/// rejoins under an identity newer than the one declared down.
pub async fn start_gossip(
    global: &ClusterNode,
    place: &Place,
) -> Result<(GossipMember, tokio::task::JoinHandle<()>)> {
    let addr: SocketAddr = global
        .config()
        .peer_address
        .parse()
        .context("the global tier's peer address")?;
    let bump = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as u16;
    let me = Peer {
        node: global.id(),
        region: place.region.name.clone(),
        addr,
        bump,
    };
    let size = NonZeroU32::new(u32::try_from(place.topology.node_count()).unwrap_or(u32::MAX))
        .unwrap_or(NonZeroU32::MIN);
    GossipMember::start(
        me,
        global.derived_key("dwcp gossip key v1"),
        GossipConfig::wan(size),
        planet::summary::seeds(&global.replica().read_local()),
    )
    .await
    .with_context(|| format!("gossip: cannot listen on udp {addr}"))
}
