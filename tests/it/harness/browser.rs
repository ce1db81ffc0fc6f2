//! chromedriver and a headless Chromium session, for the tests of the
//! console and the warning page in a real browser.

use std::path::Path;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::net::TcpStream;

/// A WebDriver command to chromedriver (which keeps connections open, so
/// the answer is read by its Content-Length).
pub async fn webdriver(
    port: u16,
    method: &str,
    path: &str,
    body: &serde_json::Value,
) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(30);
    let (head_len, length) = loop {
        let n = tokio::time::timeout(deadline - Instant::now(), stream.read(&mut chunk))
            .await
            .expect("webdriver answer")
            .unwrap();
        assert!(n > 0, "webdriver closed the connection");
        raw.extend_from_slice(&chunk[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while raw.len() < head_len + length {
        let n = tokio::time::timeout(deadline - Instant::now(), stream.read(&mut chunk))
            .await
            .expect("webdriver body")
            .unwrap();
        assert!(n > 0, "webdriver closed the connection early");
        raw.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&raw[..head_len]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let answer = String::from_utf8_lossy(&raw[head_len..]).to_string();
    let json: serde_json::Value = serde_json::from_str(&answer).unwrap_or(serde_json::Value::Null);
    assert_eq!(status, 200, "{method} {path}: {answer}");
    json["value"].clone()
}

/// chromedriver on a free loopback port; killed when dropped.
pub struct ChromeDriver {
    pub port: u16,
    child: std::process::Child,
    _profile: TempDir,
    pub session: String,
}

impl ChromeDriver {
    /// Starts chromedriver and a headless Chromium session (window `width`×`height`).
    pub async fn start(width: u32, height: u32, extra_args: &[String]) -> ChromeDriver {
        assert!(
            Path::new("/usr/bin/chromedriver").exists(),
            "chromium-driver is installed (.ci/run installs it)"
        );
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let child = std::process::Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("--window-size={width},{height}"));
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.extend(extra_args.iter().cloned());
        let capabilities = serde_json::json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}}});
        let session = webdriver(port, "POST", "/session", &capabilities).await;
        let session = session["sessionId"].as_str().expect("session").to_string();
        ChromeDriver {
            port,
            child,
            _profile: profile,
            session,
        }
    }

    /// A command on this session (`path` after `/session/{id}`).
    pub async fn cmd(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        webdriver(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            &body,
        )
        .await
    }

    /// The element id of the first match of a CSS selector, waiting up to 10 s.
    pub async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .cmd("POST", "/execute/sync", serde_json::json!({"script": "return document.querySelector(arguments[0]) !== null;", "args": [css]}))
                .await;
            if found == serde_json::Value::Bool(true) {
                let element = self
                    .cmd(
                        "POST",
                        "/element",
                        serde_json::json!({"using": "css selector", "value": css}),
                    )
                    .await;
                return element["element-6066-11e4-a52e-4f735466cecf"]
                    .as_str()
                    .unwrap()
                    .to_string();
            }
            assert!(Instant::now() < deadline, "no element {css} within 10 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the first match of a CSS selector, waiting for it up to 10 s.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.cmd(
            "POST",
            &format!("/element/{element}/click"),
            serde_json::json!({}),
        )
        .await;
    }

    /// Runs `script` until `done` holds for its result or 10 s pass, and
    /// returns the last result: for a page that redraws after a click (the
    /// caller still asserts on what it got).
    pub async fn eval_until(
        &self,
        script: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let value = self.eval(script).await;
            if done(&value) || Instant::now() >= deadline {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs JavaScript in the page and returns its result.
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.cmd(
            "POST",
            "/execute/sync",
            serde_json::json!({"script": script, "args": []}),
        )
        .await
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // Ending the session makes chromedriver close Chromium; killing
        // chromedriver alone would leave the browser running.
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session, self.port
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let mut answer = [0u8; 1024];
                let _ = stream.read(&mut answer);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
