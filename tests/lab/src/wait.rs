//! Polling with a deadline.

use std::time::{Duration, Instant};

/// Waits until `f` returns Some, or panics with `what` after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_for_then(limit, || what.to_string(), f)
}

/// [`wait_for`] with the panic message made at the time of the panic (e.g. with the logs as they
/// are then, not as they were when the wait began).
pub fn wait_for_then<T>(
    limit: Duration,
    what: impl FnOnce() -> String,
    f: impl FnMut() -> Option<T>,
) -> T {
    poll(limit, f).unwrap_or_else(|| panic!("timed out after {limit:?} waiting for {}", what()))
}

/// `f` every 100 ms until it returns Some, or None after `limit`.
pub fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
