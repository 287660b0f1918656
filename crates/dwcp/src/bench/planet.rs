//! `dwcp bench failover`: region failover on real processes. Three
//! one-node regions (Dublin, Frankfurt, Paris; three global voters) run as
//! `dwcp up --topology` children on loopback; Paris is killed with SIGKILL
//! and restarted, cycle after cycle, and each cycle measures from the kill
//! to: gossip at Dublin judging Paris down (`region-detect`, the
//! baseline: the least any failover can take), and the global tier's
//! failover committed and both targets running their share of Paris's
//! replicas (`region-failover`); then from the restart to the load back
//! home (`region-failback`, with one failback step). Figures are read by
//! polling the API every 20 ms, so each carries up to 20 ms of polling.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use serde_json::Value;

use super::report::{Report, Series};
use crate::cli::client::{ApiArgs, Client};

const TOPOLOGY: &str = include_str!("../../../../topologies/europe-3.toml");

/// The three nodes' topology names, regions and loopback addresses.
const NODES: [(&str, &str, u8); 3] = [
    ("x-1", "eu-west-1", 81),
    ("y-1", "eu-central-1", 82),
    ("z-1", "eu-west-3", 83),
];
const POLL: Duration = Duration::from_millis(20);
/// A bound on a failure, not a figure: debug builds on a busy machine.
const DEADLINE: Duration = Duration::from_secs(120);

struct Node {
    name: &'static str,
    args: Vec<String>,
    child: Option<Child>,
    client: Option<Client>,
}

/// The three processes; dropping it kills them.
struct Planet {
    dir: PathBuf,
    nodes: Vec<Node>,
}

impl Drop for Planet {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn run(quick: bool) -> Result<Report> {
    let cycles = if quick { 2 } else { 10 };
    super::on_runtime(async move {
        let mut planet = Planet::start().await?;
        let (mut detect, mut failover, mut failback) = (hist()?, hist()?, hist()?);
        for cycle in 1..=cycles {
            eprintln!("bench failover: cycle {cycle} of {cycles}: killing Paris");
            let killed = Instant::now();
            planet.kill(2)?;
            planet
                .wait(0, "/planet", "Paris judged down", |p| {
                    region(p, "eu-west-3")["judged"] == "down"
                })
                .await?;
            record(&mut detect, killed.elapsed())?;
            for (n, home) in [(0, "eu-west-1"), (1, "eu-central-1")] {
                planet.wait_hello(n, home, 2).await?;
            }
            record(&mut failover, killed.elapsed())?;
            let restarted = Instant::now();
            planet.restart(2).await?;
            for (n, home) in [(0, "eu-west-1"), (1, "eu-central-1")] {
                planet.wait_hello(n, home, 1).await?;
            }
            record(&mut failback, restarted.elapsed())?;
        }
        let mut report = Report::new(
            "failover",
            serde_json::json!({
                "regions": 3,
                "nodes_per_region": 1,
                "global_voters": 3,
                "cycles": cycles,
                "poll_ms": POLL.as_millis() as u64,
                "failback": "1 step",
            }),
        );
        report
            .series
            .push(Series::latency("region-detect", &detect, None));
        report.series.push(Series::latency(
            "region-failover",
            &failover,
            Some("region-detect"),
        ));
        report
            .series
            .push(Series::latency("region-failback", &failback, None));
        report.notes.push(
            "loopback: the round trips between regions are ~0, not the topology's; detection is SWIM's WAN timing (planet::summary::GossipConfig::wan)".into(),
        );
        Ok(report.finish())
    })
}

fn hist() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 3_600_000_000_000_000, 3).context("a histogram")
}

/// Records `d` in picoseconds, as the report's latency series expect.
fn record(h: &mut Histogram<u64>, d: Duration) -> Result<()> {
    h.record(d.as_nanos() as u64 * 1_000)
        .context("recording a sample")
}

fn region<'a>(planet: &'a Value, name: &str) -> &'a Value {
    planet["regions"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["region"] == name))
        .unwrap_or(&Value::Null)
}

