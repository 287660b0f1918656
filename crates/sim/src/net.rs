//! The simulated network: a replica [`Transport`] whose messages reach the
//! target replica's [`Inbox`] after a modelled delay each way, and fail as
//! unreachable when either end is down. Pipes of appends keep their order
//! (a later append never overtakes an earlier one, as on a TCP connection),
//! each append delayed by its own draw.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use replica::{AppendAnswers, Appends, Call, Inbox, LinkError, NodeId, Reply, Transport};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::rng::Rng;

/// The round trip between two nodes, in ms, before jitter.
pub type RttFn = dyn Fn(NodeId, NodeId) -> f64 + Send + Sync;

/// Every link of a simulation: who is reachable, and how far.
pub struct Links {
    rtt: Box<RttFn>,
    /// Jitter added to each one-way delay: exponential with this mean, as a
    /// fraction of the one-way delay.
    jitter: f64,
    seed: u64,
    rng: Mutex<Rng>,
    replicas: Mutex<BTreeMap<NodeId, Inbox>>,
    down: Mutex<BTreeSet<NodeId>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data: a panic elsewhere leaves it usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why an RPC did not arrive.
#[derive(Debug, thiserror::Error)]
#[error("node {0} is down or unreachable in the simulation")]
pub struct Down(NodeId);

impl Links {
    /// Links whose round trips come from `rtt` (ms), each one-way delay
    /// plus exponential jitter of mean `jitter` × the delay, drawn from
    /// `seed`.
    pub fn new(rtt: Box<RttFn>, jitter: f64, seed: u64) -> Arc<Links> {
        Arc::new(Links {
            rtt,
            jitter,
            seed,
            rng: Mutex::new(Rng::new(seed)),
            replicas: Mutex::new(BTreeMap::new()),
            down: Mutex::new(BTreeSet::new()),
        })
    }

    /// The seed the links' draws follow.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Makes the replica behind `inbox` reachable as node `id`.
    pub fn attach(&self, id: NodeId, inbox: Inbox) {
        lock(&self.replicas).insert(id, inbox);
    }

    /// Takes node `id` off the network (it neither sends nor receives).
    pub fn set_down(&self, id: NodeId, down: bool) {
        let mut set = lock(&self.down);
        if down {
            set.insert(id);
        } else {
            set.remove(&id);
        }
    }

    /// One message's delay from `from` to `to`.
    pub fn one_way(&self, from: NodeId, to: NodeId) -> Duration {
        let base = (self.rtt)(from, to) / 2.0;
        let jitter = lock(&self.rng).exponential(base * self.jitter);
        Duration::from_secs_f64((base + jitter).max(0.0) / 1000.0)
    }

    fn is_down(&self, from: NodeId, to: NodeId) -> bool {
        let down = lock(&self.down);
        down.contains(&from) || down.contains(&to)
    }

    fn target(&self, from: NodeId, to: NodeId) -> Result<Inbox, LinkError> {
        let unreachable = || LinkError::Unreachable(Down(to).to_string());
        if self.is_down(from, to) {
            return Err(unreachable());
        }
        lock(&self.replicas)
            .get(&to)
            .cloned()
            .ok_or_else(unreachable)
    }

    /// Carries one message: the request's delay, the target's inbox, the
    /// answer's delay. A node that goes down meanwhile loses the answer.
    async fn carry(&self, from: NodeId, to: NodeId, call: Call) -> Result<Reply, LinkError> {
        tokio::time::sleep(self.one_way(from, to)).await;
        let inbox = self.target(from, to)?;
        let answer = inbox.call(call).await;
        tokio::time::sleep(self.one_way(to, from)).await;
        self.target(from, to)?;
        answer.map_err(|e| LinkError::Unreachable(e.to_string()))
    }

    /// Items of `items` delivered in order, each a one-way delay after it
    /// left but never before the one ahead of it; when `from` or `to` goes
    /// down, one error is delivered instead and the stream ends.
    fn in_order<T: Send + 'static>(
        self: &Arc<Self>,
        from: NodeId,
        to: NodeId,
        mut items: impl Stream<Item = T> + Send + Unpin + 'static,
    ) -> impl Stream<Item = Result<T, LinkError>> + Send + 'static {
        let (tx, rx) = mpsc::unbounded_channel::<(Instant, T)>();
        let links = self.clone();
        tokio::spawn(async move {
            let mut last = Instant::now();
            while let Some(item) = items.next().await {
                last = last.max(Instant::now() + links.one_way(from, to));
                if tx.send((last, item)).is_err() {
                    return;
                }
            }
        });
        let links = self.clone();
        futures_util::stream::unfold(Some(rx), move |rx| {
            let links = links.clone();
            async move {
                let mut rx = rx?;
                let (due, item) = rx.recv().await?;
                tokio::time::sleep_until(due).await;
                if links.is_down(from, to) {
                    let lost = LinkError::Unreachable(Down(to).to_string());
                    return Some((Err(lost), None));
                }
                Some((Ok(item), Some(rx)))
            }
        })
    }
}

/// One node's side of the simulated network.
pub struct SimNetwork {
    pub id: NodeId,
    pub links: Arc<Links>,
}

impl Transport for SimNetwork {
    async fn call(&self, to: NodeId, _address: &str, call: Call) -> Result<Reply, LinkError> {
        self.links.carry(self.id, to, call).await
    }

    async fn appends(
        &self,
        to: NodeId,
        _address: &str,
        appends: Appends,
    ) -> Result<AppendAnswers, LinkError> {
        let from = self.id;
        let inbox = self.links.target(from, to)?;
        // Appends lost to a node going down end the follower's input.
        let delivered = self
            .links
            .in_order(from, to, appends)
            .take_while(|item| std::future::ready(item.is_ok()))
            .filter_map(|item| std::future::ready(item.ok()));
        let answers = Box::pin(inbox.appends(delivered));
        let answers = self
            .links
            .in_order(to, from, answers)
            .map(|answer| answer?.map_err(|e| LinkError::Unreachable(e.to_string())));
        Ok(Box::pin(answers))
    }
}
