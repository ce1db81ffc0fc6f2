//! The printable HTML report: Vietnamese first, English beside, one inline
//! SVG chart, no scripts and no external resources. Every text is escaped.

use super::types::{Cell, Report};
use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,'Segoe UI',Roboto,Arial,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e3e3e3}
td.n{text-align:right;font-variant-numeric:tabular-nums}.en{color:#555;font-weight:normal}
.note{color:#555;font-size:.9rem}svg{max-width:100%;height:auto}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}table,svg{break-inside:avoid}}";

fn cells(out: &mut String, title_vi: &str, title_en: &str, cells: &[Cell]) {
    let _ = write!(
        out,
        "<h2>{} <span class=\"en\">/ {}</span></h2><table><tr><th>Mục <span class=\"en\">/ Item</span></th><th>Số lượt chặn <span class=\"en\">/ Blocked</span></th></tr>",
        escape(title_vi),
        escape(title_en)
    );
    if cells.is_empty() {
        out.push_str("<tr><td colspan=\"2\">Không có / None</td></tr>");
    }
    for cell in cells {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
            escape(&cell.label),
            escape(&cell.count.to_string())
        );
    }
    out.push_str("</table>");
}

fn chart(report: &Report) -> String {
    let values: Vec<u64> = report
        .daily
        .iter()
        .map(|d| d.blocked.exact().unwrap_or(0))
        .collect();
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let (width, height, pad) = (720.0, 200.0, 30.0);
    let bar = (width - pad) / values.len().max(1) as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {h}\" role=\"img\" aria-label=\"Số lượt chặn theo ngày / Blocked queries per day\">",
        h = height + pad
    );
    let _ = write!(
        svg,
        "<line x1=\"{pad}\" y1=\"{height}\" x2=\"{width}\" y2=\"{height}\" stroke=\"#999\"/>"
    );
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"12\" font-size=\"11\">{max}</text><text x=\"0\" y=\"{height}\" font-size=\"11\">0</text>"
    );
    for (i, (day, value)) in report.daily.iter().zip(&values).enumerate() {
        let h = (*value as f64 / max as f64) * (height - 10.0);
        let x = pad + i as f64 * bar;
        let hidden = day.blocked.exact().is_none();
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
            height - h,
            (bar * 0.8).max(1.0),
            if hidden { "#bbb" } else { "#c0392b" },
            escape(&day.date),
            escape(&day.blocked.to_string())
        );
        if report.daily.len() <= 31 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\">{}</text>",
                x + bar * 0.4,
                height + 14.0,
                escape(day.date.get(8..10).unwrap_or(""))
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The whole HTML document.
pub fn to_html(report: &Report) -> String {
    let schools: Vec<String> = report
        .schools
        .iter()
        .map(|s| format!("{} ({})", s.name, s.id))
        .collect();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Báo cáo lọc nội dung / Filtering report</title><style>{STYLE}</style></head><body>\
         <h1>Báo cáo lọc nội dung <span class=\"en\">/ Content filtering report</span></h1>\
         <p><strong>Trường / School:</strong> {}<br><strong>Thời gian / Period:</strong> {} → {} ({})<br>\
         <strong>Lập lúc / Generated:</strong> {}</p>",
        escape(&schools.join(", ")),
        escape(&report.from),
        escape(&report.to),
        escape(&report.timezone),
        escape(&report.generated_at)
    );
    let _ = write!(
        out,
        "<h2>Tổng hợp <span class=\"en\">/ Totals</span></h2><table>\
         <tr><td>Tổng số truy vấn / Queries</td><td class=\"n\">{}</td></tr>\
         <tr><td>Cho phép / Allowed</td><td class=\"n\">{}</td></tr>\
         <tr><td>Bị chặn / Blocked</td><td class=\"n\">{}</td></tr>\
         <tr><td>Tìm kiếm an toàn / Safe search</td><td class=\"n\">{}</td></tr></table>",
        report.totals.queries,
        report.totals.allowed,
        report.totals.blocked,
        report.totals.safe_search
    );
    cells(
        &mut out,
        "Lượt chặn theo danh mục",
        "Blocked by category",
        &report.blocked_by_category,
    );
    cells(
        &mut out,
        "Lượt chặn theo khối lớp",
        "Blocked by grade band",
        &report.blocked_by_band,
    );
    let _ = write!(
        out,
        "<h2>Xu hướng theo ngày <span class=\"en\">/ Daily trend</span></h2>{}",
        chart(report)
    );
    out.push_str(
        "<table><tr><th>Ngày / Date</th><th>Truy vấn / Queries</th><th>Bị chặn / Blocked</th></tr>",
    );
    for day in &report.daily {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&day.date),
            escape(&day.queries.to_string()),
            escape(&day.blocked.to_string())
        );
    }
    out.push_str("</table><h2>Tên miền bị chặn nhiều nhất <span class=\"en\">/ Most blocked domains</span></h2><table>");
    if report.top_blocked_domains.is_empty() {
        out.push_str("<tr><td>Không có / None</td></tr>");
    }
    for d in &report.top_blocked_domains {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
            escape(&d.domain),
            d.count
        );
    }
    let _ = write!(
        out,
        "</table><h2>Yêu cầu xem xét <span class=\"en\">/ Review requests</span></h2><table>\
         <tr><td>Đã gửi / Requested</td><td class=\"n\">{}</td></tr><tr><td>Chấp nhận / Accepted</td><td class=\"n\">{}</td></tr>\
         <tr><td>Từ chối / Rejected</td><td class=\"n\">{}</td></tr><tr><td>Đang chờ / Pending</td><td class=\"n\">{}</td></tr></table>",
        report.reviews.requested,
        report.reviews.accepted,
        report.reviews.rejected,
        report.reviews.pending
    );
    out.push_str("<h2>Danh sách đang áp dụng <span class=\"en\">/ Lists in force</span></h2><table><tr><th>Danh mục / Category</th><th>Danh sách / List</th><th>Mục / Entries</th><th>SHA-256</th></tr>");
    for list in &report.lists {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td><code>{}</code></td></tr>",
            escape(&list.category),
            escape(&list.list),
            list.entries,
            escape(list.sha256.get(..16).unwrap_or(&list.sha256))
        );
    }
    out.push_str("</table><h2>Gỡ bỏ theo yêu cầu <span class=\"en\">/ Takedown entries in force</span></h2><table><tr><th>Tên miền / Domain</th><th>Căn cứ / Reference</th><th>Hiệu lực từ / In force since</th></tr>");
    for t in &report.takedowns {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{} {}</td><td>{}</td></tr>",
            escape(&t.domain),
            escape(&t.reference),
            escape(&t.date),
            escape(&t.applied_at)
        );
    }
    let _ = write!(
        out,
        "</table><p class=\"note\">Chỉ số liệu tổng hợp; không có địa chỉ hay lịch sử truy cập của học sinh. Ô có ít hơn {k} lượt được ghi \"&lt;{k}\". \
         / Aggregates only; no student addresses or browsing history. Cells under {k} are shown as \"&lt;{k}\".</p></body></html>",
        k = report.k_anonymity
    );
    out
}
