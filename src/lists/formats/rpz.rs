//! Response Policy Zones (RPZ), QNAME triggers only.
//!
//! - `x CNAME .` (NXDOMAIN), `x CNAME *.` (NODATA), `x CNAME rpz-drop.` → block x;
//! - `x CNAME rpz-passthru.` → allow x;
//! - `x A …` / `x AAAA …` local data → block x (we sinkhole anyway);
//! - `*.x …` is read as `x`, as everywhere (the list usually carries both);
//! - `$TTL`, `$ORIGIN`, SOA (also spread over lines in parentheses), NS, blank
//!   lines and `;` comments are zone furniture, ignored.
//!
//! Owner names are relative to the zone, as real RPZ lists write them; an
//! absolute owner (`x.rpz.example.`) has its `$ORIGIN` suffix removed. Skipped:
//! CNAME rewrites to another name (safe-search style redirects are not
//! blocks), `rpz-tcp-only.`, other record types, `$INCLUDE`, the zone apex,
//! records that continue a previous owner, and non-QNAME triggers
//! (`rpz-ip`, `rpz-nsdname`, `rpz-nsip`, `rpz-client-ip`).

use super::{Collector, SkipReason};
use crate::lists::RuleAction;

/// What is carried from line to line.
#[derive(Debug, Default)]
pub(super) struct Zone {
    /// `$ORIGIN`, lowercase, without the trailing dot.
    origin: Option<String>,
    /// Open parentheses of a record spread over lines.
    open_parentheses: usize,
}

impl Zone {
    pub(super) fn parse_line(&mut self, raw: &str, out: &mut Collector<'_, '_>) {
        let content = raw.split_once(';').map_or(raw, |(content, _)| content);
        if self.open_parentheses > 0 {
            self.track_parentheses(content);
            out.ignore();
            return;
        }
        let line = content.trim();
        if line.is_empty() {
            out.ignore();
            return;
        }
        if let Some(directive) = line.strip_prefix('$') {
            self.directive(directive, out);
            return;
        }
        self.track_parentheses(content);
        let continues_previous_owner = raw.starts_with([' ', '\t']);
        let mut fields = line.split_ascii_whitespace();
        let owner = if continues_previous_owner {
            None
        } else {
            fields.next()
        };
        let Some(record_type) = fields.find(|f| !is_ttl(f) && !is_class(f)) else {
            out.skip(SkipReason::UnsupportedSyntax);
            return;
        };
        let data = fields.next().unwrap_or("");
        let action = match record_type.to_ascii_uppercase().as_str() {
            "SOA" | "NS" => {
                out.ignore();
                return;
            }
            "CNAME" => match data.to_ascii_lowercase().as_str() {
                "." | "*." | "rpz-drop." => RuleAction::Block,
                "rpz-passthru." => RuleAction::Allow,
                _ => {
                    out.skip(SkipReason::UnsupportedSyntax);
                    return;
                }
            },
            "A" | "AAAA" => RuleAction::Block,
            _ => {
                out.skip(SkipReason::UnsupportedSyntax);
                return;
            }
        };
        match owner.map(|o| self.relative(o)) {
            Some(name) if name != "@" && !is_other_trigger(name) => out.rule(name, action),
            _ => out.skip(SkipReason::UnsupportedSyntax),
        }
    }

    fn directive(&mut self, directive: &str, out: &mut Collector<'_, '_>) {
        let mut fields = directive.split_ascii_whitespace();
        match fields.next().map(str::to_ascii_uppercase).as_deref() {
            Some("ORIGIN") => {
                let origin = fields.next().unwrap_or("").trim_end_matches('.');
                self.origin = (!origin.is_empty()).then(|| origin.to_ascii_lowercase());
                out.ignore();
            }
            Some("TTL") => out.ignore(),
            _ => out.skip(SkipReason::UnsupportedSyntax),
        }
    }

    fn track_parentheses(&mut self, content: &str) {
        for byte in content.bytes() {
            match byte {
                b'(' => self.open_parentheses += 1,
                b')' => self.open_parentheses = self.open_parentheses.saturating_sub(1),
                _ => {}
            }
        }
    }

