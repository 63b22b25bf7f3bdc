//! CSV upload files, read as they arrive. Either header set is accepted on either
//! endpoint (`email,integrationId,identity` or `email,applicationType,cloudId`); names
//! match case-insensitively in any order; other columns are ignored, so a downloaded
//! CSV uploads back unchanged.

use std::io::{self, Read};

use crate::errors::{ErrorType, Position, Problems};
use crate::normalize::strip_formula_guard;
use crate::plan::{Addressing, ParsedUpload, RawRow, RawValue};

#[derive(Debug)]
pub enum CsvReadError {
    /// The file was read but is not acceptable.
    Invalid(Problems),
    /// The bytes could not be read (client gone, body over the size limit).
    Io(io::Error),
}

impl From<Problems> for CsvReadError {
    fn from(p: Problems) -> Self {
        CsvReadError::Invalid(p)
    }
}

fn fatal(error_type: ErrorType, field: &str, position: Position, value: &str, reason: String) -> CsvReadError {
    let mut p = Problems::new();
    p.add_with_reason(error_type, field, position, value, Some(reason));
    CsvReadError::Invalid(p)
}

struct Columns {
    email: usize,
    integration: usize,
    identity: usize,
}

/// Reads a CSV upload into memory. `native` is the header set the endpoint documents;
/// it only decides which columns an error names when neither set is complete.
pub fn parse_csv_upload<R: Read>(reader: R, native: Addressing, max_rows: u64) -> Result<ParsedUpload, CsvReadError> {
    let mut rows = Vec::new();
    let mut addressing = native;
    let problems = parse_csv_into(reader, native, max_rows, &mut |a, row| {
        addressing = a;
        rows.push(row);
    })?;
    Ok(ParsedUpload { addressing, rows, problems })
}

/// Reads a CSV upload and hands each row to `sink` as it is read; returns the problems
/// found in the file itself (ragged rows, bad text).
pub fn parse_csv_into<R: Read>(
    reader: R,
    native: Addressing,
    max_rows: u64,
    sink: &mut dyn FnMut(Addressing, RawRow),
) -> Result<Problems, CsvReadError> {
    let (_, problems) = read_records(
        reader,
        max_rows,
        "a header line `email,integrationId,identity`",
        |names| read_header(names, native),
        &mut |(addressing, columns): &(Addressing, Columns), position, record, problems| {
            let email = cell(record, columns.email, "email", position, problems);
            let integration = cell(record, columns.integration, addressing.integration_field(), position, problems);
            let identity = cell(record, columns.identity, addressing.identity_field(), position, problems);
            if let (Some(email), Some(integration), Some(identity)) = (email, integration, identity) {
                sink(*addressing, RawRow { position, email, integration, identity });
            }
        },
    )?;
    Ok(problems)
}

/// A header's column names, trimmed and lower-cased, as [`read_records`] hands them to
/// the caller that decides which columns it needs.
pub struct HeaderNames(Vec<String>);

impl HeaderNames {
    /// The index of the column called `wanted` (any case); an error when the header
    /// names it twice, since either column could be the one meant.
    pub fn find(&self, wanted: &str) -> Result<Option<usize>, CsvReadError> {
        let wanted = wanted.to_ascii_lowercase();
        let mut found = self.0.iter().enumerate().filter(|(_, n)| **n == wanted).map(|(i, _)| i);
        match (found.next(), found.next()) {
            (first, None) => Ok(first),
            (Some(_), Some(_)) => Err(fatal(
                ErrorType::InvalidCsv,
                "header",
                Position::Line(1),
                &wanted,
                format!("the header names the column `{wanted}` more than once."),
            )),
            (None, Some(_)) => Ok(None),
        }
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }
}

