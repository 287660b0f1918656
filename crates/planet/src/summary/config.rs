//! [`GossipConfig`]: SWIM's timing (foca's [`foca::Config`], every field set
//! here explicitly) and the anti-entropy schedule.

use std::num::{NonZeroU8, NonZeroU32, NonZeroUsize};
use std::time::Duration;

use foca::PeriodicParams;

/// How often members probe, suspect and gossip, and how summaries spread.
#[derive(Clone, Debug)]
pub struct GossipConfig {
    /// SWIM membership (foca).
    pub swim: foca::Config,
    /// Every this often a member picks `anti_entropy_fanout` random peers
    /// and runs a push-pull exchange (digest → delta + digest → delta).
    pub anti_entropy_every: Duration,
    /// Peers per anti-entropy round.
    pub anti_entropy_fanout: usize,
    /// A local write, and any news learned from a pushed write, is pushed
    /// at once to this many random peers (rumour mongering; 0 turns it off
    /// and leaves spreading to anti-entropy alone).
    pub push_fanout: usize,
}

/// Probe period: each member probes one other member this often.
pub const PROBE_PERIOD: Duration = Duration::from_secs(1);
/// How long a direct probe waits for its ack before asking
/// `NUM_INDIRECT_PROBES` others to probe on its behalf. Above the largest
/// measured inter-region RTT (310 ms Ireland ↔ Sydney), so a healthy
/// far-away member is not suspected for its distance.
pub const PROBE_RTT: Duration = Duration::from_millis(400);
/// Members asked to probe indirectly.
pub const NUM_INDIRECT_PROBES: usize = 3;
/// How long a member stays suspect (unrefuted) before it is declared down.
pub const SUSPECT_TO_DOWN: Duration = Duration::from_secs(3);
/// Anti-entropy period.
pub const ANTI_ENTROPY_EVERY: Duration = Duration::from_millis(200);

impl GossipConfig {
    /// The configuration DWCP uses between regions, for a cluster of about
    /// `cluster_size` members. Every foca parameter is spelled out:
    ///
    /// | parameter | value | why |
    /// | --- | --- | --- |
    /// | `probe_period` | 1 s | one probe per member per second |
    /// | `probe_rtt` | 400 ms | above the largest inter-region RTT (310 ms) |
    /// | `num_indirect_probes` | 3 | SWIM's usual k |
    /// | `suspect_to_down_after` | 3 s | three probe periods for the suspect to refute |
    /// | `max_transmissions` | ⌈8·log10(N+1)⌉ | twice foca's and memberlist's multiplier (4), see below |
    /// | `periodic_gossip` | every 200 ms to 3 members | spreads membership updates faster than probes alone |
    /// | `periodic_announce` | every 30 s to 1 member | heals a partition that split the member lists |
    /// | `periodic_announce_to_down_members` | every 65 s to 2 | lets a wrongly-downed member learn it and rejoin |
    /// | `remove_down_after` | 24 h | remembers the dead, so stale packets cannot revive them |
    /// | `notify_down_members` | yes | failover acts on `MemberDown` |
    /// | `max_packet_size` | 1400 bytes | fits an Ethernet MTU over UDP |
    ///
    /// Why retransmit more than the usual 4·log10(N+1): an update reaches a
    /// given member only with high probability, and a member that misses
    /// a `Down` finds out only by probing the dead member itself — a whole
    /// extra detection cycle (about 5 s), which the failover budget cannot
    /// afford. In the 30-member driver with the usual multiplier, one seed
    /// in five left a member uninformed until 10 s after the kill; with 8,
    /// none did. The cost is a few bytes more piggybacked per packet.
    ///
    /// So a killed member is suspected within a probe period or a few
    /// (every member probes one member per period, in a shuffled round
    /// robin) plus `probe_rtt`, and declared down `SUSPECT_TO_DOWN` later.
    pub fn wan(cluster_size: NonZeroU32) -> GossipConfig {
        let max_transmissions = max_transmissions(cluster_size);
        let swim = foca::Config {
            probe_period: PROBE_PERIOD,
            probe_rtt: PROBE_RTT,
            num_indirect_probes: nonzero(NUM_INDIRECT_PROBES),
            max_transmissions,
            suspect_to_down_after: SUSPECT_TO_DOWN,
            remove_down_after: Some(Duration::from_secs(24 * 60 * 60)),
            max_packet_size: nonzero(1400),
            notify_down_members: true,
            periodic_announce: Some(PeriodicParams {
                frequency: Duration::from_secs(30),
                num_members: nonzero(1),
            }),
            periodic_announce_to_down_members: Some(PeriodicParams {
                frequency: Duration::from_secs(65),
                num_members: nonzero(2),
            }),
            periodic_gossip: Some(PeriodicParams {
                frequency: Duration::from_millis(200),
                num_members: nonzero(3),
            }),
        };
        GossipConfig {
            swim,
            anti_entropy_every: ANTI_ENTROPY_EVERY,
            anti_entropy_fanout: 1,
            push_fanout: 3,
        }
    }
}

/// Retransmissions of each membership update: ⌈8·log10(N+1)⌉, at least 1.
fn max_transmissions(cluster_size: NonZeroU32) -> NonZeroU8 {
    let n = f64::from(cluster_size.get()) + 1.0;
    let tx = (8.0 * n.log10()).ceil().clamp(1.0, 255.0);
    // `tx` is in [1, 255], so the cast is exact and non-zero.
    NonZeroU8::new(tx as u8).unwrap_or(NonZeroU8::MIN)
}

fn nonzero(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}
