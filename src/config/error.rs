//! Configuration errors: each names the file, the key path and the line.

use std::fmt;
use std::path::PathBuf;

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Key path in the TOML document, e.g. `school[0].networks[1]`.
    pub key: String,
    /// 1-based line in the file (0 when the problem is not tied to a line).
    pub line: usize,
    pub message: String,
}

/// Everything wrong with one configuration file; loading collects all issues
/// instead of stopping at the first.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no central policy at {path} ({source}): edudns fetches it from {url} when it starts; check that the office's server is reachable and the token is valid"
    )]
    CentralPolicy {
        path: PathBuf,
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_invalid(path, issues))]
    Invalid {
        path: PathBuf,
        issues: Vec<ConfigIssue>,
    },
}

impl ConfigError {
    /// The issues, for tests and the API (empty for read errors).
    pub fn issues(&self) -> &[ConfigIssue] {
        match self {
            ConfigError::Read { .. } | ConfigError::CentralPolicy { .. } => &[],
            ConfigError::Invalid { issues, .. } => issues,
        }
    }
}

fn render_invalid(path: &std::path::Path, issues: &[ConfigIssue]) -> String {
    let mut out = format!(
        "{} has {} error{}:",
        path.display(),
        issues.len(),
        if issues.len() == 1 { "" } else { "s" }
    );
    for issue in issues {
        out.push_str(&format!("\n  {}", IssueAt { path, issue }));
    }
    out
}

/// Renders `file:line: key: message`, the shape editors and grep understand.
pub struct IssueAt<'a> {
    pub path: &'a std::path::Path,
    pub issue: &'a ConfigIssue,
}

impl fmt::Display for IssueAt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.issue.key.is_empty() {
            "(top level)"
        } else {
            &self.issue.key
        };
        write!(
            f,
            "{}:{}: {}: {}",
            self.path.display(),
            self.issue.line,
            key,
            self.issue.message
        )
    }
}

/// Maps byte offsets of the source text to 1-based line numbers.
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    pub fn line_of(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_maps_offsets_to_lines() {
        let index = LineIndex::new("a\nbc\n\nd");
        assert_eq!(index.line_of(0), 1);
        assert_eq!(index.line_of(2), 2);
        assert_eq!(index.line_of(3), 2);
        assert_eq!(index.line_of(5), 3);
        assert_eq!(index.line_of(6), 4);
    }
}
