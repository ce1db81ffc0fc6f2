//! Shared test helpers for the format parsers, and the tests that cut across
//! formats: detection, `Auto`, broken lines, format names, unsupported files.
//! Each format's own tests sit in its file.

use super::{ListFormat, ParseSummary, SkipReason, detect, parse};
use crate::lists::RuleAction;

/// `../shared/data/formats/<file>` (or another data folder with `../`).
pub(crate) fn sample(file: &str) -> String {
    let path = format!(
        "{}/../shared/data/formats/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What a parse produced, entries collected.
pub(crate) struct Parsed {
    pub summary: ParseSummary,
    pub entries: Vec<(String, RuleAction, u32)>,
}

impl Parsed {
    pub fn first(&self) -> (&str, RuleAction, u32) {
        let (domain, action, line) = &self.entries[0];
        (domain, *action, *line)
    }

    /// An entry for `domain` read from `line`.
    pub fn has(&self, domain: &str, line: u32) -> bool {
        self.entries.iter().any(|e| e.0 == domain && e.2 == line)
    }

    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.0.as_str())
    }
}

pub(crate) fn parse_text(text: &str, format: ListFormat) -> Parsed {
    let mut entries = Vec::new();
    let summary = parse(text, format, &mut |e| {
        entries.push((e.domain.to_string(), e.action, e.line));
    });
    assert_eq!(summary.entries, entries.len());
    Parsed { summary, entries }
}

pub(crate) fn parse_sample(file: &str, format: ListFormat) -> Parsed {
    parse_text(&sample(file), format)
}

const SAMPLES: [(&str, ListFormat); 20] = [
    ("adblock-allowlist-sample.txt", ListFormat::Adblock),
    ("adblock-hostsvn-sample.txt", ListFormat::Adblock),
    ("adblock-modifiers-tld-sample.txt", ListFormat::Adblock),
    ("adblock-sample.txt", ListFormat::Adblock),
    ("adblock-tld-allow-sample.txt", ListFormat::Adblock),
    ("dnsmasq-address-sample.conf", ListFormat::Dnsmasq),
    ("dnsmasq-local-sample.conf", ListFormat::Dnsmasq),
    ("dnsmasq-server-sample.conf", ListFormat::Dnsmasq),
    ("domains-plain-sample.txt", ListFormat::Plain),
    ("hosts-0.0.0.0-sample.txt", ListFormat::Hosts),
    ("hosts-127.0.0.1-sample.txt", ListFormat::Hosts),
    ("hosts-compressed-multi-name-sample.txt", ListFormat::Hosts),
    ("hosts-grouped-comments-sample.txt", ListFormat::Hosts),
    ("hosts-stevenblack-header-sample.txt", ListFormat::Hosts),
    ("idn-punycode-sample.txt", ListFormat::Plain),
    ("quirks-mixed-sample.txt", ListFormat::Hosts),
    ("quirks-ut1-sample.txt", ListFormat::Plain),
    ("rpz-sample.zone", ListFormat::Rpz),
    // Not a supported format: detection must still answer something.
    ("unbound-sample.conf", ListFormat::Plain),
    ("wildcard-sample.txt", ListFormat::Plain),
];

#[test]
fn detection_picks_each_samples_format() {
    for (file, expected) in SAMPLES {
        assert_eq!(detect(&sample(file)), expected, "{file}");
    }
}

#[test]
fn auto_parses_like_the_detected_format() {
    for (file, expected) in SAMPLES {
        let auto = parse_sample(file, ListFormat::Auto);
        let declared = parse_sample(file, expected);
        assert_eq!(auto.summary.format, expected, "{file}");
        assert_eq!(auto.entries, declared.entries, "{file}");
        assert_eq!(declared.summary.format, expected);
    }
}

#[test]
fn one_name_formats_account_for_every_line() {
    for (file, format) in SAMPLES {
        if file.contains("multi-name") {
            continue;
        }
        let text = sample(file);
        let s = parse_text(&text, format).summary;
        assert_eq!(
            s.entries + s.skipped + s.ignored,
            text.lines().count(),
            "{file}"
        );
    }
}

#[test]
fn detection_never_answers_auto() {
    for text in [
        "",
        "\n\n# only comments\n",
        "! adblock comment\n",
        "; zone\n",
        "a b c d\n",
    ] {
        assert_ne!(detect(text), ListFormat::Auto, "{text:?}");
    }
    assert_eq!(detect("! only a comment\n"), ListFormat::Adblock);
    assert_eq!(
        detect("[Adblock Plus 2.0]\nexample.com\n"),
        ListFormat::Adblock
    );
    assert_eq!(detect("[hosts]\n0.0.0.0 a.example\n"), ListFormat::Hosts);
    assert_eq!(detect(""), ListFormat::Plain);
}

