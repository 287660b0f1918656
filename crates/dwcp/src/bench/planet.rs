//! `dwcp bench failover`: region failover on real processes. Three
//! one-node regions (Dublin, Frankfurt, Paris; three global voters) run as
//! `dwcp up --topology` children on loopback, each running the example app
//! (`default/hello`, one replica). Paris is killed with SIGKILL and
//! restarted, cycle after cycle, and each cycle measures from the kill to:
//! gossip at Dublin judging Paris down (`region-detect`, the baseline: the
//! least any failover can take); the global tier's failover committed and
//! both targets' cells wanting 2 replicas (`region-failover-committed`);
//! and both targets running them (`region-failover`: what users wait for —
//! each target's cell has placed 2 replicas on its node, the node's agent
//! reports 2 live sandboxes, and its gateway answers `GET /hello`). Then
//! from the restart to the load back home (`region-failback`, one failback
//! step). Figures are read by polling every 20 ms, so each carries up to
//! 20 ms of polling. A failed run keeps the nodes' logs and says where.
//! Every node runs with a raised hourly failover budget: each cycle is a
//! failover, and the default budget (2 an hour) would hold the third for an
//! operator's approval (the guardrail is tested in `tests/planet.rs`).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use harness::{NodeProcess, NodeSpec};
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
const PARIS: &str = "eu-west-3";
/// The two regions Paris's load moves to, by node index.
const TARGETS: [(usize, &str); 2] = [(0, "eu-west-1"), (1, "eu-central-1")];
/// Failovers an hour that proceed by themselves: past every cycle a run
/// makes (`dwcp up --failovers-per-hour`; its default, 2, would hold the
/// third cycle's failover for an operator's approval).
const FAILOVERS_PER_HOUR: &str = "1000";
/// A bound on a failure, not a figure: debug builds on a busy machine.
const DEADLINE: Duration = Duration::from_secs(120);

struct Node {
    name: &'static str,
    gateway: SocketAddr,
    /// Its `dwcp up` flags beyond the data directory and addresses.
    flags: Vec<String>,
    process: NodeProcess,
    client: Client,
}

/// The three processes; dropping it kills them.
struct Planet {
    dir: PathBuf,
    nodes: Vec<Node>,
    /// Set once the run has finished: until then a drop (an error) keeps
    /// the data directories and logs for a look at why.
    finished: bool,
}

