//! API tokens: `edudns tokens create --role office|school:<id>|auditor`.
//!
//! A token is `edudns_<id>_<secret>`; the file keeps the id, a name, the role,
//! a random per-token salt and SHA-256(salt ‖ secret) — never the secret —
//! and is written atomically with mode 0600. Verification looks the id up
//! and compares the hashes in constant time. The file is re-read when it
//! changes, so `tokens revoke` takes effect on the next request.
//!
//! Band tokens (`--role band:<school>/<band>`) name who asks over encrypted
//! DNS instead (`encrypted/`): `<id>-<secret>` in lowercase hex, one DNS
//! label, so the same token fits a DoT server name and a DoH path. They
//! live in their own file (`encrypted_dns.tokens_file`): a token written
//! into a device profile never opens the API, and an API token never
//! names a band.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The education office: every school, every band, every endpoint.
    Office,
    /// A school's IT staff: that school's overrides and review queue.
    School(String),
    /// Reads reports and metrics only.
    Auditor,
}

impl Role {
    pub fn parse(text: &str) -> Result<Role, String> {
        match text {
            "office" => Ok(Role::Office),
            "auditor" => Ok(Role::Auditor),
            _ => match text.strip_prefix("school:") {
                Some(id) if !id.is_empty() => Ok(Role::School(id.to_string())),
                _ => Err(format!(
                    "unknown role {text:?}: expected office, school:<id> or auditor"
                )),
            },
        }
    }

    /// May this role act on `school`?
    pub fn covers_school(&self, school: &str) -> bool {
        match self {
            Role::Office => true,
            Role::School(id) => id == school,
            Role::Auditor => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Office => f.write_str("office"),
            Role::School(id) => write!(f, "school:{id}"),
            Role::Auditor => f.write_str("auditor"),
        }
    }
}

/// One stored token (no secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredToken {
    pub id: String,
    pub name: String,
    pub role: String,
    pub salt: String,
    pub sha256: String,
    pub created_at: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TokenFile {
    pub tokens: Vec<StoredToken>,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: String,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

fn file_error(path: &Path, message: impl fmt::Display) -> TokenError {
    TokenError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    hex(&bytes)
}

fn digest(salt: &str, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update(secret.as_bytes());
    hex(&hasher.finalize())
}

/// Constant-time equality of two strings of the same length.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Reads the token file (an absent file means no tokens).
pub fn read(path: &Path) -> Result<TokenFile, TokenError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| file_error(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokenFile::default()),
        Err(e) => Err(file_error(path, e)),
    }
}

fn write(path: &Path, file: &TokenFile) -> Result<(), TokenError> {
    let text = serde_json::to_string_pretty(file).map_err(|e| file_error(path, e))?;
    crate::admin::edit::write_private(path, text.as_bytes()).map_err(|e| file_error(path, e))
}

/// Creates a token; returns (the token to hand out — shown once, the stored entry).
pub fn create(path: &Path, role: &Role, name: &str) -> Result<(String, StoredToken), TokenError> {
    let (id, secret, stored) = store(path, &role.to_string(), name, 24)?;
    Ok((format!("edudns_{id}_{secret}"), stored))
}

/// The school and band a band token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BandToken {
    pub token_id: String,
    pub school: String,
    pub band: String,
}

/// `band:<school>/<band>` → (school, band).
pub fn parse_band_role(text: &str) -> Option<(&str, &str)> {
    let (school, band) = text.strip_prefix("band:")?.split_once('/')?;
    (!school.is_empty() && !band.is_empty()).then_some((school, band))
}

/// Creates a band token for encrypted DNS; returns (the token — shown
/// once, the stored entry).
pub fn create_band(
    path: &Path,
    school: &str,
    band: &str,
    name: &str,
) -> Result<(String, StoredToken), TokenError> {
    let (id, secret, stored) = store(path, &format!("band:{school}/{band}"), name, 16)?;
    Ok((format!("{id}-{secret}"), stored))
}

/// Adds a token with a fresh id, a secret of `secret_bytes` random bytes
/// and a salt to the file.
fn store(
    path: &Path,
    role: &str,
    name: &str,
    secret_bytes: usize,
) -> Result<(String, String, StoredToken), TokenError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(TokenError::Invalid(
            "--name must be 1 to 64 printable characters".into(),
        ));
    }
    let mut file = read(path)?;
    let id = random_hex(4);
    let secret = random_hex(secret_bytes);
    let salt = random_hex(16);
    let stored = StoredToken {
        id: id.clone(),
        name: name.to_string(),
        role: role.to_string(),
        sha256: digest(&salt, &secret),
        salt,
        created_at: jiff::Timestamp::now().as_second(),
    };
    file.tokens.push(stored.clone());
    write(path, &file)?;
    Ok((id, secret, stored))
}

/// Removes a token by id; false when there was none.
pub fn revoke(path: &Path, id: &str) -> Result<bool, TokenError> {
    let mut file = read(path)?;
    let before = file.tokens.len();
    file.tokens.retain(|t| t.id != id);
    if file.tokens.len() == before {
        return Ok(false);
    }
    write(path, &file)?;
    Ok(true)
}

/// Checks bearer tokens against the file, re-reading it when it changes.
#[derive(Default)]
pub struct Verifier {
    cached: Mutex<Option<Cached>>,
}

/// The token file as last read: path, modification time, length, content.
type Cached = (PathBuf, Option<SystemTime>, u64, std::sync::Arc<TokenFile>);

