//! Timestamps are microseconds since the Unix epoch (UTC): compact to index, exact to
//! compare, and unambiguous across both database backends.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub type Micros = i64;

pub fn to_rfc3339(micros: Micros) -> String {
    let nanos = i128::from(micros) * 1_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| micros.to_string())
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
    fn rfc3339_round_trips_with_microseconds() {
        let m = parse_rfc3339("2026-11-28T18:13:22.123456Z").expect("valid timestamp");
        assert_eq!(to_rfc3339(m), "2026-11-28T18:13:22.123456Z");
        assert_eq!(parse_rfc3339("2026-11-28T19:13:22+01:00"), parse_rfc3339("2026-11-28T18:13:22Z"));
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
