//! Raw TOML → typed [`Config`], collecting every problem with key and line.

use super::error::{ConfigError, ConfigIssue, LineIndex};
use super::raw::*;
use super::types::*;
use crate::lists::MAX_CATEGORIES;
use crate::lists::formats::ListFormat;
use crate::lists::name::normalize;
use ipnet::IpNet;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

/// Default cap on queries being answered at once (Unbound's default).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 2048;
pub const DEFAULT_TCP_MAX_CONNECTIONS: usize = 512;
pub const DEFAULT_TCP_IDLE_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_BLOCK_TTL: u32 = 60;
/// Upper bound of the blocked-answer TTL, so an unblock reaches students quickly.
pub const MAX_BLOCK_TTL: u32 = 300;
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 2000;
pub const DEFAULT_CACHE_SIZE: usize = 10_000;
pub const DEFAULT_WATCH_INTERVAL_SECS: u64 = 5;
pub const DEFAULT_MANAGEMENT_LISTEN: &str = "127.0.0.1:9153";
pub const DEFAULT_FLUSH_SECS: u64 = 60;
pub const DEFAULT_RETENTION_DAYS: u64 = 400;
pub const DEFAULT_K_ANONYMITY: u64 = 10;
/// Longest an incident log (client addresses) may be kept.
pub const MAX_INCIDENT_LOG_DAYS: u32 = 30;

/// Parses and validates configuration text. `path` is only used in messages
/// and to resolve relative list paths (through `list_root`).
pub fn parse(text: &str, path: &Path, list_root: ListRoot) -> Result<Config, ConfigError> {
    let lines = LineIndex::new(text);
    let raw: RawConfig = match toml::Deserializer::parse(text) {
        Ok(deserializer) => match serde_path_to_error::deserialize(deserializer) {
            Ok(raw) => raw,
            Err(error) => {
                let key = error.path().to_string();
                let inner = error.into_inner();
                return Err(invalid(path, vec![toml_issue(&lines, key, &inner)]));
            }
        },
        Err(error) => {
            return Err(invalid(
                path,
                vec![toml_issue(&lines, String::new(), &error)],
            ));
        }
    };
    let mut checker = Checker {
        lines,
        issues: Vec::new(),
    };
    let config = checker.config(raw, path, list_root);
    if checker.issues.is_empty() {
        Ok(config)
    } else {
        Err(invalid(path, checker.issues))
    }
}

fn invalid(path: &Path, issues: Vec<ConfigIssue>) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_path_buf(),
        issues,
    }
}

fn toml_issue(lines: &LineIndex, key: String, error: &toml::de::Error) -> ConfigIssue {
    let line = error.span().map(|s| lines.line_of(s.start)).unwrap_or(0);
    // The toml message repeats the source excerpt; keep only the explanation.
    let message = error.message().trim().to_string();
    let key = if key == "." { String::new() } else { key };
    ConfigIssue { key, line, message }
}

struct Checker {
    lines: LineIndex,
    issues: Vec<ConfigIssue>,
}

impl Checker {
    fn place<T>(&self, key: impl Into<String>, value: &Spanned<T>) -> ConfigPlace {
        ConfigPlace {
            key: key.into(),
            line: self.lines.line_of(value.span().start),
        }
    }

    fn error<T>(&mut self, key: impl Into<String>, value: &Spanned<T>, message: impl Into<String>) {
        let place = self.place(key, value);
        self.issues.push(ConfigIssue {
            key: place.key,
            line: place.line,
            message: message.into(),
        });
    }

