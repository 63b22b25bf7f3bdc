//! The tally of `devid discover`: the people of each commit become contributor rows,
//! one per (kind, lower-cased email, name, UTC offset), and the rows become the upload's
//! NDJSON. The
//! bytes-to-text step lives here too, so both readers replace and count bytes that are
//! not UTF-8 the same way.
//!
//! Guarantees: a person counts once per commit and kind, however often a commit names
//! them; an empty email is skipped and counted, never uploaded; the same history always
//! gives the same rows in the same order; every time written is RFC 3339 UTC with a
//! four-digit year, whatever number a commit holds.

use std::borrow::Cow;
use std::collections::HashMap;

use anyhow::{Context, Result};
use devid_core::contributor::zones::{UtcOffsets, format_offset};
use devid_core::types::IntegrationId;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How a contributor was seen: `commit` (author or co-author) or `other` (committer of
/// someone else's commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Kind {
    Commit,
    Other,
}

impl Kind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Kind::Commit => "commit",
            Kind::Other => "other",
        }
    }
}

/// One person of one commit, as read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sighting<'a> {
    pub(super) kind: Kind,
    pub(super) name: &'a str,
    pub(super) email: &'a str,
    /// Seconds since the Unix epoch.
    pub(super) at: i64,
    /// The UTC offset (minutes) the person's own clock showed; `None` when the commit
    /// does not say (a co-author's) or the offset is not one in use.
    pub(super) utc_offset: Option<i16>,
}

/// One output row: a (kind, email, name, offset) and how often and when it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Contributor {
    pub(super) kind: Kind,
    pub(super) name: String,
    /// As first recorded (case kept); rows are keyed by its lower-case form.
    pub(super) email: String,
    /// Commits it appears in with this kind.
    pub(super) count: u64,
    pub(super) first_seen: i64,
    pub(super) last_seen: i64,
    pub(super) utc_offset: Option<i16>,
}

/// Tallies sightings per (kind, lower-cased email, name, offset).
#[derive(Debug, Default)]
pub(super) struct Tally {
    rows: HashMap<(Kind, String, String, Option<i16>), Contributor>,
    empty_emails: u64,
}

impl Tally {
    /// Adds one commit's sightings. A person seen twice in one commit with the same
    /// kind (a co-author trailer repeated by a squash merge, or naming the author)
    /// counts once for it. Names and emails are trimmed; an empty email is skipped and
    /// counted.
    pub(super) fn commit(&mut self, sightings: &[Sighting<'_>]) {
        let mut seen: Vec<(Kind, String, &str)> = Vec::with_capacity(sightings.len());
        for s in sightings {
            let (name, email) = (s.name.trim(), s.email.trim());
            if email.is_empty() {
                self.empty_emails += 1;
                continue;
            }
            let lower = email.to_lowercase();
            if seen.iter().any(|(k, e, n)| *k == s.kind && *e == lower && *n == name) {
                continue;
            }
            let key = (s.kind, lower, name.to_string(), s.utc_offset);
            seen.push((s.kind, key.1.clone(), name));
            self.rows
                .entry(key)
                .and_modify(|row| {
                    row.count += 1;
                    row.first_seen = row.first_seen.min(s.at);
                    row.last_seen = row.last_seen.max(s.at);
                })
                .or_insert_with(|| Contributor {
                    kind: s.kind,
                    name: name.to_string(),
                    email: email.to_string(),
                    count: 1,
                    first_seen: s.at,
                    last_seen: s.at,
                    utc_offset: s.utc_offset,
                });
        }
    }

    /// The rows, ordered by lower-cased email, name, kind and offset (so the same history always
    /// gives the same file), and how many sightings were skipped for an empty email.
    pub(super) fn finish(self) -> (Vec<Contributor>, u64) {
        let mut rows: Vec<_> = self.rows.into_iter().collect();
        rows.sort_unstable_by(|((ka, ea, na, oa), _), ((kb, eb, nb, ob), _)| (ea, na, ka, oa).cmp(&(eb, nb, kb, ob)));
        (rows.into_iter().map(|(_, row)| row).collect(), self.empty_emails)
    }
}

/// Bytes as text; marks `lossy` when they are not UTF-8 and had to be replaced.
pub(super) fn text<'a>(bytes: &'a [u8], lossy: &mut bool) -> Cow<'a, str> {
    let text = String::from_utf8_lossy(bytes);
    *lossy |= matches!(text, Cow::Owned(_));
    text
}

/// One NDJSON line of the upload, in the server's field names.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    integration_id: IntegrationId,
    identity: &'a str,
    name: &'a str,
    email: &'a str,
    kind: &'static str,
    count: u64,
    first_seen: String,
    last_seen: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    utc_offset: Option<String>,
}

/// The upload body: one JSON object per contributor and line, times in UTC.
pub(super) fn ndjson(contributors: &[Contributor], integration: IntegrationId) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(contributors.len() * 200);
    for c in contributors {
        let line = Line {
            integration_id: integration,
            identity: &c.email,
            name: &c.name,
            email: &c.email,
            kind: c.kind.as_str(),
            count: c.count,
            first_seen: utc(c.first_seen),
            last_seen: utc(c.last_seen),
            utc_offset: c.utc_offset.map(format_offset),
        };
        serde_json::to_writer(&mut out, &line).context("cannot encode a contributor as JSON")?;
        out.push(b'\n');
    }
    Ok(out)
}

/// A signature's UTC offset in seconds as the minutes of an offset in use (a whole
/// quarter hour from -12:00 to +14:00); git stores whatever a clock or a forger wrote.
pub(super) fn offset_in_use(seconds: i64) -> Option<i16> {
    let minutes = i16::try_from(seconds / 60).ok().filter(|_| seconds % 60 == 0)?;
    UtcOffsets::of(minutes).map(|_| minutes)
}