#[test]
fn unbound_lines_are_skipped_not_turned_into_names() {
    let parsed = parse_sample("unbound-sample.conf", ListFormat::Auto);
    assert_eq!(parsed.summary.entries, 0);
    // 10 comment lines; `server:` and 289 `local-zone:` lines skipped.
    assert_eq!(parsed.summary.ignored, 10);
    assert_eq!(parsed.summary.skipped, 290);
    let first = &parsed.summary.first_skipped;
    assert_eq!((first[0].line, first[0].text.as_str()), (11, "server:"));
    assert_eq!(first[1].line, 12);
    assert_eq!(first[1].reason, SkipReason::UnsupportedSyntax);
    for format in [ListFormat::Hosts, ListFormat::Plain, ListFormat::Dnsmasq] {
        let parsed = parse_sample("unbound-sample.conf", format);
        assert_eq!(parsed.summary.entries, 0, "{format}");
    }
}

#[test]
fn a_broken_line_in_the_middle_keeps_the_lines_after_it() {
    let cases = [
        (
            "hosts-0.0.0.0-sample.txt",
            "0.0.0.0 bad..name",
            ListFormat::Hosts,
        ),
        (
            "domains-plain-sample.txt",
            "not a domain",
            ListFormat::Plain,
        ),
        ("adblock-sample.txt", "||bad domain^", ListFormat::Adblock),
        (
            "dnsmasq-local-sample.conf",
            "local=/x y/",
            ListFormat::Dnsmasq,
        ),
        ("rpz-sample.zone", "bad..name CNAME .", ListFormat::Rpz),
    ];
    for (file, broken, format) in cases {
        let text = sample(file);
        let clean = parse_text(&text, format);
        let mut lines: Vec<&str> = text.lines().collect();
        let middle = lines.len() / 2;
        lines.insert(middle, broken);
        let parsed = parse_text(&lines.join("\n"), format);
        assert_eq!(parsed.summary.skipped, clean.summary.skipped + 1, "{file}");
        assert_eq!(parsed.summary.entries, clean.summary.entries, "{file}");
        let skipped = &parsed.summary.first_skipped[clean.summary.first_skipped.len()];
        assert_eq!(skipped.line as usize, middle + 1, "{file}");
        assert_eq!(skipped.text, broken);
        // The same domains, those after the broken line one line further down.
        for ((domain, _, line), (again, _, shifted)) in clean.entries.iter().zip(&parsed.entries) {
            assert_eq!(domain, again, "{file}");
            let expected = if (*line as usize) > middle {
                line + 1
            } else {
                *line
            };
            assert_eq!(*shifted, expected, "{file}");
        }
    }
}

#[test]
fn at_most_twenty_skipped_lines_are_kept_cut_to_120_characters() {
    let long = format!("{} {}", "x".repeat(200), "y");
    let text = vec![long.as_str(); 30].join("\n");
    let s = parse_text(&text, ListFormat::Plain).summary;
    assert_eq!(s.skipped, 30);
    assert_eq!(s.first_skipped.len(), 20);
    assert_eq!(s.first_skipped[0].text.chars().count(), 120);
    assert_eq!(s.first_skipped[19].line, 20);
}

#[test]
fn raw_unicode_names_in_real_lists_become_punycode() {
    // hostsvn/threat-domains-VN.txt carries raw Unicode names.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/hostsvn/threat-domains-VN.txt"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let parsed = parse_text(&text, ListFormat::Auto);
    assert_eq!(parsed.summary.format, ListFormat::Plain);
    assert_eq!(parsed.summary.skipped, 0);
    let expected = idna::domain_to_ascii("shopgcaothụ.vn").unwrap();
    assert!(parsed.has(&expected, 2560));
    assert!(parsed.domains().all(|d| d.is_ascii()));
}

#[test]
fn format_names() {
    for (text, format) in [
        ("auto", ListFormat::Auto),
        ("plain", ListFormat::Plain),
        ("domains", ListFormat::Plain),
        ("hosts", ListFormat::Hosts),
        ("AdBlock", ListFormat::Adblock),
        ("dnsmasq", ListFormat::Dnsmasq),
        ("rpz", ListFormat::Rpz),
    ] {
        assert_eq!(text.parse::<ListFormat>(), Ok(format));
    }
    let error = "unbound".parse::<ListFormat>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown list format \"unbound\": expected one of auto, plain, domains (same as plain), \
         hosts, adblock, dnsmasq, rpz"
    );
    assert_eq!(ListFormat::Hosts.to_string(), "hosts");
}

#[test]
fn skip_reasons_read_clearly() {
    let invalid = SkipReason::InvalidName(crate::lists::name::NameError::EmptyLabel);
    assert_eq!(
        invalid.to_string(),
        "invalid domain name: empty label (a leading dot, or two dots in a row)"
    );
    assert_eq!(
        SkipReason::IpAddressEntry.to_string(),
        "IP address, not a domain name"
    );
}
