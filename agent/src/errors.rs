//! Formatting an error with its causes, for log lines and task status texts. Error enums in
//! this crate keep the cause out of their own `Display` and expose it as `source()`, so
//! printing the chain never repeats a message.

use std::error::Error;

/// `err` and each of its sources, joined by ": " ("connect to manager m:1: transport error:
/// tcp connect error: Connection refused (os error 111)").
pub fn chain(err: &dyn Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn joins_causes() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(chain(&e), "outer: inner");
    }
}