/// Seconds since the epoch as RFC 3339 UTC, clamped to years 1 to 9999 (git stores any
/// number a clock or a forger wrote; RFC 3339 has four-digit years).
pub(super) fn utc(seconds: i64) -> String {
    const FIRST: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    OffsetDateTime::from_unix_timestamp(seconds.clamp(FIRST, LAST))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen<'a>(kind: Kind, name: &'a str, email: &'a str, at: i64) -> Sighting<'a> {
        Sighting { kind, name, email, at, utc_offset: None }
    }

    #[test]
    fn sightings_are_tallied_per_kind_lowercased_email_and_name() {
        let mut tally = Tally::default();
        tally.commit(&[seen(Kind::Commit, "Jane Doe", "Jane@Example.com", 200)]);
        tally.commit(&[seen(Kind::Commit, " Jane Doe ", "jane@example.com ", 100)]);
        tally.commit(&[seen(Kind::Commit, "Jane Doe", "jane@example.com", 300)]);
        tally.commit(&[seen(Kind::Commit, "J. Doe", "jane@example.com", 50)]);
        tally.commit(&[seen(Kind::Other, "Jane Doe", "jane@example.com", 400)]);
        let (rows, empty) = tally.finish();
        assert_eq!(empty, 0);
        assert_eq!(rows.len(), 3, "{rows:?}");
        let jane = &rows[1];
        assert_eq!((jane.kind, jane.name.as_str(), jane.count), (Kind::Commit, "Jane Doe", 3));
        assert_eq!(jane.email, "Jane@Example.com", "the email is kept as first recorded");
        assert_eq!((jane.first_seen, jane.last_seen), (100, 300));
        assert_eq!((rows[0].name.as_str(), rows[0].count), ("J. Doe", 1));
        assert_eq!((rows[2].kind, rows[2].count), (Kind::Other, 1));
    }

    #[test]
    fn a_person_counts_once_per_commit_and_kind() {
        let mut tally = Tally::default();
        tally.commit(&[
            seen(Kind::Commit, "Jane", "jane@example.com", 1),
            seen(Kind::Commit, "Jane", "JANE@example.com", 1),
            seen(Kind::Commit, "Bob", "bob@example.com", 1),
            seen(Kind::Commit, "Bob", "bob@example.com", 1),
        ]);
        let (rows, _) = tally.finish();
        assert_eq!(rows.iter().map(|r| r.count).collect::<Vec<_>>(), [1, 1]);
    }

    #[test]
    fn an_empty_email_is_skipped_and_counted() {
        let mut tally = Tally::default();
        tally.commit(&[seen(Kind::Commit, "Nobody", "  ", 1), seen(Kind::Other, "Jane", "jane@example.com", 1)]);
        let (rows, empty) = tally.finish();
        assert_eq!((rows.len(), empty), (1, 1));
    }

    #[test]
    fn rows_become_ndjson_lines_in_the_servers_field_names() {
        let rows = [Contributor {
            kind: Kind::Other,
            name: "Jane \"JD\" Doe".into(),
            email: "Jane@Example.com".into(),
            count: 4,
            first_seen: 0,
            last_seen: 1_714_557_600,
            utc_offset: None,
        }];
        let body = String::from_utf8(ndjson(&rows, 7).expect("encodes")).expect("utf-8");
        assert_eq!(
            body,
            "{\"integrationId\":7,\"identity\":\"Jane@Example.com\",\"name\":\"Jane \\\"JD\\\" Doe\",\"email\":\"Jane@Example.com\",\"kind\":\"other\",\"count\":4,\"firstSeen\":\"1970-01-01T00:00:00Z\",\"lastSeen\":\"2024-05-01T10:00:00Z\"}\n"
        );
        let zoned = [Contributor { utc_offset: Some(-330), ..rows[0].clone() }];
        let body = String::from_utf8(ndjson(&zoned, 7).expect("encodes")).expect("utf-8");
        assert!(body.ends_with(",\"utcOffset\":\"-05:30\"}\n"), "{body}");
    }

    #[test]
    fn each_time_zone_a_person_wrote_from_is_its_own_row() {
        let mut tally = Tally::default();
        let at = |utc_offset| Sighting { utc_offset, ..seen(Kind::Commit, "Jane", "jane@example.com", 1) };
        tally.commit(&[at(Some(60))]);
        tally.commit(&[at(Some(120))]);
        tally.commit(&[at(Some(60))]);
        tally.commit(&[at(None)]);
        let (rows, _) = tally.finish();
        let zones: Vec<(Option<i16>, u64)> = rows.iter().map(|r| (r.utc_offset, r.count)).collect();
        assert_eq!(zones, [(None, 1), (Some(60), 2), (Some(120), 1)]);
    }

    #[test]
    fn only_offsets_in_use_are_kept() {
        assert_eq!(offset_in_use(3600), Some(60));
        assert_eq!(offset_in_use(-19_800), Some(-330));
        assert_eq!(offset_in_use(0), Some(0));
        assert_eq!(offset_in_use(7), None, "not whole minutes");
        assert_eq!(offset_in_use(17 * 3600), None, "no zone is 17 hours ahead");
        assert_eq!(offset_in_use(600), None, "not a quarter hour");
        assert_eq!(offset_in_use(i64::MAX), None);
    }

    #[test]
    fn times_outside_four_digit_years_are_clamped() {
        assert_eq!(utc(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(utc(i64::MIN), "0001-01-01T00:00:00Z");
    }
}
