//! The engine's async runtime: tokio, as openraft's own, except that the
//! engine's random draws (its election timeouts, the phase of its ticks)
//! come from a generator a simulation can seed ([`seed_this_thread`]), so
//! that a run in virtual time is the same run every time for one seed.
//! Outside a simulation they are seeded from the operating system, as
//! before. Its watch channel is our own ([`crate::watch`]), whose waiters
//! wake in the order they waited, not in tokio's random one.

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

use openraft::{AsyncRuntime, OptionalSend, TokioRuntime};
use rand::SeedableRng;
use rand::rngs::SmallRng;

thread_local! {
    /// The next seed for the engine's draws on this thread, once seeded.
    static SEED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Makes the engine's random draws on this thread follow from `seed`: for
/// simulations on a single-threaded runtime, whose every replica runs on
/// this thread.
pub fn seed_this_thread(seed: u64) {
    SEED.set(Some(seed));
}

/// SplitMix64's step: the next seed of a sequence.
fn next_seed(seed: u64) -> u64 {
    let z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// tokio, with seedable draws.
#[derive(Debug)]
pub struct Runtime(TokioRuntime);

type Tokio = TokioRuntime;

impl AsyncRuntime for Runtime {
    type JoinError = <Tokio as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <Tokio as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <Tokio as AsyncRuntime>::Sleep;
    type Instant = <Tokio as AsyncRuntime>::Instant;
    type TimeoutError = <Tokio as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = <Tokio as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = SmallRng;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        Tokio::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        Tokio::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        Tokio::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        Tokio::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        Tokio::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        Tokio::is_panic(join_error)
    }

    fn thread_rng() -> SmallRng {
        match SEED.get() {
            Some(seed) => {
                SEED.set(Some(next_seed(seed)));
                SmallRng::seed_from_u64(seed)
            }
            None => rand::make_rng(),
        }
    }

    type Mpsc = <Tokio as AsyncRuntime>::Mpsc;
    // Not tokio's: its waiters wake in a random order (see `watch`).
    type Watch = crate::watch::Watch;
    type Oneshot = <Tokio as AsyncRuntime>::Oneshot;
    type Mutex<T: OptionalSend + 'static> = <Tokio as AsyncRuntime>::Mutex<T>;

    fn new(threads: usize) -> Self {
        Runtime(Tokio::new(threads))
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.0.block_on(future)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn a_seeded_thread_draws_the_same_sequence_again() {
        let draw = |seed| {
            seed_this_thread(seed);
            (0..4)
                .map(|_| Runtime::thread_rng().random_range(0..1_000_000u64))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }
}
