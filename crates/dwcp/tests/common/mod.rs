//! A cluster of real `dwcp up` processes on loopback addresses, for tests
//! that kill nodes for real (SIGKILL) and restart them. The processes are
//! `harness::NodeProcess`es, shared with the benchmarks.
//!
//! Each test picks its own block `127.0.B.0/24`, so tests running at once
//! never share an address; node `n` listens on `127.0.B.n`, peers on port
//! 7071 and the API on 7070. Every wait polls a condition against a
//! generous deadline; nothing sleeps a fixed time as if that were work.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{NodeProcess, NodeSpec};
use serde_json::{Value, json};

/// Long enough for a loaded 2-core machine; conditions usually hold in
/// well under a second.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// One `dwcp up` process (or the memory of one that was killed).
pub struct NodeProc {
    pub n: u8,
    pub dir: PathBuf,
    pub peer: String,
    pub api: String,
    /// Where its gateway serves apps.
    pub gateway: String,
    process: NodeProcess,
}

impl NodeProc {
    /// Lines the process printed on stdout since the last call.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.process.stdout_lines()
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    pub fn running(&self) -> bool {
        self.process.running()
    }
}

/// Real processes, killed on drop.
pub struct Cluster {
    pub root: tempfile::TempDir,
    pub block: u8,
    pub nodes: BTreeMap<u8, NodeProc>,
    pub admin: String,
    pub join: String,
}

/// How node `dir` is started: its stderr goes to `log`, and its fault
/// rules are read from `DIR.faults` (test builds only, the
/// `fault-injection` feature).
fn spec(dir: PathBuf, peer: &str, api: &str, log: PathBuf) -> NodeSpec {
    NodeSpec {
        exe: env!("CARGO_BIN_EXE_dwcp").into(),
        env: vec![(
            "DWCP_FAULTS_FILE".into(),
            dir.with_extension("faults").into(),
        )],
        data_dir: dir,
        peer: peer.into(),
        api: api.into(),
        gateway: api.replace(":7070", ":8080"),
        log,
        env_remove: vec![],
    }
}

impl Cluster {
    /// Starts node 1, which creates the cluster, and reads its tokens.
    pub fn found(block: u8) -> Cluster {
        Cluster::found_with(block, &[])
    }

    /// [`Cluster::found`] with more `dwcp up` flags for node 1 (e.g.
    /// `--region eu`).
    pub fn found_with(block: u8, extra: &[&str]) -> Cluster {
        let mut cluster = Cluster {
            root: tempfile::tempdir().unwrap(),
            block,
            nodes: BTreeMap::new(),
            admin: String::new(),
            join: String::new(),
        };
        cluster.start_new(1, false, extra);
        let node = &cluster.nodes[&1];
        let tokens = node
            .process
            .tokens(DEADLINE)
            .unwrap_or_else(|e| panic!("{e}; its log:\n{}", node.log()));
        (cluster.admin, cluster.join) = (tokens.admin, tokens.join);
        cluster
    }

    /// A cluster of `n` voters, waited for.
    pub fn with_voters(block: u8, n: u8) -> Cluster {
        let mut cluster = Cluster::found(block);
        for i in 2..=n {
            cluster.join_node(i);
        }
        cluster.wait_for(
            |s| voters(s).len() == n as usize && s["leader"].is_u64(),
            "all voters",
        );
        cluster
    }

    pub fn ip(&self, n: u8) -> String {
        format!("127.0.{}.{n}", self.block)
    }

    fn start_new(&mut self, n: u8, join: bool, more: &[&str]) {
        let dir = self.root.path().join(format!("node-{n}"));
        let peer = format!("{}:7071", self.ip(n));
        let api = format!("{}:7070", self.ip(n));
        let log = self.root.path().join(format!("node-{n}.log"));
        let extra: Vec<String> = if join {
            vec![
                "--join".into(),
                format!("{}:7071", self.ip(1)),
                "--token".into(),
                self.join.clone(),
            ]
        } else {
            vec![]
        };
        let mut extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        extra.extend_from_slice(more);
        let process = NodeProcess::start(spec(dir.clone(), &peer, &api, log), &extra)
            .expect("cannot run the dwcp binary");
        self.nodes.insert(
            n,
            NodeProc {
                n,
                dir,
                gateway: api.replace(":7070", ":8080"),
                peer,
                api,
                process,
            },
        );
    }

