//! Cold pools: the gateway's per-request start. Every invocation runs on an
//! instance that has never run one, taken from instances prepared ahead of
//! time, off the request path.
//!
//! A pool holds *batches*: [`SandboxGroup`]s whose members share one
//! wasmtime `Store` (the host-side container), so that creating and tearing
//! down a store is paid once per batch. Members share no WebAssembly state:
//! each has its own memory, tables and globals, and a command's WASI context
//! is made for its invocation and dropped after it. A request leases the
//! front batch, runs on its next never-used member, and hands the batch back
//! (or, used up, to the teardown list). A request whose guest is still
//! running keeps its batch; the next request takes another. When no batch is
//! ready the request starts one instance itself (an *inline start*, counted).
//!
//! The engine's [`Preparer`](super::preparer::Preparer) thread refills the
//! pool to its target ([`ready_target`]: the placement's count, or what the
//! observed rate uses up in [`REFILL_HORIZON`]) and tears used batches down.
//! What it spends is counted ([`ColdStats`]), so that every rate reported
//! for the cold path can include it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::SandboxGroup;
use super::preparer::PreparerState;
use super::template::WasmTemplate;
use crate::{Invocation, Output, SandboxError};

/// Most never-used instances per batch (one wasmtime store each).
pub const BATCH: usize = 16;

/// How long the ready instances should last at the observed rate: the
/// preparer is asked for more when half are gone and normally refills
/// within a few milliseconds; this leaves it room on a busy machine.
pub const REFILL_HORIZON: Duration = Duration::from_millis(20);

/// How often the preparer re-estimates a pool's request rate.
pub(crate) const RATE_WINDOW: Duration = Duration::from_millis(250);

/// How many never-used instances a pool keeps ready: what the observed
/// rate uses up in [`REFILL_HORIZON`], at least the count the scheduler
/// placed on this node (and at least one), at most `cap` (the share of the
/// node's live sandboxes one pool may hold).
///
/// ```
/// use sandbox::wasm::ready_target;
/// assert_eq!(ready_target(0, 0.0, 250), 1); // idle: one
/// assert_eq!(ready_target(40, 0.0, 250), 40); // the placement's count
/// assert_eq!(ready_target(1, 5_000.0, 250), 100); // 5,000/s for 20 ms
/// assert_eq!(ready_target(1, 1e6, 250), 250); // never past the cap
/// ```
pub fn ready_target(placed: usize, rate_per_s: f64, cap: usize) -> usize {
    let by_rate = (rate_per_s.max(0.0) * REFILL_HORIZON.as_secs_f64()).ceil();
    // A float past usize::MAX saturates in `as`.
    let by_rate = by_rate as usize;
    by_rate.max(placed).max(1).min(cap.max(1))
}

/// The share of the node's live sandboxes that ready instances of all
/// pools together may fill: the preparer stops at it, so that the rest is
/// left for inline starts, warm pools and batches in use.
pub const READY_SHARE: (usize, usize) = (3, 4);

/// A group of never-used instances and how many of them have run.
pub(crate) struct Batch {
    group: SandboxGroup,
    next: usize,
}

impl Batch {
    fn left(&self) -> usize {
        self.group.len() - self.next
    }
}

/// Ready batches, the front one possibly started.
#[derive(Default)]
struct Ready {
    batches: VecDeque<Batch>,
    /// Never-used instances in `batches`.
    instances: usize,
}

#[derive(Default)]
struct Counters {
    served: AtomicU64,
    inline: AtomicU64,
    prepared: AtomicU64,
    prepare_ns: AtomicU64,
    torn_down: AtomicU64,
    teardown_ns: AtomicU64,
}

/// The observed request rate, kept by the preparer.
struct Rate {
    at: Instant,
    served: u64,
    per_second: f64,
}

