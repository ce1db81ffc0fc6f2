//! Plain domain lists: one name per line, `#` comments (whole-line or
//! after white space), `*.x` wildcards.

use super::{Line, NameList, SkipReason, strip_inline_comment};
use crate::lists::RuleAction;

pub(crate) fn line(line: &str) -> Line<'_> {
    if line.is_empty() || line.starts_with('#') || line.starts_with('!') || line.starts_with(';') {
        return Line::Ignore;
    }
    let line = strip_inline_comment(line).trim();
    if line.is_empty() {
        return Line::Ignore;
    }
    if line.split_whitespace().nth(1).is_some() {
        // "name name" is a hosts line or garbage, not a plain entry.
        return Line::Skip(SkipReason::UnsupportedSyntax);
    }
    Line::Names(RuleAction::Block, NameList::One(line))
}
