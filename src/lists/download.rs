//! Subscribed lists: download, check, and keep the last good copy.
//!
//! A download is accepted only when it is complete, within the size limit,
//! matches the SHA-256 pin if one is set, parses as the expected format
//! (at most `max_skipped` of its lines unusable), is not empty, and has not
//! shrunk by more than `max_shrink` since the last good copy. Then it is
//! written atomically (temp file, fsync, rename) into the cache, where the
//! snapshot reads it and the file watcher notices it: the normal reload path.
//! Anything else keeps the previous copy and says why.

use super::formats;
use crate::config::{Download, ListSpec, ListsConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use utoipa::ToSchema;

/// What is remembered about a subscription between downloads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub entries: usize,
    pub sha256: String,
    pub last_success: Option<i64>,
    pub last_attempt: Option<i64>,
    pub last_error: Option<String>,
    /// Set while a download runs (unix time it started), cleared after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downloading_since: Option<i64>,
    /// Size of the accepted copy.
    #[serde(default)]
    pub bytes: u64,
    /// How long the last accepted download took (transfer and checks).
    #[serde(default)]
    pub elapsed_ms: u64,
    /// Lines ignored because they would block a protected name.
    #[serde(default)]
    pub protected_ignored: usize,
    /// The first of those lines (line number, entry, protected rule).
    #[serde(default)]
    pub protected_samples: Vec<IgnoredLine>,
}

/// A subscribed list's line ignored because it would block a protected name
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IgnoredLine {
    /// line number in the downloaded list
    pub line: u32,
    /// the name the line lists
    pub entry: String,
    /// the protected name (or *.subtree rule) it would block
    pub protected: String,
}

/// How many ignored lines are remembered per list (all are counted).
pub const IGNORED_SAMPLES: usize = 20;

/// Counts the entries of a parsed list that protection drops, keeping the
/// first [`IGNORED_SAMPLES`]; `keep` says whether to pass an entry on.
#[derive(Debug, Default)]
pub struct IgnoredCount {
    pub count: usize,
    pub samples: Vec<IgnoredLine>,
}

impl IgnoredCount {
    /// Whether `entry` may go into the trie: allow entries always may; a
    /// block entry not if it would block a protected name.
    pub fn keep(
        &mut self,
        protected: &super::protected::ProtectedNames,
        entry: &formats::Entry<'_>,
    ) -> bool {
        if entry.action != super::RuleAction::Block {
            return true;
        }
        let Some(rule) = protected.blocked_by_entry(entry.domain) else {
            return true;
        };
        self.count += 1;
        if self.samples.len() < IGNORED_SAMPLES {
            self.samples.push(IgnoredLine {
                line: entry.line,
                entry: entry.domain.to_string(),
                protected: rule.rule.to_string(),
            });
        }
        false
    }
}

/// The result of one refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    /// A new version was accepted and written.
    Updated { entries: usize },
    /// The server said 304 Not Modified.
    NotModified,
}

/// Why a download was rejected (the previous copy stays in force).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejected {
    #[error("download failed: {0}")]
    Transfer(String),
    #[error("server answered HTTP {0}")]
    Status(u16),
    #[error("larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("SHA-256 {actual} does not match the pinned {expected}")]
    Pin { expected: String, actual: String },
    #[error("not a {format:?} list: {skipped} of {lines} lines unusable")]
    WrongFormat {
        format: formats::ListFormat,
        skipped: usize,
        lines: usize,
    },
    #[error("no entries")]
    Empty,
    #[error("shrank from {previous} to {now} entries (more than the allowed {allowed:.0} %)")]
    Shrunk {
        previous: usize,
        now: usize,
        allowed: f64,
    },
    #[error("cannot write the cache: {0}")]
    Cache(String),
}

pub fn meta_path(spec_path: &Path) -> PathBuf {
    spec_path.with_extension("meta.json")
}

