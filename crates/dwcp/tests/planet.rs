//! Two region cells of three real `dwcp up` processes each and the global
//! tier between them, on loopback: a global change made in one region is
//! seen in the other; when every process of the first region is killed,
//! the second keeps serving its apps and taking its own changes, its
//! copies of the global records stay, and global changes are refused as
//! unavailable (the global tier's two voters were one per region).
//!
//! Region eu-west-1 runs on 127.0.56.x, eu-central-1 on 127.0.57.x; each
//! node's global tier member listens on port 7072 of its address.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, DEADLINE, get_answer, voters, wait_gateway};
use serde_json::{Value, json};

const TOPOLOGY: &str = r#"
country = [
  { name = "ie", continent = "europe" },
  { name = "de", continent = "europe" },
]
metro = [
  { name = "dublin", country = "ie" },
  { name = "frankfurt", country = "de" },
]
region = [
  { name = "eu-west-1", metro = "dublin", lat = 53.3, lon = -6.3, nodes = ["a-1", "a-2", "a-3"] },
  { name = "eu-central-1", metro = "frankfurt", lat = 50.1, lon = 8.7, nodes = ["b-1", "b-2", "b-3"] },
]

[global]
voters = 2
"#;

/// `dwcp up` flags placing node `n` of the cell on block `block` as
/// topology node `{letter}-{n}`, joining the global tier through
/// 127.0.56.1 when `join` has its token.
fn planet_flags(topology: &str, block: u8, letter: char, n: u8, join: Option<&str>) -> Vec<String> {
    planet_flags_via(
        topology,
        block,
        letter,
        n,
        join.map(|t| ("127.0.56.1:7072", t)),
    )
}

/// [`planet_flags`] joining the global tier at the given address.
fn planet_flags_via(
    topology: &str,
    block: u8,
    letter: char,
    n: u8,
    join: Option<(&str, &str)>,
) -> Vec<String> {
    let mut flags = vec![
        "--topology".to_string(),
        topology.to_string(),
        "--node".into(),
        format!("{letter}-{n}"),
        "--global-listen".into(),
        format!("127.0.{block}.{n}:7072"),
    ];
    if let Some((address, token)) = join {
        flags.extend([
            "--global-join".into(),
            address.to_string(),
            "--global-token".into(),
            token.to_string(),
        ]);
    }
    flags
}

fn strs(flags: &[String]) -> Vec<&str> {
    flags.iter().map(String::as_str).collect()
}

/// The global tier's join token, printed by its founder after the cell's.
fn global_join_token(cell: &Cluster) -> String {
    let mut token = None;
    poll("the global join token", || {
        token = cell.nodes[&1]
            .stdout_lines()
            .iter()
            .find_map(|l| l.strip_prefix("global join token: ").map(str::to_string));
        token.is_some().then_some(()).ok_or_else(|| {
            format!(
                "not printed; log:
{}",
                cell.nodes[&1].log()
            )
        })
    });
    token.unwrap_or_default()
}

