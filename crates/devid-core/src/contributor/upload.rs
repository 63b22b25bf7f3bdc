//! Reading a contributor upload: a JSON array, NDJSON (one object per line, what
//! `devid discover` streams) or CSV. Each row reaches the caller's sink as soon as it
//! is read, as raw values, so a million-row upload is never held twice; the planner
//! validates and folds them. Keys and column names match case-insensitively, unknown
//! JSON keys are reported (a typo must not lose data), unknown CSV columns are ignored.

use std::cell::Cell;
use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::csv_upload::{CsvReadError, cell, read_records};
use crate::errors::{ErrorType, Position, Problems};
use crate::json_upload::{Key, KeySeed, ValueSeed, not_an_object, object_problems};
use crate::plan::RawValue;

/// The fields of a contributor row, in the order of [`RawContributor`].
pub const FIELDS: [&str; 9] =
    ["integrationId", "identity", "name", "email", "kind", "count", "firstSeen", "lastSeen", "utcOffset"];
/// Fields a row cannot do without.
pub const REQUIRED_FIELDS: [&str; 2] = ["integrationId", "identity"];

pub const INTEGRATION: usize = 0;
pub const IDENTITY: usize = 1;
pub const NAME: usize = 2;
pub const EMAIL: usize = 3;
pub const KIND: usize = 4;
pub const COUNT: usize = 5;
pub const FIRST_SEEN: usize = 6;
pub const LAST_SEEN: usize = 7;
pub const UTC_OFFSET: usize = 8;

/// One row's values as sent, indexed by the constants above.
pub type RawContributor = [RawValue; 9];

const EXPECTED_JSON: &str = r#"a JSON array of objects such as [{"integrationId":1,"identity":"jdoe","name":"Jane Doe","email":"jane@example.com","kind":"commit","count":12,"firstSeen":"2026-01-02T00:00:00Z","lastSeen":"2026-11-30T00:00:00Z"}]"#;

/// Hands each row of a JSON array to `sink`. `Err` means nothing could be read (syntax,
/// wrong shape, too many rows); row-level problems (unknown keys, an element that is not
/// an object) come back in `Ok`.
pub fn read_json(
    body: &[u8],
    max_rows: u64,
    sink: &mut dyn FnMut(Position, RawContributor),
) -> Result<Problems, Problems> {
    let too_many = Cell::new(false);
    let mut problems = Problems::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let read = de::Deserializer::deserialize_any(
        &mut de,
        ArrayVisitor { max_rows, too_many: &too_many, problems: &mut problems, sink },
    )
    .and_then(|()| de.end());
    match read {
        Ok(()) => Ok(problems),
        Err(_) if too_many.get() => Err(too_many_rows(max_rows, "body")),
        Err(e) if e.is_eof() && body.iter().all(u8::is_ascii_whitespace) => Err(whole(
            ErrorType::EmptyPayload,
            format!("the request body is empty; send {EXPECTED_JSON}, NDJSON or CSV."),
        )),
        Err(e) => Err(whole(ErrorType::InvalidJson, format!("{e}; expected {EXPECTED_JSON}."))),
    }
}

/// Hands each line of an NDJSON body (one JSON object per line; blank lines skipped) to
/// `sink`. A line that is not a JSON object is reported with its line number and the
/// others are still read, so one upload shows every bad line.
pub fn read_ndjson(
    body: &[u8],
    max_rows: u64,
    sink: &mut dyn FnMut(Position, RawContributor),
) -> Result<Problems, Problems> {
    let mut problems = Problems::new();
    let mut rows: u64 = 0;
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let line_number = i as u64 + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = if line_number == 1 { line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line) } else { line };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if rows >= max_rows {
            return Err(too_many_rows(max_rows, "body"));
        }
        rows += 1;
        let position = Position::Line(line_number);
        let mut de = serde_json::Deserializer::from_slice(line);
        match de::Deserializer::deserialize_any(&mut de, ObjectVisitor).and_then(|row| de.end().map(|()| row)) {
            Ok(row) => deliver(position, row, &mut problems, sink),
            Err(e) => problems.add_with_reason(
                ErrorType::InvalidJson,
                "body",
                position,
                &String::from_utf8_lossy(line),
                Some(format!("this line is not one JSON object ({e})")),
            ),
        }
    }
    if rows == 0 {
        return Err(whole(
            ErrorType::EmptyPayload,
            "the request body holds no rows; send one JSON object per line.".into(),
        ));
    }
    Ok(problems)
}

