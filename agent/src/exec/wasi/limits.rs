//! [`MemoryLimiter`]: caps the total linear memory of one guest (all its memories together)
//! at the task's `resources.limits.memory_bytes`, and remembers a denial so that the trap
//! which usually follows (Rust aborts with `unreachable`) can be explained as
//! "memory limit of 64 MiB exceeded".

use wasmtime::ResourceLimiter;

/// Tables may grow to this many elements (the pool's slot size bounds them anyway).
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// The memory budget of one guest.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: u64,
    used: u64,
    denied: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit,
            used: 0,
            denied: false,
        }
    }

    /// The limit, once a growth was refused ("memory limit of 64 MiB exceeded").
    pub(crate) fn exceeded(&self) -> Option<String> {
        self.denied.then(|| limit_exceeded(self.limit))
    }
}

/// "memory limit of 64 MiB exceeded".
fn limit_exceeded(limit: u64) -> String {
    format!("memory limit of {} exceeded", format_bytes(limit))
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current) as u64;
        if self.used.saturating_add(growth) > self.limit {
            self.denied = true;
            return Ok(false);
        }
        self.used += growth;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// `bytes` as "64 MiB", "1.5 GiB", "512 KiB" or "100 B" (binary units, as Docker prints).
pub(crate) fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let whole = bytes / size;
            let tenths = (bytes % size) * 10 / size;
            return if tenths == 0 {
                format!("{whole} {unit}")
            } else {
                format!("{whole}.{tenths} {unit}")
            };
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_binary_units() {
        assert_eq!(format_bytes(64 << 20), "64 MiB");
        assert_eq!(format_bytes(3 << 29), "1.5 GiB");
        assert_eq!(format_bytes(1 << 30), "1 GiB");
        assert_eq!(format_bytes(512 << 10), "512 KiB");
        assert_eq!(format_bytes(100), "100 B");
    }

    #[test]
    fn denies_growth_past_the_total_and_remembers() {
        let mut l = MemoryLimiter::new(2 << 20);
        assert!(l.memory_growing(0, 1 << 20, None).unwrap());
        assert!(l.memory_growing(0, 1 << 20, None).unwrap()); // a second memory
        assert_eq!(l.exceeded(), None);
        assert!(!l.memory_growing(1 << 20, (1 << 20) + 65536, None).unwrap());
        assert_eq!(l.exceeded().unwrap(), "memory limit of 2 MiB exceeded");
    }
}