/// Reads the remembered state of a subscription.
pub fn read_meta(spec_path: &Path) -> Meta {
    std::fs::read(meta_path(spec_path))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temp, path)
}

/// The HTTP client for subscriptions.
pub fn client(limits: &ListsConfig) -> reqwest::Client {
    http_client(limits.timeout)
}

/// The HTTP client edudns fetches with (lists, central policy, `edudns
/// health`): rustls with ring, one deadline per request, our user agent.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("edudns/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// What a conditional GET brought back.
pub enum Fetched {
    /// 304: the copy we have is current.
    NotModified,
    /// A complete body (within the size limit) and its validators.
    Body {
        body: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

/// A conditional GET (If-None-Match / If-Modified-Since from `meta` when it
/// was saved for the same URL), with an optional bearer token, reading at
/// most `max_bytes`. Shared by list subscriptions and the central policy.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    meta: &Meta,
    max_bytes: u64,
    bearer: Option<&str>,
) -> Result<Fetched, Rejected> {
    fetch_with_progress(client, url, meta, max_bytes, bearer, &|_| {}).await
}

/// Bytes received so far, and the total when the server said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub received: u64,
    pub total: Option<u64>,
}

/// [`fetch`], reporting every received chunk to `progress`.
pub async fn fetch_with_progress(
    client: &reqwest::Client,
    url: &str,
    meta: &Meta,
    max_bytes: u64,
    bearer: Option<&str>,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Fetched, Rejected> {
    let mut request = client.get(url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    if meta.url == url {
        if let Some(etag) = &meta.etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        if let Some(modified) = &meta.last_modified {
            request = request.header(reqwest::header::IF_MODIFIED_SINCE, modified);
        }
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| Rejected::Transfer(e.to_string()))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified);
    }
    if !status.is_success() {
        return Err(Rejected::Status(status.as_u16()));
    }
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let (etag, last_modified) = (
        header(reqwest::header::ETAG),
        header(reqwest::header::LAST_MODIFIED),
    );
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Rejected::Transfer(format!("truncated or broken body: {e}")))?
    {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > max_bytes {
            return Err(Rejected::TooLarge(max_bytes));
        }
        progress(Progress {
            received: body.len() as u64,
            total: response.content_length(),
        });
    }
    Ok(Fetched::Body {
        body,
        etag,
        last_modified,
    })
}

/// One attempt: fetch, check, write.
async fn attempt(
    client: &reqwest::Client,
    spec: &ListSpec,
    download: &Download,
    limits: &ListsConfig,
    meta: &Meta,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(Refreshed, Meta), Rejected> {
    let started = std::time::Instant::now();
    let url = limits.fetch_url(&download.url);
    let (mut body, etag, last_modified) =
        match fetch_with_progress(client, &url, meta, limits.max_bytes, None, progress).await? {
            // A 304 without a copy to keep cannot be used.
            Fetched::NotModified if spec.path.exists() => {
                return Ok((Refreshed::NotModified, meta.clone()));
            }
            Fetched::NotModified => return Err(Rejected::Status(304)),
            Fetched::Body {
                body,
                etag,
                last_modified,
            } => (body, etag, last_modified),
        };
    // A gzip file served as is (`list.txt.gz`, no Content-Encoding).
    if body.starts_with(&[0x1f, 0x8b]) {
        body = gunzip(&body, limits.max_bytes)?;
    }
    let sha256: String = Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if let Some(expected) = &download.sha256
        && *expected != sha256
    {
        return Err(Rejected::Pin {
            expected: expected.clone(),
            actual: sha256,
        });
    }
    let text = String::from_utf8_lossy(&body);
    let mut ignored = IgnoredCount::default();
    let summary = formats::parse(&text, spec.format, &mut |entry| {
        ignored.keep(&limits.protected, &entry);
    });
    let lines = summary.entries + summary.skipped;
    // Bare IP addresses are skipped but are no sign of a wrong format.
    let unusable = summary.skipped - summary.ip_addresses;
    if unusable as f64 > limits.max_skipped * lines.max(1) as f64 {
        return Err(Rejected::WrongFormat {
            format: summary.format,
            skipped: unusable,
            lines,
        });
    }
    // What goes into force: the rules less those protection drops.
    let entries = summary.entries - ignored.count;
    if entries == 0 {
        return Err(Rejected::Empty);
    }
    if meta.entries > 0 && (entries as f64) < meta.entries as f64 * (1.0 - limits.max_shrink) {
        return Err(Rejected::Shrunk {
            previous: meta.entries,
            now: entries,
            allowed: limits.max_shrink * 100.0,
        });
    }
    write_atomically(&spec.path, &body).map_err(|e| Rejected::Cache(e.to_string()))?;
    Ok((
        Refreshed::Updated { entries },
        Meta {
            url,
            etag,
            last_modified,
            entries,
            sha256,
            bytes: body.len() as u64,
            elapsed_ms: started.elapsed().as_millis() as u64,
            protected_ignored: ignored.count,
            protected_samples: ignored.samples,
            ..meta.clone()
        },
    ))
}

fn gunzip(bytes: &[u8], limit: u64) -> Result<Vec<u8>, Rejected> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| Rejected::Transfer(format!("broken gzip: {e}")))?;
    if out.len() as u64 > limit {
        return Err(Rejected::TooLarge(limit));
    }
    Ok(out)
}

