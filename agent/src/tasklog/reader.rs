//! [`TaskLogReader`]: reads one task's log files, the last lines first, then what the writer
//! appends (`docker logs --tail N -f` on the agent side).
//!
//! ```text
//!  backlog(tail):  <id>.log.K … <id>.log.2, <id>.log.1, <id>.log   oldest → newest,
//!                  keeping the last `tail` complete lines; the reader then sits at the end
//!                  of <id>.log with that file open
//!  poll():         new complete lines of the open file; when <id>.log is no longer the open
//!                  file (the writer renamed it to .log.1), the rest of the old file is read
//!                  through the open handle, then the new <id>.log from its start
//! ```
//!
//! Only complete lines (ending in `\n`) are returned: a partial last line is kept until the
//! writer finishes it. Lines that are not valid records are skipped with a warning. If the
//! writer rotates twice between two polls, the file in between is missed (the files are
//! megabytes and polls are sub-second, so that means the reader was stalled that long).
//! A file truncated in place (the writer keeps a single file) is read again from its start.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{LogRecord, log_path};

/// How many lines of the existing logs to read first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Everything still on disk.
    All,
    /// The last `n` lines (across rotated files).
    Last(usize),
}

impl Tail {
    /// From the wire's `tail` (negative = all).
    pub fn from_wire(tail: i64) -> Self {
        usize::try_from(tail).map_or(Tail::All, Tail::Last)
    }
}

/// The most bytes one [`TaskLogReader::poll`] reads, so a huge backlog is handed out in
/// pieces rather than all in memory at once.
const MAX_READ: u64 = 4 * 1024 * 1024;

/// Reads one task's log files; see the module docs for the order.
#[derive(Debug)]
pub struct TaskLogReader {
    path: PathBuf,
    current: Option<Open>,
}

/// The file being followed, identified by device and inode so a rename is noticed.
#[derive(Debug)]
struct Open {
    file: File,
    id: (u64, u64),
    /// Bytes read after the last newline.
    pending: Vec<u8>,
}

impl Open {
    fn new(file: File) -> io::Result<Self> {
        let id = file_id(&file.metadata()?);
        Ok(Self {
            file,
            id,
            pending: Vec::new(),
        })
    }

    /// Reads up to [`MAX_READ`] new bytes; returns the complete lines' records and whether
    /// the read stopped at the limit (more is waiting).
    fn read_lines(&mut self, out: &mut Vec<LogRecord>) -> io::Result<bool> {
        let before = self.pending.len();
        let n = (&mut self.file)
            .take(MAX_READ)
            .read_to_end(&mut self.pending)?;
        let Some(last_newline) = self.pending[before..]
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|i| before + i)
        else {
            return Ok(n as u64 == MAX_READ);
        };
        let rest = self.pending.split_off(last_newline + 1);
        parse_lines(&self.pending, out);
        self.pending = rest;
        Ok(n as u64 == MAX_READ)
    }
}

impl TaskLogReader {
    /// A reader of `task_id`'s logs in `dir` (`<state-dir>/logs`). Nothing is opened yet.
    pub fn new(dir: &Path, task_id: &str) -> Self {
        Self {
            path: log_path(dir, task_id),
            current: None,
        }
    }

