//! Reports for the authorities: what was filtered at one school over a
//! period, as JSON, CSV or HTML (Vietnamese headings with English).
//!
//! Privacy (see `docs/privacy.md`): only aggregates; cells between 1 and
//! k-1 are shown as "<k", with complementary suppression so a hidden cell
//! cannot be recomputed from the published total; top blocked domains below
//! k are left out. Totals are exact, so district merges add up.
//!
//! Every report is made in two steps: the exact counts (`publish::Counts`)
//! are gathered (from the database, or by summing merge inputs), then
//! `publish::publish` applies k-anonymity to them. A merge input
//! ([`Stage::MergeInput`], `edudns report --for-merge`) skips the second
//! step, so that the replicas of one school can be summed exactly and the
//! sum published by the same code as a single node's report.
//!
//! One file per step: `types.rs` is the report as it is written and
//! signed ([`Report`]; its JSON is the serde form), `gather.rs` counts one
//! school from the statistics database ([`build`]), `merge.rs` sums reports
//! ([`merge`]), `publish.rs` applies k-anonymity and complementary
//! suppression to either, `csv.rs` and [`html`] render a report. Each step
//! is re-exported here (callers name `report::build`, `report::Report`);
//! the files use one another one way (types ← publish ← gather, merge;
//! types ← csv, html), never this one.

mod csv;
mod gather;
pub mod html;
mod merge;
mod publish;
mod types;

#[cfg(test)]
mod fixtures;

pub use csv::to_csv;
pub use gather::{ReportError, build, build_stage};
pub use html::to_html;
pub use merge::{MergeError, MergeWarning, Merged, merge};
pub use publish::{Tally, suppress_cells};
pub use types::*;
