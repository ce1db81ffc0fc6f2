//! Parsers on the real samples in ../shared/data/formats. Expected counts
//! are computed from the files with simple independent filters.

use super::*;

fn sample(name: &str) -> String {
    let path = format!(
        "{}/../shared/data/formats/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn run(text: &str, format: ListFormat) -> (ParseSummary, Vec<(String, RuleAction, u32)>) {
    let mut entries = Vec::new();
    let summary = parse(text, format, &mut |e| {
        entries.push((e.domain.to_string(), e.action, e.line))
    });
    (summary, entries)
}

fn count_lines(text: &str, keep: impl Fn(&str) -> bool) -> usize {
    text.lines().map(str::trim).filter(|l| keep(l)).count()
}

fn has(entries: &[(String, RuleAction, u32)], domain: &str) -> bool {
    entries.iter().any(|(d, _, _)| d == domain)
}

#[test]
fn detection_picks_each_samples_format() {
    for (file, expected) in [
        ("domains-plain-sample.txt", ListFormat::Plain),
        ("wildcard-sample.txt", ListFormat::Plain),
        ("idn-punycode-sample.txt", ListFormat::Plain),
        ("hosts-0.0.0.0-sample.txt", ListFormat::Hosts),
        ("hosts-127.0.0.1-sample.txt", ListFormat::Hosts),
        ("hosts-compressed-multi-name-sample.txt", ListFormat::Hosts),
        ("hosts-grouped-comments-sample.txt", ListFormat::Hosts),
        ("hosts-stevenblack-header-sample.txt", ListFormat::Hosts),
        ("adblock-sample.txt", ListFormat::Adblock),
        ("adblock-allowlist-sample.txt", ListFormat::Adblock),
        ("adblock-hostsvn-sample.txt", ListFormat::Adblock),
        ("adblock-modifiers-tld-sample.txt", ListFormat::Adblock),
        ("dnsmasq-address-sample.conf", ListFormat::Dnsmasq),
        ("dnsmasq-local-sample.conf", ListFormat::Dnsmasq),
        ("dnsmasq-server-sample.conf", ListFormat::Dnsmasq),
        ("rpz-sample.zone", ListFormat::Rpz),
    ] {
        assert_eq!(detect(&sample(file)), expected, "{file}");
    }
}

#[test]
fn plain_and_wildcard_lists() {
    let text = sample("domains-plain-sample.txt");
    let (summary, entries) = run(&text, ListFormat::Auto);
    assert_eq!(
        summary.entries,
        count_lines(&text, |l| !l.is_empty() && !l.starts_with('#'))
    );
    assert_eq!(summary.skipped, 0);
    assert!(has(&entries, "000free.us"));
    let text = sample("wildcard-sample.txt");
    let (summary, entries) = run(&text, ListFormat::Auto);
    assert_eq!(summary.entries, count_lines(&text, |l| l.starts_with("*.")));
    assert!(has(&entries, "01b21db07772caa1.com"), "*.x is read as x");
}

#[test]
fn hosts_files_of_every_shape() {
    let text = sample("hosts-0.0.0.0-sample.txt");
    let (summary, entries) = run(&text, ListFormat::Auto);
    assert_eq!(
        summary.entries,
        count_lines(&text, |l| l.starts_with("0.0.0.0 "))
    );
    assert!(has(&entries, "04867a76e0725075.com"));

    let text = sample("hosts-127.0.0.1-sample.txt");
    let (summary, entries) = run(&text, ListFormat::Auto);
    assert_eq!(
        summary.entries,
        count_lines(&text, |l| l.starts_with("127.0.0.1 ")
            && !l.contains("localhost"))
    );
    assert!(has(&entries, "1-edge-chat.facebook.com"));

    let text = sample("hosts-compressed-multi-name-sample.txt");
    let (summary, entries) = run(&text, ListFormat::Auto);
    let names: usize = text
        .lines()
        .filter(|l| l.starts_with("0.0.0.0 "))
        .map(|l| l.split_whitespace().count() - 1)
        .sum();
    assert_eq!(summary.entries, names, "every name of every line");
    assert!(has(&entries, "014a9a1fc2f59ca6.com") && has(&entries, "pixel.1und1.de"));

    let text = sample("hosts-grouped-comments-sample.txt");
    let (summary, entries) = run(&text, ListFormat::Auto);
    assert_eq!(
        summary.entries,
        count_lines(&text, |l| l.starts_with("0.0.0.0 "))
    );
    assert!(has(&entries, "dmp.doubleclick.net"));

    let text = sample("hosts-stevenblack-header-sample.txt");
    let (summary, entries) = run(&text, ListFormat::Auto);
    assert!(
        !has(&entries, "localhost")
            && !has(&entries, "broadcasthost")
            && !has(&entries, "localhost.localdomain")
    );
    assert_eq!(summary.skipped, 0, "{:?}", summary.first_skipped);
}

#[test]
fn adblock_rules_exceptions_and_modifiers() {
    let text = sample("adblock-hostsvn-sample.txt");
    let (summary, entries) = run(&text, ListFormat::Auto);
    // `||log-*.zadn.vn^`: a glob inside a name cannot be a DNS suffix rule.
    let globs = count_lines(&text, |l| l.starts_with("||") && l[2..].contains('*'));
    assert_eq!(
        summary.entries,
        count_lines(&text, |l| l.starts_with("||")) - globs
    );
    assert_eq!(summary.skipped, globs);
    assert!(has(&entries, "adx.vn"));

    let text = sample("adblock-allowlist-sample.txt");
    let (summary, entries) = run(&text, ListFormat::Auto);
    let rules = count_lines(&text, |l| l.starts_with("@@||") && !l[4..].contains('*'));
    assert_eq!((summary.entries, summary.allow_entries), (rules, rules));
    assert!(
        entries
            .iter()
            .all(|(_, action, _)| *action == RuleAction::Allow)
    );
    assert!(has(&entries, "analytics.twitter.com"));

    let text = sample("adblock-modifiers-tld-sample.txt");
    let (summary, entries) = run(&text, ListFormat::Auto);
    let unsupported = count_lines(&text, |l| {
        l.starts_with("||") && l.contains('$') && !l.ends_with("$important")
    });
    assert_eq!(summary.skipped, unsupported);
    assert!(
        summary
            .first_skipped
            .iter()
            .all(|s| matches!(s.reason, SkipReason::UnsupportedModifier(_)))
    );
    assert!(has(&entries, "haus"), "||*.haus^ blocks the TLD");
    assert!(
        !has(&entries, "army"),
        "a $denyallow rule is skipped, not half-applied"
    );
}

#[test]
fn dnsmasq_address_local_and_server() {
    for (file, prefix) in [
        ("dnsmasq-address-sample.conf", "address=/"),
        ("dnsmasq-local-sample.conf", "local=/"),
        ("dnsmasq-server-sample.conf", "server=/"),
    ] {
        let text = sample(file);
        let (summary, _) = run(&text, ListFormat::Auto);
        assert_eq!(
            summary.entries,
            count_lines(&text, |l| l.starts_with(prefix)),
            "{file}"
        );
        assert_eq!(summary.skipped, 0, "{file}: {:?}", summary.first_skipped);
    }
    let (_, entries) = run(
        "address=/a.example/b.example/0.0.0.0\nserver=/c.example/\n",
        ListFormat::Dnsmasq,
    );
    let domains: Vec<&str> = entries.iter().map(|(d, _, _)| d.as_str()).collect();
    assert_eq!(domains, ["a.example", "b.example", "c.example"]);
}

#[test]
fn rpz_zone_with_header_wildcards_and_passthru() {
    let text = sample("rpz-sample.zone");
    let (summary, entries) = run(&text, ListFormat::Auto);
    assert_eq!(
        summary.entries,
        count_lines(&text, |l| l.ends_with("CNAME ."))
    );
    assert_eq!(summary.skipped, 0, "{:?}", summary.first_skipped);
    assert!(has(&entries, "smetrics.abbott") && !has(&entries, "localhost"));
    let zone = "$ORIGIN rpz.example.\n@ IN SOA ns. admin. (\n 1 2 3\n 4 5 )\nbad.example CNAME .\nok.bad.example CNAME rpz-passthru.\nabs.example.rpz.example. CNAME .\n";
    let (_, entries) = run(zone, ListFormat::Rpz);
    assert_eq!(
        entries,
        vec![
            ("bad.example".into(), RuleAction::Block, 5),
            ("ok.bad.example".into(), RuleAction::Allow, 6),
            ("abs.example".into(), RuleAction::Block, 7),
        ]
    );
}

#[test]
fn idn_mixed_case_trailing_dots_and_inline_comments() {
    let text = sample("idn-punycode-sample.txt");
    let (summary, entries) = run(&text, ListFormat::Auto);
    assert_eq!(
        summary.entries,
        count_lines(&text, |l| !l.is_empty() && !l.starts_with('#'))
    );
    assert!(
        entries
            .iter()
            .all(|(d, _, _)| d.is_ascii() && d.contains("xn--"))
    );
    let (_, unicode) = run("Bücher.DE\n", ListFormat::Plain);
    assert_eq!(unicode[0].0, "xn--bcher-kva.de");

    let text = sample("quirks-mixed-sample.txt");
    let (summary, entries) = run(&text, ListFormat::Hosts);
    assert!(has(&entries, "www.guruofporn.com"), "trailing dot stripped");
    assert!(has(&entries, "allhqpics.com"), "inline comment stripped");
    assert!(
        entries
            .iter()
            .all(|(d, _, _)| !d.chars().any(|c| c.is_ascii_uppercase()))
    );
    assert!(summary.entries > 50);
}

#[test]
fn ip_addresses_are_skipped_with_their_line_numbers() {
    let text = sample("quirks-ut1-sample.txt");
    let (summary, entries) = run(&text, ListFormat::Plain);
    assert!(entries.is_empty());
    assert_eq!(summary.skipped, text.lines().count());
    assert_eq!(summary.first_skipped.len(), SKIPPED_KEPT);
    assert_eq!(summary.first_skipped[0].line, 1);
    assert_eq!(summary.first_skipped[0].reason, SkipReason::IpAddressEntry);
}

#[test]
fn a_broken_line_never_drops_the_rest() {
    let (summary, entries) = run(
        "good.example\nbad domain here!\nwith/slash.example\nafter.example\n",
        ListFormat::Plain,
    );
    assert_eq!(summary.entries, 2);
    assert_eq!(summary.skipped, 2);
    assert_eq!(entries[1], ("after.example".into(), RuleAction::Block, 4));
    assert_eq!(summary.first_skipped[1].line, 3);
}

#[test]
fn unbound_syntax_is_skipped_not_misread() {
    let text = sample("unbound-sample.conf");
    let (summary, entries) = run(&text, ListFormat::Auto);
    assert!(
        entries.iter().all(|(d, _, _)| !d.contains("local-zone")),
        "no garbage names"
    );
    assert!(summary.skipped > 0);
}

#[test]
fn format_names_parse() {
    assert_eq!("domains".parse::<ListFormat>(), Ok(ListFormat::Plain));
    assert!(
        "unbound"
            .parse::<ListFormat>()
            .unwrap_err()
            .to_string()
            .contains("hosts")
    );
}