    /// The policy name of an owner: relative names as they are; absolute ones
    /// without the trailing dot and the `$ORIGIN` suffix.
    fn relative<'a>(&self, owner: &'a str) -> &'a str {
        let Some(absolute) = owner.strip_suffix('.') else {
            return owner;
        };
        let Some(origin) = self.origin.as_deref() else {
            return absolute;
        };
        let Some(cut) = absolute.len().checked_sub(origin.len()) else {
            return absolute;
        };
        let suffix_matches = absolute
            .get(cut..)
            .is_some_and(|suffix| suffix.eq_ignore_ascii_case(origin));
        match absolute.get(..cut) {
            Some("") if suffix_matches => "@",
            Some(head) if suffix_matches && head.ends_with('.') => &head[..head.len() - 1],
            _ => absolute,
        }
    }
}

/// A record type, or a word that reads as one in a zone-file line.
pub(super) fn is_record_type(field: &str) -> bool {
    [
        "SOA", "NS", "CNAME", "A", "AAAA", "TXT", "MX", "DNAME", "PTR",
    ]
    .iter()
    .any(|t| t.eq_ignore_ascii_case(field))
}

/// `300`, `1h`, `2d12h`.
fn is_ttl(field: &str) -> bool {
    field.starts_with(|c: char| c.is_ascii_digit())
        && field
            .chars()
            .all(|c| c.is_ascii_digit() || "smhdwSMHDW".contains(c))
}

fn is_class(field: &str) -> bool {
    ["IN", "CH", "HS", "CS"]
        .iter()
        .any(|c| c.eq_ignore_ascii_case(field))
}

/// Triggers on answers, name servers or clients rather than on the query name.
fn is_other_trigger(name: &str) -> bool {
    name.rsplit('.').next().is_some_and(|last| {
        ["rpz-ip", "rpz-nsdname", "rpz-nsip", "rpz-client-ip"]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(last))
    })
}

#[cfg(test)]
mod tests {
    use crate::lists::RuleAction;
    use crate::lists::formats::tests::{parse_sample, parse_text};
    use crate::lists::formats::{ListFormat, SkipReason};

    #[test]
    fn rpz_sample() {
        let parsed = parse_sample("rpz-sample.zone", ListFormat::Rpz);
        // $TTL, SOA, NS, 13 `;` lines; 142 names each as `x` and `*.x`.
        assert_eq!(parsed.summary.ignored, 16);
        assert_eq!(parsed.summary.entries, 284);
        assert_eq!(parsed.summary.skipped, 0);
        assert_eq!(parsed.first(), ("smetrics.abbott", RuleAction::Block, 17));
        assert!(parsed.has("simpleswap.ac", 23));
        assert!(parsed.has("simpleswap.ac", 24));
        assert!(parsed.has("log.1vn.app", 300));
        assert!(
            parsed
                .domains()
                .all(|d| d != "localhost" && !d.contains('*'))
        );
    }

    #[test]
    fn zone_file_shapes() {
        let text = "$ORIGIN rpz.example.\n@ 3600 IN SOA ns. admin. (\n  1 ; serial\n  3600 )\n\
                    \tIN NS ns.\na.example CNAME .\nb.example.rpz.example. 300 IN CNAME *.\n\
                    ok.a.example CNAME rpz-passthru.\nc.example A 10.0.0.1\n\
                    www.google.example CNAME forcesafesearch.google.example.\n\
                    32.1.0.0.10.rpz-ip CNAME .\nd.example TXT \"why\"\n$INCLUDE other.zone\n\
                    rpz.example. CNAME .\nE.Example cname rpz-drop.\n";
        let parsed = parse_text(text, ListFormat::Rpz);
        let rules: Vec<_> = parsed
            .entries
            .iter()
            .map(|(d, a, l)| (d.as_str(), *a, *l))
            .collect();
        assert_eq!(
            rules,
            [
                ("a.example", RuleAction::Block, 6),
                ("b.example", RuleAction::Block, 7),
                ("ok.a.example", RuleAction::Allow, 8),
                ("c.example", RuleAction::Block, 9),
                ("e.example", RuleAction::Block, 15),
            ]
        );
        // $ORIGIN, SOA over three lines, NS.
        assert_eq!(parsed.summary.ignored, 5);
        let skipped: Vec<_> = parsed
            .summary
            .first_skipped
            .iter()
            .map(|s| s.line)
            .collect();
        assert_eq!(skipped, [10, 11, 12, 13, 14]);
        assert!(
            parsed
                .summary
                .first_skipped
                .iter()
                .all(|s| s.reason == SkipReason::UnsupportedSyntax)
        );
    }
}
