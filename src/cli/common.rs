//! What every command shares: loading the configuration and the
//! statistics database, printing a failure with its exit code, writing a
//! result to stdout or a file.
//!
//! Uses: `config`, `app::reload` (the config source), `stats::store`.

use crate::app::reload::ConfigSource;
use crate::config;
use crate::stats::store::Store;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Default configuration file, relative to the working directory.
pub const DEFAULT_CONFIG: &str = "config/edudns.toml";

/// Exit codes (sysexits-style).
/// Bad input (EX_DATAERR): a tampered or unreadable report.
pub const EXIT_DATA: u8 = 65;
/// Bad usage (EX_USAGE).
pub const EXIT_USAGE: u8 = 64;
/// The configuration is wrong (EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;
/// The service could not start (EX_UNAVAILABLE).
pub const EXIT_UNAVAILABLE: u8 = 69;

pub fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("edudns: {message}");
    ExitCode::from(code)
}

pub fn load_config(source: &ConfigSource) -> Result<config::Config, ExitCode> {
    match source {
        ConfigSource::File(path) => config::load(path),
        ConfigSource::Embedded => config::load_embedded(),
    }
    .map_err(|e| fail(EXIT_CONFIG, e))
}

/// The configuration and its statistics database.
pub fn open(source: &ConfigSource) -> Result<(config::Config, Store), ExitCode> {
    let config = load_config(source)?;
    let store = Store::open(&config.stats.database).map_err(|e| fail(1, e))?;
    Ok((config, store))
}

pub fn write_out(output: Option<&Path>, text: &str) -> ExitCode {
    match output {
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(1, format!("cannot write {}: {e}", path.display())),
        },
    }
}

/// The configuration named on the command line, else the default file
/// when it exists, else the embedded demo configuration.
pub fn source_for(config: Option<PathBuf>) -> ConfigSource {
    match config {
        Some(path) => ConfigSource::File(path),
        None if Path::new(DEFAULT_CONFIG).exists() => ConfigSource::File(DEFAULT_CONFIG.into()),
        None => ConfigSource::Embedded,
    }
}
