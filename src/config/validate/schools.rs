//! `[[school]]`: schools, their networks (whole campus or per band), time
//! zone, holidays and own entries.

use super::Checker;
use crate::config::raw::*;
use crate::config::types::*;
use ipnet::IpNet;
use std::collections::HashSet;
use std::net::IpAddr;
use toml::Spanned;

/// Time zone of schools that do not name one.
pub const DEFAULT_TIMEZONE: &str = "Asia/Ho_Chi_Minh";

impl Checker {
    pub(super) fn schools(&mut self, raw: Vec<RawSchool>, bands: &[Band]) -> Vec<School> {
        let mut seen = HashSet::new();
        let mut networks_seen: HashSet<IpNet> = HashSet::new();
        let mut out = Vec::new();
        if raw.is_empty() {
            self.error_no_line(
                "school",
                "no school defined: add at least one [[school]] with its networks",
            );
        }
        for (i, school) in raw.into_iter().enumerate() {
            let key = format!("school[{i}]");
            let id = school.id.get_ref().clone();
            self.unique_id("school", &key, &school.id, &mut seen);
            let mut networks = Vec::new();
            for (j, net) in school.networks.iter().enumerate() {
                let net_key = format!("{key}.networks[{j}]");
                if let Some(net) = self.network(&net_key, net, &mut networks_seen) {
                    networks.push(net);
                }
            }
            let mut band_networks = Vec::new();
            for (band_id, nets) in &school.bands {
                let band_key = format!("{key}.bands.{band_id}");
                let band = bands.iter().position(|b| &b.id == band_id);
                if band.is_none() {
                    let message = format!("unknown band {band_id:?}");
                    match nets.first() {
                        Some(first) => self.error(band_key.clone(), first, message),
                        None => self.error_no_line(band_key.clone(), message),
                    }
                }
                for (j, net) in nets.iter().enumerate() {
                    let net_key = format!("{band_key}[{j}]");
                    if let (Some(net), Some(band)) =
                        (self.network(&net_key, net, &mut networks_seen), band)
                    {
                        band_networks.push((net, band));
                    }
                }
            }
            if school.networks.is_empty() && school.bands.is_empty() {
                self.error(
                    format!("{key}.networks"),
                    &school.id,
                    "the school has no networks: list its campus networks (CIDR) in networks or bands",
                );
            }
            let unknown_band = match &school.unknown_band {
                Some(v) => bands
                    .iter()
                    .position(|b| &b.id == v.get_ref())
                    .unwrap_or_else(|| {
                        self.error(
                            format!("{key}.unknown_band"),
                            v,
                            format!("unknown band {:?}", v.get_ref()),
                        );
                        0
                    }),
                None => strictest_band(bands),
            };
            let deny = self.rules(&format!("{key}.deny"), &school.deny);
            let allow = self.rules(&format!("{key}.allow"), &school.allow);
            let timezone_name = school
                .timezone
                .as_ref()
                .map_or(DEFAULT_TIMEZONE.to_string(), |t| t.get_ref().clone());
            let timezone = match jiff::tz::TimeZone::get(&timezone_name) {
                Ok(tz) => tz,
                Err(_) => {
                    if let Some(t) = &school.timezone {
                        self.error(
                            format!("{key}.timezone"),
                            t,
                            format!("unknown time zone {timezone_name:?}: use an IANA name like \"Asia/Ho_Chi_Minh\""),
                        );
                    }
                    jiff::tz::TimeZone::fixed(jiff::tz::offset(7))
                }
            };
            let holidays = school
                .holidays
                .iter()
                .enumerate()
                .filter_map(|(j, h)| self.holiday(&format!("{key}.holidays[{j}]"), h))
                .collect();
            out.push(School {
                timezone,
                timezone_name,
                holidays,
                name: school.name.unwrap_or_else(|| id.clone()),
                id,
                networks,
                band_networks,
                unknown_band,
                deny,
                allow,
            });
        }
        out
    }

    fn holiday(&mut self, key: &str, raw: &RawHoliday) -> Option<Holiday> {
        let mut date = |field: &str, value: &Spanned<String>| match value
            .get_ref()
            .parse::<jiff::civil::Date>()
        {
            Ok(date) => Some(date),
            Err(_) => {
                self.error(
                    format!("{key}.{field}"),
                    value,
                    format!("{:?} is not a date: write YYYY-MM-DD", value.get_ref()),
                );
                None
            }
        };
        let from = date("from", &raw.from)?;
        let to = match &raw.to {
            Some(to) => date("to", to)?,
            None => from,
        };
        if to < from {
            self.error(
                format!("{key}.to"),
                raw.to.as_ref().unwrap_or(&raw.from),
                "ends before it starts",
            );
            return None;
        }
        Some(Holiday {
            from,
            to,
            name: raw.name.clone().unwrap_or_default(),
        })
    }

    fn network(
        &mut self,
        key: &str,
        value: &Spanned<String>,
        seen: &mut HashSet<IpNet>,
    ) -> Option<IpNet> {
        let text = value.get_ref().trim();
        let parsed = text
            .parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => {
                let net = net.trunc();
                if !seen.insert(net) {
                    self.error(key, value, format!("network {net} is listed twice"));
                    return None;
                }
                Some(net)
            }
            Err(_) => {
                self.error(
                    key,
                    value,
                    format!(
                        "{text:?} is not a network: write a CIDR like 10.1.0.0/16 or 2001:db8::/48"
                    ),
                );
                None
            }
        }
    }
}

/// The band blocking the most categories (first on a tie): where unknown
/// clients inside a school network land unless the school says otherwise.
fn strictest_band(bands: &[Band]) -> usize {
    let mut best = 0;
    for (i, band) in bands.iter().enumerate() {
        if band.blocked.len() > bands[best].blocked.len() {
            best = i;
        }
    }
    best
}
