//! Every criterion `dwcp certify` measures: id, category, threshold, why,
//! remediation and the controls it gives evidence for. `dwcp certify
//! list` prints this table (docs/certify.md is made from it).

use certify::{Category, Criterion, Direction, Threshold};

/// One row of the catalog.
pub struct Def {
    pub id: &'static str,
    pub category: Category,
    pub description: &'static str,
    pub direction: Direction,
    pub limit: f64,
    pub warn: Option<f64>,
    pub unit: &'static str,
    pub remediation: &'static str,
    pub controls: &'static [&'static str],
    /// Measured by `--quick` too (the others take minutes or a scratch
    /// cluster's processes).
    pub quick: bool,
}

impl Def {
    pub fn criterion(&self) -> Criterion {
        Criterion {
            id: self.id.into(),
            category: self.category,
            description: self.description.into(),
            threshold: Threshold {
                direction: self.direction,
                limit: self.limit,
                warn: self.warn,
                unit: self.unit.into(),
            },
            remediation: self.remediation.into(),
            controls: self.controls.iter().map(|c| (*c).to_string()).collect(),
        }
    }
}

use Category::{Compliance, Operations, Performance, Reliability, Scalability, Security};
use Direction::{AtLeast, AtMost};

// A catalog row: each argument is one of its columns.
#[allow(clippy::too_many_arguments)]
const fn def(
    id: &'static str,
    category: Category,
    description: &'static str,
    direction: Direction,
    limit: f64,
    unit: &'static str,
    remediation: &'static str,
    controls: &'static [&'static str],
) -> Def {
    Def {
        id,
        category,
        description,
        direction,
        limit,
        warn: None,
        unit,
        remediation,
        controls,
        quick: true,
    }
}

const fn slow(mut d: Def) -> Def {
    d.quick = false;
    d
}

const fn warn(mut d: Def, at: f64) -> Def {
    d.warn = Some(at);
    d
}

const AVAILABILITY: &[&str] = &["SOC2 A1.1", "ISO A.8.6"];
const ACCESS: &[&str] = &["SOC2 CC6.1", "ISO A.8.5", "ISO A.5.15"];
const CRYPTO: &[&str] = &["SOC2 CC6.7", "ISO A.8.24"];
const RECOVERY: &[&str] = &["SOC2 A1.2", "SOC2 A1.3", "ISO A.8.13", "ISO A.5.30"];
const MONITORING: &[&str] = &["SOC2 CC7.2", "ISO A.8.16"];
const INCIDENT: &[&str] = &["SOC2 CC7.3", "SOC2 CC7.4", "ISO A.5.24", "ISO A.5.26"];
const LOGGING: &[&str] = &["SOC2 CC7.2", "ISO A.8.15"];
const CHANGE: &[&str] = &["SOC2 CC8.1", "ISO A.8.32"];
const VULN: &[&str] = &["SOC2 CC6.8", "ISO A.8.7"];
const NETWORK: &[&str] = &["SOC2 CC6.6", "ISO A.8.20", "ISO A.8.21"];
const CAPACITY: &[&str] = &["SOC2 A1.1", "ISO A.8.6"];
const CLOCKS: &[&str] = &["ISO A.8.17"];