/// Hands each row of a CSV file to `sink`. The header must name `integrationId` and
/// `identity`; the other fields are optional columns.
pub fn read_csv<R: Read>(
    reader: R,
    max_rows: u64,
    sink: &mut dyn FnMut(Position, RawContributor),
) -> Result<Problems, CsvReadError> {
    let (_, problems) = read_records(
        reader,
        max_rows,
        "a header line such as `integrationId,identity,name,email,kind,count`",
        |names| {
            let mut columns = [None; 9];
            for (slot, field) in columns.iter_mut().zip(FIELDS) {
                *slot = names.find(field)?;
            }
            let mut missing = Problems::new();
            for field in REQUIRED_FIELDS {
                let index = FIELDS.iter().position(|f| *f == field).unwrap_or(0);
                if columns[index].is_none() {
                    missing.add_with_reason(
                        ErrorType::RequiredFieldMissing,
                        field,
                        Position::Line(1),
                        field,
                        Some(format!(
                            "the header has no `{field}` column; it needs `integrationId` and `identity`, and may add {}",
                            FIELDS[2..].join(", ")
                        )),
                    );
                }
            }
            if missing.is_empty() { Ok(columns) } else { Err(CsvReadError::Invalid(missing)) }
        },
        &mut |columns: &[Option<usize>; 9], position, record, problems| {
            let mut row: RawContributor = Default::default();
            for (i, column) in columns.iter().enumerate() {
                if let Some(column) = column {
                    match cell(record, *column, FIELDS[i], position, problems) {
                        // An empty optional cell means "not given", as an absent JSON key.
                        Some(RawValue::Text(t)) if t.trim().is_empty() && i > IDENTITY => {}
                        Some(value) => row[i] = value,
                        None => return,
                    }
                }
            }
            sink(position, row);
        },
    )?;
    Ok(problems)
}

fn whole(error_type: ErrorType, reason: String) -> Problems {
    let mut p = Problems::new();
    p.add_with_reason(error_type, "body", Position::Whole, "", Some(reason));
    p
}

fn too_many_rows(max_rows: u64, field: &str) -> Problems {
    let mut p = Problems::new();
    p.add_with_reason(
        ErrorType::TooManyRows,
        field,
        Position::Whole,
        "",
        Some(format!(
            "the upload has more than {max_rows} rows, the server's limit; split it, or raise the limit with --max-upload-rows / DEVID_MAX_UPLOAD_ROWS."
        )),
    );
    p
}

/// One element of the array or one NDJSON line, before validation. Built and consumed
/// one at a time, so its size costs nothing, while boxing it would allocate per row.
#[allow(clippy::large_enum_variant)]
enum Element {
    Object { values: RawContributor, unknown: Vec<String>, repeated: Vec<&'static str> },
    NotAnObject(&'static str),
}

fn deliver(
    position: Position,
    element: Element,
    problems: &mut Problems,
    sink: &mut dyn FnMut(Position, RawContributor),
) {
    match element {
        Element::NotAnObject(kind) => not_an_object(problems, position, kind, &FIELDS),
        Element::Object { values, unknown, repeated } => {
            object_problems(problems, position, unknown, &repeated, &FIELDS);
            sink(position, values);
        }
    }
}

struct ArrayVisitor<'a> {
    max_rows: u64,
    too_many: &'a Cell<bool>,
    problems: &'a mut Problems,
    sink: &'a mut dyn FnMut(Position, RawContributor),
}

impl<'de> Visitor<'de> for ArrayVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of contributor objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index: u64 = 0;
        while let Some(element) = seq.next_element_seed(ElementSeed)? {
            if index >= self.max_rows {
                self.too_many.set(true);
                return Err(de::Error::custom("too many rows"));
            }
            deliver(Position::Index(index), element, self.problems, self.sink);
            index += 1;
        }
        if index == 0 {
            return Err(de::Error::custom("the array is empty; send at least one contributor"));
        }
        Ok(())
    }
}

struct ElementSeed;

