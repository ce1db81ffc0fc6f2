//! Summing reports: the replicas of one school, or the schools of a
//! district, into one published report; inputs that count the same rows
//! twice are refused.

use super::publish::{Counts, Tally, publish};
use super::types::{Count, REPORT_FORMAT, Report, Reviews, Source, Stage, Totals};

impl Source {
    /// Whether the two count some of the same rows.
    fn overlaps(&self, other: &Source) -> bool {
        self.database == other.database
            && self.school == other.school
            && self.from <= other.to
            && other.from <= self.to
    }
}

/// Why reports cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge")]
    Empty,
    /// Inputs `first` and `second` (indexes) count the same statistics.
    #[error("{why}")]
    CountedTwice {
        first: usize,
        second: usize,
        why: String,
    },
}

/// What a merge could not do exactly, for the person merging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeWarning {
    /// Input `input` had hidden this cell: the merged number is a lower bound.
    Hidden {
        input: usize,
        section: &'static str,
        key: String,
        shown: String,
    },
    /// Inputs `first` and `second` of `school` cover different but
    /// overlapping periods: not what replicas of one period give.
    Period {
        school: String,
        first: usize,
        second: usize,
    },
}

/// A merged report and what was not exact about it.
#[derive(Debug, Clone)]
pub struct Merged {
    pub report: Report,
    pub warnings: Vec<MergeWarning>,
}

