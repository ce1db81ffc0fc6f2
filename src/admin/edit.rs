//! Changes the management API makes to the configuration file.
//!
//! The file stays the single source of truth: an edit is applied to the
//! parsed document with `toml_edit` (so comments and layout the IT staff
//! wrote survive), the new text is validated and built exactly as
//! `check-config` and a reload would, and only then written — atomically
//! (temporary file, fsync, rename, fsync of the directory) and with mode
//! 0600. The ETag of the configuration is the SHA-256 of the file's text.

use crate::config::{Config, YouTubeMode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use toml_edit::{Array, DocumentMut, Item, Table, value};
use utoipa::ToSchema;

/// Writes `bytes` to `path` atomically with mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// The ETag of a configuration text (quoted, as HTTP wants it).
pub fn etag(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// The policy tables of a configuration text (what `[central]` nodes pull),
/// as TOML with their comments. Empty when the text is not TOML.
pub fn policy_tables(text: &str) -> String {
    let Ok(doc) = text.parse::<DocumentMut>() else {
        return String::new();
    };
    let mut policy = DocumentMut::new();
    for key in crate::config::central::POLICY_TABLES {
        if let Some(item) = doc.get(key) {
            policy.insert(key, item.clone());
        }
    }
    policy.to_string()
}

/// Why an edit could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the configuration file is not valid TOML: {0}")]
    Document(String),
}

/// A band's policy.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[schema(as = Band)]
pub struct BandView {
    pub id: String,
    pub name: String,
    /// The categories it blocks.
    pub block: Vec<String>,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub safe_search: bool,
    pub youtube: Youtube,
    pub bypass_prevention: bool,
    pub max_qps_per_client: u32,
    pub schedule: Vec<ScheduleView>,
}

/// YouTube's restricted mode for a band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Youtube {
    Off,
    Moderate,
    Strict,
}

/// A category blocked only at some times.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[schema(as = Schedule)]
pub struct ScheduleView {
    pub category: String,
    /// As written, e.g. "mon-fri 07:00-11:30".
    pub text: String,
}

/// A school: its networks and bands, its own allow and deny entries.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[schema(as = School)]
pub struct SchoolView {
    pub id: String,
    pub name: String,
    pub networks: Vec<String>,
    pub bands: Vec<SchoolBandView>,
    /// The band of an address in none of the band networks.
    pub unknown_band: String,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub timezone: String,
}

/// The networks of one band in a school.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[schema(as = SchoolBand)]
pub struct SchoolBandView {
    pub band: String,
    pub networks: Vec<String>,
}

/// The education office's own entries (every school, every band).
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[schema(as = Office)]
pub struct OfficeView {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

pub fn band_view(config: &Config, index: usize) -> BandView {
    let band = &config.bands[index];
    BandView {
        id: band.id.clone(),
        name: band.name.clone(),
        block: band
            .blocked
            .iter()
            .map(|&c| config.categories[c].id.clone())
            .collect(),
        allow: band.allow.iter().map(|r| r.domain.clone()).collect(),
        deny: band.deny.iter().map(|r| r.domain.clone()).collect(),
        safe_search: band.safe_search,
        youtube: match band.youtube {
            YouTubeMode::Off => Youtube::Off,
            YouTubeMode::Moderate => Youtube::Moderate,
            YouTubeMode::Strict => Youtube::Strict,
        },
        bypass_prevention: band.bypass_prevention,
        max_qps_per_client: band.max_qps_per_client,
        schedule: band
            .schedules
            .iter()
            .map(|s| ScheduleView {
                category: config.categories[s.category].id.clone(),
                text: s.text.clone(),
            })
            .collect(),
    }
}

pub fn school_view(config: &Config, index: usize) -> SchoolView {
    let school = &config.schools[index];
    let mut bands: Vec<SchoolBandView> = Vec::new();
    for (net, band) in &school.band_networks {
        let id = &config.bands[*band].id;
        match bands.iter_mut().find(|b| &b.band == id) {
            Some(b) => b.networks.push(net.to_string()),
            None => bands.push(SchoolBandView {
                band: id.clone(),
                networks: vec![net.to_string()],
            }),
        }
    }
    SchoolView {
        id: school.id.clone(),
        name: school.name.clone(),
        networks: school.networks.iter().map(|n| n.to_string()).collect(),
        bands,
        unknown_band: config.bands[school.unknown_band].id.clone(),
        allow: school.allow.iter().map(|r| r.domain.clone()).collect(),
        deny: school.deny.iter().map(|r| r.domain.clone()).collect(),
        timezone: school.timezone_name.clone(),
    }
}

pub fn office_view(config: &Config) -> OfficeView {
    OfficeView {
        allow: config
            .office
            .allow
            .iter()
            .map(|r| r.domain.clone())
            .collect(),
        deny: config
            .office
            .deny
            .iter()
            .map(|r| r.domain.clone())
            .collect(),
    }
}

/// A change to a band: fields left out stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BandPatch {
    pub block: Option<Vec<String>>,
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub safe_search: Option<bool>,
    // A string here, checked with the rest of the new configuration (as
    // check-config would); the document names the values that pass.
    #[schema(value_type = Option<Youtube>)]
    pub youtube: Option<String>,
    pub bypass_prevention: Option<bool>,
    pub schedule: Option<Vec<SchedulePatch>>,
}

/// `{ "category": "social", "days": ["mon-fri"], "windows": ["07:00-11:30"] }`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchedulePatch {
    pub category: String,
    #[serde(default)]
    pub days: Vec<String>,
    pub windows: Vec<String>,
}

