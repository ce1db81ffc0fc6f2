//! `edudns explain`: the verdict for one client and name, and why, with no
//! network. IT staff use it to answer "why is this blocked?".

use crate::lists::RuleAction;
use crate::policy::{Rule, Scope, Verdict};
use crate::snapshot::Snapshot;
use std::fmt::Write;
use std::net::IpAddr;

/// Renders the explanation as the text `edudns explain` prints, for the
/// moment `at` (schedules).
pub fn explain(snapshot: &Snapshot, client_ip: IpAddr, name: &str, at: jiff::Timestamp) -> String {
    let config = &snapshot.config;
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let mut out = String::new();
    let _ = writeln!(out, "name:    {name}");
    let _ = writeln!(out, "client:  {client_ip}");
    let Some(client) = snapshot.classify(client_ip) else {
        let _ = writeln!(
            out,
            "school:  none — {client_ip} is outside every school network\nverdict: {} (not an open resolver) / Từ chối",
            match config.server.outside_clients {
                crate::config::OutsideClients::Refuse => "REFUSED",
                crate::config::OutsideClients::Drop => "NO ANSWER (outside_clients = \"drop\")",
            }
        );
        return out;
    };
    explain_client(snapshot, client, &name, at, &mut out);
    out
}

/// The explanation for a known school and band (the management API's
/// "would this be blocked?" asks this way); appended to `out`.
pub fn explain_client(
    snapshot: &Snapshot,
    client: crate::client::Client,
    name: &str,
    at: jiff::Timestamp,
    out: &mut String,
) {
    let config = &snapshot.config;
    let school = &config.schools[client.school];
    let band = &config.bands[client.band];
    let _ = writeln!(out, "school:  {} ({})", school.name, school.id);
    let _ = writeln!(out, "band:    {} ({})", band.name, band.id);
    let verdict = snapshot.evaluate(client, name, at);
    let local = at.to_zoned_datetime(school.timezone.clone());
    let _ = writeln!(
        out,
        "time:    {} ({})",
        local.strftime("%Y-%m-%d %H:%M %a"),
        school.timezone_name
    );
    match &verdict {
        Verdict::Allow { rule: None } => {
            let _ = writeln!(
                out,
                "verdict: ALLOWED / Cho phép — no rule matches; forwarded to the upstream"
            );
        }
        Verdict::Allow { rule: Some(rule) } => {
            let _ = writeln!(out, "verdict: ALLOWED / Cho phép — by an exception");
            let _ = writeln!(out, "rule:    {}", describe(snapshot, rule));
        }
        Verdict::Block {
            category,
            rule,
            schedule,
        } => {
            let _ = writeln!(out, "verdict: BLOCKED / Bị chặn");
            if let Some(c) = category {
                let category = &config.categories[*c];
                let _ = writeln!(out, "category: {} ({})", category.name, category.id);
            }
            let _ = writeln!(out, "rule:    {}", describe(snapshot, rule));
            if let Some(s) = schedule {
                let schedule = &band.schedules[*s];
                let _ = writeln!(
                    out,
                    "schedule: blocked {} only (band {}, {}:{}: {})",
                    schedule.text,
                    band.id,
                    config.path.display(),
                    schedule.place.line,
                    schedule.place.key
                );
            }
        }
        Verdict::Rewrite { engine, target } => {
            let engine = &snapshot.policies.safe_search().engines[*engine];
            let _ = writeln!(
                out,
                "verdict: SAFE SEARCH / Tìm kiếm an toàn — {} answered as an alias of {target}",
                engine.name
            );
        }
    }
    explain_protection(snapshot, name, out);
}

/// When `name` is a protected name: the rule that protects it and the
/// subscribed list lines that were ignored for it.
fn explain_protection(snapshot: &Snapshot, name: &str, out: &mut String) {
    let protected = &snapshot.config.lists.protected;
    let Some(protection) = protected.protecting(name) else {
        return;
    };
    let _ = writeln!(
        out,
        "protected: {} ({} line {}) — subscribed lists never block it; only a deny of the school, band or office can / Tên được bảo vệ",
        protection.rule, protected.source, protection.line
    );
    for list in snapshot.lists_loaded.iter().filter(|l| l.subscribed) {
        let ignored = list
            .protected_samples
            .iter()
            .filter(|line| name == line.entry || name.ends_with(&format!(".{}", line.entry)));
        for line in ignored {
            let _ = writeln!(
                out,
                "ignored: {} line {}: {} (would block this protected name)",
                list.display, line.line, line.entry
            );
        }
    }
}

/// One line saying which rule decided, with its file and line.
pub fn describe(snapshot: &Snapshot, rule: &Rule) -> String {
    let config = &snapshot.config;
    match rule {
        Rule::DohCanary => "built-in: use-application-dns.net answers NXDOMAIN so Firefox keeps using this resolver (blocking.block_doh_canary)".to_string(),
        Rule::DesignatedResolver => "built-in bypass prevention: _dns.resolver.arpa answers NODATA so devices do not switch to an encrypted resolver (band bypass_prevention)".to_string(),
        Rule::PrivateRelay => "built-in bypass prevention: iCloud Private Relay answers NXDOMAIN so Apple devices use this resolver (band bypass_prevention)".to_string(),
        Rule::Takedown { domain, reference, date } => format!(
            "{domain} is on the authorities' takedown list ({reference}{}{date}); it applies to every band",
            if date.is_empty() { "" } else { ", " }
        ),
        Rule::Temporary { id, domain, until, reason } => format!(
            "temporary allowance #{id} for {domain} until {} ({reason})",
            jiff::Timestamp::from_second(*until)
                .map(|t| t.to_string())
                .unwrap_or_default()
        ),
        Rule::CnameTarget { target, inner } => format!("the answer leads through a CNAME to {target}, which is blocked: {}", describe(snapshot, inner)),
        Rule::List { list, line, domain } => match snapshot.lists_loaded.get(*list) {
            Some(loaded) => format!(
                "{domain} listed in {} line {line} (category {}, {})",
                loaded.display,
                config.categories[loaded.category].id,
                loaded.place.key
            ),
            None => format!("{domain} listed in a category list"),
        },
        Rule::Config {
            scope,
            action,
            domain,
            place,
        } => {
            let kind = match action {
                RuleAction::Block => "deny",
                RuleAction::Allow => "allow",
            };
            let owner = match scope {
                Scope::Band(b) => format!("band {}", config.bands[*b].id),
                Scope::School(s) => format!("school {}", config.schools[*s].id),
                Scope::Office => "the education office".to_string(),
            };
            format!(
                "{domain} in the {kind} list of {owner} ({}:{}: {})",
                config.path.display(),
                place.line,
                place.key
            )
        }
    }
}
