//! [`Gossip`]: one member's SWIM membership (foca) and its copy of the
//! [`Summary`], with no sockets and no clock.
//!
//! Everything comes in through method calls — a packet that arrived, a
//! timer that fired, a local write — each with the caller's current time,
//! and everything that should go out is queued: packets to send, timers to
//! arm, membership changes. The owner drains the queues with
//! [`Gossip::drain`] and carries them out: a UDP socket and tokio timers in
//! a node, the in-memory [`super::driver`] in tests and the simulator.
//!
//! One wire carries both protocols; the first byte says which:
//! [`KIND_SWIM`] is a foca packet, [`KIND_SUMMARY`] a postcard-encoded
//! [`Exchange`] (anti-entropy digest and deltas, and pushed writes).

use std::time::Duration;

use foca::{Foca, NoCustomBroadcast, OwnedNotification, PostcardCodec, Runtime, Timer};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::clock::{Hlc, Stamp};
use super::config::GossipConfig;
use super::crdt::Summary;
use super::identity::Peer;
use super::status::{AppStatus, RegionStatus};
use super::sync::{Delta, Digest};

/// First byte of a SWIM (foca) packet.
pub const KIND_SWIM: u8 = 0;
/// First byte of a summary [`Exchange`].
pub const KIND_SUMMARY: u8 = 1;

/// Why a packet or timer could not be handled. None of these change the
/// member's state; the packet is dropped.
#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    /// foca refused the packet or timer.
    #[error("SWIM: {0}")]
    Swim(#[from] foca::Error),
    /// A packet with no bytes.
    #[error("empty gossip packet")]
    Empty,
    /// A first byte that is neither [`KIND_SWIM`] nor [`KIND_SUMMARY`].
    #[error("gossip packet of unknown kind {0}, expected 0 (SWIM) or 1 (summary)")]
    UnknownKind(u8),
    /// A summary exchange that did not decode.
    #[error("malformed summary exchange: {0}")]
    Decode(#[from] postcard::Error),
}

/// A summary message between two members.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Exchange {
    /// Who sent it (replies go there).
    pub from: Peer,
    /// What it says.
    pub message: ExchangeMessage,
}

/// The anti-entropy and push messages.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ExchangeMessage {
    /// Anti-entropy, first leg: "this is what I hold".
    Digest(Digest),
    /// Second leg: what the digest's sender lacked, and what I hold.
    Reply {
        /// The summary fragment the digest's sender lacked.
        delta: Delta,
        /// The replier's digest, for the third leg.
        digest: Digest,
    },
    /// Third leg: what the replier lacked.
    Delta(Delta),
    /// A fresh write (or news learned from one), pushed without being asked;
    /// the receiver forwards whatever of it was news to it.
    Push(Delta),
}

/// A timer the owner must fire by calling [`Gossip::handle_timer`] after
/// its delay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tick {
    /// One of foca's timers.
    Swim(Timer<Peer>),
    /// Time for an anti-entropy round.
    AntiEntropy,
}

/// A packet to deliver to `to`.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The destination.
    pub to: Peer,
    /// The bytes, first byte the kind.
    pub bytes: Vec<u8>,
}

/// What a member wants done since the last [`Gossip::drain`].
#[derive(Debug, Default)]
pub struct Output {
    /// Packets to send.
    pub packets: Vec<Outgoing>,
    /// Timers to arm: fire `tick` after `delay`.
    pub timers: Vec<(Duration, Tick)>,
    /// Membership changes, in order.
    pub notifications: Vec<OwnedNotification<Peer>>,
}

/// Counters of what this member sent, for the simulator's tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GossipStats {
    /// Summary packets sent.
    pub summary_packets: u64,
    /// Bytes in summary packets.
    pub summary_bytes: u64,
    /// SWIM packets sent.
    pub swim_packets: u64,
    /// Bytes in SWIM packets.
    pub swim_bytes: u64,
}

