//! The gossip members (`planet::summary::Gossip`: foca's SWIM and the CRDT
//! summaries) run two ways on the same members, links and seed, so that
//! the two can be compared:
//!
//! - [`Engine::Driver`]: the summary's own in-memory [`Driver`], one event
//!   queue in virtual time — what the planet scenario uses;
//! - [`Engine::Turmoil`]: each member a turmoil host with its own paused
//!   tokio runtime, sending its packets over `turmoil::net::UdpSocket` to
//!   the address in its peers' identities, its timers on the host's tokio
//!   clock, and each pair's one-way delay set with `Sim::set_link_latency`.
//!
//! Why both exist: the issue asked for the simulation to run on turmoil,
//! and the simulator was built without it; this module is the measurement
//! that says what turmoil costs at planet scale ([`GossipRun::wall`] per
//! virtual second, and [`idle_steps`] for its step loop with nothing to
//! do). Both engines hand the members exactly the same inputs: the same
//! identities, member seeds (derived as the driver derives them), join
//! order (everyone announces to member 0), link delays (the one-way half
//! of the modelled round trip, no jitter, no loss), write schedule and
//! writers.
//!
//! What differs, by construction: turmoil advances time in fixed ticks
//! ([`TICK`]) and delivers a packet at the first tick at or after its due
//! time, so its times are quantized to the tick; the driver delivers each
//! event at its exact virtual time.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant, SystemTime};

use planet::summary::{Driver, Gossip, GossipConfig, Link, NoRegions, Peer, RegionStatus, Stamp};
use planet::summary::{GossipStats, Tick};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use state::Name;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::rng::Rng;

/// The UDP port every member listens on (memberlist's and DWCP's default).
pub const PORT: u16 = 7946;
/// turmoil's step: every host's runtime and the network advance this much
/// per [`turmoil::Sim::step`] (turmoil's default, and the resolution of
/// tokio's timer, so nothing finer would be seen anyway).
pub const TICK: Duration = Duration::from_millis(1);
/// Virtual time between two updates (as in the planet scenario).
pub const UPDATE_GAP: Duration = Duration::from_secs(2);
/// How long an update may take to reach every member.
pub const UPDATE_DEADLINE: Duration = Duration::from_secs(60);
/// How long the members may take to discover each other.
pub const DISCOVERY_DEADLINE: Duration = Duration::from_secs(600);
/// Datagrams a turmoil socket queues before it drops (turmoil's default is
/// 64; a burst of pushes and probes at 360 members can exceed that, and a
/// drop would be turmoil's artefact, not the network's).
const UDP_QUEUE: usize = 1 << 16;
/// Larger than any gossip packet (foca's are at most 1,400 bytes; a summary
/// exchange of 120 regions is a few kilobytes).
const RECV_BUFFER: usize = 1 << 16;

/// Which simulator carries the members' packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// `planet::summary::Driver`: one event queue, exact virtual time.
    Driver,
    /// turmoil: a host and a tokio runtime per member, simulated UDP.
    Turmoil,
}

impl Engine {
    /// The engine's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Driver => "driver",
            Engine::Turmoil => "turmoil",
        }
    }
}

