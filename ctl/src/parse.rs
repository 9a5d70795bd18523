//! Parsers for Docker-style flag values: sizes, CPU counts, durations, placement
//! constraints, bind mounts, published ports, `KEY=VALUE` pairs and `--args` strings.
//!
//! Every parser is pure and returns the *reason* a value is bad; [`crate::spec`] wraps
//! the reason with the flag's name and the value the user typed
//! (`invalid --limit-memory "12XB": unknown unit "XB"`). Where Docker accepts a syntax,
//! these parsers accept the same one (and compute the same numbers: Docker's `k`, `m`, `g`
//! are 1024-based whether or not an `i` follows).

use std::time::Duration;

use swarm_proto::{Mount, PortConfig, Ulimit};

/// Why a flag value was refused.
pub type Reason = String;

/// The ulimit names Docker accepts (`docker service create --ulimit`).
const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// Parses Docker's `--ulimit NAME=SOFT[:HARD]` (HARD defaults to SOFT; -1 is unlimited).
/// Which names a runtime supports is the manager's decision.
pub fn ulimit(value: &str) -> Result<Ulimit, Reason> {
    let (name, limits) = value
        .split_once('=')
        .ok_or("expected NAME=SOFT[:HARD], e.g. cpu=10")?;
    let name = name.trim();
    if !ULIMIT_NAMES.contains(&name) {
        return Err(format!(
            "unknown ulimit \"{name}\" (one of {})",
            ULIMIT_NAMES.join(", ")
        ));
    }
    let number = |v: &str| {
        v.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= -1)
            .ok_or_else(|| format!("\"{v}\" is not a limit (a whole number, or -1 for unlimited)"))
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (number(s)?, number(h)?),
        None => (number(limits)?, number(limits)?),
    };
    if hard != -1 && (soft == -1 || soft > hard) {
        return Err(format!("soft limit {soft} is above the hard limit {hard}"));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// Parses a memory size as Docker's `RAMInBytes` does: a decimal number, an optional
/// space, then an optional unit `b`, `k`, `m`, `g`, `t` or `p` (any case) optionally
/// followed by `i` and/or `b`. All units are binary: `64m` = `64MiB` = `64mb` = 64·2²⁰.
pub fn memory_bytes(value: &str) -> Result<i64, Reason> {
    let s = value.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    if number.is_empty() {
        return Err("expected a size such as 64MiB, 512m or 1g".into());
    }
    let number: f64 = number
        .parse()
        .map_err(|_| format!("\"{number}\" is not a number"))?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit);
    let multiplier = memory_unit(unit).ok_or_else(|| {
        format!("unknown unit \"{unit}\" (use b, k, m, g, t or p, as in 64MiB or 512m)")
    })?;
    let bytes = number * multiplier as f64;
    if bytes > i64::MAX as f64 {
        return Err("size is too large".into());
    }
    Ok(bytes as i64)
}

/// The multiplier of a Docker size unit, or None for an unknown one.
fn memory_unit(unit: &str) -> Option<i64> {
    let lower = unit.to_ascii_lowercase();
    let rest = lower.strip_suffix('b').unwrap_or(&lower);
    let rest = rest.strip_suffix('i').unwrap_or(rest);
    let exp = match rest {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return None,
    };
    Some(1i64 << (10 * exp))
}

/// Parses a CPU count (`0.5`, `2`, `1.25`) into nano-CPUs, as Docker's `NanoCPUs` does:
/// exact decimal arithmetic, and a value finer than 10⁻⁹ CPU is refused.
pub fn nano_cpus(value: &str) -> Result<i64, Reason> {
    let s = value.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
        return Err("expected a number of CPUs such as 0.5 or 2".into());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 9 {
        return Err("value is too precise (the smallest unit is 0.000000001 CPU)".into());
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| "value is too large".to_string())?
    };
    let frac_nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().unwrap_or(0)
    };
    whole
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_nanos))
        .ok_or_else(|| "value is too large".to_string())
}

/// Parses a duration the way Go's `time.ParseDuration` (and so Docker) does: a sequence
/// of decimal numbers each with a unit, `ns`, `us` (`µs`), `ms`, `s`, `m` or `h`, such as
/// `500ms`, `5s` or `1m30s`. A bare `0` is allowed; negative durations are not.
pub fn duration(value: &str) -> Result<Duration, Reason> {
    let s = value.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err("a duration cannot be negative".into());
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() {
        return Err("expected a duration such as 500ms, 5s or 1m30s".into());
    }
    let mut rest = s;
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(num_end);
        if number.is_empty() || number == "." {
            return Err("expected a duration such as 500ms, 5s or 1m30s".into());
        }
        let number: f64 = number
            .parse()
            .map_err(|_| format!("\"{number}\" is not a number"))?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let nanos_per_unit: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err("missing unit (use ms, s, m or h, as in 500ms, 5s or 1m30s)".into()),
            other => {
                return Err(format!(
                    "unknown unit \"{other}\" (use ns, us, ms, s, m or h, as in 500ms or 1m30s)"
                ));
            }
        };
        total_nanos += number * nanos_per_unit;
        rest = tail;
    }
    if total_nanos > u64::MAX as f64 {
        return Err("duration is too long".into());
    }
    Ok(Duration::from_nanos(total_nanos.round() as u64))
}

