//! The office's side of the statistics upload: each school node's signed
//! merge input for one closed day is checked and kept in the office's
//! database; district reports are merged from what was kept.
//!
//! An input is accepted when
//! - it is a merge input (`stage = "merge-input"`) of exactly one school,
//!   the school of the token that sent it, for exactly one day;
//! - that day is not in the future (one day of slack for time zones);
//! - it is signed with one of the school's registered public keys
//!   (`<stats.key_dir>/<school>.pub` or `<school>.<replica>.pub`);
//! - it names the database (node) its rows come from.
//!
//! The same school, node and day is kept once: the identical input again is
//! answered "duplicate" (a node that did not hear the first answer sends
//! it again), a different input for a day already kept is refused as a
//! conflict (a replayed or forged second version never replaces the first).
//!
//! Files: `check.rs` (the checks, on the request's thread), `queue.rs`
//! (group commit: one writer keeps every waiting input in one
//! transaction), `keep.rs` (the writing), `schema.rs` (the tables and
//! roll-ups), `days.rs` (day numbers). What was kept is read back by
//! [`super::district`].
//!
//! Uses: `stats` (the report types, signatures, the shared store). Used by:
//! `web` (`POST /api/v1/ingest`), `office::district`, `office::dashboard`.

mod check;
mod days;
mod keep;
mod queue;
mod schema;

pub use check::{Checked, Refused, Rows, check_input, numbers_digest};
pub use days::raw_id;
pub(crate) use days::{day_number, day_text, month_of, month_start};
pub use keep::{Ids, KeepError, Outcome, Receipt, Stored, keep};
pub use queue::{Ingest, IngestFigures, MAX_BATCH};
#[cfg(test)]
pub(crate) use schema::rebuild_rollups;
pub use schema::{DOMAINS_PER_DAY, RAW_INPUT_DAYS, ROLLUP_BATCH, SCHEMA};
pub(crate) use schema::{ensure_schema, flush_rollups};

use rusqlite::Connection;
use std::path::Path;

/// Checks `body` (a signed merge input, as JSON) sent with a token of
/// `token_school`, and keeps it at once, in a transaction of its own.
/// `today` is the office's date. The API queues checked inputs instead
/// ([`Ingest::submit`]); this is for tools and tests that keep one.
pub fn accept(
    db: &Connection,
    body: &[u8],
    token_school: &str,
    key_dir: &Path,
    today: jiff::civil::Date,
) -> Outcome {
    match check_input(body, token_school, key_dir, today) {
        Ok(checked) => keep(db, &mut Ids::default(), vec![checked])
            .pop()
            .unwrap_or_else(|| Err(KeepError("nothing was kept".into()))),
        Err(refused) => Ok(Err(refused)),
    }
}

#[cfg(test)]
mod tests;
