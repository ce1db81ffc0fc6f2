//! `[blocking]`: how a blocked name is answered (sinkhole, null or
//! NXDOMAIN) and for how long.

use super::Checker;
use crate::config::raw::RawBlocking;
use crate::config::types::*;

pub const DEFAULT_BLOCK_TTL: u32 = 60;
/// Upper bound of the blocked-answer TTL, so an unblock reaches students quickly.
pub const MAX_BLOCK_TTL: u32 = 300;

impl Checker {
    pub(super) fn blocking(&mut self, raw: RawBlocking) -> BlockingConfig {
        let mode = match &raw.mode {
            None => BlockMode::Sinkhole,
            Some(v) => match v.get_ref().as_str() {
                "sinkhole" => BlockMode::Sinkhole,
                "null" => BlockMode::Null,
                "nxdomain" => BlockMode::NxDomain,
                other => {
                    self.error(
                        "blocking.mode",
                        v,
                        format!(
                            "unknown mode {other:?}: expected \"sinkhole\", \"null\" or \"nxdomain\""
                        ),
                    );
                    BlockMode::Sinkhole
                }
            },
        };
        let sinkhole_ipv4 = raw.sinkhole_ipv4.as_ref().and_then(|v| {
            v.get_ref()
                .parse()
                .map_err(|_| self.error("blocking.sinkhole_ipv4", v, "not an IPv4 address"))
                .ok()
        });
        let sinkhole_ipv6 = raw.sinkhole_ipv6.as_ref().and_then(|v| {
            v.get_ref()
                .parse()
                .map_err(|_| self.error("blocking.sinkhole_ipv6", v, "not an IPv6 address"))
                .ok()
        });
        if mode == BlockMode::Sinkhole && raw.sinkhole_ipv4.is_none() {
            self.error_no_line(
                "blocking.sinkhole_ipv4",
                "missing: mode \"sinkhole\" needs the address of the warning-page server (or use mode = \"null\")",
            );
        }
        let ttl = match &raw.ttl {
            None => DEFAULT_BLOCK_TTL,
            Some(v) => {
                let ttl = self.non_negative("blocking.ttl", v);
                if ttl > u64::from(MAX_BLOCK_TTL) {
                    self.error(
                        "blocking.ttl",
                        v,
                        format!("{ttl} s is too long: at most {MAX_BLOCK_TTL} s, so an unblock reaches students quickly"),
                    );
                }
                ttl.min(u64::from(MAX_BLOCK_TTL)) as u32
            }
        };
        BlockingConfig {
            mode,
            sinkhole_ipv4,
            sinkhole_ipv6,
            ttl,
            block_doh_canary: raw.block_doh_canary.unwrap_or(true),
        }
    }
}
