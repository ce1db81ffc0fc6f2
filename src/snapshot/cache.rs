//! The compiled lists, kept on disk between starts.
//!
//! Parsing a million list lines and building the trie takes about a second
//! on one core; reading the result back takes a few tens of milliseconds.
//! After every full build `edudns serve` writes the trie and what each list
//! contributed to `compiled-lists.bin` beside the statistics database. The
//! next start (or a reload whose lists have the same bytes, e.g. after a
//! `touch`) reads it instead of parsing, when its key matches: a SHA-256
//! over the file format, every list's category, declared format and
//! SHA-256 of its bytes, in config order. The lists are still read and
//! hashed each time (the list versions reports name need the hashes
//! anyway), so an edited list is never missed.
//!
//! The file: magic, file version, key, the trie, the per-list summaries,
//! and a SHA-256 of everything before it. Anything unexpected — another
//! version, a key mismatch, a short or damaged file — means "parse the
//! lists"; a damaged file is also logged. It is written to a temporary
//! file and renamed, so a crash never leaves half a cache.

use crate::lists::formats::ListFormat;
use crate::lists::trie::{DomainTrie, FORMAT_VERSION, invalid};
use sha2::{Digest, Sha256};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 12] = b"EDUDNS-LISTS";
/// The file's own layout (the trie inside has `FORMAT_VERSION`, in the key).
const FILE_VERSION: u32 = 4;

/// What one list contributed (the rest of a `LoadedList` comes from the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSummary {
    pub format: ListFormat,
    pub entries: usize,
    pub allow_entries: usize,
    pub skipped: usize,
    /// Block lines left out because they would block a protected name.
    pub protected_ignored: usize,
}

/// The cache file for a statistics database path.
pub fn path_for(database: &Path) -> PathBuf {
    database.with_file_name("compiled-lists.bin")
}

/// The key of a set of lists: the protected names' SHA-256, then per list
/// (category index, declared format, whether protection applies, SHA-256
/// of the bytes or `None` for a subscription not downloaded yet), in order.
pub fn key(protected: &str, lists: &[(usize, ListFormat, bool, Option<&str>)]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"edudns compiled lists");
    hasher.update(FORMAT_VERSION.to_le_bytes());
    hasher.update(protected.as_bytes());
    for (category, format, protect, sha256) in lists {
        hasher.update((*category as u64).to_le_bytes());
        hasher.update(format.as_str().as_bytes());
        hasher.update([0, u8::from(*protect)]);
        match sha256 {
            Some(hash) => {
                hasher.update([1]);
                hasher.update(hash.as_bytes());
            }
            None => hasher.update([0]),
        }
    }
    hasher.finalize().into()
}

/// A list summary on disk: the format's config name (NUL-padded), then
/// entries, allow entries, skipped lines and protected-ignored lines.
const NAME_BYTES: usize = 8;
const RECORD: usize = NAME_BYTES + 4 * 8;

/// Hashes everything that passes through.
struct Hashing<T> {
    inner: T,
    hasher: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Writes the cache atomically (temporary file, fsync, rename).
pub fn store(
    path: &Path,
    key: &[u8; 32],
    trie: &DomainTrie,
    lists: &[ListSummary],
) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension("bin.tmp");
    let file = std::fs::File::create(&temporary)?;
    let mut w = Hashing {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
    };
    w.write_all(MAGIC)?;
    w.write_all(&FILE_VERSION.to_le_bytes())?;
    w.write_all(key)?;
    trie.write_to(&mut w)?;
    w.write_all(&(lists.len() as u64).to_le_bytes())?;
    for list in lists {
        let mut name = [0u8; NAME_BYTES];
        let text = list.format.as_str().as_bytes();
        name[..text.len()].copy_from_slice(text);
        w.write_all(&name)?;
        for n in [
            list.entries,
            list.allow_entries,
            list.skipped,
            list.protected_ignored,
        ] {
            w.write_all(&(n as u64).to_le_bytes())?;
        }
    }
    let checksum = w.hasher.finalize_reset();
    let mut inner = w.inner;
    inner.write_all(&checksum)?;
    let file = inner.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)
}

