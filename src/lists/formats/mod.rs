//! PLACEHOLDER
use super::RuleAction;
use super::name::{NameError, normalize};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    Auto,
    Plain,
    Hosts,
    Adblock,
    Dnsmasq,
    Rpz,
}
#[derive(Debug, thiserror::Error)]
#[error("unknown list format {0:?}: expected auto, plain, hosts, adblock, dnsmasq or rpz")]
pub struct UnknownFormat(String);
impl std::str::FromStr for ListFormat {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => Self::Auto,
            "plain" | "domains" => Self::Plain,
            "hosts" => Self::Hosts,
            "adblock" => Self::Adblock,
            "dnsmasq" => Self::Dnsmasq,
            "rpz" => Self::Rpz,
            _ => return Err(UnknownFormat(s.to_string())),
        })
    }
}
pub fn detect(_text: &str) -> ListFormat {
    ListFormat::Plain
}
pub struct Entry<'a> {
    pub domain: &'a str,
    pub action: RuleAction,
    pub line: u32,
}
#[derive(Debug)]
pub enum SkipReason {
    InvalidName(NameError),
}
impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::InvalidName(e) => write!(f, "{e}"),
        }
    }
}
pub struct SkippedLine {
    pub line: u32,
    pub reason: SkipReason,
    pub text: String,
}
pub struct ParseSummary {
    pub format: ListFormat,
    pub entries: usize,
    pub allow_entries: usize,
    pub ignored: usize,
    pub skipped: usize,
    pub first_skipped: Vec<SkippedLine>,
}
pub fn parse(text: &str, format: ListFormat, sink: &mut dyn FnMut(Entry<'_>)) -> ParseSummary {
    let mut s = ParseSummary {
        format: if format == ListFormat::Auto {
            detect(text)
        } else {
            format
        },
        entries: 0,
        allow_entries: 0,
        ignored: 0,
        skipped: 0,
        first_skipped: vec![],
    };
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u32 + 1;
        let body = line.split('#').next().unwrap_or("").trim();
        if body.is_empty() {
            s.ignored += 1;
            continue;
        }
        let name = body.split_whitespace().last().unwrap_or(body);
        let (name, action) = match name.strip_prefix("@@") {
            Some(n) => (n, RuleAction::Allow),
            None => (name, RuleAction::Block),
        };
        let name = name.trim_start_matches("||").trim_end_matches('^');
        match normalize(name.strip_prefix("*.").unwrap_or(name)) {
            Ok(d) => {
                s.entries += 1;
                sink(Entry {
                    domain: &d,
                    action,
                    line: line_no,
                });
            }
            Err(e) => {
                s.skipped += 1;
                if s.first_skipped.len() < 20 {
                    s.first_skipped.push(SkippedLine {
                        line: line_no,
                        reason: SkipReason::InvalidName(e),
                        text: line.chars().take(120).collect(),
                    });
                }
            }
        }
    }
    s
}
