//! The validated, typed configuration. Every reference is resolved to an
//! index; every address is parsed. Built only by [`super::validate`].

use crate::lists::formats::ListFormat;
use ipnet::IpNet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Where the lists named in the config are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListRoot {
    /// Relative list paths resolve against this directory (the config file's).
    Directory(PathBuf),
    /// The embedded default config: lists come from the binary.
    Embedded,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, for messages.
    pub path: PathBuf,
    pub list_root: ListRoot,
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub blocking: BlockingConfig,
    pub reload: ReloadConfig,
    pub categories: Vec<Category>,
    pub bands: Vec<Band>,
    pub schools: Vec<School>,
    /// Safe-search engine mapping file; `None` = the curated copy in the binary.
    pub safe_search_mapping: Option<PathBuf>,
    pub stats: StatsConfig,
    pub privacy: PrivacyConfig,
    pub warning_page: WarningPageConfig,
    pub lists: ListsConfig,
    pub takedown: TakedownConfig,
    /// The office's own deny/allow entries (every school, every band).
    pub office: OfficeConfig,
    pub admin: AdminConfig,
    pub encrypted_dns: EncryptedDnsConfig,
    /// Set when the policy tables come from the education office.
    pub central: Option<CentralConfig>,
    /// Set when the statistics go up to the education office.
    pub upload: Option<UploadConfig>,
}

/// `[central]` as validated; the token and cache paths are read by
/// [`super::central::central_ref`].
#[derive(Debug, Clone, PartialEq)]
pub struct CentralConfig {
    pub url: String,
    pub interval: Duration,
}

impl CentralConfig {
    /// How often the policy is asked for when `interval` is not set.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
    /// The shortest `interval` accepted.
    pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
}

/// `[upload]` as validated: each closed day's merge input goes to the
/// office (src/office/upload.rs), and a heartbeat every
/// `heartbeat_interval` (src/office/heartbeat.rs).
#[derive(Debug, Clone, PartialEq)]
pub struct UploadConfig {
    pub url: String,
    pub token_file: PathBuf,
    pub interval: Duration,
    /// The office's `POST /api/v1/heartbeat` (by default `url` with its
    /// last path segment `ingest` made `heartbeat`).
    pub heartbeat_url: String,
    pub heartbeat_interval: Duration,
}

impl UploadConfig {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
    pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3600);

    /// The heartbeat URL beside an ingest URL: its last path segment
    /// `ingest` (a trailing `/` aside) made `heartbeat`; `None` when the
    /// URL does not end so.
    pub fn heartbeat_beside(ingest_url: &str) -> Option<String> {
        let base = ingest_url.trim_end_matches('/').strip_suffix("/ingest")?;
        Some(format!("{base}/heartbeat"))
    }
}

/// `[office]`.
#[derive(Debug, Clone, Default)]
pub struct OfficeConfig {
    pub deny: Vec<ConfigRule>,
    pub allow: Vec<ConfigRule>,
}

/// `[admin]`.
#[derive(Debug, Clone, Default)]
pub struct AdminConfig {
    pub tokens_file: PathBuf,
    /// (certificate chain, private key), PEM.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub metrics_require_token: bool,
}

