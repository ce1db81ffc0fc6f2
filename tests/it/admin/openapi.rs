//! The OpenAPI document: exactly the served routes.

use super::{call, config};
use crate::harness::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_exactly_the_served_routes() {
    let server = TestServer::start(&config(), None).await;
    let api = server.running.management_addr;
    let office = server.token("office");
    let (status, _, doc) = call(api, "GET", "/api/v1/openapi.json", None, &[], "").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "patch", "delete", "put"].contains(&method.as_str()) {
                documented.push((method.to_uppercase(), format!("/api/v1{path}")));
                let op = &item[method];
                assert!(op["summary"].is_string(), "{method} {path} has a summary");
                assert!(op["responses"].is_object(), "{method} {path} has responses");
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