fn app_names(answer: &Value) -> Vec<String> {
    answer["apps"]
        .as_array()
        .map(|apps| {
            apps.iter()
                .map(|a| {
                    let field = |f: &str| a[f].as_str().unwrap_or("").to_string();
                    format!("{}/{}", field("tenant"), field("name"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `check` until it holds, for up to [`DEADLINE`]; the last thing
/// it said is in the failure.
fn poll(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let last = match check() {
            Ok(()) => return,
            Err(last) => last,
        };
        assert!(Instant::now() < deadline, "{what}: {last}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls node `n` of `cell` until its app list includes `app`.
fn wait_for_app(cell: &Cluster, n: u8, app: &str) {
    poll(&format!("node {n} listing {app}"), || {
        let (status, body) = cell.call(n, "GET", "/api/v1/apps", None);
        if status == 200 && app_names(&body).iter().any(|a| a == app) {
            return Ok(());
        }
        Err(format!(
            "{status} {body}
{}",
            cell.logs()
        ))
    });
}

fn region<'a>(planet: &'a Value, name: &str) -> &'a Value {
    planet["regions"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["region"] == name))
        .unwrap_or(&Value::Null)
}

/// Polls node `n`'s `GET /api/v1/planet` until `ok` holds.
fn wait_for_planet(cell: &Cluster, n: u8, what: &str, ok: impl Fn(&Value) -> bool) {
    poll(what, || {
        let (status, body) = cell.call(n, "GET", "/api/v1/planet", None);
        if status == 200 && ok(&body) {
            return Ok(());
        }
        Err(format!(
            "node {n} answered {status} {body}
{}",
            cell.logs()
        ))
    });
}

#[test]
fn a_global_change_in_one_region_is_seen_in_the_other_which_serves_on_when_the_first_dies() {
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("planet.toml");
    std::fs::write(&topology, TOPOLOGY).unwrap();
    let topology = topology.to_str().unwrap();

    // eu-west-1: a-1 founds its cell and the global tier (a voter).
    let mut west = Cluster::found_with(56, &strs(&planet_flags(topology, 56, 'a', 1, None)));
    west.wait_api(1);
    let token = global_join_token(&west);
    for n in 2..=3 {
        west.join_node_with(n, &strs(&planet_flags(topology, 56, 'a', n, Some(&token))));
    }
    // eu-central-1: b-1 founds its cell and joins the global tier (the
    // other voter); b-2 and b-3 are learners of it.
    let mut central =
        Cluster::found_with(57, &strs(&planet_flags(topology, 57, 'b', 1, Some(&token))));
    central.wait_api(1);
    for n in 2..=3 {
        central.join_node_with(n, &strs(&planet_flags(topology, 57, 'b', n, Some(&token))));
    }
    for cell in [&west, &central] {
        cell.wait_for(
            |s| voters(s).len() == 3 && s["leader"].is_u64(),
            "three voters in the cell",
        );
    }
    // The global tier: a-1 and b-1 vote, the other four only learn.
    poll("the global tier's six members", || {
        let (status, body) = central.call(3, "GET", "/api/v1/cluster/global", None);
        if status == 200 && body["members"].as_array().map(Vec::len) == Some(6) {
            return Ok(());
        }
        Err(body.to_string())
    });
    let (_, global) = west.call(2, "GET", "/api/v1/cluster/global", None);
    assert_eq!(voters(&global).len(), 2, "{global}");
    let table = west.cli_ok(&["cluster", "status", "--global"]);
    assert_eq!(table.matches("learner").count(), 4, "{table}");
    // Each founder deployed the example app (global) in its own cell.
    for cell in [&west, &central] {
        wait_gateway(
            &cell.nodes[&1].gateway,
            "/hello",
            |s, b| s == 200 && b == "Hello from DWCP!\n",
            "the example app",
        );
    }

    // A global change made through eu-west-1's API...
    let (status, body) = west.call(2, "POST", "/api/v1/tenants", Some(json!({"name": "acme"})));
    assert_eq!(status, 201, "{body}");
    let (status, body) = west.call(
        3,
        "POST",
        "/api/v1/tenants/acme/apps",
        Some(json!({"name": "shop", "route": "/shop"})),
    );
    assert_eq!(status, 201, "{body}");
    // ...is in eu-central-1's cell, on a voter and on learners alike.
    for n in 1..=3 {
        wait_for_app(&central, n, "acme/shop");
    }
    // A tenant made in eu-central-1 goes the other way.
    let (status, body) = central.call(
        3,
        "POST",
        "/api/v1/tenants",
        Some(json!({"name": "initech"})),
    );
    assert_eq!(status, 201, "{body}");
    poll("eu-west-1 seeing initech", || {
        let (status, body) = west.call(1, "GET", "/api/v1/tenants", None);
        let names: Vec<&str> = body["tenants"]
            .as_array()
            .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
            .unwrap_or_default();
        if status == 200 && names.contains(&"initech") {
            return Ok(());
        }
        Err(body.to_string())
    });

    // Gossip: eu-central-1 sees eu-west-1's three members alive, its own
    // report (three nodes of 1000 slots) and the example app serving there.
    wait_for_planet(
        &central,
        3,
        "eu-west-1 healthy, with its report",
        |planet| {
            let west = region(planet, "eu-west-1");
            west["judged"] == "healthy"
                && west["alive"] == 3
                && west["known"] == 3
                && west["report"]["capacity"]["sandbox_slots"] == 3000
                && planet["apps"]["default/hello"]["eu-west-1"]["serving"] == true
                && planet["refused_packets"] == 0
        },
    );

    // Every process of eu-west-1 is killed.
    for n in 1..=3 {
        west.kill(n);
    }
    // eu-central-1 serves on, from every node's gateway...
    for n in 1..=3 {
        for _ in 0..20 {
            let answer = get_answer(&central.nodes[&n].gateway, "/hello")
                .unwrap_or_else(|e| panic!("node b-{n}'s gateway after eu-west-1 died: {e}"));
            assert_eq!(
                (answer.status, answer.text().as_str()),
                (200, "Hello from DWCP!\n"),
                "node b-{n}'s gateway after eu-west-1 died"
            );
        }
    }
    // ...takes its own changes...
    central.put(2, "after-west-died", "yes");
    assert_eq!(central.get(3, "after-west-died").as_deref(), Some("yes"));
    // ...keeps its copies of the global records...
    let (status, body) = central.call(2, "GET", "/api/v1/apps", None);
    assert_eq!(status, 200);
    assert!(app_names(&body).iter().any(|a| a == "acme/shop"), "{body}");
    // ...gossip judges eu-west-1 down while eu-central-1 stays healthy...
    wait_for_planet(&central, 2, "eu-west-1 judged down", |planet| {
        region(planet, "eu-west-1")["judged"] == "down"
            && region(planet, "eu-west-1")["alive"] == 0
            && region(planet, "eu-central-1")["judged"] == "healthy"
    });
    // ...and refuses a global change: half the global tier's voters are
    // gone, so it cannot commit one.
    let (status, body) = central.call(
        1,
        "POST",
        "/api/v1/tenants",
        Some(json!({"name": "globex"})),
    );
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("global tier")),
        "{body}"
    );
    let (_, body) = central.call(1, "GET", "/api/v1/tenants", None);
    assert!(
        !body.to_string().contains("globex"),
        "a refused global change left a trace: {body}"
    );
}

/// Dublin, Frankfurt and Paris, one node each, three global voters.
const THREE_REGIONS: &str = include_str!("../../../topologies/europe-3.toml");

/// Polls node 1 of `cell` until its first failover exists and `ok` holds
/// of it; the whole answer.
fn wait_for_failover(cell: &Cluster, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    poll(what, || {
        let (status, body) = cell.call(1, "GET", "/api/v1/failovers", None);
        let first = &body["failovers"][0];
        let done = status == 200 && first["region"] == "eu-west-3" && ok(first);
        last = body;
        if done { Ok(()) } else { Err(last.to_string()) }
    });
    last
}

/// A client in Paris asks where to go.
const PARIS: &str = "/api/v1/route?lat=48.9&lon=2.4";

/// Waits until node 1 of `cell` routes Paris to `region`.
fn wait_for_route(cell: &Cluster, region: &str, what: &str) {
    poll(what, || {
        let (status, body) = cell.call(1, "GET", PARIS, None);
        if status == 200 && body["region"] == region {
            return Ok(());
        }
        Err(format!("Paris routed to {status} {body}, not {region}"))
    });
}

/// The replicas node 1 of `cell` deploys of the example app in `region`.
fn hello_replicas(cell: &Cluster, region: &str) -> Option<u64> {
    let (status, body) = cell.call(1, "GET", "/api/v1/tenants/default/apps/hello", None);
    assert_eq!(status, 200, "{body}");
    body["deployment"]["regions"][region].as_u64()
}

/// Waits until `cell`'s example app runs `want` replicas in `region`.
fn wait_for_hello(cell: &Cluster, region: &str, want: u64, what: &str) {
    poll(what, || match hello_replicas(cell, region) {
        Some(n) if n == want => Ok(()),
        other => Err(format!(
            "{region} runs {other:?} replicas of default/hello, not {want}
{}",
            cell.logs()
        )),
    });
}

#[test]
fn a_lost_region_is_failed_over_by_the_global_tier_and_its_load_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("planet.toml");
    std::fs::write(&topology, THREE_REGIONS).unwrap();
    let topology = topology.to_str().unwrap();
    // One automatic failover an hour: the second loss waits for approval.
    let failback = [
        "--failback-step",
        "1s",
        "--failback-steps",
        "2",
        "--failovers-per-hour",
        "1",
    ];
    let with = |mut flags: Vec<String>| {
        flags.extend(failback.iter().map(|s| s.to_string()));
        flags
    };
    // Three one-node cells; each node is one of the global tier's three
    // voters, so it keeps a quorum when any one region is lost.
    let mut x = Cluster::found_with(
        58,
        &strs(&with(planet_flags_via(topology, 58, 'x', 1, None))),
    );
    let token = global_join_token(&x);
    let via = Some(("127.0.58.1:7072", token.as_str()));
    let mut y = Cluster::found_with(
        59,
        &strs(&with(planet_flags_via(topology, 59, 'y', 1, via))),
    );
    let z_flags = with(planet_flags_via(topology, 60, 'z', 1, via));
    let mut z = Cluster::found_with(60, &strs(&z_flags));
    for cell in [&mut x, &mut y, &mut z] {
        cell.wait_api(1);
    }
    // Every node's gossip has seen every region up (whichever becomes the
    // global tier's leader judges only regions it saw alive).
    for cell in [&x, &y, &z] {
        wait_for_planet(cell, 1, "every region healthy and serving", |planet| {
            ["eu-west-1", "eu-central-1", "eu-west-3"].iter().all(|r| {
                region(planet, r)["judged"] == "healthy"
                    && planet["apps"]["default/hello"][r]["wanted"] == 1
            })
        });
    }
    for (cell, r) in [(&x, "eu-west-1"), (&y, "eu-central-1")] {
        assert_eq!(hello_replicas(cell, r), Some(1));
    }
    // A client in Paris is sent to eu-west-3's gateway.
    wait_for_route(&x, "eu-west-3", "while every region is up");
    poll("Paris's gateway in the route", || {
        let (_, route) = x.call(1, "GET", PARIS, None);
        if route["gateways"] == json!(["127.0.60.1:8080"]) {
            return Ok(());
        }
        Err(route.to_string())
    });

    // eu-west-3 is lost: the global tier fails it over to the two regions
    // nearest Paris, half each, and each takes on its half of the one
    // replica eu-west-3 wanted (rounded up).
    z.kill(1);
    wait_for_hello(&x, "eu-west-1", 2, "after eu-west-3 was lost");
    wait_for_hello(&y, "eu-central-1", 2, "after eu-west-3 was lost");
    // The record is the global tier's; each cell's mirror copies it within
    // about a second, so the cell's API may list it a little after the
    // targets acted on it.
    let body = wait_for_failover(&y, "the failover in eu-central-1's cell", |f| {
        f["recovered_ms"].is_null()
    });
    let failover = &body["failovers"][0];
    assert_eq!(failover["region"], "eu-west-3", "{body}");
    assert_eq!(failover["approved"], true, "{body}");
    assert!(failover["recovered_ms"].is_null(), "{body}");
    let mut targets: Vec<(String, u64)> = failover["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t[0].as_str().unwrap().to_string(), t[1].as_u64().unwrap()))
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        vec![
            ("eu-central-1".to_string(), 500),
            ("eu-west-1".to_string(), 500)
        ]
    );
    wait_gateway(
        &x.nodes[&1].gateway,
        "/hello",
        |s, b| s == 200 && b == "Hello from DWCP!\n",
        "eu-west-1 serving while eu-west-3 is down",
    );
    // The same through the command line: the failover, the planet as
    // gossip sees it, and an approval refused (nothing is held).
    let listed = y.cli_ok(&["failover", "list"]);
    assert!(
        listed.contains("eu-west-3") && listed.contains("failed over"),
        "{listed}"
    );
    wait_for_planet(&x, 1, "eu-west-3 judged down", |planet| {
        region(planet, "eu-west-3")["judged"] == "down"
    });
    let planet = x.cli_ok(&["planet"]);
    let line = planet
        .lines()
        .find(|l| l.starts_with("eu-west-3"))
        .unwrap_or("");
    assert!(line.contains("down") && line.contains("0/1"), "{planet}");
    // Paris's clients go to the nearest region up: Frankfurt.
    wait_for_route(&x, "eu-central-1", "while eu-west-3 is down");
    let refused = y.cli_err(&["failover", "approve", "eu-west-3"]);
    assert!(refused.contains("waits for approval"), "{refused}");

    // eu-west-3 comes back: gossip sees it, the global tier marks it
    // recovered, and the extra replicas go in steps.
    z.restart_with(1, &strs(&z_flags));
    wait_for_hello(&x, "eu-west-1", 1, "after eu-west-3 came back");
    wait_for_hello(&y, "eu-central-1", 1, "after eu-west-3 came back");
    let recovered = wait_for_failover(&x, "the recovery in eu-west-1's cell", |f| {
        f["recovered_ms"].is_u64()
    });
    wait_for_route(&y, "eu-west-3", "after eu-west-3 came back");

    // Paris is lost again within the hour: past the guardrail's budget,
    // the failover is recorded but held, and nothing moves until an
    // operator approves it.
    let first = recovered["failovers"][0]["declared_ms"].as_u64().unwrap();
    z.kill(1);
    wait_for_failover(&y, "the second failover, held", |f| {
        f["declared_ms"].as_u64() > Some(first) && f["approved"] == false
    });
    assert_eq!(
        hello_replicas(&x, "eu-west-1"),
        Some(1),
        "a held failover moved load"
    );
    let listed = y.cli_ok(&["failover", "list"]);
    assert!(listed.contains("awaiting approval"), "{listed}");
    let approved = y.cli_ok(&["failover", "approve", "eu-west-3"]);
    assert!(approved.contains("approved"), "{approved}");
    wait_for_hello(&x, "eu-west-1", 2, "after the operator approved");
    wait_for_hello(&y, "eu-central-1", 2, "after the operator approved");
}

/// Two regions of one node each; the global tier's two voters are those
/// nodes.
const TWO_SMALL_REGIONS: &str = r#"
country = [
  { name = "ie", continent = "europe" },
  { name = "de", continent = "europe" },
]
metro = [
  { name = "dublin", country = "ie" },
  { name = "frankfurt", country = "de" },
]
region = [
  { name = "eu-west-1", metro = "dublin", lat = 53.3, lon = -6.3, nodes = ["c-1"] },
  { name = "eu-central-1", metro = "frankfurt", lat = 50.1, lon = 8.7, nodes = ["d-1"] },
]

[global]
voters = 2
"#;

/// `dwcp ARGS` (no cluster's address or token), expected to succeed; its
/// stdout and stderr.
fn dwcp_ok(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dwcp"))
        .args(args)
        .env_remove("DWCP_BACKUP_KEY_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("cannot run the dwcp binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "dwcp {args:?}: {text}");
    text
}

/// Restores `file` into node `n`'s directory of `cell` (on `block`): a
/// new cluster at node `n`'s addresses, started; what `dwcp restore` said.
fn restore_and_start(
    cell: &mut Cluster,
    block: u8,
    n: u8,
    file: &std::path::Path,
    key: &str,
) -> String {
    let dir = cell.dir_of(n);
    let said = dwcp_ok(&[
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        dir.to_str().unwrap(),
        "--key-file",
        key,
        "--listen",
        &format!("127.0.{block}.{n}:7071"),
        "--api",
        &format!("127.0.{block}.{n}:7070"),
    ]);
    cell.start_prepared(n, &[]);
    said
}

/// Issue 17: a planet backs up its global tier once and each region's
/// cell through one of its nodes (`dwcp backup [--tier global]`), and
/// each file restores into a new cluster of its own holding what that
/// group held: each cell its own registers (not the other region's) and
/// the global records it had; the global tier its tenants and apps.
#[test]
fn a_planet_backs_up_its_global_tier_and_each_cell_and_each_file_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let topology = tmp.path().join("planet.toml");
    std::fs::write(&topology, TWO_SMALL_REGIONS).unwrap();
    let topology = topology.to_str().unwrap();
    let mut west = Cluster::found_with(193, &strs(&planet_flags_via(topology, 193, 'c', 1, None)));
    west.wait_api(1);
    // The global tier's founder prints its admin and join tokens.
    let (mut admin, mut token) = (String::new(), String::new());
    poll("the global tier's tokens", || {
        for line in west.nodes[&1].stdout_lines() {
            if let Some(t) = line.strip_prefix("global admin token: ") {
                admin = t.to_string();
            }
            if let Some(t) = line.strip_prefix("global join token: ") {
                token = t.to_string();
            }
        }
        if admin.is_empty() || token.is_empty() {
            return Err(west.nodes[&1].log());
        }
        Ok(())
    });
    let mut central = Cluster::found_with(
        194,
        &strs(&planet_flags_via(
            topology,
            194,
            'd',
            1,
            Some(("127.0.193.1:7072", &token)),
        )),
    );
    central.wait_api(1);
    poll("the global tier's two voters", || {
        let (status, body) = central.call(1, "GET", "/api/v1/cluster/global", None);
        if status == 200 && voters(&body).len() == 2 {
            return Ok(());
        }
        Err(body.to_string())
    });
    // A global change, and a register in each cell.
    let (status, body) = west.call(1, "POST", "/api/v1/tenants", Some(json!({"name": "acme"})));
    assert_eq!(status, 201, "{body}");
    let (status, body) = west.call(
        1,
        "POST",
        "/api/v1/tenants/acme/apps",
        Some(json!({"name": "shop", "route": "/shop"})),
    );
    assert_eq!(status, 201, "{body}");
    wait_for_app(&central, 1, "acme/shop");
    west.put(1, "where", "dublin");
    central.put(1, "where", "frankfurt");
    west.put(1, "only-west", "yes");

    let key = tmp.path().join("backup.key");
    let key = key.to_str().unwrap();
    dwcp_ok(&["backup", "key", "--out", key]);
    let file = |name: &str| tmp.path().join(name);
    let backup = |cell: &Cluster, tier: &str, name: &str| {
        cell.cli_ok(&[
            "backup",
            "--tier",
            tier,
            "--out",
            file(name).to_str().unwrap(),
            "--key-file",
            key,
        ])
    };
    let said = backup(&west, "cell", "west.dwcpbak");
    assert!(said.contains("(cell eu-west-1)"), "{said}");
    let said = backup(&central, "cell", "central.dwcpbak");
    assert!(said.contains("(cell eu-central-1)"), "{said}");
    let said = backup(&west, "global", "global.dwcpbak");
    assert!(said.contains("(global "), "{said}");
    for name in ["west.dwcpbak", "central.dwcpbak", "global.dwcpbak"] {
        let inspected = dwcp_ok(&[
            "backup",
            "inspect",
            file(name).to_str().unwrap(),
            "--key-file",
            key,
        ]);
        assert!(inspected.contains("intact"), "{name}: {inspected}");
    }
    // The planet is lost; each file founds a cluster of its own.
    west.kill(1);
    central.kill(1);

    let said = restore_and_start(&mut west, 193, 9, &file("west.dwcpbak"), key);
    assert!(said.contains("tier cell, region eu-west-1"), "{said}");
    assert_eq!(west.get(9, "where").as_deref(), Some("dublin"));
    assert_eq!(west.get(9, "only-west").as_deref(), Some("yes"));
    wait_for_app(&west, 9, "acme/shop");

    let said = restore_and_start(&mut central, 194, 9, &file("central.dwcpbak"), key);
    assert!(said.contains("tier cell, region eu-central-1"), "{said}");
    assert_eq!(central.get(9, "where").as_deref(), Some("frankfurt"));
    assert_eq!(
        central.get(9, "only-west"),
        None,
        "a cell's backup holds another region's register"
    );
    wait_for_app(&central, 9, "acme/shop");

    // The global tier's API tokens are its own records: the global admin
    // token its founder printed works on the restored global tier.
    let said = restore_and_start(&mut west, 193, 8, &file("global.dwcpbak"), key);
    assert!(said.contains("tier global"), "{said}");
    poll(
        "the restored global tier listing acme/shop",
        || match west.call_as(8, "GET", "/api/v1/apps", None, Some(&admin)) {
            Ok((200, body)) if app_names(&body).iter().any(|a| a == "acme/shop") => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let (status, tenants) = west
        .call_as(8, "GET", "/api/v1/tenants", None, Some(&admin))
        .unwrap();
    assert_eq!(status, 200, "{tenants}");
    assert!(tenants.to_string().contains("\"acme\""), "{tenants}");
}
