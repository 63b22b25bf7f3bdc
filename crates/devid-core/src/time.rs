//! Timestamps are microseconds since the Unix epoch (UTC): compact to index, exact to
//! compare, and unambiguous across both database backends.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub type Micros = i64;

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, always six fractional digits so that timestamps sort
/// as text.
pub fn to_rfc3339(micros: Micros) -> String {
    let mut out = Vec::with_capacity(27);
    push_rfc3339(micros, &mut out);
    String::from_utf8(out).unwrap_or_else(|_| micros.to_string())
}

/// [`to_rfc3339`] appended to a buffer. Written by hand, digit by digit: listings and
/// exports format timestamps for every row, and the general formatter (and even
/// `format!`) was a visible share of a million-row export.
pub fn push_rfc3339(micros: Micros, out: &mut Vec<u8>) {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        let nanos = i128::from(micros) * 1_000;
        let text = OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| micros.to_string());
        out.extend_from_slice(text.as_bytes());
        return;
    }
    push_digits(out, year, 4);
    out.push(b'-');
    push_digits(out, i64::from(month), 2);
    out.push(b'-');
    push_digits(out, i64::from(day), 2);
    out.push(b'T');
    push_digits(out, of_day / 3600, 2);
    out.push(b':');
    push_digits(out, of_day / 60 % 60, 2);
    out.push(b':');
    push_digits(out, of_day % 60, 2);
    out.push(b'.');
    push_digits(out, fraction, 6);
    out.push(b'Z');
}

/// `value` (not negative) in exactly `width` decimal digits, zero-padded.
fn push_digits(out: &mut Vec<u8>, value: i64, width: usize) {
    let start = out.len();
    let mut v = value;
    for _ in 0..width {
        out.push(b'0' + (v % 10) as u8);
        v /= 10;
    }
    out[start..].reverse();
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
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

/// `YYYY-MM-DD` as midnight UTC, read digit by digit (a contributor upload carries one
/// or two dates per row, and the general parser was a visible share of a million).
/// `None` for anything else, a day the month does not have included.
pub fn parse_date(s: &str) -> Option<Micros> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        b[range].iter().try_fold(0i64, |n, c| c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0')))
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400_000_000)
}

/// (year, month, day) to days since 1970-01-01, proleptic Gregorian (H. Hinnant's
/// algorithm, the inverse of `civil_from_days`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn parse_rfc3339(s: &str) -> Result<Micros, String> {
    let t = OffsetDateTime::parse(s.trim(), &Rfc3339)
        .map_err(|e| format!("`{s}` is not an RFC 3339 timestamp such as 2026-01-31T12:00:00Z ({e})"))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000).map_err(|_| format!("`{s}` is out of the supported range"))
}

pub fn micros_from(t: OffsetDateTime) -> Micros {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_formatter_agrees_with_the_time_crate() {
        let mut m: i64 = -86_400_000_000 * 365 * 3;
        while m < 86_400_000_000 * 365 * 80 {
            let ours = to_rfc3339(m);
            assert_eq!(parse_rfc3339(&ours), Ok(m), "{ours}");
            assert_eq!(ours.len(), 27, "{ours}");
            m += 7_777_777_777_777 + 123_457;
        }
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(to_rfc3339(951_782_400_000_001), "2000-02-29T00:00:00.000001Z");
        assert_eq!(to_rfc3339(-1), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn dates_read_by_hand_agree_with_the_time_crate() {
        for text in ["1970-01-01", "2000-02-29", "2026-11-30", "1969-12-31", "2100-03-01", "0001-01-01", "9999-12-31"] {
            assert_eq!(parse_date(text), parse_rfc3339(&format!("{text}T00:00:00Z")).ok(), "{text}");
        }
        for text in [
            "2026-02-29",
            "2100-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-01-32",
            "2026-1-01",
            "2026/01/01",
            "２０２６-01-01",
        ] {
            assert_eq!(parse_date(text), None, "{text}");
        }
    }

    #[test]
    fn rfc3339_round_trips_with_microseconds() {
        let m = parse_rfc3339("2026-11-28T18:13:22.123456Z").expect("valid timestamp");
        assert_eq!(to_rfc3339(m), "2026-11-28T18:13:22.123456Z");
        assert_eq!(parse_rfc3339("2026-11-28T19:13:22+01:00"), parse_rfc3339("2026-11-28T18:13:22Z"));
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
