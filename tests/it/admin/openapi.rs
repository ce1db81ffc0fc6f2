//! The OpenAPI document: exactly the served routes, and a valid OpenAPI
//! document by a real validator (Python's openapi-spec-validator, which
//! .ci/run installs).

use super::{call, config};
use crate::harness::{TestServer, http_request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_exactly_the_served_routes() {
    let server = TestServer::start(&config(), None).await;
    let api = server.running.management_addr;
    let office = server.token("office");
    let (status, _, doc) = call(api, "GET", "/api/v1/openapi.json", None, &[], "").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "patch", "delete", "put"].contains(&method.as_str()) {
                documented.push((method.to_uppercase(), format!("/api/v1{path}")));
                let op = &item[method];
                assert!(op["summary"].is_string(), "{method} {path} has a summary");
                assert!(op["responses"].is_object(), "{method} {path} has responses");
                if op.get("security").is_none() {
                    assert!(
                        op["responses"]["401"].is_object(),
                        "{method} {path} documents the 401 of a missing token"
                    );
                }
            }
        }
    }
    let mut served: Vec<(String, String)> = edudns::web::API_ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served, "openapi.json and the router disagree");
    // Each documented route is really served (not the 404 fallback, not 405).
    for (method, path) in &served {
        let concrete = path
            .replace("{id}", "1")
            .replace("{list}", "deny")
            .replace("{domain}", "nothing.example")
            .replace("{decision}", "reject");
        let body = if method == "GET" || method == "DELETE" {
            ""
        } else {
            "{}"
        };
        let (status, _, answer) = call(api, method, &concrete, Some(&office), &[], body).await;
        assert_ne!(status, 405, "{method} {concrete}");
        assert!(
            !answer["error"]
                .as_str()
                .unwrap_or("")
                .contains("no such endpoint"),
            "{method} {concrete} is not routed"
        );
    }
    let (status, _, answer) = call(api, "GET", "/api/v1/nothing", Some(&office), &[], "").await;
    assert_eq!(status, 404);
    assert!(answer["error"].as_str().unwrap().contains("openapi.json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_validates_against_the_openapi_schema() {
    let server = TestServer::start(&config(), None).await;
    let api = server.running.management_addr;
    let (status, head, text) = http_request(
        api,
        "127.0.0.1",
        "GET",
        "/api/v1/openapi.json",
        &api.to_string(),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &text).unwrap();
    let checked = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(&file)
        .output()
        .expect("python3 runs");
    assert!(
        checked.status.success(),
        "openapi-spec-validator (pip install openapi-spec-validator) rejects the document:\n{}{}",
        String::from_utf8_lossy(&checked.stdout)
            .chars()
            .take(2000)
            .collect::<String>(),
        String::from_utf8_lossy(&checked.stderr)
    );
}
