//! The experiments on real processes: a scratch cluster of three `dwcp up`
//! children (`bench::processes`), or a running cluster given by `--api`
//! (then only the faults that need no process of ours), an app served by
//! every gateway, the steady load (`load.rs`), and each fault carried out
//! and taken back for real: signals, the transport's drop rules, the
//! node's test-faults file, files in the data directory, API calls.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::acts::{self, Applied};
use super::catalog::{Fault, Role};
use super::engine::{Autopilot, Decisions, Target};
use super::load::{HeldConnections, Load};
use super::verdict::Sample;
use crate::bench::processes::ProcessCluster;
use crate::bench::rollout::{add_version, upload};
use crate::cli::client::{ApiArgs, Client};

/// The app the load watches, and the other tenant's app a flood hits.
const TENANT: &str = "default";
const APP: &str = "chaos-steady";
const ROUTE: &str = "/chaos-steady";
const FLOOD_TENANT: &str = "chaos-flood";
const FLOOD_APP: &str = "flood";
const FLOOD_ROUTE: &str = "/chaos-flood";
/// The region `dwcp up` puts a node in by default.
const REGION: &str = "local";
/// The app's module (also `dwcp bench rollout`'s): answers, or traps on
/// the body `f` when FAILS is 1.
const APP_WAT: &str = include_str!("../bench/apps/rollout.wat");

/// What every scratch node is started with besides its addresses: the
/// test-faults file read, a disk and a memory limit small enough to reach,
/// the autopilot's round every second (not 10 s) so that a short fault is
/// seen, and Raft timing for a loaded machine: debug builds on a shared
/// 2-core machine (load average about 12) held elections every few
/// seconds at the default 200 ms election timeout, faults or not.
pub const UP_ARGS: [&str; 11] = [
    "--heartbeat",
    "100ms",
    "--election-timeout",
    "1s",
    "--test-faults",
    "--disk-limit",
    "512MiB",
    "--memory-limit",
    "1GiB",
    "--autopilot-every",
    "1s",
];
/// `--disk-limit` above, in bytes.
const DISK_LIMIT_BYTES: u64 = 512 << 20;
/// The file a disk fill writes in the data directory.
const FILL_FILE: &str = "chaos-fill";

/// The steady load: clients and their pace.
const CLIENTS: usize = 4;
const CLIENT_EVERY: Duration = Duration::from_millis(25);
/// Bounds a wait for the cluster (an app served, a node back).
const DEADLINE: Duration = Duration::from_secs(90);
/// Bounds one API call made while a fault is in force.
const CALL_DEADLINE: Duration = Duration::from_secs(5);

/// The app's module text: `tag` (8 bytes) is what it answers; `fails`: it
/// traps on a body starting with `f`; `spin`: a busy loop's iterations.
fn module(tag: &str, fails: bool) -> String {
    APP_WAT
        .replace("TAG_TAG_", tag)
        .replace("SPIN)", "0)")
        .replace("const FAILS)", if fails { "const 1)" } else { "const 0)" })
}

