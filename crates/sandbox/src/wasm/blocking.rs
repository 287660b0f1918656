//! Host calls that could block past a deadline.
//!
//! Epoch interruption stops guest *code* at its deadline, but a guest
//! blocked inside a host call runs no code: WASI's own `poll_oneoff` with a
//! clock subscription of an hour would hold the host thread for an hour.
//! DWCP links its own `poll_oneoff` instead. It sleeps for the shortest
//! clock subscription — awaiting the executor's timer, so that the worker
//! thread serves other requests meanwhile, or sleeping the thread when the
//! guest runs under [`super::sync::block_on`] — except that a sleep that
//! would pass the invocation's deadline ends the invocation as timed out at
//! once; file descriptor
//! subscriptions are ready at once (stdio are in-memory pipes here and
//! granted files are regular files), so they never sleep. Unlike WASI's
//! implementation it does not check that a subscribed descriptor is open:
//! the read or write that follows reports that.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::{Caller, Extern, Linker, Memory, Trap};

use super::WASI_MODULE;
use super::store::StoreState;
use super::sync::in_sync_call;

/// Size of one WASI preview 1 `subscription` record.
const SUBSCRIPTION_BYTES: usize = 48;
/// Size of one WASI preview 1 `event` record.
const EVENT_BYTES: usize = 32;
/// The most subscriptions one call may carry.
const MAX_SUBSCRIPTIONS: u32 = 4096;
const CLOCK_REALTIME: u32 = 0;
const LAST_CLOCK: u32 = 3;
const SUBSCRIPTION_CLOCK_ABSTIME: u16 = 1;
const EVENTTYPE_CLOCK: u8 = 0;
const EVENTTYPE_FD_WRITE: u8 = 2;
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;

/// The deadline clock a guard reads: ticks so far and the tick length.
#[derive(Clone)]
pub(crate) struct DeadlineClock {
    pub(crate) ticks: Arc<AtomicU64>,
    pub(crate) tick: Duration,
}

impl DeadlineClock {
    pub(crate) fn now(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }

    /// Time left before `deadline_tick`, never negative.
    fn left(&self, deadline_tick: u64) -> Duration {
        let ticks = deadline_tick.saturating_sub(self.now());
        self.tick
            .saturating_mul(u32::try_from(ticks).unwrap_or(u32::MAX))
    }
}

/// One parsed subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Subscription {
    Clock { userdata: u64, wait: Duration },
    Fd { userdata: u64, kind: u8 },
}

