//! Helpers to run the real binaries next to this one and read a manager's metrics.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A sibling binary of this executable (`target/release/<name>`).
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.parent().context("executable dir")?.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build with `cargo build --release --workspace --bins`",
            path.display()
        );
    }
    Ok(path)
}

/// Fetches `GET /metrics` from `addr` and returns the value of the sample `name{labels}`.
pub async fn metric(addr: &str, sample: &str) -> anyhow::Result<f64> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut body = String::new();
    s.read_to_string(&mut body).await?;
    body.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
        .with_context(|| format!("sample {sample} not in metrics"))
}

/// Resident set size of a process, in MiB (from /proc/PID/status VmRSS).
pub fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS missing")?;
    Ok(kb / 1024.0)
}

/// Polls `check` every `every` until it yields, or fails after `deadline`.
pub async fn wait_until<T, F, Fut>(
    what: &str,
    deadline: Duration,
    every: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if start.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(every).await;
    }
}

/// Runs swarmctl against a control socket; returns stdout or the error output.
pub async fn swarmctl(socket: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(sibling("swarmctl")?)
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .await?;
    if !out.status.success() {
        bail!(
            "swarmctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
