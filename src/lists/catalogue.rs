//! The catalogue of maintained public lists (`blocklists/sources.toml`):
//! where each is published, its format, licence and attribution, and how
//! often to refresh it. The downloader of list subscriptions reads it.

use super::formats::ListFormat;
use serde::Deserialize;
use std::time::Duration;

/// The catalogue shipped in the repository, compiled in.
pub const EMBEDDED: &str = include_str!("../../blocklists/sources.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    #[serde(rename = "source")]
    sources: Vec<RawSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: String,
    category: String,
    url: String,
    format: String,
    licence: String,
    attribution: String,
    refresh: String,
    notes: Option<String>,
}

/// One catalogued list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub category: String,
    pub url: String,
    pub format: ListFormat,
    pub licence: String,
    pub attribution: String,
    pub refresh: Duration,
    pub notes: Option<String>,
}

/// `30m`, `6h`, `1d`, `7d` → a duration.
pub fn parse_interval(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = number.parse().ok().filter(|n| *n > 0)?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n * seconds))
}

/// Parses and checks a catalogue: unique names, known formats, HTTPS URLs,
/// a licence and an attribution for every source. Errors name the source.
pub fn parse(text: &str) -> Result<Vec<Source>, String> {
    let raw: RawCatalogue = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut out: Vec<Source> = Vec::new();
    for source in raw.sources {
        let at = |what: &str| format!("source {:?}: {what}", source.name);
        if out.iter().any(|s| s.name == source.name) {
            return Err(at("duplicate name"));
        }
        if !source.url.starts_with("https://") {
            return Err(at("url must be https://"));
        }
        if source.licence.trim().is_empty() || source.attribution.trim().is_empty() {
            return Err(at("licence and attribution are required"));
        }
        let format = source
            .format
            .parse::<ListFormat>()
            .map_err(|e| at(&e.to_string()))?;
        let refresh = parse_interval(&source.refresh)
            .ok_or_else(|| at("refresh must look like 6h, 1d or 7d"))?;
        out.push(Source {
            name: source.name,
            category: source.category,
            url: source.url,
            format,
            licence: source.licence,
            attribution: source.attribution,
            refresh,
            notes: source.notes,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalogue_is_complete_and_valid() {
        let sources = parse(EMBEDDED).unwrap();
        for category in [
            "adult",
            "gambling",
            "violence",
            "drugs",
            "dating",
            "social",
            "games",
            "phishing",
            "malware",
            "doh-bypass",
        ] {
            assert!(
                sources.iter().any(|s| s.category == category),
                "no source for {category}"
            );
        }
        for name in [
            "hostsvn-gambling",
            "ut1-gambling",
            "blocklistproject-gambling",
        ] {
            assert!(sources.iter().any(|s| s.name == name), "{name}");
        }
        let ut1 = sources.iter().find(|s| s.name == "ut1-gambling").unwrap();
        assert_eq!(ut1.licence, "CC-BY-SA-4.0");
        assert!(ut1.attribution.contains("Toulouse"));
    }

    #[test]
    fn bad_entries_are_named() {
        let one = |extra: &str| {
            format!(
                "[[source]]\nname = \"x\"\ncategory = \"c\"\nformat = \"plain\"\nlicence = \"MIT\"\nattribution = \"a\"\n{extra}"
            )
        };
        assert!(
            parse(&one("url = \"http://a\"\nrefresh = \"1d\""))
                .unwrap_err()
                .contains("https")
        );
        assert!(
            parse(&one("url = \"https://a\"\nrefresh = \"soon\""))
                .unwrap_err()
                .contains("refresh")
        );
        assert_eq!(parse_interval("6h"), Some(Duration::from_secs(21_600)));
        assert_eq!(parse_interval("0d"), None);
    }
}
