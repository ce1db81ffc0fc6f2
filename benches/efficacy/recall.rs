//! (a) Parsing recall: every listed name of every default source, and a
//! random subdomain of each, asked over DNS from THCS (the strictest band,
//! every category blocked); the misses go to `out_dir/misses.txt`.

use crate::data::{Allows, Loaded};
use crate::install::THCS;
use crate::net::{self, Verdict};
use crate::report::percent;
use edudns::lists::protected::ProtectedNames;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Instant;

/// The recall every default source must reach (issue target).
const RECALL_TARGET: f64 = 0.999;

/// What part (a) found.
pub struct Recall {
    /// Per source: its listed names, those protected or allowed, those
    /// asked and blocked.
    pub table: String,
    /// The sources under the target, with their recall.
    pub failed: Vec<String>,
    pub asked: usize,
    pub blocked: usize,
    /// Distinct questions asked, and the seconds it took.
    pub questions: usize,
    pub secs: f64,
    /// The lines that name nothing a DNS filter can block, by reason.
    pub excluded: String,
}

/// A random-looking but reproducible label for a name (FNV-1a).
fn subdomain(name: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("q{hash:08x}.{name}")
}

/// Asks every listed name that is neither protected nor allowed for THCS,
/// and a subdomain of each; tallies per source.
pub async fn recall(
    dns: SocketAddr,
    sinkhole: Ipv4Addr,
    loaded: &[Loaded],
    protected: &ProtectedNames,
    allows: &Allows,
    out_dir: &Path,
) -> Recall {
    let thcs: IpAddr = THCS.parse().unwrap();
    let mut questions: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut ask = |name: String, questions: &mut Vec<String>| {
        let next = questions.len();
        *index.entry(name.clone()).or_insert_with(|| {
            questions.push(name);
            next
        })
    };
    struct Expect {
        protected: usize,
        allowed: usize,
        names: Vec<(usize, usize, usize)>, // (listed index, name q, subdomain q)
    }
    let mut expects = Vec::new();
    for source in loaded {
        let mut expect = Expect {
            protected: 0,
            allowed: 0,
            names: Vec::new(),
        };
        for (i, listed) in source.read.listed.iter().enumerate() {
            if protected.blocked_by_entry(&listed.name).is_some() {
                expect.protected += 1;
            } else if allows.allowed("thcs", &listed.name) {
                expect.allowed += 1;
            } else {
                let q = ask(listed.name.clone(), &mut questions);
                let s = ask(subdomain(&listed.name), &mut questions);
                expect.names.push((i, q, s));
            }
        }
        expects.push(expect);
    }
    eprintln!("efficacy: (a) asking {} names over DNS", questions.len());
    let asked_at = Instant::now();
    let verdicts = net::ask_all(dns, thcs, &questions, sinkhole).await;
    let ask_secs = asked_at.elapsed().as_secs_f64();
    let mut misses = String::new();
    let mut recall_table = String::from(
        "| Source | Category | Listed names | Protected | Allowed | Asked (name + subdomain) | Blocked | Recall |\n|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut recall_failed = Vec::new();
    let (mut all_asked, mut all_blocked) = (0, 0);
    for (source, expect) in loaded.iter().zip(&expects) {
        let mut blocked = 0;
        for &(i, q, s) in &expect.names {
            for (question, verdict) in [(q, verdicts[q]), (s, verdicts[s])] {
                if verdict == Verdict::Blocked {
                    blocked += 1;
                } else {
                    let listed = &source.read.listed[i];
                    let _ = writeln!(
                        misses,
                        "{}:{}: {:?} for {} (line: {})",
                        source.file.display(),
                        listed.line,
                        verdict,
                        questions[question],
                        listed.text
                    );
                }
            }
        }
        let asked = expect.names.len() * 2;
        all_asked += asked;
        all_blocked += blocked;
        let recall = if asked == 0 {
            1.0
        } else {
            blocked as f64 / asked as f64
        };
        if recall < RECALL_TARGET {
            recall_failed.push(format!("{} {:.3} %", source.name, recall * 100.0));
        }
        let _ = writeln!(
            recall_table,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            source.name,
            source.category,
            source.read.listed.len(),
            expect.protected,
            expect.allowed,
            asked,
            blocked,
            percent(blocked, asked)
        );
    }
    std::fs::write(out_dir.join("misses.txt"), &misses).unwrap();
    eprintln!(
        "efficacy: (a) {all_blocked} of {all_asked} blocked in {ask_secs:.1} s; misses in target/efficacy/misses.txt"
    );
    let mut excluded: BTreeMap<&str, usize> = BTreeMap::new();
    for source in loaded {
        for (reason, n) in &source.read.excluded {
            *excluded.entry(reason).or_default() += n;
        }
    }
    Recall {
        table: recall_table,
        failed: recall_failed,
        asked: all_asked,
        blocked: all_blocked,
        questions: questions.len(),
        secs: ask_secs,
        excluded: excluded
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; "),
    }
}
