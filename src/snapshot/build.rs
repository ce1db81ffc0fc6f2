//! Compiling a [`Config`] into a [`Snapshot`]: read and parse every list,
//! build the trie and the policies. Runs off the hot path.

use super::Snapshot;
use crate::client::NetworkMap;
use crate::config::{Config, ConfigPlace, ListRoot, ListSpec};
use crate::lists::RuleRef;
use crate::lists::formats::{self, ListFormat};
use crate::lists::trie::TrieBuilder;
use crate::policy::Policies;
use crate::policy::safe_search::{EMBEDDED_MAPPING, SafeSearch};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tracing::{info, warn};

/// Lists compiled into the binary for the embedded default config, keyed by
/// the path the config names them with.
const EMBEDDED_LISTS: &[(&str, &str)] = &[
    (
        "../blocklists/curated/adult.txt",
        include_str!("../../blocklists/curated/adult.txt"),
    ),
    (
        "../blocklists/curated/gambling.txt",
        include_str!("../../blocklists/curated/gambling.txt"),
    ),
    (
        "../blocklists/curated/violence.txt",
        include_str!("../../blocklists/curated/violence.txt"),
    ),
    (
        "../blocklists/curated/drugs.txt",
        include_str!("../../blocklists/curated/drugs.txt"),
    ),
    (
        "../blocklists/curated/social.txt",
        include_str!("../../blocklists/curated/social.txt"),
    ),
    (
        "../blocklists/curated/games.txt",
        include_str!("../../blocklists/curated/games.txt"),
    ),
    (
        "../blocklists/curated/doh-bypass.txt",
        include_str!("../../blocklists/curated/doh-bypass.txt"),
    ),
];

/// What one list file contributed.
#[derive(Debug, Clone)]
pub struct LoadedList {
    /// Index into `Config::categories`.
    pub category: usize,
    pub display: String,
    pub place: ConfigPlace,
    pub format: ListFormat,
    pub entries: usize,
    pub allow_entries: usize,
    pub skipped: usize,
    /// Block lines left out because they would block a protected name
    /// (subscribed lists only).
    pub protected_ignored: usize,
    /// The first of those lines: from the parse, or from the download's
    /// meta file when the lists came from the compiled cache.
    pub protected_samples: Vec<crate::lists::download::IgnoredLine>,
    /// Whether the list is a subscription (protection applies).
    pub subscribed: bool,
    pub elapsed: Duration,
    /// SHA-256 of the file's bytes (the list version reports name).
    pub sha256: String,
}

impl LoadedList {
    fn new(
        category: usize,
        spec: &ListSpec,
        summary: &super::cache::ListSummary,
        elapsed: Duration,
        sha256: String,
    ) -> LoadedList {
        LoadedList {
            category,
            display: spec.display.clone(),
            place: spec.place.clone(),
            format: summary.format,
            entries: summary.entries,
            allow_entries: summary.allow_entries,
            skipped: summary.skipped,
            protected_ignored: summary.protected_ignored,
            protected_samples: Vec::new(),
            subscribed: spec.download.is_some(),
            elapsed,
            sha256,
        }
    }
}

/// A list that could not be read at all.
#[derive(Debug, Clone)]
pub struct ListIssue {
    pub list: String,
    pub place: ConfigPlace,
    pub message: String,
}

/// Why a snapshot could not be built; the running one stays in force.
#[derive(Debug, thiserror::Error)]
pub struct BuildError {
    pub config_path: std::path::PathBuf,
    pub issues: Vec<ListIssue>,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot load the lists named in {}:",
            self.config_path.display()
        )?;
        for issue in &self.issues {
            write!(
                f,
                "\n  {}:{}: {}: list {}: {}",
                self.config_path.display(),
                issue.place.line,
                issue.place.key,
                issue.list,
                issue.message
            )?;
        }
        Ok(())
    }
}

