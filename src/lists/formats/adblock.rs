//! AdBlock / AdGuard DNS rules, the subset a DNS filter can honour:
//! `||x^` (and `||x^|`) blocks x and its subdomains, `@@||x^` is an exception,
//! `||*.x^` is read as `||x^`. `!` and `#` comment lines and `[Adblock Plus …]`
//! headers are ignored.
//!
//! Skipped and counted:
//! - rules with modifiers ([`SkipReason::UnsupportedModifier`]), except
//!   `$important` alone, which is honoured as a plain rule (we give no rule
//!   priority over an exception at the same name);
//! - browser rules ([`SkipReason::UnsupportedSyntax`]): URL paths, cosmetic
//!   `##` rules, regular expressions `/…/`, rules without the `||…^` anchors,
//!   and wildcards inside a name (`||ads*.example^`).
//!
//! `$denyallow=a|b` is skipped whole rather than read as "block x, allow a and
//! b": our exceptions apply across categories, which `$denyallow` does not mean.

use super::{Collector, SkipReason};
use crate::lists::RuleAction;

pub(super) fn parse_line(raw: &str, out: &mut Collector<'_, '_>) {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('!') || is_header(line) {
        out.ignore();
        return;
    }
    if is_cosmetic(line) {
        out.skip(SkipReason::UnsupportedSyntax);
        return;
    }
    if line.starts_with('#') {
        out.ignore();
        return;
    }
    let (action, rule) = match line.strip_prefix("@@") {
        Some(rest) => (RuleAction::Allow, rest),
        None => (RuleAction::Block, line),
    };
    if rule.starts_with('/') {
        // A regular expression or a path.
        out.skip(SkipReason::UnsupportedSyntax);
        return;
    }
    let (pattern, modifiers) = match rule.split_once('$') {
        Some((pattern, modifiers)) => (pattern, Some(modifiers)),
        None => (rule, None),
    };
    if let Some(modifiers) = modifiers
        && !modifiers.split(',').all(|m| m.trim() == "important")
    {
        out.skip(SkipReason::UnsupportedModifier);
        return;
    }
    match domain_of(pattern) {
        Some(name) => out.rule(name, action),
        None => out.skip(SkipReason::UnsupportedSyntax),
    }
}

/// `||x^` or `||x^|` → `x` (with a possible `*.` prefix); anything else is
/// not a domain rule.
fn domain_of(pattern: &str) -> Option<&str> {
    let body = pattern.strip_prefix("||")?;
    let body = body.strip_suffix('|').unwrap_or(body);
    let name = body.strip_suffix('^')?;
    let bare = name.strip_prefix("*.").unwrap_or(name);
    let url_characters = ['*', '/', '^', '|', ':', '?', '=', '&', '%', '#'];
    (!bare.is_empty() && !bare.contains(url_characters)).then_some(name)
}

/// `[Adblock Plus 2.0]`, `[AdGuard]`, `[uBlock Origin]`: any `[…]` line.
fn is_header(line: &str) -> bool {
    line.starts_with('[') && line.ends_with(']')
}

/// A header that names an AdBlock dialect: proof of the format for [`super::detect`].
pub(super) fn is_named_header(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    is_header(line)
        && ["adblock", "adguard", "ublock"]
            .iter()
            .any(|n| lower.contains(n))
}

/// Element hiding and scriptlet rules: `##`, `#@#`, `#?#`, `#$#`, `#%#` …
fn is_cosmetic(line: &str) -> bool {
    ["##", "#@#", "#?#", "#$#", "#%#", "#@?#", "#@$#", "#@%#"]
        .iter()
        .any(|marker| line.contains(marker))
}

#[cfg(test)]
mod tests {
    use crate::lists::RuleAction;
    use crate::lists::formats::tests::{parse_sample, parse_text};
    use crate::lists::formats::{ListFormat, SkipReason};

    #[test]
    fn block_rules_sample() {
        let parsed = parse_sample("adblock-sample.txt", ListFormat::Adblock);
        // `[Adblock Plus]`, 12 `!` lines, 287 rules.
        assert_eq!(parsed.summary.ignored, 13);
        assert_eq!(parsed.summary.entries, 287);
        assert_eq!(parsed.summary.allow_entries, 0);
        assert_eq!(parsed.summary.skipped, 0);
        assert_eq!(parsed.first(), ("00-202828spas.cfd", RuleAction::Block, 14));
        assert!(parsed.has("000free.us", 18));
    }

