//! HTTPS on the sinkhole with a school CA: `edudns ca init` creates a CA
//! the school installs on the devices it manages; the sinkhole then mints a
//! certificate for each blocked Host on the fly (rcgen, cached) so the
//! warning page shows over HTTPS instead of a certificate error.

use dashmap::DashMap;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Certificates kept in memory at most (cleared when full).
const MAX_CACHED: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

fn file_error(path: &Path, message: impl std::fmt::Display) -> CaError {
    CaError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Files of the CA in its directory.
pub fn paths(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (dir.join("ca.key"), dir.join("ca.crt"), dir.join("ca.name"))
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationName, "edudns");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Creates the school CA (key mode 0600); refuses to overwrite one.
pub fn init(dir: &Path, name: &str) -> Result<PathBuf, CaError> {
    let (key_path, cert_path, name_path) = paths(dir);
    if key_path.exists() {
        return Err(file_error(
            &key_path,
            "a CA exists already; remove the directory first to make a new one",
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
    let key = KeyPair::generate()?;
    let mut params = ca_params(name);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params.self_signed(&key)?;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)
        .map_err(|e| file_error(&key_path, e))?;
    file.write_all(key.serialize_pem().as_bytes())
        .map_err(|e| file_error(&key_path, e))?;
    std::fs::write(&cert_path, cert.pem()).map_err(|e| file_error(&cert_path, e))?;
    std::fs::write(&name_path, name).map_err(|e| file_error(&name_path, e))?;
    Ok(cert_path)
}

/// Issues a server certificate for `names` (wildcards allowed, e.g.
/// `*.dns.truong.edu.vn` for DoT band tokens) signed by the school CA, valid
/// 397 days (what Apple devices accept), as `dns.crt` (leaf then CA) and
/// `dns.key` (mode 0600) in `out`. Returns the two paths.
pub fn issue(dir: &Path, names: &[String], out: &Path) -> Result<(PathBuf, PathBuf), CaError> {
    let (key_path, cert_path, name_path) = paths(dir);
    if !key_path.exists() {
        return Err(file_error(
            &key_path,
            "no school CA here: run `edudns ca init` first",
        ));
    }
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| file_error(p, e));
    let ca_key = KeyPair::from_pem(&read(&key_path)?)?;
    let ca_pem = read(&cert_path)?;
    let issuer = Issuer::new(ca_params(read(&name_path)?.trim()), ca_key);
    let mut params = CertificateParams::new(names.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, names[0].as_str());
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(397);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate()?;
    let leaf = params.signed_by(&key, &issuer)?;
    std::fs::create_dir_all(out).map_err(|e| file_error(out, e))?;
    let (crt, pem_key) = (out.join("dns.crt"), out.join("dns.key"));
    crate::admin::edit::write_private(&pem_key, key.serialize_pem().as_bytes())
        .map_err(|e| file_error(&pem_key, e))?;
    std::fs::write(&crt, format!("{}{}", leaf.pem(), ca_pem)).map_err(|e| file_error(&crt, e))?;
    Ok((crt, pem_key))
}

/// Mints and caches a certificate per SNI name, signed by the school CA.
pub struct MintingResolver {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    leaf_key: KeyPair,
    provider: Arc<CryptoProvider>,
    cache: DashMap<String, Arc<CertifiedKey>>,
}

impl std::fmt::Debug for MintingResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintingResolver")
            .field("cached", &self.cache.len())
            .finish()
    }
}

impl MintingResolver {
    /// Loads the CA from `dir`; `None` when there is none.
    pub fn load(dir: &Path) -> Result<Option<Self>, CaError> {
        let (key_path, cert_path, name_path) = paths(dir);
        if !key_path.exists() {
            return Ok(None);
        }
        let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| file_error(p, e));
        let key = KeyPair::from_pem(&read(&key_path)?)?;
        let name = read(&name_path)?;
        let cert_pem = read(&cert_path)?;
        let ca_der =
            pem_to_der(&cert_pem).ok_or_else(|| file_error(&cert_path, "not a PEM certificate"))?;
        Ok(Some(MintingResolver {
            issuer: Issuer::new(ca_params(name.trim()), key),
            ca_der,
            leaf_key: KeyPair::generate()?,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            cache: DashMap::new(),
        }))
    }

    fn mint(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        if let Some(found) = self.cache.get(host) {
            return Some(found.clone());
        }
        let mut params = CertificateParams::new(vec![host.to_string()]).ok()?;
        params.distinguished_name.push(DnType::CommonName, host);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(30);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let leaf = params.signed_by(&self.leaf_key, &self.issuer).ok()?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let signing = self.provider.key_provider.load_private_key(key_der).ok()?;
        let certified = Arc::new(CertifiedKey::new(
            vec![leaf.der().clone(), self.ca_der.clone()],
            signing,
        ));
        if self.cache.len() >= MAX_CACHED {
            self.cache.clear();
        }
        self.cache.insert(host.to_string(), certified.clone());
        Some(certified)
    }

    /// A rustls server configuration that mints per SNI.
    pub fn server_config(self) -> Result<Arc<rustls::ServerConfig>, CaError> {
        let provider = self.provider.clone();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for MintingResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = crate::lists::name::normalize(hello.server_name()?).ok()?;
        self.mint(&name)
    }
}

/// The first certificate of a PEM text, as DER.
fn pem_to_der(pem: &str) -> Option<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).ok()
}
