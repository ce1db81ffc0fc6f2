//! What the benchmark reads besides the server's answers: the default
//! sources' copies in `../shared/data` (and the block rules edudns's parser
//! reads from them), the name sets asked (protected, child-friendly,
//! held-out, the popularity list), and from the installed configuration its
//! allow lists, curated floor and THPT social schedule.

use crate::install::{DefaultSource, REPO, covered};
use crate::reader;
use edudns::lists::RuleAction;
use edudns::lists::formats;
use edudns::lists::protected::ProtectedNames;
use sha2::Digest;
use std::collections::HashMap;
use std::path::PathBuf;

/// Names of the popularity list asked in part (d).
const TOP_NAMES: usize = 10_000;

/// One default source with its copy read.
pub struct Loaded {
    pub name: String,
    pub category: String,
    pub file: PathBuf,
    pub bytes: usize,
    pub lines: usize,
    pub sha256: String,
    pub version: String,
    pub read: reader::Read,
    /// The block rules edudns's own parser reads (for the in-process parts).
    pub rules: Vec<String>,
}

/// What a band's policy says of a name, per the installed configuration's
/// allow lists (school-wide and per band).
pub struct Allows {
    school: Vec<String>,
    bands: HashMap<String, Vec<String>>,
}

impl Allows {
    pub fn read() -> Allows {
        let doc = installed();
        let strings = |v: Option<&toml::Value>| -> Vec<String> {
            v.and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let school = strings(doc["school"][0].get("allow"));
        let bands = doc["band"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["id"].as_str().unwrap().to_string(),
                    strings(b.get("allow")),
                )
            })
            .collect();
        Allows { school, bands }
    }

    pub fn allowed(&self, band: &str, name: &str) -> bool {
        self.school
            .iter()
            .chain(self.bands.get(band).into_iter().flatten())
            .any(|rule| covered(name, rule))
    }
}

pub fn load_sources(sources: &[DefaultSource], protected: &ProtectedNames) -> Vec<Loaded> {
    let mut out = Vec::new();
    for source in sources {
        let Some(file) = &source.data else { continue };
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (is ../shared/data beside the repo?)",
                file.display()
            )
        });
        let mut rules = Vec::new();
        formats::parse(&text, source.source.format, &mut |e| {
            if e.action == RuleAction::Block && protected.blocked_by_entry(e.domain).is_none() {
                rules.push(e.domain.to_string());
            }
        });
        let version = text
            .lines()
            .take(40)
            .filter(|l| l.starts_with('#') || l.starts_with('!'))
            .map(|l| l.trim_start_matches(['#', '!', ' ']).trim())
            .find(|l| {
                let l = l.to_ascii_lowercase();
                [
                    "version",
                    "last modified",
                    "updated",
                    "last update",
                    "date:",
                ]
                .iter()
                .any(|k| l.starts_with(k))
            })
            .unwrap_or("")
            .chars()
            .take(60)
            .collect();
        out.push(Loaded {
            name: source.source.name.clone(),
            category: source.category.clone(),
            file: file.clone(),
            bytes: text.len(),
            lines: text.lines().count(),
            sha256: sha2::Sha256::digest(text.as_bytes())
                .iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect(),
            version,
            read: reader::read(&text),
            rules,
        });
    }
    out
}

/// The names of `blocklists/protected.txt` as a client would ask them.
fn protected_names() -> Vec<String> {
    let text = std::fs::read_to_string(format!("{REPO}/blocklists/protected.txt")).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        match line.strip_prefix("*.") {
            Some(base) => {
                out.push(base.to_string());
                out.push(format!("www.{base}"));
            }
            None => out.push(line.to_string()),
        }
    }
    out
}

fn child_friendly() -> Vec<String> {
    std::fs::read_to_string(format!("{REPO}/benches/efficacy/child-friendly.txt"))
        .unwrap()
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// UT1's lists of sites made for children (not a default subscription,
/// not read when the protected names were chosen).
pub fn held_out_child_friendly() -> Vec<String> {
    let mut out = Vec::new();
    for file in ["child.txt", "educational_games.txt"] {
        let path = format!("{REPO}/../shared/data/ut1/{file}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        out.extend(reader::read(&text).listed.into_iter().map(|l| l.name));
    }
    out.sort();
    out.dedup();
    out
}

pub fn top_sites() -> Vec<String> {
    let file = format!("{REPO}/../shared/data/top-sites/umbrella-top-100k.csv");
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .lines()
        .skip(1)
        .filter_map(|l| {
            l.split_once(',')
                .map(|(_, d)| d.trim().to_ascii_lowercase())
        })
        .take(TOP_NAMES)
        .collect()
}

/// The names no band may block: the child-friendly set and the protected
/// names, sorted and deduplicated; and how many the child-friendly set has.
pub fn never_blocked() -> (Vec<String>, usize) {
    let mut friendly = child_friendly();
    let friendly_len = friendly.len();
    friendly.extend(protected_names());
    friendly.sort();
    friendly.dedup();
    (friendly, friendly_len)
}

/// The installed configuration, parsed.
fn installed() -> toml::Table {
    let text = std::fs::read_to_string(format!("{REPO}/config/examples/school.toml")).unwrap();
    text.parse().unwrap()
}

/// The curated floor per category of the installed configuration.
pub fn curated_floor_by_category() -> HashMap<String, Vec<String>> {
    let doc = installed();
    let mut out = HashMap::new();
    for category in doc["category"].as_array().unwrap() {
        let mut rules = Vec::new();
        for list in category["lists"].as_array().unwrap() {
            let path = list
                .as_str()
                .or_else(|| list.get("path").and_then(|p| p.as_str()));
            let Some(path) = path else { continue };
            let path = path.replace("../../", &format!("{REPO}/"));
            let text = std::fs::read_to_string(&path).unwrap();
            formats::parse(&text, formats::ListFormat::Plain, &mut |e| {
                if e.action == RuleAction::Block {
                    rules.push(e.domain.to_string());
                }
            });
        }
        out.insert(category["id"].as_str().unwrap().to_string(), rules);
    }
    out
}

/// Whether the THPT band's social-network schedule of the installed
/// configuration blocks at `now` (school time). Its days are Monday to
/// Saturday; holidays are not looked at (none falls in term time).
pub fn thpt_social_in_force(now: &jiff::ZonedDateTime) -> bool {
    let doc = installed();
    let thpt = doc["band"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"].as_str() == Some("thpt"))
        .unwrap();
    let schedule = &thpt["schedule"][0];
    assert_eq!(
        schedule["days"][0].as_str(),
        Some("mon-sat"),
        "schedule days changed"
    );
    if now.weekday() == jiff::civil::Weekday::Sunday {
        return false;
    }
    let minutes = |hm: &str| {
        let (h, m) = hm.split_once(':').unwrap();
        h.parse::<i32>().unwrap() * 60 + m.parse::<i32>().unwrap()
    };
    let at = i32::from(now.hour()) * 60 + i32::from(now.minute());
    schedule["windows"].as_array().unwrap().iter().any(|w| {
        let (from, to) = w.as_str().unwrap().split_once('-').unwrap();
        (minutes(from)..minutes(to)).contains(&at)
    })
}
