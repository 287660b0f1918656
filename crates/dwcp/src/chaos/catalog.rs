//! The named experiments: what each breaks, what it expects, how far the
//! harm may reach and when it is stopped. Pure data; `live.rs` carries the
//! faults out on real processes and `sim.rs` in the simulator.

use serde::Serialize;

/// Which node a fault picks, judged when it is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The store's leader.
    Leader,
    /// A member that does not lead (the seed picks which).
    Follower,
}

/// What an experiment breaks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Fault {
    /// Nothing: the control run (false detections and actions).
    None,
    /// SIGKILL of the node's process.
    Kill { role: Role },
    /// SIGSTOP of the node's process (it holds its sockets, answers nothing).
    Stop { role: Role },
    /// The node killed, started again, killed again…, every few seconds.
    CrashLoop { role: Role },
    /// Every node killed and started again in turn, each caught up first.
    RollingRestart,
    /// Both followers killed: the store loses its majority.
    QuorumLoss,
    /// Every node killed at once (a power cut), then started again.
    PowerLoss,
    /// The node cut off from every peer, both ways (drop rules).
    Partition { role: Role },
    /// The leader cannot reach one follower; the follower still reaches it.
    OneWayPartition,
    /// A share of every peer request lost, on every link.
    PacketLoss { share: f64 },
    /// The node's gateway holds every request this long (test faults).
    SlowNode { role: Role, delay_ms: u64 },
    /// Every gateway's delay grows step by step up to a ceiling.
    LatencyCreep {
        step_ms: u64,
        every_ms: u64,
        max_ms: u64,
    },
    /// The node's data directory filled to this share of its disk limit.
    DiskFill { role: Role, share: f64 },
    /// The node holds this much written memory (test faults).
    MemoryPressure { role: Role, bytes: u64 },
    /// A version that fails every request deployed outright.
    BadVersion,
    /// A version that fails every request rolled out as a canary.
    BadCanary,
    /// Another tenant's app flooded by many clients at once.
    TenantFlood { clients: u32 },
    /// The steady app itself flooded past its concurrency limit.
    PoolFull { clients: u32 },
    /// The app's artifact damaged on the node's disk, the node restarted.
    CorruptArtifact { role: Role },
    /// Many idle TCP connections held open to the node's gateway.
    ConnectionFlood { role: Role, connections: u32 },
    /// A client writing to the store as fast as it can.
    WriteFlood { clients: u32 },
    /// The node's wall clock jumped (no way to do it here; see `unsupported`).
    ClockJump,
    /// The node's disk slowed (no way to do it here).
    SlowDisk,
    /// A whole region lost (the simulator; a planet of processes is
    /// `dwcp bench failover`).
    RegionLost,
}

/// How far an experiment's harm may reach before it is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Radius {
    /// Only requests to the target node's gateway may fail.
    TargetNode,
    /// Requests to the two target nodes may fail.
    TwoNodes,
    /// Any request may fail (the whole cluster or the app is the target);
    /// the stop condition bounds how long.
    Cluster,
}

/// When an experiment is stopped early and its fault taken back.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct StopCondition {
    /// Requests to gateways outside the radius must succeed at least this
    /// share, over any `window_ms`...
    pub min_success_outside: f64,
    pub window_ms: u64,
    /// ... and the whole load may stay below it at most this long.
    pub max_outage_ms: u64,
}

impl StopCondition {
    /// The default: nine in ten outside the radius over 5 s, and no outage
    /// longer than 45 s.
    pub const DEFAULT: StopCondition = StopCondition {
        min_success_outside: 0.9,
        window_ms: 5_000,
        max_outage_ms: 45_000,
    };
}

/// What the simulator can do of a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SimFault {
    /// The node off the simulated network (it neither sends nor
    /// receives): a kill, a stop and a full partition look alike there.
    Node(Role),
    /// Two followers off the network.
    TwoFollowers,
    /// A region's whole group off the network.
    Region,
}

/// One named experiment.
#[derive(Clone, Debug, Serialize)]
pub struct Experiment {
    pub name: &'static str,
    pub fault: Fault,
    /// What should hold while the fault is in force.
    pub hypothesis: &'static str,
    pub radius: Radius,
    pub stop: StopCondition,
    /// A critical fault: the autopilot should ask a person before acting.
    pub critical: bool,
    /// The simulator's model of the fault, if it has one.
    pub sim: Option<SimFault>,
    /// Why it cannot run on real processes here, if it cannot.
    pub unsupported: Option<&'static str>,
}

impl Experiment {
    /// Whether it runs on real processes here.
    pub fn supported(&self) -> bool {
        self.unsupported.is_none()
    }

