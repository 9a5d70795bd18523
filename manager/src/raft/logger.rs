//! Bridges raft-rs's `slog` logging into `tracing`.
//!
//! raft-rs takes a `slog::Logger`; [`tracing_logger`] gives it one whose drain re-emits every
//! record as a `tracing` event with target `raft` at the matching level, so raft-rs logs obey
//! `RUST_LOG` (e.g. `RUST_LOG=raft=debug`) like the rest of the manager.

use std::fmt::{self, Write as _};

use slog::{Drain, KV, Level, OwnedKVList, Record};

/// A `slog::Logger` that forwards raft-rs records to `tracing` (target `raft`).
pub fn tracing_logger() -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!())
}

/// The slog drain behind [`tracing_logger`]. Levels map as: critical and error → `ERROR`,
/// warning → `WARN`, info → `INFO`, debug → `DEBUG`, trace → `TRACE`. Key-value pairs (the
/// record's and the logger's, e.g. raft-rs's `raft_id`) become one `kv` field.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingDrain;

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        macro_rules! forward {
            ($level:expr) => {{
                if tracing::enabled!(target: "raft", $level) {
                    let kv = format_kv(record, values);
                    tracing::event!(
                        target: "raft",
                        $level,
                        module = record.module(),
                        kv = %kv,
                        "{}",
                        record.msg()
                    );
                }
            }};
        }
        match record.level() {
            Level::Critical | Level::Error => forward!(tracing::Level::ERROR),
            Level::Warning => forward!(tracing::Level::WARN),
            Level::Info => forward!(tracing::Level::INFO),
            Level::Debug => forward!(tracing::Level::DEBUG),
            Level::Trace => forward!(tracing::Level::TRACE),
        }
        Ok(())
    }
}

/// `key=value` pairs of the record, then of the logger, space separated.
fn format_kv(record: &Record<'_>, values: &OwnedKVList) -> String {
    let mut out = KvString(String::new());
    // Serializing into a String cannot fail; a failing KV impl only loses its own pairs.
    let _ = record.kv().serialize(record, &mut out);
    let _ = values.serialize(record, &mut out);
    out.0
}

struct KvString(String);

impl slog::Serializer for KvString {
    fn emit_arguments(&mut self, key: slog::Key, val: &fmt::Arguments<'_>) -> slog::Result {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        let _ = write!(self.0, "{key}={val}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::{Event, Subscriber};
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

    use super::*;

    /// Records (target, level, rendered fields) of every event.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<(String, tracing::Level, String)>>>);

    struct Fields(String);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            let _ = write!(self.0, "{}={:?};", field.name(), value);
        }
    }

    impl<S: Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            let meta = event.metadata();
            self.0
                .lock()
                .unwrap()
                .push((meta.target().to_string(), *meta.level(), fields.0));
        }
    }

    #[test]
    fn forwards_records_to_tracing_with_level_and_kv() {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry()
            .with(capture.clone())
            .with(tracing_subscriber::filter::LevelFilter::DEBUG);
        tracing::subscriber::with_default(subscriber, || {
            // Callsite interest is global: another test's subscriber, registered at the same
            // moment on another thread, can leave the debug callsite cached as disabled.
            tracing::callsite::rebuild_interest_cache();
            let logger = tracing_logger().new(slog::o!("raft_id" => 7));
            slog::info!(logger, "became leader at term {}", 3; "term" => 3);
            slog::warn!(logger, "something odd");
            slog::error!(logger, "bad");
            slog::debug!(logger, "detail");
            slog::trace!(logger, "filtered out by the subscriber");
        });
        let events = capture.0.lock().unwrap().clone();
        let levels: Vec<_> = events.iter().map(|(_, l, _)| *l).collect();
        assert_eq!(
            levels,
            vec![
                tracing::Level::INFO,
                tracing::Level::WARN,
                tracing::Level::ERROR,
                tracing::Level::DEBUG
            ]
        );
        assert!(events.iter().all(|(t, _, _)| t == "raft"), "{events:?}");
        let (_, _, fields) = &events[0];
        assert!(fields.contains("became leader at term 3"), "{fields}");
        assert!(fields.contains("term=3"), "{fields}");
        assert!(fields.contains("raft_id=7"), "{fields}");
    }
}