/// The cached trie and list summaries when the file exists and was written
/// for `key`; `Ok(None)` when there is no file or it is for other lists (or
/// another version); an error when it is damaged.
pub fn load(path: &Path, key: &[u8; 32]) -> io::Result<Option<(DomainTrie, Vec<ListSummary>)>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let size = file.metadata()?.len();
    let header_len = (MAGIC.len() + 4 + 32) as u64;
    if size < header_len + 32 {
        return Err(invalid("truncated"));
    }
    let mut r = Hashing {
        inner: BufReader::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
    };
    let mut header = [0u8; MAGIC.len() + 4 + 32];
    r.read_exact(&mut header)?;
    if &header[..MAGIC.len()] != MAGIC {
        return Err(invalid("not a compiled lists file"));
    }
    let version = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes"));
    if version != FILE_VERSION || header[16..48] != key[..] {
        return Ok(None);
    }
    let body = size - header_len - 32;
    let mut limited = (&mut r).take(body);
    let trie = DomainTrie::read_from(&mut limited, body)?;
    let mut count = [0u8; 8];
    limited.read_exact(&mut count)?;
    let count = u64::from_le_bytes(count);
    if count > body / RECORD as u64 {
        return Err(invalid("list count"));
    }
    let mut lists = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let mut record = [0u8; RECORD];
        limited.read_exact(&mut record)?;
        let number = |at: usize| {
            u64::from_le_bytes(record[at..at + 8].try_into().expect("8 bytes")) as usize
        };
        let name = std::str::from_utf8(&record[..NAME_BYTES]).unwrap_or("");
        lists.push(ListSummary {
            format: name
                .trim_end_matches('\0')
                .parse()
                .map_err(|_| invalid("list format"))?,
            entries: number(NAME_BYTES),
            allow_entries: number(NAME_BYTES + 8),
            skipped: number(NAME_BYTES + 16),
            protected_ignored: number(NAME_BYTES + 24),
        });
    }
    if limited.limit() != 0 {
        return Err(invalid("unexpected bytes after the lists"));
    }
    let computed = r.hasher.finalize();
    let mut stored = [0u8; 32];
    r.inner.read_exact(&mut stored)?;
    if computed[..] != stored[..] {
        return Err(invalid("checksum mismatch (damaged file)"));
    }
    Ok(Some((trie, lists)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::trie::TrieBuilder;
    use crate::lists::{RuleAction, RuleRef};

    fn sample() -> DomainTrie {
        let mut builder = TrieBuilder::new();
        for i in 0..1000u32 {
            let rule = RuleRef {
                list: 0,
                line: i + 1,
            };
            builder.insert(&format!("n{i}.example"), 1, RuleAction::Block, rule);
        }
        builder.build()
    }

    #[test]
    fn stored_lists_load_back_only_for_their_key_and_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("stats.sqlite"));
        let key_a = key(
            "p",
            &[
                (0, ListFormat::Auto, false, Some("aa")),
                (1, ListFormat::Plain, true, None),
            ],
        );
        let key_b = key(
            "p",
            &[
                (0, ListFormat::Auto, false, Some("ab")),
                (1, ListFormat::Plain, true, None),
            ],
        );
        assert_ne!(key_a, key_b);
        // Other protected names, or protection switched, is another key.
        let key_c = key(
            "q",
            &[
                (0, ListFormat::Auto, false, Some("aa")),
                (1, ListFormat::Plain, true, None),
            ],
        );
        let key_d = key(
            "p",
            &[
                (0, ListFormat::Auto, true, Some("aa")),
                (1, ListFormat::Plain, true, None),
            ],
        );
        assert_ne!(key_a, key_c);
        assert_ne!(key_a, key_d);
        assert_eq!(
            load(&path, &key_a).unwrap().map(|_| ()),
            None,
            "no file yet"
        );
        let summaries = vec![ListSummary {
            format: ListFormat::Hosts,
            entries: 1000,
            allow_entries: 0,
            skipped: 3,
            protected_ignored: 2,
        }];
        let trie = sample();
        store(&path, &key_a, &trie, &summaries).unwrap();
        let (loaded, lists) = load(&path, &key_a).unwrap().expect("a hit");
        assert_eq!(lists, summaries);
        assert_eq!(loaded.domain_count(), trie.domain_count());
        assert!(loaded.decide("x.n999.example", u32::MAX).is_some());
        assert!(
            load(&path, &key_b).unwrap().is_none(),
            "other lists: a miss"
        );
        // One flipped byte anywhere in the body is caught.
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        assert!(load(&path, &key_a).is_err(), "damage not detected");
        std::fs::write(&path, &bytes[..bytes.len() - 40]).unwrap();
        assert!(load(&path, &key_a).is_err(), "truncation not detected");
    }

    /// Through `build_cached`: the first build parses and writes the cache,
    /// the second reads it (no parse time) and decides the same; an edited
    /// list or a damaged cache means parsing again, never a stale verdict.
    #[test]
    fn a_start_reads_the_compiled_lists_only_while_the_lists_are_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("gambling.txt");
        std::fs::write(&list, "bet.example\ncasino.example\n").unwrap();
        let config_path = dir.path().join("edudns.toml");
        let text = format!(
            r#"
[upstream]
servers = ["127.0.0.1:1"]
[blocking]
mode = "nxdomain"
[stats]
database = "{}"
[[category]]
id = "gambling"
lists = ["gambling.txt"]
[[band]]
id = "students"
block = ["gambling"]
[[school]]
id = "s1"
networks = ["127.0.0.0/8"]
"#,
            dir.path().join("state/stats.sqlite").display()
        );
        let config = || crate::config::load_str(&config_path, &text).unwrap();
        let cache = path_for(&config().stats.database);
        let blocked = |snapshot: &crate::snapshot::Snapshot, name: &str| {
            snapshot.lists.decide(name, u32::MAX).is_some()
        };
        let build = || crate::snapshot::build_cached(config(), 1, None, &cache).unwrap();

        let first = build();
        assert!(
            cache.exists(),
            "written after the first build (directory created)"
        );
        assert!(first.lists_loaded[0].elapsed > std::time::Duration::ZERO);
        let second = build();
        assert_eq!(
            second.lists_loaded[0].elapsed,
            std::time::Duration::ZERO,
            "not read from the cache"
        );
        assert_eq!(second.lists_loaded[0].entries, 2);
        assert_eq!(second.lists_loaded[0].sha256, first.lists_loaded[0].sha256);
        assert!(blocked(&second, "www.casino.example"));
        assert!(!blocked(&second, "poker.example"));

        std::fs::write(&list, "bet.example\npoker.example\n").unwrap();
        let edited = build();
        assert!(
            edited.lists_loaded[0].elapsed > std::time::Duration::ZERO,
            "a stale cache was used"
        );
        assert!(blocked(&edited, "poker.example") && !blocked(&edited, "casino.example"));

        let mut bytes = std::fs::read(&cache).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&cache, &bytes).unwrap();
        let repaired = build();
        assert!(
            repaired.lists_loaded[0].elapsed > std::time::Duration::ZERO,
            "a damaged cache was used"
        );
        assert!(blocked(&repaired, "poker.example"));
        assert_eq!(
            build().lists_loaded[0].elapsed,
            std::time::Duration::ZERO,
            "rewritten after the damage"
        );
    }
}
