//! Waiting for a service to converge after `service create|update|scale|rollback`, with
//! Docker's progress display.
//!
//! ```text
//!  poll (every 100 ms): GetService + ListTasks(service) [+ ListNodes for global names]
//!        │
//!        ▼
//!  converge::evaluate(mode, tasks, min_spec_version)   ← pure, unit-tested
//!        │
//!        ▼
//!  Renderer::draw: TTY → redraw summary + one line per slot in place;
//!                  otherwise → print the summary (and task errors) only when they change
//!        │
//!  converged on two polls in a row → "verify: Service converged"; past --timeout → error
//! ```
//!
//! Progress goes to stderr, so `id=$(swarmctl service create …)` captures only the id.

pub mod converge;

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use clap::Args;
use swarm_proto::service_spec::Mode;
use swarm_proto::{GetServiceRequest, ListNodesRequest, ListTasksRequest};
use tokio::time::{Instant, MissedTickBehavior};

use crate::client::Client;
use crate::error::CtlError;
use crate::output::ellipsize;
use crate::parse;
use crate::spec::SpecError;
use converge::{LineStatus, Progress};

/// How often the tasks are polled.
const POLL: Duration = Duration::from_millis(100);
/// Consecutive converged polls before declaring convergence (rides out a task that is
/// RUNNING for an instant before it fails).
const STABLE_POLLS: u32 = 2;
/// Longest progress line drawn on a terminal (longer ones would wrap and break the redraw).
const TTY_LINE: usize = 79;

/// The flags of commands that wait for convergence.
#[derive(Args, Debug, Clone)]
pub struct WaitFlags {
    /// Exit immediately instead of waiting for the service to converge
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Suppress progress output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Give up waiting for convergence after this long (e.g. 30s, 5m)
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub timeout: String,
}

impl WaitFlags {
    /// The parsed `--timeout`.
    pub fn timeout(&self) -> Result<Duration, SpecError> {
        parse::duration(&self.timeout).map_err(|reason| SpecError::Invalid {
            flag: "timeout",
            value: self.timeout.clone(),
            reason,
        })
    }
}

/// What to wait for.
#[derive(Debug, Clone)]
pub struct Target {
    /// The service's id (or name).
    pub service: String,
    /// The name to show in messages.
    pub name: String,
    /// Tasks created from an older spec than this service version are ignored (0: none).
    pub min_spec_version: u64,
}

/// Polls until the service converges; draws progress on stderr unless `quiet`.
///
/// # Errors
/// A server error, or [`CtlError::Failed`] after `timeout`. Ctrl-C stops waiting (the
/// service keeps converging) and returns Ok.
pub async fn wait(
    client: &mut Client,
    target: &Target,
    timeout: Duration,
    quiet: bool,
) -> Result<(), CtlError> {
    let stderr = io::stderr();
    let tty = stderr.is_terminal();
    let mut view = Renderer::new(stderr.lock(), tty, quiet);
    let deadline = Instant::now() + timeout;
    let mut ticker = tokio::time::interval(POLL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut stable = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut ctrl_c => {
                view.message(&format!(
                    "Operation continuing in background.\nUse `swarmctl service ps {}` to check progress.",
                    target.name
                ))?;
                return Ok(());
            }
        }
        let p = poll(client, target).await?;
        view.draw(&p)?;
        if p.converged {
            stable += 1;
            if stable >= STABLE_POLLS {
                view.message("verify: Service converged")?;
                return Ok(());
            }
        } else {
            stable = 0;
        }
        if Instant::now() >= deadline {
            return Err(CtlError::Failed(format!(
                "service {} did not converge within {} ({}); it keeps converging in the background: check `swarmctl service ps {}`",
                target.name,
                parse::format_ms(timeout.as_millis() as u64),
                converge::summary(&p),
                target.name
            )));
        }
    }
}

/// One poll: the service, its tasks and (for global services) node names, evaluated.
async fn poll(client: &mut Client, target: &Target) -> Result<Progress, CtlError> {
    let service = client
        .get_service(GetServiceRequest {
            service_id: target.service.clone(),
        })
        .await?
        .into_inner()
        .service
        .ok_or_else(|| CtlError::Failed(format!("service {} disappeared", target.name)))?;
    let tasks = client
        .list_tasks(ListTasksRequest {
            service_id: service.id.clone(),
            node_id: String::new(),
        })
        .await?
        .into_inner()
        .tasks;
    let mode = service.spec.as_ref().and_then(|s| s.mode);
    let mut hostnames = HashMap::new();
    if matches!(mode, Some(Mode::Global(_) | Mode::GlobalJob(_))) {
        let nodes = client
            .list_nodes(ListNodesRequest {})
            .await?
            .into_inner()
            .nodes;
        for n in nodes {
            let name = n.description.map(|d| d.hostname).unwrap_or_default();
            if !name.is_empty() {
                hostnames.insert(n.id, name);
            }
        }
    }
    Ok(converge::evaluate(
        mode.as_ref(),
        &tasks,
        target.min_spec_version,
        &hostnames,
    ))
}

