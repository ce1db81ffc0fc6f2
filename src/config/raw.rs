//! Serde structs that mirror the TOML file one to one.
//!
//! Nothing here is checked beyond TOML types: `validate/` turns these into a
//! typed [`crate::config::Config`]. Every struct denies unknown fields so a
//! typo (`upstreem = …`) is an error instead of a silently ignored key.
//! Values whose meaning is checked later are wrapped in [`Spanned`] so the
//! validation errors can name the line they came from.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// The whole configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub upstream: RawUpstream,
    #[serde(default)]
    pub blocking: RawBlocking,
    #[serde(default)]
    pub reload: RawReload,
    #[serde(default, rename = "category")]
    pub categories: Vec<RawCategory>,
    #[serde(default, rename = "band")]
    pub bands: Vec<RawBand>,
    #[serde(default, rename = "school")]
    pub schools: Vec<RawSchool>,
    #[serde(default)]
    pub safe_search: RawSafeSearch,
    #[serde(default)]
    pub stats: RawStats,
    #[serde(default)]
    pub privacy: RawPrivacy,
    #[serde(default)]
    pub warning_page: RawWarningPage,
    #[serde(default)]
    pub lists: RawLists,
    #[serde(default)]
    pub takedown: RawTakedown,
    #[serde(default)]
    pub office: RawOffice,
    #[serde(default)]
    pub admin: RawAdmin,
    #[serde(default)]
    pub encrypted_dns: RawEncryptedDns,
    /// `[central]`: policy tables pulled from the education office.
    pub central: Option<RawCentral>,
    pub upload: Option<RawUpload>,
}

/// `[central]`: where this node pulls its policy (`[office]`, `[[category]]`,
/// `[[band]]`, `[[school]]`) from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCentral {
    pub url: Spanned<String>,
    /// A file holding a bearer token (role `office` or `auditor`).
    pub token_file: Option<Spanned<String>>,
    /// How often to ask (default 5m).
    pub interval: Option<Spanned<String>>,
    /// The last good copy (default: `central-policy.toml` beside the database).
    pub cache_file: Option<Spanned<String>>,
}

/// `[upload]`: where the node sends each closed day's statistics.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpload {
    /// The office's `POST /api/v1/ingest`.
    pub url: Spanned<String>,
    /// A file holding the school's bearer token (role `school:<id>`).
    pub token_file: Spanned<String>,
    /// How often pending days are tried (default 1m); failures back off.
    pub interval: Option<Spanned<String>>,
    /// The office's `POST /api/v1/heartbeat` (default: beside `url`).
    pub heartbeat_url: Option<Spanned<String>>,
    /// How often the heartbeat goes (default 1h).
    pub heartbeat_interval: Option<Spanned<String>>,
}

/// `[office]`: the education office's own entries, for every school and band.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOffice {
    #[serde(default)]
    pub deny: Vec<Spanned<String>>,
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
}

/// `[admin]`: the policy administration API and console.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Hashed API tokens (`edudns tokens create`); default next to the database.
    pub tokens_file: Option<Spanned<String>>,
    /// PEM certificate chain and key: the management listener speaks HTTPS.
    pub tls_cert: Option<Spanned<String>>,
    pub tls_key: Option<Spanned<String>>,
    /// `/metrics` needs a token too (default false: Prometheus on loopback).
    pub metrics_require_token: Option<bool>,
}

/// `[encrypted_dns]`: DNS over TLS and DNS over HTTPS listeners, their
/// certificate, the band tokens and the limits on clients.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEncryptedDns {
    pub dot_listen: Option<Vec<Spanned<String>>>,
    pub doh_listen: Option<Vec<Spanned<String>>>,
    /// PEM certificate chain and private key (re-read on SIGHUP).
    pub certificate: Option<Spanned<String>>,
    pub private_key: Option<Spanned<String>>,
    /// DoT server names `<band-token>.<token_domain>` name a band.
    pub token_domain: Option<Spanned<String>>,
    /// Hashed band tokens (`edudns tokens create --role band:<school>/<band>`).
    pub tokens_file: Option<Spanned<String>>,
    pub handshake_timeout_ms: Option<Spanned<i64>>,
    pub idle_timeout_secs: Option<Spanned<i64>>,
    pub max_connections: Option<Spanned<i64>>,
    pub max_connections_per_client: Option<Spanned<i64>>,
    pub max_handshakes_per_client: Option<Spanned<i64>>,
    pub max_streams_per_connection: Option<Spanned<i64>>,
    pub max_body_bytes: Option<Spanned<i64>>,
}

