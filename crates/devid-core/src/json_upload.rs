//! JSON upload bodies, read straight into rows without building a generic JSON tree
//! (a tree of a million objects would cost gigabytes). Keys are matched
//! case-insensitively; unknown keys are reported, not silently dropped, so a typo such
//! as `identiy` cannot lose data.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::errors::{ErrorType, Position, Problems};
use crate::plan::{Addressing, ParsedUpload, RawRow, RawValue};

/// Which body an endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonBody {
    /// `PATCH /v2/developers/identities`: `[{"email","integrationId","identity"}]`.
    Identities,
    /// `POST /v2/developers/cloud-ids`: `{"integrationUsers":[{"email","applicationType","cloudId"}]}`.
    CloudIds,
    /// `DELETE /v2/developers/identities`: `[{"integrationId","identity"}]` (`email` allowed, ignored).
    Delete,
}

impl JsonBody {
    fn fields(self) -> [&'static str; 3] {
        match self {
            JsonBody::Identities | JsonBody::Delete => ["email", "integrationId", "identity"],
            JsonBody::CloudIds => ["email", "applicationType", "cloudId"],
        }
    }

    fn addressing(self) -> Addressing {
        match self {
            JsonBody::CloudIds => Addressing::ApplicationType,
            JsonBody::Identities | JsonBody::Delete => Addressing::IntegrationId,
        }
    }

    fn expected_shape(self) -> &'static str {
        match self {
            JsonBody::Identities => {
                r#"a JSON array of objects such as [{"email":"dev@example.com","integrationId":1,"identity":"dev-123"}]"#
            }
            JsonBody::CloudIds => {
                r#"a JSON object such as {"integrationUsers":[{"email":"dev@example.com","applicationType":"GITHUB","cloudId":"dev-123"}]}"#
            }
            JsonBody::Delete => r#"a JSON array of objects such as [{"integrationId":1,"identity":"dev-123"}]"#,
        }
    }
}

/// Parses a JSON upload body. `Err` means nothing could be read (syntax, wrong shape,
/// too many rows); row-level problems travel inside the returned [`ParsedUpload`].
pub fn parse_json_upload(body: &[u8], kind: JsonBody, max_rows: u64) -> Result<ParsedUpload, Problems> {
    let too_many = Cell::new(false);
    let mut problems = Problems::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let rows = match kind {
        JsonBody::Identities | JsonBody::Delete => {
            de::Deserializer::deserialize_any(&mut de, RowsVisitor { kind, max_rows, too_many: &too_many })
        }
        JsonBody::CloudIds => de::Deserializer::deserialize_any(
            &mut de,
            CloudIdsVisitor { max_rows, too_many: &too_many, problems: &mut problems },
        ),
    }
    .and_then(|rows| de.end().map(|()| rows));

    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            let mut fatal = Problems::new();
            if too_many.get() {
                fatal.add_with_reason(
                    ErrorType::TooManyRows,
                    "body",
                    Position::Whole,
                    "",
                    Some(format!(
                        "the upload has more than {max_rows} rows, the server's limit; split it, or raise the limit with --max-upload-rows / DEVID_MAX_UPLOAD_ROWS."
                    )),
                );
            } else if e.is_eof() && body.iter().all(u8::is_ascii_whitespace) {
                fatal.add_with_reason(
                    ErrorType::EmptyPayload,
                    "body",
                    Position::Whole,
                    "",
                    Some(format!("the request body is empty; send {}.", kind.expected_shape())),
                );
            } else {
                fatal.add_with_reason(
                    ErrorType::InvalidJson,
                    "body",
                    Position::Whole,
                    "",
                    Some(format!("{e}; expected {}.", kind.expected_shape())),
                );
            }
            return Err(fatal);
        }
    };

    let fields = kind.fields();
    let mut out = Vec::with_capacity(rows.len());
    for (index, parsed) in rows.into_iter().enumerate() {
        let position = Position::Index(index as u64);
        match parsed {
            JsonRow::NotAnObject(kind_name) => not_an_object(&mut problems, position, kind_name, &fields),
            JsonRow::Object { values, unknown, repeated } => {
                object_problems(&mut problems, position, unknown, &repeated, &fields);
                let [email, integration, identity] = values;
                out.push(RawRow {
                    position,
                    email: if kind == JsonBody::Delete { RawValue::Null } else { email },
                    integration,
                    identity,
                });
            }
        }
    }
    Ok(ParsedUpload { addressing: kind.addressing(), rows: out, problems })
}

/// Reports an element of an upload array that is not an object.
pub(crate) fn not_an_object(problems: &mut Problems, position: Position, kind: &str, fields: &[&str]) {
    problems.add_with_reason(
        ErrorType::InvalidJson,
        "body",
        position,
        &format!("<{kind}>"),
        Some(format!("each element must be an object with the fields {}", fields.join(", "))),
    );
}

