//! Unix milliseconds as RFC 3339 timestamps in UTC
//! (`2024-02-29T23:59:59.999Z`), the form notifications (Alertmanager,
//! PagerDuty) and shipped log lines read. Done by hand, with Howard
//! Hinnant's `civil_from_days`, rather than with a date crate for one
//! function.

/// `ms` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_ms(ms: u64) -> String {
    let days = ms / 86_400_000;
    let in_day = ms % 86_400_000;
    let (year, month, day) = civil_from_days(days);
    let (hours, minutes) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (seconds, millis) = (in_day / 1000 % 60, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hours:02}:{minutes:02}:{seconds:02}.{millis:03}Z")
}

/// The proleptic Gregorian date `days` days after 1970-01-01. The calendar
/// is counted in 400-year eras from 0000-03-01, so that the leap day ends
/// each year of the count.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z - era * 146_097; // day of era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1
    let mp = (5 * doy + 2) / 153; // month from March, [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        // Checked with `date -u -d @<seconds>`.
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_ms(1_234_567_890_123), "2009-02-13T23:31:30.123Z");
        assert_eq!(format_ms(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(format_ms(1_709_251_200_000), "2024-03-01T00:00:00.000Z");
        assert_eq!(format_ms(4_102_444_800_000), "2100-01-01T00:00:00.000Z");
        // 1900 and 2100 are not leap years, 2000 is.
        assert_eq!(format_ms(4_107_456_000_000), "2100-02-28T00:00:00.000Z");
        assert_eq!(format_ms(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(format_ms(946_684_799_000), "1999-12-31T23:59:59.000Z");
    }

    #[test]
    fn every_day_follows_the_one_before() {
        // Walks 1970..2400 day by day: dates increase by exactly one day.
        let mut last = civil_from_days(0);
        for days in 1..(430 * 366) {
            let (y, m, d) = civil_from_days(days);
            let next_month = (last.0, last.1 + 1, 1);
            let next_year = (last.0 + 1, 1, 1);
            assert!(
                (y, m, d) == (last.0, last.1, last.2 + 1)
                    || (y, m, d) == next_month
                    || (y, m, d) == next_year,
                "{last:?} then {:?}",
                (y, m, d)
            );
            if m == 3 && d == 1 {
                let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
                assert_eq!(last.2, if leap { 29 } else { 28 }, "February {y}");
            }
            last = (y, m, d);
        }
    }
}