/// The catalog, in report order.
pub const CATALOG: &[Def] = &[
    // Performance: the API, the log, the gateway.
    warn(
        def(
            "performance.commit.p50",
            Performance,
            "Commit latency p50: PUT /api/v1/registers/{key} acknowledged (a Raft commit), one client",
            AtMost,
            50.0,
            "ms",
            "Put the nodes' data directories on disks with fast fsync; keep voters within a few ms of each other.",
            AVAILABILITY,
        ),
        20.0,
    ),
    warn(
        def(
            "performance.commit.p99",
            Performance,
            "Commit latency p99, one client",
            AtMost,
            200.0,
            "ms",
            "Put the data directories on disks with fast fsync; look for a slow or lagging voter (dwcp cluster status shows lag).",
            AVAILABILITY,
        ),
        100.0,
    ),
    def(
        "performance.read.p50",
        Performance,
        "Linearizable read latency p50: GET /api/v1/registers/{key} (ReadIndex)",
        AtMost,
        50.0,
        "ms",
        "Reads confirm leadership with a heartbeat round: keep voters close.",
        AVAILABILITY,
    ),
    def(
        "performance.read.p99",
        Performance,
        "Linearizable read latency p99",
        AtMost,
        200.0,
        "ms",
        "Reads confirm leadership with a heartbeat round: keep voters close and unloaded; look for a slow voter (dwcp cluster status).",
        AVAILABILITY,
    ),
    def(
        "performance.api.list_p99",
        Performance,
        "GET /api/v1/apps latency p99, one client",
        AtMost,
        200.0,
        "ms",
        "A large state makes lists slow: delete unused apps and versions.",
        AVAILABILITY,
    ),
    warn(
        def(
            "performance.commit.throughput",
            Performance,
            "Writes acknowledged per second, 16 concurrent clients",
            AtLeast,
            100.0,
            "writes/s",
            "Faster disks; fewer, larger writes.",
            CAPACITY,
        ),
        300.0,
    ),
    def(
        "performance.gateway.p50",
        Performance,
        "Gateway request latency p50: GET /hello (examples/wagi/hello.wat), one keep-alive client",
        AtMost,
        50.0,
        "ms",
        "Check the node's load (dwcp nodes); mark the version warm.",
        AVAILABILITY,
    ),
    def(
        "performance.gateway.p99",
        Performance,
        "Gateway request latency p99",
        AtMost,
        200.0,
        "ms",
        "Check the node's load (dwcp nodes) and the version's timeouts; mark the version warm so no request waits for a cold start.",
        AVAILABILITY,
    ),
    warn(
        def(
            "performance.gateway.rate",
            Performance,
            "Gateway requests per second, 8 concurrent keep-alive clients",
            AtLeast,
            100.0,
            "req/s",
            "Add nodes; mark hot versions warm.",
            CAPACITY,
        ),
        500.0,
    ),
    def(
        "performance.gateway.vs_hyper",
        Performance,
        "Gateway rate as a share of a plain hyper server answering the same text, same load, same run",
        AtLeast,
        0.05,
        "ratio",
        "A low share means the sandbox path dominates: profile with dwcp bench gateway.",
        CAPACITY,
    ),
    def(
        "performance.upload.rate",
        Performance,
        "Artifact upload rate: POST /api/v1/blobs of a 4 MiB module, stored on a majority",
        AtLeast,
        2.0,
        "MiB/s",
        "Check the network between nodes and their disks.",
        CAPACITY,
    ),
    def(
        "performance.deploy.to_serving",
        Performance,
        "A new app deployed (upload, version, deployment) until the gateway serves it",
        AtMost,
        30000.0,
        "ms",
        "Check the scheduler and the agents (dwcp nodes, the node logs).",
        CHANGE,
    ),
    warn(
        def(
            "performance.sandbox.cold_start_p50",
            Performance,
            "Cold start p50: a fresh sandbox for each request to a cold app through the gateway, as the nodes' dwcp_sandbox_start_seconds measures it (asking the version's cold pool to the call into the guest)",
            AtMost,
            250.0,
            "µs",
            "Starts should take microseconds: check the node's load (dwcp nodes) and that it runs a release build; profile with dwcp bench startup.",
            AVAILABILITY,
        ),
        2.0,
    ),
    warn(
        def(
            "performance.sandbox.cold_start_p99",
            Performance,
            "Cold start p99 (dwcp_sandbox_start_seconds, a cold app's requests through the gateway)",
            AtMost,
            1000.0,
            "µs",
            "A slow tail of fresh starts: check the node's load and memory (dwcp nodes); mark latency-critical versions warm (dwcp deploy --warm).",
            AVAILABILITY,
        ),
        10.0,
    ),
    warn(
        def(
            "performance.sandbox.warm_p99",
            Performance,
            "Warm start p99: a warm app's requests through the gateway, served by its pool of kept-alive sandboxes, arrival to answer at the node (dwcp_request_duration_seconds)",
            AtMost,
            50.0,
            "ms",
            "Warm answers should take a millisecond: check the node's load (dwcp nodes) and the version's max concurrency.",
            AVAILABILITY,
        ),
        1.0,
    ),
    slow(def(
        "performance.benchmarks.goals",
        Performance,
        "Goals missed by the benchmarks' reports (each judged from its JSON against the goal docs/benchmarks.md states): the runs this certification makes (scheduler, density, planet simulation) and any given with --bench-report",
        AtMost,
        0.0,
        "goals",
        "Read the missed goals in the detail and the benchmark's section of docs/benchmarks.md; re-run that benchmark in a release build on a quiet machine before acting.",
        CAPACITY,
    )),
    // Security: the API's doors, the peer port, secrets, guests.
    def(
        "security.routes.no_credential",
        Security,
        "Every route of the OpenAPI document except /health, /openapi.json and POST /session refuses a request with no credential (401)",
        AtMost,
        0.0,
        "routes",
        "A route answered without a credential: fix its entry in the router's table before going live.",
        ACCESS,
    ),
    def(
        "security.routes.forged_token",
        Security,
        "Routes that accept a random bearer token (of every GET route)",
        AtMost,
        0.0,
        "routes",
        "Tokens are checked by their sha256 against the store: a route accepting a forged one is a bug.",
        ACCESS,
    ),
    def(
        "security.routes.viewer_writes",
        Security,
        "Every changing route (POST, PUT, DELETE) refuses a viewer token (403)",
        AtMost,
        0.0,
        "routes",
        "Fix `permit` in crates/ops/src/api/auth.rs.",
        ACCESS,
    ),
    def(
        "security.routes.operator_admin_only",
        Security,
        "Admin-only routes (users, backups, artifact bytes) refuse an operator token",
        AtMost,
        0.0,
        "routes",
        "Fix `permit` in crates/ops/src/api/auth.rs.",
        ACCESS,
    ),
    def(
        "security.tokens.not_shown",
        Security,
        "GET /api/v1/tokens shows no token's secret",
        AtMost,
        0.0,
        "secrets",
        "The store keeps only sha256 of tokens: a listing showing one is a bug.",
        ACCESS,
    ),
    def(
        "security.login.rate_limited",
        Security,
        "Failed logins from one address are limited: wrong passwords before a 429",
        AtMost,
        20.0,
        "attempts",
        "Keep the login limiter on (crates/ops/src/api/login_limit.rs).",
        ACCESS,
    ),
    def(
        "security.peer.tls12_refused",
        Security,
        "The peer port refuses a TLS 1.2 handshake (TLS 1.3 only)",
        AtMost,
        0.0,
        "accepted",
        "The peer port must offer TLS 1.3 only (cluster::tls).",
        CRYPTO,
    ),
    def(
        "security.peer.stranger_refused",
        Security,
        "The peer port refuses Raft to a client whose certificate a stranger's CA issued",
        AtMost,
        0.0,
        "accepted",
        "Mutual TLS: only the cluster's CA may be trusted for client certificates.",
        NETWORK,
    ),
    def(
        "security.peer.anonymous_refused",
        Security,
        "The peer port refuses Raft to a client with no certificate",
        AtMost,
        0.0,
        "accepted",
        "Mutual TLS: the peer port must require a client certificate the cluster's CA issued.",
        NETWORK,
    ),
    slow(def(
        "security.data_dir.plaintext_tokens",
        Security,
        "Files in the nodes' data directories holding the admin token in plain text (a scan of every byte)",
        AtMost,
        0.0,
        "files",
        "Keep only hashes of tokens at rest; move any token file out of the data directory.",
        CRYPTO,
    )),
    slow(def(
        "security.data_dir.modes",
        Security,
        "Files or directories in the data directories readable by others than their owner",
        AtMost,
        0.0,
        "files",
        "chmod -R go-rwx the data directory.",
        CRYPTO,
    )),
    def(
        "security.artifact.garbage_refused",
        Security,
        "An upload that is not WebAssembly is refused (400), nothing stored",
        AtMost,
        0.0,
        "accepted",
        "Keep the node's artifact check on (dwcp up does).",
        VULN,
    ),
    def(
        "security.guest.loop_contained",
        Security,
        "A guest that loops forever (examples/hostile/loop.wat) is stopped, answered with an error, and the gateway keeps serving",
        AtMost,
        0.0,
        "escapes",
        "Keep the sandbox's deadline (the version's timeout) and epoch interruption on.",
        VULN,
    ),
    def(
        "security.guest.memory_contained",
        Security,
        "A guest that grows memory without end (examples/hostile/memory-bomb.wat) is stopped at its limit and the gateway keeps serving",
        AtMost,
        0.0,
        "escapes",
        "Keep the version's memory limit.",
        VULN,
    ),
    def(
        "security.gateway.strips_credentials",
        Security,
        "The gateway strips DWCP credentials (Authorization, cookies) from requests it hands a guest",
        AtMost,
        0.0,
        "leaks",
        "Strip DWCP's credentials at the gateway (issue 16).",
        ACCESS,
    ),
    def(
        "security.webhooks.restricted",
        Security,
        "Notification targets on loopback, link-local (cloud metadata) and private addresses are refused",
        AtMost,
        0.0,
        "accepted",
        "Refuse internal webhook targets (issue 16: webhook SSRF).",
        NETWORK,
    ),
    def(
        "security.backup.sealed",
        Security,
        "A backup file holds no register value in plain text",
        AtMost,
        0.0,
        "leaks",
        "Backups must be sealed (dwcp backup).",
        CRYPTO,
    ),
    // Reliability.
    def(
        "reliability.quorum.voters",
        Reliability,
        "Voters in the cluster (3 tolerate one failure)",
        AtLeast,
        3.0,
        "voters",
        "Join more nodes: dwcp cluster join-token, dwcp up --join.",
        AVAILABILITY,
    ),
    def(
        "reliability.quorum.leader",
        Reliability,
        "A leader is elected and every member answers, naming it",
        AtLeast,
        1.0,
        "leaders",
        "Check the peer port between nodes.",
        AVAILABILITY,
    ),
    warn(
        def(
            "reliability.quorum.max_lag",
            Reliability,
            "Largest replication lag of a member (entries behind the leader)",
            AtMost,
            1000.0,
            "entries",
            "A lagging member: check its disk and network.",
            AVAILABILITY,
        ),
        100.0,
    ),
    def(
        "reliability.cas.lost_updates",
        Reliability,
        "Lost updates in 50 concurrent compare-and-swap increments from 4 clients on one register",
        AtMost,
        0.0,
        "updates",
        "A lost update means the store is not linearizable: stop and report it.",
        AVAILABILITY,
    ),
    def(
        "reliability.reads.stale",
        Reliability,
        "Stale reads: a write acknowledged by one node, then read at every node",
        AtMost,
        0.0,
        "reads",
        "Reads must go through ReadIndex: report it.",
        AVAILABILITY,
    ),
    slow(def(
        "reliability.failover.leader_killed",
        Reliability,
        "Leader killed (SIGKILL): until the next write is acknowledged",
        AtMost,
        10000.0,
        "ms",
        "Lower the election timeout for close nodes (dwcp up --election-timeout).",
        RECOVERY,
    )),
    slow(def(
        "reliability.failover.writes_lost",
        Reliability,
        "Acknowledged writes missing after the leader was killed",
        AtMost,
        0.0,
        "writes",
        "Acknowledged writes must survive: report it.",
        RECOVERY,
    )),
    slow(def(
        "reliability.cas.under_failover",
        Reliability,
        "Compare-and-swap increments of one register from 2 clients through the other nodes while the leader is killed: updates acknowledged and lost, or applied and never acknowledged nor attempted",
        AtMost,
        0.0,
        "updates",
        "The store is not linearizable under failover: keep the report and the nodes' logs, and report it.",
        RECOVERY,
    )),
    slow(def(
        "reliability.follower.caught_up",
        Reliability,
        "Follower killed, 200 writes, restarted: until it has every entry",
        AtMost,
        60000.0,
        "ms",
        "Check the restarted node's disk and log.",
        RECOVERY,
    )),
    slow(def(
        "reliability.follower.writes_while_down",
        Reliability,
        "Writes refused while one follower of three was down",
        AtMost,
        0.0,
        "writes",
        "Two voters of three are a majority: a refusal is a bug.",
        AVAILABILITY,
    )),
    def(
        "reliability.backup.rto",
        Reliability,
        "A backup taken and restored into a scratch node, until it serves (RTO)",
        AtMost,
        60000.0,
        "ms",
        "See docs/backup.md; faster disks shorten the restore.",
        RECOVERY,
    ),
    def(
        "reliability.backup.mismatches",
        Reliability,
        "Registers and artifacts that differ between the cluster and its restored backup (100 registers written for the drill, and every artifact a version names)",
        AtMost,
        0.0,
        "records",
        "A backup must restore what it holds: report it.",
        RECOVERY,
    ),
    def(
        "reliability.backup.rpo",
        Reliability,
        "The backup's newest write, when the backup was complete (RPO of an on-demand backup)",
        AtMost,
        60000.0,
        "ms",
        "Schedule backups (dwcp up --backup-dir --backup-every).",
        RECOVERY,
    ),
    def(
        "reliability.backup.scheduled",
        Reliability,
        "Nodes taking scheduled backups (GET /api/v1/backups)",
        AtLeast,
        1.0,
        "nodes",
        "Start nodes with --backup-dir, --backup-every and --backup-key-file.",
        RECOVERY,
    ),
    slow(def(
        "reliability.chaos.bad_canary",
        Reliability,
        "A chaos experiment of the autopilot's suite (dwcp chaos run bad-canary) on the scratch cluster under a steady load: a failing canary at 10 %, held 10 s; runs whose objective the cluster did not keep or bring back by itself",
        AtMost,
        0.0,
        "runs",
        "The rollout's analysis did not abort the canary: check the rollout plan's analysis and what the autopilot did (dwcp autopilot log); see docs/chaos.md.",
        RECOVERY,
    )),
    // Scalability.
    slow(def(
        "scalability.scheduler.placements",
        Scalability,
        "Sandboxes placed per second on one core (1,000,000 onto 10,000 nodes; dwcp bench scheduler's code)",
        AtLeast,
        100000.0,
        "placements/s",
        "Profile with dwcp bench scheduler.",
        CAPACITY,
    )),
    def(
        "scalability.api.concurrent_p99",
        Scalability,
        "GET /api/v1/apps p99 with 32 concurrent clients",
        AtMost,
        500.0,
        "ms",
        "Add API nodes behind a balancer.",
        CAPACITY,
    ),
    warn(
        def(
            "scalability.capacity.headroom",
            Scalability,
            "Share of the cluster's sandbox capacity free",
            AtLeast,
            0.2,
            "ratio",
            "Add nodes or raise --sandboxes.",
            CAPACITY,
        ),
        0.4,
    ),
    def(
        "scalability.events.streams",
        Scalability,
        "Concurrent event streams (GET /api/v1/events) one node holds while answering the API",
        AtLeast,
        50.0,
        "streams",
        "Check the node's descriptor limit.",
        CAPACITY,
    ),
    slow(def(
        "scalability.density.live_sandboxes",
        Scalability,
        "Live sandboxes one `dwcp up --profile dense` node holds for keep-alive apps, as it reports them (dwcp bench density --quick: aiming for 20,000)",
        AtLeast,
        20000.0,
        "sandboxes",
        "A dense node stopped short: check vm.max_map_count, the memory limit and the node's log (docs/benchmarks.md, dwcp bench density).",
        CAPACITY,
    )),
    slow(def(
        "scalability.density.vs_wasmtime",
        Scalability,
        "Resident memory per live sandbox of wasmtime laid out like for like over the dense node's (issue 22's goal: 1.5x)",
        AtLeast,
        1.5,
        "ratio",
        "Each sandbox costs more than it should: use --slot-memory as large as the apps' memory, and profile with dwcp bench density.",
        CAPACITY,
    )),
    slow(def(
        "scalability.planet.global_commit",
        Scalability,
        "Planet simulation (dwcp sim planet --quick --regions 20): the global tier's commit p99 over its quorum's modelled round trip",
        AtMost,
        1.2,
        "ratio",
        "The global tier adds more than a round trip to a commit: see docs/planet.md and dwcp sim planet.",
        CAPACITY,
    )),
    slow(def(
        "scalability.planet.region_commit_p99",
        Scalability,
        "Planet simulation: a region's commit p99",
        AtMost,
        10.0,
        "ms",
        "A region's group commits slowly: see docs/planet.md and dwcp sim planet.",
        CAPACITY,
    )),
    slow(def(
        "scalability.planet.crdt_p99",
        Scalability,
        "Planet simulation: gossip's CRDT convergence p99 (an update reaching every member)",
        AtMost,
        1000.0,
        "ms",
        "Gossip converges slowly: see docs/planet.md (anti-entropy interval, push fan-out).",
        CAPACITY,
    )),
    slow(def(
        "scalability.planet.region_failover_p99",
        Scalability,
        "Planet simulation: a lost region's failover p99 (gossip's detection, the global tier's commit, its deployments re-placed)",
        AtMost,
        5000.0,
        "ms",
        "Region failover is slower than 5 s, mostly gossip's detection: see docs/planet.md (issue 21: a second detection signal).",
        RECOVERY,
    )),
    // Operations.
    def(
        "operations.health",
        Operations,
        "Members whose /api/v1/health does not answer 200 (of every member the cluster lists)",
        AtMost,
        0.0,
        "nodes",
        "Start the node (or remove it: dwcp cluster remove); check its log.",
        MONITORING,
    ),
    def(
        "operations.metrics",
        Operations,
        "Metric families served on /metrics",
        AtLeast,
        10.0,
        "families",
        "Keep /metrics on; scrape it.",
        MONITORING,
    ),
    def(
        "operations.openapi",
        Operations,
        "Paths in the OpenAPI document",
        AtLeast,
        40.0,
        "paths",
        "Serve /api/v1/openapi.json.",
        CHANGE,
    ),
    def(
        "operations.dashboard",
        Operations,
        "The dashboard's page is served (HTML)",
        AtLeast,
        1.0,
        "pages",
        "Serve the dashboard (dwcp up does).",
        MONITORING,
    ),
    def(
        "operations.nodes.reporting",
        Operations,
        "Nodes without a report from their agent",
        AtMost,
        0.0,
        "nodes",
        "A silent node: check its agent and its log.",
        MONITORING,
    ),
    def(
        "operations.slos.every_app",
        Operations,
        "Apps with no SLO",
        AtMost,
        0.0,
        "apps",
        "dwcp slo put APP availability --target 0.999 …",
        MONITORING,
    ),
    def(
        "operations.alerts.routed",
        Operations,
        "SLOs whose alerts go nowhere (no notify target)",
        AtMost,
        0.0,
        "slos",
        "Add --alertmanager, --pagerduty or --slack to each SLO.",
        INCIDENT,
    ),
    def(
        "operations.alerts.runbooks",
        Operations,
        "Alerts no runbook answers (of the alerts the SLOs can fire)",
        AtMost,
        0.0,
        "alerts",
        "dwcp runbook put runbooks/*.md (front matter names the alerts).",
        INCIDENT,
    ),
    warn(
        def(
            "operations.incidents.open",
            Operations,
            "Incidents open and unacknowledged",
            AtMost,
            5.0,
            "incidents",
            "Acknowledge or resolve them (dwcp incident).",
            INCIDENT,
        ),
        0.0,
    ),
    def(
        "operations.clocks.skew",
        Operations,
        "Largest difference between a node's clock (its API's Date) and this machine's",
        AtMost,
        2000.0,
        "ms",
        "Run NTP (chrony) on every node.",
        CLOCKS,
    ),
    // Compliance evidence.
    def(
        "compliance.audit.records_changes",
        Compliance,
        "Changes made by this run missing from the audit log (who, what, when)",
        AtMost,
        0.0,
        "changes",
        "Every change must be audited: report it.",
        LOGGING,
    ),
    def(
        "compliance.audit.ordered",
        Compliance,
        "Audit entries out of revision order or without an author",
        AtMost,
        0.0,
        "entries",
        "The audit log must be intact: report it.",
        LOGGING,
    ),
    def(
        "compliance.access.admins",
        Compliance,
        "Admin credentials (tokens and users with the admin role)",
        AtMost,
        5.0,
        "admins",
        "Review who holds admin; delete unused tokens (dwcp token delete).",
        &["SOC2 CC6.2", "SOC2 CC6.3", "ISO A.5.18"],
    ),
    def(
        "compliance.access.mfa",
        Compliance,
        "Users who can log in without a confirmed TOTP",
        AtMost,
        0.0,
        "users",
        "dwcp user totp NAME for every user.",
        &["SOC2 CC6.1", "ISO A.8.5"],
    ),
    def(
        "compliance.change.audited_deploy",
        Compliance,
        "This run's deploy missing from the audit log",
        AtMost,
        0.0,
        "changes",
        "Deploys must be audited: report it.",
        CHANGE,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_has_fifty_criteria_with_unique_ids_in_every_category() {
        assert!(CATALOG.len() >= 50, "{}", CATALOG.len());
        let mut ids: Vec<&str> = CATALOG.iter().map(|d| d.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CATALOG.len(), "duplicate ids");
        for c in Category::ALL {
            assert!(CATALOG.iter().any(|d| d.category == c), "{c:?}");
        }
        for d in CATALOG {
            assert!(d.id.starts_with(d.category.as_str()), "{}", d.id);
            assert!(
                !d.controls.is_empty() && !d.remediation.is_empty(),
                "{}",
                d.id
            );
        }
    }

    /// The judging half of every criterion: a value just past its limit
    /// fails, naming the criterion's own remediation; an unmeasured one
    /// fails, saying why; the limit itself holds. (Which test makes each
    /// criterion's measurement itself fail: docs/certify.md.)
    #[test]
    fn every_criterion_fails_past_its_threshold_with_its_remediation() {
        use certify::{Measurement, Status, judge};
        for d in CATALOG {
            let c = d.criterion();
            // Past the limit by a step that matters at its scale: one more
            // of a count, 10 % of a rate or a latency.
            let step = if d.limit == 0.0 {
                1.0
            } else {
                (d.limit.abs() * 0.1).max(f64::EPSILON)
            };
            let past = match d.direction {
                AtMost => d.limit + step,
                AtLeast => d.limit - step,
            };
            let v = judge(&c, &Measurement::of(past, "past"), &[], 0);
            assert_eq!(v.status, Status::Fail, "{} at {past}", d.id);
            assert_eq!(v.remediation, d.remediation, "{}", d.id);
            assert!(
                v.remediation.len() > 10,
                "{}: a remediation to act on",
                d.id
            );
            let v = judge(&c, &Measurement::unmeasured("the probe failed"), &[], 0);
            assert_eq!(
                (v.status, v.detail.as_str()),
                (Status::Fail, "the probe failed")
            );
            let at = judge(&c, &Measurement::of(d.limit, "at"), &[], 0).status;
            assert!(
                matches!(at, Status::Pass | Status::Warn),
                "{}: {at:?}",
                d.id
            );
        }
    }
}