/// `[takedown]`.
#[derive(Debug, Clone, Default)]
pub struct TakedownConfig {
    pub url: Option<String>,
    pub refresh: Duration,
    pub push_token_sha256: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct WarningPageConfig {
    /// School CA directory (`ca.key`, `ca.crt`, `ca.name`).
    pub ca_dir: PathBuf,
    pub logo_text: Option<String>,
    pub contact: Option<String>,
    pub help_lines: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct StatsConfig {
    /// SQLite file of the durable statistics.
    pub database: PathBuf,
    pub flush_interval: Duration,
    pub retention_days: u32,
    /// Where `edudns keys init` puts the schools' signing keys.
    pub key_dir: PathBuf,
    /// `<school>.txt` allow lists written when a review request is accepted.
    pub accepted_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct PrivacyConfig {
    /// Cells below this are hidden in reports.
    pub k_anonymity: u64,
    /// Days the incident log (client addresses of blocked queries) is kept;
    /// 0 = off (the default): no client address is stored at all.
    pub incident_log_days: u32,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub dns_listen: Vec<SocketAddr>,
    /// Sinkhole web listener (warning page).
    pub http_listen: Vec<SocketAddr>,
    /// Sinkhole HTTPS: TLS handshakes refused at once (fast failure).
    pub https_listen: Vec<SocketAddr>,
    /// Management listener (metrics, API).
    pub management_listen: SocketAddr,
    pub max_in_flight: usize,
    pub tcp_max_connections: usize,
    pub tcp_idle_timeout: Duration,
    pub outside_clients: OutsideClients,
    /// UDP fast path (`dns/fast.rs`) on.
    pub fast_path: bool,
    /// UDP sockets (and reader tasks) per listen address.
    pub udp_workers: usize,
}

/// `[encrypted_dns]` as validated. With no listener the rest is unused.
#[derive(Debug, Clone)]
pub struct EncryptedDnsConfig {
    /// DNS over TLS (RFC 7858).
    pub dot_listen: Vec<SocketAddr>,
    /// DNS over HTTPS (RFC 8484), HTTP/2 and HTTP/1.1.
    pub doh_listen: Vec<SocketAddr>,
    /// PEM files; set whenever a listener is.
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    /// Lowercase, no trailing dot: DoT server names `<token>.<domain>`.
    pub token_domain: Option<String>,
    pub tokens_file: PathBuf,
    pub limits: EncryptedLimits,
}

/// What one encrypted-DNS client may hold (docs/reliability.md).
#[derive(Debug, Clone, Copy)]
pub struct EncryptedLimits {
    /// A TLS handshake must finish within this.
    pub handshake_timeout: Duration,
    /// A connection with no complete query (DoT) or request (DoH) for this
    /// long is closed.
    pub idle_timeout: Duration,
    /// Encrypted connections open at once, all clients.
    pub max_connections: usize,
    /// Per client address.
    pub max_connections_per_client: usize,
    /// TLS handshakes in progress per client address.
    pub max_handshakes_per_client: usize,
    /// Concurrent HTTP/2 streams (and DoT queries in flight) per connection.
    pub max_streams_per_connection: usize,
    /// Largest DoH POST body accepted.
    pub max_body_bytes: usize,
}

/// What to do with a query from an address outside every school network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutsideClients {
    /// Answer REFUSED (the default: tells a misconfigured client at once).
    Refuse,
    /// Send nothing back (quietest under a reflection attack).
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// UDP, retried over TCP when the answer is truncated.
    Udp,
    Tcp,
}

/// One entry of `upstream.servers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamServer {
    /// `IP[:port]`: plain DNS over our own UDP sockets (TCP for truncated
    /// replies, or everything with `protocol = "tcp"`).
    Plain(SocketAddr),
    /// `tls://host[:port][#name]`: DNS over TLS (RFC 7858).
    Tls(EncryptedServer),
    /// `https://host[:port]/path[#name]`: DNS over HTTPS (RFC 8484, HTTP/2).
    Https(EncryptedServer),
}

/// Where an encrypted upstream is and the name its certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedServer {
    /// An IP address, or a host name looked up through the system's
    /// resolver each time a connection is opened.
    pub host: String,
    pub port: u16,
    /// The name (or IP address) the certificate is checked against: the
    /// part after `#`, else `host`.
    pub tls_name: String,
    /// The DoH path (`/dns-query`); empty for DoT.
    pub path: String,
}

impl std::str::FromStr for UpstreamServer {
    type Err = String;