    /// `[lists] protected`: the shipped set, or a file (relative to the
    /// config's directory) whose every bad line is an error of this key.
    fn protected_names(
        &mut self,
        root: &ListRoot,
        value: &Option<Spanned<String>>,
    ) -> crate::lists::protected::ProtectedNames {
        use crate::lists::protected::ProtectedNames;
        let Some(value) = value else {
            return ProtectedNames::embedded();
        };
        let path = match root {
            ListRoot::Directory(dir) => dir.join(value.get_ref()),
            ListRoot::Embedded => value.get_ref().into(),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                self.error(
                    "lists.protected",
                    value,
                    format!("cannot read {}: {e}", path.display()),
                );
                return ProtectedNames::embedded();
            }
        };
        match ProtectedNames::parse(&text, &path.display().to_string()) {
            Ok(set) => set,
            Err(errors) => {
                for error in errors {
                    self.error(
                        "lists.protected",
                        value,
                        format!("{}: {error}", path.display()),
                    );
                }
                ProtectedNames::embedded()
            }
        }
    }

    fn error_no_line(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.issues.push(ConfigIssue {
            key: key.into(),
            line: 0,
            message: message.into(),
        });
    }

    fn config(&mut self, raw: RawConfig, path: &Path, list_root: ListRoot) -> Config {
        let server = self.server(raw.server);
        let upstream = self.upstream(raw.upstream);
        let blocking = self.blocking(raw.blocking);
        let reload = ReloadConfig {
            watch_interval: match raw.reload.watch_interval_secs {
                None => Some(Duration::from_secs(DEFAULT_WATCH_INTERVAL_SECS)),
                Some(v) => match self.non_negative("reload.watch_interval_secs", &v) {
                    0 => None,
                    secs => Some(Duration::from_secs(secs)),
                },
            },
        };
        let cache_dir = match (&list_root, &raw.lists.cache_dir) {
            (ListRoot::Directory(dir), Some(v)) => dir.join(v.get_ref()),
            (ListRoot::Directory(dir), None) => dir.join("list-cache"),
            (ListRoot::Embedded, Some(v)) => v.get_ref().into(),
            (ListRoot::Embedded, None) => std::env::temp_dir().join("edudns-demo-list-cache"),
        };
        let fraction =
            |checker: &mut Self, key: &str, value: &Option<Spanned<f64>>, default: f64| match value
            {
                None => default,
                Some(v) if (0.0..=1.0).contains(v.get_ref()) => *v.get_ref(),
                Some(v) => {
                    checker.error(key, v, "must be between 0 and 1");
                    default
                }
            };
        let lists = ListsConfig {
            cache_dir: cache_dir.clone(),
            max_bytes: self.positive_or("lists.max_bytes", raw.lists.max_bytes, 64 << 20),
            timeout: Duration::from_secs(self.positive_or(
                "lists.timeout_secs",
                raw.lists.timeout_secs,
                30,
            )),
            max_shrink: fraction(self, "lists.max_shrink", &raw.lists.max_shrink, 0.5),
            max_skipped: fraction(self, "lists.max_skipped", &raw.lists.max_skipped, 0.2),
            mirror: raw.lists.mirror.as_ref().and_then(|m| {
                let text = m.get_ref().trim();
                if text.starts_with("https://") || text.starts_with("http://") {
                    Some(text.to_string())
                } else {
                    self.error("lists.mirror", m, "must be an http:// or https:// URL");
                    None
                }
            }),
            protected: std::sync::Arc::new(self.protected_names(&list_root, &raw.lists.protected)),
            parallel_downloads: self.positive_or(
                "lists.parallel_downloads",
                raw.lists.parallel_downloads,
                4,
            ) as usize,
        };
        let categories = self.categories(raw.categories, &list_root, &cache_dir);
        let takedown = TakedownConfig {
            url: raw.takedown.url.as_ref().and_then(|u| {
                let text = u.get_ref().trim();
                if text.starts_with("https://") || text.starts_with("http://") {
                    Some(text.to_string())
                } else {
                    self.error("takedown.url", u, "must be an http:// or https:// URL");
                    None
                }
            }),
            refresh: match &raw.takedown.refresh {
                None => Duration::from_secs(300),
                Some(v) => {
                    crate::lists::catalogue::parse_interval(v.get_ref()).unwrap_or_else(|| {
                        self.error("takedown.refresh", v, "not an interval like 30s, 5m, 1h");
                        Duration::from_secs(300)
                    })
                }
            },
            push_token_sha256: raw.takedown.push_token_sha256.as_ref().and_then(|t| {
                let hex = t.get_ref().trim().to_ascii_lowercase();
                if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Some(hex)
                } else {
                    self.error(
                        "takedown.push_token_sha256",
                        t,
                        "must be the 64-hex-digit SHA-256 of the token",
                    );
                    None
                }
            }),
        };
        let bands = self.bands(raw.bands, &categories);
        let schools = self.schools(raw.schools, &bands);
        let safe_search_mapping = raw.safe_search.mapping.as_ref().map(|m| match &list_root {
            ListRoot::Directory(dir) => dir.join(m.get_ref()),
            ListRoot::Embedded => m.get_ref().into(),
        });
        let state_path = |value: &Option<Spanned<String>>, default: &str| match (&list_root, value)
        {
            (ListRoot::Directory(dir), Some(v)) => dir.join(v.get_ref()),
            (ListRoot::Directory(dir), None) => dir.join(default),
            (ListRoot::Embedded, Some(v)) => v.get_ref().into(),
            (ListRoot::Embedded, None) => {
                std::env::temp_dir().join(format!("edudns-demo-{default}"))
            }
        };
        if let Some(v) = &raw.stats.flush_interval_secs
            && *v.get_ref() > 60
        {
            self.error(
                "stats.flush_interval_secs",
                v,
                "at most 60 s: a crash may lose at most one interval of counts",
            );
        }
        let stats = StatsConfig {
            database: state_path(&raw.stats.database, "stats.sqlite"),
            key_dir: state_path(&raw.stats.key_dir, "keys"),
            accepted_dir: state_path(&raw.stats.accepted_dir, "accepted"),
            flush_interval: Duration::from_secs(self.positive_or(
                "stats.flush_interval_secs",
                raw.stats.flush_interval_secs,
                DEFAULT_FLUSH_SECS,
            )),
            retention_days: self.positive_or(
                "stats.retention_days",
                raw.stats.retention_days,
                DEFAULT_RETENTION_DAYS,
            ) as u32,
        };
        let incident_log_days = match &raw.privacy.incident_log_days {
            None => 0,
            Some(v) => {
                let days = self.non_negative("privacy.incident_log_days", v);
                if days > u64::from(MAX_INCIDENT_LOG_DAYS) {
                    self.error(
                        "privacy.incident_log_days",
                        v,
                        format!("at most {MAX_INCIDENT_LOG_DAYS} days: client addresses are personal data and may only be kept briefly"),
                    );
                }
                days.min(u64::from(MAX_INCIDENT_LOG_DAYS)) as u32
            }
        };
        let ca_dir = state_path(&raw.warning_page.ca_dir, "ca");
        let office = OfficeConfig {
            deny: self.rules("office.deny", &raw.office.deny),
            allow: self.rules("office.allow", &raw.office.allow),
        };
        let tokens_file = match &raw.admin.tokens_file {
            Some(_) => state_path(&raw.admin.tokens_file, "tokens.json"),
            None => stats
                .database
                .parent()
                .map(|d| d.join("tokens.json"))
                .unwrap_or_else(|| "tokens.json".into()),
        };
        let tls = match (&raw.admin.tls_cert, &raw.admin.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some((
                state_path(&Some(cert.clone()), ""),
                state_path(&Some(key.clone()), ""),
            )),
            (Some(v), None) | (None, Some(v)) => {
                self.error(
                    "admin.tls_cert",
                    v,
                    "set both admin.tls_cert and admin.tls_key (or neither)",
                );
                None
            }
        };
        let central = raw.central.as_ref().map(|raw_central| {
            let url = raw_central.url.get_ref().trim().to_string();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                self.error(
                    "central.url",
                    &raw_central.url,
                    "must be an http:// or https:// URL (the office's /api/v1/policy)",
                );
            }
            let interval = match &raw_central.interval {
                None => CentralConfig::DEFAULT_INTERVAL,
                Some(v) => match crate::lists::catalogue::parse_interval(v.get_ref()) {
                    Some(d) if d >= CentralConfig::MIN_INTERVAL => d,
                    _ => {
                        self.error(
                            "central.interval",
                            v,
                            "not an interval of at least 1s like 30s, 5m, 1h",
                        );
                        CentralConfig::DEFAULT_INTERVAL
                    }
                },
            };
            // Where the token and the cached copy are is read by
            // `central::central_ref` (before this validation can run, since
            // the policy is part of what it validates): one derivation.
            CentralConfig { url, interval }
        });
        let admin = AdminConfig {
            tokens_file,
            tls,
            metrics_require_token: raw.admin.metrics_require_token.unwrap_or(false),
        };
        let privacy = PrivacyConfig {
            k_anonymity: self.positive_or(
                "privacy.k_anonymity",
                raw.privacy.k_anonymity,
                DEFAULT_K_ANONYMITY,
            ),
            incident_log_days,
        };
        Config {
            path: path.to_path_buf(),
            list_root,
            server,
            upstream,
            blocking,
            reload,
            categories,
            bands,
            schools,
            safe_search_mapping,
            stats,
            privacy,
            lists,
            takedown,
            office,
            admin,
            central,
            warning_page: WarningPageConfig {
                ca_dir,
                logo_text: raw.warning_page.logo_text,
                contact: raw.warning_page.contact,
                help_lines: raw.warning_page.help_lines,
            },
        }
    }

    fn server(&mut self, raw: RawServer) -> ServerConfig {
        let dns_listen = match raw.dns_listen {
            Some(list) => self.socket_addrs("server.dns_listen", &list, 53),
            None => vec![SocketAddr::from(([0, 0, 0, 0], 53))],
        };
        let http_listen = match raw.http_listen {
            Some(list) => self.socket_addrs("server.http_listen", &list, 80),
            None => Vec::new(),
        };
        let https_listen = match raw.https_listen {
            Some(list) => self.socket_addrs("server.https_listen", &list, 443),
            None => Vec::new(),
        };
        let management_listen = match raw.management_listen {
            Some(v) => self
                .socket_addr("server.management_listen", &v, 9153)
                .unwrap_or_else(default_management),
            None => default_management(),
        };
        let max_in_flight = self.positive_or(
            "server.max_in_flight",
            raw.max_in_flight,
            DEFAULT_MAX_IN_FLIGHT as u64,
        ) as usize;
        let tcp_max_connections = self.positive_or(
            "server.tcp_max_connections",
            raw.tcp_max_connections,
            DEFAULT_TCP_MAX_CONNECTIONS as u64,
        ) as usize;
        let tcp_idle_timeout = Duration::from_secs(self.positive_or(
            "server.tcp_idle_timeout_secs",
            raw.tcp_idle_timeout_secs,
            DEFAULT_TCP_IDLE_TIMEOUT_SECS,
        ));
        let outside_clients = match &raw.outside_clients {
            None => OutsideClients::Refuse,
            Some(v) => match v.get_ref().as_str() {
                "refuse" => OutsideClients::Refuse,
                "drop" => OutsideClients::Drop,
                other => {
                    self.error(
                        "server.outside_clients",
                        v,
                        format!("unknown value {other:?}: expected \"refuse\" or \"drop\""),
                    );
                    OutsideClients::Refuse
                }
            },
        };
        ServerConfig {
            dns_listen,
            http_listen,
            https_listen,
            management_listen,
            max_in_flight,
            tcp_max_connections,
            tcp_idle_timeout,
            outside_clients,
            fast_path: raw.fast_path.unwrap_or(true),
            udp_workers: match raw.udp_workers {
                None => default_udp_workers(),
                Some(v) => match *v.get_ref() {
                    n @ 1..=64 => n as usize,
                    _ => {
                        self.error("server.udp_workers", &v, "must be 1 to 64");
                        1
                    }
                },
            },
        }
    }

    fn upstream(&mut self, raw: RawUpstream) -> UpstreamConfig {
        let servers = match &raw.servers {
            Some(list) => self.socket_addrs("upstream.servers", list, 53),
            None => {
                self.error_no_line(
                    "upstream.servers",
                    "missing: list at least one upstream DNS server, e.g. servers = [\"192.0.2.1\"]",
                );
                Vec::new()
            }
        };
        if let Some(list) = &raw.servers
            && list.is_empty()
        {
            self.error_no_line(
                "upstream.servers",
                "is empty: list at least one upstream DNS server",
            );
        }
        let protocol = match &raw.protocol {
            None => UpstreamProtocol::Udp,
            Some(v) => match v.get_ref().as_str() {
                "udp" => UpstreamProtocol::Udp,
                "tcp" => UpstreamProtocol::Tcp,
                other => {
                    self.error(
                        "upstream.protocol",
                        v,
                        format!("unknown protocol {other:?}: expected \"udp\" or \"tcp\""),
                    );
                    UpstreamProtocol::Udp
                }
            },
        };
        if let Some(v) = &raw.tls_name {
            self.error(
                "upstream.tls_name",
                v,
                "DNS-over-TLS upstreams are not supported by this build",
            );
        }
        UpstreamConfig {
            servers,
            protocol,
            timeout: Duration::from_millis(self.positive_or(
                "upstream.timeout_ms",
                raw.timeout_ms,
                DEFAULT_UPSTREAM_TIMEOUT_MS,
            )),
            cache_size: self.non_negative_or(
                "upstream.cache_size",
                raw.cache_size,
                DEFAULT_CACHE_SIZE as u64,
            ) as usize,
            case_randomization: raw.case_randomization.unwrap_or(true),
            max_lookups_per_client: self.non_negative_or(
                "upstream.max_lookups_per_client",
                raw.max_lookups_per_client,
                crate::dns::flood::DEFAULT_CLIENT_SHARE as u64,
            ) as usize,
        }
    }

    fn blocking(&mut self, raw: RawBlocking) -> BlockingConfig {
        let mode = match &raw.mode {
            None => BlockMode::Sinkhole,
            Some(v) => match v.get_ref().as_str() {
                "sinkhole" => BlockMode::Sinkhole,
                "null" => BlockMode::Null,
                "nxdomain" => BlockMode::NxDomain,
                other => {
                    self.error(
                        "blocking.mode",
                        v,
                        format!(
                            "unknown mode {other:?}: expected \"sinkhole\", \"null\" or \"nxdomain\""
                        ),
                    );
                    BlockMode::Sinkhole
                }
            },
        };
        let sinkhole_ipv4 = raw.sinkhole_ipv4.as_ref().and_then(|v| {
            v.get_ref()
                .parse()
                .map_err(|_| self.error("blocking.sinkhole_ipv4", v, "not an IPv4 address"))
                .ok()
        });
        let sinkhole_ipv6 = raw.sinkhole_ipv6.as_ref().and_then(|v| {
            v.get_ref()
                .parse()
                .map_err(|_| self.error("blocking.sinkhole_ipv6", v, "not an IPv6 address"))
                .ok()
        });
        if mode == BlockMode::Sinkhole && raw.sinkhole_ipv4.is_none() {
            self.error_no_line(
                "blocking.sinkhole_ipv4",
                "missing: mode \"sinkhole\" needs the address of the warning-page server (or use mode = \"null\")",
            );
        }
        let ttl = match &raw.ttl {
            None => DEFAULT_BLOCK_TTL,
            Some(v) => {
                let ttl = self.non_negative("blocking.ttl", v);
                if ttl > u64::from(MAX_BLOCK_TTL) {
                    self.error(
                        "blocking.ttl",
                        v,
                        format!("{ttl} s is too long: at most {MAX_BLOCK_TTL} s, so an unblock reaches students quickly"),
                    );
                }
                ttl.min(u64::from(MAX_BLOCK_TTL)) as u32
            }
        };
        BlockingConfig {
            mode,
            sinkhole_ipv4,
            sinkhole_ipv6,
            ttl,
            block_doh_canary: raw.block_doh_canary.unwrap_or(true),
        }
    }

    /// One entry of a category's `lists`: a file, or a subscription.
    fn list_spec(
        &mut self,
        key: &str,
        at: &Spanned<RawListRef>,
        table: RawListTable,
        root: &ListRoot,
        cache_dir: &std::path::Path,
    ) -> Option<ListSpec> {
        let mut format = match &table.format {
            None => ListFormat::Auto,
            Some(text) => text.parse().unwrap_or_else(|e| {
                self.error(format!("{key}.format"), at, format!("{e}"));
                ListFormat::Auto
            }),
        };
        let given = [
            table.path.is_some(),
            table.source.is_some(),
            table.url.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            self.error(
                key,
                at,
                "give exactly one of path, source (a name from blocklists/sources.toml) or url",
            );
            return None;
        }
        if let Some(path) = table.path {
            let resolved = match root {
                ListRoot::Directory(dir) => dir.join(&path),
                ListRoot::Embedded => path.clone().into(),
            };
            return Some(ListSpec {
                display: path,
                path: resolved,
                format,
                place: self.place(key, at),
                download: None,
            });
        }
        let (name, url, refresh) = if let Some(source) = &table.source {
            let catalogue = crate::lists::catalogue::parse(crate::lists::catalogue::EMBEDDED)
                .unwrap_or_default();
            let Some(found) = catalogue.iter().find(|s| &s.name == source) else {
                self.error(
                    format!("{key}.source"),
                    at,
                    format!("{source:?} is not in blocklists/sources.toml"),
                );
                return None;
            };
            if table.format.is_none() {
                format = found.format;
            }
            (found.name.clone(), found.url.clone(), found.refresh)
        } else {
            let url = table.url.unwrap_or_default();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                self.error(
                    format!("{key}.url"),
                    at,
                    "must be an http:// or https:// URL",
                );
                return None;
            }
            let Some(name) = table.name else {
                self.error(
                    format!("{key}.name"),
                    at,
                    "a url list needs a name (its file name in the cache)",
                );
                return None;
            };
            (name, url, std::time::Duration::from_secs(86_400))
        };
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && !name.starts_with('.');
        if !valid_name {
            self.error(
                format!("{key}.name"),
                at,
                format!("{name:?} is not a file name: use a-z, 0-9, '-', '_', '.'"),
            );
            return None;
        }
        let refresh = match &table.refresh {
            None => refresh,
            Some(text) => crate::lists::catalogue::parse_interval(text).unwrap_or_else(|| {
                self.error(
                    format!("{key}.refresh"),
                    at,
                    format!("{text:?} is not an interval like 30m, 6h, 1d"),
                );
                refresh
            }),
        };
        if let Some(pin) = &table.sha256
            && (pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            self.error(format!("{key}.sha256"), at, "must be 64 hex digits");
        }
        Some(ListSpec {
            display: format!("{name} ({url})"),
            path: cache_dir.join(format!("{name}.txt")),
            format,
            place: self.place(key, at),
            download: Some(Download {
                name,
                url,
                sha256: table.sha256.map(|p| p.to_ascii_lowercase()),
                refresh,
            }),
        })
    }

    fn categories(
        &mut self,
        raw: Vec<RawCategory>,
        root: &ListRoot,
        cache_dir: &std::path::Path,
    ) -> Vec<Category> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        if raw.len() > MAX_CATEGORIES {
            self.error_no_line(
                "category",
                format!("{} categories defined; at most {MAX_CATEGORIES}", raw.len()),
            );
        }
        for (i, category) in raw.into_iter().enumerate() {
            let key = format!("category[{i}]");
            let id = category.id.get_ref().clone();
            self.check_id(&format!("{key}.id"), &category.id);
            if !seen.insert(id.clone()) {
                self.error(
                    format!("{key}.id"),
                    &category.id,
                    format!("duplicate category id {id:?}"),
                );
            }
            let mut lists = Vec::new();
            for (j, list) in category.lists.into_iter().enumerate() {
                let list_key = format!("{key}.lists[{j}]");
                let table = match list.get_ref() {
                    RawListRef::Path(path) => RawListTable {
                        path: Some(path.clone()),
                        source: None,
                        url: None,
                        name: None,
                        format: None,
                        sha256: None,
                        refresh: None,
                    },
                    RawListRef::Table(table) => RawListTable {
                        path: table.path.clone(),
                        source: table.source.clone(),
                        url: table.url.clone(),
                        name: table.name.clone(),
                        format: table.format.clone(),
                        sha256: table.sha256.clone(),
                        refresh: table.refresh.clone(),
                    },
                };
                if let Some(spec) = self.list_spec(&list_key, &list, table, root, cache_dir) {
                    lists.push(spec);
                }
            }
            out.push(Category {
                name: category.name.unwrap_or_else(|| id.clone()),
                id,
                lists,
            });
        }
        out
    }

    fn bands(&mut self, raw: Vec<RawBand>, categories: &[Category]) -> Vec<Band> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        if raw.is_empty() {
            self.error_no_line("band", "no grade band defined: add at least one [[band]]");
        }
        for (i, band) in raw.into_iter().enumerate() {
            let key = format!("band[{i}]");
            let id = band.id.get_ref().clone();
            self.check_id(&format!("{key}.id"), &band.id);
            if !seen.insert(id.clone()) {
                self.error(
                    format!("{key}.id"),
                    &band.id,
                    format!("duplicate band id {id:?}"),
                );
            }
            let mut blocked = Vec::new();
            for (j, name) in band.block.iter().enumerate() {
                match categories.iter().position(|c| &c.id == name.get_ref()) {
                    Some(index) if !blocked.contains(&index) => blocked.push(index),
                    Some(_) => {}
                    None => self.error(
                        format!("{key}.block[{j}]"),
                        name,
                        format!("unknown category {:?}", name.get_ref()),
                    ),
                }
            }
            let deny = self.rules(&format!("{key}.deny"), &band.deny);
            let allow = self.rules(&format!("{key}.allow"), &band.allow);
            let youtube = match &band.youtube {
                None => YouTubeMode::Off,
                Some(v) => match v.get_ref().as_str() {
                    "off" => YouTubeMode::Off,
                    "moderate" => YouTubeMode::Moderate,
                    "strict" => YouTubeMode::Strict,
                    other => {
                        self.error(
                            format!("{key}.youtube"),
                            v,
                            format!("unknown mode {other:?}: expected \"off\", \"moderate\" or \"strict\""),
                        );
                        YouTubeMode::Off
                    }
                },
            };
            let schedules = band
                .schedule
                .iter()
                .enumerate()
                .filter_map(|(j, raw)| {
                    self.schedule(&format!("{key}.schedule[{j}]"), raw, categories, &blocked)
                })
                .collect();
            out.push(Band {
                name: band.name.unwrap_or_else(|| id.clone()),
                id,
                blocked,
                deny,
                allow,
                safe_search: band.safe_search.unwrap_or(false),
                youtube,
                bypass_prevention: band.bypass_prevention.unwrap_or(true),
                max_qps_per_client: band.max_qps_per_client.as_ref().map_or(0, |v| {
                    self.non_negative(&format!("{key}.max_qps_per_client"), v)
                        .min(u64::from(u32::MAX)) as u32
                }),
                schedules,
            });
        }
        out
    }

    fn schools(&mut self, raw: Vec<RawSchool>, bands: &[Band]) -> Vec<School> {
        let mut seen = HashSet::new();
        let mut networks_seen: HashSet<IpNet> = HashSet::new();
        let mut out = Vec::new();
        if raw.is_empty() {
            self.error_no_line(
                "school",
                "no school defined: add at least one [[school]] with its networks",
            );
        }
        for (i, school) in raw.into_iter().enumerate() {
            let key = format!("school[{i}]");
            let id = school.id.get_ref().clone();
            self.check_id(&format!("{key}.id"), &school.id);
            if !seen.insert(id.clone()) {
                self.error(
                    format!("{key}.id"),
                    &school.id,
                    format!("duplicate school id {id:?}"),
                );
            }
            let mut networks = Vec::new();
            for (j, net) in school.networks.iter().enumerate() {
                let net_key = format!("{key}.networks[{j}]");
                if let Some(net) = self.network(&net_key, net, &mut networks_seen) {
                    networks.push(net);
                }
            }
            let mut band_networks = Vec::new();
            for (band_id, nets) in &school.bands {
                let band_key = format!("{key}.bands.{band_id}");
                let band = bands.iter().position(|b| &b.id == band_id);
                if band.is_none() {
                    let message = format!("unknown band {band_id:?}");
                    match nets.first() {
                        Some(first) => self.error(band_key.clone(), first, message),
                        None => self.error_no_line(band_key.clone(), message),
                    }
                }
                for (j, net) in nets.iter().enumerate() {
                    let net_key = format!("{band_key}[{j}]");
                    if let (Some(net), Some(band)) =
                        (self.network(&net_key, net, &mut networks_seen), band)
                    {
                        band_networks.push((net, band));
                    }
                }
            }
            if school.networks.is_empty() && school.bands.is_empty() {
                self.error(
                    format!("{key}.networks"),
                    &school.id,
                    "the school has no networks: list its campus networks (CIDR) in networks or bands",
                );
            }
            let unknown_band = match &school.unknown_band {
                Some(v) => bands
                    .iter()
                    .position(|b| &b.id == v.get_ref())
                    .unwrap_or_else(|| {
                        self.error(
                            format!("{key}.unknown_band"),
                            v,
                            format!("unknown band {:?}", v.get_ref()),
                        );
                        0
                    }),
                None => strictest_band(bands),
            };
            let deny = self.rules(&format!("{key}.deny"), &school.deny);
            let allow = self.rules(&format!("{key}.allow"), &school.allow);
            let timezone_name = school
                .timezone
                .as_ref()
                .map_or(DEFAULT_TIMEZONE.to_string(), |t| t.get_ref().clone());
            let timezone = match jiff::tz::TimeZone::get(&timezone_name) {
                Ok(tz) => tz,
                Err(_) => {
                    if let Some(t) = &school.timezone {
                        self.error(
                            format!("{key}.timezone"),
                            t,
                            format!("unknown time zone {timezone_name:?}: use an IANA name like \"Asia/Ho_Chi_Minh\""),
                        );
                    }
                    jiff::tz::TimeZone::fixed(jiff::tz::offset(7))
                }
            };
            let holidays = school
                .holidays
                .iter()
                .enumerate()
                .filter_map(|(j, h)| self.holiday(&format!("{key}.holidays[{j}]"), h))
                .collect();
            out.push(School {
                timezone,
                timezone_name,
                holidays,
                name: school.name.unwrap_or_else(|| id.clone()),
                id,
                networks,
                band_networks,
                unknown_band,
                deny,
                allow,
            });
        }
        out
    }

    fn schedule(
        &mut self,
        key: &str,
        raw: &RawSchedule,
        categories: &[Category],
        always_blocked: &[usize],
    ) -> Option<Schedule> {
        let Some(category) = categories
            .iter()
            .position(|c| &c.id == raw.category.get_ref())
        else {
            self.error(
                format!("{key}.category"),
                &raw.category,
                format!("unknown category {:?}", raw.category.get_ref()),
            );
            return None;
        };
        if always_blocked.contains(&category) {
            self.error(
                format!("{key}.category"),
                &raw.category,
                format!(
                    "category {:?} is already in this band's block list (blocked all the time); remove it there to block it only on a schedule",
                    raw.category.get_ref()
                ),
            );
        }
        let mut days = 0u8;
        for (j, text) in raw.days.iter().enumerate() {
            match parse_days(text.get_ref()) {
                Some(bits) => days |= bits,
                None => self.error(
                    format!("{key}.days[{j}]"),
                    text,
                    format!("{:?} is not a day or range: use mon, tue, wed, thu, fri, sat, sun or a range like mon-fri", text.get_ref()),
                ),
            }
        }
        if raw.days.is_empty() {
            days = 0x7f;
        }
        let mut windows = Vec::new();
        for (j, text) in raw.windows.iter().enumerate() {
            match parse_window(text.get_ref()) {
                Some(window) => windows.push(window),
                None => self.error(
                    format!("{key}.windows[{j}]"),
                    text,
                    format!("{:?} is not a time window: write HH:MM-HH:MM with the start before the end, e.g. 07:00-11:30", text.get_ref()),
                ),
            }
        }
        if raw.windows.is_empty() {
            self.error(
                format!("{key}.windows"),
                &raw.category,
                "no windows: list at least one, e.g. [\"07:00-11:30\"]",
            );
        }
        let day_text: Vec<&str> = raw.days.iter().map(|d| d.get_ref().as_str()).collect();
        let window_text: Vec<&str> = raw.windows.iter().map(|w| w.get_ref().as_str()).collect();
        Some(Schedule {
            category,
            days,
            windows,
            text: format!(
                "{} {}",
                if day_text.is_empty() {
                    "every day".to_string()
                } else {
                    day_text.join(",")
                },
                window_text.join(", ")
            ),
            place: self.place(key, &raw.category),
        })
    }

    fn holiday(&mut self, key: &str, raw: &RawHoliday) -> Option<Holiday> {
        let mut date = |field: &str, value: &Spanned<String>| match value
            .get_ref()
            .parse::<jiff::civil::Date>()
        {
            Ok(date) => Some(date),
            Err(_) => {
                self.error(
                    format!("{key}.{field}"),
                    value,
                    format!("{:?} is not a date: write YYYY-MM-DD", value.get_ref()),
                );
                None
            }
        };
        let from = date("from", &raw.from)?;
        let to = match &raw.to {
            Some(to) => date("to", to)?,
            None => from,
        };
        if to < from {
            self.error(
                format!("{key}.to"),
                raw.to.as_ref().unwrap_or(&raw.from),
                "ends before it starts",
            );
            return None;
        }
        Some(Holiday {
            from,
            to,
            name: raw.name.clone().unwrap_or_default(),
        })
    }

    fn network(
        &mut self,
        key: &str,
        value: &Spanned<String>,
        seen: &mut HashSet<IpNet>,
    ) -> Option<IpNet> {
        let text = value.get_ref().trim();
        let parsed = text
            .parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => {
                let net = net.trunc();
                if !seen.insert(net) {
                    self.error(key, value, format!("network {net} is listed twice"));
                    return None;
                }
                Some(net)
            }
            Err(_) => {
                self.error(
                    key,
                    value,
                    format!(
                        "{text:?} is not a network: write a CIDR like 10.1.0.0/16 or 2001:db8::/48"
                    ),
                );
                None
            }
        }
    }

    fn rules(&mut self, key: &str, values: &[Spanned<String>]) -> Vec<ConfigRule> {
        let mut out = Vec::new();
        for (j, value) in values.iter().enumerate() {
            let entry_key = format!("{key}[{j}]");
            let text = value.get_ref().trim();
            let text = text.strip_prefix("*.").unwrap_or(text);
            match normalize(text) {
                Ok(domain) => out.push(ConfigRule {
                    domain: domain.to_string(),
                    place: self.place(entry_key, value),
                }),
                Err(e) => self.error(entry_key, value, format!("{:?}: {e}", value.get_ref())),
            }
        }
        out
    }

    fn check_id(&mut self, key: &str, id: &Spanned<String>) {
        let text = id.get_ref();
        let valid = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            self.error(
                key,
                id,
                format!("{text:?} is not a valid id: use 1-64 of a-z, 0-9, '-', '_'"),
            );
        }
    }

    fn socket_addrs(&mut self, key: &str, list: &[Spanned<String>], port: u16) -> Vec<SocketAddr> {
        list.iter()
            .enumerate()
            .filter_map(|(i, v)| self.socket_addr(&format!("{key}[{i}]"), v, port))
            .collect()
    }

    fn socket_addr(
        &mut self,
        key: &str,
        value: &Spanned<String>,
        default_port: u16,
    ) -> Option<SocketAddr> {
        let parsed = parse_socket_addr(value.get_ref(), default_port);
        if parsed.is_none() {
            self.error(
                key,
                value,
                format!(
                    "{:?} is not an address: write IP or IP:port, e.g. 10.0.0.1:53 or [2001:db8::1]:53",
                    value.get_ref()
                ),
            );
        }
        parsed
    }

    fn non_negative(&mut self, key: &str, value: &Spanned<i64>) -> u64 {
        match u64::try_from(*value.get_ref()) {
            Ok(v) => v,
            Err(_) => {
                self.error(key, value, "must not be negative");
                0
            }
        }
    }

    fn non_negative_or(&mut self, key: &str, value: Option<Spanned<i64>>, default: u64) -> u64 {
        value.map_or(default, |v| self.non_negative(key, &v))
    }

    fn positive_or(&mut self, key: &str, value: Option<Spanned<i64>>, default: u64) -> u64 {
        match value {
            None => default,
            Some(v) if *v.get_ref() > 0 => *v.get_ref() as u64,
            Some(v) => {
                self.error(key, &v, "must be greater than zero");
                default
            }
        }
    }
}

