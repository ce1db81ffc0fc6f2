//! List formats: plain domains, hosts files, AdBlock/AdGuard DNS rules,
//! dnsmasq, and RPZ zones, auto-detected or declared. Every entry means the
//! domain **and all its subdomains** (`*.x` is read as `x`).
//!
//! Parsing streams entries to a sink and never stops at a bad line: the line
//! is skipped, counted, and the first few are kept with their line number
//! for the log.

mod adblock;
mod dnsmasq;
mod hosts;
mod plain;
mod rpz;

use super::RuleAction;
use super::name::{NameError, is_ip_address, normalize};
use std::fmt;

/// A list's syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    /// Detect from the content.
    Auto,
    Plain,
    Hosts,
    Adblock,
    Dnsmasq,
    Rpz,
}

/// An unknown `format = "…"` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown list format {0:?}: expected one of auto, plain (or domains), hosts, adblock, dnsmasq, rpz"
)]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for ListFormat {
    type Err = UnknownFormat;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "auto" => ListFormat::Auto,
            "plain" | "domains" => ListFormat::Plain,
            "hosts" => ListFormat::Hosts,
            "adblock" => ListFormat::Adblock,
            "dnsmasq" => ListFormat::Dnsmasq,
            "rpz" => ListFormat::Rpz,
            other => return Err(UnknownFormat(other.to_string())),
        })
    }
}

/// One rule read from a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Normalised (lowercase ASCII, punycode, no trailing dot).
    pub domain: &'a str,
    pub action: RuleAction,
    pub line: u32,
}

/// Why a line was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    InvalidName(NameError),
    /// An IP address where a domain was expected (some lists mix them in).
    IpAddressEntry,
    /// An AdBlock modifier we cannot honour in DNS (`$denyallow`, `$client` …).
    UnsupportedModifier(String),
    /// Syntax of another format or of browser-only rules (paths, cosmetic, regex).
    UnsupportedSyntax,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::InvalidName(error) => write!(f, "invalid domain: {error}"),
            SkipReason::IpAddressEntry => write!(f, "IP address, not a domain name"),
            SkipReason::UnsupportedModifier(m) => {
                write!(f, "modifier ${m} cannot be honoured by a DNS filter")
            }
            SkipReason::UnsupportedSyntax => write!(f, "not a rule this format supports"),
        }
    }
}

/// A skipped line, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    pub line: u32,
    pub reason: SkipReason,
    /// The line, cut to 120 characters.
    pub text: String,
}

/// Lines kept in [`ParseSummary::first_skipped`].
pub const SKIPPED_KEPT: usize = 20;

/// What a list contained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseSummary {
    /// The declared format, or the detected one.
    pub format: ListFormat,
    /// Entries streamed to the sink (blocks and allows).
    pub entries: usize,
    /// Of those, exceptions.
    pub allow_entries: usize,
    /// Comments, blank lines, headers, localhost-style lines.
    pub ignored: usize,
    pub skipped: usize,
    pub first_skipped: Vec<SkippedLine>,
}

/// What one line yields.
pub(crate) enum Line<'a> {
    Ignore,
    Skip(SkipReason),
    /// One or more raw names with their action (hosts lines may hold many).
    Names(RuleAction, NameList<'a>),
}

/// Up to a line's worth of raw names without allocating.
pub(crate) enum NameList<'a> {
    One(&'a str),
    Many(std::str::SplitWhitespace<'a>),
    Slashes(std::str::Split<'a, char>),
}

impl<'a> Iterator for NameList<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        match self {
            NameList::One(name) => {
                let out = *name;
                *self = NameList::Many("".split_whitespace());
                Some(out)
            }
            NameList::Many(names) => names.next(),
            NameList::Slashes(names) => names.find(|n| !n.is_empty()),
        }
    }
}

