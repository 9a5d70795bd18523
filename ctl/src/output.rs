//! Output helpers: aligned tables as Docker prints them, JSON, id/text truncation and
//! Docker's relative times ("5 seconds ago").

use std::io::{self, Write};
use std::time::Duration;

use clap::ValueEnum;
use serde::Serialize;

/// `--format` of list commands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Aligned columns
    #[default]
    Table,
    /// Pretty JSON of the objects
    Json,
}

/// `--format` of inspect commands (JSON is also their default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    /// Pretty JSON of the objects
    #[default]
    Json,
}

/// Ids in tables are shortened to this many characters, as Docker does.
pub const SHORT_ID: usize = 12;

/// Minimum column width and padding, as Docker's `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`.
const MIN_WIDTH: usize = 10;
const PADDING: usize = 3;

/// A table of text cells, rendered with columns padded to their widest cell.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells are empty, extra cells are ignored.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The number of rows (headers excluded).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Renders the headers and rows: every column but the last is as wide as its widest
    /// cell plus 3 spaces (at least 10); no line has trailing spaces.
    pub fn render(&self) -> String {
        let cols = self.headers.len();
        let cell = |row: &[String], i: usize| row.get(i).map_or("", String::as_str).to_owned();
        let mut widths = vec![0usize; cols];
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            for (i, w) in widths.iter_mut().enumerate() {
                *w = (*w).max(cell(row, i).chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, w) in widths.iter().enumerate() {
                let text = cell(row, i);
                line.push_str(&text);
                if i + 1 < cols {
                    let width = (w + PADDING).max(MIN_WIDTH);
                    line.extend(std::iter::repeat_n(' ', width - text.chars().count()));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Writes `value` as pretty JSON and a newline.
pub fn write_json<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::other)?;
    writeln!(out)
}

/// The first 12 characters of an id (the whole id when `no_trunc`).
pub fn short_id(id: &str, no_trunc: bool) -> &str {
    if no_trunc {
        return id;
    }
    id.char_indices()
        .nth(SHORT_ID)
        .map_or(id, |(i, _)| &id[..i])
}

/// `text` cut to `max` characters, the last one replaced by `…` when cut.
pub fn ellipsize(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// First letter upper case ("running" → "Running").
pub fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A duration as Docker's `units.HumanDuration` words it ("Less than a second",
/// "5 seconds", "About a minute", "3 hours", "2 weeks").
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    let hours = (d.as_secs_f64() / 3600.0).round() as u64;
    match () {
        _ if seconds < 1 => "Less than a second".into(),
        _ if seconds == 1 => "1 second".into(),
        _ if seconds < 60 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// "5 seconds ago" for a Unix-nanosecond timestamp seen at `now_ns` (a timestamp in the
/// future counts as now).
pub fn ago(now_ns: i64, then_ns: i64) -> String {
    let nanos = u64::try_from(now_ns.saturating_sub(then_ns)).unwrap_or(0);
    format!("{} ago", human_duration(Duration::from_nanos(nanos)))
}

/// Docker's human-readable byte size (`units.BytesSize`: four significant digits, binary
/// units): "64MiB", "1.5GiB", "68.51KiB", "512B".
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    let integer_digits = if v < 1.0 {
        1
    } else {
        v.log10().floor() as usize + 1
    };
    let s = format!("{v:.*}", 4usize.saturating_sub(integer_digits));
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    format!("{s}{}", UNITS[unit])
}

/// Nano-CPUs as a CPU count ("0.5").
pub fn cpus(nanos: i64) -> String {
    let s = format!("{:.9}", nanos as f64 / 1e9);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A Unix-nanosecond timestamp as RFC 3339 UTC with seconds ("2024-05-01T12:00:00Z").
pub fn timestamp(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days → civil date.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            timestamp(1_714_564_800 * 1_000_000_000),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(
            timestamp(951_782_400 * 1_000_000_000 + 999),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn columns_align_to_the_widest_cell_plus_three() {
        let mut t = Table::new(&["ID", "NAME", "REPLICAS"]);
        t.row(vec!["abc".into(), "web-frontend-long".into(), "3/3".into()]);
        t.row(vec!["def".into(), "db".into(), "1/1".into()]);
        let out = t.render();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "ID        NAME                REPLICAS");
        assert_eq!(lines[1], "abc       web-frontend-long   3/3");
        assert_eq!(lines[2], "def       db                  1/1");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn empty_last_cells_leave_no_trailing_spaces() {
        let mut t = Table::new(&["ID", "MANAGER STATUS"]);
        t.row(vec!["n1".into(), String::new()]);
        t.row(vec!["n2".into()]);
        assert_eq!(t.render(), "ID        MANAGER STATUS\nn1\nn2\n");
        assert!(Table::new(&["A"]).is_empty());
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["ééééééééééé".into(), "x".into()]);
        assert_eq!(t.render().lines().nth(1), Some("ééééééééééé   x"));
    }

    #[test]
    fn truncation() {
        assert_eq!(short_id("0123456789abcdefghijklmno", false), "0123456789ab");
        assert_eq!(
            short_id("0123456789abcdefghijklmno", true),
            "0123456789abcdefghijklmno"
        );
        assert_eq!(short_id("abc", false), "abc");
        assert_eq!(ellipsize("hello world", 5), "hell…");
        assert_eq!(ellipsize("hello", 5), "hello");
        assert_eq!(capitalize("running"), "Running");
        assert_eq!(capitalize(""), "");
    }

    #[test]
    fn relative_times_read_like_docker() {
        let s = |secs: u64| human_duration(Duration::from_secs(secs));
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(s(1), "1 second");
        assert_eq!(s(5), "5 seconds");
        assert_eq!(s(59), "59 seconds");
        assert_eq!(s(60), "About a minute");
        assert_eq!(s(119), "About a minute");
        assert_eq!(s(120), "2 minutes");
        assert_eq!(s(3599), "59 minutes");
        assert_eq!(s(3600), "About an hour");
        assert_eq!(s(5 * 3600), "5 hours");
        assert_eq!(s(3 * 86400), "3 days");
        assert_eq!(s(20 * 86400), "2 weeks");
        assert_eq!(s(90 * 86400), "3 months");
        assert_eq!(s(3 * 365 * 86400), "3 years");
        let now = 1_000_000_000_000_000_000;
        assert_eq!(ago(now, now - 5_000_000_000), "5 seconds ago");
        assert_eq!(ago(now, now + 5_000_000_000), "Less than a second ago");
    }

    #[test]
    fn sizes_and_cpus() {
        assert_eq!(bytes(64 << 20), "64MiB");
        assert_eq!(bytes(3 << 29), "1.5GiB");
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(70_159), "68.51KiB");
        assert_eq!(bytes(1000), "1000B");
        assert_eq!(bytes(0), "0B");
        assert_eq!(cpus(500_000_000), "0.5");
        assert_eq!(cpus(2_000_000_000), "2");
    }

    #[test]
    fn json_is_pretty_with_enum_names() {
        let mut out = Vec::new();
        let status = swarm_proto::TaskStatus {
            state: swarm_proto::TaskState::Running as i32,
            ..Default::default()
        };
        write_json(&mut out, &status).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\"state\": \"RUNNING\""), "{text}");
        assert!(text.ends_with("}\n"));
    }
}
