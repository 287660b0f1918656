//! Password hashing on a small pool of its own. An argon2id hash or check
//! costs 19 MiB and tens of milliseconds of a core; on tokio's blocking
//! pool, which the gateway's sandboxes run on, a burst of logins would
//! take threads (and hundreds of 19 MiB buffers) from the apps. Here at
//! most [`WORKERS`] run at once, on threads of their own, with at most
//! [`QUEUED`] waiting; past that a request is told at once that the node
//! is busy ([`Busy`], answered 503).

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

/// Hashes computed at once (about 38 MiB of argon2 memory).
pub(crate) const WORKERS: usize = 2;
/// Hashes that may wait for a worker.
pub(crate) const QUEUED: usize = 32;

type Job = Box<dyn FnOnce() + Send>;

/// The pool was full: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many passwords are being checked on this node; try again in a second")]
pub(crate) struct Busy;

/// A fixed set of threads running password hashes.
pub(crate) struct HashPool {
    jobs: SyncSender<Job>,
}

impl HashPool {
    /// `workers` threads with room for `queued` waiting jobs.
    pub(crate) fn new(workers: usize, queued: usize) -> HashPool {
        let (jobs, waiting) = sync_channel::<Job>(queued);
        let waiting = Arc::new(Mutex::new(waiting));
        for i in 0..workers.max(1) {
            let waiting = waiting.clone();
            // A pool without its threads would only ever answer Busy; a
            // thread that cannot start is said so, once.
            if let Err(e) = std::thread::Builder::new()
                .name(format!("dwcp-argon2-{i}"))
                .spawn(move || work(&waiting))
            {
                eprintln!("dwcp api: cannot start password hashing thread {i}: {e}");
            }
        }
        HashPool { jobs }
    }

    /// The process's pool.
    pub(crate) fn global() -> &'static HashPool {
        static POOL: OnceLock<HashPool> = OnceLock::new();
        POOL.get_or_init(|| HashPool::new(WORKERS, QUEUED))
    }

    /// Runs `f` on the pool and waits for its result, or [`Busy`] at once
    /// when [`QUEUED`] jobs already wait.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, Busy>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.submit(f)?.await.map_err(|_| Busy)
    }

    /// Queues `f`, or refuses at once when the queue is full; the result
    /// arrives on the receiver.
    fn submit<T, F>(&self, f: F) -> Result<tokio::sync::oneshot::Receiver<T>, Busy>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The caller may have left; its answer is then dropped.
            let _ = done.send(f());
        });
        match self.jobs.try_send(job) {
            Ok(()) => Ok(result),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy),
        }
    }
}

fn work(waiting: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while taking a job, never while running it.
        let job = match waiting.lock() {
            Ok(rx) => rx.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn runs_at_most_its_workers_at_once_and_refuses_past_its_queue() {
        let pool = HashPool::new(2, 3);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let job = || {
            let (running, most, gate) = (running.clone(), most.clone(), gate.clone());
            move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let _ = gate.lock().unwrap().recv();
                running.fetch_sub(1, Ordering::SeqCst);
            }
        };
        let mut results = vec![pool.submit(job()).unwrap(), pool.submit(job()).unwrap()];
        // Both workers hold a job; three more fill the queue.
        while running.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for _ in 0..3 {
            results.push(pool.submit(job()).unwrap());
        }
        assert_eq!(pool.run(|| ()).await, Err(Busy), "refused at once");
        for _ in 0..5 {
            release.send(()).unwrap();
        }
        for result in results {
            result.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }
}
