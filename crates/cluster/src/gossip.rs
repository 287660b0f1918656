//! A node's gossip member on a real socket: the sans-IO
//! [`Gossip`](planet::summary::Gossip) driven by a UDP socket and tokio
//! timers, every packet sealed.
//!
//! Packets are `nonce (12 bytes) ‖ AES-256-GCM(frame)` under a key every
//! member of the global tier derives from its cluster secret
//! ([`ClusterNode::derived_key`](super::ClusterNode::derived_key)), so
//! only members read or forge gossip; a packet that does not open is
//! dropped and counted. The frame ([`crate::gossip_frame`]) carries the
//! sender, a counter and the time it was sent, and a frame seen before
//! or sent more than a minute away from our clock is dropped and counted
//! too: a recorded packet cannot be replayed. UDP may lose or reorder
//! packets: SWIM and anti-entropy are built for that.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use tokio::net::UdpSocket;
use tokio::sync::Notify;

use crate::gossip_frame::{self, Frame, ReplayGuard};
use planet::summary::{AppKey, AppStatus, Gossip, GossipConfig, Peer, RegionStatus, Summary, Tick};

/// Associated data of every sealed packet: the format's version (v2:
/// the frame with counter and time).
const AAD: &[u8] = b"dwcp gossip v2";
/// The largest packet read (foca's packets are at most 1,400 bytes;
/// summary deltas may be larger on a big planet).
const MAX_PACKET: usize = 64 * 1024;
/// A member that knows nobody announces itself to its seeds this often.
const REANNOUNCE: Duration = Duration::from_secs(2);

/// What a member sees now: whom it believes alive or suspect, whom it
/// knows of, and its copy of the summary.
#[derive(Clone, Debug)]
pub struct GossipView {
    pub me: Peer,
    /// Members it believes alive or suspect (not itself).
    pub members: Vec<Peer>,
    /// Every member it was told of (its seeds: the global tier's members).
    pub known: Vec<Peer>,
    pub summary: Summary,
    /// Packets dropped because they did not open (not sealed by a member).
    pub refused: u64,
    /// Packets that opened but were dropped as replays (a counter seen
    /// before) or as stale (sent more than a minute from our clock).
    pub replayed: u64,
}

/// One region as a member sees it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RegionSight {
    pub region: state::Name,
    /// Its members this member knows of.
    pub known: usize,
    /// Those it believes alive (itself included).
    pub alive: usize,
    /// The region's own latest report, if one arrived.
    pub report: Option<RegionStatus>,
    /// Down when none of its known members is alive; degraded when some
    /// are not, or when it says so itself; else healthy. Only a judgement:
    /// the global tier confirms a failure before anything acts on it.
    pub judged: planet::summary::Health,
}

impl GossipView {
    /// Every region it knows of or has a report from, by name.
    pub fn regions(&self) -> Vec<RegionSight> {
        use planet::summary::Health;
        use std::collections::{BTreeMap, BTreeSet};
        let mut known: BTreeMap<&state::Name, BTreeSet<u64>> = BTreeMap::new();
        for p in self.known.iter().chain([&self.me]) {
            known.entry(&p.region).or_default().insert(p.node);
        }
        let mut alive: BTreeMap<&state::Name, BTreeSet<u64>> = BTreeMap::new();
        for p in self.members.iter().chain([&self.me]) {
            alive.entry(&p.region).or_default().insert(p.node);
        }
        let mut names: BTreeSet<&state::Name> = known.keys().copied().collect();
        names.extend(self.summary.regions().map(|(name, _)| name));
        names
            .into_iter()
            .map(|region| {
                let known = known.get(region).map_or(0, BTreeSet::len);
                let alive = alive.get(region).map_or(0, BTreeSet::len);
                let report = self.summary.region(region).map(|(s, _)| *s);
                let judged = if known > 0 && alive == 0 {
                    Health::Down
                } else if alive < known || report.is_some_and(|r| r.health != Health::Healthy) {
                    Health::Degraded
                } else {
                    Health::Healthy
                };
                RegionSight {
                    region: region.clone(),
                    known,
                    alive,
                    report,
                    judged,
                }
            })
            .collect()
    }
}

struct Inner {
    gossip: Gossip,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    ticks: HashMap<u64, Tick>,
    next_timer: u64,
    refused: u64,
    replayed: u64,
    seeds: Vec<Peer>,
    /// Counters seen per sender.
    guard: ReplayGuard,
    /// The counter of the next frame this member sends.
    counter: u64,
}

/// A running member; cheap to clone.
#[derive(Clone)]
pub struct GossipMember {
    inner: Arc<Mutex<Inner>>,
    socket: Arc<UdpSocket>,
    cipher: Arc<Aes256Gcm>,
    wake: Arc<Notify>,
}

/// The wall clock as the summary's clock wants it: since the Unix epoch.
fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn now_ms() -> u64 {
    u64::try_from(now().as_millis()).unwrap_or(u64::MAX)
}