impl Planet {
    async fn start() -> Result<Planet> {
        let dir = std::env::temp_dir().join(format!("dwcp-bench-failover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let topology = dir.join("planet.toml");
        std::fs::write(&topology, TOPOLOGY)?;
        let mut planet = Planet {
            dir: dir.clone(),
            nodes: Vec::new(),
        };
        let mut global_join: Option<(SocketAddr, String)> = None;
        for (name, _, ip) in NODES {
            let ip = Ipv4Addr::new(127, 0, 0, ip);
            let ports = super::processes::free_ports::<4>(ip)?;
            let [peer, api, gateway, global] = ports;
            let mut args: Vec<String> = [
                "up",
                "--data-dir",
                &dir.join(name).display().to_string(),
                "--listen",
                &peer.to_string(),
                "--api",
                &api.to_string(),
                "--gateway",
                &gateway.to_string(),
                "--topology",
                &topology.display().to_string(),
                "--node",
                name,
                "--global-listen",
                &global.to_string(),
                "--failback-steps",
                "1",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            if let Some((at, token)) = &global_join {
                args.extend(["--global-join".into(), at.to_string()]);
                args.extend(["--global-token".into(), token.clone()]);
            }
            let mut node = Node {
                name,
                args,
                child: None,
                client: None,
            };
            let (child, tokens) = spawn(&node, &dir)?;
            node.child = Some(child);
            let (admin, join) = tokens.recv_timeout(DEADLINE).with_context(|| {
                format!("{name} printed no tokens; see its log in {}", dir.display())
            })?;
            node.client = Some(Client::new(&ApiArgs {
                api: format!("http://{api}"),
                token: Some(admin),
            })?);
            if global_join.is_none() {
                global_join = Some((global, join.context("the global join token")?));
            }
            planet.nodes.push(node);
        }
        planet
            .wait(0, "/planet", "every region healthy, serving", |p| {
                NODES.iter().all(|(_, r, _)| {
                    region(p, r)["judged"] == "healthy"
                        && p["apps"]["default/hello"][r]["ready"] == 1
                })
            })
            .await?;
        Ok(planet)
    }

    fn kill(&mut self, i: usize) -> Result<()> {
        let child = self.nodes[i].child.as_mut().context("not running")?;
        child.kill().context("killing a node")
    }

    async fn restart(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        if let Some(mut child) = node.child.take() {
            child.wait()?;
        }
        let (child, _) = spawn(node, &self.dir)?;
        node.child = Some(child);
        Ok(())
    }

    /// Polls `path` on node `n` until `ok` holds.
    async fn wait(
        &self,
        n: usize,
        path: &str,
        what: &str,
        ok: impl Fn(&Value) -> bool,
    ) -> Result<()> {
        let client = self.nodes[n].client.as_ref().context("no client")?;
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(v) = client.get::<Value>(path).await
                && ok(&v)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{what}: not within {DEADLINE:?}; logs in {}",
                    self.dir.display()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn wait_hello(&self, n: usize, region: &str, replicas: u64) -> Result<()> {
        let what = format!(
            "{} running {replicas} replicas of default/hello",
            self.nodes[n].name
        );
        self.wait(n, "/tenants/default/apps/hello", &what, |app| {
            app["deployment"]["regions"][region] == replicas
        })
        .await
    }
}

/// A node's admin token and, from the global tier's founder, the global
/// join token, once printed.
type Tokens = std::sync::mpsc::Receiver<(String, Option<String>)>;

/// Starts a node; its admin token and (from a founder of the global tier)
/// the global join token arrive on the channel.
fn spawn(node: &Node, dir: &std::path::Path) -> Result<(Child, Tokens)> {
    let log = std::fs::File::create(dir.join(format!("{}.log", node.name)))?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(&node.args)
        .env_remove("DWCP_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting node {}", node.name))?;
    let stdout = child.stdout.take().context("the child's stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let founds_global = !node.args.iter().any(|a| a == "--global-join");
    std::thread::spawn(move || {
        let (mut admin, mut join) = (None, None);
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(t) = line.strip_prefix("admin token: ") {
                admin = Some(t.trim().to_string());
            } else if let Some(t) = line.strip_prefix("global join token: ") {
                join = Some(t.trim().to_string());
            }
            if let Some(admin) = &admin
                && (join.is_some() || !founds_global)
            {
                let _ = tx.send((admin.clone(), join.clone()));
                break;
            }
        }
        lines.for_each(drop);
    });
    Ok((child, rx))
}
