//! Plain domain lists: one name per line, `#` comments (a whole line, or
//! after white space), `*.x` wildcards read as `x`, blank lines ignored.
//! Localhost-style names are ignored as in hosts files. A line with more
//! than one word is another format's line and is skipped.

use super::{Collector, SkipReason, without_hash_comment};

pub(super) fn parse_line(raw: &str, out: &mut Collector<'_, '_>) {
    let line = without_hash_comment(raw).trim();
    if line.is_empty() {
        out.ignore();
    } else if line.contains(char::is_whitespace) {
        out.skip(SkipReason::UnsupportedSyntax);
    } else {
        out.host_name(line);
    }
}

#[cfg(test)]
mod tests {
    use crate::lists::RuleAction;
    use crate::lists::formats::tests::{parse_sample, parse_text};
    use crate::lists::formats::{ListFormat, SkipReason};
    use crate::lists::name::NameError;

    #[test]
    fn plain_sample() {
        let parsed = parse_sample("domains-plain-sample.txt", ListFormat::Plain);
        // 12 header lines (`#` … and a lone `#`), 288 names.
        assert_eq!(parsed.summary.ignored, 12);
        assert_eq!(parsed.summary.entries, 288);
        assert_eq!(parsed.summary.skipped, 0);
        assert_eq!(parsed.first(), ("00-202828spas.cfd", RuleAction::Block, 13));
        assert!(parsed.has("000webhostapp.com", 21));
    }

    #[test]
    fn wildcards_mean_the_domain() {
        let parsed = parse_sample("wildcard-sample.txt", ListFormat::Plain);
        assert_eq!(parsed.summary.ignored, 12);
        assert_eq!(parsed.summary.entries, 288);
        assert_eq!(parsed.summary.skipped, 0);
        assert_eq!(parsed.first(), ("00-202828spas.cfd", RuleAction::Block, 13));
        assert!(parsed.domains().all(|d| !d.contains('*')));
    }

    #[test]
    fn punycode_sample_is_taken_as_is() {
        let parsed = parse_sample("idn-punycode-sample.txt", ListFormat::Plain);
        assert_eq!(parsed.summary.entries, 137);
        assert_eq!(parsed.summary.skipped + parsed.summary.ignored, 0);
        assert!(parsed.has("xn--casinoerpnettet-plb.eu", 6));
        assert!(parsed.domains().all(|d| d.contains("xn--")));
    }

    #[test]
    fn ut1_quirks_addresses_are_skipped_with_their_line() {
        let parsed = parse_sample("quirks-ut1-sample.txt", ListFormat::Plain);
        // The sample is 120 bare IPv4 addresses and nothing else.
        assert_eq!(parsed.summary.entries, 0);
        assert_eq!(parsed.summary.skipped, 120);
        let first = &parsed.summary.first_skipped[0];
        assert_eq!(
            (first.line, &first.reason, first.text.as_str()),
            (1, &SkipReason::IpAddressEntry, "118.123.4.224")
        );
        assert_eq!(parsed.summary.first_skipped.len(), 20);
        assert_eq!(parsed.summary.first_skipped[19].line, 20);
    }

    #[test]
    fn ut1_underscores_are_accepted_and_addresses_skipped() {
        let parsed = parse_sample("../ut1/agressif.txt", ListFormat::Plain);
        // 360 lines: 93 bare IPv4 addresses, 267 names, one with `_`.
        assert_eq!(parsed.summary.skipped, 93);
        assert_eq!(parsed.summary.entries, 267);
        assert!(parsed.has("_video-bagarre.com", 96));
        assert!(parsed.has("aaargh-international.org", 97));
        let skipped = &parsed.summary.first_skipped;
        assert_eq!(skipped[0].line, 1);
        assert_eq!(skipped[2].line, 4);
        assert!(
            skipped
                .iter()
                .all(|s| s.reason == SkipReason::IpAddressEntry)
        );
    }

    #[test]
    fn odd_characters_are_skipped_with_their_line() {
        // Hand-written lines around two real ones (hostsVN's mixed case, UT1's `_`).
        let text = "Free-4paid.com\nmy site.com\nbad/path.com\n_video-bagarre.com\n";
        let parsed = parse_text(text, ListFormat::Plain);
        assert!(parsed.has("free-4paid.com", 1));
        assert!(parsed.has("_video-bagarre.com", 4));
        let skipped: Vec<_> = parsed
            .summary
            .first_skipped
            .iter()
            .map(|s| (s.line, s.reason.clone()))
            .collect();
        assert_eq!(
            skipped,
            [
                (2, SkipReason::UnsupportedSyntax),
                (
                    3,
                    SkipReason::InvalidName(NameError::InvalidCharacter { ch: '/' })
                ),
            ]
        );
    }

    #[test]
    fn inline_comments_and_localhost_are_ignored() {
        let parsed = parse_text(
            "# header\n\nads.example # seen 2024\nlocalhost\n*.tracker.example\n",
            ListFormat::Plain,
        );
        assert_eq!(
            parsed.entries,
            [
                ("ads.example".to_string(), RuleAction::Block, 3),
                ("tracker.example".to_string(), RuleAction::Block, 5)
            ]
        );
        assert_eq!(parsed.summary.ignored, 3);
    }
}
