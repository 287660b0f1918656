//! The clock behind wall-clock deadlines: a thread that advances the
//! engine's epoch every tick. Compiled code checks the epoch at function
//! entries and loop back-edges. A guest still running when a tick passes
//! yields to its executor ([`at_tick`]: the worker thread serves other
//! requests, then polls it again) until its deadline, where it traps —
//! also inside its start function — without any signal or thread kill.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::sync::in_sync_call;

pub(crate) struct EpochTicker {
    /// Ticks so far: the engine's epoch, readable by the host (wasmtime
    /// does not expose its own counter).
    pub(crate) ticks: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(
        engine: wasmtime::Engine,
        tick: Duration,
    ) -> Result<EpochTicker, crate::SandboxError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let ticks = Arc::new(AtomicU64::new(0));
        let counter = ticks.clone();
        let thread = std::thread::Builder::new()
            .name("dwcp-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    counter.fetch_add(1, Ordering::Relaxed);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| {
                crate::SandboxError::Engine(format!("cannot start the epoch ticker: {e}"))
            })?;
        Ok(EpochTicker {
            ticks,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Ticks a guest runs between two yields to its executor.
pub(crate) const YIELD_EVERY_TICKS: u64 = 1;

/// What a guest that reached an epoch check does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Yield to the executor, then run on for another [`YIELD_EVERY_TICKS`].
    Yield,
    /// Its deadline passed: stop it.
    Stop,
}

/// The decision at an epoch check, from the tick now and the deadline's.
pub(crate) fn at_tick(now_tick: u64, deadline_tick: u64) -> Tick {
    if now_tick >= deadline_tick {
        Tick::Stop
    } else {
        Tick::Yield
    }
}

/// [`at_tick`]'s decision for wasmtime. Under a tokio runtime a yield goes
/// through `tokio::task::yield_now`, which lets the runtime poll its I/O
/// driver before the guest runs again: a plain wake would put the guest
/// straight back in the run queue, and a worker busy with a spinning guest
/// would look at its sockets only every few dozen turns.
pub(crate) fn update(tick: Tick) -> wasmtime::UpdateDeadline {
    match tick {
        Tick::Stop => wasmtime::UpdateDeadline::Interrupt,
        Tick::Yield if !in_sync_call() && tokio::runtime::Handle::try_current().is_ok() => {
            wasmtime::UpdateDeadline::YieldCustom(
                YIELD_EVERY_TICKS,
                Box::pin(tokio::task::yield_now()),
            )
        }
        Tick::Yield => wasmtime::UpdateDeadline::Yield(YIELD_EVERY_TICKS),
    }
}

/// Ticks to allow for `deadline`: rounded up, plus one because the current
/// tick may be about to end.
pub(crate) fn deadline_ticks(deadline: Duration, tick: Duration) -> u64 {
    let ticks = deadline.as_nanos().div_ceil(tick.as_nanos().max(1));
    u64::try_from(ticks)
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_rounds_up_and_adds_one_tick() {
        let ms = Duration::from_millis(1);
        assert_eq!(deadline_ticks(Duration::from_millis(10), ms), 11);
        assert_eq!(deadline_ticks(Duration::from_micros(1500), ms), 3);
        assert_eq!(deadline_ticks(Duration::MAX, ms), u64::MAX);
    }

    #[test]
    fn a_guest_yields_until_its_deadline_then_stops() {
        assert_eq!(at_tick(5, 7), Tick::Yield);
        assert_eq!(at_tick(7, 7), Tick::Stop);
        assert_eq!(at_tick(9, 7), Tick::Stop);
        // Outside a runtime a yield is a plain one.
        assert!(matches!(
            update(Tick::Yield),
            wasmtime::UpdateDeadline::Yield(YIELD_EVERY_TICKS)
        ));
    }
}
