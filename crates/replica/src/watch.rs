//! The engine's watch channel: tokio's semantics (the last value kept,
//! each receiver told once per change it has not seen, an error once every
//! sender is gone), without tokio's random draw.
//!
//! tokio's `watch::Receiver::changed` parks each waiter on one of eight
//! `Notify`s picked at random (from a generator seeded by the operating
//! system), and a send wakes the eight in turn: so which of several waiting
//! tasks runs first after a change differs from one process to the next.
//! openraft 0.10 waits on watch channels everywhere (its metrics, the
//! replication streams' data, I/O and commit progress), and in a simulation
//! in virtual time that order decides whether a write catches an append
//! already on its way, i.e. how long it takes. Here every waiter parks on
//! one `Notify`, whose order is that of the waits: a seeded simulation is
//! the same run every time. One `Notify` costs nothing the engine notices:
//! its channels have a handful of receivers.
//!
//! Invariant: the version moves only while the value's write lock is held,
//! so a receiver that reads the version under the read lock has seen
//! exactly that value.

use std::ops::Deref;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use openraft::async_runtime::watch::{
    RecvError, SendError, Watch as WatchChannel, WatchReceiver, WatchSender,
};
use openraft::{OptionalSend, OptionalSync};
use tokio::sync::Notify;

/// The watch channel of [`crate::runtime::Runtime`].
pub struct Watch;

struct Shared<T> {
    value: RwLock<T>,
    /// Changes so far; moves only under `value`'s write lock.
    version: AtomicU64,
    senders: AtomicUsize,
    receivers: AtomicUsize,
    changed: Notify,
}

impl<T> Shared<T> {
    fn read(&self) -> RwLockReadGuard<'_, T> {
        // Plain data: a panic elsewhere leaves it usable.
        self.value.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the value with `modify`; tells the waiters if it says it
    /// did.
    fn modify(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let modified = {
            let mut value = self.value.write().unwrap_or_else(|p| p.into_inner());
            let modified = modify(&mut value);
            if modified {
                self.version.fetch_add(1, Ordering::SeqCst);
            }
            modified
        };
        if modified {
            self.changed.notify_waiters();
        }
        modified
    }
}

/// A reference to the value; holds its read lock.
pub struct Ref<'a, T>(RwLockReadGuard<'a, T>);

impl<T> Deref for Ref<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// The sending half; the channel closes when the last one is dropped.
pub struct Sender<T>(Arc<Shared<T>>);

/// A receiving half, with the version it has seen.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    seen: u64,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.senders.fetch_add(1, Ordering::SeqCst);
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.0.senders.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.changed.notify_waiters();
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.fetch_add(1, Ordering::SeqCst);
        Receiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.receivers.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WatchChannel for Watch {
    type Sender<T: OptionalSend + OptionalSync> = Sender<T>;
    type Receiver<T: OptionalSend + OptionalSync> = Receiver<T>;
    type Ref<'a, T: OptionalSend + 'a> = Ref<'a, T>;

    fn channel<T: OptionalSend + OptionalSync>(init: T) -> (Sender<T>, Receiver<T>) {
        let shared = Arc::new(Shared {
            value: RwLock::new(init),
            version: AtomicU64::new(0),
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
            changed: Notify::new(),
        });
        let receiver = Receiver {
            shared: shared.clone(),
            seen: 0,
        };
        (Sender(shared), receiver)
    }
}

impl<T: OptionalSend + OptionalSync> WatchSender<Watch, T> for Sender<T> {
    fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.0.receivers.load(Ordering::SeqCst) == 0 {
            return Err(SendError(value));
        }
        self.0.modify(|current| {
            *current = value;
            true
        });
        Ok(())
    }

    fn send_if_modified<F>(&self, modify: F) -> bool
    where
        F: FnOnce(&mut T) -> bool,
    {
        self.0.modify(modify)
    }

    fn borrow_watched(&self) -> Ref<'_, T> {
        Ref(self.0.read())
    }

    fn subscribe(&self) -> Receiver<T> {
        self.0.receivers.fetch_add(1, Ordering::SeqCst);
        let seen = {
            let _value = self.0.read();
            self.0.version.load(Ordering::SeqCst)
        };
        Receiver {
            shared: self.0.clone(),
            seen,
        }
    }
}

impl<T: OptionalSend + OptionalSync> WatchReceiver<Watch, T> for Receiver<T> {
    async fn changed(&mut self) -> Result<(), RecvError> {
        loop {
            // Registered before the check, so a change between the check
            // and the wait still wakes this waiter.
            let mut notified = pin!(self.shared.changed.notified());
            notified.as_mut().enable();
            let version = self.shared.version.load(Ordering::SeqCst);
            if version != self.seen {
                self.seen = version;
                return Ok(());
            }
            if self.shared.senders.load(Ordering::SeqCst) == 0 {
                return Err(RecvError(()));
            }
            notified.await;
        }
    }

    fn borrow_watched(&self) -> Ref<'_, T> {
        Ref(self.shared.read())
    }

    fn borrow_and_update(&mut self) -> Ref<'_, T> {
        let value = self.shared.read();
        self.seen = self.shared.version.load(Ordering::SeqCst);
        Ref(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_receiver_hears_each_change_once_and_the_last_sender_closes() {
        let (tx, mut rx) = Watch::channel(0u32);
        let mut late = tx.subscribe();
        tx.send(1).expect("a receiver is alive");
        tx.send(2).expect("a receiver is alive");
        rx.changed().await.expect("a change was sent");
        assert_eq!(*rx.borrow_watched(), 2);
        // Both sends were seen by the one `changed`: the next one waits.
        let waited = tokio::time::timeout(Duration::from_millis(20), rx.changed()).await;
        assert!(waited.is_err(), "no change since");
        // A clone has seen what its original has seen.
        let mut clone = rx.clone();
        assert!(
            tokio::time::timeout(Duration::from_millis(20), clone.changed())
                .await
                .is_err()
        );
        assert!(!tx.send_if_modified(|_| false));
        assert!(
            tokio::time::timeout(Duration::from_millis(20), rx.changed())
                .await
                .is_err()
        );
        assert!(tx.send_if_modified(|v| {
            *v = 3;
            true
        }));
        assert_eq!(*late.borrow_and_update(), 3);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), late.changed())
                .await
                .is_err()
        );
        // A waiter is woken by a send from another task.
        assert_eq!(*rx.borrow_and_update(), 3);
        let waiter = tokio::spawn(async move {
            rx.changed().await.expect("a change is coming");
            *rx.borrow_watched()
        });
        tokio::task::yield_now().await;
        tx.send(4).expect("a receiver is alive");
        assert_eq!(waiter.await.expect("the waiter ran"), 4);
        // The last sender gone: a change not yet seen is still told, then
        // the channel reports closed.
        let second = tx.clone();
        second.send(5).expect("receivers are alive");
        drop(tx);
        drop(second);
        late.changed().await.expect("5 was not seen yet");
        assert!(late.changed().await.is_err());
        drop(late);
        drop(clone);
    }

    #[test]
    fn a_send_with_no_receiver_fails() {
        let (tx, rx) = Watch::channel(0u32);
        drop(rx);
        assert!(tx.send(1).is_err());
        let rx = tx.subscribe();
        assert!(tx.send(2).is_ok());
        assert_eq!(*rx.borrow_watched(), 2);
    }
}
