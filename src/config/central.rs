//! `[central]`: the policy tables of a node come from the education office.
//!
//! The node's own file keeps what belongs to the machine (listeners,
//! upstreams, sinkhole, statistics, `[central]` itself); the office's
//! document holds only the policy tables ([`POLICY_TABLES`]). The two are
//! validated as one text — the local file, then the policy — by the same
//! code as any configuration, so a central policy is checked exactly like a
//! local edit. Issues inside the policy part name the policy's own line.
//!
//! The last good copy lives in `central.cache_file`; `load` reads it, so a
//! node restarts with the policy it had even when the office is unreachable.
//! Fetching (conditional GET, then validate, then swap) is in
//! [`crate::office::pull`].

use super::error::{ConfigError, ConfigIssue};
use super::types::{Config, ListRoot};
use super::validate;
use std::path::{Path, PathBuf};

/// The tables a central policy holds and a node's own file must not.
pub const POLICY_TABLES: &[&str] = &["office", "category", "band", "school"];

pub const DEFAULT_CACHE_NAME: &str = "central-policy.toml";

/// What a node's own file says about its central policy, read with a plain
/// TOML parse (before the combined text can be validated). `None` when the
/// file has no `[central]` table or is not TOML at all (the full parse then
/// reports why).
#[derive(Debug, Clone, PartialEq)]
pub struct CentralRef {
    pub url: String,
    pub token_file: Option<PathBuf>,
    pub cache_file: PathBuf,
}

pub fn central_ref(local: &str, base_dir: &Path) -> Option<CentralRef> {
    let table: toml::Table = local.parse().ok()?;
    let central = table.get("central")?.as_table()?;
    let text = |key: &str| central.get(key).and_then(|v| v.as_str());
    let cache_file = match text("cache_file") {
        Some(path) => base_dir.join(path),
        None => {
            let database = table
                .get("stats")
                .and_then(|s| s.get("database"))
                .and_then(|v| v.as_str())
                .unwrap_or("stats.sqlite");
            let database = base_dir.join(database);
            database
                .parent()
                .unwrap_or(base_dir)
                .join(DEFAULT_CACHE_NAME)
        }
    };
    Some(CentralRef {
        url: text("url")?.trim().to_string(),
        token_file: text("token_file").map(|p| base_dir.join(p)),
        cache_file,
    })
}

/// Validates the node's file with a central policy, as one configuration.
/// `policy_path` is where the policy text came from (for messages).
pub fn parse_with_policy(
    path: &Path,
    local: &str,
    policy: &str,
    policy_path: &Path,
    root: ListRoot,
) -> Result<Config, ConfigError> {
    let mut issues = local_holds_policy(local);
    issues.extend(policy_shape(policy, policy_path));
    if !issues.is_empty() {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            issues,
        });
    }
    let (text, offset) = combine(local, policy);
    validate::parse(&text, path, root).map_err(|error| match error {
        ConfigError::Invalid { path, issues } => ConfigError::Invalid {
            path,
            issues: issues
                .into_iter()
                .map(|issue| attribute(issue, offset, policy_path))
                .collect(),
        },
        other => other,
    })
}

/// The local file, then a marker line, then the policy. Returns the text and
/// the number of lines before the policy's first line.
fn combine(local: &str, policy: &str) -> (String, usize) {
    let mut text = String::with_capacity(local.len() + policy.len() + 64);
    text.push_str(local);
    if !local.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# ---- central policy ----\n");
    let offset = text.matches('\n').count();
    text.push_str(policy);
    (text, offset)
}

/// An issue past `offset` is in the policy: it names the policy's file and line.
fn attribute(issue: ConfigIssue, offset: usize, policy_path: &Path) -> ConfigIssue {
    if issue.line <= offset {
        return issue;
    }
    let line = issue.line - offset;
    ConfigIssue {
        key: format!(
            "central policy {}:{line}: {}",
            policy_path.display(),
            issue.key
        ),
        line: 0,
        message: issue.message,
    }
}

/// A node's own file with `[central]` must leave the policy tables to the office.
fn local_holds_policy(local: &str) -> Vec<ConfigIssue> {
    let Ok(table) = local.parse::<toml::Table>() else {
        return Vec::new();
    };
    POLICY_TABLES
        .iter()
        .filter(|key| table.contains_key(**key))
        .map(|key| ConfigIssue {
            key: (*key).to_string(),
            line: header_line(local, key),
            message: format!(
                "[{key}] comes from the central policy ([central] url): remove it from this file, or remove [central]"
            ),
        })
        .collect()
}

/// The policy document: TOML holding nothing but [`POLICY_TABLES`].
fn policy_shape(policy: &str, policy_path: &Path) -> Vec<ConfigIssue> {
    let place = |line: usize| format!("central policy {}:{line}", policy_path.display());
    match policy.parse::<toml::Table>() {
        Err(error) => {
            let line = error
                .span()
                .map(|s| super::error::LineIndex::new(policy).line_of(s.start))
                .unwrap_or(0);
            vec![ConfigIssue {
                key: place(line),
                line: 0,
                message: format!("not TOML: {}", error.message().trim()),
            }]
        }
        Ok(table) => table
            .keys()
            .filter(|key| !POLICY_TABLES.contains(&key.as_str()))
            .map(|key| ConfigIssue {
                key: format!("{}: {key}", place(header_line(policy, key))),
                line: 0,
                message: format!(
                    "a central policy holds only {}; [{key}] belongs in each node's own file",
                    POLICY_TABLES.join(", ")
                ),
            })
            .collect(),
    }
}

