//! `[server]`: the DNS, warning-page and management listeners, and the
//! limits on queries and connections being answered at once.

use super::Checker;
use crate::config::raw::RawServer;
use crate::config::types::*;
use std::net::SocketAddr;
use std::time::Duration;

/// Default cap on queries being answered at once (Unbound's default).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 2048;
pub const DEFAULT_TCP_MAX_CONNECTIONS: usize = 512;
pub const DEFAULT_TCP_IDLE_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_MANAGEMENT_LISTEN: &str = "127.0.0.1:9153";

impl Checker {
    pub(super) fn server(&mut self, raw: RawServer) -> ServerConfig {
        let dns_listen = match raw.dns_listen {
            Some(list) => self.socket_addrs("server.dns_listen", &list, 53),
            None => vec![SocketAddr::from(([0, 0, 0, 0], 53))],
        };
        let http_listen = match raw.http_listen {
            Some(list) => self.socket_addrs("server.http_listen", &list, 80),
            None => Vec::new(),
        };
        let https_listen = match raw.https_listen {
            Some(list) => self.socket_addrs("server.https_listen", &list, 443),
            None => Vec::new(),
        };
        let management_listen = match raw.management_listen {
            Some(v) => self
                .socket_addr("server.management_listen", &v, 9153)
                .unwrap_or_else(default_management),
            None => default_management(),
        };
        let max_in_flight = self.positive_or(
            "server.max_in_flight",
            raw.max_in_flight,
            DEFAULT_MAX_IN_FLIGHT as u64,
        ) as usize;
        let tcp_max_connections = self.positive_or(
            "server.tcp_max_connections",
            raw.tcp_max_connections,
            DEFAULT_TCP_MAX_CONNECTIONS as u64,
        ) as usize;
        let tcp_idle_timeout = Duration::from_secs(self.positive_or(
            "server.tcp_idle_timeout_secs",
            raw.tcp_idle_timeout_secs,
            DEFAULT_TCP_IDLE_TIMEOUT_SECS,
        ));
        let outside_clients = match &raw.outside_clients {
            None => OutsideClients::Refuse,
            Some(v) => match v.get_ref().as_str() {
                "refuse" => OutsideClients::Refuse,
                "drop" => OutsideClients::Drop,
                other => {
                    self.error(
                        "server.outside_clients",
                        v,
                        format!("unknown value {other:?}: expected \"refuse\" or \"drop\""),
                    );
                    OutsideClients::Refuse
                }
            },
        };
        ServerConfig {
            dns_listen,
            http_listen,
            https_listen,
            management_listen,
            max_in_flight,
            tcp_max_connections,
            tcp_idle_timeout,
            outside_clients,
            fast_path: raw.fast_path.unwrap_or(true),
            udp_workers: match raw.udp_workers {
                None => default_udp_workers(),
                Some(v) => match *v.get_ref() {
                    n @ 1..=64 => n as usize,
                    _ => {
                        self.error("server.udp_workers", &v, "must be 1 to 64");
                        1
                    }
                },
            },
        }
    }
}

/// One UDP socket per core (at most 8), as Unbound's `num-threads` advice.
fn default_udp_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8)
}

fn default_management() -> SocketAddr {
    DEFAULT_MANAGEMENT_LISTEN.parse().expect("valid constant")
}