/// A fault in force, with what taking it back needs.
enum Active {
    Nothing,
    /// Processes killed (started again at the restore).
    Killed(Vec<usize>),
    /// A process stopped with SIGSTOP.
    Stopped(usize),
    /// A node killed and started again and again.
    CrashLoop {
        node: usize,
        since: Instant,
    },
    /// Drop-rule files written (emptied at the restore).
    DropRules,
    /// Test-faults files written in these nodes' data directories.
    FaultsFile(Vec<usize>),
    /// A latency creep's delay on every node, ms.
    Creep {
        step_ms: u64,
        every_ms: u64,
        max_ms: u64,
        now_ms: u64,
    },
    /// A file filling a data directory.
    Fill(PathBuf),
    /// A version deployed outright, or rolled out.
    Deployed,
    Canary,
    /// A flood of requests, or connections held.
    Flood(#[allow(dead_code)] Load),
    Held(#[allow(dead_code)] HeldConnections),
    /// Writers to the store.
    Writers(Vec<JoinHandle<()>>),
    /// An artifact damaged on a node's disk: the file and its bytes.
    Corrupt {
        node: usize,
        path: PathBuf,
        bytes: Vec<u8>,
    },
}

/// The cluster an experiment runs against.
pub struct Live {
    /// `None` with `--api`: the processes are not ours.
    cluster: Option<ProcessCluster>,
    gateways: Vec<SocketAddr>,
    /// One client per node's API (the first answers for the cluster).
    apis: Vec<Client>,
    stable: u64,
    stable_digest: String,
    bad_digest: String,
    load: Load,
    active: Active,
    rng: rng::SplitMix64,
    /// The act loop's decisions counted so far, and the newest one's id.
    tally: Decisions,
    last_decision: u64,
    /// The newest decision whose approval was counted.
    last_approval: u64,
    /// The kill switch as this harness last set it.
    paused: bool,
    /// Every action the autopilot applied, as read, oldest first; and how
    /// many of them [`Live::tidy`] has looked at.
    applied: Vec<Applied>,
    tidied: usize,
    /// Undos the cool-down refused (an action less than a minute old):
    /// tried again at the next tidy.
    postponed: Vec<u64>,
}

fn client(api: &str, token: &str) -> Result<Client> {
    Ok(Client::new(&ApiArgs {
        api: if api.contains("://") {
            api.to_string()
        } else {
            format!("http://{api}")
        },
        token: Some(token.to_string()),
        ca_file: None,
    })?)
}

impl Live {
    /// Starts a scratch cluster of three `dwcp up` processes and deploys
    /// the apps.
    pub async fn scratch(seed: u64, say: &dyn Fn(&str)) -> Result<Live> {
        if !cluster::FAULT_INJECTION {
            say(
                "note: this dwcp was built without the `fault-injection` feature: partitions and packet loss will be refused (cargo build -p dwcp --features fault-injection)",
            );
        }
        say("starting a scratch cluster of 3 `dwcp up` processes");
        let cluster = ProcessCluster::start_with_drop_rules("chaos", 3, &UP_ARGS).await?;
        let token = cluster.admin_token().to_string();
        let n = cluster.node_count();
        let gateways = (0..n).map(|i| cluster.gateway(i)).collect();
        let apis = (0..n)
            .map(|i| client(&cluster.api(i).to_string(), &token))
            .collect::<Result<Vec<_>>>()?;
        Live::set_up(Some(cluster), gateways, apis, seed, say).await
    }

    /// Attaches to a running cluster through its API: the nodes' gateways
    /// and APIs come from `GET /nodes`.
    pub async fn attach(api: &str, token: &str, seed: u64, say: &dyn Fn(&str)) -> Result<Live> {
        let entry = client(api, token)?;
        let view: Value = entry
            .get("/nodes")
            .await
            .context("reading GET /api/v1/nodes")?;
        let mut gateways = Vec::new();
        let mut apis = vec![entry];
        for n in view["nodes"].as_array().into_iter().flatten() {
            let Some(g) = n["node"]["gateway"].as_str() else {
                continue;
            };
            gateways.push(
                g.parse()
                    .with_context(|| format!("node {} has gateway `{g}`", n["node"]["name"]))?,
            );
            if let Some(a) = n["node"]["api"].as_str() {
                apis.push(client(a, token)?);
            }
        }
        if gateways.is_empty() {
            bail!("the cluster at {api} lists no node with a gateway");
        }
        Live::set_up(None, gateways, apis, seed, say).await
    }

    async fn set_up(
        cluster: Option<ProcessCluster>,
        gateways: Vec<SocketAddr>,
        apis: Vec<Client>,
        seed: u64,
        say: &dyn Fn(&str),
    ) -> Result<Live> {
        let api = &apis[0];
        say(&format!(
            "deploying {TENANT}/{APP} ({ROUTE}) with one replica per node, and {FLOOD_TENANT}/{FLOOD_APP}"
        ));
        let stable_digest = upload(api, &module("steady-1", false)).await?;
        let bad_digest = upload(api, &module("broken-1", true)).await?;
        let replicas = gateways.len();
        let app = format!("/tenants/{TENANT}/apps/{APP}");
        ensure_app(api, TENANT, APP, ROUTE).await?;
        let stable = add_version(api, &app, &stable_digest).await?;
        deploy(api, &app, stable, replicas).await?;
        if api
            .post::<_, IgnoredAny>("/tenants", &json!({"name": FLOOD_TENANT}))
            .await
            .is_err()
        {
            // It exists already (an earlier run against the same --api).
        }
        ensure_app(api, FLOOD_TENANT, FLOOD_APP, FLOOD_ROUTE).await?;
        let flood_app = format!("/tenants/{FLOOD_TENANT}/apps/{FLOOD_APP}");
        let flood = add_version(api, &flood_app, &stable_digest).await?;
        deploy(api, &flood_app, flood, replicas).await?;
        let load = Load::steady(gateways.clone(), apis.clone(), ROUTE, CLIENTS, CLIENT_EVERY);
        say(&format!(
            "steady load: {CLIENTS} clients, one request each every {} ms, routed by the cluster's health view",
            CLIENT_EVERY.as_millis()
        ));
        Ok(Live {
            cluster,
            gateways,
            apis,
            stable,
            stable_digest,
            bad_digest,
            load,
            active: Active::Nothing,
            rng: rng::SplitMix64::new(seed),
            tally: Decisions::default(),
            last_decision: 0,
            last_approval: 0,
            paused: false,
            applied: Vec::new(),
            tidied: 0,
            postponed: Vec::new(),
        })
    }

    /// Reseeds the choice of followers (one seed per run).
    pub fn reseed(&mut self, seed: u64) {
        self.rng = rng::SplitMix64::new(seed);
    }

    /// The first API that answers, for the cluster's calls.
    fn api(&self) -> &Client {
        &self.apis[0]
    }

    fn procs(&mut self) -> Result<&mut ProcessCluster> {
        self.cluster.as_mut().context(
            "this fault needs the processes of a scratch cluster (signals, data directories, drop rules); run without --api",
        )
    }

    /// An API client of a node whose process runs, for the cluster's calls
    /// while a fault is in force.
    async fn any_api<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let mut last = anyhow::anyhow!("no API");
        for c in &self.apis {
            match tokio::time::timeout(CALL_DEADLINE, c.get::<T>(path)).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => last = e.into(),
                Err(_) => last = anyhow::anyhow!("GET {path}: no answer within {CALL_DEADLINE:?}"),
            }
        }
        Err(last)
    }

