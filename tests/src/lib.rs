//! Harness for end-to-end tests: real `swarm-manager`, `swarm-agent` and `swarmctl`
//! processes on 127.0.0.1 (or in network namespaces, [`netns`]) with temp state dirs, and
//! condition waits with deadlines. [`cluster`] forms and compares several managers.
//!
//! The binaries are looked up next to the test executable (`target/<profile>/`); build
//! them first with `cargo build --workspace --all-targets` (the README's test command does).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

pub mod cluster;
pub mod netns;

/// Path of a workspace binary built alongside the tests.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --all-targets` before the end-to-end tests",
        path.display()
    );
    path
}

/// `service create -d --name NAME --replicas N`: how every test service starts; the task
/// (flags, image, args) follows.
pub fn create_detached<'a>(name: &'a str, replicas: &'a str) -> [&'a str; 7] {
    [
        "service",
        "create",
        "-d",
        "--name",
        name,
        "--replicas",
        replicas,
    ]
}

/// A free TCP port on 127.0.0.1 (bound and released; fine for tests on one machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Polls `check` every 50 ms until it returns `Some`, or fails after `deadline` saying
/// what did not happen.
pub fn wait_for<T>(what: &str, deadline: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The longest one swarmctl command may take in a test.
pub const CTL_DEADLINE: Duration = Duration::from_secs(60);

/// Runs `cmd` to completion and returns its output; if it runs longer than `deadline` it is
/// killed and the test fails naming `what`.
pub fn output_within(mut cmd: Command, deadline: Duration, what: &str) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    let pid = child.id().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(deadline) {
        Ok(out) => out.unwrap_or_else(|e| panic!("waiting for {what}: {e}")),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("{what} did not finish within {deadline:?} (killed)")
        }
    }
}

/// Initializes tracing for a test binary once (RUST_LOG honoured).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A child process killed (SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `program args…` with stdout/stderr appended to `log`.
    pub fn spawn(name: &str, program: &Path, args: &[String], log: &Path) -> anyhow::Result<Self> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = Command::new(program)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info,raft=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Self {
            child,
            name: name.to_string(),
            log: log.to_path_buf(),
        })
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait up to `deadline` for exit; returns the exit status.
    pub fn terminate(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        wait_for(
            &format!("{} to exit after SIGTERM", self.name),
            deadline,
            || self.child.try_wait().ok().flatten(),
        )
    }

    /// The process's output so far (for failure messages).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Where a process runs: the IP address it listens on, and the command prefix that puts it
/// there (`ip netns exec NS` for a network namespace, nothing for loopback).
#[derive(Debug, Clone)]
pub struct Host {
    pub ip: String,
    pub prefix: Vec<String>,
}

impl Host {
    /// 127.0.0.1 in the test's own network namespace.
    pub fn loopback() -> Self {
        Self {
            ip: "127.0.0.1".into(),
            prefix: Vec::new(),
        }
    }

    /// Starts `program args…` on this host, as [`Proc::spawn`] does.
    pub fn spawn(
        &self,
        name: &str,
        program: &Path,
        args: &[String],
        log: &Path,
    ) -> anyhow::Result<Proc> {
        let Some((first, rest)) = self.prefix.split_first() else {
            return Proc::spawn(name, program, args, log);
        };
        let mut all = rest.to_vec();
        all.push(program.display().to_string());
        all.extend(args.iter().cloned());
        Proc::spawn(name, Path::new(first), &all, log)
    }
}

/// A manager process with its own state dir and ports.
pub struct ManagerProc {
    pub proc: Proc,
    pub state_dir: PathBuf,
    pub host: Host,
    pub port: u16,
    pub extra: Vec<String>,
}

impl ManagerProc {
    /// `swarm-manager init` in `state_dir` on a fresh loopback port; waits for the socket.
    pub fn init(state_dir: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        Self::init_on(&Host::loopback(), state_dir, extra)
    }

    /// [`init`](Self::init) listening on `host`.
    pub fn init_on(host: &Host, state_dir: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        let port = free_port();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let mut m = Self::start("init", host, state_dir, port, &extra)?;
        m.extra = extra;
        Ok(m)
    }

    /// `swarm-manager join` through `remote` with the manager token, in `state_dir` on a fresh
    /// loopback port; waits until it answers.
    pub fn join(state_dir: &Path, remote: &ManagerProc, extra: &[&str]) -> anyhow::Result<Self> {
        Self::join_on(&Host::loopback(), state_dir, remote, extra)
    }