    /// Whether it needs the processes of a scratch cluster (signals, data
    /// directories, drop rules), not only an API.
    pub fn needs_processes(&self) -> bool {
        !matches!(
            self.fault,
            Fault::None
                | Fault::BadVersion
                | Fault::BadCanary
                | Fault::TenantFlood { .. }
                | Fault::PoolFull { .. }
                | Fault::WriteFlood { .. }
        )
    }
}

const fn exp(
    name: &'static str,
    fault: Fault,
    hypothesis: &'static str,
    radius: Radius,
    sim: Option<SimFault>,
) -> Experiment {
    Experiment {
        name,
        fault,
        hypothesis,
        radius,
        stop: StopCondition::DEFAULT,
        critical: false,
        sim,
        unsupported: None,
    }
}

/// Every experiment, in the order `dwcp chaos list` shows them.
pub fn all() -> Vec<Experiment> {
    use Fault::*;
    use Radius::*;
    use Role::*;
    let mut list = vec![
        exp(
            "steady-state",
            None,
            "with no fault the load keeps its objective and the autopilot neither detects nor does anything",
            TargetNode,
            Option::None,
        ),
        exp(
            "kill-leader",
            Kill { role: Leader },
            "a new leader is elected and clients routed by the cluster's health view are back within the objective once the dead node is judged down",
            TargetNode,
            Some(SimFault::Node(Leader)),
        ),
        exp(
            "kill-follower",
            Kill { role: Follower },
            "the leader keeps committing and clients are back within the objective once the dead node is judged down",
            TargetNode,
            Some(SimFault::Node(Follower)),
        ),
        exp(
            "stop-leader",
            Stop { role: Leader },
            "a frozen leader is replaced as a dead one is; its frozen gateway is judged down and avoided",
            TargetNode,
            Some(SimFault::Node(Leader)),
        ),
        exp(
            "stop-follower",
            Stop { role: Follower },
            "a frozen follower is judged down and avoided; the others serve on",
            TargetNode,
            Some(SimFault::Node(Follower)),
        ),
        exp(
            "crash-loop-follower",
            CrashLoop { role: Follower },
            "a follower that keeps crashing and restarting costs only its own requests",
            TargetNode,
            Option::None,
        ),
        exp(
            "rolling-restart",
            RollingRestart,
            "restarting every node in turn (each caught up before the next) keeps the app served",
            Cluster,
            Option::None,
        ),
        exp(
            "quorum-loss",
            QuorumLoss,
            "with two of three voters gone, writes stop but the last node's gateway keeps serving the app from its local state",
            TwoNodes,
            Some(SimFault::TwoFollowers),
        ),
        exp(
            "power-loss",
            PowerLoss,
            "every process killed at once comes back with its store and serves again after the restart",
            Cluster,
            Option::None,
        ),
        exp(
            "partition-leader",
            Partition { role: Leader },
            "an isolated leader is deposed by the majority; the majority's gateways keep serving",
            TargetNode,
            Some(SimFault::Node(Leader)),
        ),
        exp(
            "partition-follower",
            Partition { role: Follower },
            "an isolated follower costs nothing outside it; its gateway still serves from its local state",
            TargetNode,
            Some(SimFault::Node(Follower)),
        ),
        exp(
            "one-way-partition",
            OneWayPartition,
            "a follower that hears nothing from the leader (but reaches it) does not keep the cluster leaderless",
            Cluster,
            Option::None,
        ),
        exp(
            "packet-loss",
            PacketLoss { share: 0.3 },
            "with 30 % of peer requests lost on every link the store keeps a leader and the app keeps its objective",
            Cluster,
            Option::None,
        ),
        exp(
            "slow-node",
            SlowNode {
                role: Follower,
                delay_ms: 1_500,
            },
            "a node whose gateway answers 1.5 s late is noticed and its traffic moved",
            TargetNode,
            Option::None,
        ),
        exp(
            "latency-creep",
            LatencyCreep {
                step_ms: 150,
                every_ms: 2_000,
                max_ms: 1_500,
            },
            "latency that creeps up on every gateway is detected before it breaks the objective",
            Cluster,
            Option::None,
        ),
        exp(
            "disk-fill",
            DiskFill {
                role: Follower,
                share: 0.98,
            },
            "a node whose data directory reaches 98 % of its disk limit keeps serving, and the autopilot sees it",
            TargetNode,
            Option::None,
        ),
        exp(
            "memory-pressure",
            MemoryPressure {
                role: Follower,
                bytes: 900 << 20,
            },
            "a node holding 900 MiB of its 1 GiB memory limit keeps serving, and the autopilot sees it",
            TargetNode,
            Option::None,
        ),
        exp(
            "bad-version",
            BadVersion,
            "a version that fails every request, deployed outright, is taken back",
            Cluster,
            Option::None,
        ),
        exp(
            "bad-canary",
            BadCanary,
            "a failing canary at 10 % is aborted by its rollout's analysis and the app returns to stable",
            Cluster,
            Option::None,
        ),
        exp(
            "tenant-flood",
            TenantFlood { clients: 32 },
            "another tenant flooding its own app does not break this app's objective",
            Cluster,
            Option::None,
        ),
        exp(
            "sandbox-pool-full",
            PoolFull { clients: 64 },
            "a spike past the app's concurrency limit is shed with quick 503s and the app recovers when it ends",
            Cluster,
            Option::None,
        ),
        exp(
            "corrupt-artifact",
            CorruptArtifact { role: Follower },
            "a node whose copy of the app's artifact is damaged refuses it (digest check) and serves again",
            TargetNode,
            Option::None,
        ),
        exp(
            "connection-flood",
            ConnectionFlood {
                role: Follower,
                connections: 2_000,
            },
            "2,000 idle connections held to one gateway do not stop it serving (connection limits)",
            TargetNode,
            Option::None,
        ),
        exp(
            "write-flood",
            WriteFlood { clients: 16 },
            "a client writing to the store as fast as it can does not break the app's objective",
            Cluster,
            Option::None,
        ),
        Experiment {
            unsupported: Some(
                "the nodes read the system's wall clock: moving it needs CAP_SYS_TIME on the shared machine or libfaketime (not installed), and `dwcp up --manual-clock` replaces the timed rounds every other experiment relies on",
            ),
            ..exp(
                "clock-jump",
                ClockJump,
                "a node whose clock jumps an hour ahead keeps its leases and certificates valid",
                TargetNode,
                Option::None,
            )
        },
        Experiment {
            unsupported: Some(
                "slowing a file system needs dm-delay or a FUSE layer under the data directory (kernel modules, root on a shared machine); the slow node's request delay is the nearest fault here",
            ),
            ..exp(
                "slow-disk",
                SlowDisk,
                "a node whose fsyncs take 100 ms keeps the store's commits within a second",
                TargetNode,
                Option::None,
            )
        },
        Experiment {
            critical: true,
            unsupported: Some(
                "a region needs a planet of `dwcp up --topology` processes; `dwcp bench failover` measures that one on processes, and `dwcp chaos run region-lost --sim` runs it in the simulator",
            ),
            ..exp(
                "region-lost",
                RegionLost,
                "a lost region's group is replaced in the simulator's planet and writes commit again",
                Cluster,
                Some(SimFault::Region),
            )
        },
    ];
    for e in &mut list {
        // Losing the majority and losing power are what a person must hear of.
        if matches!(e.fault, QuorumLoss | PowerLoss) {
            e.critical = true;
        }
    }
    list
}