/// What a pool and its preparer share.
pub(crate) struct PoolShared {
    template: Arc<WasmTemplate>,
    ready: Mutex<Ready>,
    spent: Mutex<Vec<Batch>>,
    target: AtomicUsize,
    placed: AtomicUsize,
    /// Most instances kept ready: a quarter of the node's live sandboxes,
    /// so that leased, used and other pools' instances fit beside them.
    cap: usize,
    /// Instances per batch: [`BATCH`], or the cap when it is smaller.
    batch: usize,
    /// A request asked the preparer to come; it clears this when it does.
    asked: AtomicBool,
    counters: Counters,
    rate: Mutex<Rate>,
    preparer: Arc<PreparerState>,
}

/// What a pool did so far: the preparation it needed and its starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ColdStats {
    /// Never-used instances ready now.
    pub ready: usize,
    /// How many it aims to keep ready.
    pub target: usize,
    /// Invocations served.
    pub served: u64,
    /// Of those, served by an instance started on the request's own path
    /// because none was ready.
    pub inline_starts: u64,
    /// Instances prepared ahead of time.
    pub prepared: u64,
    /// Time spent preparing them, in ns (store creation and
    /// instantiation, start functions included).
    pub prepare_ns: u64,
    /// Instances torn down after use (or trimmed unused).
    pub torn_down: u64,
    /// Time spent tearing them down, in ns.
    pub teardown_ns: u64,
}

/// Never-used instances of one template, one per invocation, prepared
/// ahead of time by the engine's preparer thread: the cold start the
/// gateway runs per request. See the module documentation.
///
/// ```
/// use sandbox::{Artifact, ColdPool, Engine, Invocation, Limits, Template, WasmConfig, WasmEngine};
/// let engine = WasmEngine::new(WasmConfig { max_live: 64, ..WasmConfig::fast() }).unwrap();
/// let wat = r#"(module (memory 1) (func (export "run")))"#;
/// let template = engine.prepare(&Artifact::new(wat.into()), Limits::default()).unwrap();
/// let entry = template.entry("run").unwrap();
/// let pool = ColdPool::new(template, 1);
/// pool.refill().unwrap(); // the preparer does this off the request path
/// pool.invoke_blocking(Invocation::Call { entry, input: b"" }).unwrap();
/// assert_eq!(pool.stats().served, 1);
/// assert_eq!(pool.stats().inline_starts, 0);
/// ```
pub struct ColdPool {
    shared: Arc<PoolShared>,
}

impl ColdPool {
    /// A pool for `template` whose target starts at `placed` instances (the
    /// count the scheduler placed on this node); it registers with the
    /// engine's preparer, which fills it.
    pub fn new(template: Arc<WasmTemplate>, placed: usize) -> ColdPool {
        let cap = (template.shared.config.max_live as usize / 4).max(1);
        let batch = BATCH.min(cap);
        let preparer = template.shared.preparer.state();
        let shared = Arc::new(PoolShared {
            target: AtomicUsize::new(ready_target(placed, 0.0, cap)),
            placed: AtomicUsize::new(placed),
            cap,
            batch,
            template,
            ready: Mutex::new(Ready::default()),
            spent: Mutex::new(Vec::new()),
            asked: AtomicBool::new(false),
            counters: Counters::default(),
            rate: Mutex::new(Rate {
                at: Instant::now(),
                served: 0,
                per_second: 0.0,
            }),
            preparer,
        });
        shared.preparer.register(&shared);
        shared.ask();
        ColdPool { shared }
    }

    /// The template the pool's instances are started from.
    pub fn template(&self) -> &Arc<WasmTemplate> {
        &self.shared.template
    }

    /// Sets the count the scheduler placed on this node: the pool keeps at
    /// least that many ready.
    pub fn set_placed(&self, placed: usize) {
        self.shared.placed.store(placed, Ordering::Relaxed);
        self.shared.update_target(Instant::now());
        self.shared.ask();
    }