    /// [`join`](Self::join) listening on `host`.
    pub fn join_on(
        host: &Host,
        state_dir: &Path,
        remote: &ManagerProc,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        // A port free on loopback; in a network namespace of its own every port is free.
        let port = free_port();
        let mut args: Vec<String> = vec![
            "--remote".into(),
            remote.addr(),
            "--join-token".into(),
            remote.manager_token(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::start("join", host, state_dir, port, &args)
    }

    /// This manager's node id (from its state.json).
    pub fn node_id(&self) -> String {
        let state = std::fs::read(self.state_dir.join("state.json")).expect("read state.json");
        let v: Value = serde_json::from_slice(&state).expect("state.json is JSON");
        v["node_id"].as_str().expect("node_id").to_string()
    }

    fn start(
        cmd: &str,
        host: &Host,
        state_dir: &Path,
        port: u16,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let mut args = vec![
            cmd.to_string(),
            "--state-dir".into(),
            state_dir.display().to_string(),
            "--listen-addr".into(),
            format!("{}:{port}", host.ip),
            "--hostname".into(),
            "manager-1".into(),
        ];
        args.extend(extra.iter().cloned());
        let log = state_dir.with_extension(format!("{cmd}.log"));
        let proc = host.spawn("swarm-manager", &bin("swarm-manager"), &args, &log)?;
        let mut m = Self {
            proc,
            state_dir: state_dir.to_path_buf(),
            host: host.clone(),
            port,
            extra: extra.to_vec(),
        };
        m.wait_ready(cmd == "join")?;
        Ok(m)
    }

    /// `swarm-manager run` on the same state dir and port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.restart_with(&[])
    }

    /// [`restart`](Self::restart) with more flags for `run` (e.g. `--unlock-key K`).
    pub fn restart_with(&mut self, more: &[&str]) -> anyhow::Result<()> {
        self.proc.kill9();
        let mut extra = self.run_args();
        extra.extend(more.iter().map(|s| s.to_string()));
        let m = Self::start("run", &self.host, &self.state_dir, self.port, &extra)?;
        *self = m;
        Ok(())
    }

    /// The arguments of `swarm-manager run` for this manager: the flags it was started with
    /// that `run` also takes. Flags only `init` takes, and `--unlock-key` (given per start),
    /// are dropped.
    pub fn run_args(&self) -> Vec<String> {
        let mut extra = Vec::new();
        let mut args = self.extra.iter();
        while let Some(a) = args.next() {
            match a.as_str() {
                "--dispatcher-heartbeat"
                | "--task-history-limit"
                | "--cert-expiry"
                | "--unlock-key"
                | "--remote"
                | "--join-token" => {
                    args.next();
                }
                "--autolock" => {}
                _ => extra.push(a.clone()),
            }
        }
        extra
    }

    /// `swarm-manager run` as a bare process (for runs expected to fail at start).
    pub fn spawn_run(&self, more: &[&str], log: &Path) -> anyhow::Result<Proc> {
        let mut args = vec![
            "run".to_string(),
            "--state-dir".into(),
            self.state_dir.display().to_string(),
            "--listen-addr".into(),
            self.addr(),
        ];
        args.extend(self.run_args());
        args.extend(more.iter().map(|s| s.to_string()));
        self.host
            .spawn("swarm-manager", &bin("swarm-manager"), &args, log)
    }

    /// The control socket path.
    pub fn socket(&self) -> PathBuf {
        self.state_dir.join("control.sock")
    }

    /// `IP:PORT` of its listener (`127.0.0.1:PORT` on loopback).
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host.ip, self.port)
    }

    /// Waits until the control socket answers; fails at once if the process exits.
    /// Waits until the control socket answers; with `joined`, also until `swarm-manager
    /// join` said it is done (a joined manager is a raft learner until it has caught up and
    /// the leader made it a voter, and the command returns only then).
    fn wait_ready(&mut self, joined: bool) -> anyhow::Result<()> {
        let start = Instant::now();
        // Catching up on a large store (tests of 100,000 tasks) takes longer than starting.
        let deadline = Duration::from_secs(if joined { 120 } else { 30 });
        while start.elapsed() < deadline {
            if let Some(status) = self.proc.child.try_wait()? {
                bail!(
                    "manager exited ({status}) before it was ready; its output:\n{}",
                    self.proc.output()
                );
            }
            let done = !joined || self.proc.output().contains("joined the swarm as a manager");
            if done && self.socket().exists() {
                let out = self.ctl(&["cluster", "inspect", "--format", "json"]);
                if out.status.success() {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "manager did not become ready in {deadline:?}; its output:\n{}",
            self.proc.output()
        )
    }

    /// Runs swarmctl against this manager (killed, and the test failed, if it takes longer
    /// than [`CTL_DEADLINE`]).
    pub fn ctl(&self, args: &[&str]) -> Output {
        swarmctl(&self.socket(), args)
    }

    /// Runs swarmctl and returns stdout, panicking with stderr on failure.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        stdout_ok(args, self.ctl(args))
    }

    /// Runs swarmctl `args… --format json` and parses the output.
    pub fn ctl_json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["--format", "json"]);
        let s = self.ctl_ok(&a);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("swarmctl {a:?}: bad JSON ({e}): {s}"))
    }

    /// The service's tasks as JSON objects.
    pub fn tasks(&self, service: &str) -> Vec<Value> {
        match self.ctl_json(&["service", "ps", service]) {
            Value::Array(v) => v,
            other => panic!("service ps --format json did not return an array: {other}"),
        }
    }

    /// Pushes the smallest valid core module as `name_tag`, for services whose workload
    /// does not matter (the null backend); returns the digest swarmctl printed.
    pub fn push_empty_module(&self, name_tag: &str) -> String {
        let file = self.state_dir.with_extension("empty.wasm");
        std::fs::write(&file, EMPTY_MODULE).expect("write the empty module");
        self.ctl_ok(&["artifact", "push", &file.display().to_string(), name_tag])
            .trim()
            .to_string()
    }

    /// `service create -d --name NAME --replicas N EXTRA… IMAGE`, detached (with no agent
    /// its tasks stay pending: a way to fill the store).
    pub fn create_replicated(
        &self,
        name: &str,
        replicas: u64,
        extra: &[&str],
        image: &str,
    ) -> String {
        let replicas = replicas.to_string();
        let mut args = create_detached(name, &replicas).to_vec();
        args.extend_from_slice(extra);
        args.push(image);
        self.ctl_ok(&args)
    }

    /// Makes this manager snapshot its whole store with no log kept behind it (a new member
    /// can then only be sent the snapshot), waits until its metrics at `metrics` count the
    /// snapshot, and sets the snapshot interval back to 10,000 entries.
    pub fn snapshot_without_log(&self, metrics: &str) {
        let taken = r#"swarm_raft_snapshots_total{event="taken"}"#;
        let before = metric(metrics, taken).unwrap_or(0.0);
        // The snapshot is taken at the next entry, which this update is.
        self.ctl_ok(&[
            "cluster",
            "update",
            "--snapshot-interval",
            "1",
            "--log-entries-for-slow-followers",
            "0",
        ]);
        wait_for(
            "a snapshot of the whole store",
            Duration::from_secs(30),
            || (metric(metrics, taken).unwrap_or(0.0) > before).then_some(()),
        );
        self.ctl_ok(&["cluster", "update", "--snapshot-interval", "10000"]);
    }

    /// The manager join token.
    pub fn manager_token(&self) -> String {
        self.ctl_ok(&["join-token", "manager", "-q"])
            .trim()
            .to_string()
    }

    /// The worker join token.
    pub fn worker_token(&self) -> String {
        self.ctl_ok(&["join-token", "worker", "-q"])
            .trim()
            .to_string()
    }
}

