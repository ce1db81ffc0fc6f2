//! `[[band]]`: grade bands, the categories each blocks (always or on a
//! schedule), their own entries and per-client limits.

use super::Checker;
use crate::config::raw::*;
use crate::config::types::*;
use std::collections::HashSet;

impl Checker {
    pub(super) fn bands(&mut self, raw: Vec<RawBand>, categories: &[Category]) -> Vec<Band> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        if raw.is_empty() {
            self.error_no_line("band", "no grade band defined: add at least one [[band]]");
        }
        for (i, band) in raw.into_iter().enumerate() {
            let key = format!("band[{i}]");
            let id = band.id.get_ref().clone();
            self.unique_id("band", &key, &band.id, &mut seen);
            let mut blocked = Vec::new();
            for (j, name) in band.block.iter().enumerate() {
                match categories.iter().position(|c| &c.id == name.get_ref()) {
                    Some(index) if !blocked.contains(&index) => blocked.push(index),
                    Some(_) => {}
                    None => self.error(
                        format!("{key}.block[{j}]"),
                        name,
                        format!("unknown category {:?}", name.get_ref()),
                    ),
                }
            }
            let deny = self.rules(&format!("{key}.deny"), &band.deny);
            let allow = self.rules(&format!("{key}.allow"), &band.allow);
            let youtube = match &band.youtube {
                None => YouTubeMode::Off,
                Some(v) => match v.get_ref().as_str() {
                    "off" => YouTubeMode::Off,
                    "moderate" => YouTubeMode::Moderate,
                    "strict" => YouTubeMode::Strict,
                    other => {
                        self.error(
                            format!("{key}.youtube"),
                            v,
                            format!("unknown mode {other:?}: expected \"off\", \"moderate\" or \"strict\""),
                        );
                        YouTubeMode::Off
                    }
                },
            };
            let schedules = band
                .schedule
                .iter()
                .enumerate()
                .filter_map(|(j, raw)| {
                    self.schedule(&format!("{key}.schedule[{j}]"), raw, categories, &blocked)
                })
                .collect();
            out.push(Band {
                name: band.name.unwrap_or_else(|| id.clone()),
                id,
                blocked,
                deny,
                allow,
                safe_search: band.safe_search.unwrap_or(false),
                youtube,
                bypass_prevention: band.bypass_prevention.unwrap_or(true),
                max_qps_per_client: band.max_qps_per_client.as_ref().map_or(0, |v| {
                    self.non_negative(&format!("{key}.max_qps_per_client"), v)
                        .min(u64::from(u32::MAX)) as u32
                }),
                schedules,
            });
        }
        out
    }

    fn schedule(
        &mut self,
        key: &str,
        raw: &RawSchedule,
        categories: &[Category],
        always_blocked: &[usize],
    ) -> Option<Schedule> {
        let Some(category) = categories
            .iter()
            .position(|c| &c.id == raw.category.get_ref())
        else {
            self.error(
                format!("{key}.category"),
                &raw.category,
                format!("unknown category {:?}", raw.category.get_ref()),
            );
            return None;
        };
        if always_blocked.contains(&category) {
            self.error(
                format!("{key}.category"),
                &raw.category,
                format!(
                    "category {:?} is already in this band's block list (blocked all the time); remove it there to block it only on a schedule",
                    raw.category.get_ref()
                ),
            );
        }
        let mut days = 0u8;
        for (j, text) in raw.days.iter().enumerate() {
            match parse_days(text.get_ref()) {
                Some(bits) => days |= bits,
                None => self.error(
                    format!("{key}.days[{j}]"),
                    text,
                    format!("{:?} is not a day or range: use mon, tue, wed, thu, fri, sat, sun or a range like mon-fri", text.get_ref()),
                ),
            }
        }
        if raw.days.is_empty() {
            days = 0x7f;
        }
        let mut windows = Vec::new();
        for (j, text) in raw.windows.iter().enumerate() {
            match parse_window(text.get_ref()) {
                Some(window) => windows.push(window),
                None => self.error(
                    format!("{key}.windows[{j}]"),
                    text,
                    format!("{:?} is not a time window: write HH:MM-HH:MM with the start before the end, e.g. 07:00-11:30", text.get_ref()),
                ),
            }
        }
        if raw.windows.is_empty() {
            self.error(
                format!("{key}.windows"),
                &raw.category,
                "no windows: list at least one, e.g. [\"07:00-11:30\"]",
            );
        }
        let day_text: Vec<&str> = raw.days.iter().map(|d| d.get_ref().as_str()).collect();
        let window_text: Vec<&str> = raw.windows.iter().map(|w| w.get_ref().as_str()).collect();
        Some(Schedule {
            category,
            days,
            windows,
            text: format!(
                "{} {}",
                if day_text.is_empty() {
                    "every day".to_string()
                } else {
                    day_text.join(",")
                },
                window_text.join(", ")
            ),
            place: self.place(key, &raw.category),
        })
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `mon`, `sat-sun`, `mon-fri` → day bits (bit 0 = Monday).
fn parse_days(text: &str) -> Option<u8> {
    let day = |d: &str| DAYS.iter().position(|x| d.trim().eq_ignore_ascii_case(x));
    match text.split_once('-') {
        None => day(text).map(|d| 1 << d),
        Some((from, to)) => {
            let (from, to) = (day(from)?, day(to)?);
            if from > to {
                return None;
            }
            Some((from..=to).fold(0, |bits, d| bits | 1 << d))
        }
    }
}

/// `07:00-11:30` → minutes [420, 690); `24:00` allowed as an end.
fn parse_window(text: &str) -> Option<(u16, u16)> {
    let minutes = |t: &str| -> Option<u16> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        // `then`, not `then_some`: the product must not be computed for an
        // hour like 6424, where it overflows (found by the `config` fuzzer).
        (m < 60 && (h < 24 || h == 24 && m == 0)).then(|| h * 60 + m)
    };
    let (start, end) = text.split_once('-')?;
    let (start, end) = (minutes(start)?, minutes(end)?);
    (start < end).then_some((start, end))
}