fn read_list(root: &ListRoot, path: &std::path::Path) -> Result<String, String> {
    match root {
        ListRoot::Embedded => {
            let key = path.to_string_lossy();
            EMBEDDED_LISTS
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, text)| (*text).to_string())
                .ok_or_else(|| "not among the lists compiled into the binary".to_string())
        }
        ListRoot::Directory(_) => match std::fs::read(path) {
            // A list with a stray non-UTF-8 byte still loads: the bad line is skipped later.
            Ok(bytes) => Ok(String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        },
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Domains of accepted review requests (`<accepted_dir>/<school>.txt`)
/// join the school's allow entries: the same reload path as a config edit.
fn add_accepted_reviews(config: &mut Config) {
    for index in 0..config.schools.len() {
        let path = config.accepted_allow_file(&config.schools[index].id);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let display = path.display().to_string();
        let mut added = Vec::new();
        formats::parse(&text, ListFormat::Plain, &mut |entry| {
            added.push(crate::config::ConfigRule {
                domain: entry.domain.to_string(),
                place: ConfigPlace {
                    key: format!("accepted review ({display})"),
                    line: entry.line as usize,
                },
            });
        });
        config.schools[index].allow.extend(added);
    }
}

/// The safe-search mapping named by the config, or the embedded one.
fn load_safe_search(config: &Config) -> Result<SafeSearch, ListIssue> {
    let place = ConfigPlace {
        key: "safe_search.mapping".to_string(),
        line: 0,
    };
    let (display, text) = match &config.safe_search_mapping {
        None => (
            "<embedded blocklists/safe-search.toml>".to_string(),
            EMBEDDED_MAPPING.to_string(),
        ),
        Some(path) => {
            let display = path.display().to_string();
            match std::fs::read_to_string(path) {
                Ok(text) => (display, text),
                Err(e) => {
                    return Err(ListIssue {
                        list: display,
                        place,
                        message: format!("cannot read: {e}"),
                    });
                }
            }
        }
    };
    SafeSearch::parse(&text).map_err(|message| ListIssue {
        list: display,
        place,
        message,
    })
}

/// Builds a snapshot from a validated config. Every list is parsed; bad
/// lines are skipped and logged with file:line; an unreadable list fails
/// the build (and so keeps the running snapshot on reload).
pub fn build(config: Config, generation: u64) -> Result<Snapshot, BuildError> {
    build_reusing(config, generation, None)
}

/// The lists of a config, in order, as the trie is built from them.
fn same_lists(a: &Config, b: &Config) -> bool {
    a.list_root == b.list_root
        && a.categories.len() == b.categories.len()
        && a.categories.iter().zip(&b.categories).all(|(x, y)| {
            x.id == y.id
                && x.lists.len() == y.lists.len()
                && x.lists.iter().zip(&y.lists).all(|(l, m)| {
                    l.path == m.path && l.format == m.format && l.display == m.display
                })
        })
}

fn list_stamps(config: &Config) -> Vec<Option<(SystemTime, u64)>> {
    config
        .categories
        .iter()
        .flat_map(|c| &c.lists)
        .map(|spec| match config.list_root {
            ListRoot::Embedded => Some((SystemTime::UNIX_EPOCH, 0)),
            ListRoot::Directory(_) => std::fs::metadata(&spec.path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len()))),
        })
        .collect()
}

/// [`build`], but when `previous` was built from the very same list files
/// (same paths and formats, unchanged modification times and sizes) its
/// trie is shared instead of parsed again: a policy edit through the
/// management API then takes milliseconds even with millions of listed
/// domains. Policies, networks, safe search and accepted reviews are
/// always rebuilt.
pub fn build_reusing(
    config: Config,
    generation: u64,
    previous: Option<&Snapshot>,
) -> Result<Snapshot, BuildError> {
    build_with(config, generation, previous, None)
}

/// [`build_reusing`] with the compiled-lists cache file `cache`
/// ([`super::cache`]): read instead of parsing when the lists' bytes are
/// those it was written for, written after a full build. `edudns serve`
/// builds this way; `check-config` always parses.
pub fn build_cached(
    config: Config,
    generation: u64,
    previous: Option<&Snapshot>,
    cache: &std::path::Path,
) -> Result<Snapshot, BuildError> {
    build_with(config, generation, previous, Some(cache))
}

/// The lists of `config` in build order, with their category index.
fn list_specs(config: &Config) -> Vec<(usize, &ListSpec)> {
    config
        .categories
        .iter()
        .enumerate()
        .flat_map(|(index, category)| category.lists.iter().map(move |spec| (index, spec)))
        .collect()
}

/// A subscription whose first download has not happened yet: left out.
fn not_downloaded_yet(spec: &ListSpec) -> bool {
    spec.download.is_some() && !spec.path.exists()
}