/// `[takedown]`: the authorities' urgent list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTakedown {
    pub url: Option<Spanned<String>>,
    pub refresh: Option<Spanned<String>>,
    /// SHA-256 (hex) of the bearer token allowed to push entries.
    pub push_token_sha256: Option<Spanned<String>>,
}

/// `[lists]`: how subscribed lists are downloaded and checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLists {
    pub cache_dir: Option<Spanned<String>>,
    pub max_bytes: Option<Spanned<i64>>,
    pub timeout_secs: Option<Spanned<i64>>,
    /// Largest accepted shrink of a list between two downloads (0.5 = 50 %).
    pub max_shrink: Option<Spanned<f64>>,
    /// Largest share of unparseable lines before a download is rejected.
    pub max_skipped: Option<Spanned<f64>>,
    /// A mirror of the public lists (a district's, or a test's on loopback):
    /// `https://host/path` is fetched as `<mirror>/host/path`.
    pub mirror: Option<Spanned<String>>,
    /// The protected names (never blocked by a subscribed list); default:
    /// the set shipped in `blocklists/protected.txt`, compiled in.
    pub protected: Option<Spanned<String>>,
    /// Subscriptions downloaded at once (default 4).
    pub parallel_downloads: Option<Spanned<i64>>,
}

/// `[warning_page]`: what the page shown for blocked sites says besides the reason.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWarningPage {
    /// Short text shown as the school's mark at the top (no images are loaded).
    pub logo_text: Option<String>,
    /// Who to ask at school, e.g. "Thầy Nam, phòng Tin học, 0901 234 567".
    pub contact: Option<String>,
    /// Extra help lines shown under the national hotline 111.
    #[serde(default)]
    pub help_lines: Vec<String>,
    /// Directory of the school CA (`edudns ca init`); HTTPS mints
    /// certificates with it when it exists.
    pub ca_dir: Option<Spanned<String>>,
}

/// `[stats]`: durable statistics and report signing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStats {
    pub database: Option<Spanned<String>>,
    pub flush_interval_secs: Option<Spanned<i64>>,
    pub retention_days: Option<Spanned<i64>>,
    pub key_dir: Option<Spanned<String>>,
    /// Directory of the allow lists made by accepted review requests.
    pub accepted_dir: Option<Spanned<String>>,
}

/// `[privacy]`: what may leave the school and what may be kept.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrivacy {
    pub k_anonymity: Option<Spanned<i64>>,
    pub incident_log_days: Option<Spanned<i64>>,
}

/// `[safe_search]`: where the engine mapping comes from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSafeSearch {
    /// Path of the mapping file; the curated `blocklists/safe-search.toml`
    /// compiled into the binary when unset.
    pub mapping: Option<Spanned<String>>,
}

/// `[[band.schedule]]`: a category blocked only in weekly windows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub category: Spanned<String>,
    /// e.g. `["mon", "tue"]` or `["mon-sat"]`; default every day.
    #[serde(default)]
    pub days: Vec<Spanned<String>>,
    /// e.g. `["07:00-11:30", "13:30-17:00"]`.
    pub windows: Vec<Spanned<String>>,
}

/// One entry of `holidays`: an inclusive date range.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHoliday {
    pub from: Spanned<String>,
    pub to: Option<Spanned<String>>,
    pub name: Option<String>,
}

