//! The hash of a trie key, `(parent node, label bytes)`, and the mapping of a
//! hash onto a table.
//!
//! A wyhash-style function written out here rather than taken from a crate:
//! labels are 1 to 63 bytes, so it reads the label in at most a few
//! (overlapping) 4- or 8-byte loads and mixes them with two 64×64→128-bit
//! multiplications. It is not keyed: the table compares the full key on a
//! hit, so a crafted collision can only lengthen a probe run, and names only
//! reach the table after the lists that define them were read.

const SECRET_0: u64 = 0xa076_1d64_78bd_642f;
const SECRET_1: u64 = 0xe703_7ed1_a0b4_28db;

/// Multiplies into 128 bits and folds the halves.
#[inline(always)]
fn fold_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

#[inline(always)]
pub(super) fn read4(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u64::from(u32::from_le_bytes(word))
}

#[inline(always)]
pub(super) fn read8(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Hash of a child key: its parent's node id and its label.
#[inline]
pub(super) fn hash(parent: u32, label: &[u8]) -> u64 {
    let len = label.len();
    let mut seed = u64::from(parent) ^ SECRET_0;
    let (a, b) = if len <= 16 {
        if len >= 4 {
            let quarter = (len >> 3) << 2;
            (
                (read4(label, 0) << 32) | read4(label, quarter),
                (read4(label, len - 4) << 32) | read4(label, len - 4 - quarter),
            )
        } else if len > 0 {
            let packed = (u64::from(label[0]) << 16)
                | (u64::from(label[len >> 1]) << 8)
                | u64::from(label[len - 1]);
            (packed, 0)
        } else {
            (0, 0)
        }
    } else {
        let mut at = 0;
        while len - at > 16 {
            seed = fold_multiply(read8(label, at) ^ SECRET_1, read8(label, at + 8) ^ seed);
            at += 16;
        }
        (read8(label, len - 16), read8(label, len - 8))
    };
    fold_multiply(SECRET_1 ^ len as u64, fold_multiply(a ^ SECRET_1, b ^ seed))
}

/// Maps a hash onto `0..len` by multiply-shift (Lemire), so a table can have
/// any size, not only a power of two. Uses the hash's high bits.
#[inline(always)]
pub(super) fn home(hash: u64, len: usize) -> usize {
    ((u128::from(hash) * len as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_length_and_every_parent_hash_apart() {
        let text = b"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0";
        let mut seen = HashSet::new();
        for len in 0..=63 {
            for parent in [0, 1, 2, u32::MAX] {
                assert!(seen.insert(hash(parent, &text[..len])), "{len} {parent}");
            }
        }
        // Labels that differ in one byte anywhere.
        for at in 0..63 {
            let mut changed = text.to_vec();
            changed[at] ^= 1;
            assert_ne!(hash(7, text), hash(7, &changed), "{at}");
        }
    }

    #[test]
    fn homes_spread_over_a_table() {
        let len = 1000;
        let mut counts = vec![0u32; len];
        for i in 0..100_000u32 {
            counts[home(hash(i % 97, format!("label{i}").as_bytes()), len)] += 1;
        }
        // 100 expected per bucket; a good hash keeps every bucket near it.
        assert!(
            counts.iter().all(|&c| (50..=160).contains(&c)),
            "{counts:?}"
        );
    }
}
