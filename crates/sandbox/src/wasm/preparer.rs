//! The preparer: one thread per engine that keeps every [`super::ColdPool`]
//! filled, off the request path.
//!
//! It sleeps until a pool asks (its ready instances fell to half its
//! target, or it has used batches to tear down) or [`ROUND`] passes, then
//! visits every pool: re-estimates its rate and target, tears down its used
//! batches and prepares new ones. Pools are held weakly: a dropped pool is
//! forgotten at the next round.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::cold::PoolShared;
use crate::SandboxError;

/// The longest the preparer sleeps between two rounds.
const ROUND: Duration = Duration::from_millis(100);

/// What the preparer thread and the pools share.
pub(crate) struct PreparerState {
    pools: Mutex<Vec<Weak<PoolShared>>>,
    /// Set by a pool that asked; the thread waits on it.
    asked: Mutex<bool>,
    wake: Condvar,
    stop: AtomicBool,
}

impl PreparerState {
    /// Adds a pool to the rounds.
    pub(crate) fn register(&self, pool: &Arc<PoolShared>) {
        self.pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(pool));
    }

    /// Wakes the thread for a round now.
    pub(crate) fn wake(&self) {
        *self.asked.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_one();
    }

    /// Waits until asked or a round's time passed; false once stopping.
    fn wait(&self) -> bool {
        let mut asked = self.asked.lock().unwrap_or_else(|p| p.into_inner());
        if !*asked && !self.stop.load(Ordering::Acquire) {
            asked = self
                .wake
                .wait_timeout(asked, ROUND)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        *asked = false;
        !self.stop.load(Ordering::Acquire)
    }

    /// One round over every pool still alive.
    fn round(&self) {
        let pools: Vec<Arc<PoolShared>> = {
            let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
            pools.retain(|p| p.strong_count() > 0);
            pools.iter().filter_map(Weak::upgrade).collect()
        };
        let now = Instant::now();
        for pool in pools {
            pool.update_target(now);
            // A pool that cannot prepare now (its node is at its live
            // limit, its start function fails) serves inline starts, which
            // surface the error to the request; it is tried again next
            // round.
            let _: Result<usize, SandboxError> = pool.refill();
        }
    }
}

/// The preparer thread of one engine; dropping it stops the thread.
pub(crate) struct Preparer {
    state: Arc<PreparerState>,
    thread: Option<JoinHandle<()>>,
}

impl Preparer {
    pub(crate) fn start() -> Result<Preparer, SandboxError> {
        let state = Arc::new(PreparerState {
            pools: Mutex::new(Vec::new()),
            asked: Mutex::new(false),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let looping = state.clone();
        let thread = std::thread::Builder::new()
            .name("dwcp-preparer".into())
            .spawn(move || {
                while looping.wait() {
                    looping.round();
                }
            })
            .map_err(|e| SandboxError::Engine(format!("cannot start the preparer: {e}")))?;
        Ok(Preparer {
            state,
            thread: Some(thread),
        })
    }

    pub(crate) fn state(&self) -> Arc<PreparerState> {
        self.state.clone()
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        self.state.wake();
        if let Some(thread) = self.thread.take() {
            // The engine's last reference may go on the preparer's own
            // thread (a pool it held for a round was the last user): it
            // then ends by itself after this round.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}
