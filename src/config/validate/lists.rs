//! `[lists]` and `[[category]]`: the category lists (files, catalogue
//! sources, URLs), where downloads are cached and what they may not block.

use super::Checker;
use crate::config::raw::*;
use crate::config::types::*;
use crate::lists::MAX_CATEGORIES;
use crate::lists::formats::ListFormat;
use std::collections::HashSet;
use std::time::Duration;
use toml::Spanned;

impl Checker {
    /// `[lists]`: the download cache, limits and protected names.
    pub(super) fn lists(&mut self, raw: RawLists, root: &ListRoot) -> ListsConfig {
        let cache_dir = match (root, &raw.cache_dir) {
            (ListRoot::Directory(dir), Some(v)) => dir.join(v.get_ref()),
            (ListRoot::Directory(dir), None) => dir.join("list-cache"),
            (ListRoot::Embedded, Some(v)) => v.get_ref().into(),
            (ListRoot::Embedded, None) => std::env::temp_dir().join("edudns-demo-list-cache"),
        };
        let fraction =
            |checker: &mut Self, key: &str, value: &Option<Spanned<f64>>, default: f64| match value
            {
                None => default,
                Some(v) if (0.0..=1.0).contains(v.get_ref()) => *v.get_ref(),
                Some(v) => {
                    checker.error(key, v, "must be between 0 and 1");
                    default
                }
            };
        ListsConfig {
            cache_dir,
            max_bytes: self.positive_or("lists.max_bytes", raw.max_bytes, 64 << 20),
            timeout: Duration::from_secs(self.positive_or(
                "lists.timeout_secs",
                raw.timeout_secs,
                30,
            )),
            max_shrink: fraction(self, "lists.max_shrink", &raw.max_shrink, 0.5),
            max_skipped: fraction(self, "lists.max_skipped", &raw.max_skipped, 0.2),
            mirror: raw
                .mirror
                .as_ref()
                .and_then(|m| self.http_url("lists.mirror", m)),
            protected: std::sync::Arc::new(self.protected_names(root, &raw.protected)),
            parallel_downloads: self.positive_or(
                "lists.parallel_downloads",
                raw.parallel_downloads,
                4,
            ) as usize,
        }
    }

