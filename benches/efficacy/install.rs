//! The installed configuration (`config/examples/school.toml`) on loopback,
//! shared by the efficacy benchmark and the default-subscription tests
//! (`tests/it/defaults.rs` includes this file): the catalogued sources it
//! subscribes to, the copy of each in `../shared/data` (`mirror.toml`), a
//! loopback mirror that serves them in the `[lists] mirror` layout, and the
//! configuration rewritten to use loopback listeners, a temporary state
//! directory and that mirror.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use edudns::lists::catalogue;
use edudns::lists::formats::{self, ListFormat};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// `blocking.sinkhole_ipv4` of the installed configuration.
pub const SINKHOLE: &str = "10.20.0.53";
/// The school's bands as [`installed_config`] maps them onto loopback
/// sources: THCS blocks every category, THPT a little less, staff and guest
/// the least.
pub const THCS: &str = "127.0.0.2";
pub const THPT: &str = "127.0.0.3";
pub const STAFF: &str = "127.0.0.4";
pub const GUEST: &str = "127.0.0.5";

/// A loopback HTTP server answering `/<host>/<path>` (the `[lists] mirror`
/// layout) from a fixed map, 404 for anything else; every answer waits
/// until the gate opens.
pub struct Mirror {
    pub addr: SocketAddr,
    gate: watch::Sender<bool>,
    /// Every path asked for, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
}

#[derive(Clone)]
struct MirrorState {
    bodies: Arc<HashMap<String, Vec<u8>>>,
    gate: watch::Receiver<bool>,
    requests: Arc<Mutex<Vec<String>>>,
}

async fn mirror_answer(State(state): State<MirrorState>, uri: Uri) -> axum::response::Response {
    state.requests.lock().unwrap().push(uri.path().to_string());
    let mut gate = state.gate.clone();
    let _ = gate.wait_for(|open| *open).await;
    match state.bodies.get(uri.path()) {
        Some(body) => body.clone().into_response(),
        None => (StatusCode::NOT_FOUND, "not in this mirror\n").into_response(),
    }
}

impl Mirror {
    pub async fn start(bodies: HashMap<String, Vec<u8>>, open: bool) -> Mirror {
        let (gate, receiver) = watch::channel(open);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = MirrorState {
            bodies: Arc::new(bodies),
            gate: receiver,
            requests: requests.clone(),
        };
        let app = axum::Router::new()
            .fallback(mirror_answer)
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Mirror {
            addr,
            gate,
            requests,
        }
    }

    pub fn open(&self) {
        self.gate.send_replace(true);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The mirror path of a catalogued URL: `https://host/path` → `/host/path`.
pub fn mirror_path(url: &str) -> String {
    format!("/{}", url.split_once("://").map_or(url, |(_, rest)| rest))
}

/// One default subscription with its copy in `../shared/data`, if any.
pub struct DefaultSource {
    pub source: catalogue::Source,
    /// The category of the installed configuration that subscribes to it.
    pub category: String,
    pub data: Option<PathBuf>,
}

/// Every subscription of the installed configuration, in its order, with
/// the copy `benches/efficacy/mirror.toml` names for it.
pub fn default_sources() -> Vec<DefaultSource> {
    let mapping: toml::Table =
        std::fs::read_to_string(format!("{REPO}/benches/efficacy/mirror.toml"))
            .unwrap()
            .parse()
            .unwrap();
    let data_dir = Path::new(REPO).join(mapping["data_dir"].as_str().unwrap());
    let files = mapping["sources"].as_table().unwrap();
    let catalogue = catalogue::parse(catalogue::EMBEDDED).unwrap();
    let installed = std::fs::read_to_string(format!("{REPO}/config/examples/school.toml")).unwrap();
    let installed: toml::Table = installed.parse().unwrap();
    let mut out = Vec::new();
    for category in installed["category"].as_array().unwrap() {
        for list in category["lists"].as_array().unwrap() {
            let Some(name) = list.get("source").and_then(|s| s.as_str()) else {
                continue;
            };
            let source = catalogue
                .iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| panic!("{name} is not catalogued"))
                .clone();
            let data = files
                .get(name)
                .map(|file| data_dir.join(file.as_str().unwrap()));
            out.push(DefaultSource {
                source,
                category: category["id"].as_str().unwrap().to_string(),
                data,
            });
        }
    }
    out
}

/// What the mirror serves for the default subscriptions.
pub fn mirror_bodies(sources: &[DefaultSource]) -> HashMap<String, Vec<u8>> {
    sources
        .iter()
        .filter_map(|s| {
            let file = s.data.as_ref()?;
            let body = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            Some((mirror_path(&s.source.url), body))
        })
        .collect()
}

/// The installed configuration, changed only where a test must: listeners
/// on loopback (`dns_listen` and `management_listen` as given, port 0 for
/// any), state in `state`, the mirror, the curated lists found in this
/// checkout, and the school's band networks as loopback sources.
pub fn installed_config(state: &Path, mirror: &str, dns: &str, management: &str) -> String {
    let text = std::fs::read_to_string(format!("{REPO}/config/examples/school.toml")).unwrap();
    let text = text.replace("\"../../blocklists/", &format!("\"{REPO}/blocklists/"));
    let mut doc: toml_edit::DocumentMut = text.parse().unwrap();
    let path = |name: &str| state.join(name).display().to_string();
    let array =
        |items: &[&str]| toml_edit::value(items.iter().copied().collect::<toml_edit::Array>());
    doc["server"]["dns_listen"] = array(&[dns]);
    doc["server"]["http_listen"] = array(&[]);
    doc["server"]["management_listen"] = toml_edit::value(management);
    doc["upstream"]["timeout_ms"] = toml_edit::value(1000);
    doc["reload"]["watch_interval_secs"] = toml_edit::value(0);
    doc["stats"]["database"] = toml_edit::value(path("stats.sqlite"));
    doc["stats"]["key_dir"] = toml_edit::value(path("keys"));
    doc["stats"]["accepted_dir"] = toml_edit::value(path("accepted"));
    doc["lists"]["cache_dir"] = toml_edit::value(path("lists"));
    doc["lists"]["mirror"] = toml_edit::value(mirror);
    doc["warning_page"]["ca_dir"] = toml_edit::value(path("ca"));
    let school = &mut doc["school"][0];
    school["networks"] = array(&["127.0.0.0/24"]);
    school["bands"]["thcs"] = array(&[&format!("{THCS}/32")]);
    school["bands"]["thpt"] = array(&[&format!("{THPT}/32")]);
    school["bands"]["staff"] = array(&[&format!("{STAFF}/32")]);
    school["bands"]["guest"] = array(&[&format!("{GUEST}/32")]);
    doc.to_string()
}

/// The domains the curated lists of the installed configuration block.
pub fn curated_floor() -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("{REPO}/blocklists/curated")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        formats::parse(&text, ListFormat::Plain, &mut |e| {
            out.push(e.domain.to_string())
        });
    }
    out
}

/// `name` is `rule` or under it.
pub fn covered(name: &str, rule: &str) -> bool {
    name == rule
        || (name.len() > rule.len()
            && name.ends_with(rule)
            && name.as_bytes()[name.len() - rule.len() - 1] == b'.')
}
