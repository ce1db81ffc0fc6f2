//! The listeners' certificate: PEM files read at start and again on
//! SIGHUP. A reload swaps the key for new handshakes only; connections
//! already open keep theirs, so nothing is dropped. New files that do not
//! load (missing, not PEM, key not matching) keep the old certificate, are
//! logged with the file's name and counted.

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The certificate every encrypted listener presents.
#[derive(Debug)]
pub struct Certificates {
    current: ArcSwap<CertifiedKey>,
    certificate: PathBuf,
    private_key: PathBuf,
}

/// The chain and key in two PEM files (the loader `check-config` uses).
pub fn load_pem(certificate: &Path, private_key: &Path) -> Result<CertifiedKey, String> {
    crate::config::validate::load_pem(certificate, private_key).map_err(|e| e.message)
}

impl Certificates {
    pub fn load(certificate: &Path, private_key: &Path) -> Result<Self, String> {
        Ok(Certificates {
            current: ArcSwap::from_pointee(load_pem(certificate, private_key)?),
            certificate: certificate.to_path_buf(),
            private_key: private_key.to_path_buf(),
        })
    }

    /// Reads the files again; on error the certificate in use stays.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = load_pem(&self.certificate, &self.private_key)?;
        self.current.store(Arc::new(fresh));
        Ok(())
    }

    /// A TLS 1.2/1.3 server configuration presenting this certificate and
    /// offering `alpn` (RFC 7858 §3.2 "dot", RFC 8484 "h2" and "http/1.1").
    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // Resumption without a server-side cache of its own: tickets.
        config.send_tls13_tickets = 2;
        Arc::new(config)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}