/// Reports an object's unknown keys and keys given twice.
pub(crate) fn object_problems(
    problems: &mut Problems,
    position: Position,
    unknown: Vec<String>,
    repeated: &[&str],
    fields: &[&str],
) {
    for name in unknown {
        problems.add_with_reason(
            ErrorType::UnknownField,
            &name,
            position,
            &name,
            Some(format!("accepted fields are {}", fields.join(", "))),
        );
    }
    for name in repeated {
        problems.add_with_reason(
            ErrorType::InvalidJson,
            name,
            position,
            name,
            Some(format!("the field `{name}` appears more than once in this object")),
        );
    }
}

enum JsonRow {
    Object { values: [RawValue; 3], unknown: Vec<String>, repeated: Vec<&'static str> },
    NotAnObject(&'static str),
}

struct RowsVisitor<'a> {
    kind: JsonBody,
    max_rows: u64,
    too_many: &'a Cell<bool>,
}

impl<'de> Visitor<'de> for RowsVisitor<'_> {
    type Value = Vec<JsonRow>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.kind.expected_shape())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let capacity = seq.size_hint().unwrap_or(0).min(1 << 16);
        let mut rows = Vec::with_capacity(capacity);
        let seed = RowSeed { fields: self.kind.fields() };
        while let Some(row) = seq.next_element_seed(seed)? {
            if rows.len() as u64 >= self.max_rows {
                self.too_many.set(true);
                return Err(de::Error::custom("too many rows"));
            }
            rows.push(row);
        }
        Ok(rows)
    }
}

struct CloudIdsVisitor<'a> {
    max_rows: u64,
    too_many: &'a Cell<bool>,
    problems: &'a mut Problems,
}

impl<'de> Visitor<'de> for CloudIdsVisitor<'_> {
    type Value = Vec<JsonRow>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(JsonBody::CloudIds.expected_shape())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut rows = None;
        while let Some(key) = map.next_key::<String>()? {
            if key.eq_ignore_ascii_case("integrationUsers") {
                if rows.is_some() {
                    return Err(de::Error::custom("`integrationUsers` appears more than once"));
                }
                rows = Some(map.next_value_seed(RowsSeed {
                    kind: JsonBody::CloudIds,
                    max_rows: self.max_rows,
                    too_many: self.too_many,
                })?);
            } else {
                map.next_value::<IgnoredAny>()?;
                self.problems.add_with_reason(
                    ErrorType::UnknownField,
                    &key,
                    Position::Whole,
                    &key,
                    Some("the body accepts only `integrationUsers`".into()),
                );
            }
        }
        match rows {
            Some(rows) => Ok(rows),
            None => {
                self.problems.add_with_reason(
                    ErrorType::RequiredFieldMissing,
                    "integrationUsers",
                    Position::Whole,
                    "",
                    Some("the body has no `integrationUsers` array".into()),
                );
                Ok(Vec::new())
            }
        }
    }
}

struct RowsSeed<'a> {
    kind: JsonBody,
    max_rows: u64,
    too_many: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_> {
    type Value = Vec<JsonRow>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(RowsVisitor { kind: self.kind, max_rows: self.max_rows, too_many: self.too_many })
    }
}