/// Replaces `poll_oneoff` in `linker` (which already holds WASI) with the
/// deadline-aware one.
pub(crate) fn link_poll_oneoff(
    linker: &mut Linker<StoreState>,
    clock: DeadlineClock,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap_async(
        WASI_MODULE,
        "poll_oneoff",
        move |mut caller: Caller<'_, StoreState>,
              (subs, events, count, nevents): (i32, i32, i32, i32)| {
            let clock = clock.clone();
            Box::new(async move {
                let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
                    return Ok(ERRNO_FAULT);
                };
                let count = match u32::try_from(count) {
                    Ok(c) if (1..=MAX_SUBSCRIPTIONS).contains(&c) => c as usize,
                    _ => return Ok(ERRNO_INVAL),
                };
                let mut raw = vec![0u8; count * SUBSCRIPTION_BYTES];
                if memory.read(&caller, addr(subs), &mut raw).is_err() {
                    return Ok(ERRNO_FAULT);
                }
                let parsed: Option<Vec<Subscription>> =
                    raw.chunks_exact(SUBSCRIPTION_BYTES).map(parse).collect();
                let Some(parsed) = parsed else {
                    return Ok(ERRNO_INVAL);
                };
                let fired = match sleep_for(&parsed) {
                    Sleep::None => fired(&parsed, Duration::ZERO),
                    Sleep::For(wait) => {
                        if wait > clock.left(caller.data().deadline_tick) {
                            return Err(wasmtime::Error::new(Trap::Interrupt));
                        }
                        sleep(wait).await;
                        fired(&parsed, wait)
                    }
                };
                Ok(write_events(&memory, &mut caller, events, nevents, &fired))
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Waits `wait`: on the executor's timer when the guest is polled by a
/// tokio runtime (the worker serves others meanwhile), else by sleeping
/// this thread (a synchronous caller, which has nothing else to do).
async fn sleep(wait: Duration) {
    if !in_sync_call() && tokio::runtime::Handle::try_current().is_ok() {
        tokio::time::sleep(wait).await;
    } else {
        std::thread::sleep(wait);
    }
}

fn addr(ptr: i32) -> usize {
    ptr as u32 as usize
}

fn parse(sub: &[u8]) -> Option<Subscription> {
    let u64_at = |at: usize| sub.get(at..at + 8)?.try_into().ok().map(u64::from_le_bytes);
    let userdata = u64_at(0)?;
    match sub[8] {
        EVENTTYPE_CLOCK => {
            let id = u32::from_le_bytes(sub.get(16..20)?.try_into().ok()?);
            let timeout = u64_at(24)?;
            let flags = u16::from_le_bytes(sub.get(40..42)?.try_into().ok()?);
            if id > LAST_CLOCK {
                return None;
            }
            let wait = if flags & SUBSCRIPTION_CLOCK_ABSTIME == 0 {
                timeout
            } else if id == CLOCK_REALTIME {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .ok()?
                    .as_nanos();
                u64::try_from(u128::from(timeout).saturating_sub(now)).unwrap_or(u64::MAX)
            } else {
                // The other clocks start near zero for a context, so waiting
                // until `timeout` takes at most `timeout`.
                timeout
            };
            Some(Subscription::Clock {
                userdata,
                wait: Duration::from_nanos(wait),
            })
        }
        kind @ 1..=EVENTTYPE_FD_WRITE => Some(Subscription::Fd { userdata, kind }),
        _ => None,
    }
}

enum Sleep {
    None,
    For(Duration),
}

/// Descriptors are ready at once; otherwise the shortest clock wins.
fn sleep_for(subs: &[Subscription]) -> Sleep {
    if subs.iter().any(|s| matches!(s, Subscription::Fd { .. })) {
        return Sleep::None;
    }
    subs.iter()
        .filter_map(|s| match s {
            Subscription::Clock { wait, .. } => Some(*wait),
            Subscription::Fd { .. } => None,
        })
        .min()
        .map_or(Sleep::None, Sleep::For)
}

/// The subscriptions that fire after `slept`.
fn fired(subs: &[Subscription], slept: Duration) -> Vec<Subscription> {
    subs.iter()
        .copied()
        .filter(|s| match s {
            Subscription::Fd { .. } => true,
            Subscription::Clock { wait, .. } => *wait <= slept,
        })
        .collect()
}

fn write_events(
    memory: &Memory,
    caller: &mut Caller<'_, StoreState>,
    events: i32,
    nevents: i32,
    fired: &[Subscription],
) -> i32 {
    let mut out = vec![0u8; fired.len() * EVENT_BYTES];
    for (event, sub) in out.chunks_exact_mut(EVENT_BYTES).zip(fired) {
        let (userdata, kind) = match *sub {
            Subscription::Clock { userdata, .. } => (userdata, EVENTTYPE_CLOCK),
            Subscription::Fd { userdata, kind } => (userdata, kind),
        };
        event[0..8].copy_from_slice(&userdata.to_le_bytes());
        // error (u16 at 8) stays 0: success; nbytes and flags stay 0.
        event[10] = kind;
    }
    let count = (fired.len() as u32).to_le_bytes();
    if memory.write(&mut *caller, addr(events), &out).is_err()
        || memory.write(&mut *caller, addr(nevents), &count).is_err()
    {
        return ERRNO_FAULT;
    }
    ERRNO_SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(userdata: u64, ns: u64, flags: u16, id: u32) -> Vec<u8> {
        let mut s = vec![0u8; SUBSCRIPTION_BYTES];
        s[0..8].copy_from_slice(&userdata.to_le_bytes());
        s[8] = EVENTTYPE_CLOCK;
        s[16..20].copy_from_slice(&id.to_le_bytes());
        s[24..32].copy_from_slice(&ns.to_le_bytes());
        s[40..42].copy_from_slice(&flags.to_le_bytes());
        s
    }

    #[test]
    fn the_shortest_clock_fires_and_descriptors_never_sleep() {
        let a = parse(&clock(1, 5_000, 0, 1)).unwrap();
        let b = parse(&clock(2, 9_000, 0, 1)).unwrap();
        let Sleep::For(wait) = sleep_for(&[a, b]) else {
            panic!("two clocks must sleep");
        };
        assert_eq!(wait, Duration::from_nanos(5_000));
        assert_eq!(fired(&[a, b], wait), vec![a]);
        let mut fd = vec![0u8; SUBSCRIPTION_BYTES];
        fd[8] = 1;
        let fd = parse(&fd).unwrap();
        assert!(matches!(sleep_for(&[a, fd]), Sleep::None));
        assert_eq!(fired(&[a, fd], Duration::ZERO), vec![fd]);
    }

    #[test]
    fn absolute_realtime_in_the_past_does_not_wait_and_bad_input_is_refused() {
        let past = parse(&clock(1, 1, SUBSCRIPTION_CLOCK_ABSTIME, CLOCK_REALTIME)).unwrap();
        assert_eq!(
            past,
            Subscription::Clock {
                userdata: 1,
                wait: Duration::ZERO
            }
        );
        assert_eq!(parse(&clock(1, 1, 0, 9)), None, "no such clock");
        let mut bad = vec![0u8; SUBSCRIPTION_BYTES];
        bad[8] = 7;
        assert_eq!(parse(&bad), None, "no such event type");
    }
}