/// Draws progress: redrawn in place on a terminal, printed only on change otherwise.
pub struct Renderer<W: Write> {
    out: W,
    tty: bool,
    quiet: bool,
    /// Lines drawn by the last TTY redraw (to move the cursor back over).
    drawn: usize,
    last_summary: String,
    /// Error text last printed per line label (non-TTY).
    last_errors: HashMap<String, String>,
}

impl<W: Write> Renderer<W> {
    /// A renderer writing to `out`; `tty` selects in-place redraws.
    pub fn new(out: W, tty: bool, quiet: bool) -> Self {
        Renderer {
            out,
            tty,
            quiet,
            drawn: 0,
            last_summary: String::new(),
            last_errors: HashMap::new(),
        }
    }

    /// Shows one poll's progress.
    pub fn draw(&mut self, p: &Progress) -> io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        let summary = converge::summary(p);
        if self.tty {
            if self.drawn > 0 {
                write!(self.out, "\x1b[{}A", self.drawn)?;
            }
            let lines: Vec<String> = std::iter::once(summary)
                .chain(p.lines.iter().map(converge::format_line))
                .collect();
            for line in &lines {
                writeln!(self.out, "\x1b[2K{}", ellipsize(line, TTY_LINE))?;
            }
            write!(self.out, "\x1b[J")?;
            self.drawn = lines.len();
        } else {
            if summary != self.last_summary {
                writeln!(self.out, "{summary}")?;
                self.last_summary = summary;
            }
            for line in &p.lines {
                if let LineStatus::Error(e) = &line.status
                    && self.last_errors.get(&line.label) != Some(e)
                {
                    writeln!(self.out, "{}", converge::format_line(line))?;
                    self.last_errors.insert(line.label.clone(), e.clone());
                }
            }
        }
        self.out.flush()
    }

    /// Prints a closing line below the progress (nothing when quiet).
    pub fn message(&mut self, text: &str) -> io::Result<()> {
        if self.quiet {
            return Ok(());
        }
        writeln!(self.out, "{text}")?;
        self.drawn = 0;
        self.out.flush()
    }

    /// The writer (for tests).
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::converge::{Line, LineStatus, Progress};
    use super::*;
    use swarm_proto::TaskState;

    fn progress(done: u64, total: u64, lines: Vec<Line>) -> Progress {
        Progress {
            lines,
            done,
            total,
            job: false,
            converged: done == total,
        }
    }

    fn running(label: &str) -> Line {
        Line {
            label: label.into(),
            status: LineStatus::State {
                state: TaskState::Running,
                note: None,
            },
        }
    }

    #[test]
    fn non_tty_prints_only_changes() {
        let mut r = Renderer::new(Vec::new(), false, false);
        let failing = Line {
            label: "2/2".into(),
            status: LineStatus::Error("exit code 1".into()),
        };
        r.draw(&progress(0, 2, vec![])).unwrap();
        r.draw(&progress(0, 2, vec![])).unwrap();
        r.draw(&progress(1, 2, vec![running("1/2"), failing.clone()]))
            .unwrap();
        r.draw(&progress(1, 2, vec![running("1/2"), failing]))
            .unwrap();
        r.draw(&progress(2, 2, vec![running("1/2"), running("2/2")]))
            .unwrap();
        r.message("verify: Service converged").unwrap();
        let out = String::from_utf8(r.into_inner()).unwrap();
        assert_eq!(
            out,
            "overall progress: 0 out of 2 tasks\n\
             overall progress: 1 out of 2 tasks\n\
             2/2: exit code 1\n\
             overall progress: 2 out of 2 tasks\n\
             verify: Service converged\n"
        );
    }

    #[test]
    fn tty_redraws_in_place() {
        let mut r = Renderer::new(Vec::new(), true, false);
        r.draw(&progress(1, 1, vec![running("1/1")])).unwrap();
        r.draw(&progress(1, 1, vec![running("1/1")])).unwrap();
        let out = String::from_utf8(r.into_inner()).unwrap();
        let frame = "\x1b[2Koverall progress: 1 out of 1 tasks\n\x1b[2K1/1: running   [==================================================>]\n\x1b[J";
        assert_eq!(out, format!("{frame}\x1b[2A{frame}"));
    }

    #[test]
    fn quiet_prints_nothing() {
        let mut r = Renderer::new(Vec::new(), true, true);
        r.draw(&progress(1, 1, vec![running("1/1")])).unwrap();
        r.message("verify: Service converged").unwrap();
        assert!(r.into_inner().is_empty());
    }

    #[test]
    fn timeout_flag_is_validated() {
        let w = |t: &str| WaitFlags {
            detach: false,
            quiet: false,
            timeout: t.into(),
        };
        assert_eq!(w("30s").timeout(), Ok(Duration::from_secs(30)));
        assert_eq!(
            w("soon").timeout().unwrap_err().to_string(),
            "invalid --timeout \"soon\": expected a duration such as 500ms, 5s or 1m30s"
        );
    }
}