    /// A new one-node cluster whose gateway serves the example app; its
    /// gateway's address.
    pub fn found_serving(block: u8) -> (Cluster, String) {
        let mut c = Cluster::found(block);
        c.wait_api(1);
        let gateway = c.nodes[&1].gateway.clone();
        wait_gateway(
            &gateway,
            "/hello",
            |s, b| s == 200 && b == "Hello from DWCP!\n",
            "the example app",
        );
        (c, gateway)
    }

    /// Starts node `n` on a data directory made outside `dwcp up` (e.g. by
    /// `dwcp restore` into [`Cluster::dir_of`]), at its usual addresses.
    pub fn start_prepared(&mut self, n: u8, extra: &[&str]) {
        self.start_new(n, false, extra);
        self.wait_api(n);
    }

    /// Where node `n` keeps (or would keep) its data.
    pub fn dir_of(&self, n: u8) -> PathBuf {
        self.root.path().join(format!("node-{n}"))
    }

    /// Starts node `n` as a new node joining through node 1.
    pub fn join_node(&mut self, n: u8) {
        self.join_node_with(n, &[]);
    }

    /// [`Cluster::join_node`] with more `dwcp up` flags.
    pub fn join_node_with(&mut self, n: u8, extra: &[&str]) {
        self.start_new(n, true, extra);
        self.wait_api(n);
    }

    /// Kills node `n` with SIGKILL and reaps it.
    pub fn kill(&mut self, n: u8) {
        let node = self.nodes.get_mut(&n).unwrap();
        assert!(node.running(), "node {n} is not running");
        node.process.kill().unwrap();
        node.process.reap().unwrap();
    }

    /// Restarts a killed node from its data directory.
    pub fn restart(&mut self, n: u8) {
        self.restart_with(n, &[]);
    }

    /// [`Cluster::restart`] with more `dwcp up` flags.
    pub fn restart_with(&mut self, n: u8, extra: &[&str]) {
        let node = self.nodes.get_mut(&n).unwrap();
        assert!(!node.running(), "node {n} is still running");
        node.process
            .restart(extra)
            .expect("cannot run the dwcp binary");
        self.wait_api(n);
    }

    /// Stops node `n` with SIGSTOP: it keeps its sockets open and answers
    /// nothing (a hung process, or a host that stopped forwarding packets),
    /// until [`Cluster::resume`].
    pub fn pause(&self, n: u8) {
        self.signal(n, libc::SIGSTOP);
    }

    /// Lets a node stopped by [`Cluster::pause`] run again (SIGCONT).
    pub fn resume(&self, n: u8) {
        self.signal(n, libc::SIGCONT);
    }

