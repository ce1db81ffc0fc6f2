//! The web console in headless Chromium.

use super::{base64_decode, config, console_signed_in, list_server, subscribed_config};
use crate::harness::{TestServer, a_records};
use crate::upstream::TestUpstream;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_chromium_unticks_a_category_and_the_domain_becomes_allowed() {
    let upstream = TestUpstream::builder()
        .a("social.example", "192.0.2.7".parse().unwrap())
        .start()
        .await;
    let server = TestServer::start(&config(), Some(upstream)).await;
    let api = server.running.management_addr;
    let office = server.token("office");
    {
        // A student's review comment and domain with markup: shown as text.
        let store = server.running.store.lock().unwrap();
        edudns::admin::reviews::request(
            store.connection(),
            &edudns::admin::reviews::NewReview {
                now: 1,
                day: "2026-11-24",
                school: "s1",
                band: "young",
                domain: "social.example",
                category: "social",
                comment: "<img src=x onerror=\"document.title='pwned'\">",
            },
        )
        .unwrap();
    }
    let blocked = server.query("social.example.", RecordType::A).await;
    assert_eq!(a_records(&blocked), vec!["10.99.0.1"]);

    let browser = console_signed_in(api, &office).await;
    // The overview is the first tab; the policy grid is the second.
    browser.click("button[data-tab=\"policy\"]").await;
    let checkbox = browser
        .find("input[data-band=\"young\"][data-category=\"social\"]")
        .await;
    let checked = browser
        .cmd(
            "GET",
            &format!("/element/{checkbox}/property/checked"),
            Value::Null,
        )
        .await;
    assert_eq!(checked, Value::Bool(true), "young blocks social");
    browser
        .cmd("POST", &format!("/element/{checkbox}/click"), json!({}))
        .await;
    let save = browser.find("button[data-save=\"young\"]").await;
    browser
        .cmd("POST", &format!("/element/{save}/click"), json!({}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = browser
            .eval("return document.getElementById('status').textContent;")
            .await;
        if status.as_str().unwrap_or("").contains("Đã lưu") {
            break;
        }
        assert!(Instant::now() < deadline, "no confirmation: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = server.query("social.example.", RecordType::A).await;
    assert_eq!(
        a_records(&m),
        vec!["192.0.2.7"],
        "the console's change is in force"
    );

    // The review queue shows the student's markup as text, not as HTML.
    let tab = browser.find("button[data-tab=\"reviews\"]").await;
    browser
        .cmd("POST", &format!("/element/{tab}/click"), json!({}))
        .await;
    browser.find("#reviews tbody td").await;
    let cells = browser
        .eval("return document.getElementById('reviews').textContent;")
        .await;
    assert!(cells.as_str().unwrap().contains("<img src=x"), "{cells}");
    let images = browser
        .eval("return document.querySelectorAll('#reviews img').length;")
        .await;
    assert_eq!(images, json!(0));
    assert_ne!(browser.eval("return document.title;").await, json!("pwned"));
    // English on demand.
    let toggle = browser.find("#lang").await;
    browser
        .cmd("POST", &format!("/element/{toggle}/click"), json!({}))
        .await;
    let tab = browser
        .eval("return document.querySelector('button[data-tab=policy]').textContent;")
        .await;
    assert_eq!(tab, json!("Policy"));
    let policy = browser.find("button[data-tab=\"policy\"]").await;
    browser
        .cmd("POST", &format!("/element/{policy}/click"), json!({}))
        .await;
    browser.find("#grid input").await;

    let png = browser.cmd("GET", "/screenshot", Value::Null).await;
    let png = base64_decode(png.as_str().unwrap());
    assert!(png.starts_with(b"\x89PNG"));
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("console-screenshot.png"), png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_chromium_shows_the_lists_state_and_refreshes_while_one_downloads() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let addr = list_server(gate.clone()).await;
    let server = TestServer::start(&subscribed_config(addr, true), None).await;
    let api = server.running.management_addr;
    let office = server.token("office");

    let browser = console_signed_in(api, &office).await;
    let label = browser
        .eval("return document.querySelector('button[data-tab=sources]').textContent;")
        .await;
    assert_eq!(label, json!("Danh sách"));
    browser.click("button[data-tab=\"sources\"]").await;

    // `slow` is held by the list server: shown as downloading while the
    // other two finish, with no click (the view refreshes itself).
    browser
        .find("tr[data-list=\"slow\"][data-state=\"downloading\"]")
        .await;
    browser
        .find("tr[data-list=\"feed\"][data-state=\"ready\"]")
        .await;
    browser
        .find("tr[data-list=\"missing\"][data-state=\"failed\"]")
        .await;
    let row = |name: &str| {
        format!("return document.querySelector('tr[data-list=\"{name}\"]').textContent;")
    };
    let feed = browser.eval(&row("feed")).await;
    let feed = feed.as_str().unwrap();
    assert!(feed.contains("đã tải"), "{feed}");
    assert!(feed.contains("20"), "entries: {feed}");
    assert!(
        feed.contains("2 dòng bị bỏ qua vì chặn tên được bảo vệ"),
        "{feed}"
    );
    let missing = browser.eval(&row("missing")).await;
    let missing = missing.as_str().unwrap();
    assert!(
        missing.contains("lỗi") && missing.contains("404"),
        "{missing}"
    );
    let slow = browser.eval(&row("slow")).await;
    assert!(slow.as_str().unwrap().contains("đang tải"), "{slow}");
    let summary = browser
        .eval("return document.getElementById('sources-summary').textContent;")
        .await;
    assert_eq!(
        summary,
        json!("1/3 danh sách tải về đã sẵn sàng; đang tải: 1; lỗi: 1")
    );
    let badge = browser
        .eval("return getComputedStyle(document.querySelector('tr[data-list=\"missing\"] .badge')).backgroundColor;")
        .await;
    assert_eq!(badge, json!("rgb(251, 228, 226)"), "failed is red");

    // The ignored lines open onto their samples.
    browser
        .click("tr[data-list=\"feed\"] details summary")
        .await;
    let sample = browser
        .eval("const d = document.querySelector('tr[data-list=\"feed\"] details'); return [d.open, d.querySelector('li').getClientRects().length > 0, d.querySelector('li').textContent];")
        .await;
    assert!(sample[0] == true && sample[1] == true, "shown: {sample}");
    let sample = sample[2].as_str().unwrap();
    assert!(
        sample.starts_with("dòng 22: google.com (bảo vệ: ") && sample.ends_with("google.com)"),
        "{sample}"
    );

    // The download finishes: the view follows by itself.
    gate.add_permits(10);
    browser
        .find("tr[data-list=\"slow\"][data-state=\"ready\"]")
        .await;
    let open = browser
        .eval("return document.querySelector('tr[data-list=\"feed\"] details').open;")
        .await;
    assert_eq!(open, json!(true), "a refresh keeps the samples open");
    let summary = browser
        .eval("return document.getElementById('sources-summary').textContent;")
        .await;
    assert_eq!(
        summary,
        json!("2/3 danh sách tải về đã sẵn sàng; đang tải: 0; lỗi: 1")
    );

    // For the reviewer's eye (docs/administration.md).
    let png = browser.cmd("GET", "/screenshot", Value::Null).await;
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(
        target.join("console-lists-screenshot.png"),
        base64_decode(png.as_str().unwrap()),
    )
    .unwrap();

    // English on demand.
    browser.click("#lang").await;
    browser.find("tr[data-list=\"feed\"] details summary").await;
    // The click redraws the table; read it once the redraw is in.
    const IGNORED_EN: &str = "2 lines ignored for protected names";
    let feed = browser
        .eval_until(&row("feed"), |v| {
            v.as_str().is_some_and(|t| t.contains(IGNORED_EN))
        })
        .await;
    assert!(feed.as_str().unwrap().contains(IGNORED_EN), "{feed}");
}
