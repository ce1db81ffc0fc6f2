//! Whether the filter is up: every category that names lists has at least
//! one loaded, and an upstream answered within the last 30 s (or answers a
//! probe now). `GET /readyz` answers with it; the heartbeat to the office
//! sends its verdict (`filter_up`).
//!
//! Uses: `dns::Handler` (the snapshot in force, the upstream).
//! Used by: `web` (`/readyz`), `office::heartbeat`.

use crate::dns::Handler;
use std::time::Duration;

/// An upstream answer younger than this makes the check skip its own probe.
pub const UPSTREAM_FRESH: Duration = Duration::from_secs(30);

/// What the check found.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub generation: u64,
    pub lists_loaded: usize,
    /// `category: list` of every list not loaded.
    pub missing_lists: Vec<String>,
    /// Categories that name lists but have none loaded.
    pub categories_without_lists: Vec<String>,
    pub upstream_reachable: bool,
    pub upstream_last_answer: Option<Duration>,
    pub upstream_error: Option<String>,
}

impl Readiness {
    /// The filter is up: lists in every category and an upstream.
    pub fn ready(&self) -> bool {
        self.categories_without_lists.is_empty() && self.upstream_reachable
    }
}

/// Checks the snapshot in force and the upstream (probing it only when it
/// has not answered for [`UPSTREAM_FRESH`]).
pub async fn readiness(handler: &Handler) -> Readiness {
    let snapshot = handler.snapshot.load_full();
    let mut missing_lists = Vec::new();
    let mut categories_without_lists = Vec::new();
    for (index, category) in snapshot.config.categories.iter().enumerate() {
        let mut any = false;
        for spec in &category.lists {
            if snapshot.loaded_list(index, &spec.display).is_some() {
                any = true;
            } else {
                missing_lists.push(format!("{}: {}", category.id, spec.display));
            }
        }
        if !any && !category.lists.is_empty() {
            categories_without_lists.push(category.id.clone());
        }
    }
    let upstream = handler.upstream.load_full();
    let (upstream_reachable, upstream_last_answer, upstream_error) =
        match upstream.last_answer_age() {
            Some(age) if age < UPSTREAM_FRESH => (true, Some(age), None),
            _ => match upstream.probe().await {
                Ok(_) => (true, Some(Duration::ZERO), None),
                Err(e) => (false, upstream.last_answer_age(), Some(e)),
            },
        };
    Readiness {
        generation: snapshot.generation,
        lists_loaded: snapshot.lists_loaded.len(),
        missing_lists,
        categories_without_lists,
        upstream_reachable,
        upstream_last_answer,
        upstream_error,
    }
}
