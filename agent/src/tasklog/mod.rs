//! Per-task log files: what a task wrote to stdout and stderr, kept on the agent.
//!
//! Layout and format (Docker's `json-file` driver, so the files are familiar):
//!
//! ```text
//! <state-dir>/logs/<task-id>.log        current file, appended to
//! <state-dir>/logs/<task-id>.log.1      previous file, … up to .log.<max_files - 1>
//! one JSON object per line: {"time":"<unix ns>","stream":"stdout"|"stderr","log":"<line>"}
//! ```
//!
//! `log` holds one line without its newline (a line longer than [`MAX_LINE`] bytes is split,
//! invalid UTF-8 replaced). When the current file would grow past `max_bytes` it is renamed
//! to `.log.1` (older ones shift up; the oldest is dropped) and a new one is started, so a
//! task never holds more than `max_bytes * max_files` on disk. The backend writes (the
//! writer); the log publisher reads (tail, then follow) and sends lines to the managers.

use std::path::{Path, PathBuf};

mod reader;
mod writer;
pub use reader::{Tail, TaskLogReader};
pub use writer::{TaskLogWriter, remove_task_logs};

/// The longest line kept in one record; longer lines are split (Docker splits at 16 KiB).
pub const MAX_LINE: usize = 16 * 1024;
/// Default size of one log file before it rotates (Docker's `max-size` is unlimited; we cap).
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Default number of files kept per task, the current one included.
pub const DEFAULT_MAX_FILES: u32 = 3;

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// The task's standard output.
    Stdout,
    /// The task's standard error.
    Stderr,
}

/// One line of a task's output, as stored (one JSON object per file line).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogRecord {
    /// When the line was written, nanoseconds since the Unix epoch, as a decimal string.
    pub time: String,
    /// stdout or stderr.
    pub stream: LogStream,
    /// The line, without its newline.
    pub log: String,
}

/// The directory of all task logs under an agent state dir.
pub fn logs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("logs")
}

/// The current log file of `task_id` in `dir`; rotated files append `.1`, `.2`, ….
pub fn log_path(dir: &Path, task_id: &str) -> PathBuf {
    dir.join(format!("{task_id}.log"))
}
