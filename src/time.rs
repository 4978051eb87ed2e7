//! RFC 3339 timestamps in UTC, as Event Grid writes `eventTime` and as the journal stores its times.

#[cfg(feature = "recorder")]
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

/// Formats a time as RFC 3339 in UTC with `digits` fractional digits (0, 3 or 6).
pub(crate) fn format_rfc3339(time: SystemTime, digits: u8) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let clock = format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60);
    match digits {
        0 => format!("{clock}Z"),
        3 => format!("{clock}.{:03}Z", since.subsec_millis()),
        _ => format!("{clock}.{:06}Z", since.subsec_micros()),
    }
}

#[cfg(feature = "recorder")]
/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (RFC 3339 §5.6; `t`/`z`/space accepted as RFC 3339 allows).
/// `None` for anything else, or a time before 1970.
///
/// A year past 9999 is read with as many digits as it has (up to 12), as [`format_rfc3339`] writes it: whatever the
/// journal writes, it reads back.
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.trim().as_bytes();
    let year_digits = text.iter().position(|b| *b == b'-')?;
    if !(4..=12).contains(&year_digits) || !text[..year_digits].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let year: i64 = std::str::from_utf8(&text[..year_digits]).ok()?.parse().ok()?;
    // The rest has the layout of a four-digit year's, shifted by the extra digits.
    let b = &text[year_digits - 4..];
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    let (month, day) = (num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // A leap second (60) is read as the last second of its minute.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0u32;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 9 {
                nanos = nanos * 10 + u32::from(b[at] - b'0');
            }
            at += 1;
        }
        let digits = at - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..9 {
            nanos *= 10;
        }
    }
    let offset: i64 = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let hours = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let minutes = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if hours > 23 || minutes > 59 {
                return None;
            }
            let value = hours * 3600 + minutes * 60;
            if *sign == b'+' {
                value
            } else {
                -value
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days
        .checked_mul(86_400)?
        .checked_add(i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second.min(59)) - offset)?;
    let seconds = u64::try_from(seconds).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

#[cfg(feature = "recorder")]
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(feature = "recorder")]
/// A proleptic Gregorian date to days since 1970-01-01 (the inverse of [`civil_from_days`]).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_format_in_each_precision() {
        let t = UNIX_EPOCH + Duration::from_secs(1_649_873_352) + Duration::from_micros(123_456);
        assert_eq!(format_rfc3339(t, 6), "2022-04-13T18:09:12.123456Z");
        assert_eq!(format_rfc3339(t, 3), "2022-04-13T18:09:12.123Z");
        assert_eq!(format_rfc3339(t, 0), "2022-04-13T18:09:12Z");
        assert_eq!(format_rfc3339(UNIX_EPOCH, 6), "1970-01-01T00:00:00.000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(format_rfc3339(leap, 0), "2000-02-29T00:00:00Z");
    }

    #[cfg(feature = "recorder")]
    #[test]
    fn parsing_reads_offsets_and_fractions() {
        let base = UNIX_EPOCH + Duration::from_secs(1_649_873_352);
        let cases = [
            ("2022-04-13T18:09:12Z", Some(base)),
            ("2022-04-13t18:09:12z", Some(base)),
            ("2022-04-13T18:09:12.5Z", Some(base + Duration::from_millis(500))),
            ("2021-07-27T15:20:23.6089755Z", Some(UNIX_EPOCH + Duration::new(1_627_399_223, 608_975_500))),
            ("2022-04-13T20:09:12+02:00", Some(base)),
            ("2022-04-13T17:39:12-00:30", Some(base)),
            ("2000-02-29T00:00:00Z", Some(UNIX_EPOCH + Duration::from_secs(951_782_400))),
            ("2001-02-29T00:00:00Z", None),
            ("2022-13-01T00:00:00Z", None),
            ("2022-04-13T24:00:00Z", None),
            ("2022-04-13T18:09:12", None),
            ("2022-04-13T18:09:12.Z", None),
            ("2022-04-13T18:09:12+2:00", None),
            ("1969-12-31T23:59:59Z", None),
            ("+022-04-13T18:09:12Z", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_rfc3339(text), expected, "{text}");
        }
    }

    #[cfg(feature = "recorder")]
    #[test]
    fn times_past_year_9999_format_with_more_digits_and_parse_back() {
        // 9999-12-31T00:00:00Z plus a day: the expiry an event dated on the last day of year 9999 used to get.
        let last_day = UNIX_EPOCH + Duration::from_secs(253_402_214_400);
        let after = last_day + Duration::from_secs(86_400);
        assert_eq!(format_rfc3339(after, 0), "10000-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339("10000-01-01T00:00:00Z"), Some(after));
        let far = UNIX_EPOCH + Duration::from_secs(1 << 40);
        assert_eq!(parse_rfc3339(&format_rfc3339(far, 6)), Some(far));
        assert_eq!(parse_rfc3339("0999-01-01T00:00:00Z"), None, "before 1970");
        assert_eq!(parse_rfc3339("999-01-01T00:00:00Z"), None, "three digits");
        assert_eq!(parse_rfc3339("9999999999999-01-01T00:00:00Z"), None, "more than twelve digits");
    }

    #[cfg(feature = "recorder")]
    proptest::proptest! {
        #[test]
        fn every_formatted_time_parses_back(secs in 0u64..(i64::MAX as u64 / 2), micros in 0u32..1_000_000) {
            let t = UNIX_EPOCH + Duration::new(secs, micros * 1000);
            proptest::prop_assert_eq!(parse_rfc3339(&format_rfc3339(t, 6)), Some(t));
        }
    }

    #[cfg(feature = "recorder")]
    #[test]
    fn formatted_times_parse_back() {
        for secs in [0u64, 1, 951_782_400, 1_649_873_352, 4_102_444_800] {
            let t = UNIX_EPOCH + Duration::new(secs, 123_456_000);
            assert_eq!(parse_rfc3339(&format_rfc3339(t, 6)), Some(t));
        }
    }
}