/// The first line declaring `key` as a table, array of tables or top-level key.
fn header_line(text: &str, key: &str) -> usize {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            let bare = line.trim_start_matches('[').trim_start();
            (line.starts_with('[')
                && bare.starts_with(key)
                && bare[key.len()..].trim_start().starts_with([']', '.']))
                || (line.starts_with(key) && line[key.len()..].trim_start().starts_with('='))
        })
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: &str = r#"[upstream]
servers = ["192.0.2.53"]

[blocking]
sinkhole_ipv4 = "10.0.0.1"

[central]
url = "https://office.example/api/v1/policy"
token_file = "central.token"
"#;

    const POLICY: &str = r#"[[category]]
id = "gambling"
lists = ["g.txt"]

[[band]]
id = "kids"
block = ["gambling"]

[[school]]
id = "s1"
networks = ["10.1.0.0/16"]
"#;

    fn parse(local: &str, policy: &str) -> Result<super::super::Config, ConfigError> {
        parse_with_policy(
            Path::new("/etc/edudns/edudns.toml"),
            local,
            policy,
            Path::new("/var/lib/edudns/central-policy.toml"),
            ListRoot::Directory("/etc/edudns".into()),
        )
    }

    #[test]
    fn the_reference_is_read_before_validation() {
        let found = central_ref(LOCAL, Path::new("/etc/edudns")).unwrap();
        assert_eq!(found.url, "https://office.example/api/v1/policy");
        assert_eq!(
            found.token_file.as_deref(),
            Some(Path::new("/etc/edudns/central.token"))
        );
        // Beside the default database.
        assert_eq!(
            found.cache_file,
            Path::new("/etc/edudns/central-policy.toml")
        );
        let with_db = format!("{LOCAL}\n[stats]\ndatabase = \"/var/lib/edudns/stats.sqlite\"\n");
        assert_eq!(
            central_ref(&with_db, Path::new("/etc/edudns"))
                .unwrap()
                .cache_file,
            Path::new("/var/lib/edudns/central-policy.toml")
        );
        assert_eq!(central_ref(POLICY, Path::new("/")), None);
        assert_eq!(central_ref("not [toml", Path::new("/")), None);
    }

    #[test]
    fn local_file_and_policy_validate_as_one() {
        let config = parse(LOCAL, POLICY).unwrap();
        assert_eq!(config.bands[0].id, "kids");
        assert_eq!(config.schools[0].id, "s1");
        let central = config.central.unwrap();
        assert_eq!(
            central.interval,
            super::super::CentralConfig::DEFAULT_INTERVAL
        );
        assert_eq!(central.url, "https://office.example/api/v1/policy");
    }

    #[test]
    fn issues_in_the_policy_name_the_policy_line() {
        let bad = POLICY.replace("block = [\"gambling\"]", "block = [\"gambling\", \"nope\"]");
        let error = parse(LOCAL, &bad).unwrap_err();
        let issues = error.issues();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(
            issues[0].key.starts_with(
                "central policy /var/lib/edudns/central-policy.toml:7: band[0].block[1]"
            ),
            "{issues:?}"
        );
        assert_eq!(issues[0].line, 0);
        // A local issue keeps its own line.
        let local = LOCAL.replace("10.0.0.1", "not-an-ip");
        let error = parse(&local, POLICY).unwrap_err();
        assert_eq!(error.issues()[0].line, 5, "{:?}", error.issues());
    }

    #[test]
    fn the_policy_holds_only_policy_tables_and_the_node_none() {
        let error = parse(
            LOCAL,
            &format!("{POLICY}\n[upstream]\nservers = [\"203.0.113.1\"]\n"),
        )
        .unwrap_err();
        assert!(
            error.issues()[0].key.ends_with(":13: upstream"),
            "{:?}",
            error.issues()
        );
        let local = format!("{LOCAL}\n[[band]]\nid = \"local\"\nblock = []\n");
        let error = parse(&local, POLICY).unwrap_err();
        assert_eq!(error.issues()[0].key, "band");
        assert_eq!(error.issues()[0].line, 11);
        let error = parse(LOCAL, "[[band]\n").unwrap_err();
        assert!(
            error.issues()[0].message.starts_with("not TOML"),
            "{:?}",
            error.issues()
        );
    }

    #[test]
    fn interval_and_url_are_checked() {
        let local =
            LOCAL.replace("https://office.example", "ftp://office.example") + "interval = \"0s\"\n";
        let error = parse(&local, POLICY).unwrap_err();
        let keys: Vec<&str> = error.issues().iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["central.url", "central.interval"]);
    }
}