impl GossipMember {
    /// Binds `me.addr` (UDP), starts the member and announces it to
    /// `seeds` (other members; itself is skipped). Returns the member and
    /// the task that runs it.
    pub async fn start(
        me: Peer,
        key: [u8; 32],
        config: GossipConfig,
        seeds: Vec<Peer>,
    ) -> std::io::Result<(GossipMember, tokio::task::JoinHandle<()>)> {
        let socket = Arc::new(UdpSocket::bind(me.addr).await?);
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).map_err(|e| std::io::Error::other(e.to_string()))?;
        let gossip = Gossip::new(me, config, u64::from_le_bytes(seed));
        let member = GossipMember {
            inner: Arc::new(Mutex::new(Inner {
                gossip,
                timers: BinaryHeap::new(),
                ticks: HashMap::new(),
                next_timer: 0,
                refused: 0,
                replayed: 0,
                seeds: Vec::new(),
                guard: ReplayGuard::default(),
                counter: gossip_frame::first_counter(now_ms()),
            })),
            socket,
            cipher: Arc::new(Aes256Gcm::new((&key).into())),
            wake: Arc::new(Notify::new()),
        };
        member.set_seeds(seeds);
        let running = member.clone();
        let task = tokio::spawn(async move { running.run().await });
        Ok((member, task))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the members it announces itself to while it knows nobody,
    /// and announces to them now if so.
    pub fn set_seeds(&self, seeds: Vec<Peer>) {
        let mut inner = self.lock();
        let me = inner.gossip.identity().node;
        inner.seeds = seeds.into_iter().filter(|s| s.node != me).collect();
        if inner.gossip.num_members() == 0 {
            self.announce(&mut inner);
        }
    }

    fn announce(&self, inner: &mut Inner) {
        for seed in inner.seeds.clone() {
            // A refused announce (foca's own check) only means no packet.
            let _ = inner.gossip.announce(seed);
        }
        self.flush(inner);
    }

    /// Writes this member's region's report and pushes it.
    pub fn report_region(&self, status: RegionStatus) {
        let mut inner = self.lock();
        inner.gossip.report_region(status, now());
        self.flush(&mut inner);
    }

    /// Writes an app's status in this member's region and pushes it.
    pub fn report_app(&self, app: AppKey, status: AppStatus) {
        let mut inner = self.lock();
        inner.gossip.report_app(app, status, now());
        self.flush(&mut inner);
    }

    /// What the member sees now.
    pub fn view(&self) -> GossipView {
        let inner = self.lock();
        GossipView {
            me: inner.gossip.identity().clone(),
            members: inner.gossip.members().cloned().collect(),
            known: inner.seeds.clone(),
            summary: inner.gossip.summary().clone(),
            refused: inner.refused,
            replayed: inner.replayed,
        }
    }

    /// Sends what the member queued and arms its timers. Sends never wait:
    /// a packet the socket cannot take now is lost, as UDP may lose it.
    fn flush(&self, inner: &mut Inner) {
        let output = inner.gossip.drain();
        let sender = inner.gossip.identity().node;
        for packet in output.packets {
            inner.counter += 1;
            let frame = Frame {
                sender,
                counter: inner.counter,
                unix_ms: now_ms(),
                packet: &packet.bytes,
            };
            if let Some(sealed) = self.seal(&frame.encode()) {
                let _ = self.socket.try_send_to(&sealed, packet.to.addr);
            }
        }
        let armed = !output.timers.is_empty();
        for (delay, tick) in output.timers {
            let id = inner.next_timer;
            inner.next_timer += 1;
            inner.ticks.insert(id, tick);
            inner.timers.push(Reverse((Instant::now() + delay, id)));
        }
        if armed {
            self.wake.notify_one();
        }
    }

