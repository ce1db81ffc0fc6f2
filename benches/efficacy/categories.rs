//! What each category's rules block, in process (the category's sources
//! after protection, and its curated floor): (b) leave-one-out coverage and
//! (d) the share of the top 10k.

use crate::data::Loaded;
use crate::reader;
use crate::report::percent;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// The categories of `loaded`, in order.
fn categories(loaded: &[Loaded]) -> Vec<&str> {
    let mut categories: Vec<&str> = loaded.iter().map(|l| l.category.as_str()).collect();
    categories.dedup();
    categories
}

/// The block rules of `sources` and the category's curated floor.
fn category_rules<'a>(
    sources: impl Iterator<Item = &'a Loaded>,
    floor: &'a HashMap<String, Vec<String>>,
    category: &str,
) -> HashSet<&'a str> {
    sources
        .flat_map(|l| l.rules.iter().map(String::as_str))
        .chain(
            floor
                .get(category)
                .into_iter()
                .flatten()
                .map(String::as_str),
        )
        .collect()
}

/// Any suffix of `name` is in `rules`.
fn matched(rules: &HashSet<&str>, name: &str) -> bool {
    reader::suffixes(name).any(|s| rules.contains(s))
}

/// (b) Per category of two sources or more, how much of each source the
/// other sources and the curated floor still block.
pub fn leave_one_out(loaded: &[Loaded], floor: &HashMap<String, Vec<String>>) -> String {
    let mut coverage_table = String::from(
        "| Category | Source left out | Its names | Still blocked by the others | Share |\n|---|---|---:|---:|---:|\n",
    );
    for category in &categories(loaded) {
        let members: Vec<&Loaded> = loaded.iter().filter(|l| l.category == *category).collect();
        if members.len() < 2 {
            continue;
        }
        for left_out in &members {
            let others = category_rules(
                members.iter().copied().filter(|m| m.name != left_out.name),
                floor,
                category,
            );
            let names: HashSet<&str> = left_out.rules.iter().map(String::as_str).collect();
            let still = names.iter().filter(|n| matched(&others, n)).count();
            let _ = writeln!(
                coverage_table,
                "| {category} | {} | {} | {} | {} |",
                left_out.name,
                names.len(),
                still,
                percent(still, names.len())
            );
        }
    }
    coverage_table
}

/// (d) Per category, the names of `top` its rules block.
pub fn top_per_category(
    loaded: &[Loaded],
    floor: &HashMap<String, Vec<String>>,
    top: &[String],
) -> String {
    let mut category_table = String::from(
        "| Category | Blocked of the top 10k | Share | Most popular of them |\n|---|---:|---:|---|\n",
    );
    for category in &categories(loaded) {
        let rules = category_rules(
            loaded.iter().filter(|l| l.category == *category),
            floor,
            category,
        );
        let hits: Vec<&str> = top
            .iter()
            .filter(|n| matched(&rules, n))
            .map(String::as_str)
            .collect();
        let _ = writeln!(
            category_table,
            "| {category} | {} | {} | {} |",
            hits.len(),
            percent(hits.len(), top.len()),
            hits.iter()
                .take(6)
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    category_table
}
