//! An independent, deliberately simple reader of the list formats the
//! catalogue uses (hosts, plain domains, `||name^`), written apart from
//! edudns's parser so that the benchmark checks the parser instead of
//! repeating it. Each listed name keeps its line, for the miss report.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

/// A name a list line asks to block.
pub struct Listed {
    pub name: String,
    pub line: u32,
    pub text: String,
}

/// Why a line names nothing a DNS filter can block.
pub const EXCLUDED_IP: &str = "IP address";
pub const EXCLUDED_NOT_A_NAME: &str = "not a host name";
pub const EXCLUDED_SINGLE_LABEL: &str = "single label";
pub const EXCLUDED_LOCAL: &str = "localhost-style";
pub const EXCLUDED_EXCEPTION: &str = "exception rule";
pub const EXCLUDED_MODIFIER: &str = "browser-only rule";

#[derive(Default)]
pub struct Read {
    /// Unique names, first line that names each.
    pub listed: Vec<Listed>,
    /// Reason → lines.
    pub excluded: BTreeMap<&'static str, usize>,
    /// Lines with at least one rule (not comments or blank).
    pub rule_lines: usize,
}

pub fn read(text: &str) -> Read {
    let mut out = Read::default();
    let mut seen = HashSet::new();
    for (number, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('!') || line.starts_with('[') {
            continue;
        }
        out.rule_lines += 1;
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let names: Vec<&str> = if line.starts_with("@@") {
            *out.excluded.entry(EXCLUDED_EXCEPTION).or_default() += 1;
            continue;
        } else if let Some(rest) = line.strip_prefix("||") {
            let end = rest.find(['^', '$']).unwrap_or(rest.len());
            let modifiers = rest[end..].trim_start_matches('^');
            if !(modifiers.is_empty() || modifiers == "$important") {
                *out.excluded.entry(EXCLUDED_MODIFIER).or_default() += 1;
                continue;
            }
            vec![&rest[..end]]
        } else if tokens.len() > 1 && tokens[0].parse::<IpAddr>().is_ok() {
            tokens[1..].to_vec()
        } else {
            vec![tokens[0]]
        };
        for name in names {
            match clean(name) {
                Ok(name) => {
                    if seen.insert(name.clone()) {
                        out.listed.push(Listed {
                            name,
                            line: number as u32 + 1,
                            text: raw.to_string(),
                        });
                    }
                }
                Err(reason) => *out.excluded.entry(reason).or_default() += 1,
            }
        }
    }
    out
}

fn clean(name: &str) -> Result<String, &'static str> {
    let name = name.trim_end_matches('.');
    let name = name.strip_prefix("*.").unwrap_or(name);
    if name.parse::<IpAddr>().is_ok() {
        return Err(EXCLUDED_IP);
    }
    let lower = name.to_lowercase();
    if matches!(
        lower.as_str(),
        "localhost" | "localhost.localdomain" | "local" | "broadcasthost" | "0.0.0.0"
    ) || lower.starts_with("ip6-")
    {
        return Err(EXCLUDED_LOCAL);
    }
    let ascii = if lower.is_ascii() {
        lower
    } else {
        idna::domain_to_ascii(&lower).map_err(|_| EXCLUDED_NOT_A_NAME)?
    };
    let labels: Vec<&str> = ascii.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if ascii.len() > 253 || !labels.iter().all(label_ok) {
        return Err(EXCLUDED_NOT_A_NAME);
    }
    if labels.len() < 2 {
        return Err(EXCLUDED_SINGLE_LABEL);
    }
    Ok(ascii)
}

/// The name and each parent: `a.b.c` → `a.b.c`, `b.c`, `c`.
pub fn suffixes(name: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(name), |n| n.split_once('.').map(|(_, rest)| rest))
}

/// Checks the reader on the three catalogue syntaxes and what it sets
/// apart; the benchmark runs it first.
pub fn self_check() {
    {
        let read = read(
            "# c\n0.0.0.0 a.example b.example # tail\n||c.example^\nd.example\n\
             1.2.3.4\nlocalhost\n@@||e.example^\n||f.example^$denyallow=x.com\n\
             0.0.0.0 a.example\nsingle\nBÜCHER.example\n",
        );
        let names: Vec<&str> = read.listed.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "a.example",
                "b.example",
                "c.example",
                "d.example",
                "xn--bcher-kva.example"
            ]
        );
        assert_eq!(read.listed[3].line, 4);
        assert_eq!(read.excluded[EXCLUDED_IP], 1);
        assert_eq!(read.excluded[EXCLUDED_LOCAL], 1);
        assert_eq!(read.excluded[EXCLUDED_EXCEPTION], 1);
        assert_eq!(read.excluded[EXCLUDED_MODIFIER], 1);
        assert_eq!(read.excluded[EXCLUDED_SINGLE_LABEL], 1);
        assert_eq!(suffixes("a.b.c").collect::<Vec<_>>(), ["a.b.c", "b.c", "c"]);
    }
}
