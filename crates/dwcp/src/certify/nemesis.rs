//! A linearizability check of one register under a nemesis (the leader
//! killed): clients keep incrementing it by compare-and-swap through the
//! nodes that stay up, counting the swaps acknowledged and those whose
//! outcome they cannot know (an error, a timeout, a refusal); the register
//! must end between the two counts. `anomalies` is the pure judgement.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hyper::Method;
use serde_json::{Value, json};

use super::http::{self, Conn};

/// Bounds each client's wait for an answer, so that a request to a
/// node whose leader died counts as indeterminate instead of hanging.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Swaps whose answer did not arrive may or may not have applied: the
/// register must end at or above the acknowledged ones and at most all
/// of them. The number of updates that break that: acknowledged and lost,
/// or applied and never attempted.
pub fn anomalies(acknowledged: u64, indeterminate: u64, end: u64) -> u64 {
    acknowledged.saturating_sub(end) + end.saturating_sub(acknowledged + indeterminate)
}

/// The clients running against the register.
pub struct Nemesis {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicU64>,
    tasks: tokio::task::JoinSet<u64>,
    key: String,
}

impl Nemesis {
    /// One client per address, each incrementing `key` by compare-and-swap
    /// until stopped.
    pub fn start(apis: &[SocketAddr], admin: &str, key: &str) -> Nemesis {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicU64::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for api in apis {
            let (api, admin, key) = (*api, admin.to_string(), key.to_string());
            let (stop, acknowledged) = (stop.clone(), acknowledged.clone());
            tasks.spawn(async move {
                let mut indeterminate = 0;
                let path = format!("/api/v1/registers/{key}");
                let mut conn: Option<Conn> = None;
                while !stop.load(Ordering::Relaxed) {
                    match increment(&mut conn, api, &path, &admin).await {
                        Swap::Acknowledged => {
                            acknowledged.fetch_add(1, Ordering::Relaxed);
                        }
                        Swap::Refused => {}
                        Swap::Unknown => {
                            indeterminate += 1;
                            conn = None;
                            // The cluster is electing: no busy loop meanwhile.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Swap::NotSent => {
                            conn = None;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                indeterminate
            });
        }
        Nemesis {
            stop,
            acknowledged,
            tasks,
            key: key.to_string(),
        }
    }

    /// Swaps acknowledged so far.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::Relaxed)
    }

    /// Waits until `more` further swaps are acknowledged (the cluster
    /// serves again), for at most `deadline`.
    pub async fn wait_for(&self, more: u64, deadline: Duration) -> Result<()> {
        let want = self.acknowledged() + more;
        let until = Instant::now() + deadline;
        while self.acknowledged() < want {
            anyhow::ensure!(
                Instant::now() < until,
                "the compare-and-swap clients got {} of {want} swaps acknowledged within {} s",
                self.acknowledged(),
                deadline.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Stops the clients, reads the register at `read_at`: (acknowledged,
    /// indeterminate, the register's value).
    pub async fn stop(mut self, read_at: SocketAddr, admin: &str) -> Result<(u64, u64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        let mut indeterminate = 0;
        while let Some(done) = self.tasks.join_next().await {
            indeterminate += done?;
        }
        let path = format!("/api/v1/registers/{}", self.key);
        let a = http::once(read_at, &Method::GET, &path, Some(admin), None).await?;
        anyhow::ensure!(a.status == 200, "GET {path} answered {}", a.status);
        let end = count(&a.body)?.unwrap_or(0);
        Ok((self.acknowledged(), indeterminate, end))
    }
}

/// A register's answer (`GET /api/v1/registers/{key}`) as a count; `None`
/// when it is absent.
fn count(body: &[u8]) -> Result<Option<u64>> {
    let v: Value = serde_json::from_slice(body).context("the register's answer is not JSON")?;
    match &v["value"] {
        Value::Null => Ok(None),
        Value::String(s) => {
            Ok(Some(s.parse().with_context(|| {
                format!("the register holds `{s}`, not a count")
            })?))
        }
        other => anyhow::bail!("the register's value is {other}"),
    }
}

enum Swap {
    Acknowledged,
    /// Answered, not swapped (another client won): nothing applied.
    Refused,
    /// Sent, no answer known: it may have applied.
    Unknown,
    /// Not sent (the read before it failed): nothing applied.
    NotSent,
}

/// Reads the register and swaps it one higher.
async fn increment(conn: &mut Option<Conn>, api: SocketAddr, path: &str, admin: &str) -> Swap {
    if conn.is_none() {
        match tokio::time::timeout(REQUEST_TIMEOUT, Conn::open(api)).await {
            Ok(Ok(c)) => *conn = Some(c),
            _ => return Swap::NotSent,
        }
    }
    let Some(c) = conn.as_mut() else {
        return Swap::NotSent;
    };
    let read = tokio::time::timeout(
        REQUEST_TIMEOUT,
        c.send(&Method::GET, path, Some(admin), None),
    );
    // An absent register reads as `"value": null`.
    let current: Option<u64> = match read.await {
        Ok(Ok(a)) if a.status == 200 => match count(&a.body) {
            Ok(n) => n,
            Err(_) => return Swap::NotSent,
        },
        _ => return Swap::NotSent,
    };
    let next = current.map_or(1, |n| n + 1);
    let body = http::json(&json!({
        "expected": current.map(|n| n.to_string()),
        "new": next.to_string(),
    }));
    let cas = format!("{path}/cas");
    let swap = tokio::time::timeout(
        REQUEST_TIMEOUT,
        c.send(&Method::POST, &cas, Some(admin), body),
    );
    match swap.await {
        Ok(Ok(a)) if a.status == 200 => {
            match serde_json::from_slice::<Value>(&a.body).map(|v| v["swapped"] == true) {
                Ok(true) => Swap::Acknowledged,
                Ok(false) => Swap::Refused,
                Err(_) => Swap::Unknown,
            }
        }
        _ => Swap::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_register_reads_as_a_count_or_absent() {
        assert_eq!(
            count(br#"{"key": "k", "value": null, "revision": 3}"#).unwrap(),
            None
        );
        assert_eq!(count(br#"{"value": "41"}"#).unwrap(), Some(41));
        assert!(count(br#"{"value": "x"}"#).is_err());
        assert!(count(b"<html>").is_err());
    }

    #[test]
    fn the_register_must_end_between_the_acknowledged_and_the_attempted_swaps() {
        assert_eq!(anomalies(40, 3, 40), 0);
        assert_eq!(anomalies(40, 3, 43), 0, "every unknown swap applied");
        assert_eq!(anomalies(40, 3, 38), 2, "two acknowledged swaps lost");
        assert_eq!(anomalies(40, 3, 45), 2, "two swaps nobody attempted");
        assert_eq!(anomalies(0, 0, 0), 0);
        let def = crate::certify::catalog::CATALOG
            .iter()
            .find(|d| d.id == "reliability.cas.under_failover")
            .unwrap();
        let v = certify::judge(
            &def.criterion(),
            &certify::Measurement::of(anomalies(40, 3, 38) as f64, "lost"),
            &[],
            0,
        );
        assert_eq!(v.status, certify::Status::Fail);
    }
}
