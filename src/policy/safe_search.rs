//! Safe-search enforcement: names of search engines and YouTube rewritten to
//! the engines' safe endpoints, per band. The engine table is data
//! (`blocklists/safe-search.toml`), not code.

use crate::config::{Band, YouTubeMode};
use serde::Deserialize;
use std::collections::HashMap;

/// The curated mapping, compiled in for configs that do not name one.
pub const EMBEDDED_MAPPING: &str = include_str!("../../blocklists/safe-search.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    #[serde(rename = "engine")]
    engines: Vec<RawEngine>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    id: String,
    name: Option<String>,
    switch: String,
    target: Option<String>,
    target_strict: Option<String>,
    target_moderate: Option<String>,
    names: Vec<String>,
}

/// Which band setting turns an engine on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    SafeSearch,
    YouTube,
}

/// One engine of the mapping.
#[derive(Debug, Clone)]
pub struct Engine {
    pub id: String,
    pub name: String,
    pub switch: Switch,
    target: String,
    target_moderate: String,
}

/// The compiled mapping: exact name → engine.
#[derive(Debug, Default)]
pub struct SafeSearch {
    pub engines: Vec<Engine>,
    names: HashMap<String, usize>,
}

impl SafeSearch {
    /// Parses a mapping file; the error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawMapping = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut out = SafeSearch::default();
        for engine in raw.engines {
            let (switch, target, target_moderate) = match engine.switch.as_str() {
                "safe_search" => {
                    let target = engine.target.ok_or_else(|| {
                        format!(
                            "engine {:?}: switch \"safe_search\" needs target",
                            engine.id
                        )
                    })?;
                    (Switch::SafeSearch, target.clone(), target)
                }
                "youtube" => match (engine.target_strict, engine.target_moderate) {
                    (Some(strict), Some(moderate)) => (Switch::YouTube, strict, moderate),
                    _ => {
                        return Err(format!(
                            "engine {:?}: switch \"youtube\" needs target_strict and target_moderate",
                            engine.id
                        ));
                    }
                },
                other => return Err(format!("engine {:?}: unknown switch {other:?}", engine.id)),
            };
            let index = out.engines.len();
            for name in &engine.names {
                let name = crate::lists::name::normalize(name)
                    .map_err(|e| format!("engine {:?}: name {name:?}: {e}", engine.id))?;
                out.names.insert(name.into_owned(), index);
            }
            out.engines.push(Engine {
                name: engine.name.unwrap_or_else(|| engine.id.clone()),
                id: engine.id,
                switch,
                target,
                target_moderate,
            });
        }
        Ok(out)
    }

    /// The safe endpoint for `name` (exact match) under this band's switches.
    pub fn rewrite(&self, name: &str, band: &Band) -> Option<(usize, &str)> {
        let &index = self.names.get(name)?;
        let engine = &self.engines[index];
        let target = match (engine.switch, band.youtube) {
            (Switch::SafeSearch, _) if band.safe_search => &engine.target,
            (Switch::YouTube, YouTubeMode::Strict) => &engine.target,
            (Switch::YouTube, YouTubeMode::Moderate) => &engine.target_moderate,
            _ => return None,
        };
        Some((index, target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_mapping_covers_the_engines_schools_need() {
        let mapping = SafeSearch::parse(EMBEDDED_MAPPING).unwrap();
        let ids: Vec<&str> = mapping.engines.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["google", "bing", "duckduckgo", "youtube"]);
        for name in [
            "www.google.com",
            "www.google.com.vn",
            "google.co.uk",
            "www.bing.com",
            "duckduckgo.com",
            "m.youtube.com",
        ] {
            assert!(mapping.names.contains_key(name), "{name}");
        }
        assert!(
            !mapping.names.contains_key("mail.google.com"),
            "exact names only"
        );
    }

    #[test]
    fn bad_mappings_are_explained() {
        let error = SafeSearch::parse("[[engine]]\nid = \"x\"\nswitch = \"youtube\"\nnames = []\n")
            .unwrap_err();
        assert!(error.contains("target_strict"), "{error}");
        let error = SafeSearch::parse(
            "[[engine]]\nid = \"x\"\nswitch = \"nope\"\ntarget = \"a\"\nnames = []\n",
        )
        .unwrap_err();
        assert!(error.contains("unknown switch"), "{error}");
    }
}
