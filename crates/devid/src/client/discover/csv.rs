//! Reading a commits CSV for `devid discover`: the facts a repository would give, from a
//! file with a header naming its columns (a CSV has no messages, so no co-authors).
//!
//! Guarantees: columns are found by name, in any order and any case, and extra ones are
//! ignored; cells that are not UTF-8 are read with U+FFFD replacements and counted; a
//! header without the needed columns, or a row that cannot be read, is an error naming
//! the file (and line), so nothing is uploaded from a file read only in part.

use std::io::Read;

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ReadStats;
use super::tally::{Kind, Sighting, Tally, offset_in_use, text};

/// Where the needed columns are in a commits CSV.
struct Columns {
    author_name: usize,
    author_email: usize,
    authored_at: usize,
    committer_name: usize,
    committer_email: usize,
    committed_at: Option<usize>,
}

impl Columns {
    fn find(header: &csv::ByteRecord, label: &str) -> Result<Self> {
        let names: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let name = String::from_utf8_lossy(name);
                // A UTF-8 byte order mark is not part of the first name.
                let name = if i == 0 { name.trim_start_matches('\u{feff}') } else { &name };
                name.trim().to_ascii_lowercase()
            })
            .collect();
        let at = |wanted: &str| names.iter().position(|n| n == wanted);
        let required = ["author_name", "author_email", "authored_at", "committer_name", "committer_email"];
        let missing: Vec<&str> = required.into_iter().filter(|name| at(name).is_none()).collect();
        if !missing.is_empty() {
            bail!(
                "{label}: the header lacks {}. A commits CSV names author_name, author_email, authored_at, committer_name and committer_email in its first line; it has {}.",
                missing.join(", "),
                names.join(", ")
            );
        }
        let need = |name: &str| at(name).unwrap_or_default();
        Ok(Self {
            author_name: need("author_name"),
            author_email: need("author_email"),
            authored_at: need("authored_at"),
            committer_name: need("committer_name"),
            committer_email: need("committer_email"),
            committed_at: at("committed_at"),
        })
    }
}

/// Reads a commits CSV (columns found by name, see [`DiscoverArgs`](super::DiscoverArgs))
/// and tallies its people like [`read_git`](super::git::read_git) without trailers;
/// `label` names the file in errors, which give the line of the first row that cannot be
/// read. `bar` follows the bytes read.
pub(super) fn read_commits_csv(
    input: impl Read,
    label: &str,
    tally: &mut Tally,
    bar: &ProgressBar,
) -> Result<ReadStats> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let header = reader.byte_headers().with_context(|| format!("cannot read the header of {label}"))?.clone();
    let columns = Columns::find(&header, label)?;
    let mut record = csv::ByteRecord::new();
    let mut stats = ReadStats::default();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map(|p| format!(" line {}", p.line())).unwrap_or_default();
                bail!("{label}{line} cannot be read as CSV: {e}. Fix the file and run again; nothing was uploaded.");
            }
        }
        let line = record.position().map_or(0, csv::Position::line);
        let field = |i: usize, name: &str| {
            record.get(i).with_context(|| {
                format!(
                    "{label} line {line} has {} fields, but the header puts {name} in field {}; every row needs the header's columns.",
                    record.len(),
                    i + 1
                )
            })
        };
        let mut lossy = false;
        let author_name = text(field(columns.author_name, "author_name")?, &mut lossy);
        let author_email = text(field(columns.author_email, "author_email")?, &mut lossy);
        let committer_name = text(field(columns.committer_name, "committer_name")?, &mut lossy);
        let committer_email = text(field(columns.committer_email, "committer_email")?, &mut lossy);
        let (authored, author_zone) =
            parse_time(field(columns.authored_at, "authored_at")?, label, line, "authored_at")?;
        // Without a committed_at the committer's clock is unknown: its zone is not guessed.
        let (committed, committer_zone) = match columns.committed_at.map(|i| field(i, "committed_at")).transpose()? {
            Some(cell) if !cell.trim_ascii().is_empty() => parse_time(cell, label, line, "committed_at")?,
            _ => (authored, None),
        };
        stats.commits += 1;
        stats.not_utf8 += u64::from(lossy);
        let mut sightings = vec![Sighting {
            kind: Kind::Commit,
            name: &author_name,
            email: &author_email,
            at: authored,
            utc_offset: author_zone,
        }];
        if !committer_email.trim().eq_ignore_ascii_case(author_email.trim()) {
            sightings.push(Sighting {
                kind: Kind::Other,
                name: &committer_name,
                email: &committer_email,
                at: committed,
                utc_offset: committer_zone,
            });
        }
        tally.commit(&sightings);
        if stats.commits % 1024 == 0 {
            bar.set_position(record.position().map_or(0, csv::Position::byte));
        }
    }
    Ok(stats)
}

