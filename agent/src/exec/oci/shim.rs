//! The per-container shim (containerd-shim's role, in a few lines): a small process the
//! agent starts detached (its own process group), that runs `runtime run` in the
//! foreground, copies the container's stdout/stderr into the task log, and when the
//! container ends writes `<task dir>/exit.json` (code + last stderr line). It outlives the
//! agent, so a container keeps running and its exit code is kept across an agent restart.
//!
//! ```text
//! agent ──spawn (setpgid)──▶ swarm-agent oci-shim <task dir>     reads <task dir>/shim.json
//!                               └─▶ runc --root R run --bundle B ID
//!                                     stdout/stderr ─▶ logs/<task>.log (TaskLogWriter)
//!                               exit ─▶ <task dir>/exit.json (write temp + rename)
//! ```
//!
//! The exit code is the runtime's: the container's own code, or 128+N when signal N
//! killed it (143 after SIGTERM, 137 after SIGKILL).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::tasklog::{LogStream, TaskLogWriter};

/// The hidden subcommand that runs a shim (see [`exit_if_invoked`]).
pub const SUBCOMMAND: &str = "oci-shim";
/// The shim's instructions, in the task dir.
pub(crate) const CONFIG_FILE: &str = "shim.json";
/// The container's end, in the task dir.
pub(crate) const EXIT_FILE: &str = "exit.json";
/// The shim's pid, in the task dir.
pub(crate) const PID_FILE: &str = "shim.pid";
/// The shim's own diagnostics, in the task dir.
pub(crate) const LOG_FILE: &str = "shim.log";

/// What a shim runs and where it writes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct ShimConfig {
    pub(crate) task_id: String,
    pub(crate) argv: Vec<String>,
    pub(crate) logs_dir: PathBuf,
    pub(crate) log_max_bytes: u64,
    pub(crate) log_max_files: u32,
}

/// How the container ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct ExitRecord {
    pub(crate) code: i32,
    /// The last line the container wrote to stderr.
    pub(crate) message: String,
}

/// If this process was started as a shim (`BINARY oci-shim TASK_DIR`), runs it and exits
/// with its code; otherwise returns. Every binary that embeds an agent with the OCI backend
/// (`swarm-agent`, `swarm-manager`, `swarm-bench`) calls this first in `main`, since the
/// backend starts shims as its own binary ([`super::ShimCommand::current_exe`]).
pub fn exit_if_invoked() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(SUBCOMMAND) {
        std::process::exit(main(&args[2..]));
    }
}

/// Runs the shim for the task dir given as the one argument; returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    // A manager turns transparent huge pages off for itself (swarm-manager's main), and the
    // flag passes to its children: the container gets the host's policy back. Best effort.
    let _ = rustix::thread::disable_transparent_huge_pages(false);
    let [dir] = args else {
        eprintln!("usage: {SUBCOMMAND} TASK_DIR");
        return 2;
    };
    match run(Path::new(dir)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("oci-shim: {e:#}");
            1
        }
    }
}

fn run(dir: &Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let config: ShimConfig = serde_json::from_slice(
        &std::fs::read(dir.join(CONFIG_FILE)).context("read the shim config")?,
    )
    .context("parse the shim config")?;
    let (program, args) = config.argv.split_first().context("empty argv")?;
    let writer = Arc::new(Mutex::new(TaskLogWriter::new(
        &config.logs_dir,
        &config.task_id,
        config.log_max_bytes,
        config.log_max_files,
    )));
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("start {program}"))?;
    let copiers = [
        copy(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            LogStream::Stdout,
            &writer,
        ),
        copy(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            LogStream::Stderr,
            &writer,
        ),
    ];
    let status = child.wait().context("wait for the runtime")?;
    for c in copiers {
        let _ = c.join();
    }
    let message = {
        let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
        let _ = w.finish();
        w.last_line(LogStream::Stderr)
            .unwrap_or_default()
            .to_string()
    };
    let code = {
        use std::os::unix::process::ExitStatusExt;
        status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
    };
    write_exit(dir, &ExitRecord { code, message })
}

fn copy(
    stream: Option<Box<dyn Read + Send>>,
    which: LogStream,
    writer: &Arc<Mutex<TaskLogWriter>>,
) -> std::thread::JoinHandle<()> {
    let writer = Arc::clone(writer);
    std::thread::spawn(move || {
        let Some(mut stream) = stream else { return };
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
            // A log that cannot be written drops the output; the container keeps running.
            let _ = w.write(which, &buf[..n]);
        }
    })
}

/// Writes `exit.json` atomically (temp file + fsync + rename).
pub(crate) fn write_exit(dir: &Path, record: &ExitRecord) -> anyhow::Result<()> {
    use std::io::Write as _;
    let tmp = dir.join(format!("{EXIT_FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(record)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(EXIT_FILE))?;
    Ok(())
}

/// The exit record in `dir`, if the container ended.
pub(crate) fn read_exit(dir: &Path) -> Option<ExitRecord> {
    let bytes = std::fs::read(dir.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether the shim whose pid is in `dir` still runs.
pub(crate) fn shim_alive(dir: &Path) -> bool {
    let Some(pid) = std::fs::read_to_string(dir.join(PID_FILE))
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|p| *p > 0)
    else {
        return false;
    };
    // A zombie (exited, not yet reaped by the agent that started it) counts as gone, and so
    // does another process that reuses the pid (its command line does not name this dir).
    let zombie = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => return false,
    };
    let ours = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let dir = dir.as_os_str().as_encoded_bytes();
        c.split(|b| *b == 0).any(|arg| arg == dir)
    });
    !zombie && ours
}
