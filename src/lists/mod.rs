//! PLACEHOLDER until the real lists module lands (same API).
pub mod formats;
pub mod name;
pub mod trie;

pub type CategoryId = u8;
pub const MAX_CATEGORIES: usize = 32;
pub type CategoryMask = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleAction {
    Block,
    Allow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleRef {
    pub list: u16,
    pub line: u32,
}
