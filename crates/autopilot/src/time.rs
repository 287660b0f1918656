//! Timestamps as NAB and most metric exports write them
//! (`YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC), to and from Unix milliseconds.
//! Pure calendar arithmetic: no clock, no time zone database.

/// Milliseconds in one day.
pub const DAY_MS: i64 = 86_400_000;

/// Parses `YYYY-MM-DD HH:MM:SS` with an optional fraction of a second (up
/// to the millisecond is kept) into Unix milliseconds; `T` may stand for
/// the space. `None` when the text is not such a timestamp.
///
/// ```
/// assert_eq!(autopilot::time::parse_ms("1970-01-02 00:00:01"), Some(86_401_000));
/// assert_eq!(autopilot::time::parse_ms("2014-04-10 07:15:00.000000"), Some(1_397_114_100_000));
/// assert_eq!(autopilot::time::parse_ms("2014-13-10 07:15:00"), None);
/// ```
pub fn parse_ms(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[from..to] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut millis = 0;
    if b.len() > 19 {
        if b[19] != b'.' || b.len() == 20 {
            return None;
        }
        let digits = &b[20..];
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        // Keep the first three digits (milliseconds), padding short fractions.
        for i in 0..3 {
            millis = millis * 10 + digits.get(i).map_or(0, |d| i64::from(d - b'0'));
        }
    }
    let days = days_from_civil(year, month, day);
    Some(days * DAY_MS + ((hour * 60 + minute) * 60 + second) * 1000 + millis)
}

/// Formats Unix milliseconds as `YYYY-MM-DD HH:MM:SS` (the fraction is
/// dropped), the inverse of [`parse_ms`] on whole seconds.
///
/// ```
/// assert_eq!(autopilot::time::format_ms(1_397_114_100_000), "2014-04-10 07:15:00");
/// ```
pub fn format_ms(t_ms: i64) -> String {
    let days = t_ms.div_euclid(DAY_MS);
    let secs = t_ms.rem_euclid(DAY_MS) / 1000;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_over_leap_days_and_centuries() {
        for text in [
            "1970-01-01 00:00:00",
            "2000-02-29 23:59:59",
            "1900-03-01 12:00:00",
            "2015-09-17 13:30:00",
        ] {
            let t = parse_ms(text).unwrap();
            assert_eq!(format_ms(t), text);
        }
        assert_eq!(parse_ms("2013-02-29 00:00:00"), None);
        assert_eq!(parse_ms("2013-02-28 24:00:00"), None);
        assert_eq!(parse_ms("2013-02-28 23:00:00."), None);
        assert_eq!(
            parse_ms("2013-02-28T23:00:00.5"),
            Some(parse_ms("2013-02-28 23:00:00").unwrap() + 500)
        );
        assert_eq!(parse_ms("not a time"), None);
    }
}