    fn seal(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).ok()?;
        let body = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: bytes,
                    aad: AAD,
                },
            )
            .ok()?;
        let mut sealed = nonce.to_vec();
        sealed.extend(body);
        Some(sealed)
    }

    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 12 {
            return None;
        }
        let (nonce, body) = sealed.split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: AAD,
                },
            )
            .ok()
    }

    async fn run(&self) {
        let mut buf = vec![0u8; MAX_PACKET];
        let mut reannounce = tokio::time::interval(REANNOUNCE);
        loop {
            let next = self.lock().timers.peek().map(|Reverse((at, _))| *at);
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, from)) = received {
                        self.receive(&buf[..n], from);
                    }
                }
                () = sleep => self.fire_due(),
                () = self.wake.notified() => {}
                _ = reannounce.tick() => {
                    let mut inner = self.lock();
                    if inner.gossip.num_members() == 0 {
                        self.announce(&mut inner);
                    }
                }
            }
        }
    }

    fn receive(&self, sealed: &[u8], _from: SocketAddr) {
        let mut inner = self.lock();
        let Some(opened) = self.open(sealed) else {
            inner.refused += 1;
            return;
        };
        let Some(frame) = gossip_frame::parse(&opened) else {
            inner.refused += 1;
            return;
        };
        if inner.guard.admit(&frame, now_ms()).is_err() {
            inner.replayed += 1;
            return;
        }
        // A malformed packet from a member changes nothing; drop it.
        let _ = inner.gossip.handle_packet(frame.packet, now());
        self.flush(&mut inner);
    }

    fn fire_due(&self) {
        let mut inner = self.lock();
        let moment = Instant::now();
        while let Some(Reverse((at, id))) = inner.timers.peek().copied() {
            if at > moment {
                break;
            }
            inner.timers.pop();
            if let Some(tick) = inner.ticks.remove(&id) {
                let _ = inner.gossip.handle_timer(tick, now());
            }
        }
        self.flush(&mut inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use planet::summary::{Health, Stamp};
    use state::Name;

    fn peer(node: u64, region: &str) -> Peer {
        Peer {
            node,
            region: Name::new("region", region).unwrap(),
            addr: format!("127.0.0.{node}:7072").parse().unwrap(),
            bump: 0,
        }
    }

    fn view(me: Peer, alive: &[Peer], known: &[Peer]) -> GossipView {
        GossipView {
            me,
            members: alive.to_vec(),
            known: known.to_vec(),
            summary: Summary::new(),
            refused: 0,
            replayed: 0,
        }
    }

    fn judged(view: &GossipView, region: &str) -> (Health, usize, usize) {
        let sight = view
            .regions()
            .into_iter()
            .find(|r| r.region.as_str() == region)
            .unwrap();
        (sight.judged, sight.known, sight.alive)
    }

    #[test]
    fn a_region_with_no_member_alive_is_down_and_one_missing_some_degraded() {
        let (a1, a2, b1, b2, c1) = (
            peer(1, "a"),
            peer(2, "a"),
            peer(3, "b"),
            peer(4, "b"),
            peer(5, "c"),
        );
        let known = [a1.clone(), a2.clone(), b1.clone(), b2.clone(), c1.clone()];
        let v = view(a1.clone(), &[a2.clone(), b1.clone()], &known);
        assert_eq!(judged(&v, "a"), (Health::Healthy, 2, 2));
        assert_eq!(judged(&v, "b"), (Health::Degraded, 2, 1));
        assert_eq!(judged(&v, "c"), (Health::Down, 1, 0));
    }

    #[test]
    fn a_region_that_says_it_is_degraded_is_judged_so() {
        let (a1, b1) = (peer(1, "a"), peer(2, "b"));
        let mut v = view(a1.clone(), std::slice::from_ref(&b1), &[a1, b1.clone()]);
        let status = RegionStatus {
            health: Health::Degraded,
            ..RegionStatus::default()
        };
        v.summary
            .set_region(b1.region.clone(), status, Stamp::default());
        assert_eq!(judged(&v, "b").0, Health::Degraded);
    }

    /// Member 1 of region `a` on a loopback port of its own, key `[7; 32]`.
    async fn loopback_member() -> (GossipMember, tokio::task::JoinHandle<()>) {
        let me = Peer {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..peer(1, "a")
        };
        GossipMember::start(
            me,
            [7; 32],
            GossipConfig::wan(std::num::NonZeroU32::MIN),
            vec![],
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn packets_sealed_under_another_key_are_refused() {
        let (member, task) = loopback_member().await;
        let addr = member.socket.local_addr().unwrap();
        let stranger = GossipMember {
            cipher: Arc::new(Aes256Gcm::new((&[8u8; 32]).into())),
            ..member.clone()
        };
        let forged = stranger.seal(&[0, 1, 2, 3]).unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.send_to(&forged, addr).await.unwrap();
        socket.send_to(b"short", addr).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while member.view().refused < 2 {
            assert!(
                Instant::now() < deadline,
                "the forged packets were not refused"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(member.view().members.is_empty());
        task.abort();
    }

    #[tokio::test]
    async fn a_replayed_or_stale_packet_is_dropped() {
        let (member, task) = loopback_member().await;
        let addr = member.socket.local_addr().unwrap();
        let frame = |counter: u64, unix_ms: u64| {
            let f = Frame {
                sender: 9,
                counter,
                unix_ms,
                packet: &[0, 1, 2],
            };
            member.seal(&f.encode()).unwrap()
        };
        let first = gossip_frame::first_counter(now_ms());
        let recorded = frame(first, now_ms());
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.send_to(&recorded, addr).await.unwrap();
        socket.send_to(&recorded, addr).await.unwrap();
        socket
            .send_to(
                &frame(first + 1, now_ms() - gossip_frame::MAX_SKEW_MS - 5_000),
                addr,
            )
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while member.view().replayed < 2 {
            assert!(
                Instant::now() < deadline,
                "the replayed and stale packets were not dropped: {}",
                member.view().replayed
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(member.view().refused, 0, "they opened: sealed by a member");
        task.abort();
    }
}
