//! Category blocklists: name normalisation, list-format parsers, and the
//! hash-trie matcher that answers "is this name or a parent listed, and in
//! which categories?" in one walk.

pub mod catalogue;
pub mod download;
pub mod formats;
pub mod name;
pub mod subscriptions;
pub mod trie;

/// Index of a category (bit position in a [`CategoryMask`]).
pub type CategoryId = u8;
/// At most this many categories (one bit each in a `u32`).
pub const MAX_CATEGORIES: usize = 32;
/// One bit per category.
pub type CategoryMask = u32;

/// What a list entry asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleAction {
    Block,
    /// An exception (`@@||x^`, `rpz-passthru.`): wins over a block at the same name.
    Allow,
}

/// Where a rule came from: `list` indexes the caller's table of list files,
/// `line` is 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleRef {
    pub list: u16,
    pub line: u32,
}
