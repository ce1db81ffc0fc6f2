//! AdBlock / AdGuard DNS rules: `||x^` blocks x and its subdomains,
//! `@@||x^` is an exception, `!` comments. Modifiers a DNS filter cannot
//! honour (`$denyallow`, `$client`, `$dnstype`, …) make the rule skipped
//! and counted; `$important` alone is honoured as a plain rule.

use super::{Line, NameList, SkipReason};
use crate::lists::RuleAction;

pub(crate) fn line(line: &str) -> Line<'_> {
    if line.is_empty()
        || line.starts_with('!')
        || line.starts_with('#') && !line.starts_with("##")
        || line.starts_with('[')
    {
        return Line::Ignore;
    }
    let (action, rule) = match line.strip_prefix("@@") {
        Some(rest) => (RuleAction::Allow, rest),
        None => (RuleAction::Block, line),
    };
    let (pattern, modifiers) = match rule.split_once('$') {
        Some((pattern, modifiers)) => (pattern, Some(modifiers)),
        None => (rule, None),
    };
    if let Some(modifiers) = modifiers
        && let Some(unsupported) = modifiers.split(',').find(|m| m.trim() != "important")
    {
        let name = unsupported
            .split('=')
            .next()
            .unwrap_or(unsupported)
            .trim_start_matches('~');
        return Line::Skip(SkipReason::UnsupportedModifier(name.to_string()));
    }
    let Some(body) = pattern.strip_prefix("||") else {
        // Cosmetic (`##`), URL paths, regexes and plain substrings are browser rules.
        return Line::Skip(SkipReason::UnsupportedSyntax);
    };
    let body = body.strip_suffix('|').unwrap_or(body);
    let Some(name) = body.strip_suffix('^') else {
        return Line::Skip(SkipReason::UnsupportedSyntax);
    };
    if name.contains(['/', '*', '^', '|']) && !name.starts_with("*.") {
        return Line::Skip(SkipReason::UnsupportedSyntax);
    }
    Line::Names(action, NameList::One(name))
}
