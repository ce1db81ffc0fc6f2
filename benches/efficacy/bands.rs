//! What every band is answered, over DNS: (c) false alarms on the names no
//! band may block, the held-out check, and (d) the share of the top 10k.

use crate::install::{GUEST, STAFF, THCS, THPT};
use crate::net::{self, Verdict};
use crate::report::percent;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const BANDS: [(&str, &str); 4] = [
    ("thcs", THCS),
    ("thpt", THPT),
    ("staff", STAFF),
    ("guest", GUEST),
];

/// The tables of parts (c) and (d) over DNS, one row per band.
pub struct Bands {
    /// Blocked and other answers among `friendly`.
    pub alarms: String,
    /// Every blocked name of `friendly`, as `band: name`.
    pub false_alarms: Vec<String>,
    /// Blocked among `held_out`.
    pub held_out: String,
    /// Blocked among `top`.
    pub top: String,
}

/// Asks `friendly`, `held_out` and `top` from every band, in that order.
pub async fn ask_bands(
    dns: SocketAddr,
    sinkhole: Ipv4Addr,
    friendly: &[String],
    held_out: &[String],
    top: &[String],
) -> Bands {
    let mut false_alarms = Vec::new();
    let mut alarm_table = String::from(
        "| Band | Names asked | Blocked (false alarms) | Other answers |\n|---|---:|---:|---|\n",
    );
    let mut held_out_table =
        String::from("| Band | Names asked | Blocked | Which |\n|---|---:|---:|---|\n");
    let mut top_table =
        String::from("| Band | Blocked of the top 10k | Share |\n|---|---:|---:|\n");
    for (band, source) in BANDS {
        let source: IpAddr = source.parse().unwrap();
        let verdicts = net::ask_all(dns, source, friendly, sinkhole).await;
        let mut others: BTreeMap<String, usize> = BTreeMap::new();
        let mut blocked = 0;
        for (name, verdict) in friendly.iter().zip(&verdicts) {
            match verdict {
                Verdict::Blocked => {
                    blocked += 1;
                    false_alarms.push(format!("{band}: {name}"));
                }
                Verdict::Allowed => {}
                other => *others.entry(format!("{other:?}")).or_default() += 1,
            }
        }
        let others = others
            .iter()
            .map(|(k, v)| format!("{k} × {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            alarm_table,
            "| {band} | {} | {blocked} | {} |",
            friendly.len(),
            if others.is_empty() { "–" } else { &others }
        );
        let verdicts = net::ask_all(dns, source, held_out, sinkhole).await;
        let blocked: Vec<String> = held_out
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| **v == Verdict::Blocked)
            .map(|(n, _)| format!("`{n}`"))
            .collect();
        let _ = writeln!(
            held_out_table,
            "| {band} | {} | {} | {} |",
            held_out.len(),
            blocked.len(),
            if blocked.is_empty() {
                "–".to_string()
            } else {
                blocked.join(", ")
            }
        );
        // ---- (d) the top 10k over DNS.
        let verdicts = net::ask_all(dns, source, top, sinkhole).await;
        let blocked: Vec<&str> = top
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| **v == Verdict::Blocked)
            .map(|(n, _)| n.as_str())
            .collect();
        let _ = writeln!(
            top_table,
            "| {band} | {} | {} |",
            blocked.len(),
            percent(blocked.len(), top.len())
        );
    }
    Bands {
        alarms: alarm_table,
        false_alarms,
        held_out: held_out_table,
        top: top_table,
    }
}
