//! Configuration: raw TOML → validated [`Config`].
//!
//! Two stages, after ripgrep's flags: [`raw`] mirrors the file with serde
//! (unknown keys are errors), [`validate`] resolves names, parses addresses
//! and CIDRs, fills defaults and collects *every* problem with its key path
//! and line. `Snapshot::build` then compiles lists and policies from the
//! typed [`Config`]; `edudns check-config` runs the same path.
//!
//! [`central`] joins a node's own file with the office's policy tables
//! before that validation; [`error`] renders issues as `file:line: key:
//! message`.
//!
//! Uses: `crate::lists` (list formats, name normalization, the catalogue of
//! sources, protected names). Used by: nearly every room — `crate::snapshot`,
//! `crate::client`, `crate::policy`, `crate::lists`, `crate::counting`,
//! `crate::stats`, `crate::dns`, `crate::app`, `crate::admin`,
//! `crate::office`, `crate::web` and `crate::cli`.

pub mod central;
pub mod error;
pub mod raw;
mod types;
pub mod validate;

#[cfg(test)]
mod tests;

pub use error::{ConfigError, ConfigIssue};
pub use types::*;

use std::path::{Path, PathBuf};

/// The shipped configuration, compiled into the binary so `edudns serve`
/// works from any directory on a machine with nothing else installed.
pub const EMBEDDED_CONFIG: &str = include_str!("../../config/edudns.toml");

/// Name used in messages for the embedded configuration.
pub const EMBEDDED_CONFIG_NAME: &str = "<embedded config/edudns.toml>";

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    load_str(path, &text)
}

/// Validates `text` as the content of the file at `path` (relative list
/// paths resolve against its directory) — what `check-config` would say.
/// With `[central]`, the last fetched central policy is part of it.
pub fn load_str(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    if let Some(central) = central::central_ref(text, &base_dir) {
        let policy = std::fs::read_to_string(&central.cache_file).map_err(|source| {
            ConfigError::CentralPolicy {
                path: central.cache_file.clone(),
                url: central.url.clone(),
                source,
            }
        })?;
        return central::parse_with_policy(
            path,
            text,
            &policy,
            &central.cache_file,
            ListRoot::Directory(base_dir),
        );
    }
    validate::parse(text, path, ListRoot::Directory(base_dir))
}

/// Validates the embedded default configuration; its lists are embedded too.
pub fn load_embedded() -> Result<Config, ConfigError> {
    validate::parse(
        EMBEDDED_CONFIG,
        Path::new(EMBEDDED_CONFIG_NAME),
        ListRoot::Embedded,
    )
}
