//! The console's overview tab in headless Chromium: the office sees the
//! district (a row per school, the one that stopped reporting in red and
//! in words, a bar per non-empty day and category with its number), a
//! school sees its own school's chart.

use super::{base64_decode, console_signed_in};
use crate::dashboard::{LIST_SHA256, district};
use crate::ingest::day_ago;
use serde_json::{Value, json};

/// The `<title>` of every bar of the chart in `#id`, sorted.
const BARS: &str = "return [...document.querySelectorAll('#ID svg rect')].map((r) => r.querySelector('title').textContent).sort();";

fn bars(id: &str) -> String {
    BARS.replace("ID", id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_in_chromium_shows_the_district_and_a_school_its_own() {
    let crate::dashboard::District { office, a, b } = district().await;
    // s1's node says its filter is up (by hand: the District's nodes'
    // heartbeats go nowhere); s2's and s3's never came.
    let (status, text) = crate::heartbeat::beat(
        &office,
        &office.token("school:s1"),
        &crate::heartbeat::body("s1", true),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let browser = console_signed_in(office.running.management_addr, &office.token("office")).await;
    // The first tab, open at sign-in.
    let first = browser
        .eval("return document.querySelector('nav button').dataset.tab + ' ' + document.querySelector('nav button').textContent;")
        .await;
    assert_eq!(first, json!("overview Tổng quan"));
    browser
        .find("#district-schools tr[data-school=\"s3\"]")
        .await;
    let rows = browser
        .eval("return [...document.querySelectorAll('#district-schools tbody tr')].map((r) => [r.dataset.school, r.className, r.textContent]);")
        .await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "a row per school: {rows:?}");
    let row = |id: &str| rows.iter().find(|r| r[0] == id).unwrap().clone();
    let stopped = row("s3");
    assert_eq!(stopped[1], "stopped");
    let text = stopped[2].as_str().unwrap();
    assert!(
        text.contains("Trường Ba") && text.contains("Ngừng báo cáo"),
        "{text}"
    );
    for id in ["s1", "s2"] {
        let r = row(id);
        assert_eq!(r[1], "reporting", "{r}");
        let text = r[2].as_str().unwrap();
        assert!(
            text.contains("Đang báo cáo") && text.contains(&day_ago(1)),
            "{text}"
        );
        assert!(
            text.contains("lists/gambling.txt") && text.contains(&LIST_SHA256[..12]),
            "list versions: {text}"
        );
    }
    // The filter column: up for s1 (a heartbeat just now), no heartbeat
    // for the others; s1's last policy fetch with its ETag.
    let filter = |id: &str| {
        format!("return document.querySelector('tr[data-school=\"{id}\"] td.filter').textContent;")
    };
    let up = browser.eval(&filter("s1")).await;
    assert!(
        up.as_str().unwrap().starts_with("Bộ lọc hoạt động")
            && up.as_str().unwrap().contains("tín hiệu lúc"),
        "{up}"
    );
    for id in ["s2", "s3"] {
        let silent = browser.eval(&filter(id)).await;
        assert_eq!(silent, json!("Không có tín hiệu"), "{id}");
    }
    let badge = browser
        .eval("return getComputedStyle(document.querySelector('tr[data-school=\"s2\"] td.filter .badge')).color;")
        .await;
    assert_eq!(badge, json!("rgb(179, 38, 30)"), "no heartbeat is red");
    let policy = browser
        .eval("return [...document.querySelectorAll('#district-schools td.policy')].map((td) => td.textContent);")
        .await;
    let policy = policy.as_array().unwrap();
    assert!(
        policy[0].as_str().unwrap().ends_with(" · 5f2c9a0b1d7e"),
        "s1's fetch and ETag: {policy:?}"
    );
    assert_eq!(policy[1], json!("Chưa lấy"), "s3 never fetched");
    let headers = browser
        .eval("return document.querySelector('#district-schools thead').textContent;")
        .await;
    assert!(
        headers
            .as_str()
            .unwrap()
            .contains("Lấy chính sách lần cuối")
            && headers.as_str().unwrap().contains("Bộ lọc"),
        "{headers}"
    );
    let red = browser
        .eval("return getComputedStyle(document.querySelector('tr[data-school=\"s3\"] td')).color;")
        .await;
    assert_eq!(red, json!("rgb(179, 38, 30)"), "stopped is red");

    // One bar per non-empty (day, category): days 1 and 2 gambling and
    // social, day 3 gambling only (social and deny_list are hidden).
    let titles = browser.eval(&bars("chart-category")).await;
    let mut expected: Vec<String> = Vec::new();
    for d in [1, 2, 3] {
        expected.push(format!("{} — Cờ bạc / Gambling: 65", day_ago(d)));
    }
    for d in [1, 2] {
        expected.push(format!(
            "{} — Mạng xã hội / Social networks: 18",
            day_ago(d)
        ));
    }
    expected.sort();
    assert_eq!(titles, json!(expected));
    let keys = browser
        .eval("return [...document.querySelectorAll('#chart-category svg rect')].map((r) => r.dataset.date + ' ' + r.dataset.key).sort();")
        .await;
    assert_eq!(keys.as_array().unwrap().len(), 5, "{keys}");
    // The bands' chart: young every day, teen on days 1 and 2.
    let titles = browser.eval(&bars("chart-band")).await;
    assert_eq!(titles.as_array().unwrap().len(), 5, "{titles}");
    assert!(
        titles
            .as_array()
            .unwrap()
            .contains(&json!(format!("{} — teen: 18", day_ago(1)))),
        "{titles}"
    );
    let note = browser
        .eval("return document.getElementById('k-note').textContent;")
        .await;
    assert!(
        note.as_str().unwrap().starts_with("Ô < k bị ẩn (k = 10)"),
        "{note}"
    );
    let top = browser
        .eval("return document.getElementById('top-domains').textContent;")
        .await;
    let top = top.as_str().unwrap();
    assert!(
        top.contains("casino.example") && top.contains("17"),
        "{top}"
    );
    assert!(!top.contains("bet.example"), "under k: {top}");

    let png = browser.cmd("GET", "/screenshot", Value::Null).await;
    let png = base64_decode(png.as_str().unwrap());
    assert!(png.starts_with(b"\x89PNG"));
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("console-overview-screenshot.png"), png).unwrap();

    // English on demand, the words too.
    browser.click("#lang").await;
    let stopped = browser
        .eval_until(
            "return document.querySelector('tr[data-school=\"s3\"]').textContent;",
            |v| v.as_str().is_some_and(|t| t.contains("Stopped reporting")),
        )
        .await;
    assert!(
        stopped.as_str().unwrap().contains("Stopped reporting")
            && stopped.as_str().unwrap().contains("No heartbeat"),
        "{stopped}"
    );
    let up = browser.eval(&filter("s1")).await;
    assert!(up.as_str().unwrap().starts_with("Filter up"), "{up}");
    drop(browser);

    // A school's token on its node: its own school, no district table.
    let school = console_signed_in(a.running.management_addr, &a.token("school:s1")).await;
    school.find("#chart-category svg rect").await;
    let hidden = school
        .eval("return document.getElementById('district').hidden;")
        .await;
    assert_eq!(hidden, json!(true));
    let titles = school.eval(&bars("chart-category")).await;
    let mut expected: Vec<String> = Vec::new();
    for d in [1, 2, 3] {
        expected.push(format!("{} — Cờ bạc / Gambling: 40", day_ago(d)));
    }
    for d in [1, 2] {
        expected.push(format!(
            "{} — Mạng xã hội / Social networks: 12",
            day_ago(d)
        ));
    }
    expected.sort();
    assert_eq!(titles, json!(expected));
    drop(b);
}
