//! Category blocklists: domain-name normalisation ([`name`]), the list-format
//! parsers ([`formats`]) and the hash-trie matcher ([`trie`]) that answers
//! "is this name, or a parent domain of it, listed, and in which categories?"
//! in one walk from the TLD down.
//!
//! ```text
//! list file ──formats::parse──▶ Entry { domain (normalised), action, line }
//!           ──TrieBuilder::insert(domain, category, action, RuleRef)──▶ build()
//!           ──▶ DomainTrie (immutable, shared by every worker)
//!               .decide(qname, band mask) → TrieMatch { action, category, depth }
//!               .rule(&match)             → RuleRef { list, line }   (explain path)
//! ```
//!
//! Every list entry means "this domain **and all its subdomains**".
//!
//! [`catalogue`], [`download`] and [`subscriptions`] fetch and refresh list
//! files; they only use [`formats`].
//!
//! Uses: `config`; `subscriptions` also `app::reload` (a downloaded list
//! triggers a reload). Used by: `snapshot`, `policy`, `dns`, `office`,
//! `takedown`, `web`, `cli`, `app`.

pub mod catalogue;
pub mod download;
pub mod formats;
pub mod name;
pub mod protected;
pub mod status;
pub mod subscriptions;
pub mod trie;

/// Index of a category: the bit position in a [`CategoryMask`], `0..MAX_CATEGORIES`.
pub type CategoryId = u8;
/// At most this many categories (one bit each in a [`CategoryMask`]).
pub const MAX_CATEGORIES: usize = 32;
/// One bit per category: bit `i` is category `i`.
pub type CategoryMask = u32;

/// What a list entry asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleAction {
    /// Block the domain and its subdomains.
    Block,
    /// An exception (`@@||x^`, `x CNAME rpz-passthru.`): at the same domain it
    /// beats a block, and a more specific block below it still blocks.
    Allow,
}

/// Where a rule came from: `list` is an index into the caller's table of list
/// files, `line` is 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleRef {
    pub list: u16,
    pub line: u32,
}

#[cfg(test)]
mod tests {
    use super::trie::DomainTrie;

    #[test]
    fn the_matcher_can_be_shared_between_threads() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<DomainTrie>();
        assert_eq!(super::MAX_CATEGORIES, super::CategoryMask::BITS as usize);
    }
}