/// foca's [`Runtime`]: everything it asks for goes into the queues.
#[derive(Debug, Default)]
struct Queue {
    output: Output,
    stats: GossipStats,
}

impl Runtime<Peer> for Queue {
    fn notify(&mut self, notification: foca::Notification<'_, Peer>) {
        self.output.notifications.push(notification.to_owned());
    }

    fn send_to(&mut self, to: Peer, data: &[u8]) {
        let mut bytes = Vec::with_capacity(data.len() + 1);
        bytes.push(KIND_SWIM);
        bytes.extend_from_slice(data);
        self.stats.swim_packets += 1;
        self.stats.swim_bytes += bytes.len() as u64;
        self.output.packets.push(Outgoing { to, bytes });
    }

    fn submit_after(&mut self, event: Timer<Peer>, after: Duration) {
        self.output.timers.push((after, Tick::Swim(event)));
    }
}

type Swim = Foca<Peer, PostcardCodec, Xoshiro256PlusPlus, NoCustomBroadcast>;

/// One member: SWIM membership plus its copy of the summary.
pub struct Gossip {
    me: Peer,
    swim: Swim,
    queue: Queue,
    summary: Summary,
    clock: Hlc,
    rng: Xoshiro256PlusPlus,
    config: GossipConfig,
}

impl std::fmt::Debug for Gossip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gossip")
            .field("me", &self.me)
            .field("members", &self.swim.num_members())
            .field("summary_keys", &self.summary.len())
            .finish()
    }
}

