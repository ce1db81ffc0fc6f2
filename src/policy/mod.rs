//! Band policies and the [`Verdict`] they give.
//!
//! A query is judged by up to three rule sets, all keyed the same way (a rule
//! covers its domain and every subdomain):
//! 1. the category lists, masked to the categories the client's band blocks;
//! 2. the band's own `deny` / `allow` entries;
//! 3. the school's own `deny` / `allow` entries.
//!
//! The **most specific** rule wins (the one matching the most labels of the
//! name); on a tie an allow wins, so an exception always beats a block of the
//! very same domain. Rule sets 2 and 3 are small tries of their own; the big
//! category trie is walked once per query whatever the number of categories.
//!
//! Uses: `lists`, `client`, `config`. Used by: `snapshot`, `dns`, `web`,
//! `app`.

pub mod clock;
pub mod safe_search;
pub mod schedule;

use crate::client::Client;
use crate::config::{Band, Config, ConfigPlace, ConfigRule};
use crate::lists::trie::{DomainTrie, TrieBuilder, TrieMatch};
use crate::lists::{CategoryMask, RuleAction, RuleRef};
use jiff::Timestamp;
use safe_search::SafeSearch;
use schedule::{BandSchedule, LocalTime, SchoolTime};

/// The name Firefox asks before it turns on DNS-over-HTTPS by itself.
pub const DOH_CANARY: &str = "use-application-dns.net";
/// Discovery of Designated Resolvers (RFC 9462): answered NODATA so devices
/// do not upgrade to an encrypted resolver behind the filter's back.
pub const DDR_NAME: &str = "_dns.resolver.arpa";
/// iCloud Private Relay: NXDOMAIN makes Apple devices fall back to normal DNS.
pub const PRIVATE_RELAY: [&str; 2] = ["mask.icloud.com", "mask-h2.icloud.com"];

/// What edudns decided for one (client, name), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward to the upstream. `rule` is the exception that allowed it, if any.
    Allow { rule: Option<Rule> },
    /// Answer from the sinkhole. `category` indexes `Config::categories`
    /// (`None` for a deny entry or a built-in rule); `schedule` indexes the
    /// band's schedules when the block is time-based.
    Block {
        category: Option<usize>,
        rule: Rule,
        schedule: Option<usize>,
    },
    /// Safe search: answer with a CNAME to `target` and the target's records.
    Rewrite { engine: usize, target: String },
}

impl Verdict {
    pub fn is_blocked(&self) -> bool {
        matches!(self, Verdict::Block { .. })
    }
}

/// The rule that decided a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// An entry of a category list: `list` indexes `Snapshot::lists_loaded`.
    List {
        list: usize,
        line: u32,
        /// The listed domain (a suffix of the query name).
        domain: String,
    },
    /// A deny or allow entry of the configuration.
    Config {
        scope: Scope,
        action: RuleAction,
        domain: String,
        place: ConfigPlace,
    },
    /// The DoH canary domain, answered NXDOMAIN to keep Firefox on this resolver.
    DohCanary,
    /// `_dns.resolver.arpa`, answered NODATA (bypass prevention).
    DesignatedResolver,
    /// iCloud Private Relay, answered NXDOMAIN (bypass prevention).
    PrivateRelay,
    /// An entry of the authorities' takedown list (applies to every band).
    Takedown {
        domain: String,
        reference: String,
        date: String,
    },
    /// A temporary allowance (a lesson needs the site for a while).
    Temporary {
        id: i64,
        domain: String,
        /// Unix time it lapses.
        until: i64,
        reason: String,
    },
    /// An allowed name whose answer leads through a CNAME to a blocked name.
    CnameTarget { target: String, inner: Box<Rule> },
}

/// Where a config entry sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Band(usize),
    School(usize),
    /// The education office's own entries (`[office]`), for every school.
    Office,
}

/// Compiled config entries of one band or school.
struct EntrySet {
    trie: DomainTrie,
    deny: Vec<ConfigRule>,
    allow: Vec<ConfigRule>,
}

impl EntrySet {
    fn new(deny: &[ConfigRule], allow: &[ConfigRule]) -> Self {
        let mut builder = TrieBuilder::new();
        for (index, (rules, action)) in [(deny, RuleAction::Block), (allow, RuleAction::Allow)]
            .into_iter()
            .enumerate()
        {
            for (line, rule) in rules.iter().enumerate() {
                let source = RuleRef {
                    list: index as u16,
                    line: line as u32,
                };
                builder.insert(&rule.domain, 0, action, source);
            }
        }
        EntrySet {
            trie: builder.build(),
            deny: deny.to_vec(),
            allow: allow.to_vec(),
        }
    }

    fn rule(&self, scope: Scope, found: &TrieMatch, name: &str) -> Rule {
        let entries = match found.action {
            RuleAction::Block => &self.deny,
            RuleAction::Allow => &self.allow,
        };
        let domain = suffix(name, found.depth).to_string();
        let place = self
            .trie
            .rule(found)
            .and_then(|r| entries.get(r.line as usize))
            .or_else(|| entries.iter().find(|e| e.domain == domain))
            .map(|e| e.place.clone())
            .unwrap_or(ConfigPlace {
                key: String::new(),
                line: 0,
            });
        Rule::Config {
            scope,
            action: found.action,
            domain,
            place,
        }
    }
}

/// All band and school policies of one snapshot.
pub struct Policies {
    band_masks: Vec<CategoryMask>,
    bands: Vec<EntrySet>,
    band_settings: Vec<Band>,
    schedules: Vec<BandSchedule>,
    schools: Vec<EntrySet>,
    office: EntrySet,
    school_times: Vec<SchoolTime>,
    safe_search: SafeSearch,
    block_doh_canary: bool,
}