impl<'de> DeserializeSeed<'de> for ElementSeed {
    type Value = Element;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Element, D::Error> {
        d.deserialize_any(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Element;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object with the fields {}", FIELDS.join(", "))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Element, A::Error> {
        let mut values: RawContributor = Default::default();
        let mut unknown = Vec::new();
        let mut repeated = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed { fields: &FIELDS })? {
            match key {
                Key::Known(i) => {
                    let value = map.next_value_seed(ValueSeed)?;
                    if values[i] != RawValue::Absent {
                        repeated.push(FIELDS[i]);
                    }
                    values[i] = value;
                }
                Key::Unknown(name) => {
                    map.next_value::<IgnoredAny>()?;
                    unknown.push(name);
                }
            }
        }
        Ok(Element::Object { values, unknown, repeated })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Element, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Element::NotAnObject("an array"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Element, E> {
        Ok(Element::NotAnObject("a string"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Element, E> {
        Ok(Element::NotAnObject("a number"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Element, E> {
        Ok(Element::NotAnObject("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Element, E> {
        Ok(Element::NotAnObject("a number"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Element, E> {
        Ok(Element::NotAnObject("a boolean"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Element, E> {
        Ok(Element::NotAnObject("null"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect_json(body: &str) -> (Vec<(Position, RawContributor)>, Result<Problems, Problems>) {
        let mut rows = Vec::new();
        let result = read_json(body.as_bytes(), 100, &mut |p, r| rows.push((p, r)));
        (rows, result)
    }

    #[test]
    fn json_rows_arrive_with_their_index_and_keys_in_any_case() {
        let (rows, result) = collect_json(
            r#"[{"integrationId":1,"identity":"a","COUNT":3},{"integrationid":"2","identity":"b","kind":"pr"}]"#,
        );
        assert!(result.expect("readable").is_empty());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, Position::Index(0));
        assert_eq!(rows[0].1[COUNT], RawValue::Number("3".into()));
        assert_eq!(rows[1].1[INTEGRATION], RawValue::Text("2".into()));
        assert_eq!(rows[1].1[KIND], RawValue::Text("pr".into()));
        assert_eq!(rows[1].1[NAME], RawValue::Absent);
    }

    #[test]
    fn unknown_json_keys_are_reported_with_the_row() {
        let (_, result) = collect_json(r#"[{"integrationId":1,"identity":"a","cuont":3}]"#);
        let problems = result.expect("readable");
        assert!(problems.has(ErrorType::UnknownField));
    }

    #[test]
    fn broken_or_empty_json_is_refused_whole() {
        assert!(collect_json(r#"[{"integrationId":1"#).1.is_err());
        assert!(collect_json("").1.expect_err("empty").has(ErrorType::EmptyPayload));
        assert!(collect_json("[]").1.is_err());
        assert!(collect_json(r#"{"integrationId":1}"#).1.is_err());
    }

    #[test]
    fn too_many_json_rows_stop_the_read() {
        let mut n = 0;
        let result = read_json(br#"[{"identity":"a"},{"identity":"b"},{"identity":"c"}]"#, 2, &mut |_, _| n += 1);
        assert!(result.expect_err("over the limit").has(ErrorType::TooManyRows));
    }

    #[test]
    fn ndjson_reports_each_bad_line_by_number_and_reads_the_rest() {
        let body =
            "{\"integrationId\":1,\"identity\":\"a\"}\r\n\n{broken\n[1]\n{\"integrationId\":1,\"identity\":\"b\"}\n";
        let mut rows = Vec::new();
        let problems = read_ndjson(body.as_bytes(), 100, &mut |p, r| rows.push((p, r))).expect("readable");
        assert_eq!(rows.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![Position::Line(1), Position::Line(5)]);
        let groups = problems.into_groups();
        let lines: Vec<Option<u64>> = groups.iter().flat_map(|g| g.samples.iter().map(|s| s.line)).collect();
        assert_eq!(lines, vec![Some(3), Some(4)]);
    }

    #[test]
    fn csv_needs_the_two_key_columns_and_treats_empty_optional_cells_as_absent() {
        let csv = "identity,integrationId,Name,count,extra\njdoe,1,,5,x\n";
        let mut rows = Vec::new();
        let problems = read_csv(csv.as_bytes(), 100, &mut |p, r| rows.push((p, r))).expect("readable");
        assert!(problems.is_empty());
        assert_eq!(rows[0].0, Position::Line(2));
        assert_eq!(rows[0].1[NAME], RawValue::Absent);
        assert_eq!(rows[0].1[COUNT], RawValue::Text("5".into()));

        match read_csv("name,identity\nx,y\n".as_bytes(), 100, &mut |_, _| {}) {
            Err(CsvReadError::Invalid(p)) => assert!(p.has(ErrorType::RequiredFieldMissing)),
            other => panic!("expected a missing column, got {other:?}"),
        }
    }
}
