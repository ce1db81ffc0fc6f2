//! From exact counts to published cells: k-anonymity (cells between 1 and
//! k-1 shown as "<k", domains below k left out) and complementary
//! suppression. A report built from the database and a merge both end here.

use super::types::{Cell, Count, Day, DomainCount, Report, TOP_DOMAINS};
use std::collections::BTreeMap;

/// A number before publication: exact, or (`hidden`) only a lower bound
/// because a merge input had already hidden part of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub label: String,
    pub n: u64,
    pub hidden: bool,
}

impl Tally {
    pub(super) fn labelled(label: &str) -> Self {
        Tally {
            label: label.to_string(),
            ..Tally::default()
        }
    }

    pub(super) fn add(&mut self, count: &Count) {
        match count.exact() {
            Some(n) => self.n += n,
            None => self.hidden = true,
        }
    }

    /// The number as it stands, without k-anonymity.
    pub(super) fn count(&self) -> Count {
        if self.hidden {
            Count::Hidden(format!("≥{}", self.n))
        } else {
            Count::Exact(self.n)
        }
    }
}

/// The numbers of a report before k-anonymity, keyed by category, band,
/// date (queries, blocked) and listed domain.
#[derive(Debug, Clone, Default)]
pub(super) struct Counts {
    pub(super) by_category: BTreeMap<String, Tally>,
    pub(super) by_band: BTreeMap<String, Tally>,
    pub(super) daily: BTreeMap<String, (Tally, Tally)>,
    pub(super) domains: BTreeMap<String, u64>,
}

/// Fills the numbers of `report` from `counts`: with k-anonymity
/// (`report.k_anonymity`) when the report is final, exact when it is a merge
/// input. `build` and `merge` both end here, so a merge of exact inputs
/// equals, cell for cell, the report one node would have made.
pub(super) fn publish(report: &mut Report, counts: Counts) {
    let k = report.k_anonymity;
    let publishing = report.stage.is_final();
    // Categories and bands largest first, days in date order; the order
    // matters to complementary suppression (it hides the first smallest).
    let group = |tallies: BTreeMap<String, Tally>, largest_first: bool| -> Vec<Cell> {
        let mut cells: Vec<(String, Tally)> = tallies.into_iter().collect();
        if largest_first {
            cells.sort_by(|a, b| b.1.n.cmp(&a.1.n).then(a.0.cmp(&b.0)));
        }
        if publishing {
            suppress_cells(cells, k)
        } else {
            cells
                .into_iter()
                .map(|(key, tally)| Cell {
                    key,
                    count: tally.count(),
                    label: tally.label,
                })
                .collect()
        }
    };
    report.blocked_by_category = group(counts.by_category, true);
    report.blocked_by_band = group(counts.by_band, true);
    let (queries, blocked): (BTreeMap<_, _>, BTreeMap<_, _>) = counts
        .daily
        .into_iter()
        .map(|(date, (q, b))| ((date.clone(), q), (date, b)))
        .unzip();
    report.daily = group(queries, false)
        .into_iter()
        .zip(group(blocked, false))
        .map(|(q, b)| Day {
            date: q.key,
            queries: q.count,
            blocked: b.count,
        })
        .collect();
    let mut top: Vec<DomainCount> = counts
        .domains
        .into_iter()
        .filter(|(_, n)| !publishing || *n >= k)
        .map(|(domain, count)| DomainCount { domain, count })
        .collect();
    top.sort_by(|a, b| b.count.cmp(&a.count).then(a.domain.cmp(&b.domain)));
    if publishing {
        top.truncate(TOP_DOMAINS);
    }
    report.top_blocked_domains = top;
}

/// Cells 1..k-1 become "<k"; if exactly one cell of the group is hidden, the
/// next smallest is hidden too (complementary suppression), so the hidden
/// value cannot be recovered from the published total. A cell a merge input
/// had already hidden stays hidden as "≥n" (its known lower bound).
pub fn suppress_cells(cells: Vec<(String, Tally)>, k: u64) -> Vec<Cell> {
    let hidden_text = format!("<{k}");
    let mut hide: Vec<bool> = cells
        .iter()
        .map(|(_, t)| t.hidden || (t.n > 0 && t.n < k))
        .collect();
    if hide.iter().filter(|h| **h).count() == 1
        && cells.len() > 1
        && let Some((index, _)) = cells
            .iter()
            .enumerate()
            .filter(|(i, _)| !hide[*i])
            .min_by_key(|(_, c)| c.1.n)
    {
        hide[index] = true;
    }
    cells
        .into_iter()
        .zip(hide)
        .map(|((key, tally), hidden)| Cell {
            key,
            count: if tally.hidden {
                tally.count()
            } else if hidden {
                Count::Hidden(hidden_text.clone())
            } else {
                Count::Exact(tally.n)
            },
            label: tally.label,
        })
        .collect()
}
