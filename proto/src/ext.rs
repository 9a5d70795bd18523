//! Small helpers over the generated types that every crate uses: ids, clocks, state names.

use rand::Rng;

use crate::{StoreObject, TaskState, store_object};

/// A new random object id: 25 base-36 characters, as SwarmKit's `identity.NewID` makes.
pub fn new_id() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(25);
    let mut rng = rand::rng();
    for _ in 0..25 {
        out.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    out
}

/// Unix time now, in nanoseconds.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}

/// Parses a Go-style duration as Docker's flags take it: `500ms`, `5s`, `1m30s`, `2h`, `1.5s`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = |why: &str| format!("invalid duration {s:?}: {why} (examples: 500ms, 5s, 1m30s)");
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad("empty"));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad("missing unit"))?;
        if num_len == 0 {
            return Err(bad("expected a number"));
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad("bad number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            u => return Err(bad(&format!("unknown unit {u:?}"))),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

impl TaskState {
    /// The state as Docker shows it: lower case ("running").
    pub fn display_name(self) -> String {
        self.as_str_name().to_ascii_lowercase()
    }

    /// The state an `i32` field holds, or NEW for an unknown value.
    pub fn of(v: i32) -> Self {
        Self::try_from(v).unwrap_or(Self::New)
    }

    /// True once the task can no longer run (COMPLETE and later).
    pub fn is_terminal(self) -> bool {
        self >= TaskState::Complete
    }
}

impl StoreObject {
    /// The id of whatever object this wraps ("" for none).
    pub fn id(&self) -> &str {
        match &self.object {
            Some(store_object::Object::Node(n)) => &n.id,
            Some(store_object::Object::Service(s)) => &s.id,
            Some(store_object::Object::Task(t)) => &t.id,
            Some(store_object::Object::Cluster(c)) => &c.id,
            Some(store_object::Object::Artifact(a)) => &a.id,
            Some(store_object::Object::BlobChunk(b)) => &b.digest,
            None => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_25_base36_chars_and_unique() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 25);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
        assert_ne!(a, b);
    }

    #[test]
    fn durations_parse_like_go() {
        use std::time::Duration;
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("5").unwrap_err().contains("missing unit"));
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn task_states_order_as_swarmkit_numbers() {
        assert!(TaskState::Pending < TaskState::Assigned);
        assert!(TaskState::Running < TaskState::Complete);
        assert_eq!(TaskState::Running as i32, 512);
        assert_eq!(TaskState::of(640), TaskState::Shutdown);
        assert!(TaskState::Failed.is_terminal());
        assert!(!TaskState::Running.is_terminal());
    }
}