/// Refuses inputs that count the same rows: the same report twice (a copy
/// under another name, or re-signed), or two reports of the same school from
/// the same statistics database over overlapping days.
fn check_counted_once(reports: &[Report]) -> Result<(), MergeError> {
    // Only reports naming a school in common can count the same rows: the
    // pairs are taken within each school's reports (a district's thousand
    // schools are not compared pairwise), in the order a plain double loop
    // would find them.
    let mut by_school: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, report) in reports.iter().enumerate() {
        let ids = report
            .schools
            .iter()
            .map(|s| s.id.as_str())
            .chain(report.sources.iter().map(|s| s.school.as_str()));
        for id in ids {
            let list = by_school.entry(id).or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for indexes in by_school.values() {
        for (j, &second) in indexes.iter().enumerate() {
            pairs.extend(indexes[..j].iter().map(|&first| (second, first)));
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    // Reports without any school id are compared with everything, as before.
    let anonymous: Vec<usize> = (0..reports.len())
        .filter(|&i| reports[i].schools.is_empty() && reports[i].sources.is_empty())
        .collect();
    for &i in &anonymous {
        pairs.extend(
            (0..reports.len())
                .filter(|&j| j != i)
                .map(|j| (i.max(j), i.min(j))),
        );
    }
    if !anonymous.is_empty() {
        pairs.sort_unstable();
        pairs.dedup();
    }
    for (second, first) in pairs {
        let (a, b) = (&reports[first], &reports[second]);
        {
            let twice = |why: String| MergeError::CountedTwice { first, second, why };
            if a == b {
                return Err(twice("the same report is given twice".into()));
            }
            if let Some(source) = a
                .sources
                .iter()
                .find(|x| b.sources.iter().any(|y| x.overlaps(y)))
            {
                return Err(twice(format!(
                    "both count school {} from statistics database {} over the same days",
                    source.school, source.database
                )));
            }
        }
    }
    Ok(())
}

/// Whether two periods share some days without being the same period (the
/// replicas of a school should cover the same days; consecutive periods of
/// one school, a month and the next, are fine).
fn overlaps_partly(a: &Report, b: &Report) -> bool {
    (&a.from, &a.to) != (&b.from, &b.to) && a.from <= b.to && b.from <= a.to
}

/// Sums verified reports into one published report.
///
/// Inputs naming the same school id are that school's **replicas** (servers
/// sharing its traffic, each with its own database): the school is listed
/// once and the numbers of all its replicas are summed. Inputs of different
/// schools make a district report. Merge inputs (`--for-merge`) carry exact
/// counts and k-anonymity is applied to the sum by the code that publishes a
/// single report, so the merge equals, cell for cell, the report of one
/// node that had answered every query. A cell already hidden in a final
/// input stays hidden as "≥n" and is named in a warning. Inputs that count
/// the same rows twice are refused ([`MergeError::CountedTwice`]).
pub fn merge(reports: &[Report]) -> Result<Merged, MergeError> {
    let first = reports.first().ok_or(MergeError::Empty)?;
    check_counted_once(reports)?;
    let mut merged = Report {
        format: REPORT_FORMAT.to_string(),
        stage: Stage::Final,
        schools: Vec::new(),
        from: reports
            .iter()
            .map(|r| r.from.clone())
            .min()
            .unwrap_or_default(),
        to: reports
            .iter()
            .map(|r| r.to.clone())
            .max()
            .unwrap_or_default(),
        timezone: first.timezone.clone(),
        k_anonymity: reports.iter().map(|r| r.k_anonymity).max().unwrap_or(0),
        generated_at: jiff::Timestamp::now().to_string(),
        totals: Totals::default(),
        blocked_by_category: Vec::new(),
        blocked_by_band: Vec::new(),
        daily: Vec::new(),
        top_blocked_domains: Vec::new(),
        reviews: Reviews::default(),
        lists: Vec::new(),
        takedowns: Vec::new(),
        sources: Vec::new(),
    };
    let mut counts = Counts::default();
    let mut warnings = Vec::new();
    for (input, report) in reports.iter().enumerate() {
        for school in &report.schools {
            let replica_of = reports[..input]
                .iter()
                .position(|r| r.schools.iter().any(|s| s.id == school.id));
            match replica_of {
                None => merged.schools.push(school.clone()),
                Some(other) if overlaps_partly(&reports[other], report) => {
                    warnings.push(MergeWarning::Period {
                        school: school.id.clone(),
                        first: other,
                        second: input,
                    })
                }
                Some(_) => {}
            }
        }
        let (t, r) = (&report.totals, &report.reviews);
        merged.totals.queries += t.queries;
        merged.totals.allowed += t.allowed;
        merged.totals.blocked += t.blocked;
        merged.totals.safe_search += t.safe_search;
        merged.reviews.requested += r.requested;
        merged.reviews.accepted += r.accepted;
        merged.reviews.rejected += r.rejected;
        merged.reviews.pending += r.pending;

        let mut add = |section: &'static str, tally: &mut Tally, key: &str, count: &Count| {
            tally.add(count);
            if let Count::Hidden(shown) = count {
                warnings.push(MergeWarning::Hidden {
                    input,
                    section,
                    key: key.to_string(),
                    shown: shown.clone(),
                });
            }
        };
        for (section, cells, tallies) in [
            (
                "blocked_by_category",
                &report.blocked_by_category,
                &mut counts.by_category,
            ),
            (
                "blocked_by_band",
                &report.blocked_by_band,
                &mut counts.by_band,
            ),
        ] {
            for cell in cells {
                let tally = tallies
                    .entry(cell.key.clone())
                    .or_insert_with(|| Tally::labelled(&cell.label));
                add(section, tally, &cell.key, &cell.count);
            }
        }
        for day in &report.daily {
            let (queries, blocked) = counts
                .daily
                .entry(day.date.clone())
                .or_insert_with(|| (Tally::labelled(&day.date), Tally::labelled(&day.date)));
            add("daily.queries", queries, &day.date, &day.queries);
            add("daily.blocked", blocked, &day.date, &day.blocked);
        }
        for d in &report.top_blocked_domains {
            *counts.domains.entry(d.domain.clone()).or_default() += d.count;
        }
        // A list version is the same whichever replica loaded it: listed
        // once, with the earliest load time.
        for list in &report.lists {
            match merged.lists.iter_mut().find(|v| {
                (&v.category, &v.list, &v.sha256) == (&list.category, &list.list, &list.sha256)
            }) {
                Some(known) if list.loaded_at < known.loaded_at => {
                    known.loaded_at = list.loaded_at.clone()
                }
                Some(_) => {}
                None => merged.lists.push(list.clone()),
            }
        }
        for entry in &report.takedowns {
            if !merged.takedowns.iter().any(|t| t.domain == entry.domain) {
                merged.takedowns.push(entry.clone());
            }
        }
        for source in &report.sources {
            if !merged.sources.contains(source) {
                merged.sources.push(source.clone());
            }
        }
    }
    publish(&mut merged, counts);
    Ok(Merged {
        report: merged,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::gather::build;
    use super::*;

    #[test]
    fn merging_replica_inputs_equals_the_report_of_one_node() {
        let dir = tempfile::tempdir().unwrap();
        let (replicas, single) = databases(dir.path());
        let config = config();
        let (from, to) = ("2026-03-02", "2026-03-03");
        let inputs: Vec<Report> = replicas
            .iter()
            .map(|s| build_for_merge(s.connection(), &config, "s1", from, to).unwrap())
            .collect();
        // A merge input is exact, small cells and rare domains included.
        assert_eq!(inputs[0].stage, Stage::MergeInput);
        assert_eq!(
            cell(&inputs[0].blocked_by_category, "social"),
            &Count::Exact(2)
        );
        assert_eq!(cell(&inputs[0].blocked_by_band, "teen"), &Count::Exact(6));
        assert!(
            inputs[0]
                .top_blocked_domains
                .iter()
                .any(|d| d.domain == "social.example" && d.count == 2)
        );

        let merged = merge(&inputs).unwrap();
        assert!(merged.warnings.is_empty(), "{:?}", merged.warnings);
        let one_node = build(single.connection(), &config, "s1", from, to, 10).unwrap();
        assert_eq!(numbers(merged.report.clone()), numbers(one_node));

        // What that equality covers: the school once, the sum published
        // with k-anonymity (social 2 hidden, deny_list 11 hidden with it by
        // complementary suppression, gambling 29 exact).
        let report = &merged.report;
        assert_eq!(report.stage, Stage::Final);
        assert_eq!(report.schools.len(), 1);
        assert_eq!(report.sources.len(), 3);
        assert_eq!(
            report.lists.len(),
            1,
            "one list version, not one per replica"
        );
        assert_eq!(report.totals.blocked, 29 + 2 + 11);
        assert_eq!(report.totals.allowed, 27);
        assert_eq!(report.totals.safe_search, 2);
        assert_eq!(
            cell(&report.blocked_by_category, "gambling"),
            &Count::Exact(29)
        );
        assert_eq!(
            cell(&report.blocked_by_category, "social"),
            &Count::Hidden("<10".into())
        );
        assert_eq!(
            cell(&report.blocked_by_category, "deny_list"),
            &Count::Hidden("<10".into())
        );
        assert_eq!(cell(&report.blocked_by_band, "teen"), &Count::Exact(14));
        assert_eq!(
            report
                .daily
                .iter()
                .map(|d| (d.queries.clone(), d.blocked.clone()))
                .collect::<Vec<_>>(),
            vec![
                (Count::Exact(52), Count::Exact(23)),
                (Count::Exact(19), Count::Exact(19))
            ]
        );
        assert_eq!(
            report
                .top_blocked_domains
                .iter()
                .map(|d| (d.domain.as_str(), d.count))
                .collect::<Vec<_>>(),
            vec![
                ("casino.example", 17),
                ("bet.example", 12),
                ("deny.example", 11)
            ]
        );
        assert_eq!(
            (
                report.reviews.requested,
                report.reviews.pending,
                report.reviews.accepted,
                report.reviews.rejected
            ),
            (3, 1, 1, 1)
        );
    }

    #[test]
    fn merging_final_replica_reports_is_not_exact_and_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let (replicas, _) = databases(dir.path());
        let config = config();
        let finals: Vec<Report> = replicas
            .iter()
            .map(|s| {
                build(
                    s.connection(),
                    &config,
                    "s1",
                    "2026-03-02",
                    "2026-03-03",
                    10,
                )
                .unwrap()
            })
            .collect();
        let merged = merge(&finals).unwrap();
        // Each replica hid its gambling cell: 13 + 8 + 8 = 29 can't be known.
        assert_eq!(
            cell(&merged.report.blocked_by_category, "gambling"),
            &Count::Hidden("≥0".into())
        );
        assert_eq!(merged.report.schools.len(), 1);
        assert!(merged.warnings.contains(&MergeWarning::Hidden {
            input: 1,
            section: "blocked_by_category",
            key: "gambling".into(),
            shown: "<10".into(),
        }));
        assert_eq!(
            merged.report.totals.blocked, 42,
            "totals stay exact all the same"
        );
    }

    #[test]
    fn the_same_rows_are_never_counted_twice() {
        let dir = tempfile::tempdir().unwrap();
        let (replicas, _) = databases(dir.path());
        let config = config();
        let db = replicas[0].connection();
        let report = build_for_merge(db, &config, "s1", "2026-03-02", "2026-03-03").unwrap();
        let twice = |reports: &[Report]| match merge(reports) {
            Err(MergeError::CountedTwice { first, second, .. }) => Some((first, second)),
            _ => None,
        };
        assert_eq!(twice(&[report.clone(), report.clone()]), Some((0, 1)));
        // Made again from the same database (another generated_at).
        let mut again = build_for_merge(db, &config, "s1", "2026-03-03", "2026-03-05").unwrap();
        again.generated_at = "later".into();
        assert_eq!(
            twice(&[report.clone(), again]),
            Some((0, 1)),
            "days overlap"
        );
        // A report without sources (made before they existed) given twice.
        let mut old = report.clone();
        old.sources.clear();
        assert_eq!(twice(&[old.clone(), old]), Some((0, 1)));
        // The next days of the same database, or another replica, are fine.
        let next = build_for_merge(db, &config, "s1", "2026-03-04", "2026-03-05").unwrap();
        let other = build_for_merge(
            replicas[1].connection(),
            &config,
            "s1",
            "2026-03-02",
            "2026-03-03",
        )
        .unwrap();
        let merged = merge(&[report, next, other]).unwrap();
        assert_eq!(merged.report.to, "2026-03-05");
        assert_eq!(merged.report.schools.len(), 1);
    }

    #[test]
    fn final_reports_keep_the_json_of_reports_made_before_stages() {
        let dir = tempfile::tempdir().unwrap();
        let (_, single) = databases(dir.path());
        let mut report = build(
            single.connection(),
            &config(),
            "s1",
            "2026-03-02",
            "2026-03-02",
            10,
        )
        .unwrap();
        report.sources.clear();
        let json = serde_json::to_value(&report).unwrap();
        assert!(json.get("stage").is_none() && json.get("sources").is_none());
        // An old report (no stage, no sources) reads as final and writes back
        // the same JSON, so its signature still verifies.
        let read: Report = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(read.stage, Stage::Final);
        assert_eq!(serde_json::to_value(&read).unwrap(), json);
        let input = build_for_merge(
            single.connection(),
            &config(),
            "s1",
            "2026-03-02",
            "2026-03-02",
        )
        .unwrap();
        let json = serde_json::to_value(&input).unwrap();
        assert_eq!(json["stage"], "merge-input");
        assert_eq!(json["sources"][0]["school"], "s1");
    }
}