/// A duration in whole milliseconds (sub-millisecond parts are dropped), saturating.
pub fn duration_ms(value: &str) -> Result<u64, Reason> {
    duration(value).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Formats milliseconds as Go's `Duration.String` does: `0s`, `500ms`, `5s`, `1m30s`, `2h0m0s`.
pub fn format_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m) = (ms / 3_600_000, (ms / 60_000) % 60);
    let s = (ms % 60_000) as f64 / 1000.0;
    let secs = format!("{s}s");
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

/// The constraint keys the scheduler understands (DESIGN §4), for error messages.
const CONSTRAINT_KEYS: &str =
    "node.id, node.hostname, node.role, node.labels.<label> or engine.labels.<label>";

/// Checks a placement constraint: `KEY==VALUE` or `KEY!=VALUE`, where KEY is one of
/// `node.id`, `node.hostname`, `node.role`, `node.labels.X`, `engine.labels.X` (any case,
/// as SwarmKit lowercases keys) and VALUE uses SwarmKit's character set.
pub fn constraint(value: &str) -> Result<(), Reason> {
    let (key, val) = if let Some((k, v)) = value.split_once("==") {
        (k, v)
    } else if let Some((k, v)) = value.split_once("!=") {
        (k, v)
    } else {
        return Err(format!(
            "expected KEY==VALUE or KEY!=VALUE, where KEY is {CONSTRAINT_KEYS}"
        ));
    };
    let (key, val) = (key.trim(), val.trim());
    let key_lower = key.to_ascii_lowercase();
    let label = |prefix: &str| key_lower.strip_prefix(prefix).map(str::to_owned);
    let known = match key_lower.as_str() {
        "node.id" | "node.hostname" | "node.role" => true,
        _ => matches!(
            label("node.labels.").or_else(|| label("engine.labels.")),
            Some(l) if !l.is_empty()
        ),
    };
    if !known {
        return Err(format!("unknown key \"{key}\" (use {CONSTRAINT_KEYS})"));
    }
    let key_ok = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !key_ok {
        return Err(format!(
            "key \"{key}\" has characters other than letters, digits, '-', '_' and '.'"
        ));
    }
    if val.is_empty() {
        return Err("missing value after the operator".into());
    }
    let value_ok = val
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c.is_whitespace() || ":-_.*()?+[]\\^$|/".contains(c));
    if !value_ok {
        return Err(format!(
            "value \"{val}\" has characters a constraint value cannot hold"
        ));
    }
    if key_lower == "node.role"
        && !matches!(val.to_ascii_lowercase().as_str(), "manager" | "worker")
    {
        return Err(format!(
            "node.role is \"manager\" or \"worker\", not \"{val}\""
        ));
    }
    Ok(())
}

/// Parses `type=bind,source=S,target=T[,readonly]` (Docker's `--mount` syntax; `src`,
/// `dst`/`destination`, `ro` and `readonly=true|false` are accepted too). Only bind mounts
/// exist here, so `type` may be left out. Both paths must be absolute.
pub fn mount(value: &str) -> Result<Mount, Reason> {
    let mut m = Mount::default();
    for field in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.to_ascii_lowercase(), None),
        };
        match (key.as_str(), val) {
            ("type", Some("bind")) => {}
            ("type", Some(other)) => {
                return Err(format!(
                    "unsupported mount type \"{other}\" (only type=bind is supported)"
                ));
            }
            ("source" | "src", Some(v)) => m.source = v.to_owned(),
            ("target" | "dst" | "destination", Some(v)) => m.target = v.to_owned(),
            ("readonly" | "ro", None) => m.readonly = true,
            ("readonly" | "ro", Some(v)) => m.readonly = boolean(v)?,
            (_, None) => return Err(format!("\"{field}\" needs a value ({key}=...)")),
            _ => {
                return Err(format!(
                    "unknown key \"{key}\" (use type, source/src, target/dst, readonly/ro)"
                ));
            }
        }
    }
    if m.source.is_empty() {
        return Err("missing source=PATH".into());
    }
    if m.target.is_empty() {
        return Err("missing target=PATH".into());
    }
    if !m.source.starts_with('/') {
        return Err(format!(
            "source \"{}\" must be an absolute path on the node",
            m.source
        ));
    }
    if !m.target.starts_with('/') {
        return Err(format!("target \"{}\" must be an absolute path", m.target));
    }
    Ok(m)
}