/// The SHA-256 of every list present, or `None` if one cannot be read
/// (the full build then reports it).
fn list_hashes(config: &Config) -> Option<Vec<Option<String>>> {
    list_specs(config)
        .into_iter()
        .map(|(_, spec)| {
            if not_downloaded_yet(spec) {
                return Some(None);
            }
            let text = read_list(&config.list_root, &spec.path).ok()?;
            Some(Some(sha256_hex(text.as_bytes())))
        })
        .collect()
}

fn build_with(
    mut config: Config,
    generation: u64,
    previous: Option<&Snapshot>,
    cache: Option<&std::path::Path>,
) -> Result<Snapshot, BuildError> {
    let started = Instant::now();
    add_accepted_reviews(&mut config);
    let stamps = list_stamps(&config);
    if let Some(previous) = previous
        && same_lists(&previous.config, &config)
        && stamps.iter().all(Option::is_some)
        && previous.list_stamps == stamps
    {
        let safe_search = load_safe_search(&config).map_err(|issue| BuildError {
            config_path: config.path.clone(),
            issues: vec![issue],
        })?;
        let networks = NetworkMap::new(&config);
        let policies = Policies::new(&config, safe_search);
        info!(
            domains = previous.lists.domain_count(),
            ms = started.elapsed().as_millis() as u64,
            generation,
            "snapshot built (lists unchanged: trie shared)"
        );
        return Ok(Snapshot {
            config: Arc::new(config),
            networks,
            policies,
            lists: previous.lists.clone(),
            list_stamps: stamps,
            lists_loaded: previous.lists_loaded.clone(),
            generation,
            counters: crate::counting::CounterTable::empty(),
            takedowns: Default::default(),
            allowances: Default::default(),
            built_at: SystemTime::now(),
        });
    }
    // With a cache: hash every list first; a key match skips the parsing.
    let hashes = cache.and_then(|_| list_hashes(&config));
    let cache_key = hashes.as_ref().map(|hashes| {
        let specs = list_specs(&config);
        let input: Vec<_> = specs
            .iter()
            .zip(hashes)
            .map(|((category, spec), hash)| {
                (
                    *category,
                    spec.format,
                    spec.download.is_some(),
                    hash.as_deref(),
                )
            })
            .collect();
        super::cache::key(&config.lists.protected.sha256, &input)
    });
    if let (Some(path), Some(key), Some(hashes)) = (cache, &cache_key, &hashes) {
        match super::cache::load(path, key) {
            Ok(Some((trie, summaries))) if summaries.len() == hashes.iter().flatten().count() => {
                let loaded = list_specs(&config)
                    .into_iter()
                    .zip(hashes)
                    .filter_map(|((category, spec), hash)| Some((category, spec, hash.clone()?)))
                    .zip(summaries)
                    .map(|((category, spec, sha256), summary)| {
                        let mut list =
                            LoadedList::new(category, spec, &summary, Duration::ZERO, sha256);
                        if list.subscribed && list.protected_ignored > 0 {
                            list.protected_samples =
                                crate::lists::download::read_meta(&spec.path).protected_samples;
                        }
                        list
                    })
                    .collect();
                info!(path = %path.display(), "lists unchanged since they were compiled: read from the cache");
                return finish(
                    config,
                    trie,
                    loaded,
                    stamps,
                    generation,
                    started,
                    Vec::new(),
                );
            }
            Ok(_) => {}
            Err(error) => {
                warn!(path = %path.display(), %error, "compiled lists cache unusable; parsing the lists");
            }
        }
    }
    let mut builder = TrieBuilder::new();
    let mut loaded = Vec::new();
    let mut summaries = Vec::new();
    let mut issues = Vec::new();
    let mut list_number = 0;
    for (category_index, category) in config.categories.iter().enumerate() {
        for spec in &category.lists {
            let list_started = Instant::now();
            let known_hash = hashes
                .as_ref()
                .and_then(|h| h.get(list_number).cloned().flatten());
            list_number += 1;
            if not_downloaded_yet(spec) {
                // A subscription without a cached copy yet (first start
                // offline): filter with the rest; the downloader fills it in.
                info!(list = %spec.display, "subscribed list not downloaded yet: filtering without it until its first download");
                continue;
            }
            let text = match read_list(&config.list_root, &spec.path) {
                Ok(text) => text,
                Err(message) => {
                    issues.push(ListIssue {
                        list: spec.display.clone(),
                        place: spec.place.clone(),
                        message,
                    });
                    continue;
                }
            };
            let list_index = loaded.len() as u16;
            let protect = spec.download.is_some();
            let mut ignored = crate::lists::download::IgnoredCount::default();
            let summary = formats::parse(&text, spec.format, &mut |entry| {
                if protect && !ignored.keep(&config.lists.protected, &entry) {
                    return;
                }
                let source = RuleRef {
                    list: list_index,
                    line: entry.line,
                };
                builder.insert(entry.domain, category_index as u8, entry.action, source);
            });
            for line in &ignored.samples {
                info!(
                    list = %spec.display,
                    line = line.line,
                    entry = %line.entry,
                    protected = %line.protected,
                    "list line ignored: it would block a protected name"
                );
            }
            for skipped in &summary.first_skipped {
                warn!(
                    list = %spec.display,
                    line = skipped.line,
                    reason = %skipped.reason,
                    text = %skipped.text,
                    "skipped list line"
                );
            }
            let summary = super::cache::ListSummary {
                format: summary.format,
                // The rules in force: protection's ignored lines are not.
                entries: summary.entries - ignored.count,
                allow_entries: summary.allow_entries,
                skipped: summary.skipped,
                protected_ignored: ignored.count,
            };
            let mut list = LoadedList::new(
                category_index,
                spec,
                &summary,
                list_started.elapsed(),
                known_hash.unwrap_or_else(|| sha256_hex(text.as_bytes())),
            );
            list.protected_samples = ignored.samples;
            summaries.push(summary);
            info!(
                list = %list.display,
                category = %category.id,
                format = ?list.format,
                entries = list.entries,
                allow_entries = list.allow_entries,
                skipped = list.skipped,
                protected_ignored = list.protected_ignored,
                bytes = text.len(),
                ms = list.elapsed.as_millis() as u64,
                "list loaded"
            );
            loaded.push(list);
        }
    }
    if !issues.is_empty() {
        // An error either way; `finish` adds a safe-search problem to it.
        let empty = crate::lists::trie::DomainTrie::empty();
        return finish(config, empty, loaded, stamps, generation, started, issues);
    }
    let lists = builder.build();
    if let (Some(path), Some(key)) = (cache, &cache_key) {
        let written = Instant::now();
        match super::cache::store(path, key, &lists, &summaries) {
            Ok(()) => {
                info!(path = %path.display(), ms = written.elapsed().as_millis() as u64, "compiled lists cached for the next start")
            }
            Err(error) => {
                warn!(path = %path.display(), %error, "cannot write the compiled lists cache; the next start parses the lists again")
            }
        }
    }
    finish(config, lists, loaded, stamps, generation, started, issues)
}

