//! The education office's side of a node, both ways: the policy comes
//! down ([`pull`]: conditional GET of `[central] url`, validate, swap), the
//! statistics go up ([`upload`]: each closed day's signed merge input to
//! `[upload] url`, with a [`heartbeat`] every hour whatever is pending),
//! and an office keeps what its schools send and merges
//! district reports from it ([`ingest`] keeps, [`district`] reads); the
//! console's overview sums the same inputs per day and per school
//! ([`dashboard`], which uses `district`).
//!
//! Uses: `config` (the `[central]` merge and validation), `app::reload` (to
//! swap a new policy in), `lists::download` (HTTP), `stats` (reports,
//! signatures, the database), `snapshot` (the configuration in force).
//! Used by: `app` (started with the service), `web` (`/api/v1/ingest`,
//! `/api/v1/heartbeat`,
//! district reports, `/api/v1/district` and `/dashboard`, metrics), `cli`
//! (district reports).

pub mod dashboard;
pub mod district;
pub mod heartbeat;
pub mod ingest;
pub mod pull;
pub mod upload;

use std::sync::atomic::Ordering;

/// The statistics upload's, heartbeat's and ingest's lines of `/metrics`
/// (counters that start with the process; labels are bounded: a result,
/// never a school).
pub fn exposition(
    upload: &upload::UploadFigures,
    heartbeat: &heartbeat::HeartbeatFigures,
    ingest: &ingest::IngestFigures,
) -> String {
    let get = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
    format!(
        "# HELP edudns_statistics_upload_total Days of statistics this node sent to the office, by result (sent; duplicate: the office had it; conflict: the office keeps another version of the day; failed: tries that failed).
# TYPE edudns_statistics_upload_total counter
edudns_statistics_upload_total{{result=\"sent\"}} {}
edudns_statistics_upload_total{{result=\"duplicate\"}} {}
edudns_statistics_upload_total{{result=\"conflict\"}} {}
edudns_statistics_upload_total{{result=\"failed\"}} {}
# HELP edudns_statistics_upload_pending_days Closed days the office has not confirmed yet.
# TYPE edudns_statistics_upload_pending_days gauge
edudns_statistics_upload_pending_days {}
# HELP edudns_statistics_upload_last_success_timestamp_seconds When the office last confirmed a day (0: never).
# TYPE edudns_statistics_upload_last_success_timestamp_seconds gauge
edudns_statistics_upload_last_success_timestamp_seconds {}
# HELP edudns_ingest_total Statistics inputs schools sent to this office, by result.
# TYPE edudns_ingest_total counter
edudns_ingest_total{{result=\"stored\"}} {}
edudns_ingest_total{{result=\"duplicate\"}} {}
edudns_ingest_total{{result=\"refused\"}} {}
# HELP edudns_ingest_batches_total Transactions the office's ingest writer committed (group commit: every input waiting goes in one).
# TYPE edudns_ingest_batches_total counter
edudns_ingest_batches_total {}
# HELP edudns_ingest_batched_total Inputs kept in those transactions (divided by the batches: inputs per commit).
# TYPE edudns_ingest_batched_total counter
edudns_ingest_batched_total {}
# HELP edudns_statistics_heartbeat_total Heartbeats this node sent to the office, by result (sent; failed: the office unreachable or refusing).
# TYPE edudns_statistics_heartbeat_total counter
edudns_statistics_heartbeat_total{{result=\"sent\"}} {}
edudns_statistics_heartbeat_total{{result=\"failed\"}} {}
# HELP edudns_heartbeat_received_total Heartbeats schools sent to this office, by result (stored; refused: role, school or body).
# TYPE edudns_heartbeat_received_total counter
edudns_heartbeat_received_total{{result=\"stored\"}} {}
edudns_heartbeat_received_total{{result=\"refused\"}} {}
",
        get(&upload.sent),
        get(&upload.duplicate),
        get(&upload.conflict),
        get(&upload.failed),
        get(&upload.pending),
        get(&upload.last_success),
        get(&ingest.stored),
        get(&ingest.duplicate),
        get(&ingest.refused),
        get(&ingest.batches),
        get(&ingest.batched),
        get(&heartbeat.sent),
        get(&heartbeat.failed),
        get(&heartbeat.stored),
        get(&heartbeat.refused),
    )
}
