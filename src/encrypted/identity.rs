//! Band tokens → who is asking. A token is looked up in the band-token
//! file (re-read when it changes, so a rotation or a revocation applies to
//! the next connection) and compared in constant time; it is never logged.

use crate::admin::tokens::Verifier;
use crate::client::NamedBand;
use std::path::PathBuf;
use tracing::warn;

/// Who an encrypted connection or request speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// No token: the source address decides, as for UDP.
    Address,
    /// A valid band token.
    Named(NamedBand),
    /// A token that is not valid (wrong, revoked, unknown band).
    Refused,
}

pub struct Identities {
    /// DoT server names `<token>.<domain>`; `None`: server names are ignored.
    domain: Option<String>,
    file: PathBuf,
    verifier: Verifier,
}

impl Identities {
    pub fn new(domain: Option<String>, file: PathBuf) -> Self {
        Identities {
            domain,
            file,
            verifier: Verifier::default(),
        }
    }

    /// The identity a DoT server name (SNI) gives: `<token>.<domain>` names
    /// a band; the bare domain, another name or none leaves the address
    /// to decide.
    pub fn from_server_name(&self, server_name: Option<&str>) -> Identity {
        let (Some(domain), Some(name)) = (&self.domain, server_name) else {
            return Identity::Address;
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        match name
            .strip_suffix(domain.as_str())
            .and_then(|rest| rest.strip_suffix('.'))
        {
            Some(label) if !label.is_empty() && !label.contains('.') => self.from_token(label),
            _ => Identity::Address,
        }
    }

    /// The identity of a token from a server name or a DoH path.
    pub fn from_token(&self, token: &str) -> Identity {
        match self.verifier.verify_band(&self.file, token) {
            Ok(Some(found)) => Identity::Named(NamedBand {
                school: found.school,
                band: found.band,
            }),
            Ok(None) => Identity::Refused,
            Err(error) => {
                warn!(%error, "band tokens cannot be read; the token is refused");
                Identity::Refused
            }
        }
    }
}