/// The snapshot around a trie: safe search, networks, policies.
fn finish(
    config: Config,
    lists: crate::lists::trie::DomainTrie,
    loaded: Vec<LoadedList>,
    stamps: Vec<Option<(SystemTime, u64)>>,
    generation: u64,
    started: Instant,
    mut issues: Vec<ListIssue>,
) -> Result<Snapshot, BuildError> {
    let safe_search = load_safe_search(&config).unwrap_or_else(|issue| {
        issues.push(issue);
        SafeSearch::default()
    });
    if !issues.is_empty() {
        return Err(BuildError {
            config_path: config.path.clone(),
            issues,
        });
    }
    let networks = NetworkMap::new(&config);
    let policies = Policies::new(&config, safe_search);
    info!(
        domains = lists.domain_count(),
        block_rules = loaded
            .iter()
            .map(|l| l.entries.saturating_sub(l.allow_entries))
            .sum::<usize>(),
        allow_rules = loaded.iter().map(|l| l.allow_entries).sum::<usize>(),
        skipped_lines = loaded.iter().map(|l| l.skipped).sum::<usize>(),
        heap_bytes = lists.heap_bytes(),
        ms = started.elapsed().as_millis() as u64,
        generation,
        "snapshot built"
    );
    Ok(Snapshot {
        config: Arc::new(config),
        networks,
        policies,
        lists: Arc::new(lists),
        list_stamps: stamps,
        lists_loaded: loaded,
        generation,
        counters: crate::counting::CounterTable::empty(),
        takedowns: Default::default(),
        allowances: Default::default(),
        built_at: SystemTime::now(),
    })
}
