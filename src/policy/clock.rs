//! The time source of schedules. Injectable, so tests move time by hand.

use jiff::Timestamp;
use std::sync::atomic::{AtomicI64, Ordering};

/// Gives the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that says what it is told (tests, `explain --at`).
#[derive(Debug)]
pub struct ManualClock {
    seconds: AtomicI64,
}

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        ManualClock {
            seconds: AtomicI64::new(at.as_second()),
        }
    }

    pub fn set(&self, at: Timestamp) {
        self.seconds.store(at.as_second(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_second(self.seconds.load(Ordering::SeqCst)).unwrap_or(Timestamp::UNIX_EPOCH)
    }
}
