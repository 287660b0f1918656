//! A deterministic in-memory network of [`Gossip`] members, in virtual time.
//!
//! Packets and timers are events in one queue ordered by (virtual time,
//! sequence number); each link has a delay, a jitter and a loss rate drawn
//! from one seeded RNG. No threads, no sockets, no wall clock: the same
//! seed gives the same run, event for event, which is what lets tests
//! assert detection and convergence *in virtual time* and lets the
//! simulator reuse this loop (or the [`Gossip`] members under its own).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use foca::OwnedNotification;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use super::clock::NodeId;
use super::config::GossipConfig;
use super::gossip::{Gossip, GossipError, Tick};
use super::identity::Peer;
use state::Name;

/// One direction of a link between two members.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    /// One-way delay.
    pub delay: Duration,
    /// Extra delay, uniform in `[0, jitter]`, per packet.
    pub jitter: Duration,
    /// Probability that a packet is lost, in `[0, 1]`.
    pub loss: f64,
}

impl Link {
    /// A link with a fixed one-way `delay` and nothing else.
    pub fn delay(delay: Duration) -> Link {
        Link {
            delay,
            jitter: Duration::ZERO,
            loss: 0.0,
        }
    }

    /// A link that loses everything (a partition).
    pub fn cut() -> Link {
        Link {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 1.0,
        }
    }
}

/// Why [`Driver::restart`] could not bring a member back.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    /// No member has that index.
    #[error("gossip member {member} does not exist ({members} members)")]
    NoMember {
        /// The index asked for.
        member: usize,
        /// How many members there are.
        members: usize,
    },
    /// The member to announce to is not running, or is the member itself:
    /// a restarted member must be introduced by a live one.
    #[error(
        "gossip member {0} cannot introduce a restarted member: it is not running, or is the member itself"
    )]
    Seed(usize),
    /// foca refused the announcement.
    #[error(transparent)]
    Gossip(#[from] GossipError),
}

/// [`Driver::new`] was given no region to put members in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the gossip driver needs at least one region for its members")]
pub struct NoRegions;

/// When each member first satisfied a condition (see [`Driver::spread`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spread {
    /// Per member (by index), how long after the start it first held;
    /// `None` if it never did before the deadline (or the member is dead).
    pub per_member: Vec<Option<Duration>>,
    /// How long until every live member held it, if they all did.
    pub all: Option<Duration>,
}

#[derive(Debug)]
enum Event {
    Packet {
        from: usize,
        to: usize,
        bytes: Vec<u8>,
    },
    Timer {
        member: usize,
        /// The member's incarnation that armed it (see [`Driver::restart`]):
        /// a timer does not outlive the process that armed it.
        incarnation: u32,
        tick: Tick,
    },
}

/// Counters of what the network did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Packets handed to a live member.
    pub delivered: u64,
    /// Packets lost on a link or addressed to a dead member.
    pub dropped: u64,
    /// Packets or timers a member refused (a [`super::GossipError`]).
    pub refused: u64,
}

/// N members, by index; member `i` has node id `i`.
pub struct Driver {
    now: Duration,
    members: Vec<Gossip>,
    alive: Vec<bool>,
    /// Per member, how many times it was restarted.
    incarnation: Vec<u32>,
    config: GossipConfig,
    events: BTreeMap<(Duration, u64), Event>,
    seq: u64,
    rng: Xoshiro256PlusPlus,
    default_link: Link,
    links: BTreeMap<(usize, usize), Link>,
    /// (observer, subject) → when the observer was told the subject is down.
    downs: BTreeMap<(usize, NodeId), Duration>,
    /// (observer, subject) → when the observer was last told the subject is
    /// up (a new member, or a restarted one under a renewed identity).
    ups: BTreeMap<(usize, NodeId), Duration>,
    stats: NetStats,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("now", &self.now)
            .field("members", &self.members.len())
            .field("pending", &self.events.len())
            .finish()
    }
}