impl Gossip {
    /// A member that knows nobody yet. `seed` makes its random choices
    /// (foca's probe order, anti-entropy peers) reproducible. Arms the first
    /// anti-entropy round; drain the output to see it.
    pub fn new(me: Peer, config: GossipConfig, seed: u64) -> Gossip {
        let swim_rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5eed_5eed_5eed_5eed);
        let swim = Foca::new(me.clone(), config.swim.clone(), swim_rng, PostcardCodec);
        let mut queue = Queue::default();
        queue
            .output
            .timers
            .push((config.anti_entropy_every, Tick::AntiEntropy));
        Gossip {
            clock: Hlc::new(me.node),
            me,
            swim,
            queue,
            summary: Summary::new(),
            rng,
            config,
        }
    }

    /// This member's identity (renewed by foca if it was declared down and
    /// rejoined).
    pub fn identity(&self) -> &Peer {
        self.swim.identity()
    }

    /// The members this one believes alive or suspect (not itself).
    pub fn members(&self) -> impl Iterator<Item = &Peer> {
        self.swim.iter_members().map(|m| m.id())
    }

    /// How many members this one believes alive or suspect.
    pub fn num_members(&self) -> usize {
        self.swim.num_members()
    }

    /// This member's copy of the summary.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// What this member has sent so far.
    pub fn stats(&self) -> GossipStats {
        self.queue.stats
    }

    /// Takes everything queued since the last call.
    pub fn drain(&mut self) -> Output {
        std::mem::take(&mut self.queue.output)
    }

    /// Asks `seed` to let this member join.
    pub fn announce(&mut self, seed: Peer) -> Result<(), GossipError> {
        self.swim.announce(seed, &mut self.queue)?;
        Ok(())
    }

    /// Handles a packet that arrived, at `now`.
    pub fn handle_packet(&mut self, bytes: &[u8], now: Duration) -> Result<(), GossipError> {
        let (&kind, body) = bytes.split_first().ok_or(GossipError::Empty)?;
        match kind {
            KIND_SWIM => {
                self.swim.handle_data(body, &mut self.queue)?;
                Ok(())
            }
            KIND_SUMMARY => {
                let exchange: Exchange = postcard::from_bytes(body)?;
                self.handle_exchange(exchange, now);
                Ok(())
            }
            other => Err(GossipError::UnknownKind(other)),
        }
    }

    /// Handles a timer armed earlier, at `now`.
    pub fn handle_timer(&mut self, tick: Tick, now: Duration) -> Result<(), GossipError> {
        let _ = now;
        match tick {
            Tick::Swim(timer) => self.swim.handle_timer(timer, &mut self.queue)?,
            Tick::AntiEntropy => {
                let digest = self.summary.digest();
                for peer in self.random_peers(self.config.anti_entropy_fanout, None) {
                    self.send(peer, ExchangeMessage::Digest(digest.clone()));
                }
                self.queue
                    .output
                    .timers
                    .push((self.config.anti_entropy_every, Tick::AntiEntropy));
            }
        }
        Ok(())
    }

    /// A fresh stamp for a local write at `now`.
    pub fn stamp(&mut self, now: Duration) -> Stamp {
        self.clock.stamp(millis(now))
    }

    /// Writes this member's region's report at `now` and pushes it.
    pub fn report_region(&mut self, status: RegionStatus, now: Duration) {
        let stamp = self.stamp(now);
        let region = self.me.region.clone();
        let mut fragment = Summary::new();
        fragment.set_region(region, status, stamp);
        self.write(fragment);
    }

    /// Writes `app`'s status in this member's region at `now` and pushes it.
    pub fn report_app(&mut self, app: super::crdt::AppKey, status: AppStatus, now: Duration) {
        let stamp = self.stamp(now);
        let region = self.me.region.clone();
        let mut fragment = Summary::new();
        fragment.set_app(app, region, status, stamp);
        self.write(fragment);
    }

    /// Counts requests this member served and pushes the new count.
    pub fn count_requests(&mut self, n: u64) {
        self.summary
            .add_requests(self.me.region.clone(), self.me.node, n);
        self.push_counters();
    }

    /// Counts sandboxes this member started (positive) or stopped
    /// (negative) and pushes the new count.
    pub fn count_sandboxes(&mut self, delta: i64) {
        self.summary
            .add_sandboxes(self.me.region.clone(), self.me.node, delta);
        self.push_counters();
    }

    fn push_counters(&mut self) {
        let mut fragment = Summary::new();
        let region = &self.me.region;
        if let Some(c) = self.summary.requests.get(region) {
            fragment.requests.insert(region.clone(), c.clone());
        }
        if let Some(c) = self.summary.sandboxes.get(region) {
            fragment.sandboxes.insert(region.clone(), c.clone());
        }
        self.write(fragment);
    }

    /// Merges a local fragment and pushes it.
    fn write(&mut self, fragment: Summary) {
        self.summary.merge(&fragment);
        let delta = fragment.delta_since(&Digest::default());
        self.push(delta, None);
    }

    fn push(&mut self, delta: Delta, except: Option<&Peer>) {
        if delta.is_empty() {
            return;
        }
        for peer in self.random_peers(self.config.push_fanout, except) {
            self.send(peer, ExchangeMessage::Push(delta.clone()));
        }
    }

    fn handle_exchange(&mut self, exchange: Exchange, _now: Duration) {
        let Exchange { from, message } = exchange;
        match message {
            ExchangeMessage::Digest(digest) => {
                if digest.root == self.summary.fingerprint() {
                    return;
                }
                let delta = self.summary.delta_since(&digest);
                let digest = self.summary.digest();
                self.send(from, ExchangeMessage::Reply { delta, digest });
            }
            ExchangeMessage::Reply { delta, digest } => {
                self.absorb(&delta);
                let back = self.summary.delta_since(&digest);
                if !back.is_empty() {
                    self.send(from, ExchangeMessage::Delta(back));
                }
            }
            ExchangeMessage::Delta(delta) => self.absorb(&delta),
            ExchangeMessage::Push(delta) => {
                // Only what was news here travels on, so a write stops
                // spreading once the members it reaches already have it.
                let news = delta.as_summary().delta_since(&self.summary.digest());
                self.absorb(&news);
                self.push(news, Some(&from));
            }
        }
    }

    fn absorb(&mut self, delta: &Delta) {
        if let Some(stamp) = delta.as_summary().max_stamp() {
            self.clock.observe(stamp);
        }
        self.summary.apply(delta);
    }

    fn send(&mut self, to: Peer, message: ExchangeMessage) {
        let exchange = Exchange {
            from: self.swim.identity().clone(),
            message,
        };
        let mut bytes = vec![KIND_SUMMARY];
        // Encoding into a growable vector only fails for types postcard
        // cannot express, which these are not; were it to, the message is
        // dropped and the next anti-entropy round repairs the loss.
        let Ok(bytes) = postcard::to_extend(&exchange, std::mem::take(&mut bytes)) else {
            return;
        };
        self.queue.stats.summary_packets += 1;
        self.queue.stats.summary_bytes += bytes.len() as u64;
        self.queue.output.packets.push(Outgoing { to, bytes });
    }

    /// Up to `n` distinct random members, not `except`.
    fn random_peers(&mut self, n: usize, except: Option<&Peer>) -> Vec<Peer> {
        let mut pool: Vec<Peer> = self
            .swim
            .iter_members()
            .map(|m| m.id())
            .filter(|p| except.is_none_or(|e| e.node != p.node))
            .cloned()
            .collect();
        let mut chosen = Vec::with_capacity(n.min(pool.len()));
        while chosen.len() < n && !pool.is_empty() {
            let i = self.rng.random_range(0..pool.len());
            chosen.push(pool.swap_remove(i));
        }
        chosen
    }
}

