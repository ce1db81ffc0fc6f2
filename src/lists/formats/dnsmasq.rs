//! dnsmasq configuration lines as blocklists ship them:
//! `address=/x/0.0.0.0`, `address=/x/#`, `address=/x/`, `local=/x/`,
//! `server=/x/`, each blocking x and its subdomains (dnsmasq itself matches
//! subdomains too). Several domains on one line (`address=/a/b/c/`) give one
//! entry each. `#` comment lines are ignored.
//!
//! One special case follows dnsmasq's meaning: `server=/x/#` sends x to the
//! standard upstream servers, an exception to a broader rule, so it is read
//! as an allow entry. Other keys (`conf-file=`, `bogus-nxdomain=` …), a `#`
//! domain (every name) and lines without `/domain/` are skipped.

use super::{Collector, SkipReason};
use crate::lists::RuleAction;

pub(super) fn parse_line(raw: &str, out: &mut Collector<'_, '_>) {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        out.ignore();
        return;
    }
    let Some((key, value)) = line.split_once('=') else {
        out.skip(SkipReason::UnsupportedSyntax);
        return;
    };
    let key = key.trim();
    if !matches!(key, "address" | "local" | "server") {
        out.skip(SkipReason::UnsupportedSyntax);
        return;
    }
    // `/a/b/target`: the domains sit between the first and the last slash.
    let Some((domains, target)) = value
        .trim()
        .strip_prefix('/')
        .and_then(|rest| rest.rsplit_once('/'))
    else {
        out.skip(SkipReason::UnsupportedSyntax);
        return;
    };
    let action = if key == "server" && target.trim() == "#" {
        RuleAction::Allow
    } else {
        RuleAction::Block
    };
    let mut domains = domains.split('/').filter(|d| !d.is_empty()).peekable();
    if domains.peek().is_none() {
        out.skip(SkipReason::UnsupportedSyntax);
    }
    for domain in domains {
        if domain == "#" {
            out.skip(SkipReason::UnsupportedSyntax);
        } else {
            out.rule(domain, action);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lists::RuleAction;
    use crate::lists::formats::tests::{parse_sample, parse_text};
    use crate::lists::formats::{ListFormat, SkipReason};

    #[test]
    fn address_sample() {
        let parsed = parse_sample("dnsmasq-address-sample.conf", ListFormat::Dnsmasq);
        assert_eq!(parsed.summary.ignored, 10);
        assert_eq!(parsed.summary.entries, 290);
        assert_eq!(parsed.summary.skipped, 0);
        assert_eq!(
            parsed.first(),
            (
                "00917082-71e9-498e-8343-00c3df06b798.edge.permutive.app",
                RuleAction::Block,
                11
            )
        );
        assert!(parsed.has("10270089.fls.doubleclick.net", 60));
    }

    #[test]
    fn local_sample() {
        let parsed = parse_sample("dnsmasq-local-sample.conf", ListFormat::Dnsmasq);
        assert_eq!(parsed.summary.ignored, 12);
        assert_eq!(parsed.summary.entries, 288);
        assert_eq!(parsed.summary.skipped, 0);
        assert_eq!(parsed.first(), ("00-202828spas.cfd", RuleAction::Block, 13));
        assert!(parsed.has("000free.us", 17));
    }

    #[test]
    fn server_sample() {
        let parsed = parse_sample("dnsmasq-server-sample.conf", ListFormat::Dnsmasq);
        // 12 comment lines and one blank line.
        assert_eq!(parsed.summary.ignored, 13);
        assert_eq!(parsed.summary.entries, 287);
        assert_eq!(parsed.summary.skipped, 0);
        assert!(parsed.has("api-hl.amemv.com", 164));
        assert!(parsed.has("api-hl.amemv.com.w.kunluncan.com", 165));
        assert_eq!(parsed.summary.allow_entries, 0);
    }

    #[test]
    fn several_domains_targets_and_odd_lines() {
        let text = "address=/a.example/b.example/0.0.0.0\naddress=/c.example/\n\
                    server=/d.example/#\naddress=/*.e.example/::\nconf-file=/etc/x.conf\n\
                    server=1.1.1.1\naddress=/#/0.0.0.0\nlocal=//\naddress=/F.Example/#\n";
        let parsed = parse_text(text, ListFormat::Dnsmasq);
        let rules: Vec<_> = parsed
            .entries
            .iter()
            .map(|(d, a, l)| (d.as_str(), *a, *l))
            .collect();
        assert_eq!(
            rules,
            [
                ("a.example", RuleAction::Block, 1),
                ("b.example", RuleAction::Block, 1),
                ("c.example", RuleAction::Block, 2),
                ("d.example", RuleAction::Allow, 3),
                ("e.example", RuleAction::Block, 4),
                ("f.example", RuleAction::Block, 9),
            ]
        );
        let skipped: Vec<_> = parsed
            .summary
            .first_skipped
            .iter()
            .map(|s| s.line)
            .collect();
        assert_eq!(skipped, [5, 6, 7, 8]);
        assert!(
            parsed
                .summary
                .first_skipped
                .iter()
                .all(|s| s.reason == SkipReason::UnsupportedSyntax)
        );
    }
}