/// Why a run could not be carried out. A run cut short by its wall-time
/// budget is not an error: it comes back with [`GossipRun::completed`]
/// false and the figures it reached.
#[derive(Debug, thiserror::Error)]
pub enum GossipSimError {
    /// Zero members.
    #[error("the scenario needs at least one member")]
    NoMembers,
    /// No regions to put the members in.
    #[error(transparent)]
    NoRegions(#[from] NoRegions),
    /// A region name that is not a valid `Name`.
    #[error("region `{name}`: {reason}")]
    RegionName { name: String, reason: String },
    /// The members did not all learn of each other in time.
    #[error("the members did not discover each other within {0:?} of virtual time")]
    Undiscovered(Duration),
    /// An update did not reach every member in time.
    #[error("update {update} did not reach every member within {deadline:?} of virtual time")]
    NotSpread { update: usize, deadline: Duration },
    /// A writer's own write was not in its summary (a bug in the member).
    #[error("member {0}'s own write is missing from its summary")]
    OwnWriteMissing(usize),
    /// turmoil stopped: a host's software failed.
    #[error("turmoil: {0}")]
    Turmoil(String),
}

/// What one scenario runs on. Member `i` is in region `i % regions.len()`
/// (as in the driver), so `regions.len() × k` members give `k` per region.
#[derive(Clone)]
pub struct GossipScenario {
    /// Region names; indices below refer to this order.
    pub regions: Vec<String>,
    /// Modelled round trip between two regions, ms (symmetric).
    pub rtt_ms: Arc<dyn Fn(usize, usize) -> f64 + Send + Sync>,
    /// Round trip between two members of one region, ms.
    pub intra_ms: f64,
    /// How many members.
    pub members: usize,
    /// Region reports written (each by a member the seed picks) whose
    /// spread is measured, [`UPDATE_GAP`] apart.
    pub updates: usize,
    /// Decides the member seeds, the writers and turmoil's own draws.
    pub seed: u64,
    /// turmoil only: stop once this much wall time has gone by, and report
    /// what was reached (the driver is never cut short).
    pub wall_budget: Option<Duration>,
}

/// What one engine measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GossipRun {
    pub engine: Engine,
    pub members: usize,
    /// Virtual time until every member listed every other one.
    pub discovery: Option<Duration>,
    /// Per update and member: virtual time from the write until the member
    /// held it.
    pub convergence: Vec<Duration>,
    /// Per update: virtual time until every member held it.
    pub all: Vec<Duration>,
    /// Virtual time simulated, from the start to the end of the run.
    pub virtual_time: Duration,
    /// Wall time spent simulating it (setup excluded).
    pub wall: Duration,
    /// Wall time to build the simulation (members, hosts, links).
    pub setup_wall: Duration,
    /// CPU time of the simulating thread over the same span as `wall`, if
    /// the OS tells it ([`thread_cpu`]): unlike wall time, not inflated by
    /// other work on a shared machine.
    pub cpu: Option<Duration>,
    /// Packets the members sent (SWIM and summary).
    pub packets: u64,
    /// Bytes in them.
    pub bytes: u64,
    /// Packets or timers a member refused, plus sends that failed.
    pub refused: u64,
    /// False when the wall-time budget ran out before the last update had
    /// spread; the figures are those reached.
    pub completed: bool,
}

impl GossipRun {
    /// Wall seconds per simulated second, if any virtual time went by.
    pub fn wall_per_virtual_second(&self) -> Option<f64> {
        let v = self.virtual_time.as_secs_f64();
        (v > 0.0).then(|| self.wall.as_secs_f64() / v)
    }

    /// CPU seconds per simulated second, if both are known.
    pub fn cpu_per_virtual_second(&self) -> Option<f64> {
        let v = self.virtual_time.as_secs_f64();
        self.cpu.filter(|_| v > 0.0).map(|c| c.as_secs_f64() / v)
    }
}

/// CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`, to
/// the nanosecond); `None` if the OS refuses. The simulations here run on
/// the calling thread, so differences of this are their CPU cost, which
/// unlike wall time other load on a shared machine does not inflate.
pub fn thread_cpu() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the
    // call, which is all clock_gettime requires.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u32::try_from(ts.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}

/// `end - start` of two [`thread_cpu`] readings.
fn cpu_since(start: Option<Duration>) -> Option<Duration> {
    start.zip(thread_cpu()).map(|(a, b)| b.saturating_sub(a))
}

impl GossipScenario {
    /// Runs the scenario on `engine`.
    pub fn run(&self, engine: Engine) -> Result<GossipRun, GossipSimError> {
        match engine {
            Engine::Driver => self.run_driver(),
            Engine::Turmoil => self.run_turmoil(),
        }
    }

