//! Report integrity: Ed25519 keys per school, signed JSON reports, and
//! verification. The signature covers the canonical JSON of the report
//! (serde_json's sorted-key form), so whitespace changes do not matter but
//! any change of content does.

use super::report::Report;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A report with its signature: the file `edudns report --format json` writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedReport {
    pub report: Report,
    /// `None` when the school has no key yet (`edudns keys init`).
    pub signature: Option<SignatureInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignatureInfo {
    pub algorithm: String,
    /// Hex of the 32-byte Ed25519 public key.
    pub public_key: String,
    /// Hex of the 64-byte signature.
    pub value: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Lower-case hex of `bytes` (keys, signatures, digests).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The bytes that are signed.
fn canonical(report: &Report) -> Vec<u8> {
    let value = serde_json::to_value(report).unwrap_or_default();
    serde_json::to_vec(&value).unwrap_or_default()
}

/// Paths of a school's key pair in `dir`.
pub fn key_paths(dir: &Path, school: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{school}.key")),
        dir.join(format!("{school}.pub")),
    )
}

/// Creates a new key pair for `school` (mode 0600 for the private key);
/// refuses to overwrite an existing one.
pub fn init_keys(dir: &Path, school: &str) -> Result<(PathBuf, PathBuf), SignError> {
    let (private, public) = key_paths(dir, school);
    let key_error = |path: &Path, message: String| SignError::Key {
        path: path.to_path_buf(),
        message,
    };
    if private.exists() {
        return Err(key_error(
            &private,
            "exists already; remove it first to make a new key".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| key_error(dir, e.to_string()))?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| key_error(&private, format!("no randomness: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&private)
        .map_err(|e| key_error(&private, e.to_string()))?;
    file.write_all(format!("{}\n", hex(&seed)).as_bytes())
        .map_err(|e| key_error(&private, e.to_string()))?;
    std::fs::write(
        &public,
        format!("{}\n", hex(key.verifying_key().as_bytes())),
    )
    .map_err(|e| key_error(&public, e.to_string()))?;
    Ok((private, public))
}

fn read_hex<const N: usize>(path: &Path) -> Result<[u8; N], SignError> {
    let text = std::fs::read_to_string(path).map_err(|e| SignError::Key {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    unhex(text.trim())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SignError::Key {
            path: path.to_path_buf(),
            message: format!("not a {N}-byte hex key"),
        })
}

/// Signs `report` with the school's private key.
pub fn sign(report: Report, private_key: &Path) -> Result<SignedReport, SignError> {
    let key = SigningKey::from_bytes(&read_hex::<32>(private_key)?);
    let signature = key.sign(&canonical(&report));
    Ok(SignedReport {
        report,
        signature: Some(SignatureInfo {
            algorithm: "ed25519".into(),
            public_key: hex(key.verifying_key().as_bytes()),
            value: hex(&signature.to_bytes()),
        }),
    })
}

/// Signs when the private key exists, else returns the report unsigned.
pub fn sign_if_key(report: Report, private_key: &Path) -> Result<SignedReport, SignError> {
    if private_key.exists() {
        sign(report, private_key)
    } else {
        Ok(SignedReport {
            report,
            signature: None,
        })
    }
}

/// Checks the signature; with `expected_key` (a `.pub` file) also that the
/// report was signed by that key, not merely by some key.
pub fn verify(signed: &SignedReport, expected_key: Option<&Path>) -> Result<(), SignError> {
    let Some(signature) = &signed.signature else {
        return Err(SignError::Invalid("the report is not signed".into()));
    };
    if signature.algorithm != "ed25519" {
        return Err(SignError::Invalid(format!(
            "unknown algorithm {:?}",
            signature.algorithm
        )));
    }
    let public: [u8; 32] = unhex(&signature.public_key)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SignError::Invalid("public key is not 32 bytes of hex".into()))?;
    if let Some(path) = expected_key
        && read_hex::<32>(path)? != public
    {
        return Err(SignError::Invalid(format!(
            "signed by another key than {}",
            path.display()
        )));
    }
    let key = VerifyingKey::from_bytes(&public).map_err(|e| SignError::Invalid(e.to_string()))?;
    let bytes: [u8; 64] = unhex(&signature.value)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SignError::Invalid("signature is not 64 bytes of hex".into()))?;
    key.verify(&canonical(&signed.report), &Signature::from_bytes(&bytes))
        .map_err(|_| {
            SignError::Invalid(
                "signature does not match the content: the report was changed".into(),
            )
        })
}

/// The public keys of `school` in `dir`: `<school>.pub` and, for schools
/// served by several replicas that each sign with their own key,
/// `<school>.<replica>.pub` (school ids have no dot, so the names cannot
/// clash). Sorted; empty when there is none.
pub fn school_public_keys(dir: &Path, school: &str) -> Result<Vec<PathBuf>, SignError> {
    let entries = std::fs::read_dir(dir).map_err(|e| SignError::Key {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let replica_prefix = format!("{school}.");
    let mut keys: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".pub"))
                .is_some_and(|stem| {
                    stem == school
                        || stem
                            .strip_prefix(&replica_prefix)
                            .is_some_and(|replica| !replica.is_empty())
                })
        })
        .collect();
    keys.sort();
    Ok(keys)
}

/// Checks the signature and that it was made by one of `keys` (`.pub`
/// files); returns the one that matched.
pub fn verify_any<'a>(signed: &SignedReport, keys: &'a [PathBuf]) -> Result<&'a Path, SignError> {
    verify(signed, None)?;
    let signer = signed
        .signature
        .as_ref()
        .map(|s| s.public_key.to_ascii_lowercase())
        .unwrap_or_default();
    for key in keys {
        if hex(&read_hex::<32>(key)?) == signer {
            return Ok(key);
        }
    }
    let names: Vec<String> = keys.iter().map(|k| k.display().to_string()).collect();
    Err(SignError::Invalid(format!(
        "signed by a key that is none of {}",
        if names.is_empty() {
            "(no key given)".to_string()
        } else {
            names.join(", ")
        }
    )))
}
