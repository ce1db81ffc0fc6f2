//! Hosts files: an address (`0.0.0.0`, `127.0.0.1`, `::`, `::1` …) followed by
//! one or more names, `#` comments. A bare name without an address is
//! accepted too; localhost-style names are ignored.

use super::{Line, NameList, SkipReason, strip_inline_comment};
use crate::lists::RuleAction;
use crate::lists::name::is_ip_address;

pub(crate) fn line(line: &str) -> Line<'_> {
    if line.is_empty() || line.starts_with('#') {
        return Line::Ignore;
    }
    let line = strip_inline_comment(line).trim();
    let mut fields = line.split_whitespace();
    let Some(first) = fields.next() else {
        return Line::Ignore;
    };
    // `fe80::1%lo0 localhost`: a scoped address is still an address.
    let address = first.split('%').next().unwrap_or(first);
    if is_ip_address(address) {
        let rest = line[first.len()..].trim_start();
        if rest.is_empty() {
            return Line::Skip(SkipReason::UnsupportedSyntax);
        }
        return Line::Names(RuleAction::Block, NameList::Many(rest.split_whitespace()));
    }
    if fields.next().is_some() {
        return Line::Skip(SkipReason::UnsupportedSyntax);
    }
    Line::Names(RuleAction::Block, NameList::One(first))
}