    fn names(&self) -> Result<Vec<Name>, GossipSimError> {
        if self.regions.is_empty() {
            return Err(NoRegions.into());
        }
        self.regions
            .iter()
            .map(|r| {
                Name::new("region", r).map_err(|e| GossipSimError::RegionName {
                    name: r.clone(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    fn config(&self) -> Result<GossipConfig, GossipSimError> {
        let size = u32::try_from(self.members)
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or(GossipSimError::NoMembers)?;
        Ok(GossipConfig::wan(size))
    }

    fn region_of(&self, member: usize) -> usize {
        member % self.regions.len()
    }

    /// The one-way delay between two members: half the modelled round trip
    /// of their regions (the intra-region one within a region).
    fn one_way(&self, a: usize, b: usize) -> Duration {
        let (ra, rb) = (self.region_of(a), self.region_of(b));
        let rtt = if ra == rb {
            self.intra_ms
        } else {
            (self.rtt_ms)(ra.min(rb), ra.max(rb))
        };
        Duration::from_secs_f64(rtt.max(0.0) / 2000.0)
    }

    /// The writers, in order, drawn from the seed.
    fn writers(&self) -> Vec<usize> {
        let mut rng = Rng::new(self.seed ^ 0xc4d7);
        (0..self.updates)
            .map(|_| (rng.next_u64() % self.members as u64) as usize)
            .collect()
    }

    fn run_driver(&self) -> Result<GossipRun, GossipSimError> {
        let names = self.names()?;
        let config = self.config()?;
        let n = self.members;
        let setup = WallInstant::now();
        let mut driver = Driver::new(n, &names, config, Link::delay(Duration::ZERO), self.seed)?;
        for a in 0..n {
            for b in 0..n {
                if a != b {
                    driver.set_link(a, b, Link::delay(self.one_way(a, b)));
                }
            }
        }
        let setup_wall = setup.elapsed();
        let wall = WallInstant::now();
        let cpu = thread_cpu();
        let discovery = driver
            .run_until_discovered(DISCOVERY_DEADLINE)
            .ok_or(GossipSimError::Undiscovered(DISCOVERY_DEADLINE))?;
        let (mut convergence, mut all) = (Vec::new(), Vec::new());
        for (update, writer) in self.writers().into_iter().enumerate() {
            driver.run_until(driver.now() + UPDATE_GAP);
            let stamp = driver
                .with_member(writer, |g, now| {
                    g.report_region(RegionStatus::default(), now);
                    own_stamp(g)
                })
                .ok_or(GossipSimError::OwnWriteMissing(writer))?;
            let region = names[self.region_of(writer)].clone();
            let spread =
                driver.spread(driver.now() + UPDATE_DEADLINE, |g| holds(g, &region, stamp));
            convergence.extend(spread.per_member.iter().flatten().copied());
            all.push(spread.all.ok_or(GossipSimError::NotSpread {
                update,
                deadline: UPDATE_DEADLINE,
            })?);
        }
        let wall = wall.elapsed();
        let cpu = cpu_since(cpu);
        let stats = (0..n).map(|i| driver.member(i).stats());
        let (packets, bytes) = totals(stats);
        Ok(GossipRun {
            engine: Engine::Driver,
            members: n,
            discovery: Some(discovery),
            convergence,
            all,
            virtual_time: driver.now(),
            wall,
            setup_wall,
            cpu,
            packets,
            bytes,
            refused: driver.stats().refused,
            completed: true,
        })
    }

    fn run_turmoil(&self) -> Result<GossipRun, GossipSimError> {
        let names = self.names()?;
        let config = self.config()?;
        let n = self.members;
        let setup = WallInstant::now();
        let mut sim = builder(self.seed).build();
        // The same members as the driver's: member seeds drawn in the same
        // order from the same generator, everyone announcing to member 0.
        let mut seeds = Xoshiro256PlusPlus::seed_from_u64(self.seed);
        let peers: Vec<Peer> = (0..n)
            .map(|i| Peer {
                node: i as u64,
                region: names[self.region_of(i)].clone(),
                addr: SocketAddr::new(address(i), PORT),
                bump: 0,
            })
            .collect();
        let mut hosted = Vec::with_capacity(n);
        for (i, peer) in peers.iter().enumerate() {
            let mut gossip = Gossip::new(peer.clone(), config.clone(), seeds.random::<u64>());
            let mut refused = 0;
            if i > 0 && gossip.announce(peers[0].clone()).is_err() {
                refused += 1;
            }
            let member = Rc::new(Hosted {
                gossip: RefCell::new(gossip),
                wake: Notify::new(),
                refused: Cell::new(refused),
            });
            let software = member.clone();
            sim.host(peer.addr.ip(), move || serve(software.clone()));
            hosted.push(member);
        }
        for a in 0..n {
            for b in a + 1..n {
                sim.set_link_latency(address(a), address(b), self.one_way(a, b));
            }
        }
        let setup_wall = setup.elapsed();

        let mut run = Stepper {
            sim,
            started: WallInstant::now(),
            cpu: thread_cpu(),
            budget: self.wall_budget,
        };
        let outcome = |run: &Stepper,
                       discovery: Option<Duration>,
                       convergence: Vec<Duration>,
                       all: Vec<Duration>,
                       completed: bool| {
            let (packets, bytes) = totals(hosted.iter().map(|h| h.gossip.borrow().stats()));
            GossipRun {
                engine: Engine::Turmoil,
                members: n,
                discovery,
                convergence,
                all,
                virtual_time: run.sim.elapsed(),
                wall: run.started.elapsed(),
                setup_wall,
                cpu: cpu_since(run.cpu),
                packets,
                bytes,
                refused: hosted.iter().map(|h| h.refused.get()).sum(),
                completed,
            }
        };

        let discovered = |hosted: &[Rc<Hosted>]| {
            hosted
                .iter()
                .all(|h| h.gossip.borrow().num_members() == n - 1)
        };
        while !discovered(&hosted) {
            if run.sim.elapsed() > DISCOVERY_DEADLINE {
                return Err(GossipSimError::Undiscovered(DISCOVERY_DEADLINE));
            }
            if !run.step()? {
                return Ok(outcome(&run, None, Vec::new(), Vec::new(), false));
            }
        }
        let discovery = Some(run.sim.elapsed());

        let (mut convergence, mut all) = (Vec::new(), Vec::new());
        for (update, writer) in self.writers().into_iter().enumerate() {
            let until = run.sim.elapsed() + UPDATE_GAP;
            while run.sim.elapsed() < until {
                if !run.step()? {
                    return Ok(outcome(&run, discovery, convergence, all, false));
                }
            }
            let start = run.sim.elapsed();
            let stamp = {
                let mut g = hosted[writer].gossip.borrow_mut();
                g.report_region(RegionStatus::default(), start);
                own_stamp(&g).ok_or(GossipSimError::OwnWriteMissing(writer))?
            };
            // The writer's task sends what the write queued when it next
            // runs (in the next step).
            hosted[writer].wake.notify_one();
            let region = names[self.region_of(writer)].clone();
            let mut when: Vec<Option<Duration>> = hosted
                .iter()
                .map(|h| holds(&h.gossip.borrow(), &region, stamp).then_some(Duration::ZERO))
                .collect();
            let mut waiting: Vec<usize> = (0..n).filter(|&i| when[i].is_none()).collect();
            while !waiting.is_empty() {
                if run.sim.elapsed() > start + UPDATE_DEADLINE {
                    return Err(GossipSimError::NotSpread {
                        update,
                        deadline: UPDATE_DEADLINE,
                    });
                }
                if !run.step()? {
                    return Ok(outcome(&run, discovery, convergence, all, false));
                }
                let now = run.sim.elapsed() - start;
                waiting.retain(|&i| {
                    let got = holds(&hosted[i].gossip.borrow(), &region, stamp);
                    if got {
                        when[i] = Some(now);
                    }
                    !got
                });
            }
            all.push(when.iter().flatten().max().copied().unwrap_or_default());
            convergence.extend(when.into_iter().flatten());
        }
        Ok(outcome(&run, discovery, convergence, all, true))
    }
}

/// A turmoil simulation as both [`GossipScenario`] and [`idle_steps`] build
/// it: [`TICK`] steps, no end (hosts never finish), a fixed epoch, the
/// seed for turmoil's own draws, a deep UDP queue.
fn builder(seed: u64) -> turmoil::Builder {
    let mut b = turmoil::Builder::new();
    b.tick_duration(TICK)
        .simulation_duration(Duration::from_secs(10 * 365 * 24 * 3600))
        .epoch(SystemTime::UNIX_EPOCH)
        .udp_capacity(UDP_QUEUE)
        .rng_seed(seed);
    b
}

/// Steps a turmoil simulation within a wall-time budget.
struct Stepper<'a> {
    sim: turmoil::Sim<'a>,
    started: WallInstant,
    cpu: Option<Duration>,
    budget: Option<Duration>,
}

impl Stepper<'_> {
    /// One step; `false` if the budget is spent (the step is not taken).
    fn step(&mut self) -> Result<bool, GossipSimError> {
        if self.budget.is_some_and(|b| self.started.elapsed() > b) {
            return Ok(false);
        }
        self.sim
            .step()
            .map_err(|e| GossipSimError::Turmoil(e.to_string()))?;
        Ok(true)
    }
}

/// One member as a turmoil host sees it. Shared (`Rc`: turmoil runs every
/// host on the calling thread) between the host's software, which owns the
/// socket and the timers, and the scenario, which writes and reads the
/// summary between steps, when no host runs.
struct Hosted {
    gossip: RefCell<Gossip>,
    /// Told after the scenario wrote, so the software sends what it queued.
    wake: Notify,
    /// Packets or timers refused, and sends that failed.
    refused: Cell<u64>,
}

/// A member's software: bind the gossip port, then forever carry out what
/// the member queued (send its packets to the addresses in their peers'
/// identities, arm its timers on this host's tokio clock) and hand it the
/// next packet, timer or wake-up, whichever comes first.
async fn serve(me: Rc<Hosted>) -> turmoil::Result {
    let socket =
        turmoil::net::UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT))
            .await?;
    let start = Instant::now();
    let mut timers: BTreeMap<(Instant, u64), Tick> = BTreeMap::new();
    let mut seq = 0u64;
    let mut buf = vec![0u8; RECV_BUFFER];
    loop {
        let output = me.gossip.borrow_mut().drain();
        let now = Instant::now();
        for (after, tick) in output.timers {
            seq += 1;
            timers.insert((now + after, seq), tick);
        }
        for packet in output.packets {
            if socket.send_to(&packet.bytes, packet.to.addr).await.is_err() {
                me.refused.set(me.refused.get() + 1);
            }
        }
        let next = timers.keys().next().map(|(at, _)| *at);
        let due = async move {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            got = socket.recv_from(&mut buf) => {
                let (len, _) = got?;
                let result = me.gossip.borrow_mut().handle_packet(&buf[..len], start.elapsed());
                if result.is_err() {
                    me.refused.set(me.refused.get() + 1);
                }
            }
            () = due => {
                let now = Instant::now();
                while let Some(entry) = timers.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let tick = entry.remove();
                    let result = me.gossip.borrow_mut().handle_timer(tick, start.elapsed());
                    if result.is_err() {
                        me.refused.set(me.refused.get() + 1);
                    }
                }
            }
            () = me.wake.notified() => {}
        }
    }
}

/// Member `i`'s address: 10.0.0.1 onwards (turmoil's own names take
/// 192.168.0.0/16).
fn address(i: usize) -> IpAddr {
    let i = u32::try_from(i).unwrap_or(u32::MAX - 0x0a00_0001);
    IpAddr::V4(Ipv4Addr::from(0x0a00_0001 + i))
}

/// The stamp of the region report `g` holds for its own region.
fn own_stamp(g: &Gossip) -> Option<Stamp> {
    g.summary().region(&g.identity().region).map(|(_, s)| s)
}

/// Whether `g` holds `region`'s report at `stamp` or a later one.
fn holds(g: &Gossip, region: &Name, stamp: Stamp) -> bool {
    g.summary().region(region).is_some_and(|(_, s)| s >= stamp)
}

fn totals(stats: impl Iterator<Item = GossipStats>) -> (u64, u64) {
    stats.fold((0, 0), |(p, b), s| {
        (
            p + s.swim_packets + s.summary_packets,
            b + s.swim_bytes + s.summary_bytes,
        )
    })
}

/// turmoil's step loop with nothing to do: `hosts` hosts on links of
/// [`TICK`] latency, stepped for `span` of virtual time.
#[derive(Clone, Copy, Debug)]
pub struct IdleSteps {
    pub hosts: usize,
    /// Whether the hosts' software was running (bound to a socket and
    /// waiting on it) or had finished at once. turmoil ticks a running
    /// host's runtime and scans the links for its messages every step; a
    /// finished host costs neither, so the difference between the two is
    /// the per-host part of a step and the finished case is the links'.
    pub running: bool,
    pub span: Duration,
    /// Wall time for the steps (setup excluded).
    pub wall: Duration,
    /// CPU time of the stepping thread for them, if known.
    pub cpu: Option<Duration>,
    /// Wall time to register the hosts (and their links).
    pub setup_wall: Duration,
}

impl IdleSteps {
    /// Wall seconds per simulated second.
    pub fn wall_per_virtual_second(&self) -> f64 {
        self.wall.as_secs_f64() / self.span.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// CPU seconds per simulated second (wall if the CPU time is unknown).
    pub fn cpu_per_virtual_second(&self) -> f64 {
        self.cpu.unwrap_or(self.wall).as_secs_f64() / self.span.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// Measures turmoil's step loop alone: `hosts` hosts that send nothing,
/// stepped for up to `span` of virtual time, stopping early (after at
/// least ten steps) once `cpu_budget` of CPU time is spent, so that 360
/// hosts in a debug build can be measured too. The step loop is timed
/// `repeats` times (at least once) and the cheapest pass kept: other load
/// on the machine only ever adds time. See [`IdleSteps::running`].
pub fn idle_steps(
    hosts: usize,
    running: bool,
    span: Duration,
    cpu_budget: Duration,
    repeats: usize,
) -> Result<IdleSteps, GossipSimError> {
    let setup = WallInstant::now();
    let mut sim = builder(1).build();
    for i in 0..hosts {
        sim.host(address(i), move || async move {
            if running {
                let socket = turmoil::net::UdpSocket::bind(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    PORT,
                ))
                .await?;
                let mut buf = [0u8; 1];
                loop {
                    socket.recv_from(&mut buf).await?;
                }
            }
            Ok(())
        });
    }
    let setup_wall = setup.elapsed();
    let step = |sim: &mut turmoil::Sim<'_>| {
        sim.step()
            .map(drop)
            .map_err(|e| GossipSimError::Turmoil(e.to_string()))
    };
    // The first step runs the hosts' start (bind or finish); not counted.
    step(&mut sim)?;
    let mut best: Option<IdleSteps> = None;
    for _ in 0..repeats.max(1) {
        let started = WallInstant::now();
        let cpu = thread_cpu();
        let from = sim.elapsed();
        let mut steps = 0u32;
        while sim.elapsed() - from < span
            && (steps < 10 || cpu_since(cpu).unwrap_or(started.elapsed()) < cpu_budget)
        {
            step(&mut sim)?;
            steps += 1;
        }
        let pass = IdleSteps {
            hosts,
            running,
            span: sim.elapsed() - from,
            wall: started.elapsed(),
            cpu: cpu_since(cpu),
            setup_wall,
        };
        if best
            .as_ref()
            .is_none_or(|b| pass.cpu_per_virtual_second() < b.cpu_per_virtual_second())
        {
            best = Some(pass);
        }
    }
    best.ok_or_else(|| GossipSimError::Turmoil("no idle pass ran".into()))
}