    /// Parses one `upstream.servers` entry; the error says what to write.
    fn from_str(text: &str) -> Result<UpstreamServer, String> {
        let text = text.trim();
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => {
                return parse_socket_addr(text, 53)
                    .map(UpstreamServer::Plain)
                    .ok_or_else(|| {
                        format!(
                            "{text:?} is not an upstream: write IP or IP:port (plain DNS), \
                             tls://IP:853#name (DNS over TLS) or https://host/dns-query (DNS over HTTPS)"
                        )
                    });
            }
        };
        let (rest, fragment) = match rest.split_once('#') {
            Some((rest, name)) => (rest, Some(name)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let default_port = match scheme.as_str() {
            "tls" => 853,
            "https" => 443,
            other => {
                return Err(format!(
                    "{text:?}: unknown scheme {other:?}: expected tls:// (DNS over TLS) or https:// (DNS over HTTPS)"
                ));
            }
        };
        let (host, port) = split_host_port(authority, default_port)
            .ok_or_else(|| format!("{text:?}: {authority:?} is not host or host:port"))?;
        let tls_name = match fragment {
            Some("") => {
                return Err(format!(
                    "{text:?}: nothing after '#' (the certificate's name)"
                ));
            }
            Some(name) => name.to_string(),
            None => host.clone(),
        };
        let server = EncryptedServer {
            host,
            port,
            tls_name,
            path: path.to_string(),
        };
        match scheme.as_str() {
            "tls" if !path.is_empty() => Err(format!(
                "{text:?}: DNS over TLS has no path: write tls://IP:853#name"
            )),
            "tls" => Ok(UpstreamServer::Tls(server)),
            _ if path.len() < 2 => Err(format!(
                "{text:?}: DNS over HTTPS needs the path, e.g. https://{authority}/dns-query"
            )),
            _ => Ok(UpstreamServer::Https(server)),
        }
    }
}

impl UpstreamServer {
    /// Whether questions to this server travel encrypted.
    pub fn is_encrypted(&self) -> bool {
        !matches!(self, UpstreamServer::Plain(_))
    }
}

/// `IP`, `IP:port`, `[v6]:port` or bare `v6`.
pub fn parse_socket_addr(text: &str, default_port: u16) -> Option<SocketAddr> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    text.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, default_port))
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`; a host is an IP address or a
/// DNS name.
fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (host, after) = inner.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().ok()?),
            None => (authority, default_port),
        }
    };
    let name_like = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    (port != 0 && !host.is_empty() && (name_like || host.parse::<std::net::IpAddr>().is_ok()))
        .then(|| (host.to_ascii_lowercase(), port))
}

impl std::fmt::Display for UpstreamServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (scheme, server) = match self {
            UpstreamServer::Plain(addr) => return write!(f, "{addr}"),
            UpstreamServer::Tls(server) => ("tls", server),
            UpstreamServer::Https(server) => ("https", server),
        };
        let host = if server.host.contains(':') {
            format!("[{}]", server.host)
        } else {
            server.host.clone()
        };
        write!(f, "{scheme}://{host}:{}{}", server.port, server.path)?;
        if server.tls_name != server.host {
            write!(f, "#{}", server.tls_name)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub servers: Vec<UpstreamServer>,
    /// Extra roots (PEM) an encrypted upstream's certificate may chain to,
    /// besides the system's.
    pub tls_ca_file: Option<PathBuf>,
    pub protocol: UpstreamProtocol,
    pub timeout: Duration,
    pub cache_size: usize,
    /// 0x20 (draft-vixie-dnsext-dns0x20): questions go out with random
    /// letter case and a reply must echo it, else it is treated as forged
    /// and the question is asked again over TCP.
    pub case_randomization: bool,
    /// Upstream lookups one client network (IPv4 /24, IPv6 /56) may have
    /// in flight, and as many waiting; 0 = no share.
    pub max_lookups_per_client: usize,
}

/// How a blocked A/AAAA question is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockMode {
    /// A → sinkhole IPv4, AAAA → sinkhole IPv6 (NODATA when unset).
    Sinkhole,
    /// A → 0.0.0.0, AAAA → ::.
    Null,
    /// NXDOMAIN for every type.
    NxDomain,
}

#[derive(Debug, Clone)]
pub struct BlockingConfig {
    pub mode: BlockMode,
    pub sinkhole_ipv4: Option<Ipv4Addr>,
    pub sinkhole_ipv6: Option<Ipv6Addr>,
    pub ttl: u32,
    pub block_doh_canary: bool,
}

#[derive(Debug, Clone)]
pub struct ReloadConfig {
    /// How often config and list files are checked for changes; `None` = off.
    pub watch_interval: Option<Duration>,
}

/// Where a value came from in the config file, for `explain` and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPlace {
    pub key: String,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct ListSpec {
    /// As written in the config (shown to users).
    pub display: String,
    /// Resolved path (for `ListRoot::Directory`) or the embedded key; for a
    /// subscription, its file in the download cache.
    pub path: PathBuf,
    pub format: ListFormat,
    pub place: ConfigPlace,
    /// Set for a subscribed list (downloaded into `path`).
    pub download: Option<Download>,
}

/// A list edudns downloads and refreshes itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    /// File name in the cache (the catalogue name, or `name`).
    pub name: String,
    pub url: String,
    /// Optional pin: the download must have this SHA-256 (hex).
    pub sha256: Option<String>,
    pub refresh: Duration,
}

/// `[lists]`.
#[derive(Debug, Clone)]
pub struct ListsConfig {
    pub cache_dir: PathBuf,
    pub max_bytes: u64,
    pub timeout: Duration,
    pub max_shrink: f64,
    pub max_skipped: f64,
    /// `[lists] mirror`: base URL that replaces the scheme of every
    /// subscription URL (`https://host/path` → `<mirror>/host/path`).
    pub mirror: Option<String>,
    /// The names no subscribed list may block.
    pub protected: std::sync::Arc<crate::lists::protected::ProtectedNames>,
    /// Subscriptions downloaded at once.
    pub parallel_downloads: usize,
}

