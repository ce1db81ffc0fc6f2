//! Lock-out after failed token attempts, and the one-editor lock: the
//! state [`AppState`](crate::web::state::AppState) holds for the API.

use crate::admin::tokens::Verifier;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed token attempts from one address before it is locked out.
pub const LOCKOUT_FAILURES: usize = 5;
/// The window those failures are counted in, and the lock-out's length.
pub const LOCKOUT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Authentication state shared by the management handlers.
#[derive(Default)]
pub struct Admin {
    pub(super) verifier: Verifier,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    /// Read-modify-write of the config file, one editor at a time.
    pub(super) edit_lock: tokio::sync::Mutex<()>,
}

impl Admin {
    pub(super) fn locked_out(&self, ip: IpAddr) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let list = failures.get_mut(&ip)?;
        while list.front().is_some_and(|t| t.elapsed() >= LOCKOUT_WINDOW) {
            list.pop_front();
        }
        if list.is_empty() {
            failures.remove(&ip);
            return None;
        }
        (list.len() >= LOCKOUT_FAILURES)
            .then(|| LOCKOUT_WINDOW.saturating_sub(list[list.len() - LOCKOUT_FAILURES].elapsed()))
    }

    pub(super) fn fail(&self, ip: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: a flood of sources cannot grow this without limit.
        if failures.len() > 10_000 {
            failures.retain(|_, l| l.back().is_some_and(|t| t.elapsed() < LOCKOUT_WINDOW));
        }
        failures.entry(ip).or_default().push_back(Instant::now());
    }
}