/// A boolean as Go's `strconv.ParseBool` accepts it.
fn boolean(v: &str) -> Result<bool, Reason> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Ok(true),
        "0" | "f" | "false" => Ok(false),
        _ => Err(format!("\"{v}\" is not true or false")),
    }
}

/// Parses a published port: Docker's short syntax `[PUBLISHED:]TARGET[/tcp]` or its long
/// syntax `published=P,target=T[,protocol=tcp][,mode=ingress]`. A missing published port
/// is 0 ("the manager picks one"). Only TCP through the ingress routing mesh exists.
pub fn port(value: &str) -> Result<PortConfig, Reason> {
    let mut p = PortConfig {
        protocol: "tcp".into(),
        ..Default::default()
    };
    if value.contains('=') {
        for field in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let (key, val) = field
                .split_once('=')
                .ok_or_else(|| format!("\"{field}\" needs a value"))?;
            match key.trim().to_ascii_lowercase().as_str() {
                "published" => p.published_port = port_number(val.trim(), true)?,
                "target" => p.target_port = port_number(val.trim(), false)?,
                "protocol" => p.protocol = protocol(val.trim())?,
                "mode" if val.trim() == "ingress" => {}
                "mode" => {
                    return Err(format!(
                        "unsupported publish mode \"{}\" (only ingress)",
                        val.trim()
                    ));
                }
                other => {
                    return Err(format!(
                        "unknown key \"{other}\" (use published, target, protocol, mode)"
                    ));
                }
            }
        }
        if p.target_port == 0 {
            return Err("missing target=PORT".into());
        }
        return Ok(p);
    }
    let (ports, proto) = match value.split_once('/') {
        Some((ports, proto)) => (ports, Some(proto)),
        None => (value, None),
    };
    if let Some(proto) = proto {
        p.protocol = protocol(proto)?;
    }
    match ports.split(':').collect::<Vec<_>>().as_slice() {
        [target] => p.target_port = port_number(target, false)?,
        [published, target] => {
            p.published_port = port_number(published, true)?;
            p.target_port = port_number(target, false)?;
        }
        _ => return Err("expected [PUBLISHED:]TARGET[/tcp], as in 8080:80".into()),
    }
    Ok(p)
}

/// Parses a port number, 1–65535 (0 too where `zero_ok`).
fn port_number(v: &str, zero_ok: bool) -> Result<u32, Reason> {
    match v.parse::<u32>() {
        Ok(0) if zero_ok => Ok(0),
        Ok(n) if (1..=65535).contains(&n) => Ok(n),
        _ => Err(format!("\"{v}\" is not a port number (1-65535)")),
    }
}

/// Only TCP is published (the routing mesh is HTTP).
fn protocol(v: &str) -> Result<String, Reason> {
    match v.to_ascii_lowercase().as_str() {
        "tcp" => Ok("tcp".into()),
        _ => Err(format!("unsupported protocol \"{v}\" (only tcp)")),
    }
}

/// Parses a label `KEY=VALUE`; a bare `KEY` is a label with an empty value (as in Docker).
pub fn label(value: &str) -> Result<(String, String), Reason> {
    let (k, v) = value.split_once('=').unwrap_or((value, ""));
    if k.trim().is_empty() {
        return Err("missing key (expected KEY=VALUE)".into());
    }
    Ok((k.trim().to_owned(), v.to_owned()))
}

/// Parses an environment entry `KEY=VALUE`. A bare `KEY` takes its value from `lookup`
/// (the client's environment, as `docker -e KEY` does) and is dropped when unset there.
pub fn env(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, Reason> {
    match value.split_once('=') {
        Some(("", _)) => Err("missing variable name (expected KEY=VALUE)".into()),
        Some(_) => Ok(Some(value.to_owned())),
        None if value.trim().is_empty() => Err("missing variable name (expected KEY=VALUE)".into()),
        None => Ok(lookup(value).map(|v| format!("{value}={v}"))),
    }
}

/// The variable name of an `env` entry (`KEY` of `KEY=VALUE`).
pub fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// Splits an `--args` string into words as a POSIX shell would (quotes and backslashes),
/// without any expansion.
pub fn shell_words(value: &str) -> Result<Vec<String>, Reason> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("trailing backslash".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests;
