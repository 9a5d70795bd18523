//! The reader against files written the way the writer writes them: tail across
//! rotations, follow through appends and a rotation, partial lines held back.

use std::io::Write;
use std::path::Path;

use super::*;
use crate::tasklog::LogStream;

const TASK: &str = "t1";

fn record(text: &str) -> String {
    let r = LogRecord {
        time: "1".into(),
        stream: LogStream::Stdout,
        log: text.into(),
    };
    format!("{}\n", serde_json::to_string(&r).unwrap())
}

fn append(path: &Path, bytes: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes.as_bytes()).unwrap();
}

fn lines(dir: &Path, suffix: &str, texts: &[&str]) {
    let path = dir.join(format!("{TASK}.log{suffix}"));
    for t in texts {
        append(&path, &record(t));
    }
}

fn texts(records: &[LogRecord]) -> Vec<&str> {
    records.iter().map(|r| r.log.as_str()).collect()
}

#[test]
fn tail_reads_oldest_to_newest_across_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    lines(dir.path(), ".2", &["1", "2"]);
    lines(dir.path(), ".1", &["3", "4"]);
    lines(dir.path(), "", &["5", "6"]);

    let all = TaskLogReader::new(dir.path(), TASK)
        .backlog(Tail::All)
        .unwrap();
    assert_eq!(texts(&all), ["1", "2", "3", "4", "5", "6"]);
    let last3 = TaskLogReader::new(dir.path(), TASK)
        .backlog(Tail::Last(3))
        .unwrap();
    assert_eq!(texts(&last3), ["4", "5", "6"]);
    let none = TaskLogReader::new(dir.path(), TASK)
        .backlog(Tail::Last(0))
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(Tail::from_wire(-1), Tail::All);
    assert_eq!(Tail::from_wire(2), Tail::Last(2));
}

#[test]
fn follow_sees_appended_lines_and_survives_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    lines(dir.path(), "", &["a"]);
    let mut reader = TaskLogReader::new(dir.path(), TASK);
    assert_eq!(texts(&reader.backlog(Tail::All).unwrap()), ["a"]);
    assert!(reader.poll().unwrap().is_empty());

    lines(dir.path(), "", &["b"]);
    assert_eq!(texts(&reader.poll().unwrap()), ["b"]);

    // The writer finishes the file, renames it to .log.1 and starts a new one.
    lines(dir.path(), "", &["c"]);
    let current = dir.path().join(format!("{TASK}.log"));
    std::fs::rename(&current, dir.path().join(format!("{TASK}.log.1"))).unwrap();
    assert_eq!(texts(&reader.poll().unwrap()), ["c"]);
    lines(dir.path(), "", &["d"]);
    assert_eq!(texts(&reader.poll().unwrap()), ["d"]);
    lines(dir.path(), "", &["e"]);
    assert_eq!(texts(&reader.poll().unwrap()), ["e"]);
}

#[test]
fn partial_last_line_waits_until_complete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{TASK}.log"));
    let full = record("whole");
    let (head, rest) = full.split_at(10);
    lines(dir.path(), "", &["first"]);
    append(&path, head);
    let mut reader = TaskLogReader::new(dir.path(), TASK);
    assert_eq!(texts(&reader.backlog(Tail::All).unwrap()), ["first"]);
    assert!(reader.poll().unwrap().is_empty(), "a partial line is held");
    append(&path, rest);
    assert_eq!(texts(&reader.poll().unwrap()), ["whole"]);
}

#[test]
fn a_task_without_logs_yet_is_followed_from_its_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut reader = TaskLogReader::new(dir.path(), TASK);
    assert!(reader.backlog(Tail::Last(10)).unwrap().is_empty());
    assert!(reader.poll().unwrap().is_empty());
    lines(dir.path(), "", &["hello"]);
    assert_eq!(texts(&reader.poll().unwrap()), ["hello"]);
}

#[test]
fn malformed_lines_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{TASK}.log"));
    append(&path, "not json\n");
    lines(dir.path(), "", &["ok"]);
    let got = TaskLogReader::new(dir.path(), TASK)
        .backlog(Tail::All)
        .unwrap();
    assert_eq!(texts(&got), ["ok"]);
}

#[test]
fn a_file_truncated_in_place_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    lines(dir.path(), "", &["old-1", "old-2"]);
    let mut reader = TaskLogReader::new(dir.path(), TASK);
    assert_eq!(reader.backlog(Tail::All).unwrap().len(), 2);
    let path = dir.path().join(format!("{TASK}.log"));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    lines(dir.path(), "", &["new"]);
    assert_eq!(texts(&reader.poll().unwrap()), ["new"]);
}
