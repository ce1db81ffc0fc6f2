//! Every endpoint answers each role (none, office, school, other school,
//! auditor) as documented.

use super::{call, config};
use crate::harness::{TestServer, etag_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_each_role_as_documented() {
    let server = TestServer::start(&config(), None).await;
    let api = server.running.management_addr;
    let office = server.token("office");
    let school1 = server.token("school:s1");
    let school2 = server.token("school:s2");
    let auditor = server.token("auditor");
    let (_, head, _) = call(api, "GET", "/api/v1/bands", Some(&office), &[], "").await;
    let etag = etag_of(&head);
    let if_match = [("If-Match", etag.as_str())];
    // (method, path, body, headers, [none, office, school:s1, school:s2, auditor])
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        [u16; 5],
    );
    let cases: Vec<Case> = vec![
        ("GET", "/api/v1/whoami", "", &[], [401, 200, 200, 200, 200]),
        ("GET", "/api/v1/schools", "", &[], [401, 200, 200, 200, 200]),
        (
            "GET",
            "/api/v1/schools/s1",
            "",
            &[],
            [401, 200, 200, 403, 200],
        ),
        (
            "GET",
            "/api/v1/schools/nope",
            "",
            &[],
            [401, 404, 403, 403, 404],
        ),
        ("GET", "/api/v1/bands", "", &[], [401, 200, 200, 200, 200]),
        (
            "GET",
            "/api/v1/bands/teen",
            "",
            &[],
            [401, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/bands/nope",
            "",
            &[],
            [401, 404, 404, 404, 404],
        ),
        ("GET", "/api/v1/office", "", &[], [401, 200, 200, 200, 200]),
        (
            "GET",
            "/api/v1/categories",
            "",
            &[],
            [401, 200, 200, 200, 200],
        ),
        ("GET", "/api/v1/lists", "", &[], [401, 200, 200, 200, 200]),
        ("GET", "/api/v1/policy", "", &[], [401, 200, 403, 403, 200]),
        ("GET", "/api/v1/reviews", "", &[], [401, 200, 200, 200, 403]),
        (
            "GET",
            "/api/v1/reviews?status=bogus",
            "",
            &[],
            [401, 400, 400, 400, 403],
        ),
        (
            "GET",
            "/api/v1/allowances",
            "",
            &[],
            [401, 200, 200, 200, 403],
        ),
        ("GET", "/api/v1/audit", "", &[], [401, 200, 403, 403, 403]),
        (
            "GET",
            "/api/v1/audit?limit=x",
            "",
            &[],
            [401, 400, 403, 403, 403],
        ),
        (
            "GET",
            "/api/v1/takedowns",
            "",
            &[],
            [401, 200, 403, 403, 200],
        ),
        (
            "GET",
            "/api/v1/reports?school=s1&from=2026-01-01&to=2026-01-02",
            "",
            &[],
            [401, 200, 200, 403, 200],
        ),
        (
            "GET",
            "/api/v1/district",
            "",
            &[],
            [401, 200, 403, 403, 200],
        ),
        (
            "GET",
            "/api/v1/district?from=2026-13-01",
            "",
            &[],
            [401, 400, 403, 403, 400],
        ),
        (
            "GET",
            "/api/v1/dashboard?school=s1",
            "",
            &[],
            [401, 200, 200, 403, 200],
        ),
        (
            "GET",
            "/api/v1/dashboard?school=s1&to=x",
            "",
            &[],
            [401, 400, 400, 403, 400],
        ),
        (
            "POST",
            "/api/v1/test",
            r#"{"name":"bet.example","school":"s1","band":"teen"}"#,
            &[],
            [401, 200, 200, 403, 403],
        ),
        (
            "POST",
            "/api/v1/test",
            r#"{"name":"bet.example","school":"s1","band":"nope"}"#,
            &[],
            [401, 404, 404, 403, 403],
        ),
        (
            "POST",
            "/api/v1/test",
            r#"{"name":"bet.example","school":"s1"}"#,
            &[],
            [401, 400, 400, 400, 400],
        ),
        (
            "POST",
            "/api/v1/test",
            r#"{"name":"not a name!","school":"s1","band":"teen"}"#,
            &[],
            [401, 400, 400, 403, 403],
        ),
        (
            "PATCH",
            "/api/v1/bands/teen",
            r#"{"block":["gambling"]}"#,
            &if_match,
            [401, 200, 403, 403, 403],
        ),
        (
            "PATCH",
            "/api/v1/bands/teen",
            r#"{"blok":["gambling"]}"#,
            &[],
            [401, 400, 403, 403, 403],
        ),
        (
            "PATCH",
            "/api/v1/bands/nope",
            r#"{"block":[]}"#,
            &[("If-Match", "*")],
            [401, 404, 403, 403, 403],
        ),
        (
            "PATCH",
            "/api/v1/schools/s2",
            r#"{"deny":["x.example"]}"#,
            &[("If-Match", "*")],
            [401, 200, 403, 200, 403],
        ),
        (
            "POST",
            "/api/v1/office/deny",
            r#"{"domain":"office-deny.example"}"#,
            &[],
            [401, 200, 403, 403, 403],
        ),
        (
            "POST",
            "/api/v1/office/other",
            r#"{"domain":"x.example"}"#,
            &[],
            [401, 404, 403, 403, 403],
        ),
        (
            "DELETE",
            "/api/v1/office/deny/office-deny.example",
            "",
            &[],
            [401, 200, 403, 403, 403],
        ),
        (
            "POST",
            "/api/v1/allowances",
            r#"{"school":"s1","band":"young","domain":"social.example","minutes":45,"reason":"bài học"}"#,
            &[],
            [401, 201, 201, 403, 403],
        ),
        (
            "POST",
            "/api/v1/allowances",
            r#"{"school":"s1","band":"young","domain":"social.example","minutes":0}"#,
            &[],
            [401, 400, 400, 403, 403],
        ),
        (
            "DELETE",
            "/api/v1/allowances/999999",
            "",
            &[],
            [401, 404, 404, 404, 404],
        ),
        (
            "POST",
            "/api/v1/reviews/999999/accept",
            "",
            &[],
            [401, 404, 404, 404, 404],
        ),
        ("POST", "/api/v1/reload", "", &[], [401, 200, 403, 403, 403]),
        (
            "POST",
            "/api/v1/takedowns",
            "[]",
            &[],
            [401, 200, 403, 403, 403],
        ),
    ];
    let tokens = [
        None,
        Some(&office),
        Some(&school1),
        Some(&school2),
        Some(&auditor),
    ];
    for (method, path, body, headers, expected) in &cases {
        for (token, want) in tokens.iter().zip(expected) {
            let (status, _, answer) =
                call(api, method, path, token.map(|t| t.as_str()), headers, body).await;
            let role = match token {
                None => "no token".to_string(),
                Some(t) if *t == &office => "office".into(),
                Some(t) if *t == &school1 => "school:s1".into(),
                Some(t) if *t == &school2 => "school:s2".into(),
                Some(_) => "auditor".into(),
            };
            assert_eq!(status, *want, "{method} {path} as {role}: {answer}");
            if status >= 400 {
                assert!(
                    answer["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{method} {path} as {role}: errors carry a message: {answer}"
                );
            }
        }
    }
    // School staff see only their school.
    let (_, _, schools) = call(api, "GET", "/api/v1/schools", Some(&school2), &[], "").await;
    let ids: Vec<&str> = schools["schools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["s2"]);
    // A wrong-role attempt is counted, without any address or token in a label.
    let (_, _, metrics) = crate::harness::http_get(api, "/metrics").await;
    assert!(
        metrics.contains("edudns_admin_refused_total{reason=\"forbidden\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("edudns_admin_refused_total{reason=\"missing_token\"}"));
}
