//! dnsmasq configuration lines: `address=/x/…`, `local=/x/`, `server=/x/`
//! (several domains `/a/b/` allowed). Each names a domain and its
//! subdomains, which is what these lists mean to block.

use super::{Line, NameList, SkipReason};
use crate::lists::RuleAction;

pub(crate) fn line(line: &str) -> Line<'_> {
    if line.is_empty() || line.starts_with('#') {
        return Line::Ignore;
    }
    let Some((key, value)) = line.split_once('=') else {
        return Line::Skip(SkipReason::UnsupportedSyntax);
    };
    if !matches!(key.trim(), "address" | "local" | "server") {
        return Line::Skip(SkipReason::UnsupportedSyntax);
    }
    // `/a/b/target`: the domains sit between the first and the last slash.
    let Some(inner) = value.strip_prefix('/') else {
        return Line::Skip(SkipReason::UnsupportedSyntax);
    };
    let Some(end) = inner.rfind('/') else {
        return Line::Skip(SkipReason::UnsupportedSyntax);
    };
    let domains = &inner[..end];
    if domains.is_empty() {
        return Line::Skip(SkipReason::UnsupportedSyntax);
    }
    Line::Names(RuleAction::Block, NameList::Slashes(domains.split('/')))
}
