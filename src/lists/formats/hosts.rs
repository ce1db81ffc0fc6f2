//! Hosts files: an address (`0.0.0.0`, `127.0.0.1`, `::`, `::1`,
//! `0:0:0:0:0:0:0:0`, also scoped like `fe80::1%lo0`) followed by one or more
//! names, `#` comments (whole line or after white space).
//!
//! Whatever the address, the names are blocked: we sinkhole them ourselves.
//! Names a hosts file carries for the machine itself (`localhost`,
//! `broadcasthost`, `ip6-*`, `0.0.0.0` …) are ignored, not skipped. A line
//! that is a bare domain without an address is accepted (lenient); a bare
//! address is skipped.

use super::{Collector, SkipReason, without_hash_comment};
use crate::lists::name::is_ip_address;

pub(super) fn parse_line(raw: &str, out: &mut Collector<'_, '_>) {
    let line = without_hash_comment(raw).trim();
    let mut fields = line.split_ascii_whitespace();
    let Some(first) = fields.next() else {
        out.ignore();
        return;
    };
    if is_address(first) {
        let mut names = 0;
        for name in fields {
            names += 1;
            out.host_name(name);
        }
        if names == 0 {
            out.skip(SkipReason::IpAddressEntry);
        }
    } else if fields.next().is_none() {
        out.host_name(first);
    } else {
        out.skip(SkipReason::UnsupportedSyntax);
    }
}

/// An IP address, with an optional `%zone` suffix.
pub(super) fn is_address(field: &str) -> bool {
    let address = field.split_once('%').map_or(field, |(address, _)| address);
    is_ip_address(address)
}

#[cfg(test)]
mod tests {
    use crate::lists::RuleAction;
    use crate::lists::formats::tests::{parse_sample, parse_text};
    use crate::lists::formats::{ListFormat, SkipReason};

    #[test]
    fn zero_address_sample() {
        let parsed = parse_sample("hosts-0.0.0.0-sample.txt", ListFormat::Hosts);
        assert_eq!(parsed.summary.ignored, 12);
        assert_eq!(parsed.summary.entries, 288);
        assert_eq!(parsed.summary.skipped, 0);
        assert_eq!(parsed.first(), ("00-202828spas.cfd", RuleAction::Block, 13));
        assert!(parsed.has("000webhostapp.com", 21));
    }

    #[test]
    fn loopback_sample_with_sections() {
        let parsed = parse_sample("hosts-127.0.0.1-sample.txt", ListFormat::Hosts);
        // 4 comment lines, 1 blank line, 295 names.
        assert_eq!(parsed.summary.ignored, 5);
        assert_eq!(parsed.summary.entries, 295);
        assert_eq!(parsed.summary.skipped, 0);
        assert_eq!(
            parsed.first(),
            ("0-act.channel.facebook.com", RuleAction::Block, 6)
        );
        assert!(parsed.has("a3.sphotos.ak.fbcdn.net", 23));
    }

    #[test]
    fn many_names_per_line() {
        let parsed = parse_sample("hosts-compressed-multi-name-sample.txt", ListFormat::Hosts);
        // 12 header lines, then 108 lines of 9 names each.
        assert_eq!(parsed.summary.ignored, 12);
        assert_eq!(parsed.summary.entries, 108 * 9);
        assert_eq!(parsed.summary.skipped, 0);
        let line_13: Vec<_> = parsed
            .entries
            .iter()
            .filter(|e| e.2 == 13)
            .map(|e| e.0.as_str())
            .collect();
        assert_eq!(line_13.len(), 9);
        assert_eq!(line_13[0], "00-202828spas.cfd");
        assert_eq!(line_13[8], "000webhostapp.com");
        assert!(parsed.has("ca7ef4f8d6.0213499675.com", 19));
    }

