//! Checking one received input before anything is written: it must be a
//! signed merge input of the token's school for one day that is not in the
//! future, signed with a key the office holds for that school. This is the
//! CPU-bound half of ingest (JSON, Ed25519), done by each request on its
//! own thread, outside the database's lock.
//!
//! Uses: `stats` (the report types, signatures), `office::ingest::{days,
//! schema}`.
//! Used by: `office::ingest`.

use super::days::day_number;
use super::schema::DOMAINS_PER_DAY;
use crate::stats::report::{self, Report, Stage};
use crate::stats::sign::{self, SignedReport};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Why an input was refused; the text is the API's answer.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("not a merge input: send `edudns report --for-merge` output (stage \"merge-input\")")]
    NotMergeInput,
    #[error("the input must hold exactly one school, it holds {0}")]
    NotOneSchool(usize),
    #[error("a token of school {token} cannot send statistics of school {input}")]
    OtherSchool { token: String, input: String },
    #[error("the input must cover exactly one day, it covers {from} to {to}")]
    NotOneDay { from: String, to: String },
    #[error("{0:?} is not a date (YYYY-MM-DD)")]
    BadDate(String),
    #[error("{day} is in the future (today is {today})")]
    Future { day: String, today: String },
    #[error("the input does not name the database its rows come from (sources)")]
    NoSource,
    #[error("signature refused: {0}")]
    Signature(String),
    #[error(
        "school {school}, node {node}, {day} was received already with other content: the first copy is kept"
    )]
    Conflict {
        school: String,
        node: String,
        day: String,
    },
}

/// An input that passed every check, ready to be kept.
#[derive(Debug)]
pub struct Checked {
    pub school: String,
    pub node: String,
    /// `YYYY-MM-DD`, and as a day number.
    pub day: String,
    pub day_number: i64,
    /// What makes this input "the same day" ([`numbers_digest`]).
    pub digest: String,
    /// The signed input as received, deflated, kept for audits.
    pub compressed: Vec<u8>,
    /// The rows to write, made here so that the single writer only writes.
    pub rows: Rows,
}

/// What [`Checked`] adds to the office's tables (`schema.rs`).
#[derive(Debug)]
pub struct Rows {
    pub school_name: String,
    pub timezone: String,
    pub k: i64,
    /// queries, allowed, blocked, safe_search.
    pub totals: [i64; 4],
    pub reviews: String,
    pub lists: String,
    pub takedowns: String,
    /// (section: 0 by category, 1 by band; key; label; count).
    pub cells: Vec<(i64, String, String, i64)>,
    /// The day's [`DOMAINS_PER_DAY`] most blocked domains, most first.
    pub domains: Vec<(String, i64)>,
}

impl Rows {
    fn of(report: Report) -> Rows {
        let exact = |count: &report::Count| count.exact().unwrap_or(0) as i64;
        let t = &report.totals;
        let mut domains: Vec<(String, i64)> = report
            .top_blocked_domains
            .iter()
            .map(|d| (d.domain.clone(), d.count as i64))
            .collect();
        domains.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        domains.truncate(DOMAINS_PER_DAY);
        let cells = [
            (0, &report.blocked_by_category),
            (1, &report.blocked_by_band),
        ]
        .into_iter()
        .flat_map(|(section, cells)| {
            cells
                .iter()
                .map(move |c| (section, c.key.clone(), c.label.clone(), exact(&c.count)))
        })
        .collect();
        Rows {
            totals: [t.queries, t.allowed, t.blocked, t.safe_search].map(|n| n as i64),
            reviews: serde_json::to_string(&report.reviews).unwrap_or_default(),
            lists: serde_json::to_string(&report.lists).unwrap_or_default(),
            takedowns: serde_json::to_string(&report.takedowns).unwrap_or_default(),
            k: report.k_anonymity as i64,
            cells,
            domains,
            school_name: report
                .schools
                .into_iter()
                .next()
                .map(|s| s.name)
                .unwrap_or_default(),
            timezone: report.timezone,
        }
    }
}