fn millis(now: Duration) -> u64 {
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use state::Name;

    fn member(node: u64) -> Gossip {
        let me = Peer {
            node,
            region: Name::new("region", "eu-west").unwrap(),
            addr: "10.0.0.1:7946".parse().unwrap(),
            bump: 0,
        };
        Gossip::new(me, GossipConfig::wan(NonZeroU32::new(3).unwrap()), node)
    }

    #[test]
    fn bad_packets_are_refused_without_changing_anything() {
        let mut g = member(1);
        let before = g.summary().clone();
        assert!(matches!(
            g.handle_packet(&[], Duration::ZERO),
            Err(GossipError::Empty)
        ));
        assert!(matches!(
            g.handle_packet(&[9, 1, 2], Duration::ZERO),
            Err(GossipError::UnknownKind(9))
        ));
        assert!(matches!(
            g.handle_packet(&[KIND_SUMMARY, 0xff, 0xff], Duration::ZERO),
            Err(GossipError::Decode(_))
        ));
        assert_eq!(g.summary(), &before);
        assert_eq!(g.num_members(), 0);
    }

    #[test]
    fn a_new_member_arms_anti_entropy_and_a_lone_round_sends_nothing() {
        let mut g = member(1);
        let out = g.drain();
        assert_eq!(out.timers, vec![(ANTI_ENTROPY, Tick::AntiEntropy)]);
        g.handle_timer(Tick::AntiEntropy, ANTI_ENTROPY).unwrap();
        let out = g.drain();
        assert!(out.packets.is_empty(), "nobody to talk to");
        assert_eq!(out.timers, vec![(ANTI_ENTROPY, Tick::AntiEntropy)]);
    }

    #[test]
    fn a_pushed_write_is_applied_and_its_clock_observed() {
        let mut writer = member(1);
        writer.report_region(RegionStatus::default(), Duration::from_secs(100));
        let stamp = writer.summary().max_stamp().unwrap();
        let exchange = Exchange {
            from: writer.identity().clone(),
            message: ExchangeMessage::Push(writer.summary().delta_since(&Digest::default())),
        };
        let bytes = postcard::to_extend(&exchange, vec![KIND_SUMMARY]).unwrap();
        let mut reader = member(2);
        reader.handle_packet(&bytes, Duration::ZERO).unwrap();
        assert_eq!(reader.summary(), writer.summary());
        // The reader's clock is at zero, but its next write wins anyway.
        assert!(reader.stamp(Duration::ZERO) > stamp);
    }

    const ANTI_ENTROPY: Duration = super::super::config::ANTI_ENTROPY_EVERY;
}