/// The experiments named, in the order given; `all` is every one that runs
/// here. An unknown name is an error listing the known ones.
pub fn select(names: &[String]) -> Result<Vec<Experiment>, String> {
    let every = all();
    let mut out = Vec::new();
    for name in names {
        if name == "all" {
            out.extend(every.iter().filter(|e| e.supported()).cloned());
            continue;
        }
        match every.iter().find(|e| e.name == name) {
            Some(e) => out.push(e.clone()),
            None => {
                let known: Vec<&str> = every.iter().map(|e| e.name).collect();
                return Err(format!(
                    "unknown experiment `{name}`; known: all, {}",
                    known.join(", ")
                ));
            }
        }
    }
    if out.is_empty() {
        return Err("name at least one experiment (or `all`); `dwcp chaos list` shows them".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_least_twenty_kinds_run_here_and_names_are_unique() {
        let every = all();
        let faults = every
            .iter()
            .filter(|e| e.supported() && e.fault != Fault::None)
            .count();
        assert!(faults >= 20, "{faults} supported fault experiments");
        let mut names: Vec<&str> = every.iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), every.len());
        for e in &every {
            assert!(e.stop.min_success_outside > 0.0 && e.stop.min_success_outside <= 1.0);
            assert!(!e.hypothesis.is_empty());
        }
    }

    #[test]
    fn selection_names_the_unknown_and_expands_all() {
        let err = select(&["kill-leader".into(), "nope".into()]).unwrap_err();
        assert!(
            err.contains("`nope`") && err.contains("kill-follower"),
            "{err}"
        );
        let every = select(&["all".into()]).unwrap();
        assert!(every.iter().all(Experiment::supported));
        assert!(select(&[]).is_err());
    }
}