/// Checks `body` (a signed merge input, as JSON) sent with a token of
/// `token_school`; `today` is the office's date.
pub fn check_input(
    body: &[u8],
    token_school: &str,
    key_dir: &Path,
    today: jiff::civil::Date,
) -> Result<Checked, Refused> {
    let signed: SignedReport = serde_json::from_slice(body)
        .map_err(|e| Refused::Signature(format!("the body is not a signed report: {e}")))?;
    let (school, node, day) = check(&signed, token_school, key_dir, today)?;
    use std::io::Write;
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = deflate.write_all(body);
    Ok(Checked {
        digest: numbers_digest(&signed.report),
        day_number: day_number(&day),
        school,
        node,
        day,
        compressed: deflate.finish().unwrap_or_default(),
        rows: Rows::of(signed.report),
    })
}

/// (school, node, day) of a valid input, or why it is refused.
fn check(
    signed: &SignedReport,
    token_school: &str,
    key_dir: &Path,
    today: jiff::civil::Date,
) -> Result<(String, String, String), Refused> {
    let report = &signed.report;
    if report.stage != Stage::MergeInput {
        return Err(Refused::NotMergeInput);
    }
    let [school] = report.schools.as_slice() else {
        return Err(Refused::NotOneSchool(report.schools.len()));
    };
    if school.id != token_school {
        return Err(Refused::OtherSchool {
            token: token_school.to_string(),
            input: school.id.clone(),
        });
    }
    if report.from != report.to {
        return Err(Refused::NotOneDay {
            from: report.from.clone(),
            to: report.to.clone(),
        });
    }
    let day: jiff::civil::Date = report
        .from
        .parse()
        .map_err(|_| Refused::BadDate(report.from.clone()))?;
    if day > today.tomorrow().unwrap_or(today) {
        return Err(Refused::Future {
            day: day.to_string(),
            today: today.to_string(),
        });
    }
    let node = match report.sources.as_slice() {
        [source] if source.school == school.id && !source.database.is_empty() => {
            source.database.clone()
        }
        _ => return Err(Refused::NoSource),
    };
    // The school's own key first (one file read); the directory is listed
    // only for a school whose replicas sign with keys of their own.
    let (_, own) = sign::key_paths(key_dir, &school.id);
    if own.exists() && sign::verify(signed, Some(&own)).is_ok() {
        return Ok((school.id.clone(), node, day.to_string()));
    }
    let keys = sign::school_public_keys(key_dir, &school.id)
        .map_err(|e| Refused::Signature(e.to_string()))?;
    if keys.is_empty() {
        return Err(Refused::Signature(format!(
            "no public key of school {} is registered at the office ({}/{}.pub)",
            school.id,
            key_dir.display(),
            school.id
        )));
    }
    sign::verify_any(signed, &keys).map_err(|e| Refused::Signature(e.to_string()))?;
    Ok((school.id.clone(), node, day.to_string()))
}

/// What makes two inputs "the same day": the counted numbers of the school
/// and node for the day, not when the input was made or signed, nor the list
/// versions and takedowns in force when it was made. A node that did not
/// hear the office's answer and builds the day again (after a restart, with
/// a new `generated_at` and signature) is answered "duplicate", not refused.
pub fn numbers_digest(report: &Report) -> String {
    #[derive(serde::Serialize)]
    struct Numbers<'a> {
        schools: &'a [report::SchoolRef],
        from: &'a str,
        to: &'a str,
        totals: &'a report::Totals,
        blocked_by_category: &'a [report::Cell],
        blocked_by_band: &'a [report::Cell],
        daily: &'a [report::Day],
        top_blocked_domains: &'a [report::DomainCount],
        sources: &'a [report::Source],
    }
    let numbers = Numbers {
        schools: &report.schools,
        from: &report.from,
        to: &report.to,
        totals: &report.totals,
        blocked_by_category: &report.blocked_by_category,
        blocked_by_band: &report.blocked_by_band,
        daily: &report.daily,
        top_blocked_domains: &report.top_blocked_domains,
        sources: &report.sources,
    };
    sign::hex(&Sha256::digest(
        serde_json::to_vec(&numbers).unwrap_or_default(),
    ))
}