impl ListsConfig {
    /// Where a subscription is actually fetched from: its own URL, or the
    /// same host and path under the configured mirror.
    pub fn fetch_url(&self, url: &str) -> String {
        match &self.mirror {
            None => url.to_string(),
            Some(mirror) => {
                let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
                format!("{}/{}", mirror.trim_end_matches('/'), rest)
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Category {
    pub id: String,
    /// Plain words for people, e.g. "Cờ bạc / Gambling".
    pub name: String,
    pub lists: Vec<ListSpec>,
}

/// A domain in an allow or deny list of the config.
#[derive(Debug, Clone)]
pub struct ConfigRule {
    pub domain: String,
    pub place: ConfigPlace,
}

#[derive(Debug, Clone)]
pub struct Band {
    pub id: String,
    pub name: String,
    /// Indices into `Config::categories`.
    pub blocked: Vec<usize>,
    pub deny: Vec<ConfigRule>,
    pub allow: Vec<ConfigRule>,
    /// Safe search forced on engines with `switch = "safe_search"`.
    pub safe_search: bool,
    pub youtube: YouTubeMode,
    /// DDR discovery and iCloud Private Relay answered so devices stay on this resolver.
    pub bypass_prevention: bool,
    /// Categories blocked only in weekly windows.
    pub schedules: Vec<Schedule>,
    /// Per-client query rate limit (queries per second); 0 = none.
    pub max_qps_per_client: u32,
}

/// YouTube restricted mode for a band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YouTubeMode {
    Off,
    Moderate,
    Strict,
}

/// A category blocked on some days in some windows (school's local time).
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Index into `Config::categories`.
    pub category: usize,
    /// Bit 0 = Monday … bit 6 = Sunday.
    pub days: u8,
    /// Minutes since local midnight, `[start, end)`.
    pub windows: Vec<(u16, u16)>,
    /// As written, for `explain` ("mon-sat 07:00-11:30, 13:30-17:00").
    pub text: String,
    pub place: ConfigPlace,
}

/// Dates (inclusive) on which scheduled blocks are off.
#[derive(Debug, Clone)]
pub struct Holiday {
    pub from: jiff::civil::Date,
    pub to: jiff::civil::Date,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct School {
    pub id: String,
    pub name: String,
    /// Networks of the whole campus (clients not in a band network get `unknown_band`).
    pub networks: Vec<IpNet>,
    /// (network, index into `Config::bands`).
    pub band_networks: Vec<(IpNet, usize)>,
    pub unknown_band: usize,
    pub deny: Vec<ConfigRule>,
    pub allow: Vec<ConfigRule>,
    pub timezone: jiff::tz::TimeZone,
    pub timezone_name: String,
    pub holidays: Vec<Holiday>,
}

impl Config {
    pub fn category_index(&self, id: &str) -> Option<usize> {
        self.categories.iter().position(|c| c.id == id)
    }

    /// The allow list that accepted review requests of `school` go to.
    pub fn accepted_allow_file(&self, school: &str) -> PathBuf {
        self.stats.accepted_dir.join(format!("{school}.txt"))
    }

    /// Every subscribed list (each once).
    pub fn downloads(&self) -> Vec<(&Category, &ListSpec, &Download)> {
        let mut out: Vec<(&Category, &ListSpec, &Download)> = Vec::new();
        for category in &self.categories {
            for spec in &category.lists {
                if let Some(d) = &spec.download
                    && !out.iter().any(|(_, _, o)| o.name == d.name)
                {
                    out.push((category, spec, d));
                }
            }
        }
        out
    }

    /// Every file whose change should trigger a reload.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if self.list_root != ListRoot::Embedded {
            files.push(self.path.clone());
            for category in &self.categories {
                files.extend(category.lists.iter().map(|l| l.path.clone()));
            }
            files.extend(self.safe_search_mapping.iter().cloned());
            files.extend(self.schools.iter().map(|s| self.accepted_allow_file(&s.id)));
        }
        files
    }
}