/// The one CSV reading loop every upload kind shares: the header is checked (UTF-8, no
/// blank names) and given to `header`, which picks its columns; each data record of the
/// header's width then goes to `row` with its file line. Ragged rows, bad text, an
/// unclosed quote, too many rows and an empty file are reported here, once for all.
pub fn read_records<R: Read, H>(
    reader: R,
    max_rows: u64,
    expected_header: &str,
    header: impl FnOnce(&HeaderNames) -> Result<H, CsvReadError>,
    row: &mut dyn FnMut(&H, Position, &csv::ByteRecord, &mut Problems),
) -> Result<(H, Problems), CsvReadError> {
    let mut tracked = QuoteTracker::new(reader);
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(64 * 1024)
        .from_reader(&mut tracked);
    let mut record = csv::ByteRecord::new();

    let has_header = match csv.read_byte_record(&mut record) {
        Ok(has) => has,
        Err(e) => return Err(read_failure(e, csv.get_ref())),
    };
    if !has_header {
        return Err(fatal(
            ErrorType::EmptyCsv,
            "file",
            Position::Whole,
            "",
            format!("the CSV file is empty; it needs {expected_header} and at least one row."),
        ));
    }
    let names = header_names(&record)?;
    let width = names.0.len();
    let columns = header(&names)?;

    let mut rows: u64 = 0;
    let mut problems = Problems::new();
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(read_failure(e, csv.get_ref())),
        }
        let line = match record.position() {
            Some(p) => csv.get_mut().line_of(p.byte(), p.line()),
            None => 0,
        };
        let position = Position::Line(line);
        if rows >= max_rows {
            return Err(fatal(
                ErrorType::TooManyRows,
                "file",
                position,
                "",
                format!(
                    "the file has more than {max_rows} rows, the server's limit; split it, or raise the limit with --max-upload-rows / DEVID_MAX_UPLOAD_ROWS."
                ),
            ));
        }
        rows += 1;
        if record.len() != width {
            problems.add_with_reason(
                ErrorType::InvalidCsv,
                "file",
                position,
                &row_as_csv(&record),
                Some(format!("this row has {} fields but the header has {width}", record.len())),
            );
            continue;
        }
        row(&columns, position, &record, &mut problems);
    }
    drop(csv);
    if let Some(line) = tracked.unterminated_quote_line() {
        return Err(fatal(
            ErrorType::InvalidCsv,
            "file",
            Position::Line(line),
            "",
            format!("a quoted field opened on line {line} is never closed; check the quotes on that line."),
        ));
    }
    if let Some(e) = tracked.error.take() {
        return Err(CsvReadError::Io(e));
    }
    if rows == 0 && problems.is_empty() {
        return Err(fatal(
            ErrorType::EmptyCsv,
            "file",
            Position::Whole,
            "",
            "the CSV file has a header but no data rows.".into(),
        ));
    }
    Ok((columns, problems))
}

/// One cell as text, the formula guard a download adds taken off again; `None` (and a
/// problem naming `field`) when it is not UTF-8.
pub fn cell(
    record: &csv::ByteRecord,
    index: usize,
    field: &str,
    position: Position,
    problems: &mut Problems,
) -> Option<RawValue> {
    let bytes = record.get(index).unwrap_or_default();
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(RawValue::Text(strip_formula_guard(text).into_owned())),
        Err(e) => {
            problems.add_with_reason(
                ErrorType::InvalidCsv,
                field,
                position,
                &String::from_utf8_lossy(bytes),
                Some(format!("the value is not UTF-8 text ({e}); save the file as UTF-8")),
            );
            None
        }
    }
}

/// A read that failed: an oversized row is the file's fault, anything else the
/// transport's.
fn read_failure<R>(e: csv::Error, tracked: &&mut QuoteTracker<R>) -> CsvReadError {
    match tracked.oversized {
        Some(line) => fatal(
            ErrorType::InvalidCsv,
            "file",
            Position::Line(line),
            "",
            format!(
                "the row starting on line {line} is longer than {} KiB; a row holds a few short fields. Check for an unclosed quote.",
                MAX_RECORD_BYTES / 1024
            ),
        ),
        None => csv_error(e),
    }
}

fn csv_error(e: csv::Error) -> CsvReadError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => CsvReadError::Io(io),
        other => {
            fatal(ErrorType::InvalidCsv, "file", Position::Whole, "", format!("the file is not valid CSV: {other:?}"))
        }
    }
}