    #[test]
    fn hostsvn_sample_skips_wildcards_inside_names() {
        let parsed = parse_sample("adblock-hostsvn-sample.txt", ListFormat::Adblock);
        assert_eq!(parsed.summary.ignored, 8);
        assert_eq!(parsed.summary.entries, 285);
        assert_eq!(parsed.summary.skipped, 7);
        assert!(parsed.has("ad.zing.vn", 15));
        assert!(parsed.has("adx.vn", 58));
        let skipped: Vec<_> = parsed
            .summary
            .first_skipped
            .iter()
            .map(|s| s.line)
            .collect();
        assert_eq!(skipped, [21, 170, 171, 197, 198, 239, 262]);
        assert_eq!(
            parsed.summary.first_skipped[0].text,
            "||admicro*.vcmedia.vn^"
        );
        assert!(
            parsed
                .summary
                .first_skipped
                .iter()
                .all(|s| s.reason == SkipReason::UnsupportedSyntax)
        );
    }

    #[test]
    fn exceptions_become_allow_entries() {
        let parsed = parse_sample("adblock-allowlist-sample.txt", ListFormat::Adblock);
        // `[Adblock Plus]`, 8 `!` lines, 275 exceptions, 16 with `*` inside a name.
        assert_eq!(parsed.summary.ignored, 9);
        assert_eq!(parsed.summary.entries, 275);
        assert_eq!(parsed.summary.allow_entries, 275);
        assert_eq!(parsed.summary.skipped, 16);
        assert_eq!(parsed.first(), ("1-aclk.net", RuleAction::Allow, 13));
        assert!(parsed.has("2performant.com", 19));
        assert_eq!(
            parsed.summary.first_skipped[0].text,
            "@@||*-go.kelkoogroup.net^"
        );

        let parsed = parse_sample("adblock-tld-allow-sample.txt", ListFormat::Adblock);
        assert_eq!(parsed.summary.allow_entries, 300);
        assert_eq!(parsed.first(), ("nation.africa", RuleAction::Allow, 1));
        assert!(parsed.has("shopdisney.asia", 21));
    }

    #[test]
    fn modifiers_are_skipped_and_counted_tld_rules_kept() {
        let parsed = parse_sample("adblock-modifiers-tld-sample.txt", ListFormat::Adblock);
        // 18 `!` lines, 283 `||*.tld^` rules, 151 with `$denyallow=`.
        assert_eq!(parsed.summary.ignored, 18);
        assert_eq!(parsed.summary.entries, 283);
        assert_eq!(parsed.summary.skipped, 151);
        assert!(
            parsed
                .summary
                .first_skipped
                .iter()
                .all(|s| s.reason == SkipReason::UnsupportedModifier)
        );
        assert_eq!(parsed.summary.first_skipped[0].line, 20);
        assert_eq!(parsed.first(), ("actor", RuleAction::Block, 19));
        assert!(parsed.has("dpdns.org", 93));
        assert!(parsed.has("xn--qxam", 451));
        // `||*.africa^$denyallow=nation.africa` does not block `africa`.
        assert!(parsed.domains().all(|d| d != "africa"));
    }

    #[test]
    fn every_rule_shape() {
        let text = "[AdGuard]\n# comment\n||a.example^|\n||b.example^$important\n\
                    @@||c.example^|\n@@||d.example^$important\n||e.example^$third-party\n\
                    ||f.example^$client=10.0.0.1\n||g.example^$badfilter\n##.banner\n\
                    example.org##.ad\n/ads[0-9]+/\n||h.example/path^\n|https://i.example^\n\
                    ||j.example\nk.example\n||L.Example.^\n";
        let parsed = parse_text(text, ListFormat::Adblock);
        let rules: Vec<_> = parsed
            .entries
            .iter()
            .map(|(d, a, l)| (d.as_str(), *a, *l))
            .collect();
        assert_eq!(
            rules,
            [
                ("a.example", RuleAction::Block, 3),
                ("b.example", RuleAction::Block, 4),
                ("c.example", RuleAction::Allow, 5),
                ("d.example", RuleAction::Allow, 6),
                ("l.example", RuleAction::Block, 17),
            ]
        );
        assert_eq!(parsed.summary.ignored, 2);
        let skipped: Vec<_> = parsed
            .summary
            .first_skipped
            .iter()
            .map(|s| (s.line, s.reason.clone()))
            .collect();
        let modifier = SkipReason::UnsupportedModifier;
        let syntax = SkipReason::UnsupportedSyntax;
        assert_eq!(
            skipped,
            [
                (7, modifier.clone()),
                (8, modifier.clone()),
                (9, modifier),
                (10, syntax.clone()),
                (11, syntax.clone()),
                (12, syntax.clone()),
                (13, syntax.clone()),
                (14, syntax.clone()),
                (15, syntax.clone()),
                (16, syntax),
            ]
        );
    }
}
