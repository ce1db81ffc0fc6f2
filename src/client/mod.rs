//! Source address → school and grade band.
//!
//! Longest-prefix match over every configured network, IPv4 and IPv6. The
//! table keeps one hash map per prefix length that is actually in use and
//! probes them longest first: a handful of lookups per query, no allocation.
//! IPv4-mapped IPv6 sources (`::ffff:10.0.0.1`, seen on dual-stack sockets)
//! are matched as the IPv4 address they carry.
//!
//! Uses: `config`. Used by: `snapshot` (the network map), `policy`, `dns`,
//! `stats`, `web`.

use crate::config::Config;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;

/// Who is asking: indices into `Config::schools` and `Config::bands`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub school: usize,
    pub band: usize,
}

/// A school and band named by id instead of by address: what a band token
/// of encrypted DNS stands for. Resolved against each query's snapshot, so
/// a reload that removes the band refuses its token's questions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedBand {
    pub school: String,
    pub band: String,
}

impl NamedBand {
    /// The indices in `config`, when both ids exist.
    pub fn resolve(&self, config: &Config) -> Option<Client> {
        let school = config.schools.iter().position(|s| s.id == self.school)?;
        let band = config.bands.iter().position(|b| b.id == self.band)?;
        Some(Client { school, band })
    }
}

/// What a network stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    school: usize,
    /// `None`: a campus network; the school's unknown band applies.
    band: Option<usize>,
}

/// Longest-prefix-match table of all school networks.
#[derive(Debug, Default)]
pub struct NetworkMap {
    v4: PrefixTable<u32>,
    v6: PrefixTable<u128>,
    unknown_band: Vec<usize>,
}

#[derive(Debug)]
struct PrefixTable<K> {
    /// (prefix length, network bits → target), longest prefix first.
    by_length: Vec<(u8, HashMap<K, Target>)>,
}

impl<K> Default for PrefixTable<K> {
    fn default() -> Self {
        PrefixTable {
            by_length: Vec::new(),
        }
    }
}

trait PrefixKey: Copy + Eq + std::hash::Hash {
    const BITS: u8;
    fn masked(self, len: u8) -> Self;
}

impl PrefixKey for u32 {
    const BITS: u8 = 32;
    fn masked(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u32::MAX << (32 - len))
        }
    }
}

impl PrefixKey for u128 {
    const BITS: u8 = 128;
    fn masked(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u128::MAX << (128 - len))
        }
    }
}

impl<K: PrefixKey> PrefixTable<K> {
    fn insert(&mut self, key: K, len: u8, target: Target) {
        debug_assert!(len <= K::BITS);
        let index = match self.by_length.iter().position(|(l, _)| *l == len) {
            Some(i) => i,
            None => {
                self.by_length.push((len, HashMap::new()));
                self.by_length
                    .sort_by_key(|entry| std::cmp::Reverse(entry.0));
                self.by_length
                    .iter()
                    .position(|(l, _)| *l == len)
                    .expect("just inserted")
            }
        };
        self.by_length[index].1.insert(key.masked(len), target);
    }

    fn lookup(&self, key: K) -> Option<Target> {
        self.by_length
            .iter()
            .find_map(|(len, map)| map.get(&key.masked(*len)).copied())
    }
}

impl NetworkMap {
    pub fn new(config: &Config) -> Self {
        let mut map = NetworkMap::default();
        for (school_index, school) in config.schools.iter().enumerate() {
            map.unknown_band.push(school.unknown_band);
            let campus = school.networks.iter().map(|net| (*net, None));
            let bands = school
                .band_networks
                .iter()
                .map(|(net, band)| (*net, Some(*band)));
            for (net, band) in campus.chain(bands) {
                map.insert(
                    net,
                    Target {
                        school: school_index,
                        band,
                    },
                );
            }
        }
        map
    }

    fn insert(&mut self, net: IpNet, target: Target) {
        match net {
            IpNet::V4(n) => self
                .v4
                .insert(u32::from(n.network()), n.prefix_len(), target),
            IpNet::V6(n) => self
                .v6
                .insert(u128::from(n.network()), n.prefix_len(), target),
        }
    }

    /// The school and band of a source address, or `None` when the address
    /// is outside every school network.
    pub fn classify(&self, ip: IpAddr) -> Option<Client> {
        let target = match ip {
            IpAddr::V4(v4) => self.v4.lookup(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.v4.lookup(u32::from(v4)),
                None => self.v6.lookup(u128::from(v6)),
            },
        }?;
        Some(Client {
            school: target.school,
            band: target
                .band
                .unwrap_or_else(|| self.unknown_band[target.school]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, usize, Option<usize>)]) -> NetworkMap {
        let mut map = NetworkMap {
            unknown_band: vec![9, 8],
            ..Default::default()
        };
        for (net, school, band) in entries {
            map.insert(
                net.parse().unwrap(),
                Target {
                    school: *school,
                    band: *band,
                },
            );
        }
        map
    }

    #[test]
    fn longest_prefix_wins_v4_and_v6() {
        let map = map(&[
            ("10.0.0.0/8", 0, None),
            ("10.1.0.0/16", 0, Some(1)),
            ("10.1.2.0/24", 0, Some(2)),
            ("2001:db8::/32", 1, None),
            ("2001:db8:1::/48", 1, Some(3)),
        ]);
        let at = |ip: &str| map.classify(ip.parse().unwrap());
        assert_eq!(at("10.9.9.9"), Some(Client { school: 0, band: 9 }));
        assert_eq!(at("10.1.9.9"), Some(Client { school: 0, band: 1 }));
        assert_eq!(at("10.1.2.200"), Some(Client { school: 0, band: 2 }));
        assert_eq!(at("::ffff:10.1.2.3"), Some(Client { school: 0, band: 2 }));
        assert_eq!(at("2001:db8:1::5"), Some(Client { school: 1, band: 3 }));
        assert_eq!(at("2001:db8:2::5"), Some(Client { school: 1, band: 8 }));
        assert_eq!(at("192.0.2.1"), None);
        assert_eq!(at("2001:db9::1"), None);
    }

    #[test]
    fn host_routes_and_default_route() {
        let map = map(&[("0.0.0.0/0", 1, None), ("127.0.0.2/32", 0, Some(4))]);
        assert_eq!(
            map.classify("127.0.0.2".parse().unwrap()),
            Some(Client { school: 0, band: 4 })
        );
        assert_eq!(
            map.classify("127.0.0.3".parse().unwrap()),
            Some(Client { school: 1, band: 8 })
        );
    }
}