/// A change to a school's own entries: fields left out stay.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchoolPatch {
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
}

pub fn parse_document(text: &str) -> Result<DocumentMut, EditError> {
    text.parse::<DocumentMut>()
        .map_err(|e| EditError::Document(e.to_string()))
}

fn strings(values: &[String]) -> Item {
    let mut array = Array::new();
    for v in values {
        array.push(v.trim());
    }
    value(array)
}

/// The `[[kind]]` table whose `id` is `id`.
fn entry_mut<'a>(
    doc: &'a mut DocumentMut,
    kind: &str,
    id: &str,
) -> Result<&'a mut Table, EditError> {
    doc.get_mut(kind)
        .and_then(Item::as_array_of_tables_mut)
        .and_then(|tables| {
            tables
                .iter_mut()
                .find(|t| t.get("id").and_then(Item::as_str) == Some(id))
        })
        .ok_or_else(|| EditError::NotFound(format!("no [[{kind}]] with id {id:?}")))
}

pub fn apply_band(doc: &mut DocumentMut, id: &str, patch: &BandPatch) -> Result<(), EditError> {
    let table = entry_mut(doc, "band", id)?;
    if let Some(v) = &patch.block {
        table.insert("block", strings(v));
    }
    if let Some(v) = &patch.allow {
        table.insert("allow", strings(v));
    }
    if let Some(v) = &patch.deny {
        table.insert("deny", strings(v));
    }
    if let Some(v) = patch.safe_search {
        table.insert("safe_search", value(v));
    }
    if let Some(v) = &patch.youtube {
        table.insert("youtube", value(v.as_str()));
    }
    if let Some(v) = patch.bypass_prevention {
        table.insert("bypass_prevention", value(v));
    }
    if let Some(schedules) = &patch.schedule {
        if schedules.is_empty() {
            table.remove("schedule");
        } else {
            let mut tables = toml_edit::ArrayOfTables::new();
            for s in schedules {
                let mut t = Table::new();
                t.insert("category", value(s.category.as_str()));
                if !s.days.is_empty() {
                    t.insert("days", strings(&s.days));
                }
                t.insert("windows", strings(&s.windows));
                tables.push(t);
            }
            table.insert("schedule", Item::ArrayOfTables(tables));
        }
    }
    Ok(())
}

pub fn apply_school(doc: &mut DocumentMut, id: &str, patch: &SchoolPatch) -> Result<(), EditError> {
    let table = entry_mut(doc, "school", id)?;
    if let Some(v) = &patch.allow {
        table.insert("allow", strings(v));
    }
    if let Some(v) = &patch.deny {
        table.insert("deny", strings(v));
    }
    Ok(())
}

/// Adds or removes one domain in `[office] allow` or `deny`. Returns false
/// when there was nothing to do (already there / not there).
pub fn apply_office(
    doc: &mut DocumentMut,
    list: &str,
    domain: &str,
    add: bool,
) -> Result<bool, EditError> {
    if list != "allow" && list != "deny" {
        return Err(EditError::NotFound(format!(
            "no office list {list:?}: expected allow or deny"
        )));
    }
    let office = doc
        .entry("office")
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| EditError::Invalid("office is not a table".into()))?;
    let array = office
        .entry(list)
        .or_insert_with(|| value(Array::new()))
        .as_array_mut()
        .ok_or_else(|| EditError::Invalid(format!("office.{list} is not an array")))?;
    let position = array
        .iter()
        .position(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(domain)));
    match (add, position) {
        (true, None) => {
            array.push(domain);
            Ok(true)
        }
        (false, Some(i)) => {
            array.remove(i);
            Ok(true)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# the office's file\n[[band]]\nid = \"thcs\" # lower secondary\nblock = [\"social\", \"games\"]\n\n[[band]]\nid = \"staff\"\n";

    #[test]
    fn a_band_patch_changes_only_its_fields_and_keeps_comments() {
        let mut doc = parse_document(TEXT).unwrap();
        let patch = BandPatch {
            block: Some(vec!["games".into()]),
            youtube: Some("strict".into()),
            ..BandPatch::default()
        };
        apply_band(&mut doc, "thcs", &patch).unwrap();
        let out = doc.to_string();
        assert!(out.contains("# the office's file"));
        assert!(out.contains("# lower secondary"));
        let parsed: toml::Table = toml::from_str(&out).unwrap();
        let bands = parsed["band"].as_array().unwrap();
        assert_eq!(bands[0]["block"].as_array().unwrap().len(), 1);
        assert_eq!(bands[0]["youtube"].as_str(), Some("strict"));
        assert!(bands[1].get("block").is_none());
        assert!(matches!(
            apply_band(&mut doc, "nope", &patch),
            Err(EditError::NotFound(_))
        ));
    }

    #[test]
    fn office_lists_are_created_and_edited() {
        let mut doc = parse_document(TEXT).unwrap();
        assert!(apply_office(&mut doc, "deny", "bad.example", true).unwrap());
        assert!(!apply_office(&mut doc, "deny", "bad.example", true).unwrap());
        let parsed: toml::Table = toml::from_str(&doc.to_string()).unwrap();
        assert_eq!(parsed["office"]["deny"].as_array().unwrap().len(), 1);
        assert!(apply_office(&mut doc, "deny", "BAD.example", false).unwrap());
        assert!(apply_office(&mut doc, "other", "x.example", true).is_err());
    }

    #[test]
    fn private_files_are_written_whole_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edudns.toml");
        std::fs::write(&path, "old").unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_ne!(etag("a"), etag("b"));
    }
}
