//! Real `dwcp up` processes on loopback addresses: what the process tests
//! (`crates/dwcp/tests/common`) and the benchmarks that need real nodes
//! (`crates/dwcp/src/bench/processes.rs`) share. A node killed here gets
//! SIGKILL: it loses its sockets, its memory and its unsynced work at once,
//! which no in-process stop imitates.
//!
//! - [`NodeProcess`]: one `dwcp up` child — started with its data directory
//!   and addresses, its stderr appended to a log file, its stdout lines
//!   collected; killed, reaped and restarted on the same directory and
//!   addresses; killed and reaped when dropped, also on a panic, so that a
//!   failed test or bench never leaves nodes behind.
//! - [`NodeProcess::tokens`]: the admin and join tokens a founder prints
//!   ([`NodeProcess::printed`]: any line it prints, by its prefix).
//! - [`free_ports`]: ports the kernel hands out as free, on one address.
//!
//! Invariants: every wait has a deadline and says what it waited for; no
//! fixed sleeps. It depends on no other crate of DWCP — it runs the
//! binary, it does not link it — and on nothing but `std` and `thiserror`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Why a node process could not be started or driven.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("starting {exe} up (data dir {dir}): {source}")]
    Spawn {
        exe: String,
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the node log {path}: {source}")]
    Log {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("binding {ip}:0 (is 127.0.0.0/8 loopback here?): {source}")]
    Bind {
        ip: Ipv4Addr,
        #[source]
        source: std::io::Error,
    },
    #[error("signalling or reaping the node with data dir {dir}: {source}")]
    Signal {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the node with data dir {dir} printed no `{what}…` line within {} s; see its log {log}", .waited.as_secs())]
    NotPrinted {
        dir: String,
        what: &'static str,
        waited: Duration,
        log: String,
    },
    #[error("the node is not running")]
    NotRunning,
}

/// How to start one node: what `dwcp up` is given.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// The `dwcp` binary.
    pub exe: PathBuf,
    pub data_dir: PathBuf,
    /// `--listen`, `--api` and `--gateway`, as `ip:port`.
    pub peer: String,
    pub api: String,
    pub gateway: String,
    /// Where its stderr is appended.
    pub log: PathBuf,
    /// Environment variables set for it.
    pub env: Vec<(OsString, OsString)>,
    /// Environment variables it must not inherit.
    pub env_remove: Vec<OsString>,
}

/// One `dwcp up` child, or the memory of one that was killed.
pub struct NodeProcess {
    spec: NodeSpec,
    /// `None` once reaped, until restarted.
    child: Option<Child>,
    /// Sent SIGKILL and not reaped yet.
    killed: bool,
    stdout: mpsc::Receiver<String>,
    /// Lines read while looking for another, kept for the next look.
    unread: RefCell<VecDeque<String>>,
}

/// The tokens a founding node prints on stdout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    pub admin: String,
    pub join: String,
}

impl NodeProcess {
    /// Starts `dwcp up` as `spec` says, with `extra` flags (`--join …`).
    pub fn start(spec: NodeSpec, extra: &[&str]) -> Result<NodeProcess, HarnessError> {
        let (child, stdout) = spawn(&spec, extra)?;
        Ok(NodeProcess {
            spec,
            child: Some(child),
            killed: false,
            stdout,
            unread: RefCell::default(),
        })
    }

    pub fn spec(&self) -> &NodeSpec {
        &self.spec
    }

    /// Whether it runs: started, not killed.
    pub fn running(&self) -> bool {
        self.child.is_some() && !self.killed
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().filter(|_| !self.killed).map(Child::id)
    }

