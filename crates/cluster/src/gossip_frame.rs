//! What a sealed gossip packet carries besides the gossip itself, and the
//! replay check on it (pure: no socket, time as an argument).
//!
//! ```text
//! frame = sender node id (u64 LE) ‖ counter (u64 LE) ‖ sent at, unix ms (u64 LE) ‖ packet
//! ```
//!
//! The frame is sealed whole (AES-256-GCM), so only a holder of the
//! gossip key writes one. The counter grows by one a packet and starts,
//! in each process, at the start time in ms shifted left by 16 bits, so a
//! restarted member continues above what it sent before. A receiver
//! ([`ReplayGuard`]) drops a frame sent more than [`MAX_SKEW_MS`] away from
//! its own clock, and one whose counter it has seen from that sender or
//! that is older than the last [`WINDOW`] counters it saw: a packet
//! recorded off the wire and sent again is dropped, while UDP's own
//! reordering within the window is not.

use std::collections::HashMap;

/// Bytes before the packet: sender, counter, time.
pub const HEADER_BYTES: usize = 24;
/// How far a frame's time may be from the receiver's clock, ms.
pub const MAX_SKEW_MS: u64 = 60_000;
/// How many counters below the highest seen are still accepted once.
pub const WINDOW: u64 = 64;
/// Senders remembered at once (a planet has a few hundred members); past
/// that the one heard from least recently is forgotten.
pub const MAX_SENDERS: usize = 4096;

/// One opened frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub sender: u64,
    pub counter: u64,
    pub unix_ms: u64,
    pub packet: &'a [u8],
}

impl Frame<'_> {
    /// The frame's bytes, ready to be sealed.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES + self.packet.len());
        out.extend(self.sender.to_le_bytes());
        out.extend(self.counter.to_le_bytes());
        out.extend(self.unix_ms.to_le_bytes());
        out.extend(self.packet);
        out
    }
}

/// Reads an opened frame; `None` when it is shorter than its header.
pub fn parse(bytes: &[u8]) -> Option<Frame<'_>> {
    if bytes.len() < HEADER_BYTES {
        return None;
    }
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        u64::from_le_bytes(b)
    };
    Some(Frame {
        sender: word(0),
        counter: word(1),
        unix_ms: word(2),
        packet: &bytes[HEADER_BYTES..],
    })
}

/// The first counter of a process started at `unix_ms`.
pub fn first_counter(unix_ms: u64) -> u64 {
    unix_ms << 16
}

/// Why a frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Its time is more than [`MAX_SKEW_MS`] from ours.
    Stale,
    /// Its counter was seen already, or is below the window.
    Replayed,
}

/// Per sender: the highest counter seen and which of the [`WINDOW`]
/// counters below it were seen (bit i: highest - 1 - i).
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    highest: u64,
    below: u64,
    heard_ms: u64,
}

/// The receiver's memory of counters, per sender.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    senders: HashMap<u64, Seen>,
}

impl ReplayGuard {
    /// Accepts `frame` at `now_ms` (and remembers it) or says why not.
    pub fn admit(&mut self, frame: &Frame<'_>, now_ms: u64) -> Result<(), Dropped> {
        if frame.unix_ms.abs_diff(now_ms) > MAX_SKEW_MS {
            return Err(Dropped::Stale);
        }
        if !self.senders.contains_key(&frame.sender) && self.senders.len() >= MAX_SENDERS {
            self.forget_oldest();
        }
        let counter = frame.counter;
        let Some(seen) = self.senders.get_mut(&frame.sender) else {
            self.senders.insert(
                frame.sender,
                Seen {
                    highest: counter,
                    below: 0,
                    heard_ms: now_ms,
                },
            );
            return Ok(());
        };
        if counter > seen.highest {
            let shift = counter - seen.highest;
            seen.below = if shift > WINDOW {
                0
            } else {
                // The old highest becomes bit shift-1; shift <= 64 here.
                seen.below.checked_shl(shift as u32).unwrap_or(0) | (1 << (shift - 1))
            };
            seen.highest = counter;
        } else {
            let back = seen.highest - counter;
            if back == 0 || back > WINDOW {
                return Err(Dropped::Replayed);
            }
            let bit = 1u64 << (back - 1);
            if seen.below & bit != 0 {
                return Err(Dropped::Replayed);
            }
            seen.below |= bit;
        }
        seen.heard_ms = now_ms;
        Ok(())
    }

    fn forget_oldest(&mut self) {
        if let Some(oldest) = self
            .senders
            .iter()
            .min_by_key(|(_, s)| s.heard_ms)
            .map(|(&id, _)| id)
        {
            self.senders.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn frame(sender: u64, counter: u64, unix_ms: u64) -> Frame<'static> {
        Frame {
            sender,
            counter,
            unix_ms,
            packet: b"swim",
        }
    }

    #[test]
    fn frames_round_trip_and_short_ones_are_refused() {
        let f = frame(7, first_counter(NOW), NOW);
        assert_eq!(parse(&f.encode()), Some(f));
        assert_eq!(parse(&[0; HEADER_BYTES - 1]), None);
    }

    #[test]
    fn a_replayed_frame_is_dropped_and_reordering_within_the_window_is_not() {
        let mut guard = ReplayGuard::default();
        let start = first_counter(NOW);
        assert_eq!(guard.admit(&frame(1, start + 5, NOW), NOW), Ok(()));
        // The same packet again: a replay.
        assert_eq!(
            guard.admit(&frame(1, start + 5, NOW), NOW),
            Err(Dropped::Replayed)
        );
        // Older ones that UDP reordered arrive once each.
        assert_eq!(guard.admit(&frame(1, start + 3, NOW), NOW), Ok(()));
        assert_eq!(
            guard.admit(&frame(1, start + 3, NOW), NOW),
            Err(Dropped::Replayed)
        );
        assert_eq!(guard.admit(&frame(1, start + 4, NOW), NOW), Ok(()));
        // Far ahead, then the old ones are below the window.
        assert_eq!(guard.admit(&frame(1, start + 500, NOW), NOW), Ok(()));
        assert_eq!(
            guard.admit(&frame(1, start + 6, NOW), NOW),
            Err(Dropped::Replayed)
        );
        // Another sender has its own counters.
        assert_eq!(guard.admit(&frame(2, start + 5, NOW), NOW), Ok(()));
        // A restarted sender continues above what it sent before.
        let restarted = first_counter(NOW + 1_000);
        assert_eq!(
            guard.admit(&frame(1, restarted, NOW + 1_000), NOW + 1_000),
            Ok(())
        );
    }

    #[test]
    fn a_frame_sent_too_long_ago_or_ahead_is_dropped() {
        let mut guard = ReplayGuard::default();
        let c = first_counter(NOW);
        assert_eq!(
            guard.admit(&frame(1, c, NOW - MAX_SKEW_MS - 1), NOW),
            Err(Dropped::Stale)
        );
        assert_eq!(
            guard.admit(&frame(1, c, NOW + MAX_SKEW_MS + 1), NOW),
            Err(Dropped::Stale)
        );
        assert_eq!(guard.admit(&frame(1, c, NOW - MAX_SKEW_MS), NOW), Ok(()));
    }

    #[test]
    fn senders_beyond_the_bound_forget_the_least_recent() {
        let mut guard = ReplayGuard::default();
        for s in 0..MAX_SENDERS as u64 + 10 {
            guard.admit(&frame(s, 1, NOW), NOW + s).unwrap();
        }
        assert_eq!(guard.senders.len(), MAX_SENDERS);
        assert!(!guard.senders.contains_key(&0));
    }
}
