//! Protected names: what school work and the devices need, which no
//! subscribed list may block (`blocklists/protected.txt`).
//!
//! A downloaded list is third-party data: a line that would block
//! `google.com`, an education platform or the 111 hotline is bad data, so it
//! is ignored and counted per list. The school's and the office's explicit
//! `deny` entries, the curated lists and local list files are not filtered:
//! those are decisions somebody in charge made.
//!
//! Two kinds of line: `name` protects exactly that name (an entry equal to
//! it or to a parent domain would block it); `*.name` protects the name and
//! its whole subtree (an entry at, under or above it).

use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The set shipped in the repository, compiled in.
pub const EMBEDDED: &str = include_str!("../../blocklists/protected.txt");

/// Where a protected name comes from: the file and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protection<'a> {
    /// The protected name as written (`*.edu.vn`, `login.live.com`).
    pub rule: &'a str,
    pub line: u32,
}

/// A bad line of a protected-names file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {text:?}: {reason}")]
pub struct ProtectedLineError {
    pub line: u32,
    pub text: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
struct Named {
    rule: Box<str>,
    line: u32,
}

/// The parsed set, ready for one hash lookup per label of an entry.
#[derive(Clone, Default)]
pub struct ProtectedNames {
    /// `*.name` rules: the name and its subtree.
    subtrees: HashMap<Box<str>, Named>,
    /// Exact rules.
    exact: HashMap<Box<str>, Named>,
    /// Every proper parent domain of a protected name, with one rule it
    /// covers: a list entry here would block that rule's names.
    parents: HashMap<Box<str>, Named>,
    /// Where the set was read from (for messages).
    pub source: String,
    /// SHA-256 of the text (the compiled-lists key includes it).
    pub sha256: String,
    /// Number of rules.
    pub len: usize,
}

impl std::fmt::Debug for ProtectedNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProtectedNames({} rules from {})", self.len, self.source)
    }
}

impl ProtectedNames {
    /// The set compiled into the binary.
    pub fn embedded() -> ProtectedNames {
        ProtectedNames::parse(EMBEDDED, "blocklists/protected.txt (built in)")
            .expect("the shipped protected names parse")
    }

    /// Parses a protected-names file. Every bad line is reported (with its
    /// number); a file with any bad line is refused as a whole, because a
    /// typo here would silently unprotect a name.
    pub fn parse(text: &str, source: &str) -> Result<ProtectedNames, Vec<ProtectedLineError>> {
        let mut set = ProtectedNames {
            source: source.to_string(),
            sha256: Sha256::digest(text.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            ..ProtectedNames::default()
        };
        let mut errors = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index as u32 + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let (subtree, name) = match content.strip_prefix("*.") {
                Some(rest) => (true, rest),
                None => (false, content),
            };
            let normalized = match super::name::normalize(name) {
                Ok(name) if name.contains('.') => name.into_owned(),
                Ok(_) => {
                    errors.push(ProtectedLineError {
                        line,
                        text: raw.to_string(),
                        reason: "a top-level domain alone cannot be protected".into(),
                    });
                    continue;
                }
                Err(error) => {
                    errors.push(ProtectedLineError {
                        line,
                        text: raw.to_string(),
                        reason: error.to_string(),
                    });
                    continue;
                }
            };
            let named = Named {
                rule: content.into(),
                line,
            };
            let mut rest = normalized.as_str();
            while let Some((_, parent)) = rest.split_once('.') {
                set.parents
                    .entry(parent.into())
                    .or_insert_with(|| named.clone());
                rest = parent;
            }
            let table = if subtree {
                &mut set.subtrees
            } else {
                &mut set.exact
            };
            table.insert(normalized.into(), named);
            set.len += 1;
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// The protected name a list entry for `domain` (normalised) would
    /// block, if any: the entry is then ignored.
    pub fn blocked_by_entry(&self, domain: &str) -> Option<Protection<'_>> {
        let found = self
            .exact
            .get(domain)
            .or_else(|| self.parents.get(domain))
            .or_else(|| self.covering_subtree(domain));
        found.map(|named| Protection {
            rule: &named.rule,
            line: named.line,
        })
    }

    /// The rule protecting the queried `name` (normalised), if any.
    pub fn protecting(&self, name: &str) -> Option<Protection<'_>> {
        self.exact
            .get(name)
            .or_else(|| self.covering_subtree(name))
            .map(|named| Protection {
                rule: &named.rule,
                line: named.line,
            })
    }

