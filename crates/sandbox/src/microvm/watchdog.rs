//! Wall-clock deadlines for running vCPUs: one thread per engine that
//! kicks (see [`Kick`]) every run whose deadline passed. A program spinning
//! in user mode never exits on its own; the kick makes its `KVM_RUN` return.
//!
//! The thread sleeps until the earliest deadline, and at most
//! [`WATCH_PERIOD`] when idle, so arming a run whose deadline is further
//! away than that costs a lock and a push, not a wake-up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::kvm::Kick;
use crate::SandboxError;

/// The longest the thread sleeps without looking at the deadlines.
const WATCH_PERIOD: Duration = Duration::from_millis(20);

struct Entry {
    id: u64,
    at: Instant,
    kick: Kick,
    fired: Arc<AtomicBool>,
}

#[derive(Default)]
struct State {
    entries: Vec<Entry>,
    next_id: u64,
    /// When the thread will look next.
    wakes_at: Option<Instant>,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Only pushes, removals and flag stores happen under the lock, so a
        // poisoned state is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The deadline thread of one engine.
pub(crate) struct Watchdog {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    pub(crate) fn start() -> Result<Watchdog, SandboxError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let inner = shared.clone();
        let thread = std::thread::Builder::new()
            .name("dwcp-microvm-watchdog".into())
            .spawn(move || watch(&inner))
            .map_err(|e| SandboxError::Engine(format!("cannot start the microvm watchdog: {e}")))?;
        Ok(Watchdog {
            shared,
            thread: Some(thread),
        })
    }

    /// Kicks `kick` at `at` unless the returned guard is dropped first.
    pub(crate) fn arm(&self, at: Instant, kick: Kick) -> Armed<'_> {
        let fired = Arc::new(AtomicBool::new(false));
        let mut state = self.shared.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.entries.push(Entry {
            id,
            at,
            kick,
            fired: fired.clone(),
        });
        if state.wakes_at.is_none_or(|w| at < w) {
            self.shared.wake.notify_one();
        }
        Armed {
            watchdog: self,
            id,
            fired,
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An armed deadline; dropping it disarms it.
pub(crate) struct Armed<'a> {
    watchdog: &'a Watchdog,
    id: u64,
    fired: Arc<AtomicBool>,
}

impl Armed<'_> {
    /// True once the deadline passed and the vCPU was kicked.
    pub(crate) fn fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        // Removing under the lock is what makes `Kick::kick` sound: once
        // this returns, the watchdog cannot kick this vCPU's thread.
        self.watchdog
            .shared
            .lock()
            .entries
            .retain(|e| e.id != self.id);
    }
}

fn watch(shared: &Shared) {
    let mut state = shared.lock();
    loop {
        if state.stop {
            return;
        }
        let now = Instant::now();
        let mut next = now + WATCH_PERIOD;
        for e in &state.entries {
            if e.fired.load(Ordering::Relaxed) {
                continue;
            }
            if e.at <= now {
                e.fired.store(true, Ordering::Release);
                e.kick.kick();
            } else {
                next = next.min(e.at);
            }
        }
        state.wakes_at = Some(next);
        let wait = next.saturating_duration_since(now);
        state = shared
            .wake
            .wait_timeout(state, wait)
            .map(|(s, _)| s)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}
