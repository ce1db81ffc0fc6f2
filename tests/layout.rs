//! The shape of the source tree (docs/architecture.md, "Rooms"): a thin
//! root, no two modules that use each other, no file that does several
//! jobs, and every room saying what it does, what it uses and what uses it.
//! Read from the files themselves, so a change that breaks the shape fails
//! here rather than in review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files allowed at the root of `src/`.
const ROOT_FILES: usize = 4;
/// Longest source file, unless its top comment says why it is one file
/// ("one file because …").
const MAX_LINES: usize = 650;

type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `lib.rs` is the crate.
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Module = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// The code of a file without comments, string literals, unit tests and
/// re-exports (`pub use child::…` is the room's front door, not a use).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("pub use ") || trimmed.starts_with("pub(crate) use ") {
            continue;
        }
        let mut in_string = false;
        let mut escaped = false;
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                }
            } else if c == '"' {
                in_string = true;
            } else if c == '/' && chars.get(i + 1) == Some(&'/') {
                break;
            } else {
                out.push(c);
            }
            i += 1;
        }
        out.push('\n');
    }
    out
}

/// The modules a file's code names through `crate::`, `super::`, `self::`
/// or a child module's name, each resolved to the deepest module that exists.
fn uses(
    module: &Module,
    is_mod_file: bool,
    text: &str,
    modules: &BTreeSet<Module>,
) -> BTreeSet<Module> {
    let code = code(text);
    let bytes: Vec<char> = code.chars().collect();
    let mut found = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0
            || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        if !starts_word || !(bytes[i].is_alphabetic() || bytes[i] == '_') {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut path = Vec::new();
        loop {
            let start = j;
            while j < bytes.len() && (bytes[j].is_alphanumeric() || bytes[j] == '_') {
                j += 1;
            }
            path.push(bytes[start..j].iter().collect::<String>());
            if j + 2 < bytes.len()
                && bytes[j] == ':'
                && bytes[j + 1] == ':'
                && (bytes[j + 2].is_alphabetic() || bytes[j + 2] == '_')
            {
                j += 2;
            } else {
                break;
            }
        }
        i = j.max(i + 1);
        if path.len() < 2 {
            continue;
        }
        // The module the path starts from.
        let here: Module = if is_mod_file {
            module.clone()
        } else {
            module[..module.len().saturating_sub(1)].to_vec()
        };
        let (mut current, rest): (Module, &[String]) = match path[0].as_str() {
            "crate" => (Vec::new(), &path[1..]),
            "self" => (module.clone(), &path[1..]),
            "super" => {
                let mut m = module.clone();
                m.pop();
                (m, &path[1..])
            }
            _ => {
                // A child module named without a prefix (`use handler::X`).
                let mut child = here.clone();
                child.push(path[0].clone());
                if is_mod_file && modules.contains(&child) {
                    (here.clone(), &path[..])
                } else {
                    continue;
                }
            }
        };
        let mut rest = rest;
        while rest.first().is_some_and(|p| p == "super") {
            current.pop();
            rest = &rest[1..];
        }
        let mut best = current.clone();
        for part in rest {
            current.push(part.clone());
            if modules.contains(&current) {
                best = current.clone();
            } else {
                break;
            }
        }
        if &best != module {
            found.insert(best);
        }
    }
    found
}

struct Tree {
    files: BTreeMap<Module, (PathBuf, String)>,
}

fn tree() -> Tree {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let mut files = BTreeMap::new();
    for path in paths {
        let module = module_of(&src, &path);
        let text = std::fs::read_to_string(&path).unwrap();
        // main.rs and lib.rs are both the root; main.rs only calls cli.
        if path.ends_with("main.rs") {
            continue;
        }
        files.insert(module, (path, text));
    }
    Tree { files }
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "crate".to_string()
    } else {
        module.join("::")
    }
}

#[test]
fn no_two_modules_use_each_other() {
    let tree = tree();
    let modules: BTreeSet<Module> = tree.files.keys().cloned().collect();
    let edges: BTreeMap<&Module, BTreeSet<Module>> = tree
        .files
        .iter()
        .map(|(module, (path, text))| {
            let is_mod_file = path.ends_with("mod.rs") || path.ends_with("lib.rs");
            (module, uses(module, is_mod_file, text, &modules))
        })
        .collect();
    let mut circles = Vec::new();
    for (a, used) in &edges {
        for b in used {
            if *a < b && edges.get(b).is_some_and(|back| back.contains(*a)) {
                circles.push(format!("{} <-> {}", name(a), name(b)));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "modules that use each other: {circles:#?}"
    );
}

#[test]
fn the_source_root_holds_at_most_four_files() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(files.len() <= ROOT_FILES, "src/ holds {files:?}");
}

#[test]
fn no_source_file_does_several_jobs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    for dir in ["src", "tests", "benches", "fuzz/fuzz_targets"] {
        if root.join(dir).is_dir() {
            rust_files(&root.join(dir), &mut paths);
        }
    }
    let mut long = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines = text.lines().count();
        let top: String = text
            .lines()
            .take_while(|l| l.starts_with("//"))
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if lines > MAX_LINES && !top.contains("one file because") {
            long.push(format!(
                "{} ({lines} lines)",
                path.strip_prefix(root).unwrap().display()
            ));
        }
    }
    assert!(
        long.is_empty(),
        "split by responsibility, or say at the top why it is one file: {long:#?}"
    );
}

#[test]
fn every_room_says_what_it_does_uses_and_is_used_by() {
    let tree = tree();
    let mut silent = Vec::new();
    for (module, (path, text)) in &tree.files {
        // A room: a top-level folder of src/.
        if module.len() != 1 || !path.ends_with("mod.rs") {
            continue;
        }
        let top: String = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        if top.is_empty() || !top.contains("Uses:") || !top.contains("Used by:") {
            silent.push(name(module));
        }
    }
    assert!(
        silent.is_empty(),
        "rooms whose mod.rs does not open with what they do, `Uses:` and `Used by:`: {silent:?}"
    );
}