fn header_names(record: &csv::ByteRecord) -> Result<HeaderNames, CsvReadError> {
    let mut names = Vec::with_capacity(record.len());
    let mut problems = Problems::new();
    for (i, raw) in record.iter().enumerate() {
        let Ok(name) = std::str::from_utf8(raw) else {
            return Err(fatal(
                ErrorType::InvalidCsv,
                "file",
                Position::Line(1),
                &String::from_utf8_lossy(raw),
                "the header is not UTF-8 text; save the file as UTF-8.".into(),
            ));
        };
        let name = name.trim();
        if name.is_empty() {
            problems.add_with_reason(
                ErrorType::BlankCsvColumnName,
                "header",
                Position::Line(1),
                "",
                Some(format!("column {} of the header has no name", i + 1)),
            );
        }
        names.push(name.to_ascii_lowercase());
    }
    if !problems.is_empty() {
        return Err(problems.into());
    }
    Ok(HeaderNames(names))
}

fn read_header(names: &HeaderNames, native: Addressing) -> Result<(Addressing, Columns), CsvReadError> {
    let find = |wanted: &str| names.find(wanted);
    let email = find("email")?;
    let by_id = (find("integrationId")?, find("identity")?);
    let by_type = (find("applicationType")?, find("cloudId")?);
    let (addressing, integration, identity) = match (by_id, by_type) {
        ((Some(i), Some(d)), _) => (Addressing::IntegrationId, Some(i), Some(d)),
        (_, (Some(t), Some(c))) => (Addressing::ApplicationType, Some(t), Some(c)),
        _ if native == Addressing::IntegrationId => (Addressing::IntegrationId, by_id.0, by_id.1),
        _ => (Addressing::ApplicationType, by_type.0, by_type.1),
    };
    let (Some(email), Some(integration), Some(identity)) = (email, integration, identity) else {
        let mut missing = Problems::new();
        for (name, found) in
            [("email", email), (addressing.integration_field(), integration), (addressing.identity_field(), identity)]
        {
            if found.is_none() {
                missing.add_with_reason(
                    ErrorType::RequiredFieldMissing,
                    name,
                    Position::Line(1),
                    name,
                    Some(format!(
                        "the header has no `{name}` column; expected `email,integrationId,identity` or `email,applicationType,cloudId`"
                    )),
                );
            }
        }
        return Err(missing.into());
    };
    Ok((addressing, Columns { email, integration, identity }))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// A record written back as one CSV line, to show a refused row as the client wrote it
/// (its fields glued together read as a different value).
fn row_as_csv(record: &csv::ByteRecord) -> String {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    if writer.write_byte_record(record).is_err() {
        return String::from_utf8_lossy(record.as_slice()).into_owned();
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end_matches('\n').to_string()
}

/// Follows the CSV quoting rules over the raw bytes to notice what the csv crate
/// forgives silently: a quote that is opened and never closed, which would otherwise
/// swallow the rest of the file into one field. Also drops a leading UTF-8 BOM and
/// keeps the first read error for the caller.
struct QuoteTracker<R> {
    inner: R,
    state: QuoteState,
    line: u64,
    quote_opened_on: u64,
    at_start: bool,
    error: Option<io::Error>,
    record_bytes: usize,
    record_line: u64,
    /// The line where a record passed [`MAX_RECORD_BYTES`].
    oversized: Option<u64>,
    /// Bytes handed to the CSV reader so far.
    offset: u64,
    previous: u8,
    /// Offsets of the `\n` of each `\r\n` not yet behind the reader (see [`QuoteTracker::line_of`]).
    crlf_ends: std::collections::VecDeque<u64>,
}

/// Longest row accepted. Real rows are a few hundred bytes; without a bound, one
/// unterminated quote or a hostile 100 MB field would be buffered whole.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

impl<R: Read> QuoteTracker<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            state: QuoteState::FieldStart,
            line: 1,
            quote_opened_on: 0,
            at_start: true,
            error: None,
            record_bytes: 0,
            record_line: 1,
            oversized: None,
            offset: 0,
            previous: 0,
            crlf_ends: std::collections::VecDeque::new(),
        }
    }

    /// The line a record starting at byte `start` begins on, given the line the csv
    /// crate reports. The crate ends a record at the `\r` of `\r\n` and counts its `\n`
    /// as part of the next one, which therefore starts "on" the line before: one too
    /// low for every record of a CRLF file (devid's own export writes CRLF).
    fn line_of(&mut self, start: u64, reported: u64) -> u64 {
        while self.crlf_ends.front().is_some_and(|at| *at < start) {
            self.crlf_ends.pop_front();
        }
        if self.crlf_ends.front() == Some(&start) { reported + 1 } else { reported }
    }

    fn unterminated_quote_line(&self) -> Option<u64> {
        (self.state == QuoteState::Quoted).then_some(self.quote_opened_on)
    }

    /// Follows `bytes`; false once a record grows past [`MAX_RECORD_BYTES`].
    fn track(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            if b == b'\n' && self.previous == b'\r' {
                self.crlf_ends.push_back(self.offset);
            }
            self.previous = b;
            self.offset += 1;
            self.record_bytes += 1;
            if b == b'\n' {
                self.line += 1;
                if self.state != QuoteState::Quoted {
                    self.record_bytes = 0;
                    self.record_line = self.line;
                }
            }
            if self.record_bytes > MAX_RECORD_BYTES {
                self.oversized = Some(self.record_line);
                return false;
            }
            self.state = match (self.state, b) {
                (QuoteState::FieldStart, b'"') => {
                    self.quote_opened_on = self.line;
                    QuoteState::Quoted
                }
                (QuoteState::Quoted, b'"') => QuoteState::QuoteInQuoted,
                (QuoteState::Quoted, _) => QuoteState::Quoted,
                (QuoteState::QuoteInQuoted, b'"') => QuoteState::Quoted,
                (_, b',' | b'\n' | b'\r') => QuoteState::FieldStart,
                _ => QuoteState::Unquoted,
            };
        }
        true
    }
}