    /// Runs `invocation` on an instance that has never run one; the
    /// instance is never used again. `started` is told how long the start
    /// took: from this call to the guest's entry point being called (the
    /// lease of a prepared instance, its limits armed, a command's WASI
    /// context made — or, when none was ready, the inline start).
    ///
    /// A short guest finishes in the future's first poll; a long one
    /// yields to the executor at every epoch tick. Dropping the future
    /// stops the guest.
    pub async fn invoke(
        &self,
        invocation: Invocation<'_>,
        started: impl FnOnce(Duration) + Send,
    ) -> Result<Output, SandboxError> {
        let begun = Instant::now();
        let mut lease = self.lease().await?;
        let mut started = Some(started);
        let mut entering = || {
            if let Some(f) = started.take() {
                f(begun.elapsed());
            }
        };
        let batch = lease.batch_mut();
        let index = batch.next;
        batch.next += 1;
        let result = batch
            .group
            .invoke_async(index, invocation, &mut entering)
            .await;
        lease.finished = true;
        result
    }

    /// [`ColdPool::invoke`] on this thread, blocking it.
    pub fn invoke_blocking(&self, invocation: Invocation<'_>) -> Result<Output, SandboxError> {
        super::sync::block_on(self.invoke(invocation, |_| {}))
    }

    /// Tears down used batches and prepares instances up to the target, on
    /// this thread: what the preparer does for each pool. Returns how many
    /// instances it prepared.
    pub fn refill(&self) -> Result<usize, SandboxError> {
        self.shared.refill()
    }

    /// What the pool did so far.
    pub fn stats(&self) -> ColdStats {
        let s = &self.shared;
        let c = &s.counters;
        ColdStats {
            ready: s.lock_ready().instances,
            target: s.target.load(Ordering::Relaxed),
            served: c.served.load(Ordering::Relaxed),
            inline_starts: c.inline.load(Ordering::Relaxed),
            prepared: c.prepared.load(Ordering::Relaxed),
            prepare_ns: c.prepare_ns.load(Ordering::Relaxed),
            torn_down: c.torn_down.load(Ordering::Relaxed),
            teardown_ns: c.teardown_ns.load(Ordering::Relaxed),
        }
    }

    /// A batch with a never-used member: the front ready one, or one
    /// instance started here when none is ready.
    async fn lease(&self) -> Result<Lease<'_>, SandboxError> {
        let shared = &*self.shared;
        shared.counters.served.fetch_add(1, Ordering::Relaxed);
        if let Some(batch) = shared.take_ready() {
            return Ok(Lease::new(shared, batch));
        }
        shared.counters.inline.fetch_add(1, Ordering::Relaxed);
        shared.ask();
        let group = match SandboxGroup::start_async(&shared.template, 1).await {
            // Used batches the preparer has not torn down yet may hold the
            // slots: free them here rather than fail the request.
            Err(SandboxError::LiveLimit { .. }) => {
                shared.tear_down(std::mem::take(&mut *shared.lock_spent()));
                SandboxGroup::start_async(&shared.template, 1).await?
            }
            other => other?,
        };
        Ok(Lease::new(shared, Batch { group, next: 0 }))
    }
}

impl Drop for ColdPool {
    fn drop(&mut self) {
        // The ready instances hold live slots: release them now rather than
        // when the preparer next looks.
        let ready = std::mem::take(&mut *self.shared.lock_ready());
        drop(ready);
        self.shared.lock_spent().clear();
    }
}

/// A batch out of the pool for one invocation. Dropped, it goes back to
/// the front of the pool when it has never-used members and its invocation
/// finished (even with an error: the other members share no state with a
/// failed one), else to the teardown list.
struct Lease<'p> {
    pool: &'p PoolShared,
    batch: Option<Batch>,
    finished: bool,
}