    fn signal(&self, n: u8, signal: libc::c_int) {
        let pid = self.nodes[&n]
            .process
            .pid()
            .unwrap_or_else(|| panic!("node {n} is not running"));
        let pid = libc::pid_t::try_from(pid).expect("a process id fits a pid_t");
        // SAFETY: kill(2) takes no pointers; the pid is our own child's,
        // which has not been reaped (it runs), so it names no other process.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            sent,
            0,
            "signal {signal} to node {n}: {}",
            std::io::Error::last_os_error()
        );
    }

    /// The nodes that are not running now.
    pub fn down(&self) -> Vec<u8> {
        self.nodes
            .values()
            .filter(|p| !p.running())
            .map(|p| p.n)
            .collect()
    }

    /// Waits until node `n` answers health on its API.
    pub fn wait_api(&mut self, n: u8) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok((200, _)) = self.call_as(n, "GET", "/api/v1/health", None, None) {
                return;
            }
            let node = self.nodes.get_mut(&n).unwrap();
            if let Some(status) = node.process.exited().unwrap() {
                panic!("node {n} exited with {status}; its log:\n{}", node.log());
            }
            assert!(
                Instant::now() < deadline,
                "node {n}'s API never came up; its log:\n{}",
                node.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// An API call to node `n` with the admin token.
    pub fn call(&self, n: u8, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(n, method, path, body, Some(&self.admin))
            .unwrap_or_else(|e| panic!("{method} {path} on node {n}: {e}"))
    }

    pub fn call_as(
        &self,
        n: u8,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> std::io::Result<(u16, Value)> {
        let body = body.map(|b| b.to_string().into_bytes());
        let (status, bytes) = http(
            &self.nodes[&n].api,
            method,
            path,
            token,
            body.as_deref(),
            "application/json",
        )?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok((status, value))
    }

    /// Any running node's view of the cluster, from the leader when it can.
    pub fn status(&self) -> Option<Value> {
        self.nodes.values().filter(|n| n.running()).find_map(|n| {
            match self.call_as(n.n, "GET", "/api/v1/cluster", None, Some(&self.admin)) {
                Ok((200, v)) if v["leader"].is_u64() => Some(v),
                _ => None,
            }
        })
    }

    /// Waits until the cluster status satisfies `cond`; returns it.
    pub fn wait_for(&self, cond: impl Fn(&Value) -> bool, what: &str) -> Value {
        let deadline = Instant::now() + DEADLINE;
        let mut last = Value::Null;
        loop {
            if let Some(s) = self.status() {
                if cond(&s) {
                    return s;
                }
                last = s;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what}; last status: {last:#}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The current leader's node number.
    pub fn leader(&self) -> u8 {
        let s = self.wait_for(|s| s["leader"].is_u64(), "a leader");
        s["leader"].as_u64().unwrap() as u8
    }

    /// Writes a register through node `n`, retrying while the cluster has
    /// no leader (503 before the write was applied is safe to retry:
    /// `Put` of the same value twice is one value).
    pub fn put(&self, n: u8, key: &str, value: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let r = self.call_as(
                n,
                "PUT",
                &format!("/api/v1/registers/{key}"),
                Some(json!({ "value": value })),
                Some(&self.admin),
            );
            match r {
                Ok((200, _)) => return,
                other => assert!(
                    Instant::now() < deadline,
                    "writing {key} through node {n}: {other:?}\n{}",
                    self.logs()
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Reads a register (linearizably) through node `n`.
    pub fn get(&self, n: u8, key: &str) -> Option<String> {
        let (status, v) = self.call(n, "GET", &format!("/api/v1/registers/{key}"), None);
        assert_eq!(status, 200, "{v}");
        v["value"].as_str().map(str::to_string)
    }

    /// Runs a client command (`dwcp ARGS`) against node `n`'s API with the
    /// admin token.
    /// The changes node `n` has applied after revision `since`, other than
    /// node reports (every node writes one a second).
    /// The revision of the state (a linearizable read through node 1).
    pub fn revision(&self) -> u64 {
        let (status, v) = self.call(1, "GET", "/api/v1/registers/probe", None);
        assert_eq!(status, 200, "{v}");
        v["revision"].as_u64().unwrap()
    }

    pub fn changes_since(&self, n: u8, since: u64) -> Vec<Value> {
        let path = format!("/api/v1/watch?since={since}&wait_ms=0");
        let (status, v) = self.call(n, "GET", &path, None);
        assert_eq!(status, 200, "{v}");
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["change"]["record"] != "report")
            .cloned()
            .collect()
    }

    /// Runs `dwcp ARGS` against node 1 and expects it to succeed; its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(1, args);
        assert!(
            out.status.success(),
            "dwcp {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `dwcp ARGS` against node 1 and expects it to fail (exit status
    /// 1); its stderr.
    pub fn cli_err(&self, args: &[&str]) -> String {
        let out = self.cli(1, args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "dwcp {args:?} succeeded: {}{stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        stderr
    }

    pub fn cli(&self, n: u8, args: &[&str]) -> std::process::Output {
        self.cli_as(n, &self.admin, args)
    }

    /// `dwcp ARGS` against node `n` with `token`.
    pub fn cli_as(&self, n: u8, token: &str, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_dwcp"))
            .args(args)
            .env("DWCP_API", format!("http://{}", self.nodes[&n].api))
            .env("DWCP_TOKEN", token)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run the dwcp binary")
    }

    /// Cuts node `n` off from every other node (both directions).
    pub fn isolate(&self, n: u8) {
        let peers: Vec<&NodeProc> = self.nodes.values().filter(|p| p.n != n).collect();
        let me = &self.nodes[&n];
        let mine: String = peers.iter().map(|p| format!("{}\n", p.peer)).collect();
        std::fs::write(me.dir.with_extension("faults"), mine).unwrap();
        for p in peers {
            std::fs::write(p.dir.with_extension("faults"), format!("{}\n", me.peer)).unwrap();
        }
    }

    /// Removes every drop rule.
    pub fn heal(&self) {
        for p in self.nodes.values() {
            let _ = std::fs::remove_file(p.dir.with_extension("faults"));
        }
    }

    pub fn logs(&self) -> String {
        self.nodes
            .values()
            .map(|n| format!("--- node {} log ---\n{}", n.n, n.log()))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The processes first (each is killed and reaped as it is
        // dropped), then the fields: the temp dir must outlive them.
        self.nodes.clear();
    }
}

/// Voter ids in a status document.
pub fn voters(status: &Value) -> Vec<u64> {
    status["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|m| m["voter"] == json!(true))
                .filter_map(|m| m["id"].as_u64())
                .collect()
        })
        .unwrap_or_default()
}

/// Member ids in a status document.
pub fn members(status: &Value) -> Vec<u64> {
    status["members"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["id"].as_u64()).collect())
        .unwrap_or_default()
}

/// The lag the leader reports for member `id`.
pub fn lag(status: &Value, id: u64) -> Option<u64> {
    status["members"]
        .as_array()?
        .iter()
        .find(|m| m["id"] == json!(id))?["lag"]
        .as_u64()
}

/// One HTTP/1.1 request with `Connection: close`; returns status and body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
    content_type: &str,
) -> std::io::Result<(u16, Vec<u8>)> {
    http_within(DEADLINE, addr, method, path, token, body, content_type)
}

/// [`http`] giving up after `timeout` without an answer.
pub fn http_within(
    timeout: Duration,
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
    content_type: &str,
) -> std::io::Result<(u16, Vec<u8>)> {
    exchange(timeout, addr, method, path, token, body, content_type).map(|a| (a.status, a.body))
}

/// An HTTP answer with its head.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Header names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path` on `addr` with no token; the whole answer.
pub fn get_answer(addr: &str, path: &str) -> std::io::Result<Answer> {
    exchange(DEADLINE, addr, "GET", path, None, None, "")
}

/// One HTTP/1.1 request with `Connection: close`; the whole answer.
pub fn exchange(
    timeout: Duration,
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
    content_type: &str,
) -> std::io::Result<Answer> {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Host", addr)];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b));
    }
    if body.is_some() {
        headers.push(("Content-Type", content_type));
    }
    request(timeout, addr, method, path, &headers, body)
}

/// One HTTP/1.1 request with `Connection: close` and the headers given
/// (`Host` among them; `Content-Length` is added for a body); the whole
/// answer.
pub fn request(
    timeout: Duration,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    // A server may answer (413) and close before the whole body is sent:
    // the answer is still there to read.
    let sent = stream
        .write_all(head.as_bytes())
        .and_then(|()| body.map_or(Ok(()), |b| stream.write_all(b)));
    let closed_early = |e: &std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        )
    };
    if let Err(e) = sent
        && !closed_early(&e)
    {
        return Err(e);
    }
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw)
        && (!closed_early(&e) || raw.is_empty())
    {
        return Err(e);
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP head in the answer"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = unchunk(&body);
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// Polls `GET path` on `gateway` until `ok` holds for its status and body;
/// returns that answer.
pub fn wait_gateway(
    gateway: &str,
    path: &str,
    ok: impl Fn(u16, &str) -> bool,
    what: &str,
) -> Answer {
    let deadline = Instant::now() + DEADLINE;
    let mut last = None;
    loop {
        if let Ok(answer) = get_answer(gateway, path) {
            if ok(answer.status, &answer.text()) {
                return answer;
            }
            last = Some((answer.status, answer.text()));
        }
        assert!(Instant::now() < deadline, "{what}: last answer {last:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn unchunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
}

/// A user's session: its cookie (`name=value`) and CSRF token.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

/// Logs `user` in (`POST /api/v1/session`, with a TOTP code if given).
pub fn login(api: &str, user: &str, password: &str, totp: Option<&str>) -> Session {
    let body = json!({"user": user, "password": password, "totp": totp}).to_string();
    let a = request(
        DEADLINE,
        api,
        "POST",
        "/api/v1/session",
        &[("Host", api), ("Content-Type", "application/json")],
        Some(body.as_bytes()),
    )
    .unwrap();
    assert_eq!(a.status, 201, "{}", a.text());
    let cookie = a
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = serde_json::from_slice::<Value>(&a.body).unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    Session { cookie, csrf }
}

/// A JSON request in session `s`: its status and JSON answer.
pub fn as_user(api: &str, s: &Session, method: &str, path: &str, body: Value) -> (u16, Value) {
    let body = body.to_string();
    let a = request(
        DEADLINE,
        api,
        method,
        path,
        &[
            ("Host", api),
            ("Cookie", &s.cookie),
            ("x-csrf-token", &s.csrf),
            ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
    )
    .unwrap();
    (
        a.status,
        serde_json::from_slice(&a.body).unwrap_or(Value::Null),
    )
}

/// A WAGI app that writes `line` (and a newline) to stderr and answers
/// `body` (and a newline) as text/plain.
pub fn talker(line: &str, body: &str) -> String {
    let stderr = format!("{line}\n");
    let stdout = format!("content-type: text/plain\n\n{body}\n");
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{}")
  (data (i32.const 256) "{}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 256))
    (i32.store (i32.const 4) (i32.const {}))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        stdout.replace('\n', "\\n"),
        stderr.replace('\n', "\\n"),
        stderr.len(),
        stdout.len()
    )
}

/// `GET path` with `x-dwcp-key: key`, which picks the version of a
/// weighted route (`common::exchange` sends no custom headers).
pub fn get_keyed(gateway: &str, path: &str, key: &str) -> Answer {
    let mut stream = TcpStream::connect(gateway).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {gateway}\r\nx-dwcp-key: {key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        headers: lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

/// The node's `/metrics` exposition.
pub fn metrics(c: &Cluster) -> String {
    let api = c.nodes[&1].api.clone();
    let answer = exchange(DEADLINE, &api, "GET", "/metrics", Some(&c.admin), None, "").unwrap();
    assert_eq!(answer.status, 200);
    answer.text()
}

/// Waits until `/path` answers from `version` `n` times in a row.
pub fn wait_version(gateway: &str, path: &str, version: u64, n: usize) {
    let deadline = Instant::now() + DEADLINE;
    let mut in_a_row = 0;
    while in_a_row < n {
        let a = get_answer(gateway, path).unwrap();
        if a.status == 200 && a.header("x-dwcp-version") == Some(&version.to_string()) {
            in_a_row += 1;
            continue;
        }
        in_a_row = 0;
        assert!(
            Instant::now() < deadline,
            "{path} never answered from version {version}: {} {:?} {}",
            a.status,
            a.header("x-dwcp-version"),
            a.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A rollout plan that sets the canary to `weight` % and waits there
/// until promoted.
pub fn held_at(c: &Cluster, weight: u32) -> String {
    let path = c.root.path().join(format!("plan-{weight}.json"));
    let plan = format!(
        r#"{{"steps": [{{"set_weight": {{"weight": {weight}}}}}, {{"pause": {{}}}}, {{"set_weight": {{"weight": 100}}}}], "timeout_ms": 600000}}"#
    );
    std::fs::write(&path, plan).unwrap();
    path.to_str().unwrap().to_string()
}

/// The version number in `dwcp deploy --version-only`'s output.
pub fn added_version(out: &str) -> String {
    out.split("added version ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no version in {out}"))
        .to_string()
}

/// A WAGI app that sleeps `NAP_NS` in `poll_oneoff` (holding its sandbox,
/// using no CPU), then answers `nap`.
const NAP: &str = r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "content-type: text/plain\0a\0anap\0a")
  (func (export "_start")
    ;; one relative clock subscription at 0 (see examples/hostile/sleep.wat)
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const NAP_NS))
    (drop (call $poll (i32.const 0) (i32.const 128) (i32.const 1) (i32.const 192)))
    ;; one iovec at 200: the 30 bytes at 256
    (i32.store (i32.const 200) (i32.const 256))
    (i32.store (i32.const 204) (i32.const 30))
    (drop (call $fd_write (i32.const 1) (i32.const 200) (i32.const 1) (i32.const 208)))))
"#;

/// [`NAP`] sleeping `ns` nanoseconds.
pub fn nap_wat(ns: u64) -> String {
    NAP.replace("NAP_NS", &ns.to_string())
}
