//! List formats: plain domains, hosts files, AdBlock/AdGuard DNS rules,
//! dnsmasq lines and RPZ zones, declared or detected ([`detect`]).
//!
//! Every entry means the domain **and all its subdomains**, so the `*.x`
//! wildcard of any format is read as `x`. [`parse`] streams entries to a sink
//! and never stops at a bad line: the line is skipped, counted in the
//! [`ParseSummary`], and the first [`MAX_SKIPPED_KEPT`] are kept with their
//! line number for the log.
//!
//! Counting: `entries`, `skipped` and `ignored` count *rules*, and a line
//! holds one rule except a hosts line with several names or a dnsmasq line
//! with several domains, where each name counts once. So for one-name formats
//! `entries + skipped + ignored` is the number of lines.

mod adblock;
mod dnsmasq;
mod hosts;
mod plain;
mod rpz;

#[cfg(test)]
mod tests;

use super::RuleAction;
use super::name::{NameError, normalize};
use std::fmt;

/// A list's syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListFormat {
    /// Detect from the content ([`detect`]); never returned by [`detect`].
    Auto,
    /// One domain per line (`domains` is accepted as an alias).
    Plain,
    /// `0.0.0.0 name [name …]`.
    Hosts,
    /// AdBlock / AdGuard DNS syntax: `||x^`, `@@||x^`.
    Adblock,
    /// `address=/x/…`, `local=/x/`, `server=/x/`.
    Dnsmasq,
    /// Response Policy Zone file.
    Rpz,
}

impl ListFormat {
    /// The name used in configuration files.
    pub const fn as_str(self) -> &'static str {
        match self {
            ListFormat::Auto => "auto",
            ListFormat::Plain => "plain",
            ListFormat::Hosts => "hosts",
            ListFormat::Adblock => "adblock",
            ListFormat::Dnsmasq => "dnsmasq",
            ListFormat::Rpz => "rpz",
        }
    }
}

impl fmt::Display for ListFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `format = "…"` value that names no format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown list format {given:?}: expected one of auto, plain, domains (same as plain), hosts, adblock, dnsmasq, rpz"
)]
pub struct UnknownFormat {
    pub given: String,
}

impl std::str::FromStr for ListFormat {
    type Err = UnknownFormat;

    /// Accepts the names in any ASCII case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let formats = [
            ("auto", ListFormat::Auto),
            ("plain", ListFormat::Plain),
            ("domains", ListFormat::Plain),
            ("hosts", ListFormat::Hosts),
            ("adblock", ListFormat::Adblock),
            ("dnsmasq", ListFormat::Dnsmasq),
            ("rpz", ListFormat::Rpz),
        ];
        let wanted = text.trim();
        formats
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|&(_, format)| format)
            .ok_or_else(|| UnknownFormat {
                given: text.to_string(),
            })
    }
}

/// One rule read from a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Normalised ([`normalize`]): lowercase ASCII, punycode, no trailing dot.
    pub domain: &'a str,
    pub action: RuleAction,
    /// 1-based line number in the list.
    pub line: u32,
}

/// Why a rule was skipped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("invalid domain name: {0}")]
    InvalidName(NameError),
    /// Some lists mix bare IP addresses in with the names.
    #[error("IP address, not a domain name")]
    IpAddressEntry,
    /// `$denyallow=`, `$domain=`, `$client=`, `$dnstype=`, `$badfilter` …
    #[error("AdBlock modifier that a DNS filter cannot honour (only $important is)")]
    UnsupportedModifier,
    /// Browser-only AdBlock rules (paths, cosmetic `##`, regular expressions),
    /// record types or directives we do not handle, or another format's syntax.
    #[error("syntax this list format does not support")]
    UnsupportedSyntax,
}

/// A skipped rule, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedLine {
    /// 1-based line number.
    pub line: u32,
    pub reason: SkipReason,
    /// The line (trimmed), cut to 120 characters.
    pub text: String,
}

/// At most this many skipped lines are kept in [`ParseSummary::first_skipped`].
pub const MAX_SKIPPED_KEPT: usize = 20;
/// Characters of a skipped line kept in [`SkippedLine::text`].
const SKIPPED_TEXT_CHARS: usize = 120;
/// Meaningful lines (not blank, not comments) [`detect`] looks at.
const DETECT_LINES: usize = 200;

/// What a list contained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseSummary {
    /// The declared format, or the detected one when `Auto` was asked for.
    pub format: ListFormat,
    /// Rules streamed to the sink, blocks and allows.
    pub entries: usize,
    /// Of `entries`, the exceptions.
    pub allow_entries: usize,
    /// Comments, blank lines, headers, zone furniture, localhost-style names.
    pub ignored: usize,
    /// Rules that could not be used.
    pub skipped: usize,
    /// Of `skipped`, bare IP addresses (UT1's plain lists carry some): not
    /// names a DNS filter can block, but no sign of a wrong format either.
    pub ip_addresses: usize,
    /// The first [`MAX_SKIPPED_KEPT`] skipped rules.
    pub first_skipped: Vec<SkippedLine>,
}

