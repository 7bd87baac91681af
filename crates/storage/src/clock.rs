//! Where the store gets the time from: the system clock, or a clock a test
//! moves by hand (so TTL and GC tests never sleep).

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Milliseconds since the Unix epoch, as the store sees them.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::ids::now_ms()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    /// A clock starting at the current system time.
    pub fn new() -> Self {
        Self::at(crate::ids::now_ms())
    }

    pub fn at(ms: i64) -> Self {
        ManualClock {
            now: AtomicI64::new(ms),
        }
    }

    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(
            by.as_millis().min(i64::MAX as u128) as i64,
            Ordering::SeqCst,
        );
    }

    pub fn set(&self, ms: i64) {
        self.now.store(ms, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}

impl<C: Clock> Clock for std::sync::Arc<C> {
    fn now_ms(&self) -> i64 {
        (**self).now_ms()
    }
}
