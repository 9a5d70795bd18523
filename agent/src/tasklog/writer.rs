//! [`TaskLogWriter`]: turns a task's raw stdout/stderr bytes into log records, one per line,
//! appended to `<dir>/<task-id>.log` and rotated as the module docs describe.
//!
//! ```text
//!  write(stream, bytes) ─▶ per-stream pending buffer ─▶ complete lines (and MAX_LINE pieces)
//!                                                        └─▶ rotate if needed ─▶ append record
//!  finish()             ─▶ pending partial lines written as records (the task exited)
//! ```
//!
//! Each record is written with one `write` call on a file opened in append mode, so a reader
//! never sees half a record except while that call runs (it holds back lines without `\n`).
//! The directory and file are created on the first line: a task that prints nothing leaves
//! no file behind.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{LogRecord, LogStream, MAX_LINE, log_path};

/// Appends one task's output to its log files, rotating them at a size limit.
#[derive(Debug)]
pub struct TaskLogWriter {
    path: PathBuf,
    max_bytes: u64,
    max_files: u32,
    file: Option<File>,
    size: u64,
    pending: [Vec<u8>; 2],
    last: [Option<String>; 2],
}

impl TaskLogWriter {
    /// A writer of `task_id`'s log in `dir` (`<state-dir>/logs`). Keeps at most `max_files`
    /// files (at least 1) of about `max_bytes` each. Nothing is created until a line is written.
    pub fn new(dir: &Path, task_id: &str, max_bytes: u64, max_files: u32) -> Self {
        Self {
            path: log_path(dir, task_id),
            max_bytes: max_bytes.max(1),
            max_files: max_files.max(1),
            file: None,
            size: 0,
            pending: [Vec::new(), Vec::new()],
            last: [None, None],
        }
    }

    /// Appends `bytes` that `stream` wrote: every complete line becomes a record, a line longer
    /// than [`MAX_LINE`] is split into several, the rest waits for more bytes or [`finish`].
    ///
    /// # Errors
    /// Creating, rotating or appending to the log file failed. The bytes are dropped then.
    ///
    /// [`finish`]: Self::finish
    pub fn write(&mut self, stream: LogStream, bytes: &[u8]) -> io::Result<()> {
        let i = index(stream);
        let mut pending = std::mem::take(&mut self.pending[i]);
        pending.extend_from_slice(bytes);
        let mut start = 0;
        let mut result = Ok(());
        while start < pending.len() {
            let rest = &pending[start..];
            let (line, used) = match rest.iter().position(|b| *b == b'\n') {
                Some(n) if n <= MAX_LINE => (&rest[..n], n + 1),
                _ if rest.len() > MAX_LINE => {
                    let n = char_boundary(rest, MAX_LINE);
                    (&rest[..n], n)
                }
                _ => break,
            };
            if result.is_ok() {
                result = self.append(stream, line);
            }
            start += used;
        }
        pending.drain(..start);
        self.pending[i] = pending;
        result
    }

    /// Writes out partial lines still pending (the task exited without a final newline).
    ///
    /// # Errors
    /// Appending to the log file failed.
    pub fn finish(&mut self) -> io::Result<()> {
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let pending = std::mem::take(&mut self.pending[index(stream)]);
            if !pending.is_empty() {
                self.append(stream, &pending)?;
            }
        }
        Ok(())
    }

    /// The last line `stream` wrote (complete or flushed by [`finish`](Self::finish)), e.g.
    /// to explain a non-zero exit with the guest's last error message.
    pub fn last_line(&self, stream: LogStream) -> Option<&str> {
        self.last[index(stream)].as_deref()
    }

    fn append(&mut self, stream: LogStream, line: &[u8]) -> io::Result<()> {
        let text = String::from_utf8_lossy(line).into_owned();
        let record = LogRecord {
            time: now_ns().to_string(),
            stream,
            log: text,
        };
        let mut bytes = serde_json::to_vec(&record).map_err(io::Error::other)?;
        bytes.push(b'\n');
        self.last[index(stream)] = Some(record.log);
        if self.size > 0 && self.size + bytes.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        if self.file.is_none() {
            self.file = Some(self.open()?);
        }
        if let Some(file) = &mut self.file {
            file.write_all(&bytes)?;
        }
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn open(&mut self) -> io::Result<File> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = file.metadata()?.len();
        Ok(file)
    }

    /// `.log.(n-1)` is dropped, `.log.k` becomes `.log.(k+1)`, `.log` becomes `.log.1`.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        self.size = 0;
        if self.max_files == 1 {
            return remove_if_exists(&self.path);
        }
        for k in (1..self.max_files - 1).rev() {
            rename_if_exists(&rotated(&self.path, k), &rotated(&self.path, k + 1))?;
        }
        rename_if_exists(&self.path, &rotated(&self.path, 1))
    }
}

/// Deletes every log file of `task_id` in `dir` (current and rotated). Missing files are fine.
///
/// # Errors
/// A file exists but could not be deleted.
pub fn remove_task_logs(dir: &Path, task_id: &str) -> io::Result<()> {
    let path = log_path(dir, task_id);
    remove_if_exists(&path)?;
    let mut k = 1;
    while rotated(&path, k).exists() {
        remove_if_exists(&rotated(&path, k))?;
        k += 1;
    }
    Ok(())
}

fn index(stream: LogStream) -> usize {
    match stream {
        LogStream::Stdout => 0,
        LogStream::Stderr => 1,
    }
}

/// The largest `n <= max` that does not split a UTF-8 sequence (0 < n unless `max` is 0).
fn char_boundary(bytes: &[u8], max: usize) -> usize {
    let mut n = max;
    // Back up over at most 3 continuation bytes; invalid input is cut at `max`.
    while n > max.saturating_sub(3) && n > 0 && (bytes[n] & 0xC0) == 0x80 {
        n -= 1;
    }
    if n == 0 { max } else { n }
}

fn rotated(path: &Path, k: u32) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{k}"));
    PathBuf::from(p)
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