    /// How it ended, if it exited by itself (or was killed) since.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>, HarnessError> {
        let dir = self.dir();
        match &mut self.child {
            None => Ok(None),
            Some(child) => child
                .try_wait()
                .map_err(|source| HarnessError::Signal { dir, source }),
        }
    }

    /// Sends SIGKILL (`Child::kill` on Unix). It is reaped by [`reap`]
    /// or the next [`restart`], so a caller timing what follows starts its
    /// clock at the signal.
    ///
    /// [`reap`]: NodeProcess::reap
    /// [`restart`]: NodeProcess::restart
    pub fn kill(&mut self) -> Result<(), HarnessError> {
        let dir = self.dir();
        let child = self.child.as_mut().ok_or(HarnessError::NotRunning)?;
        child
            .kill()
            .map_err(|source| HarnessError::Signal { dir, source })?;
        self.killed = true;
        Ok(())
    }

    /// Waits for a killed (or exited) child to be gone.
    pub fn reap(&mut self) -> Result<(), HarnessError> {
        let dir = self.dir();
        if let Some(mut child) = self.child.take() {
            child
                .wait()
                .map_err(|source| HarnessError::Signal { dir, source })?;
        }
        self.killed = false;
        Ok(())
    }

    /// Reaps the old child and starts `dwcp up` again on the same data
    /// directory and addresses, with `extra` flags.
    pub fn restart(&mut self, extra: &[&str]) -> Result<(), HarnessError> {
        self.reap()?;
        let (child, stdout) = spawn(&self.spec, extra)?;
        self.child = Some(child);
        self.stdout = stdout;
        self.unread.borrow_mut().clear();
        Ok(())
    }

    /// The lines of this run's stdout not taken yet (by this or
    /// [`printed`](NodeProcess::printed)).
    pub fn stdout_lines(&self) -> Vec<String> {
        let mut unread = self.unread.borrow_mut();
        unread.extend(self.stdout.try_iter());
        unread.drain(..).collect()
    }

    /// The rest of the first line of this run's stdout that starts with
    /// `prefix` (trimmed), waiting up to `deadline` for it; lines before
    /// it stay for later calls.
    pub fn printed(
        &self,
        prefix: &'static str,
        deadline: Duration,
    ) -> Result<String, HarnessError> {
        let mut unread = self.unread.borrow_mut();
        let found = |lines: &mut VecDeque<String>| {
            let at = lines.iter().position(|l| l.starts_with(prefix))?;
            let line = lines.remove(at)?;
            Some(line[prefix.len()..].trim().to_string())
        };
        if let Some(rest) = found(&mut unread) {
            return Ok(rest);
        }
        let until = Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let Ok(line) = self.stdout.recv_timeout(left) else {
                return Err(HarnessError::NotPrinted {
                    dir: self.dir(),
                    what: prefix,
                    waited: deadline,
                    log: self.spec.log.display().to_string(),
                });
            };
            unread.push_back(line);
            if let Some(rest) = found(&mut unread) {
                return Ok(rest);
            }
        }
    }

    /// What it logged (its stderr, every run), or nothing if unreadable.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.spec.log).unwrap_or_default()
    }

    /// The tokens a founding node prints (`admin token: …`, `join token:
    /// …`), waiting up to `deadline` for each.
    pub fn tokens(&self, deadline: Duration) -> Result<Tokens, HarnessError> {
        Ok(Tokens {
            admin: self.printed("admin token: ", deadline)?,
            join: self.printed("join token: ", deadline)?,
        })
    }

    fn dir(&self) -> String {
        self.spec.data_dir.display().to_string()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `dwcp up` for `spec`; its stdout lines go to the receiver (a
/// thread reads them, so the child never blocks on a full pipe).
fn spawn(spec: &NodeSpec, extra: &[&str]) -> Result<(Child, mpsc::Receiver<String>), HarnessError> {
    let log = open_log(&spec.log)?;
    let mut command = Command::new(&spec.exe);
    command
        .arg("up")
        .arg("--data-dir")
        .arg(&spec.data_dir)
        .args(["--listen", &spec.peer])
        .args(["--api", &spec.api])
        .args(["--gateway", &spec.gateway])
        .args(extra)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    for name in &spec.env_remove {
        command.env_remove(name);
    }
    let mut child = command.spawn().map_err(|source| HarnessError::Spawn {
        exe: spec.exe.display().to_string(),
        dir: spec.data_dir.display().to_string(),
        source,
    })?;
    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The node outlived its handle: keep draining.
                let _ = tx.send(line);
            }
        });
    }
    Ok((child, rx))
}

fn open_log(path: &Path) -> Result<std::fs::File, HarnessError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| HarnessError::Log {
            path: path.display().to_string(),
            source,
        })
}

/// `N` addresses on `ip`, each a port the kernel handed out as free. The
/// listeners are all bound before any is released, so the `N` ports
/// differ; they are released for the child to bind.
pub fn free_ports<const N: usize>(ip: Ipv4Addr) -> Result<[SocketAddr; N], HarnessError> {
    let bind = |source| HarnessError::Bind { ip, source };
    let listeners = (0..N)
        .map(|_| TcpListener::bind((ip, 0)).map_err(bind))
        .collect::<Result<Vec<_>, _>>()?;
    let mut addresses = [SocketAddr::from((ip, 0)); N];
    for (address, listener) in addresses.iter_mut().zip(&listeners) {
        *address = listener.local_addr().map_err(bind)?;
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_differ() {
        let [a, b, c] = free_ports::<3>(Ipv4Addr::LOCALHOST).unwrap();
        assert!(a.port() != b.port() && b.port() != c.port() && a.port() != c.port());
        assert!(a.ip().is_loopback());
    }

    /// A stand-in for `dwcp up` (a shell script printing tokens then
    /// waiting), so the process plumbing is tested without the binary.
    #[test]
    fn a_node_prints_its_tokens_is_killed_and_restarts() {
        let dir = std::env::temp_dir().join(format!("dwcp-harness-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("fake-dwcp");
        // The global tier's token comes after the others, as `dwcp up
        // --topology` prints it.
        let script = "#!/bin/sh\necho starting >&2\necho 'admin token: A1'\n\
                      echo 'join token: J1'\necho 'global join token: G1'\nexec sleep 600\n";
        std::fs::write(&exe, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let spec = NodeSpec {
            exe,
            data_dir: dir.join("node-1"),
            peer: "127.0.0.1:1".into(),
            api: "127.0.0.1:2".into(),
            gateway: "127.0.0.1:3".into(),
            log: dir.join("node-1.log"),
            env: vec![],
            env_remove: vec![],
        };
        let mut node = NodeProcess::start(spec, &[]).unwrap();
        let tokens = node.tokens(Duration::from_secs(60)).unwrap();
        assert_eq!(
            tokens,
            Tokens {
                admin: "A1".into(),
                join: "J1".into()
            }
        );
        assert_eq!(
            node.printed("global join token: ", Duration::from_secs(60))
                .unwrap(),
            "G1"
        );
        assert!(node.running() && node.pid().is_some());
        node.kill().unwrap();
        assert!(!node.running());
        node.restart(&[]).unwrap();
        assert!(node.running());
        // A new run; the lines passed over while looking for a later one
        // are still there.
        assert_eq!(
            node.printed("global join token: ", Duration::from_secs(60))
                .unwrap(),
            "G1"
        );
        assert_eq!(node.tokens(Duration::from_secs(60)).unwrap(), tokens);
        drop(node);
        let log = std::fs::read_to_string(dir.join("node-1.log")).unwrap();
        assert_eq!(log.matches("starting").count(), 2, "{log}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
