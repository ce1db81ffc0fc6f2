//! The base test configuration, the default lists it names, and files.

use std::path::Path;

/// Absolute path of a file under `../shared/data/`.
pub fn shared_data(relative: &str) -> String {
    format!("{}/../shared/data/{relative}", env!("CARGO_MANIFEST_DIR"))
}

/// A config with one school (127.0.0.0/24), bands `young` (127.0.0.2),
/// `teen` (127.0.0.3) and `staff` (127.0.0.4); everything else in the /24
/// is the school's unknown band (the strictest, `young`).
/// `{LISTS}` in `extra` is replaced by the lists directory.
pub fn base_config(extra: &str) -> String {
    format!(
        r#"
[server]
dns_listen = ["127.0.0.1:0"]
management_listen = "127.0.0.1:0"
max_in_flight = 64

[upstream]
servers = ["127.0.0.1:1"]
timeout_ms = 1500

[blocking]
sinkhole_ipv4 = "10.99.0.1"
sinkhole_ipv6 = "fd99::1"
ttl = 120

[reload]
watch_interval_secs = 0

[[category]]
id = "gambling"
name = "Cờ bạc / Gambling"
lists = ["lists/gambling.txt"]

[[category]]
id = "social"
name = "Mạng xã hội / Social networks"
lists = ["lists/social.txt"]

[[band]]
id = "young"
block = ["gambling", "social"]
deny = ["deny.example"]
allow = ["ok.bet.example"]

[[band]]
id = "teen"
block = ["gambling"]

[[band]]
id = "staff"
block = []

[[school]]
id = "s1"
name = "Trường Thử / Test school"
networks = ["127.0.0.0/24"]

[school.bands]
young = ["127.0.0.2/32"]
teen = ["127.0.0.3/32"]
staff = ["127.0.0.4/32"]
{extra}
"#
    )
}

/// Default list contents for `base_config`.
pub const GAMBLING: &str = "# test list\nbet.example\ncasino.example\n";
pub const SOCIAL: &str = "social.example\n";

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}
