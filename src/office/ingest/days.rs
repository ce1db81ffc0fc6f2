//! Day numbers (days since 1970-01-01), months and the key of a kept
//! input: the office's tables are keyed by these integers.
//!
//! Uses: nothing of the crate. Used by: `office::ingest`'s other files,
//! `office::district`.

/// Days since 1970-01-01 of a checked `YYYY-MM-DD`.
pub(crate) fn day_number(day: &str) -> i64 {
    day.parse::<jiff::civil::Date>()
        .map(|d| {
            i64::from(
                d.since(jiff::civil::date(1970, 1, 1))
                    .map_or(0, |s| s.get_days()),
            )
        })
        .unwrap_or(0)
}

pub(crate) fn day_text(number: i64) -> String {
    jiff::civil::date(1970, 1, 1)
        .checked_add(jiff::Span::new().days(number))
        .map(|d| d.to_string())
        .unwrap_or_default()
}

/// The key of a kept input in `ingest_raw_inputs`: day, then source.
pub fn raw_id(day: i64, source: i64) -> i64 {
    (day << 32) | (source & 0xffff_ffff)
}

/// The calendar month (months since 1970-01) of a day number.
pub(crate) fn month_of(day: i64) -> i64 {
    let date = jiff::civil::date(1970, 1, 1)
        .checked_add(jiff::Span::new().days(day))
        .unwrap_or(jiff::civil::date(1970, 1, 1));
    (i64::from(date.year()) - 1970) * 12 + i64::from(date.month()) - 1
}

/// The day number of the first day of a month (months since 1970-01).
pub(crate) fn month_start(month: i64) -> i64 {
    let year = 1970 + month.div_euclid(12);
    let date = jiff::civil::Date::new(year as i16, (month.rem_euclid(12) + 1) as i8, 1)
        .unwrap_or(jiff::civil::date(1970, 1, 1));
    day_number(&date.to_string())
}
