//! `[upstream]`: the DNS servers cache misses are forwarded to, over which
//! protocol, and how long and how many lookups they may take.

use super::Checker;
use crate::config::raw::RawUpstream;
use crate::config::types::*;
use std::time::Duration;

pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 2000;
pub const DEFAULT_CACHE_SIZE: usize = 10_000;
/// Upstream lookups one client network (/24, /56) may have in flight, and
/// as many waiting (docs/reliability.md, "Bursts and floods").
pub const DEFAULT_MAX_LOOKUPS_PER_CLIENT: usize = 256;

impl Checker {
    pub(super) fn upstream(&mut self, raw: RawUpstream, root: &ListRoot) -> UpstreamConfig {
        let servers = match &raw.servers {
            Some(list) => list
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v.get_ref().parse::<UpstreamServer>() {
                    Ok(server) => Some(server),
                    Err(message) => {
                        self.error(format!("upstream.servers[{i}]"), v, message);
                        None
                    }
                })
                .collect(),
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
                format!(
                    "the certificate's name goes with each server: servers = [\"tls://192.0.2.1:853#{}\"]",
                    v.get_ref()
                ),
            );
        }
        let tls_ca_file = raw.tls_ca_file.as_ref().map(|v| {
            let path = super::state_path(root, &Some(v.clone()), "");
            if let Err(message) = load_ca_file(&path) {
                self.error("upstream.tls_ca_file", v, message);
            }
            path
        });
        UpstreamConfig {
            servers,
            tls_ca_file,
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
                DEFAULT_MAX_LOOKUPS_PER_CLIENT as u64,
            ) as usize,
        }
    }
}

/// The certificates of a PEM bundle of extra upstream roots; the error
/// names the file and what is wrong with it.
pub fn load_ca_file(
    path: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate bundle: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in it (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}
