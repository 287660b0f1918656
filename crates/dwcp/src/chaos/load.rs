//! The client load an experiment watches, and the floods some faults are.
//!
//! The steady load sends `POST ROUTE` with the body `f` at a fixed pace from
//! a few keep-alive clients, each request to one node's gateway, round
//! robin over the nodes the cluster's own health view shows healthy
//! (`GET /api/v1/nodes`, read every 250 ms from whichever API answers), as
//! a load balancer with health checks would; every answer is recorded. A
//! flood sends the same request as fast as it can, unrecorded.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::verdict::Sample;
use crate::bench::rollout::Conn;
use crate::cli::client::Client;

/// Bounds one request: an answer later than this is a failure.
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// Bounds one read of the health view.
const HEALTH_DEADLINE: Duration = Duration::from_secs(1);
/// How often the health view is read.
const HEALTH_EVERY: Duration = Duration::from_millis(250);

/// One recorded answer: when it was sent, to which node, how it went.
#[derive(Clone, Copy, Debug)]
struct Answer {
    sent: Instant,
    node: usize,
    ok: bool,
    latency: Duration,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data: a panic elsewhere leaves it usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Client tasks and what they recorded; dropping it stops them.
pub struct Load {
    answers: Arc<Mutex<Vec<Answer>>>,
    running: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Load {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Load {
    /// The steady load: `clients` clients, each sending every `every`, to
    /// the gateways (indexed as the cluster's nodes) the health view read
    /// through `apis` shows healthy.
    pub fn steady(
        gateways: Vec<SocketAddr>,
        apis: Vec<Client>,
        route: &'static str,
        clients: usize,
        every: Duration,
    ) -> Load {
        let healthy = Arc::new(Mutex::new((0..gateways.len()).collect::<Vec<usize>>()));
        let mut load = Load {
            answers: Arc::default(),
            running: Arc::new(AtomicBool::new(true)),
            tasks: Vec::new(),
        };
        load.tasks.push(tokio::spawn(watch_health(
            gateways.clone(),
            apis,
            healthy.clone(),
            load.running.clone(),
        )));
        for c in 0..clients {
            let (gateways, healthy) = (gateways.clone(), healthy.clone());
            let (answers, running) = (load.answers.clone(), load.running.clone());
            load.tasks.push(tokio::spawn(async move {
                let mut conns: Vec<Conn> = gateways.iter().map(|g| Conn::new(*g, route)).collect();
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                let mut turn = c;
                while running.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let node = {
                        let h = lock(&healthy);
                        h[turn % h.len()]
                    };
                    turn += 1;
                    let sent = Instant::now();
                    let ok = post(&mut conns[node], gateways[node], route)
                        .await
                        .is_ok_and(|status| status == 200);
                    lock(&answers).push(Answer {
                        sent,
                        node,
                        ok,
                        latency: sent.elapsed(),
                    });
                }
            }));
        }
        load
    }

    /// A flood: `clients` clients sending back to back over `gateways`,
    /// nothing recorded.
    pub fn flood(gateways: Vec<SocketAddr>, route: &'static str, clients: usize) -> Load {
        let mut load = Load {
            answers: Arc::default(),
            running: Arc::new(AtomicBool::new(true)),
            tasks: Vec::new(),
        };
        for c in 0..clients {
            let gateway = gateways[c % gateways.len()];
            let running = load.running.clone();
            load.tasks.push(tokio::spawn(async move {
                let mut conn = Conn::new(gateway, route);
                while running.load(Ordering::Relaxed) {
                    if post(&mut conn, gateway, route).await.is_err() {
                        // A refused connection: do not spin on it.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }));
        }
        load
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        lock(&self.answers).clear();
    }

    /// What was recorded, times from `origin`.
    pub fn samples(&self, origin: Instant) -> Vec<Sample> {
        lock(&self.answers)
            .iter()
            .map(|a| Sample {
                at_ms: signed_ms(a.sent, origin),
                node: a.node,
                ok: a.ok,
                latency_ms: a.latency.as_millis() as u64,
            })
            .collect()
    }
}

/// `t - origin` in ms, negative before it.
fn signed_ms(t: Instant, origin: Instant) -> i64 {
    if t >= origin {
        t.duration_since(origin).as_millis() as i64
    } else {
        -(origin.duration_since(t).as_millis() as i64)
    }
}

/// Keeps `healthy` the gateways the health view shows healthy (every one
/// when it shows none, or no API answers).
async fn watch_health(
    gateways: Vec<SocketAddr>,
    apis: Vec<Client>,
    healthy: Arc<Mutex<Vec<usize>>>,
    running: Arc<AtomicBool>,
) {
    let mut first = 0;
    while running.load(Ordering::Relaxed) {
        for k in 0..apis.len() {
            let i = (first + k) % apis.len();
            let Ok(Ok(view)) =
                tokio::time::timeout(HEALTH_DEADLINE, apis[i].get::<Value>("/nodes")).await
            else {
                continue;
            };
            let up = healthy_gateways(&view, &gateways);
            *lock(&healthy) = if up.is_empty() {
                (0..gateways.len()).collect()
            } else {
                up
            };
            first = i;
            break;
        }
        tokio::time::sleep(HEALTH_EVERY).await;
    }
}

/// The indexes of `gateways` whose node `GET /nodes` shows healthy.
pub fn healthy_gateways(view: &Value, gateways: &[SocketAddr]) -> Vec<usize> {
    let Some(nodes) = view["nodes"].as_array() else {
        return Vec::new();
    };
    let mut up: Vec<usize> = nodes
        .iter()
        .filter(|n| n["health"]["state"] == "healthy")
        .filter_map(|n| n["node"]["gateway"].as_str())
        .filter_map(|g| gateways.iter().position(|x| x.to_string() == g))
        .collect();
    up.sort_unstable();
    up.dedup();
    up
}

/// POSTs `f` on `conn` within [`REQUEST_DEADLINE`]; the status. A
/// connection whose request ran out of time is replaced.
async fn post(conn: &mut Conn, addr: SocketAddr, route: &'static str) -> Result<u16> {
    match tokio::time::timeout(REQUEST_DEADLINE, conn.post(b"f", None)).await {
        Ok(answer) => Ok(answer?.status),
        Err(_) => {
            *conn = Conn::new(addr, route);
            bail!("no answer within {} s", REQUEST_DEADLINE.as_secs())
        }
    }
}

/// Idle TCP connections held open to a gateway until dropped.
pub struct HeldConnections(#[allow(dead_code)] Vec<TcpStream>);

impl HeldConnections {
    /// Opens up to `n` connections to `addr`, stopping at the first that
    /// fails (the gateway's limit or this process's descriptors).
    pub async fn open(addr: SocketAddr, n: u32) -> HeldConnections {
        let mut held = Vec::new();
        for _ in 0..n {
            match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await {
                Ok(Ok(s)) => held.push(s),
                _ => break,
            }
        }
        HeldConnections(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_health_view_names_gateways_by_address() {
        let gateways: Vec<SocketAddr> = vec![
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.2:2".parse().unwrap(),
        ];
        let view = serde_json::json!({"nodes": [
            {"node": {"gateway": "127.0.0.2:2"}, "health": {"state": "healthy"}},
            {"node": {"gateway": "127.0.0.1:1"}, "health": {"state": "down"}},
            {"node": {"gateway": "10.0.0.9:9"}, "health": {"state": "healthy"}},
        ]});
        assert_eq!(healthy_gateways(&view, &gateways), vec![1]);
        assert!(healthy_gateways(&serde_json::json!({}), &gateways).is_empty());
    }
}
