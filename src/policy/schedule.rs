//! Weekly windows in which a band blocks extra categories, in each school's
//! local time, switched off on the school's holidays. Evaluated with a few
//! integer comparisons per query and no allocation.

use crate::config::{Band, School};
use crate::lists::CategoryMask;
use jiff::Timestamp;

/// A school's local time at one moment, as the schedule needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    /// Minutes since local midnight.
    pub minute: u16,
    /// Days since 1970-01-01 (local), for holiday ranges.
    pub day: i32,
}

impl LocalTime {
    /// Converts `now` with the school's time zone (DST-aware, no allocation).
    pub fn of(now: Timestamp, school: &SchoolTime) -> Self {
        let offset = school.timezone.to_offset(now).seconds();
        let local = now.as_second() + i64::from(offset);
        let day = local.div_euclid(86_400);
        let minute = (local.rem_euclid(86_400) / 60) as u16;
        // 1970-01-01 was a Thursday (weekday 3 with Monday = 0).
        let weekday = ((day + 3).rem_euclid(7)) as u8;
        LocalTime {
            weekday,
            minute,
            day: day as i32,
        }
    }
}

/// A school's time zone and holidays, compiled.
pub struct SchoolTime {
    timezone: jiff::tz::TimeZone,
    /// Inclusive ranges of local day numbers.
    holidays: Vec<(i32, i32)>,
}

fn day_number(date: jiff::civil::Date) -> i32 {
    let epoch = jiff::civil::date(1970, 1, 1);
    (date - epoch).get_days()
}

impl SchoolTime {
    pub fn new(school: &School) -> Self {
        SchoolTime {
            timezone: school.timezone.clone(),
            holidays: school
                .holidays
                .iter()
                .map(|h| (day_number(h.from), day_number(h.to)))
                .collect(),
        }
    }

    pub fn is_holiday(&self, day: i32) -> bool {
        self.holidays
            .iter()
            .any(|&(from, to)| from <= day && day <= to)
    }
}

/// One compiled window.
#[derive(Debug, Clone, Copy)]
struct Window {
    days: u8,
    start: u16,
    end: u16,
    mask: CategoryMask,
    /// Index into the band's `schedules`.
    schedule: u16,
}

/// A band's windows.
#[derive(Debug, Default)]
pub struct BandSchedule {
    windows: Vec<Window>,
}

impl BandSchedule {
    pub fn new(band: &Band) -> Self {
        let mut windows = Vec::new();
        for (index, schedule) in band.schedules.iter().enumerate() {
            for &(start, end) in &schedule.windows {
                windows.push(Window {
                    days: schedule.days,
                    start,
                    end,
                    mask: 1 << schedule.category,
                    schedule: index as u16,
                });
            }
        }
        BandSchedule { windows }
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Categories blocked by a window at `time` (none on holidays).
    pub fn active_mask(&self, time: LocalTime, school: &SchoolTime) -> CategoryMask {
        if self.windows.is_empty() || school.is_holiday(time.day) {
            return 0;
        }
        self.windows
            .iter()
            .filter(|w| {
                w.days & (1 << time.weekday) != 0 && w.start <= time.minute && time.minute < w.end
            })
            .fold(0, |mask, w| mask | w.mask)
    }

    /// The schedule (index into `Band::schedules`) that blocks `category` at `time`.
    pub fn active_for(
        &self,
        category: usize,
        time: LocalTime,
        school: &SchoolTime,
    ) -> Option<usize> {
        if school.is_holiday(time.day) {
            return None;
        }
        self.windows
            .iter()
            .find(|w| {
                w.mask & (1 << category) != 0
                    && w.days & (1 << time.weekday) != 0
                    && w.start <= time.minute
                    && time.minute < w.end
            })
            .map(|w| usize::from(w.schedule))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ListRoot, validate};
    use std::path::Path;

    const CONFIG: &str = r#"
[upstream]
servers = ["192.0.2.53"]
[blocking]
sinkhole_ipv4 = "10.0.0.1"
[[category]]
id = "games"
[[category]]
id = "social"
[[band]]
id = "kids"
block = ["games"]
[[band.schedule]]
category = "social"
days = ["mon-fri", "sat"]
windows = ["07:00-11:30", "13:30-17:00"]
[[school]]
id = "s1"
networks = ["10.0.0.0/8"]
holidays = [{ from = "2026-12-31", to = "2027-01-01", name = "Tết Dương lịch" }]
"#;

    fn at(text: &str) -> Timestamp {
        // Local Vietnam time (UTC+7).
        format!("{text}+07:00").parse().unwrap()
    }

    #[test]
    fn windows_edges_days_and_holidays() {
        let config = validate::parse(CONFIG, Path::new("t.toml"), ListRoot::Embedded).unwrap();
        let school = SchoolTime::new(&config.schools[0]);
        let band = BandSchedule::new(&config.bands[0]);
        let social = 1 << 1;
        let mask = |when: &str| band.active_mask(LocalTime::of(at(when), &school), &school);
        // 2026-11-24 is a Tuesday.
        assert_eq!(mask("2026-11-24T06:59:59"), 0);
        assert_eq!(mask("2026-11-24T07:00:00"), social);
        assert_eq!(mask("2026-11-24T11:29:59"), social);
        assert_eq!(mask("2026-11-24T11:30:00"), 0, "end is exclusive: lunch");
        assert_eq!(mask("2026-11-24T13:30:00"), social);
        assert_eq!(mask("2026-11-24T17:00:00"), 0);
        assert_eq!(mask("2026-11-28T08:00:00"), social, "Saturday");
        assert_eq!(mask("2026-11-29T08:00:00"), 0, "Sunday");
        assert_eq!(mask("2026-12-31T08:00:00"), 0, "holiday (Thursday)");
        assert_eq!(mask("2027-01-01T08:00:00"), 0, "holiday, last day");
        assert_eq!(mask("2027-01-04T08:00:00"), social, "Monday after");
        let time = LocalTime::of(at("2026-11-24T08:00:00"), &school);
        assert_eq!(time.weekday, 1);
        assert_eq!(band.active_for(1, time, &school), Some(0));
        assert_eq!(band.active_for(0, time, &school), None);
    }

    #[test]
    fn local_time_uses_the_zone_offset() {
        let config = validate::parse(CONFIG, Path::new("t.toml"), ListRoot::Embedded).unwrap();
        let school = SchoolTime::new(&config.schools[0]);
        // 2026-11-24T00:30Z is 07:30 in Hanoi.
        let time = LocalTime::of("2026-11-24T00:30:00Z".parse().unwrap(), &school);
        assert_eq!((time.weekday, time.minute), (1, 7 * 60 + 30));
    }
}