/// Runs swarmctl against the manager whose control socket is `socket`.
pub fn swarmctl(socket: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin("swarmctl"));
    cmd.arg("--socket").arg(socket).args(args);
    output_within(cmd, CTL_DEADLINE, &format!("swarmctl {args:?}"))
}

/// The stdout of swarmctl `args` that gave `out`, panicking with its stderr on failure.
pub fn stdout_ok(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "swarmctl {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The smallest valid WebAssembly core module: the header alone.
pub const EMPTY_MODULE: &[u8] = b"\0asm\x01\0\0\0";

/// A standalone agent process on the null backend.
pub fn spawn_agent(
    manager: &ManagerProc,
    state_dir: &Path,
    hostname: &str,
) -> anyhow::Result<Proc> {
    spawn_agent_with(manager, state_dir, hostname, &["--backend", "null"])
}

/// A standalone agent process with `extra` flags (e.g. `--backend wasi --metrics-addr A`).
pub fn spawn_agent_with(
    manager: &ManagerProc,
    state_dir: &Path,
    hostname: &str,
    extra: &[&str],
) -> anyhow::Result<Proc> {
    let mut args = vec![
        "--manager".to_string(),
        manager.addr(),
        "--join-token".into(),
        manager.worker_token(),
        "--state-dir".into(),
        state_dir.display().to_string(),
        "--hostname".into(),
        hostname.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let log = state_dir.with_extension("agent.log");
    Proc::spawn("swarm-agent", &bin("swarm-agent"), &args, &log)
}

/// A task's observed state name ("RUNNING"), from its JSON.
pub fn state_of(task: &Value) -> String {
    task["status"]["state"].as_str().unwrap_or("").to_string()
}

/// A task's desired state name, from its JSON.
pub fn desired_of(task: &Value) -> String {
    task["desired_state"].as_str().unwrap_or("").to_string()
}

/// `GET /metrics` from `addr` (a manager's or agent's `--metrics-addr`); `None` if it does
/// not answer.
pub fn scrape_metrics(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// The value of the sample `name` (e.g. `swarm_agent_wasm_compiles_total`, or with labels)
/// at `addr`'s metrics endpoint.
pub fn metric(addr: &str, name: &str) -> Option<f64> {
    scrape_metrics(addr)?
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
