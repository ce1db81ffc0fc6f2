//! Response Policy Zones: `x CNAME .` (NXDOMAIN) and `x CNAME *.` (NODATA)
//! block, `x CNAME rpz-passthru.` allows, local data (`x A …`) blocks;
//! `$TTL`, `$ORIGIN`, SOA (also across parentheses) and NS lines are zone
//! furniture. Owner names are taken relative to the zone.

use super::{Line, NameList, SkipReason};
use crate::lists::RuleAction;

/// Multi-line SOA and `$ORIGIN` tracking across lines.
#[derive(Default)]
pub(crate) struct ZoneState {
    in_parentheses: bool,
    origin: Option<String>,
}

impl ZoneState {
    pub(crate) fn line<'a>(&mut self, line: &'a str) -> Line<'a> {
        let line = match line.find(';') {
            Some(i) => line[..i].trim(),
            None => line,
        };
        if self.in_parentheses {
            if line.contains(')') {
                self.in_parentheses = false;
            }
            return Line::Ignore;
        }
        if line.is_empty() {
            return Line::Ignore;
        }
        if let Some(origin) = line.strip_prefix("$ORIGIN") {
            self.origin = Some(origin.trim().trim_end_matches('.').to_ascii_lowercase());
            return Line::Ignore;
        }
        if line.starts_with('$') {
            return Line::Ignore;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(type_index) = fields.iter().position(|f| is_record_type(f)) else {
            return Line::Skip(SkipReason::UnsupportedSyntax);
        };
        let record_type = fields[type_index].to_ascii_uppercase();
        if record_type == "SOA" || record_type == "NS" {
            if line.contains('(') && !line.contains(')') {
                self.in_parentheses = true;
            }
            return Line::Ignore;
        }
        // Owner first; a line starting with the type continues the previous owner (zone furniture).
        if type_index == 0 || line.starts_with(char::is_whitespace) {
            return Line::Ignore;
        }
        let owner = self.relative(fields[0]);
        let target = fields.get(type_index + 1).copied().unwrap_or("");
        let action = match (record_type.as_str(), target) {
            ("CNAME", "rpz-passthru.") => RuleAction::Allow,
            ("CNAME", "." | "*.") => RuleAction::Block,
            ("CNAME", "rpz-drop." | "rpz-tcp-only.") => RuleAction::Block,
            ("A" | "AAAA", _) => RuleAction::Block,
            _ => return Line::Skip(SkipReason::UnsupportedSyntax),
        };
        Line::Names(action, NameList::One(owner))
    }

    /// Strips the zone origin from an absolute owner name.
    fn relative<'a>(&self, owner: &'a str) -> &'a str {
        if let (Some(origin), Some(absolute)) = (&self.origin, owner.strip_suffix('.')) {
            if let Some(rest) = absolute.strip_suffix(origin.as_str()) {
                return rest.strip_suffix('.').unwrap_or(rest);
            }
            return absolute;
        }
        owner
    }
}

fn is_record_type(field: &str) -> bool {
    matches!(
        field.to_ascii_uppercase().as_str(),
        "CNAME" | "A" | "AAAA" | "SOA" | "NS" | "TXT" | "MX" | "DNAME"
    )
}
