//! Wall-clock time as Unix milliseconds, the unit tokens and the room store
//! use. Intervals and deadlines use tokio's clock instead, so tests can
//! pause it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
