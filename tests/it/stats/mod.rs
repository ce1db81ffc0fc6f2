//! Statistics end to end: exact counts in /metrics, the SQLite roll-ups and
//! the report; restarts; signing, tampering and district merges; the
//! Grafana dashboard only uses metrics that exist.
//!
//! `counts.rs`: what the running server counts and shows (metrics,
//! roll-ups, the report API, suppression, restarts, the incident log, the
//! dashboard). `reports.rs`: reports made, signed, verified and merged by
//! the `edudns` binary. This file holds what both use.

mod counts;
mod reports;

use crate::harness::*;
use crate::upstream::TestUpstream;
use hickory_proto::rr::RecordType;
use std::net::Ipv4Addr;

const BIN: &str = env!("CARGO_BIN_EXE_edudns");

fn two_schools() -> String {
    base_config("[[school]]\nid = \"s2\"\nname = \"Trường Hai\"\nnetworks = [\"127.0.1.0/24\"]\n")
}

async fn upstream() -> TestUpstream {
    TestUpstream::builder()
        .a("allowed.example", Ipv4Addr::new(192, 0, 2, 10))
        .start()
        .await
}

fn today() -> String {
    jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").unwrap())
        .date()
        .to_string()
}

async fn send(server: &TestServer, src: &str, name: &str, times: usize) {
    for _ in 0..times {
        server.query_from(src, name, RecordType::A).await;
    }
}