    /// The last `tail` records on disk, oldest first; afterwards [`poll`](Self::poll)
    /// returns only lines written later. A task that has written nothing yet has no files:
    /// that is an empty backlog, not an error.
    ///
    /// # Errors
    /// Reading a file that exists failed.
    pub fn backlog(&mut self, tail: Tail) -> io::Result<Vec<LogRecord>> {
        // The current file is opened first: if the writer rotates meanwhile, the open file is
        // then also `.log.1`, which is recognised by its inode and read only once.
        self.current = match File::open(&self.path) {
            Ok(f) => Some(Open::new(f)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let mut keep = Keep::new(tail);
        for path in self.rotated().into_iter().rev() {
            let Some(file) = open_existing(&path)? else {
                continue;
            };
            let meta = file.metadata()?;
            if self
                .current
                .as_ref()
                .is_some_and(|c| c.id == file_id(&meta))
            {
                continue;
            }
            let mut bytes = Vec::new();
            (&file).read_to_end(&mut bytes)?;
            let mut records = Vec::new();
            // A rotated file ends with a complete line; a partial one cannot be finished.
            let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            parse_lines(&bytes[..complete], &mut records);
            keep.extend(records);
        }
        if let Some(current) = self.current.as_mut() {
            loop {
                let mut records = Vec::new();
                let more = current.read_lines(&mut records)?;
                keep.extend(records);
                if !more {
                    break;
                }
            }
        }
        Ok(keep.into_vec())
    }

    /// New complete records since the last call, following a rotation. Returns at most
    /// about 4 MiB worth; call again at once when the result is not empty.
    ///
    /// # Errors
    /// Reading or opening the current file failed (a missing file is not an error).
    pub fn poll(&mut self) -> io::Result<Vec<LogRecord>> {
        let mut out = Vec::new();
        let Some(current) = self.current.as_mut() else {
            if let Some(file) = open_existing(&self.path)? {
                let mut open = Open::new(file)?;
                open.read_lines(&mut out)?;
                self.current = Some(open);
            }
            return Ok(out);
        };
        if current.read_lines(&mut out)? {
            return Ok(out);
        }
        let now = match std::fs::metadata(&self.path) {
            Ok(m) => Some(file_id(&m)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if now == Some(current.id) {
            // With one file kept, the writer truncates it instead of rotating.
            let position = current.file.stream_position()?;
            if current.file.metadata()?.len() < position {
                current.file.rewind()?;
                current.pending.clear();
                current.read_lines(&mut out)?;
            }
            return Ok(out);
        }
        // Rotated: what the writer wrote before renaming was read above through the open
        // handle (the rename does not touch it). Switch to the new file, if it exists yet.
        if current.read_lines(&mut out)? {
            return Ok(out);
        }
        self.current = None;
        if let Some(file) = open_existing(&self.path)? {
            let mut open = Open::new(file)?;
            open.read_lines(&mut out)?;
            self.current = Some(open);
        }
        Ok(out)
    }

    /// `<id>.log.1`, `<id>.log.2`, … while they exist (newest first).
    fn rotated(&self) -> Vec<PathBuf> {
        (1..)
            .map(|i| {
                let mut p = self.path.clone().into_os_string();
                p.push(format!(".{i}"));
                PathBuf::from(p)
            })
            .take_while(|p| p.exists())
            .collect()
    }
}

/// Keeps all records, or only the last `n`.
enum Keep {
    All(Vec<LogRecord>),
    Last(usize, VecDeque<LogRecord>),
}

impl Keep {
    fn new(tail: Tail) -> Self {
        match tail {
            Tail::All => Keep::All(Vec::new()),
            Tail::Last(n) => Keep::Last(n, VecDeque::with_capacity(n.min(1024))),
        }
    }

    fn extend(&mut self, records: Vec<LogRecord>) {
        match self {
            Keep::All(v) => v.extend(records),
            Keep::Last(n, q) => {
                for r in records {
                    if q.len() == *n {
                        q.pop_front();
                    }
                    if *n > 0 {
                        q.push_back(r);
                    }
                }
            }
        }
    }

    fn into_vec(self) -> Vec<LogRecord> {
        match self {
            Keep::All(v) => v,
            Keep::Last(_, q) => q.into(),
        }
    }
}

fn file_id(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

fn open_existing(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Parses newline-separated JSON records, skipping blank and malformed lines.
fn parse_lines(bytes: &[u8], out: &mut Vec<LogRecord>) {
    for line in bytes.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<LogRecord>(line) {
            Ok(r) => out.push(r),
            Err(e) => tracing::warn!(error = %e, "skipping a malformed task log line"),
        }
    }
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
