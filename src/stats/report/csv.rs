//! The CSV rendering of a report.

use super::types::Report;
use std::fmt::Write;

/// CSV: one row per number, `section,key,label,value`.
pub fn to_csv(report: &Report) -> String {
    let mut out = String::from("section,key,label,value\n");
    let field = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let schools: Vec<&str> = report.schools.iter().map(|s| s.id.as_str()).collect();
    let _ = writeln!(out, "period,from,Từ ngày / From,{}", report.from);
    let _ = writeln!(out, "period,to,Đến ngày / To,{}", report.to);
    let _ = writeln!(
        out,
        "school,id,Trường / School,{}",
        field(&schools.join(" "))
    );
    for (key, label, value) in [
        ("queries", "Tổng truy vấn / Queries", report.totals.queries),
        ("allowed", "Cho phép / Allowed", report.totals.allowed),
        ("blocked", "Bị chặn / Blocked", report.totals.blocked),
        (
            "safe_search",
            "Tìm kiếm an toàn / Safe search",
            report.totals.safe_search,
        ),
    ] {
        let _ = writeln!(out, "totals,{key},{},{value}", field(label));
    }
    for cell in &report.blocked_by_category {
        let _ = writeln!(
            out,
            "blocked_by_category,{},{},{}",
            field(&cell.key),
            field(&cell.label),
            cell.count
        );
    }
    for cell in &report.blocked_by_band {
        let _ = writeln!(
            out,
            "blocked_by_band,{},{},{}",
            field(&cell.key),
            field(&cell.label),
            cell.count
        );
    }
    for day in &report.daily {
        let _ = writeln!(
            out,
            "daily_queries,{},{},{}",
            day.date, day.date, day.queries
        );
        let _ = writeln!(
            out,
            "daily_blocked,{},{},{}",
            day.date, day.date, day.blocked
        );
    }
    for d in &report.top_blocked_domains {
        let _ = writeln!(
            out,
            "top_blocked_domains,{},{},{}",
            field(&d.domain),
            field(&d.domain),
            d.count
        );
    }
    for (key, value) in [
        ("requested", report.reviews.requested),
        ("accepted", report.reviews.accepted),
        ("rejected", report.reviews.rejected),
        ("pending", report.reviews.pending),
    ] {
        let _ = writeln!(out, "reviews,{key},{key},{value}");
    }
    for list in &report.lists {
        let _ = writeln!(
            out,
            "lists,{},{},{}",
            field(&list.sha256),
            field(&format!("{} ({})", list.list, list.category)),
            list.entries
        );
    }
    for t in &report.takedowns {
        let _ = writeln!(
            out,
            "takedowns,{},{},{}",
            field(&t.domain),
            field(&format!("{} {}", t.reference, t.date)),
            field(&t.applied_at)
        );
    }
    out
}