#[derive(Clone, Copy)]
struct RowSeed {
    fields: [&'static str; 3],
}

impl<'de> DeserializeSeed<'de> for RowSeed {
    type Value = JsonRow;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowSeed {
    type Value = JsonRow;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object with the fields {}", self.fields.join(", "))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = [RawValue::Absent, RawValue::Absent, RawValue::Absent];
        let mut unknown = Vec::new();
        let mut repeated = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed { fields: &self.fields })? {
            match key {
                Key::Known(i) => {
                    let value = map.next_value_seed(ValueSeed)?;
                    if values[i] != RawValue::Absent {
                        repeated.push(self.fields[i]);
                    }
                    values[i] = value;
                }
                Key::Unknown(name) => {
                    map.next_value::<IgnoredAny>()?;
                    unknown.push(name);
                }
            }
        }
        Ok(JsonRow::Object { values, unknown, repeated })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(JsonRow::NotAnObject("an array"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(JsonRow::NotAnObject("a string"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(JsonRow::NotAnObject("a number"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(JsonRow::NotAnObject("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(JsonRow::NotAnObject("a number"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(JsonRow::NotAnObject("a boolean"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(JsonRow::NotAnObject("null"))
    }
}

pub(crate) enum Key {
    Known(usize),
    Unknown(String),
}

/// Reads an object key as the index of a known field (any case) or the unknown name.
pub(crate) struct KeySeed<'f> {
    pub(crate) fields: &'f [&'static str],
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(match self.fields.iter().position(|f| f.eq_ignore_ascii_case(key)) {
            Some(i) => Key::Known(i),
            None => Key::Unknown(key.to_string()),
        })
    }
}

/// Reads one field's value as it was sent, whatever its JSON kind.
pub(crate) struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = RawValue;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or a number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(RawValue::Text(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(RawValue::Text(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(RawValue::Number(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(RawValue::Number(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(RawValue::Number(if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { v.to_string() }))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(RawValue::WrongKind("a boolean"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(RawValue::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(RawValue::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawValue::WrongKind("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(RawValue::WrongKind("an object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str, kind: JsonBody) -> Result<ParsedUpload, Problems> {
        parse_json_upload(body.as_bytes(), kind, 1000)
    }

    fn fatal_type(body: &str, kind: JsonBody) -> ErrorType {
        let groups = parse(body, kind).expect_err("fatal").into_groups();
        assert_eq!(groups.len(), 1);
        groups[0].error_type
    }

    #[test]
    fn reads_the_documented_bodies() {
        let p = parse(
            r#"[{"email":"developer@example.com","integrationId":123,"identity":"bitbucket-user-123"}]"#,
            JsonBody::Identities,
        )
        .expect("parses");
        assert!(p.problems.is_empty());
        assert_eq!(p.rows[0].integration, RawValue::Number("123".into()));
        assert_eq!(p.rows[0].identity, RawValue::Text("bitbucket-user-123".into()));

        let p = parse(
            r#"{"integrationUsers":[{"email":"a@b.com","applicationType":"CUSTOM","cloudId":"x"}]}"#,
            JsonBody::CloudIds,
        )
        .expect("parses");
        assert_eq!(p.addressing, Addressing::ApplicationType);
        assert_eq!(p.rows[0].integration, RawValue::Text("CUSTOM".into()));
    }

    #[test]
    fn absent_unknown_repeated_and_wrong_kinds_are_row_problems() {
        let p = parse(
            r#"[{"email":"a@b.com","identiy":"x","integrationId":true},{"email":"a@b.com","email":"c@d.com","integrationId":1,"identity":{}} , 7]"#,
            JsonBody::Identities,
        )
        .expect("parses");
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0].identity, RawValue::Absent);
        assert_eq!(p.rows[0].integration, RawValue::WrongKind("a boolean"));
        assert_eq!(p.rows[1].identity, RawValue::WrongKind("an object"));
        let types: Vec<ErrorType> = p.problems.into_groups().into_iter().map(|g| g.error_type).collect();
        assert_eq!(types, vec![ErrorType::InvalidJson, ErrorType::InvalidJson, ErrorType::UnknownField]);
    }

    #[test]
    fn broken_or_misshapen_json_is_fatal() {
        assert_eq!(fatal_type(r#"[{"email":"a@b.com""#, JsonBody::Identities), ErrorType::InvalidJson);
        assert_eq!(fatal_type(r#"{"email":"a@b.com"}"#, JsonBody::Identities), ErrorType::InvalidJson);
        assert_eq!(fatal_type(r#"[] trailing"#, JsonBody::Identities), ErrorType::InvalidJson);
        assert_eq!(fatal_type("", JsonBody::Identities), ErrorType::EmptyPayload);
        assert_eq!(fatal_type("[1]", JsonBody::CloudIds), ErrorType::InvalidJson);
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let deep = format!("[{}{}]", "[".repeat(10_000), "]".repeat(10_000));
        let p = parse(&deep, JsonBody::Identities).expect("read as one bad element");
        let groups = p.problems.into_groups();
        assert_eq!(groups[0].error_type, ErrorType::InvalidJson);
        assert_eq!(groups[0].samples[0].index, Some(0));
        let deep_value = format!(r#"[{{"email":{}{}}}]"#, "[".repeat(10_000), "]".repeat(10_000));
        let p = parse(&deep_value, JsonBody::Identities).expect("read");
        assert_eq!(p.rows[0].email, RawValue::WrongKind("an array"));
    }

    #[test]
    fn row_limit_stops_early() {
        let body = format!("[{}]", [r#"{"email":"a@b.com","integrationId":1,"identity":"x"}"#; 5].join(","));
        let groups = parse_json_upload(body.as_bytes(), JsonBody::Identities, 4).expect_err("too many").into_groups();
        assert_eq!(groups[0].error_type, ErrorType::TooManyRows);
        assert!(parse_json_upload(body.as_bytes(), JsonBody::Identities, 5).is_ok());
    }

    #[test]
    fn cloud_ids_without_users_is_reported() {
        let p = parse(r#"{"users":[]}"#, JsonBody::CloudIds).expect("parses");
        let types: Vec<ErrorType> = p.problems.into_groups().into_iter().map(|g| g.error_type).collect();
        assert_eq!(types, vec![ErrorType::RequiredFieldMissing, ErrorType::UnknownField]);
    }
}
