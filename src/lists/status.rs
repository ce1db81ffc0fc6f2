//! The state of every subscribed list, as `edudns lists status`, the
//! management API and the console show it: read from the configuration and
//! the download records (`<name>.meta.json`) in the cache directory, so the
//! command works beside a running service and with none.

use super::download::{IgnoredLine, Meta, read_meta};
use crate::config::{Config, ListSpec};
use serde::Serialize;
use utoipa::ToSchema;

/// Where a subscription stands. local: a local file; pending: no copy, no
/// attempt finished yet (first start); downloading: a download is running;
/// ready: a copy in force and the last attempt succeeded; stale: a copy in
/// force but the last attempt was rejected; failed: no copy and the last
/// attempt was rejected
// One list for the OpenAPI document too, which shows the enum's comment
// and not its variants'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ListState)]
pub enum State {
    Local,
    Pending,
    Downloading,
    Ready,
    Stale,
    Failed,
}

impl State {
    /// Vietnamese first, English beside it (what IT staff read).
    pub fn label(self) -> &'static str {
        match self {
            State::Local => "tệp cục bộ / local file",
            State::Pending => "chờ tải / pending",
            State::Downloading => "đang tải / downloading",
            State::Ready => "đã tải / ready",
            State::Stale => "bản cũ / previous copy",
            State::Failed => "lỗi / failed",
        }
    }
}

/// One list of one category.
#[derive(Debug, Clone, Serialize)]
pub struct ListStatus {
    pub category: String,
    /// The subscription name, or the local file as the config names it.
    pub name: String,
    pub url: Option<String>,
    pub state: State,
    pub entries: Option<usize>,
    pub bytes: Option<u64>,
    pub protected_ignored: usize,
    pub protected_samples: Vec<IgnoredLine>,
    pub last_success: Option<i64>,
    pub last_attempt: Option<i64>,
    pub downloading_since: Option<i64>,
    pub last_error: Option<String>,
}

/// A download record older than this is a leftover of a stopped process,
/// not a running download.
const DOWNLOADING_STALE_SECS: i64 = 600;

/// The status of every list of `config`, in config order.
pub fn collect(config: &Config, now: i64) -> Vec<ListStatus> {
    config
        .categories
        .iter()
        .flat_map(|category| {
            category
                .lists
                .iter()
                .map(|spec| of(&category.id, spec, now))
        })
        .collect()
}

/// The status of one list `spec` of `category` at `now` (seconds, wall
/// clock: the download records are written with it).
pub fn of(category: &str, spec: &ListSpec, now: i64) -> ListStatus {
    let Some(download) = &spec.download else {
        // The file name and its folder: enough to find it.
        let path = std::path::Path::new(&spec.display);
        let short: Vec<_> = path.iter().rev().take(2).collect();
        let name = short
            .iter()
            .rev()
            .map(|p| p.to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        return ListStatus {
            category: category.to_string(),
            name,
            url: None,
            state: State::Local,
            entries: None,
            bytes: None,
            protected_ignored: 0,
            protected_samples: Vec::new(),
            last_success: None,
            last_attempt: None,
            downloading_since: None,
            last_error: None,
        };
    };
    let meta: Meta = read_meta(&spec.path);
    let have_copy = spec.path.exists();
    let downloading = meta
        .downloading_since
        .is_some_and(|since| now - since < DOWNLOADING_STALE_SECS);
    let state = match (downloading, have_copy, &meta.last_error) {
        (true, _, _) => State::Downloading,
        (false, true, None) => State::Ready,
        (false, true, Some(_)) => State::Stale,
        (false, false, Some(_)) => State::Failed,
        (false, false, None) => State::Pending,
    };
    ListStatus {
        category: category.to_string(),
        name: download.name.clone(),
        url: Some(download.url.clone()),
        state,
        entries: have_copy.then_some(meta.entries),
        bytes: have_copy.then_some(meta.bytes),
        protected_ignored: meta.protected_ignored,
        protected_samples: meta.protected_samples,
        last_success: meta.last_success,
        last_attempt: meta.last_attempt,
        downloading_since: meta.downloading_since.filter(|_| downloading),
        last_error: meta.last_error,
    }
}

fn when(t: Option<i64>) -> String {
    t.and_then(|t| jiff::Timestamp::from_second(t).ok())
        .map_or("-".to_string(), |t| {
            t.strftime("%Y-%m-%d %H:%M").to_string()
        })
}

/// The table `edudns lists status` prints, then one line per ignored
/// protected entry and a summary.
pub fn render(lists: &[ListStatus]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<11}  {:<28}  {:<24}  {:>8}  {:>9}  {:>9}  {:<16}  lỗi / last error",
        "category", "list", "trạng thái / state", "entries", "bytes", "protected", "last download"
    );
    for list in lists {
        let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:<11}  {:<28}  {:<24}  {:>8}  {:>9}  {:>9}  {:<16}  {}",
            list.category,
            list.name,
            list.state.label(),
            dash(list.entries.map(|e| e.to_string())),
            dash(list.bytes.map(|b| b.to_string())),
            list.protected_ignored,
            when(list.last_success),
            list.last_error.as_deref().unwrap_or("")
        );
    }
    let ignored: Vec<_> = lists
        .iter()
        .flat_map(|l| l.protected_samples.iter().map(move |s| (l, s)))
        .collect();
    if !ignored.is_empty() {
        let _ = writeln!(
            out,
            "\nBỏ qua vì chặn tên được bảo vệ / Lines ignored because they would block a protected name:"
        );
        for (list, sample) in ignored {
            let _ = writeln!(
                out,
                "  {} line {}: {} (protected: {})",
                list.name, sample.line, sample.entry, sample.protected
            );
        }
    }
    let count = |state| lists.iter().filter(|l| l.state == state).count();
    let subscribed = lists.iter().filter(|l| l.state != State::Local).count();
    let _ = writeln!(
        out,
        "\n{subscribed} subscribed lists: {} ready, {} downloading, {} pending, {} previous copy, {} failed; {} entries; {} lines ignored for protected names",
        count(State::Ready),
        count(State::Downloading),
        count(State::Pending),
        count(State::Stale),
        count(State::Failed),
        lists.iter().filter_map(|l| l.entries).sum::<usize>(),
        lists.iter().map(|l| l.protected_ignored).sum::<usize>(),
    );
    out
}