    #[test]
    fn grouped_comments_sample() {
        let parsed = parse_sample("hosts-grouped-comments-sample.txt", ListFormat::Hosts);
        // 48 comment lines (`#[group]` ones included), 252 names.
        assert_eq!(parsed.summary.ignored, 48);
        assert_eq!(parsed.summary.entries, 252);
        assert_eq!(parsed.summary.skipped, 0);
        assert_eq!(
            parsed.first(),
            ("api-adservices.apple.com", RuleAction::Block, 15)
        );
        assert!(parsed.has("iadsdk.apple.com", 24));
        assert!(parsed.domains().all(|d| !d.contains('[')));
    }

    #[test]
    fn localhost_lines_are_ignored_not_skipped() {
        let parsed = parse_sample("hosts-stevenblack-header-sample.txt", ListFormat::Hosts);
        // 43 comment lines, 11 blank lines, 6 localhost-style lines, 25 names.
        assert_eq!(parsed.summary.ignored, 43 + 11 + 6);
        assert_eq!(parsed.summary.entries, 25);
        assert_eq!(parsed.summary.skipped, 0);
        for machine in [
            "localhost",
            "localhost.localdomain",
            "local",
            "broadcasthost",
        ] {
            assert!(parsed.domains().all(|d| d != machine), "{machine}");
        }
        assert_eq!(
            parsed.first(),
            ("lb.usemaxserver.de", RuleAction::Block, 45)
        );
        // Names that look like addresses but are names.
        assert!(parsed.has("102.112.207.net", 80));
        assert!(parsed.has("192.168.112.2o7.net", 83));
        // `#127.0.0.1 tracking.applift.com` is commented out.
        assert!(parsed.domains().all(|d| d != "tracking.applift.com"));
    }

    #[test]
    fn quirks_mixed_case_trailing_dot_inline_comments() {
        let parsed = parse_sample("quirks-mixed-sample.txt", ListFormat::Hosts);
        // 3 bare names (accepted leniently) and 62 hosts lines, every one usable.
        assert_eq!(parsed.summary.entries, 65);
        assert_eq!(parsed.summary.skipped + parsed.summary.ignored, 0);
        assert!(parsed.has("free-4paid.com", 1));
        assert!(parsed.has("wvontgd.pqmg.bid", 2));
        assert!(parsed.has("www.188betcn2.com", 4));
        assert!(parsed.has("www.guruofporn.com", 5));
        assert!(parsed.has("___id___.c.mystat-in.net", 6));
        assert!(parsed.has("00fun.com", 7));
        assert!(parsed.has("06272002-dbase.hitcountz.net", 8));
        assert!(parsed.has("ads.belointeractive.com", 30));
    }

    #[test]
    fn every_loopback_address_form_and_odd_lines() {
        let text = "::1 ip6-localhost ip6-loopback\n0:0:0:0:0:0:0:0 a.example\n\
                    :: b.example c.example\n0.0.0.0 0.0.0.0\n127.0.0.1\n\
                    0.0.0.0 10.1.2.3\n0.0.0.0\tt.example\t# tab\nname with spaces\n";
        let parsed = parse_text(text, ListFormat::Hosts);
        let names: Vec<_> = parsed.entries.iter().map(|e| (e.0.as_str(), e.2)).collect();
        assert_eq!(
            names,
            [
                ("a.example", 2),
                ("b.example", 3),
                ("c.example", 3),
                ("t.example", 7)
            ]
        );
        // ip6-localhost, ip6-loopback, `0.0.0.0` as a name.
        assert_eq!(parsed.summary.ignored, 3);
        let skipped: Vec<_> = parsed
            .summary
            .first_skipped
            .iter()
            .map(|s| (s.line, s.reason.clone()))
            .collect();
        assert_eq!(
            skipped,
            [
                (5, SkipReason::IpAddressEntry),
                (6, SkipReason::IpAddressEntry),
                (8, SkipReason::UnsupportedSyntax)
            ]
        );
    }
}