impl<'p> Lease<'p> {
    fn new(pool: &'p PoolShared, batch: Batch) -> Lease<'p> {
        Lease {
            pool,
            batch: Some(batch),
            finished: false,
        }
    }

    fn batch_mut(&mut self) -> &mut Batch {
        // Only `drop` takes the batch out.
        self.batch
            .as_mut()
            .unwrap_or_else(|| unreachable!("a lease holds its batch until dropped"))
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(batch) = self.batch.take() else {
            return;
        };
        if self.finished && batch.left() > 0 {
            let mut ready = self.pool.lock_ready();
            ready.instances += batch.left();
            ready.batches.push_front(batch);
        } else {
            // Used up, or its guest was stopped mid-call (the future was
            // dropped): torn down on the preparer's thread.
            self.pool.lock_spent().push(batch);
            self.pool.ask();
        }
    }
}

impl PoolShared {
    fn lock_ready(&self) -> MutexGuard<'_, Ready> {
        // Only push/pop and a counter change happen under the lock, so a
        // panic elsewhere cannot leave it inconsistent.
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_spent(&self) -> MutexGuard<'_, Vec<Batch>> {
        self.spent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the preparer to come, once until it has.
    pub(crate) fn ask(&self) {
        if !self.asked.swap(true, Ordering::AcqRel) {
            self.preparer.wake();
        }
    }

    /// The front batch, if any; asks for more when the pool (counting this
    /// batch's members still unused after this request) is at or under
    /// half its target.
    fn take_ready(&self) -> Option<Batch> {
        let mut ready = self.lock_ready();
        let batch = ready.batches.pop_front()?;
        ready.instances -= batch.left();
        let left = ready.instances + batch.left() - 1;
        drop(ready);
        if left <= self.target.load(Ordering::Relaxed) / 2 {
            self.ask();
        }
        Some(batch)
    }

    /// Re-estimates the request rate (at most every [`RATE_WINDOW`]) and
    /// the target from it.
    pub(crate) fn update_target(&self, now: Instant) {
        let served = self.counters.served.load(Ordering::Relaxed);
        let mut rate = self.rate.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(rate.at);
        if elapsed >= RATE_WINDOW {
            let measured = (served - rate.served) as f64 / elapsed.as_secs_f64();
            // Rise at once (a burst needs instances now), fall gently.
            rate.per_second = if measured > rate.per_second {
                measured
            } else {
                (rate.per_second + measured) / 2.0
            };
            rate.at = now;
            rate.served = served;
        }
        let placed = self.placed.load(Ordering::Relaxed);
        self.target.store(
            ready_target(placed, rate.per_second, self.cap),
            Ordering::Relaxed,
        );
    }

    /// Tears down used batches and trims what is past the target, then
    /// prepares batches until the target is ready.
    pub(crate) fn refill(&self) -> Result<usize, SandboxError> {
        self.asked.store(false, Ordering::Release);
        let spent = std::mem::take(&mut *self.lock_spent());
        self.tear_down(spent);
        let target = self.target.load(Ordering::Relaxed);
        let mut trimmed = Vec::new();
        {
            let mut ready = self.lock_ready();
            while ready.instances > target + self.batch {
                let Some(batch) = ready.batches.pop_back() else {
                    break;
                };
                ready.instances -= batch.left();
                trimmed.push(batch);
            }
        }
        self.tear_down(trimmed);
        let config = &self.template.shared.config;
        let ceiling = config.max_live as usize * READY_SHARE.0 / READY_SHARE.1;
        let mut added = 0;
        loop {
            let missing = target.saturating_sub(self.lock_ready().instances);
            let size = missing.min(self.batch);
            if size == 0 || self.template.shared.live.load(Ordering::Relaxed) + size > ceiling {
                break;
            }
            let begun = Instant::now();
            let group = SandboxGroup::start(&self.template, size)?;
            let took = begun.elapsed();
            self.counters
                .prepare_ns
                .fetch_add(nanos(took), Ordering::Relaxed);
            self.counters
                .prepared
                .fetch_add(size as u64, Ordering::Relaxed);
            let mut ready = self.lock_ready();
            ready.instances += size;
            ready.batches.push_back(Batch { group, next: 0 });
            added += size;
        }
        Ok(added)
    }

    fn tear_down(&self, batches: Vec<Batch>) {
        if batches.is_empty() {
            return;
        }
        let count: usize = batches.iter().map(|b| b.group.len()).sum();
        let begun = Instant::now();
        drop(batches);
        let took = begun.elapsed();
        self.counters
            .teardown_ns
            .fetch_add(nanos(took), Ordering::Relaxed);
        self.counters
            .torn_down
            .fetch_add(count as u64, Ordering::Relaxed);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
