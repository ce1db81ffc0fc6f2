//! The listener's defences (forgery, oversize bodies, h2c, token
//! guessing) and TLS.

use super::{call, config};
use crate::harness::{TestServer, base_config, http_request};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_refuses_forgery_oversize_bodies_h2c_and_token_guessing() {
    let server = TestServer::start(&config(), None).await;
    let api = server.running.management_addr;
    let office = server.token("office");
    let domain = r#"{"domain":"x.example"}"#;
    // Another site's page posting to the API.
    let (status, head, _) = call(
        api,
        "POST",
        "/api/v1/office/deny",
        Some(&office),
        &[("Origin", "http://evil.example")],
        domain,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{head}"
    );
    let fetch_site = call(
        api,
        "POST",
        "/api/v1/office/deny",
        Some(&office),
        &[("Sec-Fetch-Site", "cross-site")],
        domain,
    )
    .await;
    assert_eq!(fetch_site.0, 403);
    let form = call(
        api,
        "POST",
        "/api/v1/office/deny",
        Some(&office),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "domain=x.example",
    )
    .await;
    assert_eq!(form.0, 415);
    let same_origin = call(
        api,
        "POST",
        "/api/v1/office/deny",
        Some(&office),
        &[("Origin", &format!("http://{api}"))],
        domain,
    )
    .await;
    assert_eq!(same_origin.0, 200, "{}", same_origin.2);
    // Bodies over 1 MiB: refused from the Content-Length, before reading them.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let stream = tokio::net::TcpStream::connect(api).await.unwrap();
        let head = format!(
            "POST /api/v1/office/deny HTTP/1.1\r\nHost: {api}\r\nAuthorization: Bearer {office}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"domain\":\"",
            (1 << 20) + 100
        );
        let (mut reader, mut writer) = stream.into_split();
        let sender = tokio::spawn(async move {
            let _ = writer.write_all(head.as_bytes()).await;
            let _ = writer.write_all(&vec![b'a'; (1 << 20) + 100]).await;
            writer
        });
        let mut raw = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), reader.read(&mut raw))
            .await
            .expect("an answer before the body is complete")
            .unwrap();
        let text = String::from_utf8_lossy(&raw[..n]);
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
        drop(sender.await);
    }
    // HTTP/2 cleartext upgrade: answered over HTTP/1.1, never 101.
    let (status, head, _) = http_request(
        api,
        "127.0.0.1",
        "GET",
        "/api/v1/openapi.json",
        &api.to_string(),
        &[
            ("Connection", "Upgrade, HTTP2-Settings"),
            ("Upgrade", "h2c"),
            ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"),
        ],
        "",
    )
    .await;
    assert_ne!(status, 101, "{head}");
    assert!(head.starts_with("HTTP/1.1"), "{head}");
    // Prior-knowledge HTTP/2 preface: no HTTP/2 SETTINGS frame comes back.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(api).await.unwrap();
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut raw)).await;
        assert!(
            raw.is_empty() || raw.starts_with(b"HTTP/1.1 4"),
            "{:?}",
            String::from_utf8_lossy(&raw)
        );
    }
    // A revoked token stops working at once (and counts as a failure).
    let token = server.token("auditor");
    assert_eq!(
        call(api, "GET", "/api/v1/whoami", Some(&token), &[], "")
            .await
            .0,
        200
    );
    let id = token.split('_').nth(1).unwrap().to_string();
    let tokens_file = server
        .running
        .handler
        .snapshot
        .load()
        .config
        .admin
        .tokens_file
        .clone();
    assert!(edudns::admin::tokens::revoke(&tokens_file, &id).unwrap());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&tokens_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        call(api, "GET", "/api/v1/whoami", Some(&token), &[], "")
            .await
            .0,
        401
    );
    // Four more wrong tokens (five in all) lock the source out, even for a right token after.
    for _ in 0..4 {
        let (status, head, _) = call(
            api,
            "GET",
            "/api/v1/whoami",
            Some("edudns_00000000_guess"),
            &[],
            "",
        )
        .await;
        assert_eq!(status, 401);
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: bearer")
        );
    }
    let (status, head, answer) = call(api, "GET", "/api/v1/whoami", Some(&office), &[], "").await;
    assert_eq!(status, 429, "{answer}");
    assert!(head.to_ascii_lowercase().contains("retry-after:"));
    let (_, _, metrics) = crate::harness::http_get(api, "/metrics").await;
    assert!(
        metrics.contains("edudns_admin_refused_total{reason=\"bad_token\"} 5"),
        "{metrics}"
    );
    assert!(metrics.contains("edudns_admin_refused_total{reason=\"locked_out\"} 1"));
    assert!(metrics.contains("edudns_admin_refused_total{reason=\"cross_origin\"} 2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_listener_speaks_tls_when_configured() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["edudns.school.internal".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("admin.crt"), dir.path().join("admin.key"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let config = base_config(&format!(
        "[admin]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert_path.display(),
        key_path.display()
    ));
    let server = TestServer::start(&config, None).await;
    let api = server.running.management_addr;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&cert_path).unwrap())
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(api).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("edudns.school.internal").unwrap(), tcp)
        .await
        .expect("TLS with the configured certificate");
    tls.write_all(
        b"GET /api/v1/whoami HTTP/1.1\r\nHost: edudns.school.internal\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let (status, _, _) = tokio::time::timeout(Duration::from_secs(15), async {
        let mut stream = tokio::net::TcpStream::connect(api).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        (
            String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 200"),
            (),
            (),
        )
    })
    .await
    .unwrap();
    assert!(
        !status,
        "metrics are not served in clear text on the TLS listener"
    );
}