    /// The node a role names now: the leader, or a follower the seed picks.
    async fn pick(&mut self, role: Role) -> Result<usize> {
        let procs = self.procs()?;
        let leader = procs.leader_now().await?;
        Ok(match role {
            Role::Leader => leader,
            Role::Follower => {
                let n = procs.node_count();
                let others: Vec<usize> = (0..n)
                    .filter(|&i| i != leader && procs.running(i))
                    .collect();
                if others.is_empty() {
                    bail!("no running follower to pick");
                }
                others[self.rng.below(others.len())]
            }
        })
    }

    fn followers_of(&mut self, leader: usize) -> Result<Vec<usize>> {
        let n = self.procs()?.node_count();
        Ok((0..n).filter(|&i| i != leader).collect())
    }

    /// Writes node `index`'s drop rules: one line per address.
    fn drop_rules(&mut self, index: usize, lines: &[String]) -> Result<()> {
        if !cluster::FAULT_INJECTION {
            bail!(
                "partitions and packet loss need the transport's drop rules: build dwcp with `--features fault-injection` (the tests' build has them)"
            );
        }
        let path = self.procs()?.drop_rules_file(index);
        std::fs::write(&path, lines.join("\n"))
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Writes node `index`'s test-faults file.
    fn faults_file(&mut self, index: usize, faults: &Value) -> Result<()> {
        let path = self.procs()?.data_dir(index).join(node::agent::FAULTS_FILE);
        std::fs::write(&path, faults.to_string())
            .with_context(|| format!("writing {}", path.display()))
    }

    fn signal(&mut self, index: usize, signal: libc::c_int) -> Result<()> {
        let pid = self
            .procs()?
            .pid(index)
            .context("the node is not running")?;
        // SAFETY: kill(2) takes a pid and a signal number and touches no
        // memory of ours; the pid is our own child's, not reaped yet.
        let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
        if rc != 0 {
            bail!(
                "signal {signal} to node {}: {}",
                index + 1,
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    async fn set_deployment(&self, version: u64) -> Result<()> {
        let app = format!("/tenants/{TENANT}/apps/{APP}");
        deploy(self.api(), &app, version, self.gateways.len()).await
    }

    /// Sets the autopilot's switches (`PUT /autopilot/controls`): the
    /// kill switch, and whether destructive actions are applied or only
    /// proposed; the switches as the cluster then has them.
    pub async fn set_controls(
        &mut self,
        paused: Option<bool>,
        destructive_enabled: Option<bool>,
    ) -> Result<acts::Controls> {
        let controls: acts::Controls = self
            .api()
            .put(
                "/autopilot/controls",
                &acts::controls_body(paused, destructive_enabled),
            )
            .await
            .context("setting the autopilot's switches (PUT /api/v1/autopilot/controls)")?;
        self.paused = controls.paused;
        Ok(controls)
    }

    /// Counts the autopilot's detections and predictions, and its
    /// decisions since the last read (fetching each that acted whole).
    async fn read_autopilot(&mut self) -> Result<Autopilot> {
        let anomalies: Value = self.any_api("/autopilot/anomalies?limit=500").await?;
        let detections = anomalies["anomalies"]
            .as_array()
            .map_or(0, |a| a.len() as u64);
        let predictions: Value = self.any_api("/autopilot/predictions?limit=500").await?;
        let predictions = predictions["predictions"]
            .as_array()
            .map_or(0, |a| a.len() as u64);
        self.read_decisions().await?;
        Ok(Autopilot {
            detections,
            predictions,
            decisions: Some(self.tally),
        })
    }

    /// Adds the decisions and approvals made since the last read to the
    /// tally; an answer of another shape than the act API's is an error.
    async fn read_decisions(&mut self) -> Result<()> {
        let lines: acts::Lines = self
            .any_api("/autopilot/decisions?limit=500")
            .await
            .context("reading GET /api/v1/autopilot/decisions")?;
        // Newest first: counted oldest first, so that a failed read
        // leaves the tally at a whole prefix.
        let counted = self.last_decision;
        for line in lines.decisions.iter().rev().filter(|l| l.id > counted) {
            match line.outcome.as_str() {
                "acted" => {
                    let e: acts::Explained = self
                        .any_api(&format!("/autopilot/decisions/{}", line.id))
                        .await
                        .with_context(|| format!("reading decision {}", line.id))?;
                    self.applied.push(Applied {
                        decision: e.decision,
                        while_paused: self.paused,
                    });
                    self.tally.acted += 1;
                }
                "proposed" => self.tally.proposed += 1,
                "refused" => self.tally.refused += 1,
                "declined" => {}
                other => bail!(
                    "GET /api/v1/autopilot/decisions: decision {} has outcome `{other}` (known: acted, proposed, refused, declined)",
                    line.id
                ),
            }
            self.last_decision = line.id;
        }
        let approvals: acts::Approvals = self
            .any_api("/autopilot/approvals")
            .await
            .context("reading GET /api/v1/autopilot/approvals")?;
        let newest = approvals
            .approvals
            .iter()
            .map(|a| a.approval.decision)
            .max()
            .unwrap_or(0);
        self.tally.approvals_asked += approvals
            .approvals
            .iter()
            .filter(|a| a.approval.decision > self.last_approval)
            .count() as u64;
        self.last_approval = self.last_approval.max(newest);
        Ok(())
    }

    /// Between runs: how many nodes the autopilot has drained now; then
    /// the autopilot's node schedules, scales and throttles taken back
    /// (`POST /autopilot/decisions/{id}/undo`) and the approvals still
    /// waiting rejected, as the operator closing the incident would, so
    /// that the next experiment meets the same cluster.
    pub async fn tidy(&mut self) -> Result<Tidy> {
        self.read_decisions().await?;
        let controls: acts::Controls = self
            .any_api("/autopilot/controls")
            .await
            .context("reading GET /api/v1/autopilot/controls")?;
        let mut tidy = Tidy {
            drained: controls.drained(),
            ..Tidy::default()
        };
        let mut undo = std::mem::take(&mut self.postponed);
        undo.extend(
            self.applied[self.tidied..]
                .iter()
                .rev()
                .filter(|a| a.decision.outcome.action().is_some_and(acts::tidied))
                .map(|a| a.decision.id),
        );
        self.tidied = self.applied.len();
        tidy.undone = self.undo_each(&undo, &mut tidy.failures).await;
        tidy.postponed = self.postponed.len();
        let approvals: acts::Approvals = self.any_api("/autopilot/approvals").await?;
        let reject: Vec<String> = approvals
            .approvals
            .iter()
            .filter(|a| a.approval.state.waiting())
            .map(|a| format!("/autopilot/approvals/{}/reject", a.approval.decision))
            .collect();
        tidy.rejected = self.post_each(&reject, &mut tidy.failures).await;
        Ok(tidy)
    }

    /// Undoes each decision; how many were undone. One the cool-down
    /// refuses (its action is less than a minute old) is kept for the next
    /// tidy; the others' errors are added to `failures`.
    async fn undo_each(&mut self, ids: &[u64], failures: &mut Vec<String>) -> usize {
        let mut done = 0;
        for id in ids {
            let path = format!("/autopilot/decisions/{id}/undo");
            match self.api().post::<_, IgnoredAny>(&path, &json!({})).await {
                Ok(_) => done += 1,
                Err(e) if acts::refused_by_cooldown(&e.to_string()) => self.postponed.push(*id),
                Err(e) => failures.push(format!("POST {path}: {e}")),
            }
        }
        done
    }

    /// Before the kill switch goes on (which refuses every undo): the
    /// undos the cool-down postponed, tried every 2 s until they go
    /// through or `within` has passed; how many were undone, and what
    /// could not be.
    pub async fn settle_undos(&mut self, within: Duration) -> (usize, Vec<String>) {
        let until = Instant::now() + within;
        let (mut undone, mut failures) = (0, Vec::new());
        while !self.postponed.is_empty() {
            let ids = std::mem::take(&mut self.postponed);
            undone += self.undo_each(&ids, &mut failures).await;
            if Instant::now() >= until {
                failures.extend(
                    self.postponed.drain(..).map(|id| {
                        format!("decision {id}: its undo was still held by the cool-down")
                    }),
                );
                break;
            }
            if !self.postponed.is_empty() {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        (undone, failures)
    }

    /// POSTs an empty body to each of `paths`; how many succeeded (the
    /// others' errors are added to `failures`).
    async fn post_each(&self, paths: &[String], failures: &mut Vec<String>) -> usize {
        let mut done = 0;
        for path in paths {
            match self.api().post::<_, IgnoredAny>(path, &json!({})).await {
                Ok(_) => done += 1,
                Err(e) => failures.push(format!("POST {path}: {e}")),
            }
        }
        done
    }

    /// The actions the autopilot applied since the last call.
    pub fn take_applied(&mut self) -> Vec<Applied> {
        self.tidied = 0;
        std::mem::take(&mut self.applied)
    }
}

/// What [`Live::tidy`] found and did.
#[derive(Debug, Default)]
pub struct Tidy {
    /// Nodes the autopilot had drained when the run ended.
    pub drained: usize,
    pub undone: usize,
    /// Undos the cool-down held, left for the next tidy.
    pub postponed: usize,
    pub rejected: usize,
    pub failures: Vec<String>,
}

impl Target for Live {
    fn clear(&mut self) {
        self.load.clear();
    }

    fn samples(&self, origin: Instant) -> Vec<Sample> {
        self.load.samples(origin)
    }

    async fn inject(&mut self, fault: &Fault) -> Result<Vec<usize>> {
        let all: Vec<usize> = (0..self.gateways.len()).collect();
        let (active, targets) = match *fault {
            Fault::None => (Active::Nothing, Vec::new()),
            Fault::Kill { role } => {
                let t = self.pick(role).await?;
                self.procs()?.kill(t)?;
                (Active::Killed(vec![t]), vec![t])
            }
            Fault::Stop { role } => {
                let t = self.pick(role).await?;
                self.signal(t, libc::SIGSTOP)?;
                (Active::Stopped(t), vec![t])
            }
            Fault::CrashLoop { role } => {
                let t = self.pick(role).await?;
                self.procs()?.kill(t)?;
                (
                    Active::CrashLoop {
                        node: t,
                        since: Instant::now(),
                    },
                    vec![t],
                )
            }
            Fault::RollingRestart => {
                let procs = self.procs()?;
                for i in 0..procs.node_count() {
                    procs.kill(i)?;
                    procs.restart(i).await?;
                }
                (Active::Nothing, all)
            }
            Fault::QuorumLoss => {
                let leader = self.pick(Role::Leader).await?;
                let followers = self.followers_of(leader)?;
                for &f in &followers {
                    self.procs()?.kill(f)?;
                }
                (Active::Killed(followers.clone()), followers)
            }
            Fault::PowerLoss => {
                for &i in &all {
                    self.procs()?.kill(i)?;
                }
                (Active::Killed(all.clone()), all)
            }
            Fault::Partition { role } => {
                let t = self.pick(role).await?;
                let procs = self.procs()?;
                let peers: Vec<String> = (0..procs.node_count())
                    .map(|i| procs.peer(i).to_string())
                    .collect();
                let others: Vec<String> = peers
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != t)
                    .map(|(_, p)| p.clone())
                    .collect();
                self.drop_rules(t, &others)?;
                for i in (0..peers.len()).filter(|&i| i != t) {
                    self.drop_rules(i, std::slice::from_ref(&peers[t]))?;
                }
                (Active::DropRules, vec![t])
            }
            Fault::OneWayPartition => {
                let leader = self.pick(Role::Leader).await?;
                let f = self.pick(Role::Follower).await?;
                let peer = self.procs()?.peer(f).to_string();
                self.drop_rules(leader, &[peer])?;
                (Active::DropRules, vec![f])
            }
            Fault::PacketLoss { share } => {
                let procs = self.procs()?;
                let peers: Vec<String> = (0..procs.node_count())
                    .map(|i| procs.peer(i).to_string())
                    .collect();
                for i in 0..peers.len() {
                    let lines: Vec<String> = peers
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, p)| format!("{p} {share}"))
                        .collect();
                    self.drop_rules(i, &lines)?;
                }
                (Active::DropRules, all)
            }
            Fault::SlowNode { role, delay_ms } => {
                let t = self.pick(role).await?;
                self.faults_file(t, &json!({"request_delay_ms": delay_ms}))?;
                (Active::FaultsFile(vec![t]), vec![t])
            }
            Fault::LatencyCreep {
                step_ms,
                every_ms,
                max_ms,
            } => {
                for &i in &all {
                    self.faults_file(i, &json!({"request_delay_ms": step_ms}))?;
                }
                (
                    Active::Creep {
                        step_ms,
                        every_ms,
                        max_ms,
                        now_ms: step_ms,
                    },
                    all,
                )
            }
            Fault::DiskFill { role, share } => {
                let t = self.pick(role).await?;
                let dir = self.procs()?.data_dir(t);
                let want = (DISK_LIMIT_BYTES as f64 * share) as u64;
                let used = node::agent::dir_bytes(&dir);
                let path = dir.join(FILL_FILE);
                allocate(&path, want.saturating_sub(used).max(1))?;
                (Active::Fill(path), vec![t])
            }
            Fault::MemoryPressure { role, bytes } => {
                let t = self.pick(role).await?;
                self.faults_file(t, &json!({"memory_ballast_bytes": bytes}))?;
                (Active::FaultsFile(vec![t]), vec![t])
            }
            Fault::BadVersion => {
                let app = format!("/tenants/{TENANT}/apps/{APP}");
                let bad = add_version(self.api(), &app, &self.bad_digest).await?;
                self.set_deployment(bad).await?;
                (Active::Deployed, all)
            }
            Fault::BadCanary => {
                let app = format!("/tenants/{TENANT}/apps/{APP}");
                let bad = add_version(self.api(), &app, &self.bad_digest).await?;
                self.api()
                    .post::<_, IgnoredAny>(
                        &format!("{app}/rollouts"),
                        &json!({"to": bad, "plan": canary_plan()}),
                    )
                    .await
                    .context("starting the bad canary's rollout")?;
                (Active::Canary, all)
            }
            Fault::TenantFlood { clients } => (
                Active::Flood(Load::flood(
                    self.gateways.clone(),
                    FLOOD_ROUTE,
                    clients as usize,
                )),
                all,
            ),
            Fault::PoolFull { clients } => (
                Active::Flood(Load::flood(self.gateways.clone(), ROUTE, clients as usize)),
                all,
            ),
            Fault::CorruptArtifact { role } => {
                let t = self.pick(role).await?;
                let path = self
                    .procs()?
                    .data_dir(t)
                    .join("blobs")
                    .join(&self.stable_digest);
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                let damaged: Vec<u8> = bytes.iter().map(|b| b ^ 0x5a).collect();
                std::fs::write(&path, &damaged)
                    .with_context(|| format!("damaging {}", path.display()))?;
                // Started again, the node must load the artifact from disk.
                let procs = self.procs()?;
                procs.kill(t)?;
                procs.respawn(t)?;
                (
                    Active::Corrupt {
                        node: t,
                        path,
                        bytes,
                    },
                    vec![t],
                )
            }
            Fault::ConnectionFlood { role, connections } => {
                let t = self.pick(role).await?;
                crate::fd_limit::raise_to_hard();
                let held = HeldConnections::open(self.gateways[t], connections).await;
                (Active::Held(held), vec![t])
            }
            Fault::WriteFlood { clients } => {
                let mut writers = Vec::new();
                for c in 0..clients {
                    let api = self.apis[c as usize % self.apis.len()].clone();
                    writers.push(tokio::spawn(async move {
                        for k in 0u64.. {
                            let path = format!("/registers/chaos-{c}-{}", k % 64);
                            let _ = api
                                .put::<_, IgnoredAny>(&path, &json!({"value": k.to_string()}))
                                .await;
                        }
                    }));
                }
                (Active::Writers(writers), all)
            }
            Fault::ClockJump | Fault::SlowDisk | Fault::RegionLost => {
                bail!("this fault is not supported on processes here (`dwcp chaos list` says why)")
            }
        };
        self.active = active;
        Ok(targets)
    }

    async fn tick(&mut self, since: Duration) -> Result<()> {
        match &mut self.active {
            Active::CrashLoop { node, since: at } => {
                let (node, at) = (*node, *at);
                let procs = self.procs()?;
                // Down 2 s, up 4 s, and again.
                if !procs.running(node) && at.elapsed() >= Duration::from_secs(2) {
                    procs.respawn(node)?;
                    self.active = Active::CrashLoop {
                        node,
                        since: Instant::now(),
                    };
                } else if procs.running(node) && at.elapsed() >= Duration::from_secs(4) {
                    procs.kill(node)?;
                    self.active = Active::CrashLoop {
                        node,
                        since: Instant::now(),
                    };
                }
            }
            Active::Creep {
                step_ms,
                every_ms,
                max_ms,
                now_ms,
            } => {
                let want = (*step_ms * (1 + since.as_millis() as u64 / *every_ms)).min(*max_ms);
                if want != *now_ms {
                    *now_ms = want;
                    for i in 0..self.gateways.len() {
                        self.faults_file(i, &json!({"request_delay_ms": want}))?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn restore(&mut self) -> Result<()> {
        let active = std::mem::replace(&mut self.active, Active::Nothing);
        match active {
            Active::Nothing | Active::Flood(_) | Active::Held(_) => {}
            Active::Killed(nodes) => {
                let procs = self.procs()?;
                for &i in &nodes {
                    procs.respawn(i)?;
                }
                for &i in &nodes {
                    procs.wait_caught_up(i).await?;
                }
            }
            Active::Stopped(i) => self.signal(i, libc::SIGCONT)?,
            Active::CrashLoop { node, .. } => {
                let procs = self.procs()?;
                if !procs.running(node) {
                    procs.respawn(node)?;
                }
                procs.wait_caught_up(node).await?;
            }
            Active::DropRules => {
                for i in 0..self.gateways.len() {
                    self.drop_rules(i, &[])?;
                }
            }
            Active::FaultsFile(nodes) => {
                for i in nodes {
                    let path = self.procs()?.data_dir(i).join(node::agent::FAULTS_FILE);
                    let _ = std::fs::remove_file(path);
                }
            }
            Active::Creep { .. } => {
                for i in 0..self.gateways.len() {
                    let path = self.procs()?.data_dir(i).join(node::agent::FAULTS_FILE);
                    let _ = std::fs::remove_file(path);
                }
            }
            Active::Fill(path) => {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
            Active::Deployed => self.set_deployment(self.stable).await?,
            Active::Canary => {
                let app = format!("/tenants/{TENANT}/apps/{APP}");
                // Aborted already by its analysis, if all went well.
                let _ = self
                    .api()
                    .post::<_, IgnoredAny>(&format!("{app}/rollout/abort"), &json!({}))
                    .await;
                self.wait_no_rollout().await?;
                self.set_deployment(self.stable).await?;
            }
            Active::Writers(writers) => {
                for w in writers {
                    w.abort();
                }
            }
            Active::Corrupt { node, path, bytes } => {
                std::fs::write(&path, &bytes)
                    .with_context(|| format!("repairing {}", path.display()))?;
                let procs = self.procs()?;
                procs.kill(node)?;
                procs.restart(node).await?;
            }
        }
        Ok(())
    }

    async fn autopilot(&mut self) -> Result<Autopilot> {
        // Reads wait for a leader: after a fault the cluster may still be
        // electing one, so a few failures are not yet an error.
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            match self.read_autopilot().await {
                Ok(a) => return Ok(a),
                Err(e) if Instant::now() >= until => {
                    return Err(e.context("reading the autopilot's findings for 30 s"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
}

impl Live {
    /// Waits until the app has no rollout running.
    async fn wait_no_rollout(&self) -> Result<()> {
        let path = format!("/tenants/{TENANT}/apps/{APP}/rollout");
        let until = Instant::now() + DEADLINE;
        while Instant::now() < until {
            match self.api().get::<Value>(&path).await {
                Ok(v) if v["rollout"]["finished_unix_ms"].is_u64() || v["rollout"].is_null() => {
                    return Ok(());
                }
                Err(e) if e.is_not_found() => return Ok(()),
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        bail!(
            "the app's rollout did not finish within {} s",
            DEADLINE.as_secs()
        )
    }

    /// Stops the load and the processes, removing the scratch directory.
    pub fn finish(self) {
        let Live { cluster, load, .. } = self;
        drop(load);
        if let Some(c) = cluster {
            c.finish();
        }
    }
}

/// The bad canary's plan: 10 %, then three error-rate measurements, none
/// allowed to fail.
fn canary_plan() -> Value {
    json!({
        "steps": [
            {"set_weight": {"weight": 10}},
            {"analysis": {
                "checks": [{"metric": "error_rate", "comparator": "<=", "threshold": 0.01}],
                "interval_ms": 1000,
                "count": 3,
                "failure_limit": 0,
            }},
            {"set_weight": {"weight": 100}},
        ],
        "timeout_ms": 120_000,
    })
}

/// Allocates `bytes` of real blocks for a new file at `path`
/// (posix_fallocate: the data directory's size counts allocated blocks).
fn allocate(path: &std::path::Path, bytes: u64) -> Result<()> {
    use std::os::fd::AsRawFd;
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    // SAFETY: posix_fallocate takes a file descriptor we hold open for the
    // call and two integers; it touches no memory of ours.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, bytes as libc::off_t) };
    if rc != 0 {
        let _ = std::fs::remove_file(path);
        bail!(
            "allocating {bytes} bytes for {}: {}",
            path.display(),
            std::io::Error::from_raw_os_error(rc)
        );
    }
    Ok(())
}

/// Creates the app unless it exists.
async fn ensure_app(client: &Client, tenant: &str, app: &str, route: &str) -> Result<()> {
    if client
        .get::<IgnoredAny>(&format!("/tenants/{tenant}/apps/{app}"))
        .await
        .is_ok()
    {
        return Ok(());
    }
    client
        .post::<_, IgnoredAny>(
            &format!("/tenants/{tenant}/apps"),
            &json!({"name": app, "route": route}),
        )
        .await
        .with_context(|| format!("creating the app {tenant}/{app}"))?;
    Ok(())
}

/// Deploys `version` with `replicas` in the default region.
async fn deploy(client: &Client, app: &str, version: u64, replicas: usize) -> Result<()> {
    client
        .put::<_, IgnoredAny>(
            &format!("{app}/deployment"),
            &json!({"version": version, "regions": {REGION: replicas}}),
        )
        .await
        .with_context(|| format!("deploying version {version} of {app}"))?;
    Ok(())
}