    /// A `*.` rule for `name` or one of its parents.
    fn covering_subtree(&self, name: &str) -> Option<&Named> {
        if self.subtrees.is_empty() {
            return None;
        }
        let mut rest = name;
        loop {
            if let Some(named) = self.subtrees.get(rest) {
                return Some(named);
            }
            rest = rest.split_once('.')?.1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> ProtectedNames {
        ProtectedNames::parse(text, "test").unwrap()
    }

    #[test]
    fn an_exact_rule_drops_the_name_and_its_parents_only() {
        let p = set("login.live.com\n");
        assert_eq!(p.blocked_by_entry("login.live.com").unwrap().line, 1);
        assert!(p.blocked_by_entry("live.com").is_some());
        assert!(p.blocked_by_entry("com").is_some());
        assert!(p.blocked_by_entry("evil.live.com").is_none());
        assert!(p.blocked_by_entry("x.login.live.com").is_none());
        assert!(p.protecting("login.live.com").is_some());
        assert!(p.protecting("x.login.live.com").is_none());
    }

    #[test]
    fn a_subtree_rule_drops_entries_at_under_and_above_it() {
        let p = set("# comment\n\n*.edu.vn\n*.google.com # Workspace\n");
        for entry in [
            "edu.vn",
            "hanoi.edu.vn",
            "a.b.edu.vn",
            "vn",
            "google.com",
            "classroom.google.com",
            "com",
        ] {
            assert!(p.blocked_by_entry(entry).is_some(), "{entry}");
        }
        for entry in [
            "edu.vn.example",
            "notgoogle.com",
            "google.co",
            "pornhub.com",
            "gov.vn",
        ] {
            assert!(p.blocked_by_entry(entry).is_none(), "{entry}");
        }
        let rule = p.protecting("truong-a.hanoi.edu.vn").unwrap();
        assert_eq!((rule.rule, rule.line), ("*.edu.vn", 3));
        assert_eq!(
            p.protecting("docs.google.com").unwrap().rule,
            "*.google.com"
        );
    }

    #[test]
    fn bad_lines_are_all_reported_with_their_numbers() {
        let errors = ProtectedNames::parse("ok.vn\nbad name\n*.com\nx..y\n", "t").unwrap_err();
        let lines: Vec<u32> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4]);
    }

    #[test]
    fn the_shipped_set_covers_what_the_issue_names() {
        let p = ProtectedNames::embedded();
        for name in [
            "moet.gov.vn",
            "csdl.moet.gov.vn",
            "thcs-nguyendu.hanoi.edu.vn",
            "classroom.google.com",
            "teams.microsoft.com",
            "login.microsoftonline.com",
            "chat.zalo.me",
            "vi.wikipedia.org",
            "www.khanacademy.org",
            "tongdai111.vn",
            "www.tongdai111.vn",
            "ctldl.windowsupdate.com",
            "www.msftconnecttest.com",
            "captive.apple.com",
            "connectivitycheck.gstatic.com",
            "0.pool.ntp.org",
            "time.windows.com",
            "ocsp.digicert.com",
            "r11.o.lencr.org",
        ] {
            assert!(p.protecting(name).is_some(), "{name} is not protected");
        }
        assert!(
            p.blocked_by_entry("google.com").is_some(),
            "a list blocking google.com is bad data"
        );
        assert!(p.protecting("pornhub.com").is_none());
        assert!(p.protecting("facebook.com").is_none());
    }
}
