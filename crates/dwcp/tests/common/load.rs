//! Closed-loop HTTP load from a few threads, round-robin over gateways,
//! recording every answer's status and version, for the process tests
//! that judge what a rollout or the autopilot did to traffic
//! (`tests/rollout.rs`, `tests/act_traffic.rs`).

// Each test file that includes this load uses part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::{DEADLINE, exchange};

/// One request the load sent.
#[derive(Clone, Debug)]
pub struct Sent {
    pub at: Instant,
    /// Which of the gateways it went to.
    pub gateway: usize,
    /// 0 when no answer came.
    pub status: u16,
    /// The version that answered (`x-dwcp-version`).
    pub version: Option<u64>,
}

/// Closed-loop load from a few threads, round-robin over gateways, each
/// thread pausing `pause` after every answer (a paced client; zero: as
/// fast as the gateways answer).
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Sent>>>,
}

impl Load {
    /// `bad_every`: every that many requests (over all threads) carries a
    /// body starting with `f`; `None`: none does.
    pub fn start(
        gateways: &[String],
        path: &str,
        threads: usize,
        bad_every: Option<u64>,
        pause: Duration,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let threads = (0..threads)
            .map(|_| {
                let (stop, count) = (stop.clone(), count.clone());
                let gateways = gateways.to_vec();
                let path = path.to_string();
                std::thread::spawn(move || {
                    let mut sent = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let i = count.fetch_add(1, Ordering::Relaxed);
                        let gateway = (i % gateways.len() as u64) as usize;
                        let bad = bad_every.is_some_and(|k| i % k == 0);
                        let body: &[u8] = if bad { b"f" } else { b"x" };
                        let at = Instant::now();
                        let answer = exchange(
                            DEADLINE,
                            &gateways[gateway],
                            "POST",
                            &path,
                            None,
                            Some(body),
                            "text/plain",
                        );
                        sent.push(match answer {
                            Ok(a) => Sent {
                                at,
                                gateway,
                                status: a.status,
                                version: a.header("x-dwcp-version").and_then(|v| v.parse().ok()),
                            },
                            Err(_) => Sent {
                                at,
                                gateway,
                                status: 0,
                                version: None,
                            },
                        });
                        if !pause.is_zero() {
                            std::thread::sleep(pause);
                        }
                    }
                    sent
                })
            })
            .collect();
        Load { stop, threads }
    }

    /// Stops the threads; every request sent, in the order sent.
    pub fn stop(self) -> Vec<Sent> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all: Vec<Sent> = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort_by_key(|s| s.at);
        all
    }
}