impl<R: Read> Read for QuoteTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                return Err(copy);
            }
        };
        let mut start = 0;
        if self.at_start && n > 0 {
            // A BOM split across reads is not worth handling: readers hand over
            // at least a few bytes at a time.
            self.at_start = false;
            if buf[..n].starts_with(&[0xEF, 0xBB, 0xBF]) {
                buf.copy_within(3..n, 0);
                start = 3;
            }
        }
        let n = n - start;
        if !self.track(&buf[..n]) {
            return Err(io::Error::other("row too long"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Result<ParsedUpload, CsvReadError> {
        parse_csv_upload(text, Addressing::IntegrationId, 1000)
    }

    fn fatal_types(text: &[u8]) -> Vec<ErrorType> {
        match parse(text) {
            Err(CsvReadError::Invalid(p)) => p.into_groups().into_iter().map(|g| g.error_type).collect(),
            Err(CsvReadError::Io(e)) => panic!("io error {e}"),
            Ok(p) => panic!("parsed {:?}", p.rows),
        }
    }

    fn text(s: &str) -> RawValue {
        RawValue::Text(s.into())
    }

    #[test]
    fn reads_the_documented_sample() {
        let p = parse(b"email,integrationId,identity\nalice@harness.io,1,alice_123\nbob@harness.io,2,bob_456\n")
            .expect("ok");
        assert_eq!(p.addressing, Addressing::IntegrationId);
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[1].position, Position::Line(3));
        assert_eq!(p.rows[1].identity, text("bob_456"));
    }

    #[test]
    fn headers_any_case_any_order_extra_columns_bom_crlf() {
        let p = parse(b"\xEF\xBB\xBFIdentity,updatedAt,EMAIL,IntegrationID\r\n\"a, \"\"b\"\"\nc\",x,a@b.com,3\r\n")
            .expect("ok");
        assert_eq!(p.rows[0].identity, text("a, \"b\"\nc"));
        assert_eq!(p.rows[0].email, text("a@b.com"));
        assert_eq!(p.rows[0].integration, text("3"));
    }

    #[test]
    fn previous_header_set_is_detected_on_either_endpoint() {
        let p = parse(b"email,applicationType,cloudId\na@b.com,GITHUB,x\n").expect("ok");
        assert_eq!(p.addressing, Addressing::ApplicationType);
    }

    #[test]
    fn formula_guard_is_stripped() {
        let p = parse(b"email,integrationId,identity\na@b.com,1,'=cmd\n").expect("ok");
        assert_eq!(p.rows[0].identity, text("=cmd"));
    }

    #[test]
    fn hostile_files_get_precise_errors() {
        assert_eq!(fatal_types(b""), vec![ErrorType::EmptyCsv]);
        assert_eq!(fatal_types(b"\xEF\xBB\xBF"), vec![ErrorType::EmptyCsv]);
        assert_eq!(fatal_types(b"email,integrationId,identity\n"), vec![ErrorType::EmptyCsv]);
        assert_eq!(fatal_types(b"email,,identity\n"), vec![ErrorType::BlankCsvColumnName]);
        assert_eq!(fatal_types(b"email,identity\na,b\n"), vec![ErrorType::RequiredFieldMissing]);
        assert_eq!(fatal_types(b"email,email,integrationId,identity\n"), vec![ErrorType::InvalidCsv]);
        assert_eq!(
            fatal_types(b"email,integrationId,identity\na@b.com,1,\"open\nb@c.com,1,x\n"),
            vec![ErrorType::InvalidCsv]
        );
    }

    #[test]
    fn unterminated_quote_names_its_line() {
        match parse(b"email,integrationId,identity\na@b.com,1,x\na@b.com,1,\"open\nmore\n") {
            Err(CsvReadError::Invalid(p)) => {
                let g = p.into_groups();
                assert_eq!(g[0].samples[0].line, Some(3));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lines_are_counted_the_same_with_crlf_and_lf() {
        let rows = [
            "email,integrationId,identity",
            "a@x.com,1,a",
            "b@x.com,1,b,extra",
            "\"c\r\n@x.com\",1,c",
            "d@x.com,1,d,extra",
        ];
        for ending in ["\n", "\r\n"] {
            let mut text = rows.join(ending);
            text.push_str(ending);
            let parsed = parse(text.as_bytes()).expect("parsed");
            let lines: Vec<Option<u64>> =
                parsed.problems.into_groups().iter().flat_map(|g| g.samples.iter().map(|s| s.line)).collect();
            assert_eq!(lines, vec![Some(3), Some(6)], "line ends {ending:?}");
        }
    }

    #[test]
    fn ragged_rows_and_bad_utf8_are_row_problems() {
        let p = parse(b"email,integrationId,identity\na@b.com,1\na@b.com,1,\xff\xfe\nc@d.com,1,ok\n").expect("parsed");
        assert_eq!(p.rows.len(), 1);
        let groups = p.problems.into_groups();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].error_type, ErrorType::InvalidCsv);
        let lines: Vec<Option<u64>> = groups.iter().map(|g| g.samples[0].line).collect();
        assert_eq!(lines, vec![Some(2), Some(3)]);
        assert_eq!(groups[0].samples[0].value, "a@b.com,1", "the row as written, not glued");
    }

    #[test]
    fn an_oversized_row_is_refused_without_buffering_it() {
        let mut body = b"email,integrationId,identity\na@b.com,1,ok\na@b.com,1,".to_vec();
        body.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + 10));
        match parse(&body) {
            Err(CsvReadError::Invalid(p)) => {
                let g = p.into_groups();
                assert_eq!(g[0].error_type, ErrorType::InvalidCsv);
                assert_eq!(g[0].samples[0].line, Some(3));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn row_limit_is_enforced_while_reading() {
        let mut body = b"email,integrationId,identity\n".to_vec();
        for i in 0..5 {
            body.extend_from_slice(format!("a{i}@b.com,1,x{i}\n").as_bytes());
        }
        assert!(matches!(
            parse_csv_upload(&body[..], Addressing::IntegrationId, 4),
            Err(CsvReadError::Invalid(p)) if p.has(ErrorType::TooManyRows)
        ));
    }
}