    /// `[lists] protected`: the shipped set, or a file (relative to the
    /// config's directory) whose every bad line is an error of this key.
    pub(super) fn protected_names(
        &mut self,
        root: &ListRoot,
        value: &Option<Spanned<String>>,
    ) -> crate::lists::protected::ProtectedNames {
        use crate::lists::protected::ProtectedNames;
        let Some(value) = value else {
            return ProtectedNames::embedded();
        };
        let path = match root {
            ListRoot::Directory(dir) => dir.join(value.get_ref()),
            ListRoot::Embedded => value.get_ref().into(),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                self.error(
                    "lists.protected",
                    value,
                    format!("cannot read {}: {e}", path.display()),
                );
                return ProtectedNames::embedded();
            }
        };
        match ProtectedNames::parse(&text, &path.display().to_string()) {
            Ok(set) => set,
            Err(errors) => {
                for error in errors {
                    self.error(
                        "lists.protected",
                        value,
                        format!("{}: {error}", path.display()),
                    );
                }
                ProtectedNames::embedded()
            }
        }
    }

    /// One entry of a category's `lists`: a file, or a subscription.
    pub(super) fn list_spec(
        &mut self,
        key: &str,
        at: &Spanned<RawListRef>,
        table: RawListTable,
        root: &ListRoot,
        cache_dir: &std::path::Path,
    ) -> Option<ListSpec> {
        let mut format = match &table.format {
            None => ListFormat::Auto,
            Some(text) => text.parse().unwrap_or_else(|e| {
                self.error(format!("{key}.format"), at, format!("{e}"));
                ListFormat::Auto
            }),
        };
        let given = [
            table.path.is_some(),
            table.source.is_some(),
            table.url.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            self.error(
                key,
                at,
                "give exactly one of path, source (a name from blocklists/sources.toml) or url",
            );
            return None;
        }
        if let Some(path) = table.path {
            let resolved = match root {
                ListRoot::Directory(dir) => dir.join(&path),
                ListRoot::Embedded => path.clone().into(),
            };
            return Some(ListSpec {
                display: path,
                path: resolved,
                format,
                place: self.place(key, at),
                download: None,
            });
        }
        let (name, url, refresh) = if let Some(source) = &table.source {
            let catalogue = crate::lists::catalogue::parse(crate::lists::catalogue::EMBEDDED)
                .unwrap_or_default();
            let Some(found) = catalogue.iter().find(|s| &s.name == source) else {
                self.error(
                    format!("{key}.source"),
                    at,
                    format!("{source:?} is not in blocklists/sources.toml"),
                );
                return None;
            };
            if table.format.is_none() {
                format = found.format;
            }
            (found.name.clone(), found.url.clone(), found.refresh)
        } else {
            let url = table.url.unwrap_or_default();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                self.error(
                    format!("{key}.url"),
                    at,
                    "must be an http:// or https:// URL",
                );
                return None;
            }
            let Some(name) = table.name else {
                self.error(
                    format!("{key}.name"),
                    at,
                    "a url list needs a name (its file name in the cache)",
                );
                return None;
            };
            (name, url, std::time::Duration::from_secs(86_400))
        };
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && !name.starts_with('.');
        if !valid_name {
            self.error(
                format!("{key}.name"),
                at,
                format!("{name:?} is not a file name: use a-z, 0-9, '-', '_', '.'"),
            );
            return None;
        }
        let refresh = match &table.refresh {
            None => refresh,
            Some(text) => crate::lists::catalogue::parse_interval(text).unwrap_or_else(|| {
                self.error(
                    format!("{key}.refresh"),
                    at,
                    format!("{text:?} is not an interval like 30m, 6h, 1d"),
                );
                refresh
            }),
        };
        if let Some(pin) = &table.sha256
            && (pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            self.error(format!("{key}.sha256"), at, "must be 64 hex digits");
        }
        Some(ListSpec {
            display: format!("{name} ({url})"),
            path: cache_dir.join(format!("{name}.txt")),
            format,
            place: self.place(key, at),
            download: Some(Download {
                name,
                url,
                sha256: table.sha256.map(|p| p.to_ascii_lowercase()),
                refresh,
            }),
        })
    }

    pub(super) fn categories(
        &mut self,
        raw: Vec<RawCategory>,
        root: &ListRoot,
        cache_dir: &std::path::Path,
    ) -> Vec<Category> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        if raw.len() > MAX_CATEGORIES {
            self.error_no_line(
                "category",
                format!("{} categories defined; at most {MAX_CATEGORIES}", raw.len()),
            );
        }
        for (i, category) in raw.into_iter().enumerate() {
            let key = format!("category[{i}]");
            let id = category.id.get_ref().clone();
            self.unique_id("category", &key, &category.id, &mut seen);
            let mut lists = Vec::new();
            for (j, list) in category.lists.into_iter().enumerate() {
                let list_key = format!("{key}.lists[{j}]");
                let table = match list.get_ref() {
                    RawListRef::Path(path) => RawListTable {
                        path: Some(path.clone()),
                        source: None,
                        url: None,
                        name: None,
                        format: None,
                        sha256: None,
                        refresh: None,
                    },
                    RawListRef::Table(table) => RawListTable {
                        path: table.path.clone(),
                        source: table.source.clone(),
                        url: table.url.clone(),
                        name: table.name.clone(),
                        format: table.format.clone(),
                        sha256: table.sha256.clone(),
                        refresh: table.refresh.clone(),
                    },
                };
                if let Some(spec) = self.list_spec(&list_key, &list, table, root, cache_dir) {
                    lists.push(spec);
                }
            }
            out.push(Category {
                name: category.name.unwrap_or_else(|| id.clone()),
                id,
                lists,
            });
        }
        out
    }
}
