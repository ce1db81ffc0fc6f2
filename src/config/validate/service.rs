//! `[reload]`, `[stats]`, `[privacy]`, `[takedown]`, `[office]`, `[admin]`
//! and `[central]`: the running service's state files, the feeds it
//! follows and its management API.

use super::{Checker, state_path};
use crate::config::raw::*;
use crate::config::types::*;
use std::time::Duration;
use toml::Spanned;

pub const DEFAULT_WATCH_INTERVAL_SECS: u64 = 5;
pub const DEFAULT_FLUSH_SECS: u64 = 60;
pub const DEFAULT_RETENTION_DAYS: u64 = 400;
pub const DEFAULT_K_ANONYMITY: u64 = 10;
/// Longest an incident log (client addresses) may be kept.
pub const MAX_INCIDENT_LOG_DAYS: u32 = 30;

impl Checker {
    pub(super) fn reload(&mut self, raw: RawReload) -> ReloadConfig {
        ReloadConfig {
            watch_interval: match raw.watch_interval_secs {
                None => Some(Duration::from_secs(DEFAULT_WATCH_INTERVAL_SECS)),
                Some(v) => match self.non_negative("reload.watch_interval_secs", &v) {
                    0 => None,
                    secs => Some(Duration::from_secs(secs)),
                },
            },
        }
    }

    pub(super) fn takedown(&mut self, raw: &RawTakedown) -> TakedownConfig {
        TakedownConfig {
            url: raw
                .url
                .as_ref()
                .and_then(|u| self.http_url("takedown.url", u)),
            refresh: match &raw.refresh {
                None => Duration::from_secs(300),
                Some(v) => {
                    crate::lists::catalogue::parse_interval(v.get_ref()).unwrap_or_else(|| {
                        self.error("takedown.refresh", v, "not an interval like 30s, 5m, 1h");
                        Duration::from_secs(300)
                    })
                }
            },
            push_token_sha256: raw.push_token_sha256.as_ref().and_then(|t| {
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
        }
    }

    pub(super) fn stats(&mut self, raw: RawStats, root: &ListRoot) -> StatsConfig {
        if let Some(v) = &raw.flush_interval_secs
            && *v.get_ref() > 60
        {
            self.error(
                "stats.flush_interval_secs",
                v,
                "at most 60 s: a crash may lose at most one interval of counts",
            );
        }
        StatsConfig {
            database: state_path(root, &raw.database, "stats.sqlite"),
            key_dir: state_path(root, &raw.key_dir, "keys"),
            accepted_dir: state_path(root, &raw.accepted_dir, "accepted"),
            flush_interval: Duration::from_secs(self.positive_or(
                "stats.flush_interval_secs",
                raw.flush_interval_secs,
                DEFAULT_FLUSH_SECS,
            )),
            retention_days: self.positive_or(
                "stats.retention_days",
                raw.retention_days,
                DEFAULT_RETENTION_DAYS,
            ) as u32,
        }
    }

    /// `[privacy] incident_log_days`, checked before `[office]` as always
    /// (issues are reported in the order they are found).
    pub(super) fn incident_log_days(&mut self, value: &Option<Spanned<i64>>) -> u32 {
        match value {
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
        }
    }

    pub(super) fn office(&mut self, raw: &RawOffice) -> OfficeConfig {
        OfficeConfig {
            deny: self.rules("office.deny", &raw.deny),
            allow: self.rules("office.allow", &raw.allow),
        }
    }

    /// `[admin]`; the tokens file defaults to the statistics database's directory.
    pub(super) fn admin(
        &mut self,
        raw: &RawAdmin,
        root: &ListRoot,
        stats: &StatsConfig,
    ) -> AdminConfig {
        let tokens_file = match &raw.tokens_file {
            Some(_) => state_path(root, &raw.tokens_file, "tokens.json"),
            None => stats
                .database
                .parent()
                .map(|d| d.join("tokens.json"))
                .unwrap_or_else(|| "tokens.json".into()),
        };
        let tls = match (&raw.tls_cert, &raw.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some((
                state_path(root, &Some(cert.clone()), ""),
                state_path(root, &Some(key.clone()), ""),
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
        AdminConfig {
            tokens_file,
            tls,
            metrics_require_token: raw.metrics_require_token.unwrap_or(false),
        }
    }

    pub(super) fn central(&mut self, raw: Option<&RawCentral>) -> Option<CentralConfig> {
        raw.map(|raw_central| {
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
        })
    }

    /// `[upload]`: the office's ingest URL and the school's token file;
    /// the heartbeat's URL and interval.
    pub(super) fn upload(
        &mut self,
        raw: Option<&RawUpload>,
        root: &ListRoot,
    ) -> Option<UploadConfig> {
        let raw = raw?;
        let url = raw.url.get_ref().trim().to_string();
        let is_http = |url: &str| url.starts_with("http://") || url.starts_with("https://");
        if !is_http(&url) {
            self.error(
                "upload.url",
                &raw.url,
                "must be an http:// or https:// URL (the office's /api/v1/ingest)",
            );
        }
        let interval = self
            .upload_interval("upload.interval", raw.interval.as_ref())
            .unwrap_or(UploadConfig::DEFAULT_INTERVAL);
        let heartbeat_interval = self
            .upload_interval("upload.heartbeat_interval", raw.heartbeat_interval.as_ref())
            .unwrap_or(UploadConfig::DEFAULT_HEARTBEAT_INTERVAL);
        let heartbeat_url = match &raw.heartbeat_url {
            Some(v) => {
                let given = v.get_ref().trim().to_string();
                if !is_http(&given) {
                    self.error(
                        "upload.heartbeat_url",
                        v,
                        "must be an http:// or https:// URL (the office's /api/v1/heartbeat)",
                    );
                }
                given
            }
            None => UploadConfig::heartbeat_beside(&url).unwrap_or_else(|| {
                self.error(
                    "upload.url",
                    &raw.url,
                    "does not end in /ingest, so the heartbeat's URL cannot be had from it: set upload.heartbeat_url (the office's /api/v1/heartbeat)",
                );
                String::new()
            }),
        };
        Some(UploadConfig {
            url,
            token_file: state_path(root, &Some(raw.token_file.clone()), ""),
            interval,
            heartbeat_url,
            heartbeat_interval,
        })
    }

    /// An `[upload]` interval of at least 1s; `None` when unset or wrong
    /// (wrong is reported).
    fn upload_interval(&mut self, key: &str, raw: Option<&Spanned<String>>) -> Option<Duration> {
        let v = raw?;
        match crate::lists::catalogue::parse_interval(v.get_ref()) {
            Some(d) if d >= Duration::from_secs(1) => Some(d),
            _ => {
                self.error(key, v, "not an interval of at least 1s like 30s, 5m, 1h");
                None
            }
        }
    }

    /// `[privacy]`: `k_anonymity` is checked after `[central]`, as always.
    pub(super) fn privacy(
        &mut self,
        k_anonymity: Option<Spanned<i64>>,
        incident_log_days: u32,
    ) -> PrivacyConfig {
        PrivacyConfig {
            k_anonymity: self.positive_or("privacy.k_anonymity", k_anonymity, DEFAULT_K_ANONYMITY),
            incident_log_days,
        }
    }
}