impl Drop for Planet {
    fn drop(&mut self) {
        // Each node's process is killed and reaped as it is dropped.
        self.nodes.clear();
        if self.finished {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn run(quick: bool) -> Result<Report> {
    let cycles = if quick { 2 } else { 10 };
    super::on_runtime(async move {
        let mut planet = Planet::start().await?;
        let [mut detect, mut committed, mut failover, mut failback] =
            [hist()?, hist()?, hist()?, hist()?];
        for cycle in 1..=cycles {
            // Untimed: the failback's placements are back at 1 on both
            // targets before the next kill. (Their cold pools may keep a
            // second instance ready: they trim lazily, so from the second
            // cycle on the live count can hold at once when the second
            // replica is placed.)
            for (n, home) in TARGETS {
                let what = format!("{} back at 1 placed replica", planet.nodes[n].name);
                planet
                    .wait(n, "/nodes", &what, |list| {
                        running(list, home).is_some_and(|(placed, _)| placed == 1)
                    })
                    .await?;
            }
            crate::cli::progress::line(format!(
                "bench failover: cycle {cycle} of {cycles}: killing Paris"
            ));
            let killed = Instant::now();
            planet.kill(2)?;
            planet
                .wait(0, "/planet", "Paris judged down", |p| {
                    region(p, PARIS)["judged"] == "down"
                })
                .await?;
            let detected = killed.elapsed();
            record(&mut detect, detected)?;
            for (n, home) in TARGETS {
                planet.wait_hello(n, home, 2).await?;
            }
            let wanted = killed.elapsed();
            record(&mut committed, wanted)?;
            for (n, home) in TARGETS {
                planet.wait_running(n, home, 2).await?;
            }
            let running = killed.elapsed();
            record(&mut failover, running)?;
            crate::cli::progress::line(format!(
                "bench failover: cycle {cycle}: detected after {detected:?}, wanted after {wanted:?}, running and serving after {running:?}"
            ));
            let restarted = Instant::now();
            planet.restart(2).await?;
            for (n, home) in TARGETS {
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
                "failovers_per_hour": FAILOVERS_PER_HOUR,
            }),
        );
        report
            .series
            .push(Series::latency("region-detect", &detect, None));
        report.series.push(Series::latency(
            "region-failover-committed",
            &committed,
            Some("region-detect"),
        ));
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
        report.notes.push(format!(
            "region-failover-committed stops when both targets' cells want 2 replicas of default/hello (the failover committed and copied); region-failover when, in each target, the cell has placed 2 on its node, the node's agent reports 2 live sandboxes (the node runs nothing else; after a failback its cold pool may still hold 2 ready, so from the second cycle on this can hold at placement) and its gateway answers GET /hello with 200; every node runs with --failovers-per-hour {FAILOVERS_PER_HOUR} so that no cycle waits for an approval"
        ));
        planet.finished = true;
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
            finished: false,
        };
        let mut global_join: Option<(SocketAddr, String)> = None;
        for (name, _, ip) in NODES {
            let ip = Ipv4Addr::new(127, 0, 0, ip);
            let ports = harness::free_ports::<4>(ip)?;
            let [peer, api, gateway, global] = ports;
            let mut flags: Vec<String> = [
                "--topology",
                &topology.display().to_string(),
                "--node",
                name,
                "--global-listen",
                &global.to_string(),
                "--failback-steps",
                "1",
                "--failovers-per-hour",
                FAILOVERS_PER_HOUR,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            if let Some((at, token)) = &global_join {
                flags.extend(["--global-join".into(), at.to_string()]);
                flags.extend(["--global-token".into(), token.clone()]);
            }
            let spec = NodeSpec {
                exe: std::env::current_exe().context("finding the dwcp binary")?,
                data_dir: dir.join(name),
                peer: peer.to_string(),
                api: api.to_string(),
                gateway: gateway.to_string(),
                log: dir.join(format!("{name}.log")),
                env: Vec::new(),
                env_remove: vec!["DWCP_DATA_DIR".into()],
            };
            let process = NodeProcess::start(spec, &strs(&flags))?;
            let admin = process.printed("admin token: ", DEADLINE)?;
            if global_join.is_none() {
                // The founder of the global tier prints its join token.
                let join = process.printed("global join token: ", DEADLINE)?;
                global_join = Some((global, join));
            }
            let client = Client::new(&ApiArgs {
                api: format!("http://{api}"),
                token: Some(admin),
                ca_file: None,
            })?;
            let node = Node {
                name,
                gateway,
                flags,
                process,
                client,
            };
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

    /// SIGKILLs node `i`; it is reaped at its restart.
    fn kill(&mut self, i: usize) -> Result<()> {
        self.nodes[i].process.kill().context("killing a node")
    }

    async fn restart(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        node.process.restart(&strs(&node.flags))?;
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
        let client = &self.nodes[n].client;
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

impl Planet {
    /// Waits until node `n` runs `replicas` of the example app for
    /// `region` (its only node): its cell has placed them on it and its
    /// agent reports as many live sandboxes; then until its gateway answers
    /// `GET /hello`.
    async fn wait_running(&self, n: usize, region: &str, replicas: u64) -> Result<()> {
        let node = &self.nodes[n];
        let what = format!(
            "{} running {replicas} replicas of default/hello (placed, and reported live by its agent)",
            node.name
        );
        self.wait(n, "/nodes", &what, |list| {
            running(list, region)
                .is_some_and(|(placed, live)| placed >= replicas && live >= replicas)
        })
        .await?;
        let deadline = Instant::now() + DEADLINE;
        loop {
            let answer = super::density::http_get(node.gateway, "/hello", None).await;
            if answer
                .as_deref()
                .is_ok_and(|a| a.starts_with("HTTP/1.1 200"))
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{}'s gateway answering /hello: not within {DEADLINE:?}; logs in {}",
                    node.name,
                    self.dir.display()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// From a `GET /nodes`: the replicas of `default/hello` placed on the node
/// of `region` and the live sandboxes its agent last reported. Matched by
/// region, not by name: the cell names its node `node-1`, whatever the
/// topology calls it (the first try at this wait matched the topology's
/// name and so never saw a placement).
fn running(list: &Value, region: &str) -> Option<(u64, u64)> {
    let entry = list["nodes"]
        .as_array()?
        .iter()
        .find(|entry| entry["node"]["region"] == region)?;
    let placed = entry["placements"]
        .as_array()?
        .iter()
        .filter(|p| p["tenant"] == "default" && p["app"] == "hello")
        .filter_map(|p| p["count"].as_u64())
        .sum();
    let live = entry["report"]["live_sandboxes"].as_u64().unwrap_or(0);
    Some((placed, live))
}

fn strs(flags: &[String]) -> Vec<&str> {
    flags.iter().map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of a target's `GET /nodes`: its cell calls its node
    /// `node-1`, not the topology's `x-1`, so the node is found by region.
    #[test]
    fn running_finds_the_regions_node_whatever_its_name() {
        let list = serde_json::json!({"nodes": [{
            "node": {"name": "node-1", "region": "eu-west-1"},
            "report": {"live_sandboxes": 2},
            "placements": [
                {"tenant": "default", "app": "hello", "version": 1, "node": "node-1", "count": 2},
                {"tenant": "default", "app": "other", "version": 1, "node": "node-1", "count": 5},
            ],
        }]});
        assert_eq!(running(&list, "eu-west-1"), Some((2, 2)));
        assert_eq!(running(&list, "eu-west-3"), None);
        // No report yet: nothing live.
        let unreported = serde_json::json!({"nodes": [{
            "node": {"name": "node-1", "region": "eu-west-1"},
            "report": null,
            "placements": [],
        }]});
        assert_eq!(running(&unreported, "eu-west-1"), Some((0, 0)));
    }
}