/// Parses `text` in `format` (detected first when `Auto`), streaming every
/// entry to `sink`. Never stops at a bad line.
pub fn parse(text: &str, format: ListFormat, sink: &mut dyn FnMut(Entry<'_>)) -> ParseSummary {
    let format = match format {
        ListFormat::Auto => detect(text),
        declared => declared,
    };
    let mut out = Collector {
        summary: ParseSummary {
            format,
            entries: 0,
            allow_entries: 0,
            ignored: 0,
            skipped: 0,
            ip_addresses: 0,
            first_skipped: Vec::new(),
        },
        sink,
        line: 0,
        raw: "",
    };
    let mut zone = rpz::Zone::default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, raw) in text.lines().enumerate() {
        out.line = u32::try_from(index + 1).unwrap_or(u32::MAX);
        out.raw = raw;
        match format {
            ListFormat::Plain | ListFormat::Auto => plain::parse_line(raw, &mut out),
            ListFormat::Hosts => hosts::parse_line(raw, &mut out),
            ListFormat::Adblock => adblock::parse_line(raw, &mut out),
            ListFormat::Dnsmasq => dnsmasq::parse_line(raw, &mut out),
            ListFormat::Rpz => zone.parse_line(raw, &mut out),
        }
    }
    out.summary
}

/// Picks the format from the first 200 meaningful lines: each
/// votes for the format its shape fits, and the most votes win. Never returns
/// `Auto`; falls back to `Plain` (whose parser skips what is not a name).
pub fn detect(text: &str) -> ListFormat {
    // Vote slots; on a tie the earlier format wins.
    let order = [
        ListFormat::Hosts,
        ListFormat::Adblock,
        ListFormat::Dnsmasq,
        ListFormat::Rpz,
        ListFormat::Plain,
    ];
    let mut votes = [0usize; 5];
    let (mut bang_comments, mut semicolon_comments, mut meaningful) = (0, 0, 0);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for line in text.lines() {
        let line = line.trim();
        match line.as_bytes().first() {
            None | Some(b'#') => continue,
            Some(b'!') => {
                bang_comments += 1;
                continue;
            }
            Some(b';') => {
                semicolon_comments += 1;
                continue;
            }
            _ => {}
        }
        if adblock::is_named_header(line) {
            return ListFormat::Adblock;
        }
        if let Some(slot) = shape_of(line).and_then(|f| order.iter().position(|&o| o == f)) {
            votes[slot] += 1;
        }
        meaningful += 1;
        if meaningful >= DETECT_LINES {
            break;
        }
    }
    let best = (0..order.len())
        .rev()
        .max_by_key(|&i| votes[i])
        .filter(|&i| votes[i] > 0);
    match best {
        Some(i) => order[i],
        None if bang_comments > 0 => ListFormat::Adblock,
        None if semicolon_comments > 0 => ListFormat::Rpz,
        None => ListFormat::Plain,
    }
}

/// The format one trimmed, non-comment line looks like, if any.
fn shape_of(line: &str) -> Option<ListFormat> {
    if line.starts_with("||") || line.starts_with("@@") || line.ends_with('^') {
        return Some(ListFormat::Adblock);
    }
    if ["address=/", "local=/", "server=/"]
        .iter()
        .any(|p| line.starts_with(p))
    {
        return Some(ListFormat::Dnsmasq);
    }
    if line.starts_with("$TTL") || line.starts_with("$ORIGIN") {
        return Some(ListFormat::Rpz);
    }
    let mut fields = line.split_ascii_whitespace();
    let first = fields.next()?;
    let Some(second) = fields.next() else {
        return Some(ListFormat::Plain);
    };
    if hosts::is_address(first) {
        return Some(ListFormat::Hosts);
    }
    let rest = [Some(second), fields.next(), fields.next()];
    if rest.iter().flatten().any(|f| rpz::is_record_type(f)) {
        return Some(ListFormat::Rpz);
    }
    None
}

/// Cuts a `#` comment: a `#` at the start or after white space.
fn without_hash_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let cut = bytes
        .iter()
        .enumerate()
        .find(|&(i, &b)| b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()))
        .map_or(line.len(), |(i, _)| i);
    &line[..cut]
}

/// Names hosts files carry for the machine itself, never blocking rules.
fn is_machine_name(name: &str) -> bool {
    const NAMES: [&str; 5] = [
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "0.0.0.0",
    ];
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
        || name
            .get(..4)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("ip6-"))
}

/// Where the per-format line parsers report what each line holds.
struct Collector<'t, 's> {
    summary: ParseSummary,
    sink: &'s mut dyn FnMut(Entry<'_>),
    /// Current line number, 1-based.
    line: u32,
    /// Current line as read.
    raw: &'t str,
}

impl Collector<'_, '_> {
    /// A comment, blank line, header or furniture.
    fn ignore(&mut self) {
        self.summary.ignored += 1;
    }

    /// A rule that cannot be used.
    fn skip(&mut self, reason: SkipReason) {
        self.summary.skipped += 1;
        if reason == SkipReason::IpAddressEntry {
            self.summary.ip_addresses += 1;
        }
        if self.summary.first_skipped.len() < MAX_SKIPPED_KEPT {
            self.summary.first_skipped.push(SkippedLine {
                line: self.line,
                reason,
                text: self.raw.trim().chars().take(SKIPPED_TEXT_CHARS).collect(),
            });
        }
    }

    /// A rule for `raw_name` (`*.` prefix allowed) and its subdomains.
    fn rule(&mut self, raw_name: &str, action: RuleAction) {
        let name = raw_name.strip_prefix("*.").unwrap_or(raw_name);
        match normalize(name) {
            Ok(domain) => {
                self.summary.entries += 1;
                if action == RuleAction::Allow {
                    self.summary.allow_entries += 1;
                }
                (self.sink)(Entry {
                    domain: &domain,
                    action,
                    line: self.line,
                });
            }
            Err(NameError::IpAddress) => self.skip(SkipReason::IpAddressEntry),
            Err(error) => self.skip(SkipReason::InvalidName(error)),
        }
    }

    /// A name of a hosts or plain list: localhost-style names are ignored.
    fn host_name(&mut self, raw_name: &str) {
        if is_machine_name(raw_name) {
            self.ignore();
        } else {
            self.rule(raw_name, RuleAction::Block);
        }
    }
}
