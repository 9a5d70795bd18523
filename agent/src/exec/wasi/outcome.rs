//! How a guest's run ended, as the driver wants it: an [`ExitStatus`] for a normal exit
//! (`exit(N)`, `run` returning `Err` = 1), an [`ExecError::Workload`] for a trap or a limit.
//!
//! Texts: a trap is wasmtime's message ("wasm trap: wasm `unreachable` instruction
//! executed"), with "(stack overflow)" added for call-stack exhaustion; when the memory
//! limiter refused a growth first, the limit leads ("memory limit of 64 MiB exceeded (wasm
//! trap: …)"), since that is the cause. A non-zero exit carries the guest's last stderr line
//! ("permission denied"; the driver adds "task: non-zero exit (1): ").

use wasmtime::Trap;
use wasmtime_wasi::I32Exit;

use super::cpu::CpuLimitExceeded;
use crate::exec::{ExecError, ExitStatus};

/// The raw end of a guest's run.
#[derive(Debug)]
pub(crate) enum Ended {
    /// `run`/`_start` returned; `false` when a command's `run` returned `Err`.
    Returned(bool),
    /// The call failed: a trap, `exit(N)` (an [`I32Exit`] error) or a host error.
    Failed(wasmtime::Error),
}

/// What the guest left behind that explains its end.
#[derive(Debug, Default)]
pub(crate) struct Evidence {
    /// "memory limit of 64 MiB exceeded" when the limiter refused a growth.
    pub(crate) memory: Option<String>,
    /// The last line the guest wrote to stderr.
    pub(crate) last_stderr: Option<String>,
}

/// The exit status, or the error that ends the task.
pub(crate) fn classify(end: Ended, evidence: Evidence) -> Result<ExitStatus, ExecError> {
    let err = match end {
        Ended::Returned(true) => return Ok(exit(0, &evidence)),
        Ended::Returned(false) => return Ok(exit(1, &evidence)),
        Ended::Failed(e) => e,
    };
    if let Some(code) = err.downcast_ref::<I32Exit>() {
        return Ok(exit(code.0, &evidence));
    }
    if let Some(cpu) = err.downcast_ref::<CpuLimitExceeded>() {
        return Err(ExecError::Workload(cpu.to_string()));
    }
    let text = match err.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => format!("{} (stack overflow)", Trap::StackOverflow),
        Some(trap) => trap.to_string(),
        None => format!("wasm guest failed: {err:#}"),
    };
    Err(ExecError::Workload(match evidence.memory {
        Some(memory) => format!("{memory} ({text})"),
        None => text,
    }))
}

fn exit(code: i32, evidence: &Evidence) -> ExitStatus {
    if code == 0 {
        return ExitStatus::default();
    }
    let detail = evidence.memory.as_ref().or(evidence.last_stderr.as_ref());
    ExitStatus {
        code,
        message: detail.cloned().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stderr(line: &str) -> Evidence {
        Evidence {
            memory: None,
            last_stderr: Some(line.into()),
        }
    }

    #[test]
    fn exits_map_to_codes_with_the_last_stderr_line() {
        assert_eq!(
            classify(Ended::Returned(true), stderr("x")).unwrap(),
            ExitStatus::default()
        );
        let e = classify(Ended::Returned(false), stderr("denied")).unwrap();
        assert_eq!((e.code, e.message.as_str()), (1, "denied"));
        let e = classify(Ended::Failed(I32Exit(7).into()), Evidence::default()).unwrap();
        assert_eq!((e.code, e.message.as_str()), (7, ""));
        let e = classify(Ended::Failed(I32Exit(0).into()), stderr("x")).unwrap();
        assert_eq!(e.code, 0);
    }

    #[test]
    fn traps_and_limits_are_workload_errors() {
        let text = |end, ev| classify(end, ev).unwrap_err().to_string();
        assert_eq!(
            text(
                Ended::Failed(Trap::UnreachableCodeReached.into()),
                Evidence::default()
            ),
            "wasm trap: wasm `unreachable` instruction executed"
        );
        assert_eq!(
            text(
                Ended::Failed(Trap::StackOverflow.into()),
                Evidence::default()
            ),
            "wasm trap: call stack exhausted (stack overflow)"
        );
        let oom = Evidence {
            memory: Some("memory limit of 64 MiB exceeded".into()),
            last_stderr: None,
        };
        assert!(
            text(Ended::Failed(Trap::UnreachableCodeReached.into()), oom)
                .starts_with("memory limit of 64 MiB exceeded (wasm trap: ")
        );
        assert_eq!(
            text(
                Ended::Failed(CpuLimitExceeded { seconds: 3 }.into()),
                Evidence::default()
            ),
            "cpu limit of 3 s exceeded"
        );
    }
}