/// Removes a trailing ` # comment` (a `#` preceded by white space).
pub(crate) fn strip_inline_comment(line: &str) -> &str {
    match line.find(" #").or_else(|| line.find("\t#")) {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Picks the format from the first meaningful lines.
pub fn detect(text: &str) -> ListFormat {
    let mut votes = [0usize; 5]; // plain, hosts, adblock, dnsmasq, rpz
    let mut seen = 0;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with("[Adblock") || line.starts_with('!') && !line.starts_with("!#") {
            votes[2] += 1;
        }
        if line.starts_with("$TTL") || line.starts_with("$ORIGIN") || line.contains(" SOA ") {
            votes[4] += 3;
        }
        if line.starts_with('#') || line.starts_with(';') || line.starts_with('!') {
            continue;
        }
        seen += 1;
        let first = line.split_whitespace().next().unwrap_or("");
        if line.starts_with("||") || line.starts_with("@@||") {
            votes[2] += 1;
        } else if ["address=/", "local=/", "server=/"]
            .iter()
            .any(|p| line.starts_with(p))
        {
            votes[3] += 1;
        } else if line.contains(" CNAME ") || line.ends_with(" CNAME .") {
            votes[4] += 1;
        } else if is_ip_address(first) && line.split_whitespace().nth(1).is_some() {
            votes[1] += 1;
        } else {
            votes[0] += 1;
        }
        if seen >= 200 {
            break;
        }
    }
    let formats = [
        ListFormat::Plain,
        ListFormat::Hosts,
        ListFormat::Adblock,
        ListFormat::Dnsmasq,
        ListFormat::Rpz,
    ];
    let best = (0..5)
        .max_by_key(|&i| (votes[i], usize::from(i == 0)))
        .unwrap_or(0);
    if votes[best] == 0 {
        ListFormat::Plain
    } else {
        formats[best]
    }
}

/// Parses `text`, streaming every entry to `sink`. Never stops at a bad line.
pub fn parse(text: &str, format: ListFormat, sink: &mut dyn FnMut(Entry<'_>)) -> ParseSummary {
    let format = match format {
        ListFormat::Auto => detect(text),
        declared => declared,
    };
    let mut summary = ParseSummary {
        format,
        entries: 0,
        allow_entries: 0,
        ignored: 0,
        skipped: 0,
        first_skipped: Vec::new(),
    };
    let mut rpz = rpz::ZoneState::default();
    for (index, raw) in text.lines().enumerate() {
        let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let line = raw.trim();
        let outcome = match format {
            ListFormat::Plain | ListFormat::Auto => plain::line(line),
            ListFormat::Hosts => hosts::line(line),
            ListFormat::Adblock => adblock::line(line),
            ListFormat::Dnsmasq => dnsmasq::line(line),
            ListFormat::Rpz => rpz.line(line),
        };
        let skip = |summary: &mut ParseSummary, reason: SkipReason| {
            summary.skipped += 1;
            if summary.first_skipped.len() < SKIPPED_KEPT {
                summary.first_skipped.push(SkippedLine {
                    line: number,
                    reason,
                    text: raw.chars().take(120).collect(),
                });
            }
        };
        match outcome {
            Line::Ignore => summary.ignored += 1,
            Line::Skip(reason) => skip(&mut summary, reason),
            Line::Names(action, names) => {
                let mut any = false;
                for raw_name in names {
                    let raw_name = raw_name.strip_prefix("*.").unwrap_or(raw_name);
                    if is_ignored_host(raw_name) {
                        continue;
                    }
                    if is_ip_address(raw_name) {
                        skip(&mut summary, SkipReason::IpAddressEntry);
                        continue;
                    }
                    match normalize(raw_name) {
                        Ok(domain) => {
                            any = true;
                            summary.entries += 1;
                            if action == RuleAction::Allow {
                                summary.allow_entries += 1;
                            }
                            sink(Entry {
                                domain: &domain,
                                action,
                                line: number,
                            });
                        }
                        Err(error) => skip(&mut summary, SkipReason::InvalidName(error)),
                    }
                }
                if !any
                    && summary
                        .first_skipped
                        .last()
                        .is_none_or(|s| s.line != number)
                {
                    summary.ignored += 1;
                }
            }
        }
    }
    summary
}

/// Names hosts files carry for the machine itself, never blocking rules.
fn is_ignored_host(name: &str) -> bool {
    matches!(
        name,
        "localhost"
            | "localhost.localdomain"
            | "local"
            | "broadcasthost"
            | "ip6-localhost"
            | "ip6-loopback"
            | "ip6-localnet"
            | "ip6-mcastprefix"
            | "ip6-allnodes"
            | "ip6-allrouters"
            | "ip6-allhosts"
            | "0.0.0.0"
    )
}

#[cfg(test)]
mod tests;
