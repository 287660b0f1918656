//! The synchronous face of async guests: runs one of this crate's futures
//! to completion on the calling thread.
//!
//! Guests always run through wasmtime's async entry points (on a fiber),
//! so that a server can poll them on its own worker threads and a long
//! guest yields at every epoch tick. Callers without an executor (the
//! [`crate::Sandbox`] trait, `dwcp run`, the preparer thread) use
//! [`block_on`]: a yield then simply polls again, and a guest's sleep in
//! `poll_oneoff` sleeps this thread ([`in_sync_call`] tells it to).

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

thread_local! {
    /// True while this thread is inside [`block_on`].
    static SYNC: Cell<bool> = const { Cell::new(false) };
}

/// Wakes the thread blocked in [`block_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Restores the thread's flag when [`block_on`] returns or unwinds.
struct Restore(bool);

impl Drop for Restore {
    fn drop(&mut self) {
        SYNC.set(self.0);
    }
}

/// Polls `future` on this thread until it is ready, parking the thread
/// while it waits for a wake-up.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let _restore = Restore(SYNC.replace(true));
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            // A spurious unpark only costs one more poll.
            Poll::Pending => std::thread::park(),
        }
    }
}

/// True when the guest running on this thread was called through
/// [`block_on`], so host calls may block the thread instead of awaiting
/// an executor's timer.
pub(crate) fn in_sync_call() -> bool {
    SYNC.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pending until polled `n` times, waking itself each time (as a
    /// guest's epoch yield does).
    struct YieldTimes(u32);

    impl Future for YieldTimes {
        type Output = u32;
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
            if self.0 == 0 {
                return Poll::Ready(7);
            }
            self.0 -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[test]
    fn yields_are_polled_again_and_the_flag_is_scoped() {
        assert!(!in_sync_call());
        assert_eq!(block_on(YieldTimes(3)), 7);
        assert!(block_on(async { in_sync_call() }));
        assert!(!in_sync_call());
    }

    #[test]
    fn a_wake_from_another_thread_ends_the_wait() {
        let (tx, rx) = std::sync::mpsc::channel::<Waker>();
        let waker_thread = std::thread::spawn(move || {
            if let Ok(w) = rx.recv() {
                w.wake();
            }
        });
        let mut sent = Some(tx);
        let out = block_on(std::future::poll_fn(|cx| match sent.take() {
            Some(tx) => {
                tx.send(cx.waker().clone())
                    .expect("the waker thread listens");
                Poll::Pending
            }
            None => Poll::Ready(1),
        }));
        assert_eq!(out, 1);
        waker_thread.join().expect("the waker thread ends");
    }
}