/// Refreshes one subscription: up to 3 attempts with backoff and jitter for
/// transfer errors and 5xx; records the outcome in the meta file.
pub async fn refresh(
    client: &reqwest::Client,
    spec: &ListSpec,
    limits: &ListsConfig,
    backoff: Duration,
) -> Result<Refreshed, Rejected> {
    refresh_with_progress(client, spec, limits, backoff, &|_| {}).await
}

/// [`refresh`], reporting the bytes of each attempt to `progress`.
pub async fn refresh_with_progress(
    client: &reqwest::Client,
    spec: &ListSpec,
    limits: &ListsConfig,
    backoff: Duration,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Refreshed, Rejected> {
    let Some(download) = &spec.download else {
        return Ok(Refreshed::NotModified);
    };
    let mut meta = read_meta(&spec.path);
    let now = jiff::Timestamp::now().as_second();
    meta.last_attempt = Some(now);
    // `lists status` shows the download as running meanwhile.
    let _ = write_atomically(
        &meta_path(&spec.path),
        &serde_json::to_vec_pretty(&Meta {
            downloading_since: Some(now),
            ..meta.clone()
        })
        .unwrap_or_default(),
    );
    let mut delay = backoff;
    let mut result = Err(Rejected::Transfer("not tried".into()));
    for round in 0..3 {
        result = attempt(client, spec, download, limits, &meta, progress).await;
        let retry = matches!(&result, Err(Rejected::Transfer(_)))
            || matches!(&result, Err(Rejected::Status(s)) if *s >= 500);
        if !retry || round == 2 {
            break;
        }
        let jitter = u64::from(now.rem_euclid(1000) as u16) % (delay.as_millis() as u64 / 2 + 1);
        tokio::time::sleep(delay + Duration::from_millis(jitter)).await;
        delay *= 2;
    }
    match &result {
        Ok((outcome, new_meta)) => {
            meta = Meta {
                last_success: Some(now),
                last_error: None,
                last_attempt: Some(now),
                downloading_since: None,
                ..new_meta.clone()
            };
            let _ = write_atomically(
                &meta_path(&spec.path),
                &serde_json::to_vec_pretty(&meta).unwrap_or_default(),
            );
            Ok(outcome.clone())
        }
        Err(error) => {
            meta.last_error = Some(error.to_string());
            meta.downloading_since = None;
            let _ = write_atomically(
                &meta_path(&spec.path),
                &serde_json::to_vec_pretty(&meta).unwrap_or_default(),
            );
            Err(error.clone())
        }
    }
}
