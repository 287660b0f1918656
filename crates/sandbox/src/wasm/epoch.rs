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

/// What a guest that reached an epoch check does: yield and run on for
/// another [`YIELD_EVERY_TICKS`], or stop because its deadline passed.
pub(crate) fn at_tick(now_tick: u64, deadline_tick: u64) -> wasmtime::UpdateDeadline {
    if now_tick >= deadline_tick {
        wasmtime::UpdateDeadline::Interrupt
    } else {
        wasmtime::UpdateDeadline::Yield(YIELD_EVERY_TICKS)
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
        assert!(matches!(
            at_tick(5, 7),
            wasmtime::UpdateDeadline::Yield(YIELD_EVERY_TICKS)
        ));
        assert!(matches!(at_tick(7, 7), wasmtime::UpdateDeadline::Interrupt));
        assert!(matches!(at_tick(9, 7), wasmtime::UpdateDeadline::Interrupt));
    }
}