impl Policies {
    pub fn new(config: &Config, safe_search: SafeSearch) -> Self {
        Policies {
            band_settings: config.bands.clone(),
            schedules: config.bands.iter().map(BandSchedule::new).collect(),
            school_times: config.schools.iter().map(SchoolTime::new).collect(),
            safe_search,
            band_masks: config
                .bands
                .iter()
                .map(|band| band.blocked.iter().fold(0, |mask, &c| mask | (1 << c)))
                .collect(),
            bands: config
                .bands
                .iter()
                .map(|b| EntrySet::new(&b.deny, &b.allow))
                .collect(),
            schools: config
                .schools
                .iter()
                .map(|s| EntrySet::new(&s.deny, &s.allow))
                .collect(),
            office: EntrySet::new(&config.office.deny, &config.office.allow),
            block_doh_canary: config.blocking.block_doh_canary,
        }
    }

    /// The safe-search engines, for explanations.
    pub fn safe_search(&self) -> &SafeSearch {
        &self.safe_search
    }

    /// Judges `name` (lowercase, no trailing dot) for `client` at `now`
    /// (schedules). `lists` is the category trie.
    pub fn evaluate(
        &self,
        client: Client,
        name: &str,
        lists: &DomainTrie,
        now: Timestamp,
        provenance: bool,
    ) -> Verdict {
        let builtin = |rule| Verdict::Block {
            category: None,
            rule,
            schedule: None,
        };
        if self.block_doh_canary && is_same_or_subdomain(name, DOH_CANARY) {
            return builtin(Rule::DohCanary);
        }
        let band = &self.band_settings[client.band];
        if band.bypass_prevention {
            if is_same_or_subdomain(name, DDR_NAME) {
                return builtin(Rule::DesignatedResolver);
            }
            if PRIVATE_RELAY.contains(&name) {
                return builtin(Rule::PrivateRelay);
            }
        }
        let verdict = self.evaluate_rules(client, name, lists, now, provenance);
        self.with_safe_search(client, name, verdict)
    }

    /// An allowed name of a safe-search engine becomes its rewrite.
    pub fn with_safe_search(&self, client: Client, name: &str, verdict: Verdict) -> Verdict {
        if let Verdict::Allow { .. } = verdict
            && let Some((engine, target)) = self
                .safe_search
                .rewrite(name, &self.band_settings[client.band])
        {
            return Verdict::Rewrite {
                engine,
                target: target.to_string(),
            };
        }
        verdict
    }

    fn evaluate_rules(
        &self,
        client: Client,
        name: &str,
        lists: &DomainTrie,
        now: Timestamp,
        provenance: bool,
    ) -> Verdict {
        let all = CategoryMask::MAX;
        let schedule = &self.schedules[client.band];
        let school_time = &self.school_times[client.school];
        let local = (!schedule.is_empty()).then(|| LocalTime::of(now, school_time));
        let scheduled = local.map_or(0, |t| schedule.active_mask(t, school_time));
        let from_lists = lists.decide(name, self.band_masks[client.band] | scheduled);
        let from_band = self.bands[client.band].trie.decide(name, all);
        let from_school = self.schools[client.school].trie.decide(name, all);
        let from_office = self.office.trie.decide(name, all);

        // Most specific wins; on equal depth allow beats block; then the
        // narrower scope (school, band, office, lists) explains it.
        let candidates = [
            from_school.map(|m| (m, 3)),
            from_band.map(|m| (m, 2)),
            from_office.map(|m| (m, 1)),
            from_lists.map(|m| (m, 0)),
        ];
        let best = candidates
            .into_iter()
            .flatten()
            .max_by_key(|(m, scope)| (m.depth, m.action == RuleAction::Allow, *scope));
        let Some((found, scope)) = best else {
            return Verdict::Allow { rule: None };
        };
        let (category, rule) = match scope {
            3 => (
                None,
                self.schools[client.school].rule(Scope::School(client.school), &found, name),
            ),
            2 => (
                None,
                self.bands[client.band].rule(Scope::Band(client.band), &found, name),
            ),
            1 => (None, self.office.rule(Scope::Office, &found, name)),
            _ => {
                let source = if provenance { lists.rule(&found) } else { None };
                (
                    Some(usize::from(found.category)),
                    Rule::List {
                        list: source.map_or(usize::MAX, |s| usize::from(s.list)),
                        line: source.map_or(0, |s| s.line),
                        domain: suffix(name, found.depth).to_string(),
                    },
                )
            }
        };
        match found.action {
            RuleAction::Allow => Verdict::Allow { rule: Some(rule) },
            RuleAction::Block => {
                // A block through a category the band does not block all the
                // time came from a schedule window: say which.
                let schedule = match (category, local) {
                    (Some(c), Some(t)) if self.band_masks[client.band] & (1 << c) == 0 => {
                        schedule.active_for(c, t, school_time)
                    }
                    _ => None,
                };
                Verdict::Block {
                    category,
                    rule,
                    schedule,
                }
            }
        }
    }
}

/// The last `depth` labels of `name`.
pub fn suffix(name: &str, depth: u8) -> &str {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut remaining = depth;
    for (i, b) in name.bytes().enumerate().rev() {
        if b == b'.' {
            remaining -= 1;
            if remaining == 0 {
                return &name[i + 1..];
            }
        }
    }
    name
}

fn is_same_or_subdomain(name: &str, domain: &str) -> bool {
    name == domain
        || name
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

#[cfg(test)]
mod tests;
