//! `[encrypted_dns]`: the DoT and DoH listeners, their certificate (read
//! here once so `check-config` names a missing or broken PEM file), the
//! band-token domain and file, and the per-client limits.

use super::{Checker, state_path};
use crate::config::raw::RawEncryptedDns;
use crate::config::types::*;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 5_000;
/// Unbound's `tcp-idle-timeout` is 30 s as well; Android keeps its DoT
/// connection open between bursts of questions.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// A home router or a small office behind one address carries a few
/// devices, each with a connection or two.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 64;
pub const DEFAULT_MAX_HANDSHAKES_PER_CLIENT: usize = 16;
/// RFC 9113 recommends allowing at least 100 concurrent streams.
pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: usize = 100;
/// The largest DNS message (RFC 8484 bodies hold one).
pub const DEFAULT_MAX_BODY_BYTES: usize = 65_535;

impl Checker {
    pub(super) fn encrypted_dns(
        &mut self,
        raw: RawEncryptedDns,
        root: &ListRoot,
        stats: &StatsConfig,
    ) -> EncryptedDnsConfig {
        let dot_listen = raw.dot_listen.as_ref().map_or_else(Vec::new, |list| {
            self.socket_addrs("encrypted_dns.dot_listen", list, 853)
        });
        let doh_listen = raw.doh_listen.as_ref().map_or_else(Vec::new, |list| {
            self.socket_addrs("encrypted_dns.doh_listen", list, 443)
        });
        let listening = raw.dot_listen.as_ref().is_some_and(|l| !l.is_empty())
            || raw.doh_listen.as_ref().is_some_and(|l| !l.is_empty());
        let (certificate, private_key) = match (&raw.certificate, &raw.private_key) {
            (Some(cert), Some(key)) => {
                let (cert_path, key_path) = (
                    state_path(root, &Some(cert.clone()), ""),
                    state_path(root, &Some(key.clone()), ""),
                );
                if listening {
                    self.pem_files(cert, &cert_path, key, &key_path);
                }
                (cert_path, key_path)
            }
            (None, None) => {
                if listening {
                    self.error_no_line(
                        "encrypted_dns.certificate",
                        "missing: DoT and DoH need a certificate and its key, e.g. certificate = \"/etc/edudns/dns.crt\" and private_key = \"/etc/edudns/dns.key\" (edudns ca issue makes them)",
                    );
                }
                Default::default()
            }
            (Some(v), None) | (None, Some(v)) => {
                self.error(
                    "encrypted_dns.certificate",
                    v,
                    "set both encrypted_dns.certificate and encrypted_dns.private_key",
                );
                Default::default()
            }
        };
        let token_domain = raw.token_domain.as_ref().and_then(|v| {
            match crate::lists::name::normalize(v.get_ref()) {
                Ok(name) if name.contains('.') => Some(name.into_owned()),
                _ => {
                    self.error(
                        "encrypted_dns.token_domain",
                        v,
                        format!(
                            "{:?} is not a domain name: write the name the DoT clients use without the token, e.g. \"dns.truong.edu.vn\"",
                            v.get_ref()
                        ),
                    );
                    None
                }
            }
        });
        let tokens_file = match &raw.tokens_file {
            Some(_) => state_path(root, &raw.tokens_file, "dns-tokens.json"),
            None => stats
                .database
                .parent()
                .map(|d| d.join("dns-tokens.json"))
                .unwrap_or_else(|| "dns-tokens.json".into()),
        };
        let count = |checker: &mut Checker, key: &str, value, default: usize| {
            checker.positive_or(&format!("encrypted_dns.{key}"), value, default as u64) as usize
        };
        let mut limits = EncryptedLimits {
            handshake_timeout: Duration::from_millis(self.positive_or(
                "encrypted_dns.handshake_timeout_ms",
                raw.handshake_timeout_ms,
                DEFAULT_HANDSHAKE_TIMEOUT_MS,
            )),
            idle_timeout: Duration::from_secs(self.positive_or(
                "encrypted_dns.idle_timeout_secs",
                raw.idle_timeout_secs,
                DEFAULT_IDLE_TIMEOUT_SECS,
            )),
            max_connections: count(
                self,
                "max_connections",
                raw.max_connections,
                DEFAULT_MAX_CONNECTIONS,
            ),
            max_connections_per_client: count(
                self,
                "max_connections_per_client",
                raw.max_connections_per_client,
                DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            ),
            max_handshakes_per_client: count(
                self,
                "max_handshakes_per_client",
                raw.max_handshakes_per_client,
                DEFAULT_MAX_HANDSHAKES_PER_CLIENT,
            ),
            max_streams_per_connection: count(
                self,
                "max_streams_per_connection",
                raw.max_streams_per_connection,
                DEFAULT_MAX_STREAMS_PER_CONNECTION,
            ),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        };
        if let Some(v) = raw.max_body_bytes {
            match *v.get_ref() {
                n @ 12..=65_535 => limits.max_body_bytes = n as usize,
                _ => self.error(
                    "encrypted_dns.max_body_bytes",
                    &v,
                    "must be 12 (a DNS header) to 65535 (the largest DNS message)",
                ),
            }
        }
        EncryptedDnsConfig {
            dot_listen,
            doh_listen,
            certificate,
            private_key,
            token_domain,
            tokens_file,
            limits,
        }
    }

    /// The certificate chain and key parse as PEM and belong together.
    fn pem_files(
        &mut self,
        cert: &Spanned<String>,
        cert_path: &Path,
        key: &Spanned<String>,
        key_path: &Path,
    ) {
        if let Err(e) = load_pem(cert_path, key_path) {
            let (name, value) = match e.file {
                PemFile::Certificate => ("encrypted_dns.certificate", cert),
                PemFile::PrivateKey => ("encrypted_dns.private_key", key),
            };
            self.error(name, value, e.message);
        }
    }
}

/// Which of the two PEM files is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemFile {
    Certificate,
    PrivateKey,
}

/// Why a certificate and key do not load, naming the file.
#[derive(Debug, Clone)]
pub struct PemError {
    pub file: PemFile,
    pub message: String,
}

impl std::fmt::Display for PemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The chain and key in two PEM files, checked to belong together: what
/// `check-config` checks and what the encrypted listeners load (at start
/// and on SIGHUP).
pub fn load_pem(cert_path: &Path, key_path: &Path) -> Result<rustls::sign::CertifiedKey, PemError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certificate = |message: String| PemError {
        file: PemFile::Certificate,
        message,
    };
    let private_key = |message: String| PemError {
        file: PemFile::PrivateKey,
        message,
    };
    let chain = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| certificate(format!("{}: {e}", cert_path.display())))?;
    if chain.is_empty() {
        return Err(certificate(format!(
            "{}: no PEM certificate in the file",
            cert_path.display()
        )));
    }
    let key_der = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| private_key(format!("{}: {e}", key_path.display())))?;
    rustls::sign::CertifiedKey::from_der(chain, key_der, &rustls::crypto::ring::default_provider())
        .map_err(|e| {
            private_key(format!(
                "{} does not match the certificate {}: {e}",
                key_path.display(),
                cert_path.display()
            ))
        })
}
