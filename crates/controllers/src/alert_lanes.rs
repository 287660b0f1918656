//! The order of an alert's notifications at a receiver: "firing" must
//! never arrive after its "resolved".
//!
//! Each notification is delivered by a task of its own with retries
//! (`webhooks.rs`), so without a rule a "firing" still being retried
//! (its receiver was down) could reach the receiver after the
//! "resolved" sent later — an Alertmanager would show the alert active
//! again for four minutes, PagerDuty would reopen the incident. So every
//! alert and target has a lane:
//! - each new notification ([`Lanes::next`]) supersedes the ones before
//!   it in the lane: an older one not yet delivered is not sent again;
//! - a resend of a firing alert ([`Lanes::current`]) supersedes nothing
//!   and is dropped once anything newer was decided;
//! - one attempt at a time per lane ([`Ticket::turn`]): a newer
//!   notification waits for an older one's attempt in flight, so what
//!   the receiver gets last is what the evaluator decided last.
//!
//! Lanes live in the leader's memory with the evaluator; a lane nobody
//! holds a ticket of is forgotten ([`Lanes::prune`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Every alert and target's lane.
#[derive(Default)]
pub struct Lanes {
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
}

/// One alert and target's notifications.
#[derive(Default)]
struct Lane {
    /// The number of the latest notification decided.
    latest: AtomicU64,
    /// Held through one attempt.
    turn: tokio::sync::Mutex<()>,
}

/// One notification's place in its lane.
pub struct Ticket {
    lane: Arc<Lane>,
    number: u64,
}

impl Lanes {
    /// A new notification in `key`'s lane: the latest, superseding the
    /// ones before it.
    pub fn next(&self, key: &str) -> Ticket {
        let lane = self.lane(key);
        let number = lane.latest.fetch_add(1, Ordering::SeqCst) + 1;
        Ticket { lane, number }
    }

    /// A resend of the latest notification in `key`'s lane: dropped if a
    /// newer one is decided before its turn.
    pub fn current(&self, key: &str) -> Ticket {
        let lane = self.lane(key);
        let number = lane.latest.load(Ordering::SeqCst);
        Ticket { lane, number }
    }

    /// Forgets the lanes no ticket is held of (their notifications are
    /// all done).
    pub fn prune(&self) {
        self.map().retain(|_, lane| Arc::strong_count(lane) > 1);
    }

    /// How many lanes are kept.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no lane is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lane(&self, key: &str) -> Arc<Lane> {
        self.map().entry(key.to_string()).or_default().clone()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Lane>>> {
        // A panic while holding it leaves the map as it was (each use is
        // one map operation): its contents are still valid.
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The lane of the notifications of alert `fingerprint` to one target
/// (`target`: anything that tells targets apart, e.g. its stored form).
pub fn key(fingerprint: &str, target: &str) -> String {
    format!("{fingerprint}\n{target}")
}

impl Ticket {
    /// Waits for the lane to be free for one attempt; `None` when a newer
    /// notification superseded this one (it must not be sent). Hold the
    /// guard through the attempt.
    pub async fn turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        let guard = self.lane.turn.lock().await;
        (self.lane.latest.load(Ordering::SeqCst) == self.number).then_some(guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_later_notification_supersedes_an_earlier_one_still_retrying() {
        let lanes = Lanes::default();
        let firing = lanes.next(&key("slo-a", "am"));
        assert!(firing.turn().await.is_some(), "its first attempt");
        // Its receiver failed; before the retry, the alert resolved.
        let resolved = lanes.next(&key("slo-a", "am"));
        assert!(resolved.turn().await.is_some());
        assert!(firing.turn().await.is_none(), "never sent after resolved");
        // Another alert's or target's lane is its own.
        assert!(lanes.next(&key("slo-b", "am")).turn().await.is_some());
        assert!(lanes.next(&key("slo-a", "slack")).turn().await.is_some());
        assert!(resolved.turn().await.is_some(), "still the latest");
    }

    #[tokio::test]
    async fn a_resend_is_dropped_once_anything_newer_is_decided() {
        let lanes = Lanes::default();
        let k = key("slo-a", "am");
        let firing = lanes.next(&k);
        let resend = lanes.current(&k);
        // A resend does not supersede the firing it repeats.
        assert!(firing.turn().await.is_some());
        assert!(resend.turn().await.is_some());
        let resolved = lanes.next(&k);
        assert!(resend.turn().await.is_none());
        assert!(resolved.turn().await.is_some());
    }

    #[tokio::test]
    async fn a_newer_notification_waits_for_an_attempt_in_flight() {
        let lanes = Arc::new(Lanes::default());
        let k = key("slo-a", "am");
        let firing = lanes.next(&k);
        let attempt = firing.turn().await.expect("the latest");
        let resolved = lanes.next(&k);
        let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let _turn = resolved.turn().await.expect("the latest");
            sent_tx.send("resolved").unwrap();
        });
        // The resolved one cannot go while the firing attempt is out...
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(sent_rx.try_recv().is_err());
        // ... and goes once it is done.
        drop(attempt);
        task.await.unwrap();
        assert_eq!(sent_rx.recv().await, Some("resolved"));
    }

    #[test]
    fn lanes_nobody_holds_are_forgotten() {
        let lanes = Lanes::default();
        let held = lanes.next(&key("slo-a", "am"));
        drop(lanes.next(&key("slo-b", "am")));
        lanes.prune();
        assert_eq!(lanes.len(), 1);
        drop(held);
        lanes.prune();
        assert!(lanes.is_empty());
    }
}
