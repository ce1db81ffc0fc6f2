//! The report as it is written and signed: its JSON is the serde form of
//! [`Report`], field for field.

use serde::{Deserialize, Serialize};

/// One published number: exact, or hidden ("<10", "≥123" after a merge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Count {
    Exact(u64),
    Hidden(String),
}

impl Count {
    pub fn exact(&self) -> Option<u64> {
        match self {
            Count::Exact(n) => Some(*n),
            Count::Hidden(_) => None,
        }
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Count::Exact(n) => write!(f, "{n}"),
            Count::Hidden(text) => f.write_str(text),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub key: String,
    pub label: String,
    pub count: Count,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Day {
    pub date: String,
    pub queries: Count,
    pub blocked: Count,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainCount {
    pub domain: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub queries: u64,
    pub allowed: u64,
    pub blocked: u64,
    pub safe_search: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reviews {
    pub requested: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub pending: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListVersion {
    pub category: String,
    pub list: String,
    pub entries: u64,
    pub sha256: String,
    pub loaded_at: String,
}

/// What a report is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// For publication: k-anonymity applied. Absent from the JSON, so
    /// reports made before merge inputs existed read (and verify) as final.
    #[default]
    Final,
    /// Input of `edudns report merge` only: exact counts, nothing hidden,
    /// every tracked blocked domain. Refused by everything that publishes.
    MergeInput,
}

impl Stage {
    pub fn is_final(&self) -> bool {
        *self == Stage::Final
    }
}

/// The rows a report counts: one school's statistics in one database
/// (identified by [`crate::stats::store::database_id`]) over a period. A merged
/// report lists the sources of all its inputs, so that the same rows are
/// never counted twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub database: String,
    pub school: String,
    pub from: String,
    pub to: String,
}

/// The report. Field order is the order of the JSON; the signature covers
/// its canonical (sorted-key) form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub format: String,
    /// `"merge-input"` for `--for-merge` reports; absent when final.
    #[serde(default, skip_serializing_if = "Stage::is_final")]
    pub stage: Stage,
    pub schools: Vec<SchoolRef>,
    pub from: String,
    pub to: String,
    pub timezone: String,
    pub k_anonymity: u64,
    pub generated_at: String,
    pub totals: Totals,
    pub blocked_by_category: Vec<Cell>,
    pub blocked_by_band: Vec<Cell>,
    pub daily: Vec<Day>,
    pub top_blocked_domains: Vec<DomainCount>,
    pub reviews: Reviews,
    pub lists: Vec<ListVersion>,
    /// Takedown entries in force during the period and when they took effect.
    #[serde(default)]
    pub takedowns: Vec<TakedownInForce>,
    /// What was counted (absent from reports made before it existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakedownInForce {
    pub domain: String,
    pub reference: String,
    pub date: String,
    pub applied_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolRef {
    pub id: String,
    pub name: String,
}

/// Format identifier written in every report.
pub const REPORT_FORMAT: &str = "edudns-report/1";

/// Top blocked domains a published report lists at most.
pub const TOP_DOMAINS: usize = 20;