impl Driver {
    /// `regions.len()` regions, `n` members spread over them round-robin
    /// (member `i` in region `i % regions.len()`), every link `link` unless
    /// changed with [`Driver::set_link`]. Every member announces itself to
    /// member 0 at time zero. `seed` decides everything random.
    pub fn new(
        n: usize,
        regions: &[Name],
        config: GossipConfig,
        link: Link,
        seed: u64,
    ) -> Result<Driver, NoRegions> {
        if regions.is_empty() {
            return Err(NoRegions);
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut members = Vec::with_capacity(n);
        for i in 0..n {
            let region = regions[i % regions.len()].clone();
            let member_seed = rng.random::<u64>();
            members.push(Gossip::new(peer(i, region), config.clone(), member_seed));
        }
        let mut driver = Driver {
            now: Duration::ZERO,
            alive: vec![true; n],
            incarnation: vec![0; n],
            config,
            members,
            events: BTreeMap::new(),
            seq: 0,
            rng,
            default_link: link,
            links: BTreeMap::new(),
            downs: BTreeMap::new(),
            ups: BTreeMap::new(),
            stats: NetStats::default(),
        };
        if n > 0 {
            let seed = driver.members[0].identity().clone();
            for i in 1..n {
                if driver.members[i].announce(seed.clone()).is_err() {
                    driver.stats.refused += 1;
                }
            }
        }
        for i in 0..n {
            driver.collect(i);
        }
        Ok(driver)
    }

    /// Virtual time since the start.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// How many members (live or dead).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Member `i`.
    pub fn member(&self, i: usize) -> &Gossip {
        &self.members[i]
    }

    /// Whether member `i` is running.
    pub fn is_alive(&self, i: usize) -> bool {
        self.alive[i]
    }

    /// What the network did so far.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// Sets the link from `from` to `to` (one direction).
    pub fn set_link(&mut self, from: usize, to: usize, link: Link) {
        self.links.insert((from, to), link);
    }

    /// Sets the link both ways between `a` and `b`.
    pub fn set_links(&mut self, a: usize, b: usize, link: Link) {
        self.set_link(a, b, link);
        self.set_link(b, a, link);
    }

    /// Stops member `i`: it handles nothing more, and packets to it are lost.
    pub fn kill(&mut self, i: usize) {
        self.alive[i] = false;
    }

    /// Restarts member `i` (after a [`Driver::kill`], typically) as a new
    /// process would start: an empty summary, nobody known, none of its old
    /// timers, and a renewed identity (`bump` one higher) — the members that
    /// hold the old identity as down would ignore it, and foca takes the
    /// renewed one as a new member (`Rename` then `MemberUp`). It announces
    /// itself to the live member `via`, as a node announces itself to a
    /// seed it was configured with. Its random seed comes from the driver's
    /// seeded RNG, so a run stays reproducible.
    pub fn restart(&mut self, i: usize, via: usize) -> Result<(), RestartError> {
        let members = self.members.len();
        if i >= members {
            return Err(RestartError::NoMember { member: i, members });
        }
        if via == i || !self.alive.get(via).copied().unwrap_or(false) {
            return Err(RestartError::Seed(via));
        }
        let old = self.members[i].identity().clone();
        let me = Peer {
            bump: old.bump.wrapping_add(1),
            ..old
        };
        let seed = self.rng.random::<u64>();
        let mut member = Gossip::new(me, self.config.clone(), seed);
        member.announce(self.members[via].identity().clone())?;
        self.members[i] = member;
        self.incarnation[i] = self.incarnation[i].wrapping_add(1);
        self.alive[i] = true;
        self.collect(i);
        Ok(())
    }

    /// When `observer` was last told that `subject` is up (joined, or came
    /// back under a renewed identity), if it was.
    pub fn declared_up(&self, observer: usize, subject: NodeId) -> Option<Duration> {
        self.ups.get(&(observer, subject)).copied()
    }

    /// Runs `f` on member `i` at the current virtual time (a local write,
    /// say) and sends whatever it queued.
    pub fn with_member<R>(&mut self, i: usize, f: impl FnOnce(&mut Gossip, Duration) -> R) -> R {
        let out = f(&mut self.members[i], self.now);
        self.collect(i);
        out
    }

    /// Handles the next event; `false` when there is none left.
    pub fn step(&mut self) -> bool {
        self.step_member().is_some()
    }

    /// Runs every event up to `deadline`, then sets the clock to it.
    pub fn run_until(&mut self, deadline: Duration) {
        while self.next_time().is_some_and(|t| t <= deadline) {
            self.step_member();
        }
        self.now = self.now.max(deadline);
    }

    /// Runs until every live member satisfies `holds`, or until `deadline`;
    /// records when each member first did. Members are checked at the
    /// start and after each event they handle, so times are exact in
    /// virtual time.
    pub fn spread(&mut self, deadline: Duration, holds: impl Fn(&Gossip) -> bool) -> Spread {
        let start = self.now;
        let mut per_member: Vec<Option<Duration>> = self
            .members
            .iter()
            .zip(&self.alive)
            .map(|(m, &alive)| (alive && holds(m)).then_some(Duration::ZERO))
            .collect();
        let done = |per: &[Option<Duration>], alive: &[bool]| {
            per.iter().zip(alive).all(|(t, &a)| !a || t.is_some())
        };
        while !done(&per_member, &self.alive) && self.next_time().is_some_and(|t| t <= deadline) {
            if let Some(i) = self.step_member()
                && per_member[i].is_none()
                && self.alive[i]
                && holds(&self.members[i])
            {
                per_member[i] = Some(self.now - start);
            }
        }
        let all = done(&per_member, &self.alive).then(|| {
            per_member
                .iter()
                .zip(&self.alive)
                .filter(|(_, a)| **a)
                .filter_map(|(t, _)| *t)
                .max()
                .unwrap_or(Duration::ZERO)
        });
        Spread { per_member, all }
    }

    /// Runs until every live member knows every other live member, or
    /// until `deadline`; returns when that happened.
    pub fn run_until_discovered(&mut self, deadline: Duration) -> Option<Duration> {
        loop {
            if self.all_discovered() {
                return Some(self.now);
            }
            if self.next_time().is_none_or(|t| t > deadline) {
                return None;
            }
            self.step_member();
        }
    }

    /// Whether every live member lists exactly the other live members.
    pub fn all_discovered(&self) -> bool {
        let live = self.alive.iter().filter(|a| **a).count();
        (0..self.members.len()).filter(|&i| self.alive[i]).all(|i| {
            let m = &self.members[i];
            m.num_members() == live - 1 && m.members().all(|p| self.alive_node(p.node))
        })
    }

    /// When `observer` was told that `subject` is down, if it was.
    pub fn declared_down(&self, observer: usize, subject: NodeId) -> Option<Duration> {
        self.downs.get(&(observer, subject)).copied()
    }

    /// When the last live member was told that `subject` is down, if all were.
    pub fn all_declared_down(&self, subject: NodeId) -> Option<Duration> {
        (0..self.members.len())
            .filter(|&i| self.alive[i] && i as NodeId != subject)
            .map(|i| self.declared_down(i, subject))
            .collect::<Option<Vec<_>>>()
            .map(|times| times.into_iter().max().unwrap_or(self.now))
    }

    /// Whether every live member holds the same summary.
    pub fn converged(&self) -> bool {
        let mut prints = (0..self.members.len())
            .filter(|&i| self.alive[i])
            .map(|i| self.members[i].summary().fingerprint());
        match prints.next() {
            Some(first) => prints.all(|p| p == first),
            None => true,
        }
    }

    fn alive_node(&self, node: NodeId) -> bool {
        usize::try_from(node).is_ok_and(|i| self.alive.get(i).copied().unwrap_or(false))
    }

    fn next_time(&self) -> Option<Duration> {
        self.events.keys().next().map(|(t, _)| *t)
    }

    /// Handles the next event; returns the member it concerned.
    fn step_member(&mut self) -> Option<usize> {
        let ((time, _), event) = self.events.pop_first()?;
        self.now = time;
        let (member, result) = match event {
            Event::Packet { from, to, bytes } => {
                if !self.alive[to] || !self.alive[from] {
                    self.stats.dropped += 1;
                    return Some(to);
                }
                self.stats.delivered += 1;
                (to, self.members[to].handle_packet(&bytes, time))
            }
            Event::Timer {
                member,
                incarnation,
                tick,
            } => {
                if !self.alive[member] || incarnation != self.incarnation[member] {
                    return Some(member);
                }
                (member, self.members[member].handle_timer(tick, time))
            }
        };
        if result.is_err() {
            self.stats.refused += 1;
        }
        self.collect(member);
        Some(member)
    }

    /// Schedules what member `i` queued.
    fn collect(&mut self, i: usize) {
        let output = self.members[i].drain();
        for (after, tick) in output.timers {
            let incarnation = self.incarnation[i];
            self.push(
                self.now + after,
                Event::Timer {
                    member: i,
                    incarnation,
                    tick,
                },
            );
        }
        for packet in output.packets {
            let Ok(to) = usize::try_from(packet.to.node) else {
                continue;
            };
            if to >= self.members.len() {
                self.stats.dropped += 1;
                continue;
            }
            let link = self
                .links
                .get(&(i, to))
                .copied()
                .unwrap_or(self.default_link);
            if link.loss > 0.0 && self.rng.random_bool(link.loss.min(1.0)) {
                self.stats.dropped += 1;
                continue;
            }
            let jitter = if link.jitter.is_zero() {
                Duration::ZERO
            } else {
                let nanos = u64::try_from(link.jitter.as_nanos()).unwrap_or(u64::MAX);
                Duration::from_nanos(self.rng.random_range(0..=nanos))
            };
            let event = Event::Packet {
                from: i,
                to,
                bytes: packet.bytes,
            };
            self.push(self.now + link.delay + jitter, event);
        }
        for notification in output.notifications {
            match notification {
                OwnedNotification::MemberDown(peer) => {
                    self.downs.entry((i, peer.node)).or_insert(self.now);
                }
                OwnedNotification::MemberUp(peer) => {
                    self.ups.insert((i, peer.node), self.now);
                }
                _ => {}
            }
        }
    }

    fn push(&mut self, at: Duration, event: Event) {
        self.seq += 1;
        self.events.insert((at, self.seq), event);
    }
}

/// Member `i`'s identity: node id `i`, address 10.x.y.z:7946.
fn peer(i: usize, region: Name) -> Peer {
    let [_, b, c, d] = u32::try_from(i).unwrap_or(u32::MAX).to_be_bytes();
    Peer {
        node: i as NodeId,
        region,
        addr: SocketAddr::from((Ipv4Addr::new(10, b, c, d), 7946)),
        bump: 0,
    }
}
