//! Precedence of lists, band entries and school entries.

use super::*;
use crate::config::{ListRoot, validate};
use crate::lists::trie::TrieBuilder;
use std::path::Path;

const CONFIG: &str = r#"
[upstream]
servers = ["192.0.2.53"]
[blocking]
sinkhole_ipv4 = "10.0.0.1"
[[category]]
id = "games"
[[category]]
id = "social"
[[band]]
id = "kids"
block = ["games", "social"]
allow = ["edu.games.example", "social.example"]
deny = ["deep.allowed.example", "bad.social.example"]
[[band]]
id = "staff"
block = []
[[school]]
id = "s1"
networks = ["10.0.0.0/8"]
allow = ["school-ok.games.example"]
deny = ["cheat.example"]
"#;

const NOW: Timestamp = Timestamp::UNIX_EPOCH;
const KIDS: Client = Client { school: 0, band: 0 };
const STAFF: Client = Client { school: 0, band: 1 };

fn setup() -> (Policies, DomainTrie) {
    let config = validate::parse(CONFIG, Path::new("t.toml"), ListRoot::Embedded).unwrap();
    let mut lists = TrieBuilder::new();
    let rule = |line| RuleRef { list: 0, line };
    lists.insert("games.example", 0, RuleAction::Block, rule(1));
    lists.insert("school-ok.games.example", 0, RuleAction::Block, rule(2));
    lists.insert("social.example", 1, RuleAction::Block, rule(3));
    lists.insert("allowed.example", 0, RuleAction::Allow, rule(4));
    (Policies::new(&config, SafeSearch::default()), lists.build())
}

fn blocked(verdict: &Verdict) -> bool {
    verdict.is_blocked()
}

#[test]
fn list_blocks_the_name_and_its_subdomains_for_bands_that_block_the_category() {
    let (policies, lists) = setup();
    assert!(blocked(&policies.evaluate(
        KIDS,
        "games.example",
        &lists,
        NOW,
        true
    )));
    assert!(blocked(&policies.evaluate(
        KIDS,
        "a.b.games.example",
        &lists,
        NOW,
        true
    )));
    assert!(!blocked(&policies.evaluate(
        STAFF,
        "games.example",
        &lists,
        NOW,
        true
    )));
    assert!(!blocked(&policies.evaluate(
        KIDS,
        "othergames.example",
        &lists,
        NOW,
        true
    )));
    match policies.evaluate(KIDS, "x.games.example", &lists, NOW, true) {
        Verdict::Block {
            category: Some(0),
            rule: Rule::List { domain, .. },
            schedule: None,
        } => assert_eq!(domain, "games.example"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_most_specific_rule_wins() {
    let (policies, lists) = setup();
    // Band allow of a subdomain beats the list's block of the parent.
    assert!(!blocked(&policies.evaluate(
        KIDS,
        "www.edu.games.example",
        &lists,
        NOW,
        true
    )));
    // Band deny of a subdomain beats the list's allow of the parent.
    assert!(blocked(&policies.evaluate(
        KIDS,
        "deep.allowed.example",
        &lists,
        NOW,
        true
    )));
    // Band allow of social.example, band deny of the deeper bad.social.example.
    assert!(!blocked(&policies.evaluate(
        KIDS,
        "www.social.example",
        &lists,
        NOW,
        true
    )));
    assert!(blocked(&policies.evaluate(
        KIDS,
        "x.bad.social.example",
        &lists,
        NOW,
        true
    )));
}

#[test]
fn on_equal_depth_an_allow_wins() {
    let (policies, lists) = setup();
    // Listed (block) and school-allowed at the very same name.
    match policies.evaluate(KIDS, "school-ok.games.example", &lists, NOW, true) {
        Verdict::Allow {
            rule:
                Some(Rule::Config {
                    scope: Scope::School(0),
                    action: RuleAction::Allow,
                    ..
                }),
        } => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn school_entries_apply_to_every_band_and_name_their_line() {
    let (policies, lists) = setup();
    for client in [KIDS, STAFF] {
        match policies.evaluate(client, "www.cheat.example", &lists, NOW, true) {
            Verdict::Block {
                category: None,
                rule: Rule::Config { place, domain, .. },
                ..
            } => {
                assert_eq!(domain, "cheat.example");
                assert_eq!(place.key, "school[0].deny[0]");
                assert_eq!(
                    place.line,
                    CONFIG
                        .lines()
                        .position(|l| l.contains("cheat.example"))
                        .unwrap()
                        + 1
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_doh_canary_is_blocked_for_everyone() {
    let (policies, lists) = setup();
    assert_eq!(
        policies.evaluate(STAFF, "use-application-dns.net", &lists, NOW, true),
        Verdict::Block {
            category: None,
            rule: Rule::DohCanary,
            schedule: None
        }
    );
}

#[test]
fn suffix_takes_labels_from_the_right() {
    assert_eq!(suffix("a.b.example.com", 2), "example.com");
    assert_eq!(suffix("a.b.example.com", 4), "a.b.example.com");
    assert_eq!(suffix("a.b.example.com.", 1), "com");
}

#[test]
fn canary_matches_itself_and_subdomains_only() {
    assert!(is_same_or_subdomain("use-application-dns.net", DOH_CANARY));
    assert!(is_same_or_subdomain(
        "x.use-application-dns.net",
        DOH_CANARY
    ));
    assert!(!is_same_or_subdomain(
        "fuse-application-dns.net",
        DOH_CANARY
    ));
}
