//! Raw TOML → typed [`Config`], collecting every problem with key and line.
//!
//! This file holds the shared machinery: parsing the TOML, the
//! [`Checker`] that collects issues with their key path and line (from the
//! value's span), the value checks every section uses (ids, domains,
//! addresses, numbers, state paths) and the assembly of the [`Config`],
//! section by section. Each section is checked in its own file, as more
//! methods of the `Checker`: `server.rs`, `upstream.rs`, `blocking.rs`,
//! `lists.rs` (with `[[category]]`), `bands.rs`, `schools.rs` and
//! `service.rs` (`[reload]`, `[stats]`, `[privacy]`, `[takedown]`,
//! `[office]`, `[admin]`, `[central]`) and `encrypted.rs`
//! (`[encrypted_dns]`). The section files use this one,
//! never each other, and this one names none of them.

mod bands;
mod blocking;
mod encrypted;
pub use encrypted::{PemError, PemFile, load_pem};
mod lists;
mod schools;
mod server;
mod service;
pub mod upstream;

use super::error::{ConfigError, ConfigIssue, LineIndex};
use super::raw::*;
use super::types::*;
use crate::lists::name::normalize;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use toml::Spanned;

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

    fn error_no_line(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.issues.push(ConfigIssue {
            key: key.into(),
            line: 0,
            message: message.into(),
        });
    }

    fn config(&mut self, raw: RawConfig, path: &Path, list_root: ListRoot) -> Config {
        // Section by section, in the order issues have always been reported.
        let server = self.server(raw.server);
        let upstream = self.upstream(raw.upstream, &list_root);
        let blocking = self.blocking(raw.blocking);
        let reload = self.reload(raw.reload);
        let lists = self.lists(raw.lists, &list_root);
        let categories = self.categories(raw.categories, &list_root, &lists.cache_dir);
        let takedown = self.takedown(&raw.takedown);
        let bands = self.bands(raw.bands, &categories);
        let schools = self.schools(raw.schools, &bands);
        let safe_search_mapping = raw.safe_search.mapping.as_ref().map(|m| match &list_root {
            ListRoot::Directory(dir) => dir.join(m.get_ref()),
            ListRoot::Embedded => m.get_ref().into(),
        });
        let stats = self.stats(raw.stats, &list_root);
        let incident_log_days = self.incident_log_days(&raw.privacy.incident_log_days);
        let ca_dir = state_path(&list_root, &raw.warning_page.ca_dir, "ca");
        let office = self.office(&raw.office);
        let admin = self.admin(&raw.admin, &list_root, &stats);
        let encrypted_dns = self.encrypted_dns(raw.encrypted_dns, &list_root, &stats);
        let central = self.central(raw.central.as_ref());
        let upload = self.upload(raw.upload.as_ref(), &list_root);
        let privacy = self.privacy(raw.privacy.k_anonymity, incident_log_days);
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
            encrypted_dns,
            central,
            upload,
            warning_page: WarningPageConfig {
                ca_dir,
                logo_text: raw.warning_page.logo_text,
                contact: raw.warning_page.contact,
                help_lines: raw.warning_page.help_lines,
            },
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

    /// `<key>.id` of a `[[category]]`, `[[band]]` or `[[school]]` (`kind`):
    /// a valid id that no earlier table of the kind used (`seen`).
    fn unique_id(
        &mut self,
        kind: &str,
        key: &str,
        id: &Spanned<String>,
        seen: &mut HashSet<String>,
    ) {
        self.check_id(&format!("{key}.id"), id);
        if !seen.insert(id.get_ref().clone()) {
            self.error(
                format!("{key}.id"),
                id,
                format!("duplicate {kind} id {:?}", id.get_ref()),
            );
        }
    }

    /// An `http://` or `https://` URL (trimmed), or an issue and `None`.
    fn http_url(&mut self, key: &str, value: &Spanned<String>) -> Option<String> {
        let text = value.get_ref().trim();
        if text.starts_with("https://") || text.starts_with("http://") {
            Some(text.to_string())
        } else {
            self.error(key, value, "must be an http:// or https:// URL");
            None
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

/// A state file or directory of the service: `value`, or `default`, in the
/// config's directory (a temporary one for the embedded demo config).
fn state_path(root: &ListRoot, value: &Option<Spanned<String>>, default: &str) -> PathBuf {
    match (root, value) {
        (ListRoot::Directory(dir), Some(v)) => dir.join(v.get_ref()),
        (ListRoot::Directory(dir), None) => dir.join(default),
        (ListRoot::Embedded, Some(v)) => v.get_ref().into(),
        (ListRoot::Embedded, None) => std::env::temp_dir().join(format!("edudns-demo-{default}")),
    }
}

pub use crate::config::types::parse_socket_addr;
