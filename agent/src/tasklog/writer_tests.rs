//! The writer against the reader: lines per stream, long lines split, partial lines
//! flushed by `finish`, rotation keeping `max_files`, and removal.

use super::*;
use crate::tasklog::{Tail, TaskLogReader};

const TASK: &str = "t1";

fn read_all(dir: &Path) -> Vec<LogRecord> {
    TaskLogReader::new(dir, TASK).backlog(Tail::All).unwrap()
}

fn texts(records: &[LogRecord]) -> Vec<&str> {
    records.iter().map(|r| r.log.as_str()).collect()
}

#[test]
fn complete_lines_become_records_per_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = TaskLogWriter::new(dir.path(), TASK, 1 << 20, 3);
    w.write(LogStream::Stdout, b"hello\nwor").unwrap();
    w.write(LogStream::Stderr, b"oops\n").unwrap();
    w.write(LogStream::Stdout, b"ld\n").unwrap();
    let records = read_all(dir.path());
    assert_eq!(texts(&records), ["hello", "oops", "world"]);
    assert_eq!(records[1].stream, LogStream::Stderr);
    assert!(records[0].time.parse::<u128>().unwrap() > 0);
    assert_eq!(w.last_line(LogStream::Stderr), Some("oops"));
    assert_eq!(w.last_line(LogStream::Stdout), Some("world"));
}

#[test]
fn nothing_written_creates_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = TaskLogWriter::new(&dir.path().join("logs"), TASK, 1 << 20, 3);
    w.write(LogStream::Stdout, b"no newline yet").unwrap();
    assert!(!dir.path().join("logs").exists());
    w.finish().unwrap();
    assert_eq!(
        texts(&read_all(&dir.path().join("logs"))),
        ["no newline yet"]
    );
}

#[test]
fn long_lines_are_split_at_max_line_without_breaking_characters() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = TaskLogWriter::new(dir.path(), TASK, 1 << 30, 3);
    let mut line = vec![b'a'; MAX_LINE - 1];
    line.extend_from_slice("é".as_bytes()); // straddles the limit
    line.extend_from_slice(&[b'b'; 10]);
    line.push(b'\n');
    w.write(LogStream::Stdout, &line).unwrap();
    let records = read_all(dir.path());
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].log.len(), MAX_LINE - 1);
    assert_eq!(records[1].log, format!("é{}", "b".repeat(10)));
}

#[test]
fn partial_lines_are_flushed_at_finish_per_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = TaskLogWriter::new(dir.path(), TASK, 1 << 20, 3);
    w.write(LogStream::Stdout, b"out").unwrap();
    w.write(LogStream::Stderr, b"err").unwrap();
    assert!(read_all(dir.path()).is_empty());
    w.finish().unwrap();
    assert_eq!(texts(&read_all(dir.path())), ["out", "err"]);
    assert_eq!(w.last_line(LogStream::Stderr), Some("err"));
}

#[test]
fn rotation_keeps_max_files_and_the_newest_lines() {
    let dir = tempfile::tempdir().unwrap();
    // Each record is about 60 bytes: two fit in one 150-byte file.
    let mut w = TaskLogWriter::new(dir.path(), TASK, 150, 3);
    for i in 0..10 {
        w.write(LogStream::Stdout, format!("line {i}\n").as_bytes())
            .unwrap();
    }
    let names: Vec<String> = {
        let mut n: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names, ["t1.log", "t1.log.1", "t1.log.2"]);
    for name in &names {
        let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
        assert!(len <= 150, "{name} has {len} bytes");
    }
    let all = read_all(dir.path());
    assert_eq!(
        texts(&all),
        ["line 4", "line 5", "line 6", "line 7", "line 8", "line 9"]
    );

    remove_task_logs(dir.path(), TASK).unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    remove_task_logs(dir.path(), TASK).unwrap();
}

#[test]
fn a_single_file_is_truncated_instead_of_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = TaskLogWriter::new(dir.path(), TASK, 100, 1);
    for i in 0..3 {
        w.write(LogStream::Stdout, format!("line {i}\n").as_bytes())
            .unwrap();
    }
    assert_eq!(texts(&read_all(dir.path())), ["line 2"]);
}