impl Verifier {
    fn file(&self, path: &Path) -> Result<std::sync::Arc<TokenFile>, TokenError> {
        let meta = std::fs::metadata(path).ok();
        let stamp = (
            meta.as_ref().and_then(|m| m.modified().ok()),
            meta.as_ref().map_or(0, |m| m.len()),
        );
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((p, modified, len, file)) = cached.as_ref()
            && p == path
            && (*modified, *len) == stamp
        {
            return Ok(file.clone());
        }
        let file = std::sync::Arc::new(read(path)?);
        *cached = Some((path.to_path_buf(), stamp.0, stamp.1, file.clone()));
        Ok(file)
    }

    /// The stored entry `id` when `secret` is its secret (compared in
    /// constant time).
    fn matching(
        &self,
        path: &Path,
        id: &str,
        secret: &str,
    ) -> Result<Option<StoredToken>, TokenError> {
        let file = self.file(path)?;
        Ok(file
            .tokens
            .iter()
            .find(|t| t.id == id)
            .filter(|stored| same(&digest(&stored.salt, secret), &stored.sha256))
            .cloned())
    }

    /// The principal of `token`, or `None` when it is not a valid token.
    pub fn verify(&self, path: &Path, token: &str) -> Result<Option<Principal>, TokenError> {
        let Some((id, secret)) = token
            .trim()
            .strip_prefix("edudns_")
            .and_then(|rest| rest.split_once('_'))
        else {
            return Ok(None);
        };
        let Some(stored) = self.matching(path, id, secret)? else {
            return Ok(None);
        };
        let role = Role::parse(&stored.role).map_err(|e| file_error(path, e))?;
        Ok(Some(Principal {
            token_id: stored.id,
            name: stored.name,
            role,
        }))
    }

    /// The school and band of a band token (`<id>-<secret>`, any letter
    /// case: server names are case-insensitive), or `None` when it is not
    /// a valid one. The secret is compared in constant time.
    pub fn verify_band(&self, path: &Path, token: &str) -> Result<Option<BandToken>, TokenError> {
        let token = token.trim().to_ascii_lowercase();
        let Some((id, secret)) = token.split_once('-') else {
            return Ok(None);
        };
        let Some(stored) = self.matching(path, id, secret)? else {
            return Ok(None);
        };
        let Some((school, band)) = parse_band_role(&stored.role) else {
            return Ok(None);
        };
        Ok(Some(BandToken {
            token_id: stored.id.clone(),
            school: school.to_string(),
            band: band.to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_tokens_verify_and_revoked_or_altered_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let (token, stored) = create(&path, &Role::School("s1".into()), "Thầy Nam").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        let secret = token.rsplit('_').next().unwrap();
        assert!(!text.contains(secret), "the secret must not be stored");
        let verifier = Verifier::default();
        let who = verifier.verify(&path, &token).unwrap().unwrap();
        assert_eq!(who.role, Role::School("s1".into()));
        assert_eq!(who.name, "Thầy Nam");
        let mut altered = token.clone();
        altered.pop();
        altered.push(if token.ends_with('0') { '1' } else { '0' });
        assert!(verifier.verify(&path, &altered).unwrap().is_none());
        assert!(verifier.verify(&path, "garbage").unwrap().is_none());
        assert!(revoke(&path, &stored.id).unwrap());
        assert!(verifier.verify(&path, &token).unwrap().is_none());
    }

    #[test]
    fn band_tokens_are_one_dns_label_and_never_api_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dns-tokens.json");
        let (token, stored) = create_band(&path, "s1", "thcs", "Máy tính bảng 6A").unwrap();
        assert!(token.len() <= 63, "{token} is longer than a DNS label");
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-'),
            "{token}"
        );
        let verifier = Verifier::default();
        let found = verifier.verify_band(&path, &token).unwrap().unwrap();
        assert_eq!((found.school.as_str(), found.band.as_str()), ("s1", "thcs"));
        // Server names arrive in any letter case.
        let upper = token.to_ascii_uppercase();
        assert!(verifier.verify_band(&path, &upper).unwrap().is_some());
        let mut altered = token.clone();
        altered.pop();
        altered.push(if token.ends_with('0') { '1' } else { '0' });
        assert!(verifier.verify_band(&path, &altered).unwrap().is_none());
        // The band file's entries never pass as API tokens, and the
        // reverse.
        let api = format!("edudns_{}_{}", stored.id, &token[9..]);
        assert!(
            verifier
                .verify(&path, &api)
                .is_err_and(|e| e.to_string().contains("band:"))
        );
        let (api_token, _) = create(&path, &Role::Office, "office").unwrap();
        let (id, secret) = api_token["edudns_".len()..].split_once('_').unwrap();
        assert!(
            verifier
                .verify_band(&path, &format!("{id}-{secret}"))
                .unwrap()
                .is_none()
        );
        assert!(revoke(&path, &stored.id).unwrap());
        assert!(verifier.verify_band(&path, &token).unwrap().is_none());
    }

    #[test]
    fn roles_parse_and_scope() {
        assert_eq!(Role::parse("office").unwrap(), Role::Office);
        assert_eq!(Role::parse("school:a").unwrap(), Role::School("a".into()));
        assert!(Role::parse("school:").is_err());
        assert!(Role::parse("admin").is_err());
        assert!(Role::School("a".into()).covers_school("a"));
        assert!(!Role::School("a".into()).covers_school("b"));
        assert!(!Role::Auditor.covers_school("a"));
    }
}