/// `[server]`: listeners and the defences of a public-facing resolver.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub dns_listen: Option<Vec<Spanned<String>>>,
    pub http_listen: Option<Vec<Spanned<String>>>,
    pub https_listen: Option<Vec<Spanned<String>>>,
    pub management_listen: Option<Spanned<String>>,
    pub max_in_flight: Option<Spanned<i64>>,
    pub tcp_max_connections: Option<Spanned<i64>>,
    pub tcp_idle_timeout_secs: Option<Spanned<i64>>,
    pub outside_clients: Option<Spanned<String>>,
    /// Answer plain UDP queries for blocked and cached names from wire bytes.
    pub fast_path: Option<bool>,
    /// UDP sockets per listen address (SO_REUSEPORT); default one per core.
    pub udp_workers: Option<Spanned<i64>>,
}

/// `[upstream]`: where allowed names are forwarded.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub servers: Option<Vec<Spanned<String>>>,
    pub protocol: Option<Spanned<String>>,
    pub tls_name: Option<Spanned<String>>,
    pub tls_ca_file: Option<Spanned<String>>,
    pub timeout_ms: Option<Spanned<i64>>,
    pub cache_size: Option<Spanned<i64>>,
    /// 0x20: random letter case in upstream questions (default true).
    pub case_randomization: Option<bool>,
    pub max_lookups_per_client: Option<Spanned<i64>>,
}

/// `[blocking]`: how blocked names are answered.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBlocking {
    pub mode: Option<Spanned<String>>,
    pub sinkhole_ipv4: Option<Spanned<String>>,
    pub sinkhole_ipv6: Option<Spanned<String>>,
    pub ttl: Option<Spanned<i64>>,
    pub block_doh_canary: Option<bool>,
}

/// `[reload]`: file watching.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReload {
    pub watch_interval_secs: Option<Spanned<i64>>,
}

/// `[[category]]`: a named set of list files.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCategory {
    pub id: Spanned<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub lists: Vec<Spanned<RawListRef>>,
}

/// One list of a category: a bare path, or a table with an explicit format.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawListRef {
    Path(String),
    Table(RawListTable),
}

/// `{ path = "…", format = "hosts" }`, or a subscription:
/// `{ source = "hostsvn-gambling" }` (from the catalogue) or
/// `{ url = "https://…", name = "…", format = "…", sha256 = "…", refresh = "1d" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListTable {
    pub path: Option<String>,
    pub source: Option<String>,
    pub url: Option<String>,
    pub name: Option<String>,
    pub format: Option<String>,
    pub sha256: Option<String>,
    pub refresh: Option<String>,
}

/// `[[band]]`: a grade band and its policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBand {
    pub id: Spanned<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub block: Vec<Spanned<String>>,
    #[serde(default)]
    pub deny: Vec<Spanned<String>>,
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    /// Force safe search on Google, Bing, DuckDuckGo (engines with `switch = "safe_search"`).
    pub safe_search: Option<bool>,
    /// YouTube restricted mode: "off", "moderate" or "strict".
    pub youtube: Option<Spanned<String>>,
    /// DDR, iCloud Private Relay and the like (default on).
    pub bypass_prevention: Option<bool>,
    /// Queries per second one client address may send (0 or unset = no limit).
    pub max_qps_per_client: Option<Spanned<i64>>,
    #[serde(default)]
    pub schedule: Vec<RawSchedule>,
}

/// `[[school]]`: a school, its networks and which band each network is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchool {
    pub id: Spanned<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub networks: Vec<Spanned<String>>,
    /// band id → networks of that band.
    #[serde(default)]
    pub bands: BTreeMap<String, Vec<Spanned<String>>>,
    pub unknown_band: Option<Spanned<String>>,
    #[serde(default)]
    pub deny: Vec<Spanned<String>>,
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    /// IANA time zone of the school (default Asia/Ho_Chi_Minh).
    pub timezone: Option<Spanned<String>>,
    /// Days when scheduled blocks are off (holidays, between terms).
    #[serde(default)]
    pub holidays: Vec<RawHoliday>,
}