/// The time as seconds since the epoch, and its UTC offset in minutes when it is one in use.
fn parse_time(cell: &[u8], label: &str, line: u64, column: &str) -> Result<(i64, Option<i16>)> {
    let cell = String::from_utf8_lossy(cell);
    let cell = cell.trim();
    let read = |t: OffsetDateTime| (t.unix_timestamp(), offset_in_use(i64::from(t.offset().whole_seconds())));
    OffsetDateTime::parse(cell, &Rfc3339).map(read).map_err(|_| {
        anyhow::anyhow!(
            "{label} line {line}: {column} `{cell}` is not an RFC 3339 time with an offset, such as 2024-05-01T12:00:00+02:00. Fix the row and run again; nothing was uploaded."
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::tally::{Contributor, utc};
    use super::*;

    fn tally_csv(csv: &[u8]) -> Result<(Vec<Contributor>, ReadStats)> {
        let mut tally = Tally::default();
        let stats = read_commits_csv(csv, "test.csv", &mut tally, &ProgressBar::hidden())?;
        let (rows, empty_emails) = tally.finish();
        Ok((rows, ReadStats { empty_emails, ..stats }))
    }

    #[test]
    fn csv_columns_are_found_by_name_and_extra_ones_ignored() {
        let csv = "\u{feff}extra,Committer_Email,committer_name,authored_at,author_email,author_name\n\
                   x,jane@example.com,Jane,2024-05-01T12:00:00+02:00,jane@example.com,Jane\n\
                   y,noreply@github.com,GitHub,2024-05-02T00:00:00Z,JANE@example.com,Jane\n";
        let (rows, stats) = tally_csv(csv.as_bytes()).expect("readable");
        assert_eq!(stats.commits, 2);
        assert_eq!(rows.len(), 3, "one row per time zone: {rows:?}");
        let (utc_jane, cest_jane) = (&rows[0], &rows[1]);
        assert_eq!((utc_jane.kind, utc_jane.count, utc_jane.email.as_str()), (Kind::Commit, 1, "JANE@example.com"));
        assert_eq!((utc_jane.utc_offset, utc(utc_jane.first_seen).as_str()), (Some(0), "2024-05-02T00:00:00Z"));
        assert_eq!((cest_jane.utc_offset, utc(cest_jane.first_seen).as_str()), (Some(120), "2024-05-01T10:00:00Z"));
        assert_eq!((rows[2].kind, rows[2].name.as_str()), (Kind::Other, "GitHub"));
        assert_eq!(rows[2].utc_offset, None, "a committer's clock is unknown without committed_at");
    }

    #[test]
    fn a_committed_at_column_dates_the_committer() {
        let csv = "author_name,author_email,authored_at,committer_name,committer_email,committed_at\n\
                   Jane,jane@example.com,2024-05-01T00:00:00Z,Bob,bob@example.com,2024-06-01T00:00:00Z\n";
        let (rows, _) = tally_csv(csv.as_bytes()).expect("readable");
        let bob = rows.iter().find(|r| r.kind == Kind::Other).expect("the committer");
        assert_eq!(utc(bob.first_seen), "2024-06-01T00:00:00Z");
    }

    #[test]
    fn csv_cells_that_are_not_utf8_are_replaced_and_counted() {
        let mut csv = b"author_name,author_email,authored_at,committer_name,committer_email\n".to_vec();
        csv.extend_from_slice(b"Jos\xe9,jose@example.com,2024-05-01T00:00:00Z,Jos\xe9,jose@example.com\n");
        csv.extend_from_slice(b"Ann,ann@example.com,2024-05-01T00:00:00Z,Ann,ann@example.com\n");
        let (rows, stats) = tally_csv(&csv).expect("readable");
        assert_eq!(stats.not_utf8, 1, "one row had bytes that are not UTF-8");
        assert!(rows.iter().any(|r| r.name == "Jos\u{fffd}"), "{rows:?}");
        assert!(stats.warnings()[0].starts_with("1 commit had names or emails that are not UTF-8"));
    }

    #[test]
    fn a_bad_csv_row_is_an_error_naming_its_line() {
        let header = "author_name,author_email,authored_at,committer_name,committer_email\n";
        let good = "Ann,ann@example.com,2024-05-01T00:00:00Z,Ann,ann@example.com\n";
        let bad_time = format!("{header}{good}Bob,bob@example.com,yesterday,Bob,bob@example.com\n");
        let e = tally_csv(bad_time.as_bytes()).expect_err("a bad time").to_string();
        assert!(e.contains("test.csv line 3") && e.contains("`yesterday`"), "{e}");
        let short = format!("{header}{good}{good}Bob,bob@example.com\n");
        let e = tally_csv(short.as_bytes()).expect_err("a short row").to_string();
        assert!(e.contains("test.csv line 4 has 2 fields"), "{e}");
    }

    #[test]
    fn a_csv_without_the_needed_columns_names_what_is_missing() {
        let e =
            tally_csv(b"sha,author_name,author_email\nabc,Jane,jane@example.com\n").expect_err("missing").to_string();
        assert!(e.contains("authored_at, committer_name, committer_email"), "{e}");
    }
}
