//! A Jepsen-style test across real processes: clients write, read and
//! compare-and-set registers through the HTTP API of a 3-node cluster of
//! `dwcp up` processes while a nemesis kills nodes with SIGKILL, restarts
//! them, and partitions them (with the transport's drop rules, compiled
//! into test builds only). The recorded history must be linearizable and
//! every acknowledged write must survive, for every seed.

mod common;
#[path = "../../replica/tests/common/linearizable.rs"]
mod linearizable;

use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Cluster, http_within};
use linearizable::{Entry, Op};
use rng::SplitMix64;
use serde_json::{Value, json};

const CLIENTS: u64 = 3;
const OPS_PER_CLIENT: u64 = 40;
const KEYS: u64 = 2;
/// A client gives up on an operation after this long: its outcome is then
/// unknown (it may still take effect later).
const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// What one HTTP operation came to.
enum Answer {
    /// The node answered 200 with this body.
    Ok(Value),
    /// Nothing was sent (the node is down): the operation never happened.
    NotSent,
    /// Sent, but no usable answer: it may or may not have taken effect.
    Unknown,
}

fn call(api: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> Answer {
    let body = body.map(|b| b.to_string().into_bytes());
    match http_within(
        OP_TIMEOUT,
        api,
        method,
        path,
        Some(token),
        body.as_deref(),
        "application/json",
    ) {
        Ok((200, bytes)) => serde_json::from_slice(&bytes).map_or(Answer::Unknown, Answer::Ok),
        Ok(_) => Answer::Unknown,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Answer::NotSent,
        Err(_) => Answer::Unknown,
    }
}

fn number(v: &Value) -> Option<u64> {
    v.as_str().and_then(|s| s.parse().ok())
}

/// One client's operations against random nodes, recorded into `history`.
fn client(
    id: u64,
    seed: u64,
    apis: Vec<String>,
    token: String,
    clock: Instant,
    history: Arc<Mutex<Vec<Entry>>>,
) {
    let mut rng = SplitMix64::new(seed ^ (id + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let now = || clock.elapsed().as_nanos() as u64;
    for n in 0..OPS_PER_CLIENT {
        let key = format!("jepsen-{}", rng.next_u64() % KEYS);
        let api = &apis[(rng.next_u64() % apis.len() as u64) as usize];
        let value = id * 1000 + n;
        let path = format!("/api/v1/registers/{key}");
        let invoked = now();
        let entry = match rng.next_u64() % 3 {
            0 => match call(
                api,
                &token,
                "PUT",
                &path,
                Some(json!({"value": value.to_string()})),
            ) {
                Answer::Ok(_) => Some((Op::Write(value), Some(now()))),
                Answer::NotSent => None,
                Answer::Unknown => Some((Op::Write(value), None)),
            },
            1 => match call(api, &token, "GET", &path, None) {
                Answer::Ok(v) => Some((Op::Read(number(&v["value"])), Some(now()))),
                // A failed read changed nothing.
                _ => None,
            },
            _ => {
                let expected = rng
                    .next_u64()
                    .is_multiple_of(2)
                    .then(|| (rng.next_u64() % CLIENTS) * 1000 + rng.next_u64() % n.max(1));
                let body = json!({
                    "expected": expected.map(|e| e.to_string()),
                    "new": value.to_string(),
                });
                let cas = |swapped| Op::Cas {
                    expected,
                    new: value,
                    swapped,
                };
                match call(api, &token, "POST", &format!("{path}/cas"), Some(body)) {
                    Answer::Ok(v) => {
                        let swapped = v["swapped"].as_bool().expect("a CAS answer says swapped");
                        Some((cas(swapped), Some(now())))
                    }
                    Answer::NotSent => None,
                    Answer::Unknown => Some((cas(false), None)),
                }
            }
        };
        if let Some((op, returned)) = entry {
            history.lock().unwrap().push(Entry {
                key,
                op,
                invoked,
                returned,
            });
        }
        // Think time, so that the run spans the nemesis's actions.
        std::thread::sleep(Duration::from_millis(20 + rng.next_u64() % 80));
    }
}

/// Kills, restarts, isolates and heals nodes until told to stop; returns
/// how many things it did.
fn nemesis(seed: u64, cluster: &mut Cluster, stop: &AtomicBool) -> u32 {
    let mut rng = SplitMix64::new(seed.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let mut actions = 0;
    while !stop.load(Ordering::Relaxed) {
        let n = 1 + (rng.next_u64() % 3) as u8;
        let down: Vec<u8> = cluster.down();
        match rng.next_u64() % 4 {
            // At most one node down at a time, so a quorum can form.
            0 if down.is_empty() => cluster.kill(n),
            0 | 1 => {
                for d in down {
                    cluster.restart(d);
                }
            }
            2 => cluster.isolate(n),
            _ => cluster.heal(),
        }
        actions += 1;
        // The nemesis's schedule: act every 300-900 ms.
        std::thread::sleep(Duration::from_millis(300 + rng.next_u64() % 600));
    }
    actions
}

fn run(seed: u64, block: u8) {
    let mut cluster = Cluster::with_voters(block, 3);
    let apis: Vec<String> = cluster.nodes.values().map(|p| p.api.clone()).collect();
    let token = cluster.admin.clone();
    let clock = Instant::now();
    let history = Arc::new(Mutex::new(Vec::new()));
    let stop = AtomicBool::new(false);
    let actions = std::thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let (apis, token, history) = (apis.clone(), token.clone(), history.clone());
                s.spawn(move || client(id, seed, apis, token, clock, history))
            })
            .collect();
        let chaos = s.spawn(|| nemesis(seed, &mut cluster, &stop));
        for c in clients {
            c.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        chaos.join().unwrap()
    });
    assert!(
        actions >= 3,
        "seed {seed}: the nemesis acted only {actions} times"
    );

    // After the storm: heal, bring everyone back, and read every key
    // linearizably; the reads join the history, so a lost acknowledged
    // write shows up as a violation.
    cluster.heal();
    let down: Vec<u8> = cluster.down();
    for d in down {
        cluster.restart(d);
    }
    for k in 0..KEYS {
        let key = format!("jepsen-{k}");
        let deadline = Instant::now() + common::DEADLINE;
        let read = loop {
            let invoked = clock.elapsed().as_nanos() as u64;
            if let Answer::Ok(v) = call(
                &apis[0],
                &token,
                "GET",
                &format!("/api/v1/registers/{key}"),
                None,
            ) {
                break Entry {
                    key: key.clone(),
                    op: Op::Read(number(&v["value"])),
                    invoked,
                    returned: Some(clock.elapsed().as_nanos() as u64),
                };
            }
            assert!(
                Instant::now() < deadline,
                "seed {seed}: the healed cluster serves no read\n{}",
                cluster.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        history.lock().unwrap().push(read);
    }
    let history = history.lock().unwrap().clone();
    let acknowledged = history.iter().filter(|e| e.returned.is_some()).count();
    assert!(
        acknowledged > 30,
        "seed {seed}: too few operations completed ({acknowledged}) to judge\n{}",
        cluster.logs()
    );
    if let Err(e) = linearizable::check(&history) {
        panic!("seed {seed}: {e}\n{history:#?}");
    }
    eprintln!(
        "seed {seed}: {} operations ({acknowledged} acknowledged), {actions} nemesis actions: linearizable",
        history.len()
    );
}

#[test]
fn registers_stay_linearizable_across_processes_under_kills_and_partitions() {
    linearizable::self_check();
    for seed in 1..=4 {
        run(seed, 40 + seed as u8);
    }
}