/// Time zone of schools that do not name one.
pub const DEFAULT_TIMEZONE: &str = "Asia/Ho_Chi_Minh";

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `mon`, `sat-sun`, `mon-fri` → day bits (bit 0 = Monday).
fn parse_days(text: &str) -> Option<u8> {
    let day = |d: &str| DAYS.iter().position(|x| d.trim().eq_ignore_ascii_case(x));
    match text.split_once('-') {
        None => day(text).map(|d| 1 << d),
        Some((from, to)) => {
            let (from, to) = (day(from)?, day(to)?);
            if from > to {
                return None;
            }
            Some((from..=to).fold(0, |bits, d| bits | 1 << d))
        }
    }
}

/// `07:00-11:30` → minutes [420, 690); `24:00` allowed as an end.
fn parse_window(text: &str) -> Option<(u16, u16)> {
    let minutes = |t: &str| -> Option<u16> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        // `then`, not `then_some`: the product must not be computed for an
        // hour like 6424, where it overflows (found by the `config` fuzzer).
        (m < 60 && (h < 24 || h == 24 && m == 0)).then(|| h * 60 + m)
    };
    let (start, end) = text.split_once('-')?;
    let (start, end) = (minutes(start)?, minutes(end)?);
    (start < end).then_some((start, end))
}

/// One UDP socket per core (at most 8), as Unbound's `num-threads` advice.
fn default_udp_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8)
}

fn default_management() -> SocketAddr {
    DEFAULT_MANAGEMENT_LISTEN.parse().expect("valid constant")
}

/// `IP`, `IP:port`, `[v6]:port` or bare `v6`.
pub fn parse_socket_addr(text: &str, default_port: u16) -> Option<SocketAddr> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    text.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, default_port))
}

/// The band blocking the most categories (first on a tie): where unknown
/// clients inside a school network land unless the school says otherwise.
fn strictest_band(bands: &[Band]) -> usize {
    let mut best = 0;
    for (i, band) in bands.iter().enumerate() {
        if band.blocked.len() > bands[best].blocked.len() {
            best = i;
        }
    }
    best
}
